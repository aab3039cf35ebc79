"""JUnit XML: parses, one testcase per check, the right elements and counts."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

from autoglm_doctor.model import CheckResult, Report, Status, error, warning
from autoglm_doctor.report import Format, RenderOptions, render
from tests.golden.sample import sample_report


def _parse(report: Report, **options: bool) -> ET.Element:
    text = render(report, Format.JUNIT, RenderOptions(**options))
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return ET.fromstring(text.encode("utf-8"))


def _case(root: ET.Element, check_id: str) -> ET.Element:
    cases = [c for c in root.iter("testcase") if c.get("name") == check_id]
    assert len(cases) == 1
    return cases[0]


def test_counts_and_one_testcase_per_check() -> None:
    root = _parse(sample_report())
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == (
        "6",
        "2",
        "1",
        "1",
    )
    # pytest's junit-10.xsd has no `skipped` attribute on <testsuites>
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("6", "2", "1", None)
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("python", "python.version"),
        ("python", "python.venv"),
        ("packages", "packages.required"),
        ("config", "config.syntax"),
        ("cuda", "cuda.driver"),
        ("cuda", "cuda.memory"),
    ]
    assert [c.get("time") for c in cases] == ["0.001", "0.001", "0.002", "0.001", "0.000", "0.004"]
    assert suite.get("timestamp") == "2026-01-02T03:04:05+00:00"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["tool_version"] == "0.1.0"
    assert props["environment.python"] == "3.11.7"


def test_failure_error_skipped_and_warnings() -> None:
    root = _parse(sample_report())
    assert list(_case(root, "python.version")) == []  # a pass is an empty testcase

    warn = _case(root, "python.venv")
    assert warn.find("failure") is None
    out = warn.findtext("system-out") or ""
    assert "[warning] python.system-interpreter" in out and "fix: /usr/bin/python3 -m venv .venv" in out

    failed = _case(root, "packages.required").find("failure")
    assert failed is not None
    assert failed.get("type") == "packages.missing"
    assert failed.get("message", "").startswith("accelerate is not installed")
    body = failed.text or ""
    assert "fix: /srv/app/.venv/bin/python -m pip install 'accelerate>=0.26.0'" in body
    assert "observed: not installed; expected: accelerate>=0.26.0" in body
    assert "[warning] packages.not-recommended" in body  # every finding of a failed check
    assert "packages.note" not in body  # info only with -v

    located = _case(root, "config.syntax").find("failure")
    assert located is not None and "at: deploy.yaml:5:1" in (located.text or "")
    assert located.get("message", "").endswith("(and 1 more)")

    crashed = _case(root, "cuda.memory")
    assert crashed.find("failure") is None
    err = crashed.find("error")
    assert err is not None and err.get("type") == "check.crashed"
    assert "Traceback" not in (err.text or "")

    skipped = _case(root, "cuda.driver").find("skipped")
    assert skipped is not None and skipped.get("message") == "GPU facts were not gathered"


def test_verbose_adds_traceback_and_info() -> None:
    root = _parse(sample_report(), verbose=True)
    assert "ZeroDivisionError" in (_case(root, "cuda.memory").findtext("error") or "")
    assert "Traceback (most recent call last)" in (_case(root, "cuda.memory").findtext("error") or "")
    assert "python.not-recommended" in (_case(root, "python.version").findtext("system-out") or "")


def test_strict_turns_warnings_into_failures() -> None:
    root = _parse(sample_report(), strict=True)
    assert root.get("failures") == "3"
    failure = _case(root, "python.venv").find("failure")
    assert failure is not None and failure.get("type") == "python.system-interpreter"


def test_hostile_text_is_escaped_and_still_parses() -> None:
    nasty = "a <b> & \"c\" 'd' ]]> \x1b[31mred\x1b[0m \x00 nul \ud800 \n second line"
    result = CheckResult(
        id="config.values",
        title="Config <values> & more",
        category="con&fig",
        status=Status.FAIL,
        findings=(error("config.bad", nasty, fix="echo '<&>'"), warning("config.w", nasty)),
    )
    root = _parse(Report(results=(result,), environment={"python": "<3>"}, created="", tool_version="0.1.0"))
    case = _case(root, "config.values")
    assert case.get("classname") == "con&fig"
    failure = case.find("failure")
    assert failure is not None
    # control characters from inspected text are shown as escapes (textsafe), never passed on
    assert failure.get("message", "").startswith(
        "a <b> & \"c\" 'd' ]]> \\x1b[31mred\\x1b[0m \\x00 nul \\ud800 \n second line"
    )
    assert "echo '<&>'" in (failure.text or "")
    assert root.get("failures") == "1"


def test_empty_report_is_valid_xml() -> None:
    root = _parse(Report(results=()))
    assert root.get("tests") == "0"
    assert root.find("testsuite") is not None


def test_every_status_maps_to_one_element() -> None:
    base = sample_report()
    for status, tag in [(Status.FAIL, "failure"), (Status.ERROR, "error"), (Status.SKIP, "skipped")]:
        result = dataclasses.replace(base.results[0], status=status)
        root = _parse(Report(results=(result,)))
        assert [child.tag for child in _case(root, "python.version")] == [tag]
