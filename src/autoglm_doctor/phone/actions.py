"""The phone agent's reply grammar: ``<think>…</think><answer>do(action=…)|finish(message=…)</answer>``.

Parsed the way Open-AutoGLM's client parses it (``phone_agent/model/client.py`` splits at
``finish(message=`` or ``do(action=``; ``phone_agent/actions/handler.py`` reads the call with
``ast``, never ``eval``). The action names are the client's handlers; coordinates are relative,
0..999 on both axes.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

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


def parse_action(reply: str) -> Action:
    """The action in a model reply, checked: a known name, points inside 0..999. Raises ActionError."""
    text = action_text(reply)
    text = re.sub(r"</answer>.*\Z", "", text, flags=re.DOTALL).strip()
    if not has_action_marker(text):
        raise ActionError("service.action-missing", "the reply has no do(action=...) or finish(message=...)")
    try:
        tree = ast.parse(text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"), mode="eval")
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
