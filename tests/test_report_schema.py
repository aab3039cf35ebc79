"""The JSON report validates against the JSON Schema shipped in the package."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from autoglm_doctor.cli import main
from autoglm_doctor.model import Status
from autoglm_doctor.report import Format, RenderOptions, render
from autoglm_doctor.report.json_report import SCHEMA_ID, schema
from tests.golden.sample import sample_report

REPO_SCHEMA = Path(__file__).parents[1] / "src" / "autoglm_doctor" / "report" / "report.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    data = schema()
    jsonschema.Draft202012Validator.check_schema(data)
    return jsonschema.Draft202012Validator(data, format_checker=jsonschema.FormatChecker())


def _errors(validator: jsonschema.Draft202012Validator, doc: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]


def test_schema_is_the_file_in_the_repository_and_draft_2020_12() -> None:
    assert schema() == json.loads(REPO_SCHEMA.read_text(encoding="utf-8"))
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema()["properties"]["schema"]["const"] == SCHEMA_ID


@pytest.mark.parametrize("strict", [False, True])
def test_every_status_and_finding_shape_validates(validator: jsonschema.Draft202012Validator, strict: bool) -> None:
    report = sample_report()
    doc = json.loads(render(report, Format.JSON, RenderOptions(strict=strict)))
    assert _errors(validator, doc) == []
    # The sample really covers everything the schema describes.
    assert {r["status"] for r in doc["results"]} == {s.value for s in Status}
    findings = [f for r in doc["results"] for f in r["findings"]]
    assert {f["severity"] for f in findings} == {"error", "warning", "info"}
    locations = [f["location"] for f in findings if "location" in f]
    assert {frozenset(loc) for loc in locations} == {
        frozenset({"file"}),
        frozenset({"file", "line"}),
        frozenset({"file", "line", "column"}),
    }
    evidence = [frozenset(f["evidence"]) for f in findings if "evidence" in f]
    assert {frozenset({"observed"}), frozenset({"expected"}), frozenset({"observed", "expected"})} <= set(evidence)
    assert any("fix" not in f for f in findings) and any("fix" in f for f in findings)
    assert doc["counts"] == {"pass": 1, "warn": 1, "fail": 2, "skip": 1, "error": 1}


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d.update(extra=1), "extra top-level key"),
        (lambda d: d.update(schema="autoglm-doctor/report@2"), "wrong schema id"),
        (lambda d: d.update(status="skip"), "overall status skip"),
        (lambda d: d["counts"].pop("error"), "counts without error"),
        (lambda d: d["counts"].update(bogus=0), "extra count"),
        (lambda d: d["environment"].pop("platform"), "environment without platform"),
        (lambda d: d["results"][0].update(status="passed"), "result status passed"),
        (lambda d: d["results"][0].update(duration_ms="1"), "duration as a string"),
        (lambda d: d["results"][0].update(category="python"), "extra result key"),
        (lambda d: d["results"][1]["findings"][0].update(severity="fatal"), "unknown severity"),
        (lambda d: d["results"][1]["findings"][0].pop("code"), "finding without code"),
        (lambda d: d["results"][3]["findings"][0]["location"].update(line="5"), "line as a string"),
        (lambda d: d["results"][3]["findings"][0]["location"].update(path="x"), "extra location key"),
        (lambda d: d["results"][1]["findings"][0]["evidence"].update(seen="x"), "extra evidence key"),
        (lambda d: d.update(created="yesterday"), "created not ISO-8601"),
    ],
)
def test_schema_rejects_what_the_contract_does_not_allow(
    validator: jsonschema.Draft202012Validator, mutate: Any, where: str
) -> None:
    doc = json.loads(render(sample_report(), Format.JSON, RenderOptions()))
    broken = copy.deepcopy(doc)
    mutate(broken)
    assert _errors(validator, broken), f"schema accepted a report with {where}"


def test_real_check_run_prints_only_valid_json(
    validator: jsonschema.Draft202012Validator,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # capfd, not capsys: it also catches anything a subprocess (the probe) writes to fd 1.
    monkeypatch.chdir(tmp_path)
    for name in ("AUTOGLM_CONFIG", "MODEL_WEIGHT_PATH"):
        monkeypatch.delenv(name, raising=False)
    code = main(["check", "--no-smoke", "--format", "json"])
    captured = capfd.readouterr()
    out = captured.out
    assert out, f"nothing on stdout (exit {code}); stderr: {captured.err}"
    doc = json.loads(out)  # the whole of stdout is one JSON document
    assert out.startswith("{") and out.endswith("}\n")
    assert _errors(validator, doc) == []
    assert code == (1 if doc["status"] == "fail" else 0)
    ids = [r["id"] for r in doc["results"]]
    assert "python.version" in ids and "packages.required" in ids
    assert not any(i.startswith("smoke.") for i in ids)
    assert sum(doc["counts"].values()) == len(doc["results"])


def test_console_script_stdout_is_only_the_json(validator: jsonschema.Draft202012Validator, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("AUTOGLM_CONFIG", "MODEL_WEIGHT_PATH")}
    proc = subprocess.run(
        [sys.executable, "-m", "autoglm_doctor", "check", "--no-smoke", "--format", "json", "--only", "python.*"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(proc.stdout)
    assert _errors(validator, doc) == []
    assert [r["id"] for r in doc["results"]] == ["python.version", "python.venv"]
