"""Launch commands read as the shell and the engine's own argument parser read them (through the CLI)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor import engines
from autoglm_doctor.engines.base import FlagSpec
from autoglm_doctor.probe.gpu import NVML_FIXTURE_ENV
from tests.conftest import result
from tests.helpers.engines import install_release
from tests.helpers.gpu import fixture
from tests.helpers.served import CONFIG, build_autoglm_phone, write_launch
from tests.helpers.venvs import Venv

RunJson = Callable[..., tuple[int, dict[str, Any]]]
REPO = Path(__file__).resolve().parents[1]
SGLANG_COMMAND = """python3 -m sglang.launch_server \\
  --model-path {model} \\
  --served-model-name autoglm-phone-9b \\
  --trust-remote-code \\
  --mm-enable-dp-encoder \\
  --mm-process-config '{{"image": {{"max_pixels": 5000000}}}}' \\
  --context-length 25480 \\
  --port 30000
"""


def _values(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in result(report, "config.values")["findings"] if f["severity"] != "info"]


def _launch_codes(report: dict[str, Any]) -> list[str]:
    return [f["code"] for f in _values(report)]


@pytest.fixture
def model(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """AutoGLM-Phone-9B's folder (headers only) on a host with one H100."""
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture("h100-80gb")))
    return build_autoglm_phone(workdir / "AutoGLM-Phone-9B")


def _check(run_json: RunJson, config: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    return run_json("--pack", "open-autoglm-server", "--config", str(config), "--only", "config.*", *extra)


def test_a_typod_flag_is_an_error_at_its_line_and_column_naming_the_real_flag(
    workdir: Path, model: Path, run_json: RunJson
) -> None:
    launch = write_launch(workdir, model, gpu_memory_utilisation="0.95")
    code, report = _check(run_json, launch)
    assert code == 1
    typo = next(f for f in _values(report) if f["code"] == "config.launch-unknown-flag")
    assert typo["severity"] == "error"
    assert "unrecognized arguments: --gpu-memory-utilisation 0.95" in typo["message"]
    assert "did you mean --gpu-memory-utilization?" in typo["message"]
    line = launch.read_text().splitlines().index(" --gpu-memory-utilisation 0.95 \\") + 1
    assert typo["location"] == {"file": str(launch), "line": line, "column": 2}
    assert typo["fix"] == "write --gpu-memory-utilization"
    # and the README command itself, every flag real, gives no finding from the engine's reading
    code, report = _check(run_json, write_launch(workdir, model, name="readme.sh"))
    assert [c for c in _launch_codes(report) if c.startswith("config.launch-")] == []
    note = next(f for f in result(report, "config.values")["findings"] if f["code"] == "config.launch-definitions")
    assert "vLLM 0.34.0" in note["message"] and "no version is installed or named" in note["message"]


def _valid_value(spec: FlagSpec) -> list[str]:
    """Words that the engine accepts for this flag."""
    if not spec.takes_value:
        return []
    if spec.choices:
        return [spec.choices[-1] if spec.choices[-1] != "None" else spec.choices[0]]
    low = spec.bounds.get("ge", spec.bounds.get("gt", 0))
    if spec.kind in ("int", "token-count", "token-count-or-auto"):
        return [str(max(int(low) + 1, 1))]
    if spec.kind == "float":
        high = spec.bounds.get("le", spec.bounds.get("lt", 1.0))
        return [str((low + high) / 2 if high > low else low + 1)]
    if spec.kind in ("json", "json-plain", "dataclass-json", "json-or-str"):
        return ["{}"]
    return ["x"]


def _every_flag_command(program: str, flags: list[FlagSpec], model: Path) -> str:
    words = [program, "--port", "18000"] if "vllm" in program else [program]
    for spec in flags:
        name = spec.names[0]
        if name in ("--port", "--help", "--version", "--config", "-h") or spec.deprecated:
            continue
        words += [name, *_valid_value(spec)]
    words = [w.replace("{model}", str(model)) for w in words]
    return " \\\n  ".join(shlex.quote(w) for w in words) + "\n"


@pytest.mark.parametrize(
    ("engine", "version", "program"),
    [("vllm", "0.34.0", "vllm serve"), ("sglang", "0.5.23", "python3 -m sglang.launch_server")],
)
def test_every_flag_the_installed_engine_defines_gives_no_finding(
    workdir: Path, model: Path, run_json: RunJson, venv: Venv, engine: str, version: str, program: str
) -> None:
    install_release(venv, engine, version)
    if engine == "vllm":  # a locally patched vLLM: its own files are parsed, not the release's table
        arg_utils = venv.site_packages / "vllm" / "engine" / "arg_utils.py"
        arg_utils.write_text(arg_utils.read_text(encoding="utf-8") + "\n# patched here\n", encoding="utf-8")
    flags, problems = engines.get(engine).read_flags(
        {
            str(p.relative_to(venv.site_packages)): p.read_text(encoding="utf-8")
            for p in (venv.site_packages / engine).rglob("*.py")
        }
    )
    assert problems == [] and len(flags) > 250
    launch = workdir / "serve.sh"
    text = _every_flag_command(program, flags, model)
    launch.write_text(text.replace(program, program + (f" {model}" if engine == "vllm" else ""), 1))
    code, report = _check(run_json, launch, "--python", str(venv.python))
    note = next(f for f in result(report, "config.values")["findings"] if f["code"] == "config.launch-definitions")
    assert f"{engine} {version} is installed in the target" in note["message"], note
    identical = "byte-identical to the release's" in note["message"]
    assert identical == (engine == "sglang")
    engine_findings = [
        f for f in _values(report) if f["code"].startswith(("config.launch-unknown", "config.launch-bad"))
    ]
    assert engine_findings == []
    # the SGLang README spellings, the ones the old table called "not a key the service reads"
    if engine == "sglang":
        launch.write_text(SGLANG_COMMAND.format(model=model))
        code, report = _check(run_json, launch, "--python", str(venv.python))
        assert _launch_codes(report) == [], _values(report)
        assert code == 0


def test_the_generated_tables_accept_every_flag_they_list(workdir: Path, model: Path, run_json: RunJson) -> None:
    """The same, with no engine installed: the newest tables of both engines."""
    for engine, program in (("vllm", "vllm serve"), ("sglang", "python3 -m sglang.launch_server")):
        line = engines.table_versions(engine)[-1]
        flags = [engines._spec(d) for d in engines.load_table(engine, line)["flags"]]
        launch = workdir / f"{engine}.sh"
        launch.write_text(_every_flag_command(program, flags, model))
        code, report = _check(run_json, launch)
        assert [
            f for f in _values(report) if f["code"].startswith(("config.launch-unknown", "config.launch-bad"))
        ] == []
    launch = workdir / "sglang-readme.sh"
    launch.write_text(SGLANG_COMMAND.format(model=model))
    code, report = _check(run_json, launch)
    assert code == 0 and _launch_codes(report) == []


def _finding(report: dict[str, Any], code: str) -> dict[str, Any]:
    return next(f for f in _values(report) if f["code"] == code)


def test_values_the_engine_rejects_quote_its_message_with_a_fix_it_accepts(
    workdir: Path, model: Path, run_json: RunJson
) -> None:
    code, report = _check(run_json, write_launch(workdir, model, limit_mm_per_prompt="image=10"))
    found = _finding(report, "config.launch-bad-value")
    assert code == 1 and "Value image=10 cannot be converted to <function loads>." in found["message"]
    assert found["fix"].startswith("--limit-mm-per-prompt '{\"image\":10}'")
    fixed = write_launch(workdir, model, name="fixed.sh", limit_mm_per_prompt="'{\"image\":10}'")
    assert _launch_codes(_check(run_json, fixed)[1]) == []
    # the shell strips unquoted JSON's quotes: vLLM gets {max_pixels:5000000}
    code, report = _check(run_json, write_launch(workdir, model, mm_processor_kwargs='{"max_pixels":5000000}'))
    found = _finding(report, "config.launch-bad-value")
    assert "Value {max_pixels:5000000} cannot be converted" in found["message"]
    assert found["fix"].startswith("--mm-processor-kwargs '{\"max_pixels\":5000000}'")


def test_tensor_parallel_must_divide_the_vision_heads_unless_data_mode(
    workdir: Path, model: Path, run_json: RunJson, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture("h100-80gb")))
    text = (workdir / "x").parent / "serve.sh"
    launch = write_launch(workdir, model, tensor_parallel_size="8")
    launch.write_text(launch.read_text().replace(" --mm-encoder-tp-mode data \\\n", ""))
    del text
    code, report = _check(run_json, launch)
    found = _finding(report, "config.launch-vision-tensor-parallel")
    assert "AssertionError: 12 is not divisible by 8" in found["message"]
    # one H100 here: data mode would still leave TP 8 without its GPUs (eight cards: test_tensor_parallel_fixes)
    assert found["fix"] == "--tensor-parallel-size 1"
    with_data = write_launch(workdir, model, name="data.sh", tensor_parallel_size="8")
    assert "config.launch-vision-tensor-parallel" not in _launch_codes(_check(run_json, with_data)[1])


def test_glm4v_in_float16_is_an_error_asked_for_or_reached_by_the_fallback(
    workdir: Path, model: Path, run_json: RunJson, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert CONFIG["model_type"] == "glm4v"
    code, report = _check(run_json, write_launch(workdir, model, dtype="float16"))
    found = _finding(report, "config.launch-float16-family")
    assert code == 1 and "!!!!!!!!" in found["message"] and "vllm-project/vllm#17154" in found["message"]
    assert found["fix"].startswith("--dtype bfloat16")
    assert "config.launch-float16-family" not in _launch_codes(
        _check(run_json, write_launch(workdir, model, name="bf16.sh", dtype="bfloat16"))[1]
    )
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture("t4")))
    code, report = run_json(
        "--pack",
        "open-autoglm-server",
        "--config",
        str(write_launch(workdir, model, name="t4.sh")),
        "--only",
        "config.*,cuda.memory",
    )
    found = _finding(report, "config.launch-float16-family")
    assert "Falling back to torch.float16" in found["message"] and "Tesla T4" in found["message"]
    assert found["fix"].startswith("use an Ampere or newer GPU")
    memory = json.dumps(result(report, "cuda.memory"))
    assert "refuses bfloat16" not in memory


HOSTILE = [
    {"max_model_len": "9" * 400},
    {"mm_processor_kwargs": "'max_pixels=²'"},
    {"mm_processor_kwargs": '\'{"max_pixels": "²"}\''},
    {"mm_processor_kwargs": '\'{"max_pixels": ' + "9" * 60 + "}'"},
    {"tensor_parallel_size": "0"},
    {"tensor_parallel_size": "-3"},
    {"tensor_parallel_size": "1e30"},
    {"tensor_parallel_size": "1" + "0" * 30},
    {"gpu_memory_utilization": "nan"},
    {"gpu_memory_utilization": "inf"},
    {"port": "99999999999"},
    {"max_num_seqs": "9" * 50},
]


@pytest.mark.parametrize("flags", HOSTILE, ids=lambda f: next(iter(f)) + "=" + next(iter(f.values()))[:12])
def test_hostile_launch_values_are_findings_never_a_crash_or_a_hang(
    workdir: Path, model: Path, flags: dict[str, str]
) -> None:
    launch = write_launch(workdir, model, **flags)
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "autoglm_doctor",
            "check",
            "--pack",
            "open-autoglm-server",
            "--config",
            str(launch),
            "--no-smoke",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=workdir,
        check=False,
    )
    assert time.monotonic() - started < 30
    assert done.returncode in (0, 1, 2), done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    assert [r["id"] for r in report["results"] if r["status"] == "error"] == []
    flag = "--" + next(iter(flags))
    named = [f for f in _values(report) if f["code"].startswith("config.launch-")]
    assert named and any(flag in f["message"] or flag.replace("_", "-") in f["message"] for f in named), named


def test_the_model_named_by_the_command_is_used_else_what_was_not_checked_is_said(
    workdir: Path, model: Path, run_json: RunJson
) -> None:
    """No --model: the command's own --model finds the folder; a model that is not here is named as unchecked."""
    code, report = _check(run_json, write_launch(workdir, model, max_model_len="131072"))
    assert "config.launch-exceeds-model-length" in _launch_codes(report)
    absent = write_launch(workdir, workdir / "not-here", name="absent.sh", max_model_len="131072")
    code, report = _check(run_json, absent)
    notes = {f["code"]: f for f in result(report, "config.values")["findings"]}
    assert "config.launch-exceeds-model-length" not in notes
    assert "were not checked against its config.json" in notes["config.launch-model-absent"]["message"]


def _docker_launch(
    run_json: RunJson, workdir: Path, model: Path, tag: str, flags: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The definitions note and the unknown-flag errors of `docker run vllm/vllm-openai:TAG --model M FLAGS`."""
    launch = workdir / "docker.sh"
    launch.write_text(f"docker run --gpus all vllm/vllm-openai:{tag} \\\n  --model {model} \\\n{flags}")
    code, report = _check(run_json, launch)
    note = next(f for f in result(report, "config.values")["findings"] if f["code"] == "config.launch-definitions")
    return note, [f for f in _values(report) if f["code"] == "config.launch-unknown-flag"]


def test_the_version_the_launch_file_names_picks_its_table(workdir: Path, model: Path, run_json: RunJson) -> None:
    """No engine installed: `vllm/vllm-openai:v0.12.0` in the command reads it against vLLM 0.12's flags."""
    flags = "  --disable-log-requests \\\n  --attention-backend FLASH_ATTN\n"
    note, unknown = _docker_launch(run_json, workdir, model, "v0.12.0", flags)
    assert "vLLM 0.12.0" in note["message"] and "vllm 0.12.0 is named in the launch file" in note["message"]
    assert [f["location"]["line"] for f in unknown] == [4]  # --attention-backend came later than 0.12
    assert "--attention-backend is not a flag of vLLM 0.12.0" in unknown[0]["message"]


def test_a_release_published_as_wheels_only_has_its_own_table(workdir: Path, model: Path, run_json: RunJson) -> None:
    """vLLM 0.15.1 has no source distribution: its table comes from the wheel's files, not 0.14's."""
    note, unknown = _docker_launch(
        run_json, workdir, model, "v0.15.1", "  --mm-encoder-only \\\n  --ssl-ciphers ECDHE\n"
    )
    assert "vLLM 0.15.1" in note["message"] and "vllm 0.15.1 is named in the launch file" in note["message"]
    assert "nearest older" not in note["message"]
    assert unknown == []  # two flags vLLM 0.15 added (0.14's table calls them unknown)


def test_tensor_parallel_must_split_or_replicate_the_kv_heads(workdir: Path, run_json: RunJson) -> None:
    config = json.loads(json.dumps(CONFIG))
    config["text_config"].update(num_attention_heads=24, num_key_value_heads=3)
    model = build_autoglm_phone(workdir / "kv3", config=config)
    code, report = _check(run_json, write_launch(workdir, model, tensor_parallel_size="2"))
    found = [f for f in _values(report) if "KV heads" in f["message"]]
    assert found and "'3 is not divisible by 2'" in found[0]["message"]
    assert found[0]["fix"] == "--tensor-parallel-size 1"
    # AutoGLM-Phone-9B: 2 KV heads, TP 8 replicates each 4 times, which vLLM accepts
    model = build_autoglm_phone(workdir / "phone")
    code, report = _check(run_json, write_launch(workdir, model, name="tp8.sh", tensor_parallel_size="8"))
    assert not [f for f in _values(report) if "KV heads" in f["message"]]


def test_a_yaml_of_engine_flags_is_read_by_the_same_definitions(workdir: Path, model: Path, run_json: RunJson) -> None:
    launch = workdir / "vllm.yaml"  # vLLM's own --config file: flag names as keys
    launch.write_text(
        f"model: {model}\ngpu-memory-utilisation: 0.9\nmax_model_len: 25480\ntrust-remote-code: true\n"
        "limit-mm-per-prompt: image=10\nmm-encoder-tp-mode: data\nserved-model-name: autoglm-phone-9b\n"
    )
    code, report = _check(run_json, launch)
    assert code == 1
    by_code = {f["code"]: f for f in _values(report)}
    typo = by_code["config.launch-unknown-flag"]
    assert typo["location"]["line"] == 2 and "did you mean --gpu-memory-utilization?" in typo["message"]
    assert by_code["config.launch-bad-value"]["location"]["line"] == 5
    assert sorted(by_code) == ["config.launch-bad-value", "config.launch-unknown-flag"]


def test_a_snapshot_keeps_the_installed_engines_definitions(
    workdir: Path, model: Path, run_json: RunJson, venv: Venv, capsys: pytest.CaptureFixture[str]
) -> None:
    """Made where vLLM is installed (patched: its own parse is kept), replayed where it is not."""
    import shutil

    from autoglm_doctor.cli import main

    install_release(venv, "vllm", "0.34.0")
    arg_utils = venv.site_packages / "vllm" / "engine" / "arg_utils.py"
    arg_utils.write_text(
        arg_utils.read_text(encoding="utf-8").replace('"--max-model-len"', '"--max-model-len", "--context-len"'),
        encoding="utf-8",
    )
    launch = write_launch(workdir, model, context_len="8192")
    saved = workdir / "snap.json"
    assert main(["snapshot", "--python", str(venv.python), "--config", str(launch), "-o", str(saved)]) == 0
    capsys.readouterr()
    kept = json.loads(saved.read_text())["engines"]["vllm"]
    assert kept["source"] == "installed" and kept["table"] == "" and len(kept["flags"]) > 250
    shutil.rmtree(venv.root)
    code, report = run_json("--snapshot", str(saved), "--pack", "open-autoglm-server", "--only", "config.values")
    note = next(f for f in result(report, "config.values")["findings"] if f["code"] == "config.launch-definitions")
    assert "vllm 0.34.0 is installed in the target" in note["message"]
    assert "config.launch-unknown-flag" not in _launch_codes(report)  # --context-len: this install's own alias


def test_a_script_around_the_command_is_not_read_as_its_flags(workdir: Path, model: Path, run_json: RunJson) -> None:
    """Other commands, redirections and a background '&' end the engine's command; CRLF continuations join."""
    script = workdir / "start.sh"
    script.write_text(
        "#!/bin/bash\nset -e\nexport CUDA_VISIBLE_DEVICES=0\n"
        f"nohup vllm serve {model} \\\n  --port 8000 --served-model-name autoglm-phone-9b \\\n"
        "  --limit-mm-per-prompt '{\"image\":10}' --max-model-len 25480 > /var/log/vllm.log 2>&1 &\n"
        'echo "started"\nsleep 5; tail -f /var/log/vllm.log | grep -m1 "Uvicorn running"\n'
    )
    code, report = _check(run_json, script)
    assert _launch_codes(report) == [], _values(report)
    crlf = workdir / "crlf.sh"
    crlf.write_bytes(
        f"vllm serve {model} \\\r\n  --served-model-name autoglm-phone-9b \\\r\n"
        "  --limit-mm-per-prompt '{\"image\":10}' \\\r\n  --max-model-lenght 25480\r\n".encode()
    )
    code, report = _check(run_json, crlf)
    (typo,) = [f for f in _values(report) if f["code"].startswith("config.launch-unknown")]
    assert typo["location"]["line"] == 4


def test_vllm_spellings_its_parser_accepts(workdir: Path, model: Path, run_json: RunJson) -> None:
    """-O3, -tp, --max_num_seqs=4, a JSON flag's dotted key, --no-X, a unique prefix (argparse's abbreviation)."""
    launch = workdir / "spellings.sh"
    launch.write_text(
        f"vllm serve {model} -O3 --served-model-name autoglm-phone-9b --limit-mm-per-prompt '{{\"image\":10}}' "
        "--max-model-len 8192 -tp 1 --max_num_seqs=4 --compilation-config.cudagraph_mode FULL "
        "--no-enable-prefix-caching --max-num-batched 4096\n"
    )
    code, report = _check(run_json, launch)
    assert [f for f in _values(report) if f["code"].startswith(("config.launch-unknown", "config.launch-bad"))] == []
