"""The reporters through ``autoglm-doctor check``: exit codes, --output, colour, stdout purity.

Reports are made deterministic by evaluating a hand-built snapshot (``--snapshot``) against a
small test pack (``--pack``), restricted to the python checks.
"""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from autoglm_doctor.cli import main
from autoglm_doctor.probe.snapshot import PythonFacts, Snapshot

PACK = """\
pack: report-test
description: "a pack for the reporter tests"
python:
  range: ">=3.10"
packages: []
"""


def _write_snapshot(path: Path, *, version: str = "3.11.7", env_kind: str = "venv") -> Path:
    snap = Snapshot(
        python=PythonFacts(
            version=version,
            implementation="cpython",
            executable="/srv/app/.venv/bin/python" if env_kind != "system" else "/usr/bin/python3",
            prefix="/srv/app/.venv" if env_kind != "system" else "/usr",
            base_prefix="/usr",
            env_kind=env_kind,
            platform="linux",
            platform_full="Linux-6.1.0-x86_64-with-glibc2.36",
        ),
        tool_version="0.1.0",
        created="2026-01-02T03:04:05+00:00",
    )
    path.write_text(snap.to_json(), encoding="utf-8")
    return path


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    path = tmp_path / "pack.yaml"
    path.write_text(PACK, encoding="utf-8")
    return path


@pytest.fixture
def healthy(tmp_path: Path) -> Path:
    return _write_snapshot(tmp_path / "healthy.json")


@pytest.fixture
def warning_only(tmp_path: Path) -> Path:
    """The system interpreter: python.venv warns, nothing fails."""
    return _write_snapshot(tmp_path / "warn.json", env_kind="system")


@pytest.fixture
def failing(tmp_path: Path) -> Path:
    """Python 3.9 against a pack that needs >=3.10: python.version fails."""
    return _write_snapshot(tmp_path / "fail.json", version="3.9.18")


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "GITHUB_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)


def _check(snapshot: Path, pack: Path, *args: str) -> int:
    return main(["check", "--snapshot", str(snapshot), "--pack", str(pack), "--only", "python.*", *args])


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    out = capsys.readouterr().out
    data: dict[str, object] = json.loads(out)
    return data


# --- exit codes -------------------------------------------------------------------------------


def test_exit_0_when_everything_passes(healthy: Path, pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _check(healthy, pack, "--format", "json") == 0
    report = _json(capsys)
    assert report["status"] == "pass"
    assert report["counts"] == {"pass": 2, "warn": 0, "fail": 0, "skip": 0, "error": 0}


def test_exit_0_with_only_warnings(warning_only: Path, pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _check(warning_only, pack, "--format", "json") == 0
    report = _json(capsys)
    assert report["status"] == "warn"
    assert report["counts"] == {"pass": 1, "warn": 1, "fail": 0, "skip": 0, "error": 0}


def test_strict_makes_warnings_exit_1(warning_only: Path, pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _check(warning_only, pack, "--format", "json", "--strict") == 1
    assert _json(capsys)["status"] == "fail"


def test_exit_1_with_a_fail(failing: Path, pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _check(failing, pack, "--format", "json") == 1
    report = _json(capsys)
    assert report["status"] == "fail"
    results = {r["id"]: r for r in report["results"]}  # type: ignore[attr-defined]
    assert results["python.version"]["status"] == "fail"
    assert results["python.version"]["findings"][0]["code"] == "python.outside-pack-range"


def test_exit_zero_gives_0_despite_a_fail(failing: Path, pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _check(failing, pack, "--format", "json", "--exit-zero") == 0
    assert _json(capsys)["status"] == "fail"  # the report still says so


def test_unknown_only_id_is_a_usage_error(healthy: Path, pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "--snapshot", str(healthy), "--pack", str(pack), "--only", "nosuch.check"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert "nosuch.check" in captured.err


def test_unknown_format_is_a_usage_error(healthy: Path, pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _check(healthy, pack, "--format", "yaml")
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert "yaml" in captured.err


@pytest.mark.parametrize("content", [None, "{not json", '{"schema": "something/else@1"}', "[]"])
def test_unreadable_snapshot_is_a_usage_error(
    tmp_path: Path, pack: Path, capsys: pytest.CaptureFixture[str], content: str | None
) -> None:
    path = tmp_path / "snap.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    code = _check(path, pack, "--format", "json")
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert "snap.json" in captured.err or "snapshot" in captured.err


# --- --output and stdout ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["rich", "json", "junit", "markdown", "github"])
def test_output_writes_the_file_and_nothing_to_stdout(
    fmt: str, failing: Path, pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / f"report.{fmt}"
    assert _check(failing, pack, "--format", fmt, "--output", str(target)) == 1
    assert capsys.readouterr().out == ""
    text = target.read_text(encoding="utf-8")
    assert "python.version" in text
    assert "\x1b[" not in text
    if fmt == "json":
        assert json.loads(text)["status"] == "fail"
    if fmt == "junit":
        assert ET.fromstring(text.encode("utf-8")).get("failures") == "1"
    assert not [p.name for p in tmp_path.glob(".report.*")]  # written atomically, no temporary file left


def test_each_format_through_the_cli(failing: Path, pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _check(failing, pack, "--format", "github") == 1
    github = capsys.readouterr().out.splitlines()
    assert github[0].startswith("::error title=python.version (python.outside-pack-range)::Python 3.9.18 is outside")
    assert "%0Afix: " in github[0]
    assert github[-1] == "autoglm-doctor FAIL (pack report-test): 2 checks: 1 passed, 1 failed · 1 error"

    assert _check(failing, pack, "--format", "markdown") == 1
    markdown = capsys.readouterr().out
    assert markdown.startswith("## autoglm-doctor: ❌ FAIL\n")
    assert "| `python.version` | Python version | ❌ fail | 1 error |" in markdown
    assert "| Python | 3.9.18 (`/srv/app/.venv/bin/python`) |" in markdown

    assert _check(failing, pack, "--format", "rich") == 1
    rich = capsys.readouterr().out
    assert "  ✗ Python version (python.version) " in rich
    assert "Summary: 2 checks: 1 passed, 1 failed · 1 error → FAIL" in rich


# --- colour ---------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    """A stdout that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _rich_on_terminal(snapshot: Path, pack: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    terminal = _Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    _check(snapshot, pack, "--format", "rich")
    return terminal.getvalue()


def test_colour_on_a_terminal(failing: Path, pack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "\x1b[" in _rich_on_terminal(failing, pack, monkeypatch)


def test_no_color_is_honoured(failing: Path, pack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    text = _rich_on_terminal(failing, pack, monkeypatch)
    assert "\x1b[" not in text
    assert "✗ Python version (python.version)" in text


def test_no_color_wins_over_force_color(failing: Path, pack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert "\x1b[" not in _rich_on_terminal(failing, pack, monkeypatch)


def test_no_colour_when_not_a_terminal(failing: Path, pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _check(failing, pack, "--format", "rich")
    assert "\x1b[" not in capsys.readouterr().out


def test_force_color_colours_a_pipe(
    failing: Path, pack: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    _check(failing, pack, "--format", "rich")
    assert "\x1b[" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["json", "junit", "markdown", "github"])
def test_machine_formats_never_coloured(fmt: str, failing: Path, pack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    terminal = _Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    _check(failing, pack, "--format", fmt)
    assert "\x1b[" not in terminal.getvalue()


def test_unwritable_output_is_a_usage_error(
    failing: Path, pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "no-such-folder" / "report.json"
    assert _check(failing, pack, "--format", "json", "--output", str(target)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "cannot write" in captured.err


def test_a_stdout_that_cannot_encode_the_symbols_still_gets_the_report(
    failing: Path, pack: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = io.BytesIO()
    ascii_stdout = io.TextIOWrapper(raw, encoding="ascii", newline="\n")
    monkeypatch.setattr("sys.stdout", ascii_stdout)
    assert _check(failing, pack, "--format", "rich") == 1
    ascii_stdout.flush()
    text = raw.getvalue().decode("ascii")
    assert "? Python version (python.version) " in text
    assert "Summary: 2 checks: 1 passed, 1 failed ? 1 error ? FAIL" in text
