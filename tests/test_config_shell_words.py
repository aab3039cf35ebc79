"""Launch-file word splitting follows POSIX: a backslash inside double quotes escapes only $ ` " \\ and newline."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor.configfile.parse import Source, _shell_words, parse_flags
from tests.conftest import codes, result

# Cases where shlex (posix=True) follows the shell; it differs only for \$ and \` inside double quotes.
SHLEX_AGREES = [
    r'--chat-template "tmpl\\" --port 8000',
    r'--a "x\"y" --b z',
    r'--a "back\slash" --b "two\\\\"',
    r"--a 'single \ stays' --b \"bare\"",
    r'--a "mixed"\'q\' --b c\ d',
    r'--a ""  --b "" --c x',
    r'--a "tab	in" --b "a\nb"',
]


@pytest.mark.parametrize("command", SHLEX_AGREES)
def test_words_match_shlex_where_shlex_is_right(command: str) -> None:
    words, problems = _shell_words(Source(command))
    assert not problems
    assert [w for w, _ in words] == shlex.split(command, posix=True)


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (r'--a "cost \$5" --b "\`x\`"', ["--a", "cost $5", "--b", "`x`"]),  # shlex keeps these backslashes
        ('--a "line\\\ncontinued"', ["--a", "linecontinued"]),
    ],
)
def test_words_where_posix_and_shlex_differ(command: str, words: list[str]) -> None:
    found, problems = _shell_words(Source(command))
    assert not problems and [w for w, _ in found] == words


def test_escaped_backslash_before_the_closing_quote_closes_it() -> None:
    parsed = parse_flags(Source('vllm serve m --chat-template "tmpl\\\\" --port 8000 --max-model-len 25480\n'))
    assert not parsed.diagnostics
    data: dict[str, Any] = parsed.data
    assert data["chat-template"] == "tmpl\\" and data["port"] == 8000 and data["max-model-len"] == 25480


def test_launch_file_through_the_cli(workdir: Path, run_json: Any) -> None:
    launch = workdir / "serve.sh"
    launch.write_text('vllm serve /models/m --chat-template "tmpl\\\\" --port 8000 --max-model-len 25480\n')
    code, report = run_json("--config", str(launch), "--only", "config.*")
    assert "config.syntax-error" not in codes(report, "config.syntax")
    messages = [f["message"] + " " + str(f.get("evidence")) for r in report["results"] for f in r["findings"]]
    assert not [m for m in messages if "unclosed" in m or "--max-model-len absent" in m]
    assert result(report, "config.syntax")["status"] == "pass"


def test_a_flag_repeated_on_one_line_says_so(workdir: Path, run_json: Any) -> None:
    launch = workdir / "serve.sh"
    launch.write_text("vllm serve /models/m --port 8000 --port 8001\n")
    _code, report = run_json("--config", str(launch), "--only", "config.syntax")
    (finding,) = result(report, "config.syntax")["findings"]
    assert "given twice (both on line 1)" in finding["message"]
