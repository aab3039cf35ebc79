"""A multi-line excerpt in a finding's evidence keeps its caret under the column it marks."""

from __future__ import annotations

from autoglm_doctor.model import CheckResult, Location, Report, Status, error
from autoglm_doctor.report import Format, RenderOptions, render


def test_caret_stays_under_its_column() -> None:
    finding = error(
        "config.trailing-comma",
        "trailing comma",
        location=Location("deploy.json", 3, 14),
        observed='  "port": 8000,\n              ^',
        expected="no comma before }",
    )
    result = CheckResult("config.syntax", "Config file parses", "config", Status.FAIL, findings=(finding,))
    text = render(Report(results=(result,), tool_version="0.1.0", pack="p"), Format.RICH, RenderOptions(width=100))
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if "observed: " in line)
    start = lines[first].index("observed: ") + len("observed: ")
    assert lines[first][start:] == '  "port": 8000,'
    assert lines[first + 1].index("^") == start + 14
    assert lines[first + 2].strip() == "expected: no comma before }"
