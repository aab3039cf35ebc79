"""Issue 17's reproductions, each through the CLI in a scratch folder, under a memory cap.

Every run goes through :func:`tests.helpers.hostile.doctor`, which asserts the promises each run
keeps: exit 0, 1, 2 or 130, no traceback, the run within its bound, at most 1 GiB of address
space, no process left behind. Sizes are small where the bound, not the size, is what matters
(a cap is tested with cap + 1 bytes, or a sparse file).
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoglm_doctor.safeio import LIMITS
from tests.helpers.hostile import doctor, fake_interpreter, tree_state
from tests.helpers.model_folders import build_model
from tests.helpers.venvs import make_venv

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses /proc, FIFOs, setsid and RLIMIT_AS")

CONFIG_ONLY = ["check", "--no-smoke", "--only", "config.*"]


def test_deep_and_huge_configs_are_findings(tmp_path: Path) -> None:
    """TOML nested 500 deep, YAML with a 5000-digit integer, JSON nested 3000 deep: exit 1, the file named."""
    (tmp_path / "d.toml").write_text("a = " + "[" * 500 + "]" * 500 + "\n")
    (tmp_path / "big.yaml").write_text("model_path: /m\nn: " + "9" * 5000 + "\n")
    (tmp_path / "d.json").write_text('{"a": ' + "[" * 3000 + "]" * 3000 + "}")
    for name, words in (("d.toml", "nested"), ("big.yaml", "cannot be converted"), ("d.json", "nest")):
        run = doctor([*CONFIG_ONLY, "--config", name, "--format", "json"], cwd=tmp_path, bound_s=30)
        assert run.code == 1
        report = json.loads(run.stdout)
        messages = [f["message"] for r in report["results"] for f in r["findings"]]
        assert any(words in m for m in messages), messages


def test_unbounded_and_blocking_files_are_refused(tmp_path: Path) -> None:
    """/dev/zero, a FIFO and a sparse file over the cap: never read, each named in a finding or usage error."""
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    sparse = tmp_path / "sparse.yaml"
    with open(sparse, "wb") as handle:
        handle.truncate(LIMITS["config"] + 1)
    for config in ("/dev/zero", str(fifo), str(sparse)):
        run = doctor([*CONFIG_ONLY, "--config", config], cwd=tmp_path, bound_s=30)
        assert run.code == 1
        assert "not a regular file" in run.text or "limit" in run.text
    run = doctor([*CONFIG_ONLY], cwd=tmp_path, env={"AUTOGLM_CONFIG": str(fifo)}, bound_s=30)
    assert run.code == 1 and "FIFO" in run.text
    run = doctor([*CONFIG_ONLY, "--request", str(fifo), "--only", "config.request"], cwd=tmp_path, bound_s=30)
    assert "FIFO" in run.text
    for source in ("/dev/zero", str(fifo)):
        run = doctor(["check", "--snapshot", source], cwd=tmp_path, bound_s=30)
        assert run.code == 2 and "not a regular file" in run.stderr
        run = doctor(["fleet", source], cwd=tmp_path, bound_s=30)
        assert run.code == 2 and "not a regular file" in run.stderr


def test_hostile_snapshots_are_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "big.json").write_text('{"schema": ' + "1" * 5000 + "}")
    for name in ("deep.json", "big.json"):
        run = doctor(["check", "--snapshot", name], cwd=tmp_path, bound_s=30)
        assert run.code == 2
        assert name in run.stderr and "cannot be read" in run.stderr


def test_model_folder_hostile_json_and_headers(tmp_path: Path) -> None:
    """config.json 3000 deep, a header whose __metadata__ nests deep, a 5000-digit dimension: findings."""
    model = build_model(tmp_path / "model")
    (model / "config.json").write_text('{"a": ' + "[" * 3000 + "]" * 3000 + "}")
    header = ('{"__metadata__": ' + "[" * 3000 + "]" * 3000 + "}").encode()
    (model / "deep.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    big = ('{"w": {"dtype": "F16", "shape": [' + "9" * 5000 + '], "data_offsets": [0, 2]}}').encode()
    (model / "big.safetensors").write_bytes(struct.pack("<Q", len(big)) + big + b"\0\0")
    before = tree_state(model)
    run = doctor(["check", "--no-smoke", "--only", "weights.*", "--model", str(model)], cwd=tmp_path, bound_s=40)
    assert run.code == 1
    assert "config.json" in run.text
    assert tree_state(model) == before


def test_alias_bomb_pack_is_refused_fast(tmp_path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(8):
        prev, cur = chr(97 + i), chr(98 + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    run = doctor([*CONFIG_ONLY, "--pack", "bomb.yaml"], cwd=tmp_path, bound_s=20, memory=512 << 20)
    assert run.code == 2 and "alias" in run.stderr


def test_quadratic_inputs_stay_linear(tmp_path: Path) -> None:
    """``${`` x 20000 (40 KB) took 32 s and 4.8 GB; now a bounded report in seconds."""
    (tmp_path / "dollar.yaml").write_text("a: " + "${" * 20_000 + "\n")
    run = doctor([*CONFIG_ONLY, "--config", "dollar.yaml"], cwd=tmp_path, bound_s=20, memory=512 << 20)
    assert run.code == 1
    assert len(run.stdout) < 200_000


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--smoke-timeout", "nan"], {}),
        (["--smoke-timeout", "inf"], {}),
        (["--endpoint-concurrency", str(10**20)], {}),
    ],
)
def test_bad_numbers_are_usage_errors(tmp_path: Path, args: list[str], env: dict[str, str]) -> None:
    run = doctor([*CONFIG_ONLY, *args], cwd=tmp_path, env=env, bound_s=20)
    assert run.code == 2


def test_columns_is_clamped(tmp_path: Path) -> None:
    for columns in (str(10**19), str(10**9), "9" * 5000):
        run = doctor([*CONFIG_ONLY], cwd=tmp_path, env={"COLUMNS": columns}, bound_s=20)
        assert run.code in (0, 1)
        assert max(len(line) for line in run.text.splitlines()) <= 500


def test_unlucky_surroundings(tmp_path: Path) -> None:
    """Deleted working directory, stdout closed, stdout /dev/full: a clear line, exit 1 or 2."""
    gone = tmp_path / "gone"
    gone.mkdir()
    script = f"cd {gone} && rmdir {gone} && exec {sys.executable} -m autoglm_doctor check --no-smoke"
    done = subprocess.run(["/bin/sh", "-c", script], capture_output=True, timeout=30)  # noqa: S603
    assert done.returncode == 2 and b"working directory" in done.stderr and b"Traceback" not in done.stderr
    run = doctor([*CONFIG_ONLY], cwd=tmp_path, stdout=None, shell_redirect=">&-", bound_s=20)
    assert run.code == 1 and "stdout is closed" in run.stderr
    run = doctor([*CONFIG_ONLY], cwd=tmp_path, stdout=None, shell_redirect=">/dev/full", bound_s=20)
    assert run.code == 1 and "No space left" in run.stderr


def test_probe_cannot_hold_the_run(tmp_path: Path) -> None:
    """A target that leaves ``setsid sleep 150`` holding its stdout: the run ends at once, nothing left."""
    python = fake_interpreter(tmp_path / "python", "setsid sleep 150 &\nexit 0")
    run = doctor([*CONFIG_ONLY, "--python", str(python)], cwd=tmp_path, bound_s=20)
    assert run.seconds < 15


def test_deep_probe_answer(tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "answer.json").write_text(deep)
    python = fake_interpreter(tmp_path / "python", f"cat >/dev/null; cat {tmp_path / 'answer.json'}")
    run = doctor(["check", "--no-smoke", "--python", str(python)], cwd=tmp_path, bound_s=30)
    assert run.code == 1
    assert "cannot be read" in run.text


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_kills_every_child(tmp_path: Path, signum: int) -> None:
    """SIGINT or SIGTERM while the probe runs: exit 130 and the probe's whole group is gone."""
    python = fake_interpreter(tmp_path / "python", "sleep 100 & sleep 100\n")

    def interrupt(proc: subprocess.Popen[bytes]) -> None:
        time.sleep(2.0)
        proc.send_signal(signum)

    run = doctor(["check", "--no-smoke", "--python", str(python)], cwd=tmp_path, during=interrupt, bound_s=30)
    assert run.code == 130
    assert "interrupted" in run.stderr


def test_probe_writes_no_bytecode_into_the_target(tmp_path: Path) -> None:
    """A venv without bytecode and a .pth hook: no __pycache__ appears (PYTHONDONTWRITEBYTECODE unset)."""
    venv = make_venv(tmp_path / "venv")
    (venv.site_packages / "hook_mod.py").write_text("VALUE = 1\n")
    (venv.site_packages / "hook.pth").write_text("import hook_mod\n")
    before = tree_state(venv.root)
    args = ["check", "--no-smoke", "--python", str(venv.python), "--pack", "open-autoglm"]
    run = doctor(args, cwd=tmp_path, bound_s=60)
    assert run.code in (0, 1)
    after = tree_state(venv.root)
    assert after == before, sorted(set(after) ^ set(before))[:10]


def test_output_writes_only_regular_files(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("model_path: /m\n")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target in (str(fifo), "/dev/null", str(config), str(tmp_path)):
        run = doctor([*CONFIG_ONLY, "--config", str(config), "--output", target], cwd=tmp_path, bound_s=20)
        assert run.code == 2, target
    for target in (str(fifo), "/dev/null"):
        run = doctor([*CONFIG_ONLY, "--fix", "--force", "--fix-output", target], cwd=tmp_path, bound_s=20)
        assert run.code == 2, target
    assert fifo.is_fifo() and config.read_text() == "model_path: /m\n"
    real = tmp_path / "real.txt"
    real.write_text("old")
    (tmp_path / "link.txt").symlink_to(real)
    run = doctor([*CONFIG_ONLY, "--output", "link.txt"], cwd=tmp_path, bound_s=20)
    assert (tmp_path / "link.txt").is_symlink() and real.read_text() != "old"


def test_verify_hashes_stays_inside_the_model_folder(tmp_path: Path) -> None:
    model = build_model(tmp_path / "model")
    outside = tmp_path / "shadow"
    outside.write_text("root:secret-hash:1:0:99999:7:::\n")
    import hashlib

    real = hashlib.sha256(outside.read_bytes()).hexdigest()
    (model / "SHA256SUMS").write_text(f"{'0' * 64}  {outside}\n{'0' * 64}  ../shadow\n")
    run = doctor(
        ["check", "--no-smoke", "--only", "weights.*", "--verify-hashes", "--model", str(model), "--format", "json"],
        cwd=tmp_path,
        bound_s=40,
    )
    assert real not in run.text
    assert run.text.count("outside the model folder") >= 2


def test_fix_command_quotes_file_names(tmp_path: Path) -> None:
    name = "$(touch PWNED).yaml"
    (tmp_path / name).write_bytes(b"\xef\xbb\xbfmodel_path: /m\n")
    run = doctor([*CONFIG_ONLY, "--config", name, "--format", "json"], cwd=tmp_path, bound_s=20)
    fixes = [f["fix"] for r in json.loads(run.stdout)["results"] for f in r["findings"] if "sed" in f.get("fix", "")]
    assert fixes and all("'$(touch PWNED).yaml'" in fix for fix in fixes)
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(
    ("body", "code"),
    [("yes adb", "devices.adb-failed"), ("setsid sleep 150 &\nsleep 150", "devices.adb-timeout")],
    ids=["flood", "hang-with-a-setsid-grandchild"],
)
def test_adb_flood_and_hang_through_the_cli(tmp_path: Path, body: str, code: str) -> None:
    """An adb that floods its output or hangs (a setsid grandchild holding the pipe): bounded, reported, gone."""
    tools = tmp_path / "bin"
    tools.mkdir()
    fake_interpreter(tools / "adb", body)
    run = doctor(
        ["check", "--no-smoke", "--pack", "open-autoglm-phone", "--only", "devices.adb", "--format", "json"],
        cwd=tmp_path,
        env={"PATH": f"{tools}{os.pathsep}{os.environ['PATH']}", "PHONE_AGENT_DEVICE_TYPE": "adb"},
        bound_s=30,  # adb's deadline is 5 s; the issue measured 120 s for the hang
    )
    assert run.code == 1
    (adb,) = json.loads(run.text)["results"]
    assert adb["status"] == "fail" and code in [f["code"] for f in adb["findings"]], adb
    assert len(run.stdout) < 100_000  # the flood is not copied into the report


def test_smoke_test_never_imports_a_model_folders_json_py_through_the_cli(tmp_path: Path) -> None:
    """Run from the model folder, as a service often is: its json.py is not imported by the smoke child."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}\n')
    (folder / "json.py").write_text(f"open({str(tmp_path / 'PWNED')!r}, 'w').write('x')\nimport sys; sys.exit(7)\n")
    before = tree_state(folder)
    run = doctor(
        ["check", "--python", sys.executable, "--model", ".", "--only", "smoke.*", "--format", "json"],
        cwd=folder,
        bound_s=300,
        memory=16 << 30,  # the smoke child loads torch
        console_script=True,
    )
    assert run.code == 1  # the folder holds no weights: the smoke test fails, and says why
    (smoke,) = json.loads(run.text)["results"]
    assert "smoke.load-failed" in [f["code"] for f in smoke["findings"]], smoke  # the child ran and tried
    assert not (tmp_path / "PWNED").exists()
    assert tree_state(folder) == before  # nothing written, no __pycache__ either


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_a_real_smoke_test_kills_the_child(tmp_path: Path, signum: int) -> None:
    """Ctrl-C or SIGTERM while the smoke child (a real transformers load) runs: exit 130, no process left.

    The model's own tokenizer code (allowed by the config and --allow-remote-code) says when it
    runs and then takes its time, so the signal lands while the child is loading.
    """
    folder = tmp_path / "model"
    folder.mkdir()
    started = tmp_path / "started"
    (folder / "config.json").write_text('{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}\n')
    (folder / "tokenizer_config.json").write_text('{"auto_map": {"AutoTokenizer": ["tokenization_slow.Slow", null]}}')
    (folder / "tokenization_slow.py").write_text(f"import time\nopen({str(started)!r}, 'w').close()\ntime.sleep(120)\n")
    config = tmp_path / "autoglm.yaml"
    config.write_text("model:\n  model_path: ./model\n  device: cpu\n  trust_remote_code: true\n")
    before = tree_state(folder), config.read_bytes()

    def interrupt(proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 120
        while not started.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        if started.exists():  # else the run ends on its own and the assertions below say so
            proc.send_signal(signum)

    run = doctor(
        ["check", "--python", sys.executable, "--config", str(config), "--only", "smoke.*", "--allow-remote-code"],
        cwd=tmp_path,
        during=interrupt,
        bound_s=150,
        memory=16 << 30,  # the smoke child loads torch
        console_script=True,
    )
    assert started.exists(), "the smoke child never reached the model's code"
    assert run.code == 130
    assert "interrupted" in run.stderr
    assert (tree_state(folder), config.read_bytes()) == before  # the model folder and the config untouched
