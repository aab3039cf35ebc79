"""What a vLLM or SGLang launch command names, by meaning, for the host-side gatherers.

The engines' facts live in :mod:`autoglm_doctor.engines` (one module per engine); this module keeps
the names the gatherers and other callers already use (``engine_of``, ``setting``, ``port_of``) as
thin delegations, for the raw mapping a config file parses into, before any engine definitions
are read. Checks read the typed record of :mod:`autoglm_doctor.engines.launch` instead.
"""

from __future__ import annotations

from typing import Any

from autoglm_doctor import engines
from autoglm_doctor.engines.base import token_count as _token_count

SETTINGS: dict[str, dict[str, tuple[str, ...]]] = {name: dict(e.settings) for name, e in engines.ENGINES.items()}
"""Setting (vLLM's flag name) -> each engine's flag names for it (from the engine modules)."""
DEFAULT_PORT = {name: e.default_port for name, e in engines.ENGINES.items()}
"""The port each engine's OpenAI-compatible server listens on without ``--port``."""
TOKEN_COUNT_FLAGS = frozenset({"max-model-len"})
"""Flags (by meaning) whose value is a number of tokens, which vLLM also accepts as ``32k``."""


def engine_of(text: str, fmt: str, data: dict[str, Any] | None) -> str:
    """``vllm``, ``sglang`` or empty (kept for callers; see :func:`autoglm_doctor.engines.detect`)."""
    return engines.detect(text, fmt, data)


def _flag(key: Any) -> str:
    return str(key).replace("_", "-").lstrip("-")


def setting(data: dict[str, Any], engine: str, name: str) -> tuple[str, Any] | None:
    """(the key as written, its value) for a setting under any of the engine's spellings; None when unset."""
    wanted = engines.get(engine).settings.get(name, (name,))
    for key, value in data.items():
        if _flag(key) in wanted and value is not None:
            return str(key), value
    return None


def port_of(data: dict[str, Any], engine: str) -> int | None:
    """The port the server will listen on (``--port`` or the engine's default)."""
    found = setting(data, engine, "port")
    if found is None:
        return engines.get(engine).default_port if engine else None
    value = found[1]
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536 else None


def token_count(value: Any) -> int | None:
    """``25480``, or vLLM's human-readable ``32k`` (x1000) / ``32K`` (x1024)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return _token_count(str(value))
