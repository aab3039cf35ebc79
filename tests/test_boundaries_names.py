"""Issue 23: inspected names with line feeds, workflow-command syntax or undecodable bytes, in every format."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from tests.helpers.hostile import doctor

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="file names with any byte but / and NUL")

FORMATS = ("github", "junit", "markdown", "rich", "json", "sarif")
CONFIG_ONLY = ["check", "--no-smoke", "--only", "config.*"]


def test_a_line_feed_in_a_file_name_starts_no_workflow_command(tmp_path: Path) -> None:
    """A config named ``a\\n::error file=x::INJECTED\\n.yaml`` put ``::error`` on its own line of --format github."""
    name = "a\n::error file=x::INJECTED\n.yaml"
    (tmp_path / name).write_text("model_path: /nope\n\tbad: 1\n")
    for fmt in FORMATS:
        run = doctor([*CONFIG_ONLY, "--config", name, "--format", fmt], cwd=tmp_path, bound_s=30)
        assert run.code == 1, (fmt, run.stderr)
        lines = run.text.splitlines()
        assert not any(line.lstrip().startswith("::error file=x") for line in lines), fmt
        if fmt != "github":  # no line a runner reads as a command at all
            assert not [line for line in lines if re.match(r"\s*::", line)], fmt
        if fmt == "github":  # one annotation, its file on one line, then the summary
            assert len(lines) == 2 and lines[0].startswith("::error file=a\\n%3A%3Aerror"), lines
        if fmt == "json":  # the data is kept as it is, JSON-escaped
            assert json.loads(run.stdout)["config"] == name


def test_undecodable_bytes_in_a_file_name_are_written_in_every_format(tmp_path: Path) -> None:
    """Surrogate bytes in a file name ended in exit 3 (UnicodeEncodeError) for sarif, json and markdown."""
    name = os.fsdecode(b"bad\xff.yaml")
    (tmp_path / name).write_text("model_path: /nope\n\tbad: 1\n")
    for fmt in FORMATS:
        out = tmp_path / f"report.{fmt}"
        run = doctor([*CONFIG_ONLY, "--config", name, "--format", fmt, "--output", str(out)], cwd=tmp_path, bound_s=30)
        assert run.code == 1, (fmt, run.stderr)
        text = out.read_text(encoding="utf-8")
        if fmt in ("json", "sarif"):  # JSON's own escape (json), or the visible one, JSON-escaped (sarif)
            data = json.loads(text)
            shown = data["config"] if fmt == "json" else json.dumps(data)
            assert shown in (name, "bad\\udcff.yaml") or "bad\\\\udcff.yaml" in shown, (fmt, text[:300])
        else:
            assert "bad\\udcff.yaml" in text, (fmt, text[:500])
