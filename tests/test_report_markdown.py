"""Markdown for bug reports: structure, and text from findings rendering as written."""

from __future__ import annotations

from autoglm_doctor.model import CheckResult, Report, Status, error
from autoglm_doctor.report import Format, RenderOptions, render
from autoglm_doctor.report.markdown import block, code, inline
from tests.golden.sample import sample_report


def test_header_table_and_sections_for_non_passing_checks_only() -> None:
    text = render(sample_report(), Format.MARKDOWN, RenderOptions())
    # checks by status, then the findings shown by severity (two warnings are printed, so "2 warnings")
    summary = "6 checks: 1 passed, 1 warned, 2 failed, 1 skipped, 1 errored · 4 errors, 2 warnings"
    assert text.startswith(f"## autoglm-doctor: ❌ FAIL\n\n{summary}\n")
    for row in ("| Tool | autoglm-doctor 0.1.0 |", "| Python | 3.11.7 (`/srv/app/.venv/bin/python`) |"):
        assert row in text
    assert "| Platform | Linux-6.1.0-x86_64-with-glibc2.36 |" in text
    assert "| `cuda.driver` | NVIDIA driver and GPUs | ⏭️ skip | GPU facts were not gathered |" in text
    sections = [line for line in text.splitlines() if line.startswith("#### ")]
    assert sections == [
        "#### ⚠️ `python.venv`: Isolated environment (warn)",
        "#### ❌ `packages.required`: Required packages installed (fail)",
        "#### ❌ `config.syntax`: Config file parses (fail)",
        "#### 💥 `cuda.memory`: GPU memory for the model (error)",
    ]
    fix = "    ```\n    /srv/app/.venv/bin/python -m pip install 'accelerate>=0.26.0'\n    ```\n"
    assert fix in text
    assert "  - observed: `not installed`\n  - expected: `accelerate>=0.26.0`\n" in text
    assert "<details><summary>traceback</summary>" in text  # what a maintainer needs, even without -v


def test_all_passing_report_has_no_problem_section() -> None:
    report = Report(
        results=(CheckResult(id="python.venv", title="Isolated environment", category="python", status=Status.PASS),),
        tool_version="0.1.0",
    )
    text = render(report, Format.MARKDOWN, RenderOptions())
    assert text.startswith("## autoglm-doctor: ✅ PASS\n")
    assert "### Problems" not in text


def test_inline_escapes_markdown_outside_code_spans() -> None:
    assert inline("__init__.py and *torch* [x](y) ~z~") == r"\_\_init\_\_.py and \*torch\* \[x\](y) \~z\~"
    assert inline("model_max_length stays readable") == "model_max_length stays readable"
    assert inline("run `pip install -U x_y*` now") == "run `pip install -U x_y*` now"
    assert inline("<script> but tokenizers<0.14,>=0.11") == r"\<script> but tokenizers<0.14,>=0.11"
    assert inline("one\ntwo") == "one<br>two"


def test_code_and_blocks_survive_backticks() -> None:
    assert code("plain") == "`plain`"
    assert code("a `b` c") == "``a `b` c``"
    assert code("`edge`") == "`` `edge` ``"
    assert block("echo ```x```") == ["````", "echo ```x```", "````"]
    assert block("a\nb", indent="  ", lang="sh") == ["  ```sh", "  a", "  b", "  ```"]


def test_table_cells_cannot_break_the_table() -> None:
    result = CheckResult(
        id="config.values",
        title="a | b",
        category="config",
        status=Status.FAIL,
        findings=(error("config.x", "pipe | inside\nand newline"),),
    )
    text = render(Report(results=(result,)), Format.MARKDOWN, RenderOptions())
    row = next(line for line in text.splitlines() if line.startswith("| `config.values`"))
    assert row == r"| `config.values` | a \| b | ❌ fail | 1 error |"
    assert "- **error** `config.x`: pipe | inside<br>and newline" in text
