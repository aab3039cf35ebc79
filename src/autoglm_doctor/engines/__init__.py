"""The serving engines (vLLM, SGLang): one module each, one interface (``base.Engine``), picked here.

Callers ask :func:`get` for an engine by name and ``engines.target.flags_for`` for its flag
definitions (kept apart from this module so that the snapshot's gatherers may import this one); the
two decide where they come from: the engine's own files in the target environment when they can
be read, else the table generated from the released files of the version installed or named (else
the newest), and says which and why. No caller knows which answered. A third engine is a new module
beside these two, added to :data:`ENGINES`, with its table and its tests.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

from autoglm_doctor.configfile.facts import DOCTOR_ONLY_KEYS
from autoglm_doctor.engines.base import Engine, EngineFlags, FlagSpec

_NOT_ENGINES = frozenset({"base", "launch", "memory", "target"})


def _discover() -> dict[str, Engine]:
    """Every module of this package that defines ``ENGINE``: a new engine is a new file, nothing else.

    The folders scanned are the package's ``__path__``. What a module must define is stated in
    ``engines/base.py`` (``REQUIRED_ATTRIBUTES`` and the abstract methods of ``Engine``); an engine
    that misses one fails here, at import, and so does an ``ENGINE`` that is not an ``Engine``.
    """
    import importlib
    import pkgutil

    found: dict[str, Engine] = {}
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name.startswith("_") or module.name in _NOT_ENGINES:
            continue
        engine = getattr(importlib.import_module(f"{__name__}.{module.name}"), "ENGINE", None)
        if engine is None:
            continue
        if not isinstance(engine, Engine):
            raise TypeError(f"engines/{module.name}.py: ENGINE is {type(engine).__name__}, not an engines.base.Engine")
        found[engine.name] = engine
    return found


ENGINES: dict[str, Engine] = _discover()
"""Every engine the doctor knows, by name (vllm, sglang: one module each)."""
TABLES = Path(__file__).resolve().parents[1] / "knowledge" / "engines"
"""The generated flag tables (``tools/engine_tables.py``)."""
_MAX_FILE = 4 << 20


def get(name: str) -> Engine:
    """The engine called ``name`` (vLLM when unknown: its flags are what launch files name most)."""
    return ENGINES.get(name) or ENGINES["vllm"]


def detect(text: str, fmt: str = "flags", data: dict[str, Any] | None = None) -> str:
    """``vllm``, ``sglang`` or empty: the program a launch file starts, else the flags only one engine has.

    Stable entry point for role detection (a launch command found means a server).
    """
    if fmt == "flags":
        for line in text[: 1 << 16].splitlines():
            installing = False  # pip install vllm, uv pip install sglang: a setup step, not a launch
            for word in line.split():
                if word in ("&&", "||", ";", "|"):
                    installing = False
                installing = installing or word == "install"
                if not installing and any(starts_engine(word, name) for name in ENGINES):
                    return next(name for name in ENGINES if starts_engine(word, name))
    if data and DOCTOR_ONLY_KEYS & {str(k) for k in data}:
        return ""  # the doctor's own config (model_path, torch_dtype...), whatever else it holds
    names = {str(k).replace("_", "-").lstrip("-") for k in (data or {})}
    for engine in ENGINES.values():
        if names & engine.only_flags:
            return engine.name
    return ""


def starts_engine(word: str, name: str) -> bool:
    """Whether a shell word starts engine ``name``.

    ``vllm``, ``sglang.launch_server``, ``/usr/bin/vllm``, or an image: ``vllm/vllm-openai:v0.12.0``,
    ``lmsysorg/sglang:v0.5.9``.
    """
    parts = re.split(r"[/:]", word.strip("'\""))
    return any(p == name or p.startswith(name + ".") or p == f"{name}-openai" for p in parts)


def table_data(
    name: str, version: str, files: dict[str, str], requires: list[str], requires_python: str
) -> dict[str, Any]:
    """What a table holds for one release: its flags, dtype facts and pins, read from its files."""
    engine = get(name)
    read = {path: text for path, text in files.items() if path in engine.flag_files(list(files))}
    flags, problems = engine.read_flags(read)
    pins = requirement_pins(requires)
    registry = {path: text for path, text in files.items() if path in engine.registry_files(list(files))}
    served: dict[str, Any] = {}
    if registry:  # kept for the releases whose files the index still served when they were collected
        architectures, unread = engine.registry_from_files(registry)
        served = {"architectures": architectures, "registry_problems": unread}
    return {
        "engine": name,
        "version": version,
        "files": sorted(files),
        "digests": file_digests(read),
        "problems": problems,
        "flags": [_spec_data(s) for s in flags],
        **served,
        **engine.table_extras(files),
        "pins": pins,
        "requires_python": requires_python,
    }


PINNED = ("torch", "transformers")
"""The requirements of an engine whose range decides what else the environment may hold."""


def requirement_pins(requires: list[str]) -> dict[str, str]:
    """``{"torch": "==2.9.0", "transformers": "<5,>=4.56.0"}`` from Requires-Dist lines (no marker, no extra)."""
    from packaging.requirements import InvalidRequirement, Requirement

    pins: dict[str, str] = {}
    for line in requires:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        name = req.name.lower().replace("_", "-")
        if name in PINNED and req.marker is None and name not in pins:
            pins[name] = str(req.specifier)
    return pins


def pins(name: str, version: str, requires: list[str], requires_python: str) -> tuple[dict[str, str], str, str]:
    """(torch/transformers ranges, Requires-Python, where they were read) of an installed engine.

    Its own metadata's Requires-Dist when it has one; else the generated table of the same release
    line (a metadata file stripped of its requirements, a snapshot from elsewhere).
    """
    found = requirement_pins(requires)
    if found:
        return found, requires_python, f"{name} {version}'s own metadata"
    line, _ = table_for(name, version)
    table = load_table(name, line) if line else {}
    if not table or str(table.get("version", "")).rsplit(".", 1)[0] != version.rsplit(".", 1)[0]:
        return {}, requires_python, ""
    return (
        dict(table.get("pins", {})),
        requires_python or str(table.get("requires_python", "")),
        (f"knowledge/engines/{name}-{line}.json (the release's metadata)"),
    )


def _spec_data(spec: FlagSpec) -> dict[str, Any]:
    data: dict[str, Any] = {"names": spec.names, "kind": spec.kind}
    for key in ("choices", "nargs", "deprecated", "optional", "bounds", "dest"):
        value = getattr(spec, key)
        if value:
            data[key] = value
    return data


def _spec(data: dict[str, Any]) -> FlagSpec:
    return FlagSpec(
        names=[str(n) for n in data["names"]],
        kind=str(data.get("kind", "str")),
        choices=[str(c) for c in data.get("choices", [])],
        nargs=str(data.get("nargs", "")),
        deprecated=str(data.get("deprecated", "")),
        optional=bool(data.get("optional", False)),
        bounds={str(k): float(v) for k, v in data.get("bounds", {}).items()},
        dest=str(data.get("dest", "")),
    )


def table_versions(name: str) -> list[str]:
    """The versions a generated table exists for, oldest first."""
    from packaging.version import InvalidVersion, Version

    def key(line: str) -> Version:
        try:
            return Version(line)
        except InvalidVersion:
            return Version("0")

    found = [path.stem.partition("-")[2] for path in TABLES.glob(f"{name}-*.json")]
    return sorted(found, key=key)


@cache
def load_table(name: str, line: str) -> dict[str, Any]:
    """The generated table of one engine release line."""
    with open(TABLES / f"{name}-{line}.json", encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def table_for(name: str, version: str) -> tuple[str, str]:
    """(the table's release line, why it was chosen) for an engine version ("" : none named)."""
    from packaging.version import InvalidVersion, Version

    lines = table_versions(name)
    if not lines:
        return "", "no table is shipped"
    if version:
        try:
            wanted = Version(version)
        except InvalidVersion:
            wanted = None
        if wanted is not None:
            same = [line for line in lines if Version(line).release == wanted.release[: len(Version(line).release)]]
            if same:
                return same[-1], f"{name} {version} is named"
            older = [line for line in lines if Version(line) <= wanted]
            if older:
                return older[-1], f"{name} {version} is named; the nearest older table is {older[-1]}"
    return lines[-1], "no version is installed or named: the newest table"


def _read_installed(name: str, root: str) -> tuple[dict[str, str], list[str]]:
    engine = get(name)
    listing = []
    base = Path(root)
    for folder, _dirs, names in os.walk(base / name):
        listing += [str((Path(folder) / entry).relative_to(base)) for entry in names if entry.endswith(".py")]
    files: dict[str, str] = {}
    problems: list[str] = []
    for relative in engine.flag_files(listing):
        path = base / relative
        try:
            if path.stat().st_size > _MAX_FILE:
                problems.append(f"{path}: larger than {_MAX_FILE >> 20} MiB, not read")
                continue
            files[relative] = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")
    return files, problems


@cache
def installed_flags(name: str, root: str, version: str) -> EngineFlags | None:
    """The flags of the engine installed under ``root`` (its site-packages), read from its files."""
    files, problems = _read_installed(name, root)
    if not files:
        return None
    where = str(Path(root) / name)
    why = f"{name} {version} is installed in the target ({where})"
    released = _released_table(name, version, files)
    if released is not None:
        # The same bytes through the same parser give the same flags: the suite regenerates every
        # table from the released files (tools/engine_tables.py --check), so the table is the parse.
        # Parsing vLLM 0.34's 40 argument and config modules takes ~0.2 s, hashing them ~3 ms.
        flags, more = [_spec(d) for d in released["flags"]], list(released.get("problems", []))
        why += "; its argument files are byte-identical to the release's, whose parse the table keeps"
        line = table_for(name, version)[0]
    else:
        flags, more = get(name).read_flags(files)
        line = ""
    if not flags:
        return None
    return EngineFlags(
        engine=name,
        version=version,
        source="installed",
        why=why,
        flags=flags,
        files=sorted(str(Path(root) / f) for f in files),
        problems=problems + more,
        table=line,
    )


def file_digests(files: dict[str, str]) -> dict[str, str]:
    """SHA-256 of each file's text (UTF-8), by relative path: what a table was generated from."""
    import hashlib

    return {path: hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest() for path, text in files.items()}


def _released_table(name: str, version: str, files: dict[str, str]) -> dict[str, Any] | None:
    """The generated table of exactly this release when the installed files are the released ones."""
    line, _ = table_for(name, version)
    table = load_table(name, line) if line else {}
    if not table or table.get("version") != version:
        return None
    wanted = table.get("digests", {})
    return table if wanted and wanted == file_digests(files) else None


def table_facts(name: str, version: str) -> dict[str, Any]:
    """The generated table closest to ``version`` (dtype facts, pins), or empty."""
    line, _ = table_for(name, version)
    return load_table(name, line) if line else {}


__all__ = ["ENGINES", "Engine", "EngineFlags", "FlagSpec", "detect", "get", "table_data"]


FLOAT16_BROKEN_FAMILY = frozenset({"glm4", "glm4v", "glm4v_moe", "glm4_moe", "glm4v_text", "glm4v_moe_text"})
"""GLM-4 model types that overflow in float16 (activations beyond float16's range: "!!!!!!!!" replies).

Not stated by the engines for the vision models (vLLM 0.34's ``_FLOAT16_NOT_SUPPORTED_MODELS`` lists
``glm4`` only), so the family rule comes with its sources: vllm-project/vllm#17154 (GLM-4 in float16
answers "!!!!"), zai-org/GLM-4#755 (float16 overflow; use bfloat16 on an Ampere or newer GPU).
"""


def float16_broken(model_type: str) -> str:
    """Why float16 breaks this model type (a source to quote), or empty when it does not."""
    if model_type in FLOAT16_BROKEN_FAMILY:
        return "vllm-project/vllm#17154, zai-org/GLM-4#755"
    table = table_facts("vllm", "")
    if model_type in table.get("float16_unsupported", []):
        return f"vLLM's own _FLOAT16_NOT_SUPPORTED_MODELS ({table.get('version', '')})"
    return ""
