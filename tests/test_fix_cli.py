"""check --fix through the command line: never over an existing file, atomic --force, --verify with pip.

Every test here runs offline: pip reads no configuration and, unless a test offers the wheelhouse,
has no index (so the file is the plan's own pins and ranges, under a "NOT A LOCK" header); uv is
kept off PATH so pip is the resolver. tests/test_fix_install.py covers the locks themselves.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from autoglm_doctor.cli import main
from autoglm_doctor.probe.gpu import NVML_FIXTURE_ENV
from tests.helpers.gpu import fixture
from tests.helpers.venvs import Venv, make_venv
from tests.helpers.wheels import Wheel, build_wheelhouse, catalog, offline_pip_env, pip_install


@pytest.fixture(autouse=True)
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture("no-driver")))


@pytest.fixture(autouse=True)
def no_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """No index and no pip configuration; no uv on PATH."""
    for key in [k for k in os.environ if k.startswith(("PIP_", "UV_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and not (Path(p) / "uv").exists()]
    monkeypatch.setenv("PATH", os.pathsep.join(path))


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheelhouse(tmp_path_factory.mktemp("wheelhouse"))


@pytest.fixture
def offline_pip(monkeypatch: pytest.MonkeyPatch, wheelhouse: Path) -> Path:
    """pip (as --verify runs it) reads no config and finds wheels only in the wheelhouse."""
    for key in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(key)
    for key, value in offline_pip_env(wheelhouse).items():
        if key.startswith("PIP_"):
            monkeypatch.setenv(key, value)
    return wheelhouse


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check", "--no-smoke", "--format", "json", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_existing_file_is_left_byte_for_byte_without_force(
    healthy_venv: Venv, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = workdir / "requirements-autoglm.txt"
    original = b"# my own pins\r\ntorch==2.1.2\n\xff not even utf-8\n"
    target.write_bytes(original)
    os.utime(target, (1_000_000_000, 1_000_000_000))
    code, out, err = run(capsys, "--python", str(healthy_venv.python), "--fix")
    assert code == 2  # a refusal is a usage error (DESIGN's exit codes), not a failed check
    assert out == ""  # refused before any work: no report
    assert f"error: {target.name} already exists" in err
    assert "Pass --force to replace it" in err
    assert target.read_bytes() == original
    assert target.stat().st_mtime == 1_000_000_000
    assert sorted(p.name for p in workdir.iterdir()) == [target.name]  # no temporary file left behind


def test_force_replaces_atomically(healthy_venv: Venv, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = workdir / "pins.txt"
    target.write_text("old\n", encoding="utf-8")
    old_inode = target.stat().st_ino
    with target.open(encoding="utf-8") as reader:  # a reader of the old file keeps the old file whole
        code, out, err = run(
            capsys, "--python", str(healthy_venv.python), "--fix", "--fix-output", str(target), "--force"
        )
        assert reader.read() == "old\n"
    assert code == 0
    assert json.loads(out)["status"] in ("pass", "warn")  # stdout holds the report only
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# Pinned requirements for the open-autoglm deployment")
    assert "\ntransformers==4.35.2\n" in text
    assert target.stat().st_ino != old_inode  # renamed into place, not rewritten in place
    assert sorted(p.name for p in workdir.iterdir()) == ["pins.txt"]
    assert f"--fix: wrote {target}" in err


def test_new_file_is_written_and_exit_code_is_the_reports(
    healthy_venv: Venv, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--python", str(healthy_venv.python), "--fix")
    assert code == 0
    assert (workdir / "requirements-autoglm.txt").is_file()
    assert "Nothing was installed" in err
    for folder in healthy_venv.site_packages.glob("fastapi*"):
        shutil.rmtree(folder)
    code, out, err = run(capsys, "--python", str(healthy_venv.python), "--fix", "--fix-output", "second.txt")
    assert code == 1  # the report fails (fastapi missing); writing the fix does not change that
    assert "fastapi  # not installed: required by the open-autoglm pack" in (workdir / "second.txt").read_text()


@pytest.mark.parametrize(
    "flag",
    [
        ["--force"],
        ["--verify"],
        ["--fix-output", "x.txt"],
        ["--fix-format", "constraints"],
        ["--fix-format", "pylock"],
        ["--index-url", "http://127.0.0.1:1/simple"],
        ["--extra-index-url", "http://127.0.0.1:1/simple"],
        ["--find-links", "wheels"],
        ["--no-index"],
    ],
)
def test_fix_options_without_fix_are_usage_errors(
    flag: list[str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *flag)
    assert code == 2
    assert "only work(s) with --fix" in err
    assert list(workdir.iterdir()) == []


def test_unsatisfiable_constraints_are_named_and_nothing_is_written(
    healthy_venv: Venv, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = workdir / "pack.yaml"
    pack.write_text("pack: future\npython:\n  range: '>=3.8'\npackages:\n  - name: torch\n    spec: '>=9'\n")
    code, out, err = run(capsys, "--python", str(healthy_venv.python), "--pack", str(pack), "--fix")
    assert code == 1
    assert "--fix: no requirements file satisfies every constraint: torch>=9 (pack future) and the torch builds" in err
    assert not (workdir / "requirements-autoglm.txt").exists()


@pytest.mark.slow
def test_verify_resolves_with_the_doctors_pip_for_a_venv_without_pip(
    healthy_venv: Venv, workdir: Path, offline_pip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--python", str(healthy_venv.python), "--fix", "--verify")
    assert code == 0, err
    # No index option given: the resolver follows the target's pip configuration (here PIP_FIND_LINKS).
    assert (workdir / "requirements-autoglm.txt").read_text().startswith("# Locked requirements")
    assert f"{healthy_venv.python} has no pip: resolved with the doctor's own pip" in err
    assert "pip resolves requirements-autoglm.txt: 12 distributions would be installed" in err


@pytest.mark.slow
def test_verify_reports_pips_conflict(
    healthy_venv: Venv,
    workdir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A wheelhouse whose transformers 4.35.2 wants a tokenizers the file's pin excludes.
    odd = [w for w in catalog() if (w.name, w.version) != ("transformers", "4.35.2")]
    odd.append(Wheel("transformers", "4.35.2", ("tokenizers>=0.16",)))
    house = build_wheelhouse(tmp_path / "odd", odd)
    for key in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(key)
    for key, value in offline_pip_env(house).items():
        if key.startswith("PIP_"):
            monkeypatch.setenv(key, value)
    code, out, err = run(capsys, "--python", str(healthy_venv.python), "--fix", "--verify")
    assert code == 1  # the report passes, but the file does not resolve
    assert json.loads(out)["status"] != "fail"
    assert "--verify:" in err and "pip cannot resolve requirements-autoglm.txt" in err
    assert "conflict is caused by" in err
    assert "tokenizers==0.15.0" in err


@pytest.mark.slow
def test_constraints_file_is_accepted_by_pip(
    healthy_venv: Venv, workdir: Path, offline_pip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "--python", str(healthy_venv.python), "--fix", "--fix-format", "constraints", "--fix-output", "c.txt"
    )
    assert code == 0, err
    constraints = workdir / "c.txt"
    assert "\n--extra-index-url" not in constraints.read_text()
    fresh = make_venv(workdir.parent / "fresh")
    done = pip_install(fresh.python, offline_pip, "-c", str(constraints), "torch", "transformers", "fastapi", "uvicorn")
    assert done.returncode == 0, done.stdout + done.stderr
    installed = {p.name for p in fresh.site_packages.glob("*.dist-info")}
    assert {"torch-2.1.2+cpu.dist-info", "transformers-4.35.2.dist-info", "tokenizers-0.15.0.dist-info"} <= installed


def test_snapshot_of_another_machine_can_be_fixed_here(
    healthy_venv: Venv, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["snapshot", "--python", str(healthy_venv.python), "-o", "node.json"]) == 0
    capsys.readouterr()
    code, out, err = run(capsys, "--snapshot", "node.json", "--fix")
    assert code == 0
    assert "torch==2.1.2+cpu" in (workdir / "requirements-autoglm.txt").read_text()


def test_verify_uses_the_targets_own_pip_when_it_has_one() -> None:
    import sys

    from autoglm_doctor.fix.verify import pip_command

    command, note = pip_command(sys.executable)
    assert command == [sys.executable, "-m", "pip"]
    assert note == ""


def test_verify_subprocess_is_killed_at_its_timeout() -> None:
    import subprocess
    import sys
    import time

    from autoglm_doctor.fix.verify import _run

    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        _run([sys.executable, "-c", "import time; time.sleep(30)"], 0.5, None)
    assert time.monotonic() - started < 10


def test_unprobeable_target_writes_nothing(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--python", str(workdir / "nope" / "python"), "--fix", "--exit-zero")
    assert code == 1
    assert "--fix: the target interpreter could not be inspected" in err
    assert not (workdir / "requirements-autoglm.txt").exists()


def test_index_options_reach_the_resolver_through_the_command_line(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autoglm_doctor import check_command
    from autoglm_doctor.check_command import CheckArgs, _fix_options
    from autoglm_doctor.fix.command import FixOptions
    from autoglm_doctor.fix.resolve import IndexOptions

    seen: list[CheckArgs] = []
    monkeypatch.setattr(check_command, "run", lambda args: seen.append(args) or 0)
    argv = ["check", "--fix", "--index-url", "https://mirror/simple", "--extra-index-url", "https://a/simple"]
    argv += ["--extra-index-url=https://b/simple", "--find-links", "wheels", "--find-links", "more", "--no-index"]
    assert main(argv) == 0
    options = _fix_options(seen[0])
    assert isinstance(options, FixOptions)
    assert options.index == IndexOptions(
        index_url="https://mirror/simple",
        extra_index_urls=("https://a/simple", "https://b/simple"),
        find_links=("wheels", "more"),
        no_index=True,
    )
    assert options.index.args() == [
        "--no-index",
        "--index-url",
        "https://mirror/simple",
        "--extra-index-url",
        "https://a/simple",
        "--extra-index-url",
        "https://b/simple",
        "--find-links",
        "wheels",
        "--find-links",
        "more",
    ]


def test_snapshot_of_a_machine_that_is_not_here_gives_ranges_that_say_why(
    healthy_venv: Venv, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["snapshot", "--python", str(healthy_venv.python), "-o", "node.json"]) == 0
    capsys.readouterr()
    data = json.loads((workdir / "node.json").read_text())
    data["python"]["executable"] = "/opt/elsewhere/venv/bin/python"
    (workdir / "node.json").write_text(json.dumps(data))
    code, out, err = run(capsys, "--snapshot", "node.json", "--fix")
    assert code == 0  # not a failure: a lock needs the target's interpreter, which is on the node
    text = (workdir / "requirements-autoglm.txt").read_text()
    assert "# NOT A LOCK: the target interpreter /opt/elsewhere/venv/bin/python is not on this machine" in text
    assert "torch==2.1.2+cpu" in text
    assert "run check --fix on that machine for a lock" in err


def test_a_target_pip_without_dry_run_report_is_replaced_by_the_doctors(venv: Venv) -> None:
    from autoglm_doctor.fix.verify import pip_command

    # pip 21's `--version` line; it has no `install --dry-run --report` (22.2), so the doctor's pip resolves.
    venv.add("pip", "21.3.1", files={"pip/__main__.py": "print('pip 21.3.1 from /x/pip (python 3.11)')\n"})
    command, note = pip_command(str(venv.python))
    assert command[-2:] == ["--python", str(venv.python)]
    assert note.startswith(f"{venv.python}'s pip 21.3.1 is older than 22.2 (no install --dry-run --report)")


def _fix_packages(capsys: pytest.CaptureFixture[str], venv: Venv, workdir: Path) -> str:
    """``check --pack open-autoglm-server --only packages.* --fix --no-index`` on the venv; the file it wrote."""
    args = ["--python", str(venv.python), "--pack", "open-autoglm-server", "--only", "packages.*"]
    code, _, err = run(capsys, *args, "--fix", "--no-index")
    assert code == 1, err
    return (workdir / "requirements-autoglm.txt").read_text(encoding="utf-8")


def test_the_file_resolves_the_grouped_finding_by_its_code(
    venv: Venv, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --no-deps vLLM is one packages.dependencies-missing error: each line it adds says it resolves that."""
    from tests.helpers.engines import no_deps_vllm

    text = _fix_packages(capsys, no_deps_vllm(venv), workdir)
    added = [line for line in text.splitlines() if "vllm 0.12.0 requires " in line]
    assert len(added) >= 50
    assert all(line.endswith("; resolves packages.dependencies-missing") for line in added), added[:3]
    assert "packages.dependency-missing" not in text  # the report emitted no such finding
    assert "# Resolves: packages.dependencies-missing" in text
    assert "Not resolved by this file" not in text  # every requirement vLLM lacks is a line of the file


def test_a_grouped_finding_the_file_cannot_cover_stays_listed(
    venv: Venv, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pip is never pinned: a distribution missing pip among its requirements is not resolved by the file."""
    venv.add("tool", "1.0", ["pip>=23", "alpha>=1", "beta"])
    text = _fix_packages(capsys, venv, workdir)
    assert "alpha>=1  # not installed: tool 1.0 requires alpha>=1, which is not installed; resolves " in text
    assert "resolves packages.dependencies-missing" in text
    footer = text.split("# Not resolved by this file (do these by hand):", 1)[1]
    assert "#   packages.dependencies-missing: tool 1.0 is missing 3 of its 3 requirements" in footer
