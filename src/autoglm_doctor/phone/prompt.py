"""The system prompt the request carries: the installed client's own, read as text, or the doctor's.

When the phone-agent client (``phone_agent``, Open-AutoGLM) is installed in the target
environment, its prompt module (``phone_agent/config/prompts_zh.py`` or ``prompts_en.py`` by
PHONE_AGENT_LANG, as ``get_system_prompt`` picks; ``prompts.py`` in older releases) is parsed
with ``ast`` and its ``SYSTEM_PROMPT`` expression evaluated over string constants only: the
module is never imported or run. The date it prepends at import time is filled in as it would be.
"""

from __future__ import annotations

import ast
import datetime
from pathlib import Path

DOCTOR_PROMPT = """You are a phone operation agent. Given a screenshot of the phone's screen and a task, \
think briefly, then give exactly one action.
Your output must STRICTLY follow the format:
<think>your short reasoning</think>
<answer>one action</answer>
Actions: do(action="Launch", app="xxx"); do(action="Tap", element=[x,y]); do(action="Type", text="xxx"); \
do(action="Swipe", start=[x1,y1], end=[x2,y2]); do(action="Back"); do(action="Home"); \
do(action="Wait", duration="x seconds"); finish(message="xxx").
Coordinates run from (0,0) at the top left to (999,999) at the bottom right."""
"""The doctor's own system instruction, used when the client is not installed where it looks."""

TASK = "Open the Settings app."
"""The task of the probe step: harmless, and every phone has Settings."""

PROMPT_FILES = {
    "en": ("config/prompts_en.py",),
    "cn": ("config/prompts_zh.py", "config/prompts.py"),
}


def _date_for(name: str) -> str:
    today = datetime.date.today()
    return today.strftime("%Y-%m-%d, %A") if name.endswith("_en.py") else today.strftime("%Y年%m月%d日")


def _evaluate(node: ast.expr, date: str) -> str | None:
    """A string expression of constants and ``+``; names (the module's date variable) become ``date``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _evaluate(node.left, date), _evaluate(node.right, date)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.Name):
        return date
    if isinstance(node, ast.JoinedStr):
        parts = [
            _evaluate(v.value, date) if isinstance(v, ast.FormattedValue) else _evaluate(v, date) for v in node.values
        ]
        return None if any(p is None for p in parts) else "".join(p or "" for p in parts)
    return None


def read_prompt_file(path: Path) -> str | None:
    """``SYSTEM_PROMPT`` from a prompt module's text; None when it is not a plain string expression."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "SYSTEM_PROMPT" for t in statement.targets
        ):
            text = _evaluate(statement.value, _date_for(path.name))
            if text and text.strip():
                return text
    return None


def prompt_files(lang: str) -> tuple[str, ...]:
    """The files, relative to the ``phone_agent`` folder, the client reads its SYSTEM_PROMPT from for ``lang``."""
    return PROMPT_FILES["en" if lang.strip().lower() == "en" else "cn"]


def client_prompt(package_dirs: list[Path], lang: str) -> tuple[str, Path] | None:
    """(prompt, file) from the first installed ``phone_agent`` folder that has one; None when none does."""
    names = prompt_files(lang)
    for folder in package_dirs:
        for name in names:
            path = folder / name
            if path.is_file():
                text = read_prompt_file(path)
                if text is not None:
                    return text, path
    return None
