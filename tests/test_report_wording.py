"""The wording a tired engineer reads, through the CLI: each message says what is true of this input."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor.cli import main
from tests.conftest import result
from tests.helpers.model_folders import build_model, write_safetensors


def _rich(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    main(["check", "--no-smoke", *args])
    return capsys.readouterr().out


def test_port_out_of_range_is_not_explained_by_root(workdir: Path, run_json: Any) -> None:
    (workdir / "autoglm.yaml").write_text("model_path: /models/x\nport: 99999\n")
    _code, report = run_json("--only", "config.values")
    (finding,) = [f for f in result(report, "config.values")["findings"] if f["code"] == "config.out-of-range"]
    assert "99999" in finding["message"] and "root" not in finding["message"]
    (workdir / "autoglm.yaml").write_text("model_path: /models/x\nport: 80\n")
    _code, report = run_json("--only", "config.values")
    (warned,) = [f for f in result(report, "config.values")["findings"] if f["code"] == "config.not-recommended"]
    assert "ports below 1024 need root to bind" in warned["message"]  # the recommendation keeps its reason


def test_a_type_error_takes_the_right_article(workdir: Path, run_json: Any) -> None:
    (workdir / "autoglm.yaml").write_text("model_path: /models/x\nmodel_max_length: many\n")
    _code, report = run_json("--only", "config.values")
    fixes = [f["fix"] for f in result(report, "config.values")["findings"]]
    assert "write model_max_length as an int" in fixes


def test_duplicate_key_on_one_line(workdir: Path, run_json: Any) -> None:
    (workdir / "autoglm.yaml").write_text("{model_path: /m, port: 1, port: 2}\n")
    _code, report = run_json("--only", "config.syntax")
    messages = [f["message"] for f in result(report, "config.syntax")["findings"]]
    assert any("twice (both on line 1)" in m for m in messages), messages


def test_one_hidden_info_note_reads_in_the_singular(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = build_model(tmp_path / "m")
    text = _rich(capsys, "--model", str(model), "--only", "weights.path")  # one info note: where the weights are
    assert text.splitlines()[-1] == "1 info note hidden (-v shows it)"
    text = _rich(capsys, "--model", str(model), "--only", "weights.path,weights.files")
    assert text.splitlines()[-1] == "2 info notes hidden (-v shows them)"


def test_summary_counts_the_findings_it_shows(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "autoglm.yaml").write_text("model_path: /models/x\nport: 80\nhost: ${AUTOGLM_TEST_UNSET_HOST}\n")
    text = _rich(capsys, "--only", "config.*")
    assert "warning " in text and "error   " in text
    summary = next(line for line in text.splitlines() if line.startswith("Summary: "))
    assert "1 warning" in summary and "1 error" in summary and "0 warnings" not in summary
    assert summary.startswith("Summary: 4 checks: ")


def test_fix_commands_hold_only_the_command(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "autoglm.yaml").write_text("model_path: /models/x\nhost: ${AUTOGLM_TEST_UNSET_HOST}\n")
    lines = _rich(capsys, "--only", "config.env").splitlines()
    (at,) = [i for i, line in enumerate(lines) if line.lstrip().startswith("fix: ")]
    assert lines[at].strip() == "fix: export AUTOGLM_TEST_UNSET_HOST=..."
    assert lines[at + 1].strip() == "or give a default: ${AUTOGLM_TEST_UNSET_HOST:-VALUE}"


def test_a_shard_short_by_100_bytes_is_not_100_percent_there(tmp_path: Path, run_json: Any) -> None:
    folder = build_model(tmp_path / "m")
    shard = folder / "model.safetensors"
    write_safetensors(shard, {"model.embed_tokens.weight": ("BF16", [1024, 1024])}, sparse=True)
    os.truncate(shard, shard.stat().st_size - 100)
    _code, report = run_json("--model", str(folder), "--only", "weights.files")
    (finding,) = [f for f in result(report, "weights.files")["findings"] if f["code"] == "weights.truncated"]
    assert "100 bytes short, 99.99% of the data is there" in finding["message"]
    assert "100% of the data" not in finding["message"]
