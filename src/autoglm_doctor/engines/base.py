"""What every serving engine answers: its flags, its model registry, its memory accounting, its dtype rules.

The shape is pip's metadata backends (``pip/_internal/metadata/base.py``): this module states the
interface, ``vllm.py`` and ``sglang.py`` implement it, ``engines/__init__.py`` hands callers the
engine for a name and picks where its flag definitions come from (the installed engine's files, else
the table generated from the released files of the version named). No check holds an engine fact.

A new engine is one module in this package that defines ``ENGINE``, an instance of a subclass of
:class:`Engine` that sets every name in :data:`REQUIRED_ATTRIBUTES` and overrides every abstract
method (``Engine.__abstractmethods__``); Python refuses to instantiate a subclass that misses a
method, and :meth:`Engine.__init__` refuses one that leaves an attribute unset, so the module fails
at discovery, loudly, instead of answering a question with the base class's guess.
"""

from __future__ import annotations

import json
import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autoglm_doctor.engines.memory import Allowance, MemoryModel, ProfileShape, shared_allowances
from autoglm_doctor.probe.libraries import ServedArchitectures

INT_KINDS = frozenset({"int", "token-count", "token-count-or-auto"})
"""Kinds whose value is a whole number."""
JSON_KINDS = frozenset({"json", "json-plain", "json-or-str", "dataclass-json"})
"""Kinds whose value is read with ``json.loads``."""
NO_VALUE_KINDS = frozenset({"store-true", "store-false", "bool-optional", "count"})
"""Kinds of flag that take no value word (``--trust-remote-code``)."""


@dataclass(frozen=True, slots=True)
class FlagSpec:
    """One command-line flag as the engine's own ``add_argument`` call defines it."""

    names: list[str]
    """Every option string, the first one the engine's own spelling (``--tensor-parallel-size``, ``-tp``)."""
    kind: str = "str"
    """How the value is read: ``int``, ``float``, ``str``, ``json`` (vLLM's ``parse_type(json.loads)``),
    ``json-plain`` (argparse ``type=json.loads``), ``json-or-str``, ``dataclass-json``, ``token-count``
    (``32k``), ``token-count-or-auto``, ``store-true``, ``store-false``, ``bool-optional``
    (``--X``/``--no-X``), ``optional-str`` (a bare flag is True), ``count``, ``any`` (a parser the doctor
    does not model: every value is accepted)."""
    choices: list[str] = field(default_factory=list)
    """The values the engine accepts (empty: any value of the kind)."""
    nargs: str = ""
    """argparse's nargs: ``?``, ``+``, ``*`` or empty (one value)."""
    deprecated: str = ""
    """Why the engine calls the flag deprecated (empty: it does not)."""
    optional: bool = False
    """``None`` and an empty value are accepted (vLLM's ``optional_type``)."""
    bounds: dict[str, float] = field(default_factory=dict)
    """The engine's own range of the value (pydantic ``gt``/``ge``/``lt``/``le``)."""
    dest: str = ""
    """The attribute the value lands in (the field name)."""

    @property
    def takes_value(self) -> bool:
        """Whether the flag reads the next word as its value."""
        return self.kind not in NO_VALUE_KINDS

    @property
    def display(self) -> str:
        """The names as argparse's messages print them (``--tensor-parallel-size/-tp``)."""
        return "/".join(self.names)


@dataclass(frozen=True, slots=True)
class EngineFlags:
    """Every flag of one engine version, and where the definitions were read."""

    engine: str
    """``vllm`` or ``sglang``."""
    version: str
    """The engine version the definitions belong to."""
    source: str
    """``installed`` (its files in the target environment) or ``table`` (the generated table)."""
    why: str
    """Why this version's definitions were used (said in the report)."""
    flags: list[FlagSpec] = field(default_factory=list)
    """The flags."""
    files: list[str] = field(default_factory=list)
    """The files the definitions were read from."""
    problems: list[str] = field(default_factory=list)
    """Files that could not be read or held nothing recognisable."""
    table: str = ""
    """The generated table (release line) whose flags these are, when the installed files are byte-identical
    to the release's: a snapshot then keeps this name instead of the flags."""

    def index(self) -> dict[str, FlagSpec]:
        """Option string -> flag (``--no-X`` of a BooleanOptionalAction included)."""
        out: dict[str, FlagSpec] = {}
        for spec in self.flags:
            for name in spec.names:
                out.setdefault(name, spec)
                if spec.kind == "bool-optional" and name.startswith("--"):
                    out.setdefault("--no-" + name[2:], spec)
        return out


def _number_text(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def convert(spec: FlagSpec, text: str, *, engine_json_message: str) -> tuple[Any, str]:
    """(the typed value, "") or (None, the engine's error message) for one value word of ``spec``.

    The conversions are argparse's (``int(text)``, ``float(text)``, ``json.loads(text)``, choices
    compared after conversion); ``engine_json_message`` is the engine's wording for a JSON value its
    wrapper rejects, with ``{value}`` in it.
    """
    kind = spec.kind
    where = f"argument {spec.display}"
    if spec.optional and text in ("", "None"):
        return None, ""
    value: Any = text
    if kind in ("int", "count"):
        try:
            value = int(text) if len(text) <= 4300 else None
        except ValueError:
            value = None
        if value is None:
            return None, f"{where}: invalid int value: {_number_text(text)!r}"
    elif kind == "float":
        try:
            value = float(text)
        except ValueError:
            return None, f"{where}: invalid float value: {_number_text(text)!r}"
    elif kind in ("token-count", "token-count-or-auto"):
        value = token_count(text, auto=kind == "token-count-or-auto")
        if value is None:
            return None, f"{where}: invalid human_readable_int value: {_number_text(text)!r}"
    elif kind in ("json", "dataclass-json", "json-or-str"):
        if kind == "json-or-str" and not re.match(r"(?s)^\s*{.*}\s*$", text):
            return text, ""
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            return None, f"{where}: " + engine_json_message.format(value=text)
    elif kind == "json-plain":
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            return None, f"{where}: invalid loads value: {text!r}"
    if spec.choices and kind not in JSON_KINDS and kind != "any":
        shown = [str(c) for c in spec.choices]
        if str(value) not in shown:
            listed = ", ".join(repr(c) for c in shown)
            return None, f"{where}: invalid choice: {text!r} (choose from {listed})"
    return value, ""


def token_count(text: str, *, auto: bool = False) -> int | None:
    """VLLM's ``human_readable_int``: ``25480``, ``32k`` (x1000), ``32K`` (x1024), ``25.6k``; ``auto`` -> -1."""
    value = text.strip()
    if auto and (value == "-1" or value.lower() == "auto"):
        return -1
    found = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmMgGtT])", value)
    if found:
        number, unit = found.groups()
        if unit in "kmgt":
            scale = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}[unit]
            product = float(number) * scale
            return int(product) if math.isfinite(product) else None
        if "." in number:
            return None  # vLLM: binary multipliers take whole numbers only
        return int(number) * {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}[unit]
    try:
        return int(value) if len(value) <= 4300 else None
    except ValueError:
        return None


REQUIRED_ATTRIBUTES = ("name", "title", "settings", "default_port", "memory", "only_flags")
"""Class attributes every engine sets (the base class's are placeholders)."""


class Engine(ABC):
    """A serving engine as the doctor asks it questions. Subclasses set the class attributes."""

    name = ""
    """``vllm``, ``sglang``."""
    title = ""
    """How messages name it (``vLLM``)."""
    settings: dict[str, tuple[str, ...]] = {}  # noqa: RUF012  (read-only class data)
    """Setting by meaning (vLLM's flag name without dashes) -> this engine's flag names for it."""
    default_port = 0
    """The port its OpenAI-compatible server listens on without ``--port``."""
    memory: MemoryModel | None = None
    """How it accounts for GPU memory (its share, KV block, where activations live; see ``engines/memory.py``)."""
    json_message = "invalid loads value: {value!r}"
    """How its parser words a JSON value it cannot read (``{value}`` is the value)."""
    positional_model = False
    """``vllm serve MODEL``: the model may come as the first word after the subcommand."""
    only_flags: frozenset[str] = frozenset()
    """Flag names (without dashes) that only this engine has: a YAML/JSON mapping using one is its flag file."""
    underscore_flags = False
    """Its parser reads ``--max_model_len`` as ``--max-model-len`` (the part before a ``.``)."""
    joined_short: dict[str, str] = {}  # noqa: RUF012  (read-only class data)
    """Short options whose value may be joined to them, and the long option they stand for."""
    first_release = "0"
    """The oldest release the server pack supports: ``tools/engine_tables.py`` makes tables from it on."""
    release_line_parts = 3
    """How many parts of a version make a release line with one table (vLLM: 2, ``0.12``; SGLang: 3)."""
    pip_download: tuple[str, ...] = (
        "--only-binary",
        ":all:",
        "--python-version",
        "3.11",
        "--platform",
        "manylinux_2_28_x86_64",
    )
    """How ``tools/engine_tables.py`` asks pip for a release's files (default: the Linux wheel)."""

    def __init__(self) -> None:
        """Refuse an engine that leaves one of :data:`REQUIRED_ATTRIBUTES` at the base class's placeholder."""
        unset = [key for key in REQUIRED_ATTRIBUTES if getattr(type(self), key) is getattr(Engine, key)]
        if unset:
            raise TypeError(f"engine {type(self).__name__} does not set {', '.join(unset)} (engines/base.py)")

    @property
    def model(self) -> MemoryModel:
        """:attr:`memory`, typed as set (``__init__`` refuses an engine without one)."""
        assert self.memory is not None
        return self.memory

    def registry(self, libraries: Any) -> ServedArchitectures | None:
        """Its model registry as :meth:`read_registry` read it into the snapshot, or None when it is not installed."""
        found = getattr(libraries, "engines", None) if libraries is not None else None
        served = found.get(self.name) if isinstance(found, dict) else None
        return served if isinstance(served, ServedArchitectures) else None

    @abstractmethod
    def read_registry(self, root: Path) -> ServedArchitectures:
        """The architectures it serves, read as text from its files under ``root`` (the site-packages folder).

        Host side, never imported, bounded: a file that cannot be read is named in ``problems``.
        """

    @abstractmethod
    def profile_peak(self, shape: ProfileShape) -> tuple[int, str]:
        """(bytes, how they were made) of the activation peak it takes out of its budget at start-up, on one GPU.

        ``(0, why)`` when its activations live outside the budget. The batch it profiles when the launch
        names none is the engine's own (vLLM: ``profile_batch``).
        """

    def outside_budget(self, shape: ProfileShape) -> list[Allowance]:
        """What it keeps on one GPU beyond its budget: the CUDA context, and NCCL when the model is split."""
        context, nccl = shared_allowances(shape.tensor_parallel)
        return [context] + ([nccl] if nccl is not None else [])

    def table_line(self, version: str) -> str:
        """The release line a version's table is named after (the whole version unless the engine says fewer parts)."""
        parts = version.split(".")
        return ".".join(parts[: self.release_line_parts]) if self.release_line_parts < 3 else version

    def table_extras(self, files: dict[str, str]) -> dict[str, Any]:
        """What else its generated table keeps from its files (vLLM: the float16 facts)."""
        del files
        return {}

    def flag(self, meaning: str) -> str:
        """The engine's own spelling of a setting (``--context-length`` for SGLang's max-model-len)."""
        names = self.settings.get(meaning) or (meaning,)
        return f"--{names[0]}"

    def has(self, meaning: str) -> bool:
        """Whether the engine has a flag for this setting at all (SGLang has no --limit-mm-per-prompt)."""
        return bool(self.settings.get(meaning, (meaning,)))

    @abstractmethod
    def read_flags(self, files: dict[str, str]) -> tuple[list[FlagSpec], list[str]]:
        """Flag definitions from the engine's own source files (relative path -> text), and problems."""

    @abstractmethod
    def flag_files(self, listing: list[str]) -> list[str]:
        """Which of the package's files (relative paths) hold its flag definitions."""

    def registry_files(self, listing: list[str]) -> list[str]:
        """Which of the package's files (relative paths) :meth:`read_registry` reads (kept with a release's sources).

        None unless the engine says: its tables then carry no architecture list.
        """
        del listing
        return []

    def registry_from_files(self, files: dict[str, str]) -> tuple[list[str], list[str]]:
        """(architectures, problems) from the :meth:`registry_files` of a release (relative path -> text).

        The same reading :meth:`read_registry` does on an installed engine; the tables keep its result.
        """
        del files
        return [], []

    def dtype_on_gpu(self, *, dtype: str, bf16_supported: bool, gpu: str, version: str) -> tuple[str, str]:
        """(the dtype the engine runs at, what it logs when it falls back; empty when it does not).

        ``--dtype auto`` asks for the checkpoint's bfloat16; on a GPU without bfloat16 the engines
        fall back to float16. An explicit ``--dtype bfloat16`` is refused there instead (not a fallback).
        """
        del gpu, version
        if dtype == "auto" and not bf16_supported:
            return "float16", f"{self.title} falls back to float16"
        return {"half": "float16", "float": "float32", "auto": "bfloat16"}.get(dtype, dtype), ""
