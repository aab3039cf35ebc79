"""GitHub workflow-command annotations: levels, locations, escaping, summary."""

from __future__ import annotations

import pytest

from autoglm_doctor.model import CheckResult, Location, Report, Status, error, info, warning
from autoglm_doctor.report import Format, RenderOptions, render
from autoglm_doctor.report.github import annotation, escape_data, escape_property
from tests.golden.sample import sample_report


@pytest.fixture(autouse=True)
def _no_workspace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)


def _result(*findings: object, status: Status = Status.FAIL) -> CheckResult:
    return CheckResult(id="config.syntax", title="Config", category="config", status=status, findings=findings)  # type: ignore[arg-type]


def test_escaping_follows_the_runner() -> None:
    assert escape_data("100% done\r\nnext") == "100%25 done%0D%0Anext"
    assert escape_data("a:b,c") == "a:b,c"  # only properties escape : and ,
    assert escape_property("C:\\x, y%\n") == "C%3A\\x%2C y%25%0A"
    # % first, so an escape in the input is not decoded by GitHub
    assert escape_data("%0A") == "%250A"


def test_error_with_full_location_and_fix() -> None:
    finding = error(
        "config.tab-indent",
        "line 5: tab\nuse spaces",
        fix="sed -i 's/\\t/  /g' deploy.yaml",
        location=Location("conf/deploy,prod.yaml", 5, 3),
        observed="tab",
        expected="spaces",
    )
    line = annotation(_result(finding), finding)
    assert line == (
        "::error file=conf/deploy%2Cprod.yaml,line=5,col=3,title=config.syntax (config.tab-indent)::"
        "line 5: tab%0Ause spaces%0Aobserved: tab; expected: spaces%0Afix: sed -i 's/\\t/  /g' deploy.yaml"
    )
    assert "\n" not in line


def test_location_parts_only_when_present() -> None:
    no_location = warning("config.w", "plain")
    file_only = warning("config.w", "plain", location=Location("a.yaml"))
    no_column = warning("config.w", "plain", location=Location("a.yaml", 7))
    assert annotation(_result(no_location), no_location).startswith("::warning title=")
    assert annotation(_result(file_only), file_only).startswith("::warning file=a.yaml,title=")
    assert annotation(_result(no_column), no_column).startswith("::warning file=a.yaml,line=7,title=")


def test_title_property_is_escaped() -> None:
    finding = error("x:y,z", "m")
    result = CheckResult(id="plugins.a:b", title="t", category="plugins", status=Status.ERROR, findings=(finding,))
    assert annotation(result, finding).startswith("::error title=plugins.a%3Ab (x%3Ay%2Cz)::m")


def test_paths_inside_the_workspace_become_repository_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_WORKSPACE", "/home/runner/work/app/app")
    inside = error("config.bad", "m", location=Location("/home/runner/work/app/app/deploy/autoglm.yaml", 2))
    outside = error("config.bad", "m", location=Location("/etc/autoglm.yaml", 2))
    text = render(Report(results=(_result(inside, outside),)), Format.GITHUB, RenderOptions())
    assert "::error file=deploy/autoglm.yaml,line=2," in text
    assert "/etc/autoglm.yaml" not in text.split("::error title")[0]  # never as file=: GitHub cannot annotate it
    assert "::error title=config.syntax (config.bad)::/etc/autoglm.yaml:2: m" in text


def test_report_levels_and_summary() -> None:
    text = render(sample_report(), Format.GITHUB, RenderOptions())
    lines = text.splitlines()
    assert [line.split(" ", 1)[0] for line in lines[:-1]] == [
        "::warning",
        "::error",
        "::warning",
        "::error",
        "::error",
        "::error",
    ]
    summary = "6 checks: 1 passed, 1 warned, 2 failed, 1 skipped, 1 errored · 4 errors, 2 warnings"
    assert lines[-1] == f"autoglm-doctor FAIL (pack open-autoglm): {summary}"
    assert "GPU facts were not gathered" not in text  # skips are not annotations
    assert "::notice" not in text
    verbose = render(sample_report(), Format.GITHUB, RenderOptions(verbose=True)).splitlines()
    assert sum(line.startswith("::notice ") for line in verbose) == 2


def test_every_command_is_one_line() -> None:
    finding = info("x.y", "a\nb\r\nc")
    report = Report(results=(_result(finding, status=Status.PASS), _result(error("x.z", "::error::injected\n::x"))))
    text = render(report, Format.GITHUB, RenderOptions(verbose=True))
    lines = text.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("::notice title=config.syntax (x.y)::a%0Ab\\r%0Ac")  # \r shown (textsafe)
    assert lines[1].endswith("::::error::injected%0A::x")
