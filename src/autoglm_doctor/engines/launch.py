"""A launch command read the way the shell and then the engine's argument parser read it, once.

The shell's words (quotes removed, continuations joined; ``configfile/parse.py``) go through the
engine's own flag definitions (:func:`autoglm_doctor.engines.flags_for`): an option the engine does
not define is an error quoting argparse ("unrecognized arguments: ...") with the closest real flag;
a value its type rejects is an error in the engine's words; then the settings the doctor computes
with get ranges (issue #23: a 400-digit length, a NaN utilization, a TP size of 10**30 become
findings, never a crash or a hang). Every check reads the typed :class:`LaunchRecord`.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autoglm_doctor.engines import get, starts_engine
from autoglm_doctor.engines.base import JSON_KINDS, EngineFlags, FlagSpec, convert
from autoglm_doctor.engines.target import flags_for

if TYPE_CHECKING:
    from autoglm_doctor.configfile.facts import ConfigFacts
    from autoglm_doctor.probe.snapshot import Snapshot

INT32_MAX = 2**31 - 1
RANGES: dict[str, tuple[float, float, str]] = {
    "max-model-len": (1, INT32_MAX, "tokens"),
    "tensor-parallel-size": (1, 1024, "GPUs"),
    "gpu-memory-utilization": (0, 1, "of the GPU's memory"),
    "port": (1, 65535, ""),
    "max-num-batched-tokens": (1, INT32_MAX, "tokens"),
    "max-num-seqs": (1, INT32_MAX, "sequences"),
}
"""Setting -> (lowest, highest, unit): the values the doctor computes with (memory, TP, ports)."""
PIXELS_MAX = 10**10
"""``max_pixels`` above this (a 100,000 x 100,000 image) is taken as a typo, not a screenshot size."""


def _figure(value: float) -> str:
    """A bound as a person reads it.

    Whole numbers in full with thousands separators (``2,147,483,647``, not ``2.14748e+09``),
    fractions as written (``0.9``).
    """
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:g}"


@dataclass(frozen=True, slots=True)
class LaunchValue:
    """One flag's value as the engine reads it."""

    spec: FlagSpec
    """The engine's definition."""
    written: str
    """The option as written (``--max_model_len``)."""
    value: Any
    """The typed value (``32768``, ``{"image": 10}``, ``True``)."""
    key: str
    """The config key (flags: the normalised name) whose position findings quote."""
    line: int | None = None
    """Where the value (or the flag) is."""
    column: int | None = None
    """Its column."""


@dataclass(frozen=True, slots=True)
class LaunchProblem:
    """A flag or value the engine rejects, or a value outside what the doctor can compute with."""

    code: str
    """``config.launch-unknown-flag``, ``-bad-value``, ``-range`` or ``-deprecated``."""
    severity: str
    """``error`` or ``warning``."""
    message: str
    """What is wrong, quoting the engine."""
    fix: str
    """The edit."""
    observed: str
    """What was written."""
    expected: str
    """What the engine accepts."""
    line: int | None = None
    """Where."""
    column: int | None = None
    """Its column."""
    key: str = ""
    """The config key."""


@dataclass(frozen=True, slots=True)
class LaunchRecord:
    """The launch command, typed once; every check reads this."""

    engine: str
    """``vllm`` or ``sglang``."""
    flags: EngineFlags
    """Whose definitions were used, and why."""
    values: dict[str, LaunchValue] = field(default_factory=dict)
    """Destination (``max_model_len``) -> value, for every flag that was read without a problem."""
    problems: list[LaunchProblem] = field(default_factory=list)
    """Everything the engine (or the doctor's ranges) rejects."""
    model: LaunchValue | None = None
    """``vllm serve MODEL``'s positional model."""

    def setting(self, meaning: str) -> LaunchValue | None:
        """The value of a setting by meaning (``max-model-len`` is SGLang's ``--context-length``)."""
        engine = get(self.engine)
        names = {f"--{n}" for n in engine.settings.get(meaning, (meaning,))}
        if meaning == "model" and self.model is not None:
            named = next((v for v in self.values.values() if names & set(v.spec.names)), None)
            return named or self.model
        for value in self.values.values():
            if names & set(value.spec.names):
                return value
        return None

    def number(self, meaning: str) -> Any:
        """The typed value of a setting, or None."""
        found = self.setting(meaning)
        return None if found is None else found.value


def _closest(name: str, flags: EngineFlags) -> str:
    options = sorted({n for s in flags.flags for n in s.names if n.startswith("--")})
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return close[0] if close else ""


class _Reader:
    def __init__(self, engine: str, flags: EngineFlags) -> None:
        self.engine = get(engine)
        self.flags = flags
        self.index = flags.index()
        self.longs = sorted(n for n in self.index if n.startswith("--"))
        self.values: dict[str, LaunchValue] = {}
        self.problems: list[LaunchProblem] = []
        self.model: LaunchValue | None = None

    def _joined_short(self, word: str) -> str:
        """The engine's short options that take their value joined (vLLM: ``-O3`` is ``--optimization-level 3``)."""
        for short, long in self.engine.joined_short.items():
            if long not in self.index:
                continue
            if word == short:
                return long
            joined = re.fullmatch(re.escape(short) + r"=?(\S+)", word)
            if joined:
                return f"{long}={joined.group(1)}"
        return word

    def lookup(self, option: str) -> tuple[FlagSpec | None, str]:
        """(the flag, the option's name as the engine reads it)."""
        name = option
        if self.engine.underscore_flags and name.startswith("--"):
            head, dot, rest = name[2:].partition(".")
            name = "--" + head.replace("_", "-") + dot + rest
        spec = self.index.get(name)
        if spec is None and "." in name and name.startswith("--"):
            base = self.index.get(name.split(".", 1)[0])
            if base is not None and base.kind in JSON_KINDS:
                return base, name  # --compilation-config.level 3: one key of a JSON flag
        if spec is None and name.startswith("--") and len(name) > 3:  # argparse accepts a unique prefix
            matches = {self.index[n].names[0] for n in self.longs if n.startswith(name)}
            if len(matches) == 1:
                spec = self.index[next(n for n in self.longs if n.startswith(name))]
        return spec, name

    def unknown(self, option: str, line: int | None, column: int | None, extra: str = "") -> None:
        close = _closest(option.split("=", 1)[0], self.flags)
        hint = f"; did you mean {close}?" if close else ""
        written = f"{option} {extra}".strip()
        self.problems.append(
            LaunchProblem(
                "config.launch-unknown-flag",
                "error",
                f"{self.engine.title} stops before starting: 'error: unrecognized arguments: {written}' "
                f"({option} is not a flag of {self.engine.title} {self.flags.version}){hint}",
                f"write {close}" if close else f"remove {option} (see `{self.engine.name} --help`)",
                option,
                close or "a flag the engine defines",
                line,
                column,
                option.lstrip("-"),
            )
        )

    def accept(self, spec: FlagSpec, option: str, text: str | None, value: Any, where: tuple[Any, ...]) -> None:
        line, column, key = where
        if spec.deprecated:
            self.problems.append(
                LaunchProblem(
                    "config.launch-deprecated",
                    "warning",
                    f"{option} is deprecated in {self.engine.title} {self.flags.version}: {spec.deprecated}",
                    f"drop {option} or use what the message names",
                    option,
                    "a current flag",
                    line,
                    column,
                    key,
                )
            )
        if text is not None and "." in option.split("=", 1)[0]:
            value, text = text, None  # --compilation-config.cudagraph_mode FULL: one key, vLLM keeps the word
        if text is not None:
            value, message = convert(spec, text, engine_json_message=self.engine.json_message)
            if message:
                self.problems.append(self.bad_value(spec, option, text, message, where))
                return
        problem = self.bounds(spec, option, value, where)
        if problem is not None:
            self.problems.append(problem)
            return
        dest = spec.dest or spec.names[0].lstrip("-").replace("-", "_")
        if "." in option and dest in self.values and isinstance(self.values[dest].value, dict):
            return  # one key of a JSON flag given as a whole too: the engine merges them
        self.values[dest] = LaunchValue(spec, option, value, key, line, column)

    def bad_value(self, spec: FlagSpec, option: str, text: str, message: str, where: tuple[Any, ...]) -> LaunchProblem:
        line, column, key = where
        fix = f"give {option} a value the engine accepts"
        expected = spec.kind
        if spec.kind in JSON_KINDS:
            example = _json_example(text)
            fix = f"{option} '{example}'   (JSON, in single quotes so the shell keeps the double quotes)"
            expected = "a JSON object"
        elif spec.choices:
            expected = "one of " + ", ".join(spec.choices)
            close = difflib.get_close_matches(text, spec.choices, n=1, cutoff=0.5)
            fix = f"{option} {close[0] if close else spec.choices[0]}"
        return LaunchProblem(
            "config.launch-bad-value",
            "error",
            f"{self.engine.title} stops before starting: '{message}'",
            fix,
            f"{option} {text}",
            expected,
            line,
            column,
            key,
        )

    def bounds(self, spec: FlagSpec, option: str, value: Any, where: tuple[Any, ...]) -> LaunchProblem | None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None
        line, column, key = where
        meaning = next(
            (m for m, names in self.engine.settings.items() if {f"--{n}" for n in names} & set(spec.names)), ""
        )
        low, high, unit = RANGES.get(meaning, (-math.inf, math.inf, ""))
        bounds = spec.bounds
        bad = not math.isfinite(value) if isinstance(value, float) else False
        if meaning == "max-model-len" and value == -1 and spec.kind == "token-count-or-auto":
            return None
        if meaning == "gpu-memory-utilization":
            bad = bad or not 0 < value <= 1
            accepted = "more than 0 and at most 1"
        else:
            bad = bad or value < low or value > high
            accepted = f"{_figure(low)} to {_figure(high)}{' ' + unit if unit else ''}" if math.isfinite(high) else ""
        for name, limit in bounds.items():
            if {"gt": value <= limit, "ge": value < limit, "lt": value >= limit, "le": value > limit}[name]:
                bad = True
        if not bad:
            return None
        if bounds and not accepted:
            accepted = ", ".join(f"{k} {_figure(v)}" for k, v in sorted(bounds.items()))
        shown = str(value) if len(str(value)) <= 40 else str(value)[:20] + f"... ({len(str(value))} digits)"
        return LaunchProblem(
            "config.launch-range",
            "error",
            f"{option} {shown} is outside what {self.engine.title} can run with: accepted values are {accepted}",
            f"{option} {low if meaning != 'gpu-memory-utilization' else 0.9:g}" if meaning else f"fix {option}",
            f"{option} {shown}",
            accepted,
            line,
            column,
            key,
        )

    def words(self, words: list[list[Any]]) -> None:
        start = _program_end(words, self.engine.name)
        end = next((k for k in range(start, len(words)) if words[k][0] is None), len(words))
        kept: list[list[Any]] = []
        skip_target = False
        for entry in words[:end]:
            shown = str(entry[0])
            if skip_target:
                skip_target = False
                continue
            if _redirection(shown):
                skip_target = re.fullmatch(r"\d*(>>?|<)", shown) is not None  # `> log`: the target is the next word
                continue
            kept.append(entry)
        words = kept
        i = start
        positional_seen = False
        while i < len(words):
            word, line, column = str(words[i][0]), words[i][1], words[i][2]
            i += 1
            if not word.startswith("-") or word == "-" or _is_number(word):
                if self.engine.positional_model and not positional_seen and i - 1 == start:
                    positional_seen = True
                    self.model = LaunchValue(FlagSpec(names=["model"]), "model", word, "model", line, column)
                    continue
                self.unknown(word, line, column)
                continue
            word = self._joined_short(word)
            option, eq, inline = word.partition("=")
            spec, name = self.lookup(option)
            if spec is None:
                following = words[i][0] if i < len(words) and not str(words[i][0]).startswith("-") else ""
                self.unknown(option, line, column, inline if eq else str(following))
                if following:
                    i += 1
                continue
            key = name.lstrip("-")
            if not spec.takes_value:
                if eq:
                    message = f"argument {spec.display}: ignored explicit argument {inline!r}"
                    if spec.kind == "bool-optional" or inline.lower() not in ("true", "false"):
                        self.problems.append(self.bad_value(spec, option, inline, message, (line, column, key)))
                        continue
                value = not name.startswith("--no-") if spec.kind == "bool-optional" else spec.kind != "store-false"
                self.accept(spec, option, None, value, (line, column, key))
                continue
            if eq:
                self.accept(spec, option, inline, None, (line, column, key))
                continue
            taken: list[list[Any]] = []
            while i < len(words) and (not str(words[i][0]).startswith("-") or _is_number(str(words[i][0]))):
                taken.append(words[i])
                i += 1
                if spec.nargs not in ("+", "*"):
                    break
            if not taken:
                if spec.nargs in ("?", "*") or spec.kind == "optional-str":
                    self.accept(spec, option, None, True, (line, column, key))
                    continue
                self.problems.append(
                    self.bad_value(
                        spec, option, "", f"argument {spec.display}: expected one argument", (line, column, key)
                    )
                )
                continue
            value_line, value_column = taken[0][1], taken[0][2]
            if len(taken) > 1:
                for part in taken:
                    _, message = convert(spec, str(part[0]), engine_json_message=self.engine.json_message)
                    if message:
                        self.problems.append(
                            self.bad_value(spec, option, str(part[0]), message, (part[1], part[2], key))
                        )
                        break
                else:
                    self.accept(spec, option, None, [str(p[0]) for p in taken], (value_line, value_column, key))
                continue
            self.accept(spec, option, str(taken[0][0]), None, (value_line, value_column, key))

    def mapping(self, config: ConfigFacts) -> None:
        for key, raw in config.data.items():
            option = "--" + str(key).lstrip("-")
            line, column = config.position(str(key))
            spec, name = self.lookup(option)
            if spec is None:
                self.unknown(option, line, column)
                continue
            where = (line, column, str(key))
            if isinstance(raw, bool) or raw is None:
                if spec.takes_value and raw is not None and spec.kind not in ("any", "str", "optional-str"):
                    self.problems.append(
                        self.bad_value(spec, option, str(raw), f"argument {spec.display}: expected a value", where)
                    )
                    continue
                self.accept(spec, option, None, raw, where)
            elif isinstance(raw, (dict, list)) and (spec.kind in JSON_KINDS or spec.nargs or spec.kind == "any"):
                self.accept(spec, option, None, raw, where)
            else:
                self.accept(spec, option, str(raw), None, where)

    def ranges_inside(self) -> None:
        """max_pixels / min_pixels inside --mm-processor-kwargs, and the image count of --limit-mm-per-prompt."""
        for dest, value in list(self.values.items()):
            option = value.written
            if dest == "mm_processor_kwargs" and isinstance(value.value, dict):
                for key in ("max_pixels", "min_pixels"):
                    pixels = value.value.get(key)
                    if pixels is None:
                        continue
                    if not isinstance(pixels, int) or isinstance(pixels, bool) or not 1 <= pixels <= PIXELS_MAX:
                        shown = repr(pixels) if len(repr(pixels)) <= 40 else repr(pixels)[:20] + "..."
                        self.problems.append(
                            LaunchProblem(
                                "config.launch-range",
                                "error",
                                f"{option} sets {key} to {shown}: the image processor needs a whole number of "
                                f"pixels from 1 to {PIXELS_MAX:,}",
                                f"{option} '{{\"{key}\": 5000000}}'",
                                f"{key}: {shown}",
                                f"1 <= {key} <= {PIXELS_MAX}",
                                value.line,
                                value.column,
                                value.key,
                            )
                        )
                        del self.values[dest]
                        break


def _json_example(text: str) -> str:
    """The JSON a user most likely meant: ``image=10,video=1`` -> ``{"image": 10, "video": 1}``."""
    import json

    pairs = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*[=:]\s*([A-Za-z0-9_.]+)", text)
    if not pairs:
        return '{"image": 10}' if "image" in text else "{}"
    out: dict[str, Any] = {}
    for name, raw in pairs[:8]:
        out[name] = int(raw) if raw.isdigit() and len(raw) < 19 else raw
    return json.dumps(out, separators=(",", ":"))


def _redirection(word: str) -> bool:
    """A shell redirection (``>log``, ``2>``, ``>>``): not a word the engine sees."""
    return bool(re.match(r"^\d*(>>?|<)", word))


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _program_end(words: list[list[Any]], name: str) -> int:
    """Index of the first word after the engine's program (``vllm serve``, ``-m sglang.launch_server``, an image)."""
    for i, (word, *_rest) in enumerate(words):
        if word is not None and starts_engine(str(word), name):
            nxt = i + 1
            if nxt < len(words) and str(words[nxt][0]) == "serve":
                nxt += 1
            return nxt
    first = next((i for i, w in enumerate(words) if w[0] is not None and str(w[0]).startswith("-")), len(words))
    return first


_CACHE: dict[int, tuple[Any, LaunchRecord | None]] = {}


def read(snap: Snapshot) -> LaunchRecord | None:
    """The launch command of the snapshot's config, typed by its engine's definitions (None: no launch file).

    Read once per snapshot: every check that asks gets the same record.
    """
    config = snap.config
    if config is None or not config.parsed or not config.engine:
        return None
    cached = _CACHE.get(id(snap))
    if cached is not None and cached[0] is snap:
        return cached[1]
    record = read_config(config, flags_for(snap, config.engine, named_version(snap, config.engine)))
    _CACHE.clear()
    _CACHE[id(snap)] = (snap, record)
    return record


def named_version(snap: Snapshot, engine: str) -> str:
    """The engine version the launch file itself names, else empty.

    ``pip install vllm==0.33.0`` before the command, or an image tag: ``vllm/vllm-openai:v0.33.0``,
    ``lmsysorg/sglang:v0.5.9-cu126``.
    """
    words = " ".join(str(w[0]) for w in snap.config.words[:2000]) if snap.config is not None else ""
    pattern = rf"\b{re.escape(engine)}(?:-openai)?(?:==|:v?)(\d+\.\d+(?:\.\d+)?(?:\.post\d+)?)"
    found = re.search(pattern, words)
    return found.group(1) if found else ""


def read_config(config: ConfigFacts, flags: EngineFlags) -> LaunchRecord:
    """Read one launch config (shell words or a mapping of flags) against the engine's definitions."""
    reader = _Reader(config.engine, flags)
    if flags.flags:
        if config.format == "flags":
            reader.words(config.words)
        else:
            reader.mapping(config)
        reader.ranges_inside()
    return LaunchRecord(config.engine, flags, reader.values, reader.problems, reader.model)
