"""The command line: list, explain, selection, packs and exit codes, through main()."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autoglm_doctor.cli import main
from tests.helpers.venvs import Venv

DESIGN_IDS = [
    "python.version",
    "python.venv",
    "packages.required",
    "packages.versions",
    "packages.conflicts",
    "packages.shadowing",
    "packages.abi",
]


def test_list_shows_every_builtin_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    ids = [c["id"] for c in data["checks"]]
    for check_id in DESIGN_IDS:
        assert check_id in ids
    assert all(c["title"] and c["decides"] and c["why"] and c["fix"] for c in data["checks"])


def test_list_rich(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "packages.conflicts  " in out or "packages.conflicts " in out
    assert "Dependencies consistent" in out


def test_explain(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "packages.conflicts"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("packages.conflicts: Dependencies consistent")
    assert "Decides:" in out and "Why:" in out and "Fix:" in out
    assert "NumPy 2" in out


def test_explain_unknown_id_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "packages.nope"]) == 2
    assert "unknown check id 'packages.nope'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--only", "packages.nope", "--only 'packages.nope' matches no check (did you mean packages."),
        ("--skip", "gpu.*", "--skip 'gpu.*' matches no check"),
    ],
)
def test_unknown_selection_is_usage_error(
    flag: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--no-smoke", flag, value]) == 2
    assert message in capsys.readouterr().err


def test_only_and_skip_globs(healthy_venv: Venv, workdir: Path, run_json) -> None:  # type: ignore[no-untyped-def]
    _, report = run_json("--python", str(healthy_venv.python), "--only", "packages.*", "--skip", "packages.shadowing")
    assert [r["id"] for r in report["results"]] == [
        "packages.required",
        "packages.versions",
        "packages.conflicts",
        "packages.abi",
    ]
    for result in report["results"]:
        assert result["duration_ms"] >= 0


def test_bad_format_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--format", "xml"]) == 2
    assert "xml" in capsys.readouterr().err


def test_malformed_pack_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pack = tmp_path / "mine.yaml"
    pack.write_text("pack: mine\npackages:\n  - name: torch\n    spec: '>=1.13'\n  - name: numpy\n    spec: 'two'\n")
    assert main(["check", "--pack", str(pack), "--no-smoke"]) == 2
    assert f"{pack}:6: 'two' is not a version range" in capsys.readouterr().err


def test_pack_with_yaml_syntax_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pack = tmp_path / "mine.yaml"
    pack.write_text("pack: mine\npackages:\n  - name: [torch\n")
    assert main(["check", "--pack", str(pack), "--no-smoke"]) == 2
    assert f"{pack}:" in capsys.readouterr().err


def test_pack_refuses_python_tags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "ran"
    pack = tmp_path / "evil.yaml"
    pack.write_text(f"pack: !!python/object/apply:os.system ['touch {marker}']\n")
    assert main(["check", "--pack", str(pack), "--no-smoke"]) == 2
    assert not marker.exists()
    assert f"{pack}:1" in capsys.readouterr().err


def test_unknown_pack_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--pack", "no-such-pack"]) == 2
    assert "unknown pack 'no-such-pack' (built-in packs: open-autoglm" in capsys.readouterr().err


def test_custom_pack_is_applied(healthy_venv: Venv, workdir: Path, run_json) -> None:  # type: ignore[no-untyped-def]
    pack = workdir / "strict.yaml"
    pack.write_text("pack: strict\npython:\n  range: '>=3.99'\npackages:\n  - name: pandas\n    why: dataframes\n")
    code, report = run_json("--python", str(healthy_venv.python), "--pack", str(pack))
    by_id = {r["id"]: r for r in report["results"]}
    assert by_id["python.version"]["findings"][0]["code"] == "python.outside-pack-range"
    assert "pandas is not installed: dataframes" in by_id["packages.required"]["findings"][0]["message"]
    assert code == 1


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == "autoglm-doctor 0.1.0"


def test_python_m_entry_point_and_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "autoglm_doctor", "check", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0
    for flag in ("--python", "--only", "--skip", "--format", "--strict", "--exit-zero", "--snapshot"):
        assert flag in proc.stdout


def test_exit_zero_and_output_file(healthy_venv: Venv, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "torch.py").write_text("", encoding="utf-8")
    target = workdir / "report.json"
    args = ["check", "--no-smoke", "--python", str(healthy_venv.python), "--format", "json", "--output", str(target)]
    assert main(args) == 1
    assert main([*args, "--exit-zero"]) == 0
    assert capsys.readouterr().out == ""
    assert json.loads(target.read_text(encoding="utf-8"))["status"] == "fail"


def test_crashing_check_becomes_error_result(
    healthy_venv: Venv, workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import dataclasses

    from autoglm_doctor.checks import packages

    spec = packages.packages_versions.__autoglm_check__  # type: ignore[attr-defined]

    def boom(snap, ctx):  # type: ignore[no-untyped-def]
        raise KeyError("torch")

    monkeypatch.setattr(packages.packages_versions, "__autoglm_check__", dataclasses.replace(spec, func=boom))
    args = ["check", "--no-smoke", "--python", str(healthy_venv.python)]
    assert main([*args, "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    crashed = next(r for r in report["results"] if r["id"] == "packages.versions")
    assert crashed["status"] == "error"
    assert crashed["findings"][0]["message"] == "the check itself crashed: KeyError: 'torch'"
    assert next(r for r in report["results"] if r["id"] == "packages.conflicts")["status"] == "pass"
    main([*args, "-v", "--only", "packages.versions"])
    assert "Traceback (most recent call last)" in capsys.readouterr().out
