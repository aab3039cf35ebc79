"""Golden-file tests: every reporter's exact output for the fixed synthetic report.

Regenerate after an intended change: ``UPDATE_GOLDEN=1 pytest tests/test_report_golden.py``
(then review ``git diff tests/golden/``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autoglm_doctor.model import CheckResult, Report, Status, error
from autoglm_doctor.report import Format, RenderOptions, render
from tests.golden.sample import sample_report

GOLDEN = Path(__file__).parent / "golden"
CASES = {
    "rich.txt": (Format.RICH, RenderOptions(color=False, width=100)),
    "rich-verbose.txt": (Format.RICH, RenderOptions(color=False, width=100, verbose=True)),
    "rich-strict.txt": (Format.RICH, RenderOptions(color=False, width=100, strict=True)),
    "markdown.md": (Format.MARKDOWN, RenderOptions()),
    "markdown-verbose.md": (Format.MARKDOWN, RenderOptions(verbose=True)),
    "github.txt": (Format.GITHUB, RenderOptions()),
    "junit.xml": (Format.JUNIT, RenderOptions()),
    "report.json": (Format.JSON, RenderOptions()),
}


@pytest.fixture(autouse=True)
def _no_secrets_or_workspace(monkeypatch: pytest.MonkeyPatch) -> None:
    # The goldens must not depend on the environment the tests run in, nor on config secrets
    # that earlier tests registered with the redactor.
    monkeypatch.setattr("autoglm_doctor.redact._registered", set())
    for name in list(os.environ):
        if name.upper() in ("GITHUB_WORKSPACE",) or any(w in name.upper() for w in ("TOKEN", "KEY", "SECRET", "PASS")):
            monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_golden_file(name: str) -> None:
    fmt, options = CASES[name]
    text = render(sample_report(), fmt, options)
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8", newline="\n")
    assert path.is_file(), f"{path} is missing; run with UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs; UPDATE_GOLDEN=1 regenerates it (review the diff)"


def test_rich_plain_has_no_ansi_and_respects_width() -> None:
    text = render(sample_report(), Format.RICH, RenderOptions(color=False, width=100))
    assert "\x1b[" not in text
    check_lines = [line for line in text.splitlines() if line.startswith("  ") and " .." in line]
    assert len(check_lines) == len(sample_report().results)
    # The status words end in the same column: one scan down the right edge.
    assert {len(line) for line in check_lines} == {100}
    assert [line.split()[-1] for line in check_lines] == ["passed", "warning", "failed", "failed", "skipped", "error"]


def test_rich_colour_only_when_asked() -> None:
    coloured = render(sample_report(), Format.RICH, RenderOptions(color=True, width=100))
    plain = render(sample_report(), Format.RICH, RenderOptions(color=False, width=100))
    assert "\x1b[" in coloured
    assert "\x1b[" not in plain


def test_rich_groups_a_category_once_even_when_results_interleave() -> None:
    report = sample_report()
    python_first, *rest = report.results
    interleaved = type(report)(results=(*rest, python_first), tool_version="0.1.0")
    text = render(interleaved, Format.RICH, RenderOptions(width=100))
    headings = [line for line in text.splitlines() if line in ("python", "packages", "config", "cuda")]
    assert headings == ["python", "packages", "config", "cuda"]


def test_rich_durations_only_with_verbose() -> None:
    quiet = render(sample_report(), Format.RICH, RenderOptions(width=100))
    verbose = render(sample_report(), Format.RICH, RenderOptions(width=100, verbose=True))
    assert " ms" not in quiet
    assert "    3.5 ms" in verbose
    assert "Traceback (most recent call last)" in verbose
    assert "Traceback" not in quiet


def test_rich_prints_markup_like_text_verbatim() -> None:
    result = CheckResult(
        id="config.values",
        title="Values [bold]",
        category="config",
        status=Status.FAIL,
        findings=(error("config.x", "key [red]x[/red] :smile: is wrong", fix="echo '[/]'"),),
    )
    text = render(Report(results=(result,)), Format.RICH, RenderOptions(width=100, color=True))
    plain = render(Report(results=(result,)), Format.RICH, RenderOptions(width=100))
    assert "key [red]x[/red] :smile: is wrong" in plain
    assert "fix: echo '[/]'" in plain
    assert "Values [bold] (config.values)" in plain
    assert "[red]x[/red]" in text


def test_rich_long_titles_keep_a_short_leader_on_narrow_widths() -> None:
    result = CheckResult(id="x.y", title="t" * 80, category="x", status=Status.PASS)
    text = render(Report(results=(result,)), Format.RICH, RenderOptions(width=60))
    line = next(line for line in text.splitlines() if "(x.y)" in line)
    assert line.endswith("(x.y) ... passed")
