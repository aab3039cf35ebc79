"""The phone agent's reply grammar: ``<think>…</think><answer>do(action=…)|finish(message=…)</answer>``.

Parsed the way Open-AutoGLM's client parses it (``phone_agent/model/client.py`` splits at
``finish(message=`` or ``do(action=``; ``phone_agent/actions/handler.py`` reads the call with
``ast``, never ``eval``). The action names are the client's handlers; coordinates are relative,
0..999 on both axes.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

REPLY_MAX_CHARS = 256 << 10
"""Longest reply read (characters of content and reasoning together): the client's max_tokens of 3000
cannot produce it (85 characters a token); a real reply is a few hundred characters."""
ACTION_MAX_CHARS = 16 << 10
"""Longest action text given to ``ast.parse``: a ``Type`` action's text is a sentence or two."""
ACTION_MAX_STRUCTURE = 64
"""Most brackets, operators, dots and names outside string literals in one action.

Every level of an expression's syntax tree needs one of them, so the tree is at most this deep
(and ``ast`` far from its recursion limit) whatever the text: ``do(action="Swipe", start=[1,2],
end=[3,4])`` has 11. A reply ``do(action="Tap", element=[1+1+...+1, 1])`` of 20,000 terms
ended in RecursionError inside ``ast``, 100,000 unary minus signs in MemoryError."""

ACTION_MARKERS = ("finish(message=", "do(action=")
"""What the client looks for in a reply (phone_agent/model/client.py)."""

KNOWN_ACTIONS = (
    "Launch",
    "Tap",
    "Type",
    "Type_Name",
    "Swipe",
    "Back",
    "Home",
    "Double Tap",
    "Long Press",
    "Wait",
    "Take_over",
    "Note",
    "Call_API",
    "Interact",
)
"""Action names the client has a handler for (phone_agent/actions/handler.py)."""

POINT_ARGS = {"Tap": ("element",), "Double Tap": ("element",), "Long Press": ("element",), "Swipe": ("start", "end")}
"""Actions whose arguments are screen points, relative 0..999."""

COORDINATE_MAX = 999


@dataclass(frozen=True, slots=True)
class Action:
    """One parsed reply."""

    kind: str
    """``do`` or ``finish``."""
    name: str
    """The action name (``Tap``) or ``finish``."""
    args: dict[str, Any] = field(default_factory=dict)
    """The call's keyword arguments."""
    source: str = ""
    """The action text as the model wrote it."""


class ActionError(ValueError):
    """The reply holds no valid action; ``code`` says which way it is wrong."""

    def __init__(self, code: str, message: str) -> None:
        """Remember the finding code next to the message."""
        super().__init__(message)
        self.code = code


def has_action_marker(text: str) -> bool:
    """Whether the client would find an action in ``text`` at all."""
    return any(marker in text for marker in ACTION_MARKERS)


def action_text(reply: str) -> str:
    """The action part of a reply, split off as the client does (its rules 1-4)."""
    for marker in ACTION_MARKERS:
        if marker in reply:
            return marker + reply.split(marker, 1)[1]
    if "<answer>" in reply:
        return reply.split("<answer>", 1)[1].replace("</answer>", "").strip()
    return reply.strip()


def judge_reply(text: str) -> tuple[str, str] | None:
    """(code, why) when a reply is not a sound answer; None when it is. Linear in the reply's length.

    Garbled: replacement or control characters, little that is a letter, or one word said
    over and over. One word is not an answer (whether it is an action is judged apart).
    """
    stripped = text.strip()
    if not stripped:
        return "service.empty-reply", "the reply is empty"
    visible = odd = letters = cjk = 0
    for ch in stripped:
        if ch.isspace():
            continue
        visible += 1
        if ch == "\ufffd" or not ch.isprintable():
            odd += 1
        if ch.isalpha():
            letters += 1
        if "\u3040" <= ch <= "\u9fff":
            cjk += 1
    words = stripped.split()
    if odd / visible > 0.05 or letters / visible < 0.5:
        return "service.garbled-reply", "the reply is mostly not text (stray bytes, symbols or control characters)"
    # one count per distinct word: counting each with list.count was quadratic (700 KB of distinct words: > 240 s)
    if len(words) >= 6 and Counter(words).most_common(1)[0][1] / len(words) > 0.5:
        return "service.garbled-reply", "the reply repeats one word over and over"
    if len(words) < 2 and cjk < 4:
        return "service.one-word-reply", "the reply is a single word, not an answer"
    return None


_STRING_START = re.compile(r"(?i)(?:[rbu]|br|rb)?(\"\"\"|'''|\"|')")
_FSTRING_START = re.compile(r"(?i)(?:f|fr|rf)[\"']")
_NAME = re.compile(r"[^\W\d]\w*")
_NUMBER = re.compile(r"\d[\w.]*")
_PLAIN = frozenset(" \t,=\\")


def action_structure(text: str) -> int | None:
    """How many brackets, operators, dots and names ``text`` has outside its string literals; linear.

    None when ``text`` holds an f-string (a string whose braces nest expressions: never a literal).
    An unterminated string runs to the end (``ast`` then reports it).
    """
    count = 0
    index = 0
    end = len(text)
    while index < end:
        ch = text[index]
        if ch in _PLAIN:
            index += 1
            continue
        if _FSTRING_START.match(text, index):
            return None
        string = _STRING_START.match(text, index)
        if string is not None:
            quote = string.group(1)
            index = string.end()
            while index < end:
                if text[index] == "\\":
                    index += 2
                elif text.startswith(quote, index):
                    index += len(quote)
                    break
                else:
                    index += 1
            continue
        name = _NAME.match(text, index)
        if name is not None:  # a name can nest (a call, `not`, `lambda`, `if`): counted
            count += 1
            index = name.end()
            continue
        number = _NUMBER.match(text, index)
        if number is not None:  # a number is a leaf; its dots are counted (``1..real`` is an attribute)
            count += number.group().count(".")
            index = number.end()
            continue
        count += 1
        index += 1
    return count


def parse_action(reply: str) -> Action:
    """The action in a model reply, checked: a known name, points inside 0..999. Raises ActionError.

    The text reaches ``ast.parse`` only within :data:`ACTION_MAX_CHARS` and
    :data:`ACTION_MAX_STRUCTURE`, so parsing it cannot exhaust the recursion limit or the memory.
    """
    text = action_text(reply[:REPLY_MAX_CHARS])
    text = re.sub(r"</answer>.*\Z", "", text, flags=re.DOTALL).strip()
    if not has_action_marker(text):
        raise ActionError("service.action-missing", "the reply has no do(action=...) or finish(message=...)")
    if len(text) > ACTION_MAX_CHARS:
        raise ActionError(
            "service.action-unparsed",
            f"the action is {len(text):,} characters long (at most {ACTION_MAX_CHARS:,} are read): not one action",
        )
    escaped = text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    structure = action_structure(escaped)
    if structure is None:
        raise ActionError("service.action-unparsed", "the action holds an f-string: not a literal")
    if structure > ACTION_MAX_STRUCTURE:
        raise ActionError(
            "service.action-unparsed",
            f"the action has {structure:,} brackets, operators and names outside its strings (an action of "
            f"literals has a dozen; at most {ACTION_MAX_STRUCTURE} are read): not a call of literals",
        )
    try:
        tree = ast.parse(escaped, mode="eval")
    except SyntaxError as exc:
        raise ActionError("service.action-unparsed", f"the action does not parse: {exc.msg}") from None
    call = tree.body
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name) or call.func.id not in ("do", "finish"):
        raise ActionError("service.action-unparsed", "the action is not a do(...) or finish(...) call")
    args: dict[str, Any] = {}
    for keyword in call.keywords:
        try:
            args[str(keyword.arg)] = ast.literal_eval(keyword.value)
        except ValueError:  # noqa: PERF203 - one keyword or two
            raise ActionError("service.action-unparsed", f"argument {keyword.arg!r} is not a literal") from None
    if call.func.id == "finish":
        return Action(kind="finish", name="finish", args=args, source=text)
    name = str(args.get("action", ""))
    if name not in KNOWN_ACTIONS:
        raise ActionError(
            "service.action-unknown", f"action {name!r} is not one the client knows ({', '.join(KNOWN_ACTIONS)})"
        )
    for arg in POINT_ARGS.get(name, ()):
        point = args.get(arg)
        if (
            not isinstance(point, list | tuple)
            or len(point) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in point)
        ):
            raise ActionError("service.action-unparsed", f"{name} needs {arg}=[x,y], got {point!r}")
        if not all(0 <= v <= COORDINATE_MAX for v in point):
            raise ActionError(
                "service.action-out-of-range",
                f"{name} {arg}={list(point)} lies outside the screen (relative coordinates run 0..{COORDINATE_MAX})",
            )
    return Action(kind="do", name=name, args=args, source=text)
