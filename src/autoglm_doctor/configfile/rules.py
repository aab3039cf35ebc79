r"""Value rules declared in a pack (``config:``, ``env:``, ``launch:`` and ``request:`` sections).

The rules are data, not code: a pack names each key with its type, bounds, allowed values,
whether it is required, and a recommended value with the reason. :func:`validate_sections`
checks a pack's raw sections at load time (errors name file and line); the ``*_rules``
functions turn the same raw data into typed rules for the checks.

Rule keys (for a config key, a launch flag or an environment variable)::

    type: int | float | number | bool | str | mapping | list | path  (or a list of these)
    required: true            # absent is an error
    min: 1 / max: 1000        # numbers (and the length of a str for env vars): outside is an error
    enum: [a, b]              # allowed values (strings compared case-insensitively)
    pattern: "^cuda(:\\d+)?$"  # allowed strings (regular expression, full match)
    format: url               # env vars: a well-formed http(s) URL
    recommend: {min: 2048}    # or {max: N}, {values: [...]}, {not: [...]}: a warning when not met
    reason: "why the recommendation (or the rule) matters"
    description: "what the key means (docs)"
    fix: "what to write instead (optional; a default is derived)"
    default: "http://localhost:8000/v1"  # env vars: what the program uses when unset (an info note)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autoglm_doctor import yamlpos
from autoglm_doctor.packs_schema import shown

TYPES = ("int", "float", "number", "bool", "str", "mapping", "list", "path")
_RULE_KEYS = {
    "type",
    "required",
    "min",
    "max",
    "enum",
    "pattern",
    "format",
    "recommend",
    "reason",
    "description",
    "fix",
    "default",
}
_RECOMMEND_KEYS = {"min", "max", "values", "not"}


DEFAULT_BASE64_KEYS = ("image", "image_base64", "base64", "b64", "audio")
"""Request fields whose values must be valid base64, unless a pack names others."""


class RuleError(ValueError):
    """A rule is malformed; ``path`` is where in the pack section."""

    def __init__(self, path: tuple[Any, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True, slots=True)
class Recommend:
    """A recommended value: not meeting it warns."""

    min: float | None = None
    """At least this."""
    max: float | None = None
    """At most this."""
    values: tuple[Any, ...] = ()
    """One of these."""
    avoid: tuple[Any, ...] = ()
    """None of these."""


@dataclass(frozen=True, slots=True)
class ValueRule:
    """What one config key, launch flag or environment variable must look like."""

    key: str
    """Dotted config key, flag name (``max-model-len``) or variable name."""
    types: tuple[str, ...] = ()
    """Accepted types; empty accepts any."""
    required: bool = False
    """Absent is an error."""
    min: float | None = None
    """Smallest allowed number."""
    max: float | None = None
    """Largest allowed number."""
    enum: tuple[Any, ...] = ()
    """Allowed values."""
    pattern: str = ""
    """Allowed strings (full match)."""
    format: str = ""
    """``url`` for env vars holding an endpoint."""
    recommend: Recommend | None = None
    """Recommended value."""
    reason: str = ""
    """Why the rule or the recommendation matters."""
    description: str = ""
    """What the key means."""
    fix: str = ""
    """What to write instead, when the default advice is not enough."""
    default: str = ""
    """Env vars: the value the program uses when the variable is unset (then an info note, not an error)."""


@dataclass(frozen=True, slots=True)
class Violation:
    """A value that breaks its rule."""

    severity: str
    """error or warning."""
    code: str
    """Finding code."""
    message: str
    """What is wrong."""
    expected: str
    """What the rule wants."""
    fix: str
    """What to write instead."""


@dataclass(frozen=True, slots=True)
class SecretPolicy:
    """How signing secrets in the config are judged."""

    keys: tuple[str, ...] = ()
    """Dotted keys holding the service's signing secret (e.g. ``auth.secret_key``)."""
    min_length: int = 32
    """Shorter hard-coded or env-supplied secrets fail."""
    env: str = "AUTOGLM_SECRET_KEY"
    """The environment variable the fix tells users to read it from."""


@dataclass(frozen=True, slots=True)
class MemoryRow:
    """A launch limit that depends on the GPU's memory."""

    below_gib: float
    """Applies to GPUs with less total memory than this."""
    flag: str
    """The flag it limits (``max-model-len``)."""
    max: int
    """The largest value that fits."""
    reason: str = ""
    """Where the figure comes from."""


@dataclass(frozen=True, slots=True)
class LaunchRules:
    """Rules for a vLLM/SGLang launch command (the served deployment)."""

    flags: tuple[ValueRule, ...] = ()
    """Per-flag rules (flag names without dashes)."""
    served_model_env: str = ""
    """The client variable that must equal --served-model-name."""
    memory: tuple[MemoryRow, ...] = ()
    """GPU-memory limits."""


@dataclass(frozen=True, slots=True)
class RequestPolicy:
    """The service's batch request format."""

    max_items: int = 1000
    """Most items in one batch."""
    id_key: str = "id"
    """Key of each item's unique id."""
    data_key: str = "data"
    """Key of each item's payload."""
    base64_keys: tuple[str, ...] = DEFAULT_BASE64_KEYS
    """Keys whose string values must be valid base64 (``data:...;base64,`` URLs are checked too)."""


# --------------------------------------------------------------------------- parsing


NUMBER_LIMIT = 10**15
"""The largest bound a rule may state: beyond it a bound is no bound, and an integer of hundreds of digits
cannot be compared with a float (OverflowError) where a check computes with it."""
MAX_ITEMS_LIMIT = 1_000_000
"""``request.max_items`` above this is no limit: a request of a million items is not a request."""


def _number(value: Any, path: tuple[Any, ...]) -> float:
    """A finite number within +-:data:`NUMBER_LIMIT` (NaN would make every comparison false; inf is no bound)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (isinstance(value, float) and not math.isfinite(value))
        or abs(value) > NUMBER_LIMIT
    ):
        raise RuleError(
            path,
            f"'{'.'.join(map(str, path))}' must be a finite number from {-NUMBER_LIMIT:g} to {NUMBER_LIMIT:g} "
            f"(got {shown(value)})",
        )
    return value


def _value_rule(key: str, raw: Any, path: tuple[Any, ...]) -> ValueRule:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RuleError(path, f"the rule for {key!r} must be a mapping (type, min, max, enum, required, recommend...)")
    unknown = sorted(set(map(str, raw)) - _RULE_KEYS)
    if unknown:
        raise RuleError(
            (*path, unknown[0]), f"unknown rule key {unknown[0]!r} (known: {', '.join(sorted(_RULE_KEYS))})"
        )
    types = raw.get("type") or ()
    types = (types,) if isinstance(types, str) else tuple(types)
    for t in types:
        if t not in TYPES:
            raise RuleError((*path, "type"), f"unknown type {t!r} (known: {', '.join(TYPES)})")
    pattern = str(raw.get("pattern") or "")
    if pattern:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise RuleError((*path, "pattern"), f"bad regular expression: {exc}") from None
    fmt = str(raw.get("format") or "")
    if fmt not in ("", "url"):
        raise RuleError((*path, "format"), "format must be 'url'")
    enum = raw.get("enum") or ()
    if not isinstance(enum, list | tuple):
        raise RuleError((*path, "enum"), "'enum' must be a list")
    recommend = None
    rec = raw.get("recommend")
    if rec is not None:
        if not isinstance(rec, dict) or not rec or set(map(str, rec)) - _RECOMMEND_KEYS:
            raise RuleError((*path, "recommend"), "'recommend' is a mapping with min, max, values or not")
        for name in ("values", "not"):
            if name in rec and not isinstance(rec[name], list):
                raise RuleError((*path, "recommend", name), f"'recommend.{name}' must be a list")
        recommend = Recommend(
            min=_number(rec["min"], (*path, "recommend", "min")) if "min" in rec else None,
            max=_number(rec["max"], (*path, "recommend", "max")) if "max" in rec else None,
            values=tuple(rec.get("values") or ()),
            avoid=tuple(rec.get("not") or ()),
        )
    required = raw.get("required", False)
    if not isinstance(required, bool):
        raise RuleError((*path, "required"), "'required' must be true or false")
    return ValueRule(
        key=key,
        types=types,
        required=required,
        min=_number(raw["min"], (*path, "min")) if "min" in raw else None,
        max=_number(raw["max"], (*path, "max")) if "max" in raw else None,
        enum=tuple(enum),
        pattern=pattern,
        format=fmt,
        recommend=recommend,
        reason=str(raw.get("reason") or ""),
        description=str(raw.get("description") or ""),
        fix=str(raw.get("fix") or ""),
        default="" if raw.get("default") is None else str(raw["default"]),
    )


def _rules_map(raw: Any, path: tuple[Any, ...]) -> tuple[ValueRule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise RuleError(path, f"'{'.'.join(map(str, path))}' must be a mapping of names to rules")
    return tuple(_value_rule(str(k), v, (*path, k)) for k, v in raw.items())


def _section(sections: Mapping[str, Any], name: str) -> dict[str, Any]:
    raw = sections.get(name)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise RuleError((name,), f"'{name}' must be a mapping")
    return raw


def config_rules(sections: Mapping[str, Any]) -> tuple[ValueRule, ...]:
    """The ``config.keys`` rules of a pack."""
    section = _section(sections, "config")
    return _rules_map(section.get("keys"), ("config", "keys"))


def secret_policy(sections: Mapping[str, Any]) -> SecretPolicy:
    """The ``config.secrets`` policy of a pack (defaults when absent)."""
    raw = _section(sections, "config").get("secrets") or {}
    if not isinstance(raw, dict):
        raise RuleError(("config", "secrets"), "'config.secrets' must be a mapping (keys, min_length, env)")
    keys = raw.get("keys") or []
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise RuleError(("config", "secrets", "keys"), "'keys' must be a list of dotted config keys")
    min_length = raw.get("min_length", 32)
    if isinstance(min_length, bool) or not isinstance(min_length, int) or not 1 <= min_length <= 4096:
        raise RuleError(
            ("config", "secrets", "min_length"),
            f"'config.secrets.min_length' must be a whole number from 1 to 4096 (got {shown(min_length)})",
        )
    return SecretPolicy(keys=tuple(keys), min_length=min_length, env=str(raw.get("env") or "AUTOGLM_SECRET_KEY"))


def env_rules(sections: Mapping[str, Any]) -> tuple[ValueRule, ...]:
    """The ``env`` rules of a pack (variable name -> rule)."""
    raw = sections.get("env")
    if raw is None:
        return ()
    rules = _rules_map(raw, ("env",))
    for rule in rules:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule.key):
            raise RuleError(("env", rule.key), f"{rule.key!r} is not an environment variable name")
    return rules


def launch_rules(sections: Mapping[str, Any]) -> LaunchRules:
    """The ``launch`` rules of a pack."""
    section = _section(sections, "launch")
    if not section:
        return LaunchRules()
    unknown = sorted(set(map(str, section)) - {"flags", "served_model_env", "memory"})
    if unknown:
        raise RuleError(("launch", unknown[0]), f"unknown key {unknown[0]!r} (known: flags, served_model_env, memory)")
    rows = []
    memory = section.get("memory") or []
    if not isinstance(memory, list):
        raise RuleError(("launch", "memory"), "'memory' must be a list of {below_gib, flag, max, reason}")
    for i, row in enumerate(memory):
        where = ("launch", "memory", i)
        if not isinstance(row, dict) or not {"below_gib", "flag", "max"} <= set(row):
            raise RuleError(where, "a memory row needs below_gib, flag and max")
        if _number(row["below_gib"], (*where, "below_gib")) <= 0:
            raise RuleError((*where, "below_gib"), "'below_gib' must be a positive number of GiB")
        if isinstance(row["max"], float) and not row["max"].is_integer():
            raise RuleError((*where, "max"), f"'max' must be a whole number (got {row['max']!r})")
        rows.append(
            MemoryRow(
                below_gib=_number(row["below_gib"], (*where, "below_gib")),
                flag=str(row["flag"]),
                max=int(_number(row["max"], (*where, "max"))),
                reason=str(row.get("reason") or ""),
            )
        )
    return LaunchRules(
        flags=_rules_map(section.get("flags"), ("launch", "flags")),
        served_model_env=str(section.get("served_model_env") or ""),
        memory=tuple(rows),
    )


def request_policy(sections: Mapping[str, Any]) -> RequestPolicy:
    """The ``request`` policy of a pack (defaults when absent)."""
    section = _section(sections, "request")
    unknown = sorted(set(map(str, section)) - {"max_items", "id", "data", "base64"})
    if unknown:
        raise RuleError(("request", unknown[0]), f"unknown key {unknown[0]!r} (known: max_items, id, data, base64)")
    max_items = section.get("max_items", 1000)
    if isinstance(max_items, bool) or not isinstance(max_items, int) or not 1 <= max_items <= MAX_ITEMS_LIMIT:
        raise RuleError(
            ("request", "max_items"),
            f"'request.max_items' must be a whole number from 1 to {MAX_ITEMS_LIMIT} (got {shown(max_items)})",
        )
    b64 = section.get("base64", list(DEFAULT_BASE64_KEYS))
    if not isinstance(b64, list):
        raise RuleError(("request", "base64"), "'base64' must be a list of keys")
    return RequestPolicy(
        max_items=max_items,
        id_key=str(section.get("id") or "id"),
        data_key=str(section.get("data") or "data"),
        base64_keys=tuple(map(str, b64)),
    )


@dataclass(frozen=True, slots=True)
class PackRules:
    """A pack's rule sections, typed once when it loads: what the config checks read."""

    config: tuple[ValueRule, ...] = ()
    """``config.keys``."""
    secrets: SecretPolicy = SecretPolicy()
    """``config.secrets``."""
    env: tuple[ValueRule, ...] = ()
    """``env``."""
    launch: LaunchRules = LaunchRules()
    """``launch``."""
    request: RequestPolicy = RequestPolicy()
    """``request``."""


def pack_rules(sections: Mapping[str, Any]) -> PackRules:
    """Every rule section of a pack, typed; raises :class:`RuleError` (with where) at the first malformed one."""
    config = _section(sections, "config")
    unknown = sorted(set(map(str, config)) - {"keys", "secrets"})
    if unknown:
        raise RuleError(("config", unknown[0]), f"unknown key {unknown[0]!r} (known: keys, secrets)")
    return PackRules(
        config=config_rules(sections),
        secrets=secret_policy(sections),
        env=env_rules(sections),
        launch=launch_rules(sections),
        request=request_policy(sections),
    )


def validate_sections(doc: yamlpos.Positioned) -> PackRules:
    """A pack's config/env/launch/request sections, typed; raises :class:`yamlpos.YamlError` with the line."""
    data = doc.data if isinstance(doc.data, dict) else {}
    try:
        return pack_rules(data)
    except RuleError as exc:
        raise doc.error(exc.path, str(exc)) from None


# --------------------------------------------------------------------------- evaluation


def type_name(value: Any) -> str:
    """How a value's type reads in a message."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return "null" if value is None else type(value).__name__


def _has_type(value: Any, wanted: str) -> bool:
    actual = type_name(value)
    if wanted == "number":
        return actual in ("int", "float")
    if wanted == "float":
        return actual in ("int", "float")
    if wanted == "path":
        return actual == "str"
    return actual == wanted


def show(value: Any) -> str:
    """A value as the user would write it in YAML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return value if value and re.fullmatch(r"[\w./:\-+@]+", value) else repr(value)
    return str(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


def _literal(text: str) -> Any:
    if re.fullmatch(r"-?\d+", text.strip()):
        return int(text)
    if text.strip().lower() in ("true", "false"):
        return text.strip().lower() == "true"
    return None


def check_value(rule: ValueRule, value: Any, *, name: str = "", unit: str = "") -> list[Violation]:
    """What is wrong with ``value`` under ``rule`` (``name`` is how the key reads in messages)."""
    name = name or rule.key
    # A rule with a recommendation gives its reason for the recommendation (port: "below 1024 needs
    # root"); a value that breaks the hard rule (port 99999) is not explained by it.
    because = f": {rule.reason}" if rule.reason and rule.recommend is None else ""
    found: list[Violation] = []
    if rule.types and not any(_has_type(value, t) for t in rule.types):
        wanted = " or ".join(rule.types)
        literal = _literal(value) if isinstance(value, str) else None
        if literal is not None and any(_has_type(literal, t) for t in rule.types):
            fix = f"write {name}: {show(literal)} without quotes"
        else:
            fix = rule.fix or f"write {name} as {_article(wanted)}"
        found.append(
            Violation(
                "error",
                "config.type",
                f"{name} is {show(value)} ({type_name(value)}), but it must be {_article(wanted)}{because}",
                wanted,
                fix,
            )
        )
        return found
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is not None:
        if rule.min is not None and number < rule.min:
            found.append(_bound(rule, name, value, f">= {show(rule.min)}{unit}", because))
        elif rule.max is not None and number > rule.max:
            found.append(_bound(rule, name, value, f"<= {show(rule.max)}{unit}", because))
    scalar = not isinstance(value, dict | list)
    if scalar and rule.enum and not any(_same(value, allowed) for allowed in rule.enum):
        if not (rule.pattern and isinstance(value, str) and re.fullmatch(rule.pattern, value)):
            allowed = ", ".join(show(v) for v in rule.enum)
            found.append(
                Violation(
                    "error",
                    "config.not-allowed",
                    f"{name} is {show(value)}, which is not one of: {allowed}{because}",
                    f"one of {allowed}",
                    rule.fix or f"set {name} to one of: {allowed}",
                )
            )
    elif rule.pattern and not rule.enum and isinstance(value, str) and not re.fullmatch(rule.pattern, value):
        found.append(
            Violation(
                "error",
                "config.not-allowed",
                f"{name} is {show(value)}, which is not a valid value{because}",
                f"matches {rule.pattern}",
                rule.fix or f"correct {name}",
            )
        )
    if found or rule.recommend is None:
        return found
    rec = rule.recommend
    miss = ""
    expected = ""
    if number is not None and rec.min is not None and number < rec.min:
        miss, expected = f"below the recommended {show(rec.min)}", f">= {show(rec.min)}"
    elif number is not None and rec.max is not None and number > rec.max:
        miss, expected = f"above the recommended {show(rec.max)}", f"<= {show(rec.max)}"
    elif rec.values and not any(_same(value, v) for v in rec.values):
        expected = ", ".join(show(v) for v in rec.values)
        miss = f"not the recommended {expected}"
    elif rec.avoid and any(_same(value, v) for v in rec.avoid):
        miss, expected = "not recommended", "not " + ", ".join(show(v) for v in rec.avoid)
    if miss:
        if rule.fix:
            fix = rule.fix
        elif rec.min is not None:
            fix = f"set {name}: {show(rec.min)} (or more)"
        elif rec.max is not None:
            fix = f"set {name}: {show(rec.max)} (or less)"
        elif rec.values:
            fix = f"set {name}: {show(rec.values[0])}"
        else:
            fix = f"set {name} to another value"
        found.append(
            Violation(
                "warning",
                "config.not-recommended",
                f"{name} is {show(value)}: {miss}{': ' + rule.reason if rule.reason else ''}",
                expected,
                fix,
            )
        )
    return found


def _article(words: str) -> str:
    return f"an {words}" if words[:1] in "aeiou" else f"a {words}"


def _bound(rule: ValueRule, name: str, value: Any, expected: str, because: str) -> Violation:
    limit = rule.min if expected.startswith(">=") else rule.max
    return Violation(
        "error",
        "config.out-of-range",
        f"{name} is {show(value)}, outside the allowed range ({expected}){because}",
        expected,
        rule.fix or f"set {name}: {show(limit)}",
    )
