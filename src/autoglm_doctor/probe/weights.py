"""Model-folder facts, read from file headers only (filled in by the weights work)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autoglm_doctor.configfile.facts import ConfigFacts
    from autoglm_doctor.probe.collect import GatherOptions


@dataclass(frozen=True)
class ModelFacts:
    """The located model and what its headers say.

    Other areas read these: cuda.memory (parameter bytes, attention shape for the KV cache),
    config.values (max_position_embeddings, auto_map), smoke.load-infer (path).
    """

    path: str = ""
    """Where the model folder is (resolved, absolute); empty when nothing was located."""
    source: str = ""
    """How it was located: ``--model``, ``config``, ``MODEL_WEIGHT_PATH`` or ``hub-cache``."""
    hub_id: str = ""
    """The hub id the user gave (``zai-org/AutoGLM-Phone-9B``), when it came from the HF cache."""
    exists: bool = False
    """The path exists and is a readable folder."""
    parameter_count: int | None = None
    """Total number of parameters from the safetensors headers."""
    parameter_bytes: int | None = None
    """Total bytes of the tensors as stored."""
    bytes_by_dtype: dict[str, int] = field(default_factory=dict)
    """Stored bytes per safetensors dtype (``BF16``, ``F16``, ``F32``...)."""
    torch_dtype: str = ""
    """``torch_dtype`` (or ``dtype``) from config.json."""
    max_position_embeddings: int | None = None
    """From config.json (or its text_config for vision-language models)."""
    auto_map: dict[str, Any] = field(default_factory=dict)
    """config.json's auto_map: non-empty means the model needs trust_remote_code."""
    architectures: list[str] = field(default_factory=list)
    """config.json's architectures."""
    model_type: str = ""
    """config.json's model_type."""
    num_hidden_layers: int | None = None
    """Transformer layers (for the KV-cache estimate)."""
    hidden_size: int | None = None
    """Hidden size (for the KV-cache estimate)."""
    num_attention_heads: int | None = None
    """Attention heads."""
    num_key_value_heads: int | None = None
    """KV heads (grouped-query attention); defaults to num_attention_heads."""
    head_dim: int | None = None
    """Per-head dimension when config.json gives it."""


def gather(options: GatherOptions, config: ConfigFacts | None = None) -> ModelFacts | None:
    """Gather the model facts for ``options`` (None: nothing to gather yet)."""
    return None
