"""What a vLLM or SGLang launch command says, whatever its spelling.

A launch command comes as a shell file (``python3 -m vllm.entrypoints.openai.api_server ...``,
``vllm serve MODEL ...``, ``python3 -m sglang.launch_server ...``) or as a YAML/JSON mapping of
flag names to values (vLLM's ``--config`` file). The two engines name the same settings
differently (``--max-model-len`` / ``--context-length``, ``--tensor-parallel-size`` / ``--tp-size``,
``--gpu-memory-utilization`` / ``--mem-fraction-static``, ``--model`` / ``--model-path``): the
helpers here read them by meaning, so that the checks ask one question for both.
"""

from __future__ import annotations

import re
from typing import Any

VLLM = "vllm"
SGLANG = "sglang"

# The first spelling is the engine's own; the others are accepted aliases (underscores are also read).
SETTINGS: dict[str, dict[str, tuple[str, ...]]] = {
    VLLM: {
        "model": ("model",),
        "served-model-name": ("served-model-name",),
        "max-model-len": ("max-model-len",),
        "tensor-parallel-size": ("tensor-parallel-size", "tp"),
        "gpu-memory-utilization": ("gpu-memory-utilization",),
        "dtype": ("dtype",),
        "kv-cache-dtype": ("kv-cache-dtype",),
        "max-num-batched-tokens": ("max-num-batched-tokens",),
        "max-num-seqs": ("max-num-seqs",),
        "limit-mm-per-prompt": ("limit-mm-per-prompt",),
        "mm-processor-kwargs": ("mm-processor-kwargs",),
        "mm-encoder-tp-mode": ("mm-encoder-tp-mode",),
        "port": ("port",),
        "host": ("host",),
        "enforce-eager": ("enforce-eager",),
    },
    SGLANG: {
        "model": ("model-path", "model"),
        "served-model-name": ("served-model-name",),
        "max-model-len": ("context-length",),
        "tensor-parallel-size": ("tp-size", "tp", "tensor-parallel-size"),
        "gpu-memory-utilization": ("mem-fraction-static",),
        "dtype": ("dtype",),
        "kv-cache-dtype": ("kv-cache-dtype",),
        "max-num-batched-tokens": ("chunked-prefill-size",),
        "max-num-seqs": ("max-running-requests",),
        "limit-mm-per-prompt": (),
        "mm-processor-kwargs": (),
        "mm-encoder-tp-mode": (),
        "port": ("port",),
        "host": ("host",),
        "enforce-eager": ("disable-cuda-graph",),
    },
}
"""Setting (vLLM's flag name) -> each engine's flag names for it."""

DEFAULT_PORT = {VLLM: 8000, SGLANG: 30000}
"""The port each engine's OpenAI-compatible server listens on without ``--port``."""

_SGLANG_ONLY = {"model-path", "context-length", "tp-size", "mem-fraction-static", "chunked-prefill-size"}
_VLLM_ONLY = {
    "max-model-len",
    "tensor-parallel-size",
    "gpu-memory-utilization",
    "limit-mm-per-prompt",
    "mm-encoder-tp-mode",
    "max-num-batched-tokens",
}


def engine_of(text: str, fmt: str, data: dict[str, Any] | None) -> str:
    """``vllm``, ``sglang`` or empty: the program a launch file starts, else the flags only one engine has."""
    if fmt == "flags":
        head = text.split(" --", 1)[0]
        words = re.findall(r"[A-Za-z0-9_.]+", head)
        if any(w == "sglang" or w.startswith("sglang.") for w in words):
            return SGLANG
        if any(w == "vllm" or w.startswith("vllm.") for w in words):
            return VLLM
    names = {_flag(k) for k in (data or {})}
    if names & _SGLANG_ONLY:
        return SGLANG
    if names & _VLLM_ONLY:
        return VLLM
    return ""


def _flag(key: Any) -> str:
    return str(key).replace("_", "-").lstrip("-")


def setting(data: dict[str, Any], engine: str, name: str) -> tuple[str, Any] | None:
    """(the key as written, its value) for a setting under any of the engine's spellings; None when unset."""
    wanted = SETTINGS.get(engine or VLLM, SETTINGS[VLLM]).get(name, (name,))
    for key, value in data.items():
        if _flag(key) in wanted and value is not None:
            return str(key), value
    return None


def port_of(data: dict[str, Any], engine: str) -> int | None:
    """The port the server will listen on (``--port`` or the engine's default)."""
    found = setting(data, engine, "port")
    if found is None:
        return DEFAULT_PORT.get(engine) if engine else None
    value = found[1]
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536 else None


TOKEN_COUNT_FLAGS = frozenset({"max-model-len"})
"""Flags (by meaning) whose value is a number of tokens, which vLLM also accepts as ``32k``."""


def token_count(value: Any) -> int | None:
    """``25480``, or vLLM's human-readable ``32k`` (x1000) / ``32K`` (x1024) / ``1m`` / ``1M``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*", str(value))
    if found is None:
        return None
    unit = found.group(2)
    scale = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "K": 1024, "M": 1024**2, "G": 1024**3}[unit]
    return int(float(found.group(1)) * scale)
