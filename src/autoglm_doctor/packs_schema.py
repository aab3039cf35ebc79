"""The typed pack sections the checks read (``service:``, ``devices:``, ``smoke:``), checked once at load.

Every value a check reads from a pack is typed and range-checked here, when the pack loads, and
nowhere else: a check reads ``ctx.pack.settings.devices.adb_timeout`` (a finite float in its
range), never the raw YAML, and never converts it again. A wrong value is a usage error naming
the file, the line, the key and the accepted range (``'devices.adb_timeout' must be a number
of seconds from 0.1 to 300 (got .nan)``): before this, ``.nan`` crashed ``devices.adb`` with
"cannot convert float NaN to integer" and ``service.timeout: .inf`` crashed ``service.*`` with
"timestamp out of range for platform time_t".

Why dataclasses and one small validator per key, not pydantic or msgspec: the project's records
are dataclasses, and the start-up budget (``check --no-smoke`` at most 1.0x ``pip check``) leaves
no room for pydantic: ``import pydantic``, one ``BaseModel`` class and one validation cost 100 to
106 ms (three runs, pydantic 2.14.4, on the 2-core test machine), against 7 microseconds for this
module's parse of two sections; typer is held below 0.29 for the same reason (pyproject). msgspec is not a
dependency, and its gain (speed on large documents) does not apply to three sections of a few keys.
A few dozen lines give messages that say the accepted range in the user's terms.

The other sections (``config``, ``env``, ``launch``, ``request``) are rules, typed by
:func:`autoglm_doctor.configfile.rules.validate_sections` into ``Pack.rules`` with the same
refusals (NaN, infinities, absurd sizes).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

SECONDS_MIN = 0.1
"""The shortest timeout a pack may set: anything shorter cannot start a process, let alone hear back."""
DEVICE_SECONDS_MAX = 300.0
"""The longest wait for one device-tool call (adb, hdc, WebDriverAgent, a screenshot): 5 minutes."""
SERVICE_SECONDS_MAX = 600.0
"""The longest a served check may take in all: the doctor's per-check budget (10 minutes)."""
SERVICE_TIMEOUT_MIN = 0.5
"""The shortest time a served check may be given in all, by the pack's ``service.timeout`` and ``--endpoint-timeout``
alike (one range for both): the streamed step is never given less than half a second of its deadline."""
MAX_TOKENS_MAX = 1 << 20
"""max_tokens of the served completion: no served context is longer than a million tokens."""
SMOKE_TOKENS_MAX = 4096
"""max_new_tokens of the smoke test: it generates a few tokens to prove the model runs."""
TEXT_MAX = 10_000
"""The longest text a pack key may hold (a prompt); names are shorter (:data:`NAME_MAX`)."""
NAME_MAX = 256
"""The longest model name, IME id or class name."""


class SectionError(ValueError):
    """A pack value is outside its type or range; ``path`` is where in the pack (``("devices", "adb_timeout")``)."""

    def __init__(self, path: tuple[Any, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


def shown(value: Any) -> str:
    """A rejected value as the user wrote it in YAML, short and on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, int):
        digits = len(str(abs(value))) if abs(value) < 10**60 else 61
        return str(value) if digits <= 20 else f"an integer of {'more than 60' if digits > 60 else digits} digits"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:40] + "..."
        return repr(text)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _key(path: tuple[Any, ...]) -> str:
    return ".".join(map(str, path))


def seconds(high: float, low: float = SECONDS_MIN) -> Callable[[tuple[Any, ...], Any], float]:
    """A validator for a timeout: a finite number of seconds from ``low`` (:data:`SECONDS_MIN`) to ``high``."""

    def convert(path: tuple[Any, ...], value: Any) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value) if isinstance(value, float) or abs(value) < 10**18 else math.inf
            if math.isfinite(number) and low <= number <= high:
                return number
        raise SectionError(
            path, f"'{_key(path)}' must be a number of seconds from {low:g} to {high:g} (got {shown(value)})"
        )

    return convert


def count(high: int) -> Callable[[tuple[Any, ...], Any], int]:
    """A validator for a count: a whole number from 1 to ``high``."""

    def convert(path: tuple[Any, ...], value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= high:
            return value
        raise SectionError(path, f"'{_key(path)}' must be a whole number from 1 to {high} (got {shown(value)})")

    return convert


def flag(path: tuple[Any, ...], value: Any) -> bool:
    """A validator for a switch: true or false."""
    if isinstance(value, bool):
        return value
    raise SectionError(path, f"'{_key(path)}' must be true or false (got {shown(value)})")


def text(longest: int, pattern: str = "") -> Callable[[tuple[Any, ...], Any], str]:
    """A validator for text: a non-empty string of at most ``longest`` characters, no control characters.

    ``pattern`` (a regular expression, full match) narrows it further; its description is ``what``.
    """
    regex = re.compile(pattern) if pattern else None

    def convert(path: tuple[Any, ...], value: Any) -> str:
        ok = isinstance(value, str) and 0 < len(value) <= longest
        if ok and regex is not None:
            ok = regex.fullmatch(value) is not None
        elif ok:  # a prompt may hold line breaks and tabs; nothing else below space
            ok = not any(ord(c) < 32 and c not in "\n\t" or c == "\x7f" for c in value)
        if ok:
            return str(value)
        what = "a name without spaces or control characters" if regex is not None else "text"
        raise SectionError(path, f"'{_key(path)}' must be {what}, 1 to {longest} characters long (got {shown(value)})")

    return convert


_NAME = r"[^\s\x00-\x1f\x7f]+"
"""A model name or an IME id: what the client or adb takes as one word."""
_CLASS = r"[A-Za-z_][A-Za-z0-9_]*"
"""A transformers auto class (``AutoModelForCausalLM``)."""


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """The ``service:`` section: how the served checks ask the endpoint."""

    model: str | None = None
    """The model name the client sends when PHONE_AGENT_MODEL is unset."""
    timeout: float = 12.0
    """Seconds one served check may take in all: endpoint + agent-step + auth (5 s) stay under 30 s."""
    max_tokens: int = 3000
    """max_tokens of the completion (the client sends 3000)."""
    step_budget: float = 10.0
    """Seconds one agent step may take before service.endpoint warns."""
    action_required: bool = False
    """A reply without an action fails instead of warning."""
    require_token: bool = False
    """The endpoint must refuse a request without a token."""


@dataclass(frozen=True, slots=True)
class DevicesSettings:
    """The ``devices:`` section: how long the device tools may take, and the keyboard the agent types with."""

    adb_timeout: float = 5.0
    """Seconds per adb call."""
    hdc_timeout: float = 5.0
    """Seconds per hdc call."""
    wda_timeout: float = 5.0
    """Seconds for WebDriverAgent's answer."""
    screenshot_timeout: float = 10.0
    """Seconds for one screenshot (service.agent-step)."""
    keyboard: str = "com.android.adbkeyboard/.AdbIME"
    """The IME id that must be enabled on an Android phone."""


@dataclass(frozen=True, slots=True)
class SmokeSettings:
    """The ``smoke:`` section: what the smoke test loads and asks."""

    auto_class: str | None = None
    """The transformers auto class to load with (None: chosen by the model's kind)."""
    prompt: str | None = None
    """The prompt to generate from (None: the built-in one)."""
    max_new_tokens: int = 8
    """Tokens to generate."""


@dataclass(frozen=True, slots=True)
class PackSettings:
    """Every typed section a check reads."""

    service: ServiceSettings = field(default_factory=ServiceSettings)
    devices: DevicesSettings = field(default_factory=DevicesSettings)
    smoke: SmokeSettings = field(default_factory=SmokeSettings)


Validator = Callable[[tuple[Any, ...], Any], Any]

SCHEMA: dict[str, tuple[type[Any], dict[str, Validator]]] = {
    "service": (
        ServiceSettings,
        {
            "model": text(NAME_MAX, _NAME),
            "timeout": seconds(SERVICE_SECONDS_MAX, SERVICE_TIMEOUT_MIN),  # the range of --endpoint-timeout too
            "max_tokens": count(MAX_TOKENS_MAX),
            "step_budget": seconds(SERVICE_SECONDS_MAX),
            "action_required": flag,
            "require_token": flag,
        },
    ),
    "devices": (
        DevicesSettings,
        {
            "adb_timeout": seconds(DEVICE_SECONDS_MAX),
            "hdc_timeout": seconds(DEVICE_SECONDS_MAX),
            "wda_timeout": seconds(DEVICE_SECONDS_MAX),
            "screenshot_timeout": seconds(DEVICE_SECONDS_MAX),
            "keyboard": text(NAME_MAX, _NAME),
        },
    ),
    "smoke": (
        SmokeSettings,
        {
            "auto_class": text(NAME_MAX, _CLASS),
            "prompt": text(TEXT_MAX),
            "max_new_tokens": count(SMOKE_TOKENS_MAX),
        },
    ),
}
"""Section -> (its record, key -> validator). A key left out or set to null takes the record's default."""


def parse(sections: Mapping[str, Any]) -> PackSettings:
    """The typed sections of a pack's raw data; raises :class:`SectionError` at the first bad value."""
    typed: dict[str, Any] = {}
    for name, (record, validators) in SCHEMA.items():
        raw = sections.get(name)
        if raw is None:
            typed[name] = record()
            continue
        if not isinstance(raw, dict):
            raise SectionError((name,), f"'{name}' must be a mapping of {', '.join(validators)} (got {shown(raw)})")
        unknown = sorted(str(k) for k in raw if k not in validators)
        if unknown:
            raise SectionError(
                (name, unknown[0]), f"unknown key '{name}.{unknown[0]}' (known: {', '.join(sorted(validators))})"
            )
        values = {key: validators[key]((name, key), value) for key, value in raw.items() if value is not None}
        typed[name] = record(**values)
    return PackSettings(**typed)
