"""A served deployment (a vLLM or SGLang launch command): its settings and the GPU memory it will spend.

The accounting is the same arithmetic for every engine; each engine's facts come from its module
(``engines/<name>.py``, the questions in ``engines/memory.py``). vLLM, for instance, sizes its
memory once at start-up (``vllm/v1/worker/gpu_worker.py``, ``Worker.determine_available_memory``):

- the budget is ``total x`` the engine's share (``--gpu-memory-utilization``; SGLang's
  ``--mem-fraction-static``), ``MemoryModel.default_share`` when unset; an engine whose
  ``MemoryModel.refuses_below_budget`` is set refuses to start when less than that is free;
- the weights load at the served dtype (``--dtype auto``: the checkpoint's ``torch_dtype``,
  16-bit for float32 checkpoints), each GPU holding ``1/--tensor-parallel-size`` of them, except the
  vision tower, which ``--mm-encoder-tp-mode data`` keeps whole on every GPU;
- the engine's start-up profile takes its activation peak out of the budget
  (``Engine.profile_peak``; 0 where activations live outside it, as with SGLang);
- what is left of the budget is the KV cache. One sequence of ``--max-model-len`` tokens needs
  ``ceil(len / block) x block`` tokens (``MemoryModel.kv_block_tokens``) of ``layers x KV heads per
  GPU x head_dim x 2 (K, V) x dtype bytes``; when it does not fit, vLLM stops with "To serve at least
  one request with the model's max seq len (...) ... the estimated maximum model length is N".

What the engine keeps *outside* that budget (``Engine.outside_budget``: the CUDA context, CUDA
graphs, NCCL) has to fit in what is free beyond ``total x share``.

The activation peak and what lies outside the budget are estimates (stated in every finding); the
weights and the KV cache are exact from the safetensors headers and config.json. The verdict carries
the engine's error bar (``MemoryModel.error_bar``, :data:`ESTIMATE_ERROR_BYTES` measured against real
start-up logs in ``tests/test_served_memory_logs.py``): a margin inside it is a warning, not a pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from autoglm_doctor import engines
from autoglm_doctor.engines.memory import ESTIMATE_ERROR_BYTES, GiB, ProfileShape, gib
from autoglm_doctor.model import Breakdown
from autoglm_doctor.probe.gpu import GpuDevice, GpuFacts
from autoglm_doctor.probe.snapshot import Snapshot
from autoglm_doctor.probe.weights import ModelFacts

__all__ = ["ESTIMATE_ERROR_BYTES", "GiB", "Launch", "ServedMemory", "gib", "read_launch", "served_memory"]

_DTYPE_BYTES = {
    "float32": 4,
    "float": 4,
    "float16": 2,
    "half": 2,
    "bfloat16": 2,
    "fp8": 1,
    "fp8_e4m3": 1,
    "fp8_e5m2": 1,
}
STORED_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
"""Bytes per element of each safetensors dtype."""


def launch_engine(snap: Snapshot) -> str:
    """``vllm`` or ``sglang`` when the config is a launch command; empty otherwise."""
    return snap.config.engine if snap.config is not None and snap.config.parsed else ""


@dataclass(frozen=True, slots=True)
class Launch:
    """The launch command's settings that decide memory, read by meaning for either engine."""

    engine: str
    """``vllm`` or ``sglang``."""
    max_model_len: int | None
    """``--max-model-len`` / ``--context-length``; None: the model's max_position_embeddings."""
    tensor_parallel: int
    """``--tensor-parallel-size`` / ``--tp-size`` (1 when unset)."""
    utilization: float
    """``--gpu-memory-utilization`` / ``--mem-fraction-static``, or the engine's default."""
    utilization_given: bool
    """The flag was set."""
    dtype: str
    """``--dtype`` as written (``auto`` when unset)."""
    kv_cache_dtype: str
    """``--kv-cache-dtype`` (``auto`` when unset)."""
    batched_tokens: int | None
    """``--max-num-batched-tokens`` (None: the engine's default)."""
    max_seqs: int | None
    """``--max-num-seqs`` (None: the engine's default)."""
    max_pixels: int | None
    """``--mm-processor-kwargs '{"max_pixels": N}'`` (None: the model's image processor decides)."""
    encoder_data_parallel: bool
    """``--mm-encoder-tp-mode data``: every GPU holds the whole vision tower."""
    eager: bool = False
    """``--enforce-eager`` (vLLM) / ``--disable-cuda-graph`` (SGLang): no CUDA graphs are captured."""

    def flag(self, name: str) -> str:
        """The engine's own spelling of a setting (``--context-length`` for SGLang's max-model-len)."""
        return engines.get(self.engine).flag(name)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_launch(snap: Snapshot) -> Launch | None:
    """The launch settings, or None when the config is not a launch command.

    Read from the typed launch record (:mod:`autoglm_doctor.engines.launch`): a value the engine or
    the doctor's ranges reject is absent here (config.values reports it), so the memory estimate
    uses the engine's default instead of crashing on it.
    """
    from autoglm_doctor.engines.launch import read

    record = read(snap)
    if record is None:
        return None
    engine = record.engine

    def get(name: str) -> Any:
        return record.number(name)

    util = get("gpu-memory-utilization")
    util_ok = isinstance(util, (int, float)) and not isinstance(util, bool) and 0 < util <= 1
    kwargs = get("mm-processor-kwargs")
    kwargs = kwargs if isinstance(kwargs, dict) else {}
    tp = _int(get("tensor-parallel-size"))
    length = _int(get("max-model-len"))
    return Launch(
        engine=engine,
        max_model_len=length if length is not None and length > 0 else None,
        tensor_parallel=tp if tp and tp > 0 else 1,
        utilization=float(util) if util_ok else engines.get(engine).model.default_share,
        utilization_given=util_ok,
        dtype=str(get("dtype") or "auto").lower(),
        kv_cache_dtype=str(get("kv-cache-dtype") or "auto").lower(),
        batched_tokens=_int(get("max-num-batched-tokens")),
        max_seqs=_int(get("max-num-seqs")),
        max_pixels=_int(kwargs.get("max_pixels")),
        encoder_data_parallel=str(get("mm-encoder-tp-mode") or "").lower() == "data",
        eager=get("enforce-eager") not in (None, False, "false", "False", "0"),
    )


# --- memory ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServedMemory:
    """What one GPU of the server holds, as the engine accounts for it."""

    total: int
    """The GPU's memory."""
    free: int
    """Free memory now (other processes hold the rest)."""
    budget: int
    """``total x utilization``: everything the engine may use."""
    dtype: str
    """The served dtype of the weights."""
    dtype_source: str
    """Why that dtype (``--dtype auto -> config.json torch_dtype``)."""
    weights: int
    """Weight bytes on this GPU."""
    weights_total: int
    """Weight bytes of the whole model at the served dtype."""
    vision: int
    """Of the whole model's weights, the vision tower's (estimated from vision_config)."""
    activation: int
    """Peak of the profile run (estimate) plus memory outside torch."""
    activation_formula: str
    """How the activation figure was made."""
    kv_per_token: int
    """KV-cache bytes per token on this GPU."""
    kv_formula: str
    """How the per-token figure was made."""
    max_model_len: int
    """The sequence length asked for."""
    max_model_len_source: str
    """``--max-model-len`` or ``max_position_embeddings``."""
    block: int
    """Tokens per KV block."""
    length_limit: int
    """The model's max_position_embeddings (0: unknown): no --max-model-len beyond it is offered."""
    outside: int = 0
    """What the engine spends outside the budget on this GPU: CUDA context, CUDA graphs, NCCL (an estimate)."""
    outside_formula: str = ""
    """How the outside figure was made."""
    eager_frees: int = 0
    """Of ``outside``, what turning CUDA graphs off gives back (the engine's graphs)."""
    error_bar: int = ESTIMATE_ERROR_BYTES
    """The estimate's uncertainty: a margin below it may not start."""

    @property
    def kv_margin(self) -> int:
        """What the budget leaves after one --max-model-len sequence of KV cache (negative: it does not fit)."""
        return self.kv_available - self.kv_needed

    @property
    def outside_room(self) -> int:
        """Free memory beyond the budget: where the context, CUDA graphs and NCCL must fit."""
        return self.free - self.budget

    @property
    def outside_margin(self) -> int:
        """What is left beyond the budget once the context, CUDA graphs and NCCL are there (negative: OOM)."""
        return self.outside_room - self.outside

    @property
    def margin(self) -> int:
        """The tighter of the two margins: the one that decides whether the engine starts."""
        return min(self.kv_margin, self.outside_margin)

    def breakdown(self, label: str) -> Breakdown:
        """The GPU's memory as a bar: others' share, weights, activation peak, one sequence of KV, outside."""
        parts = (
            ("in use by others", self.total - self.free),
            ("weights", self.weights),
            ("activation peak", self.activation),
            (f"KV cache ({self.max_model_len} tokens)", self.kv_needed),
            ("outside the budget", self.outside),
        )
        return Breakdown(
            label=label,
            unit="GiB",
            total=_gib_number(self.total),
            parts=tuple((name, _gib_number(amount)) for name, amount in parts),
            notes=(
                ("budget", _gib_number(self.budget)),
                ("kv_margin", _gib_number(self.kv_margin)),
                ("outside_margin", _gib_number(self.outside_margin)),
                ("error_bar", _gib_number(self.error_bar)),
            ),
        )

    def length_with_margin(self, margin: int) -> int:
        """The longest --max-model-len that leaves ``margin`` bytes of the budget unused (0 when none does)."""
        room = self.kv_available - margin
        if room <= 0 or not self.kv_per_token:
            return 0
        fits = room // (self.block * self.kv_per_token) * self.block
        return min(fits, self.length_limit) if self.length_limit else fits

    @property
    def kv_needed(self) -> int:
        """KV-cache bytes of one sequence of max_model_len tokens (whole blocks)."""
        return math.ceil(self.max_model_len / self.block) * self.block * self.kv_per_token

    @property
    def kv_available(self) -> int:
        """What the budget leaves for the KV cache (may be negative)."""
        return self.budget - self.weights - self.activation

    @property
    def largest_len(self) -> int:
        """The longest --max-model-len whose KV cache fits (0 when none does)."""
        return self.length_with_margin(0)

    def accounting(self) -> tuple[str, ...]:
        """The accounting, one line per figure (GiB), as the finding's details."""
        return (
            f"budget: {gib(self.total)} x {self.budget / self.total:.2f} = {gib(self.budget)}",
            f"weights: {gib(self.weights)} ({self.dtype}, {self.dtype_source})",
            f"activation peak (profile run): {gib(self.activation)} ({self.activation_formula})",
            f"KV cache: {self.kv_formula} = {self.kv_per_token / 1024:g} KiB/token; {self.max_model_len} tokens "
            f"({self.max_model_len_source}) = {gib(self.kv_needed)} of the {gib(self.kv_available)} the budget leaves",
            f"outside the budget: {gib(self.outside)} ({self.outside_formula}) in the {gib(self.outside_room)} "
            "free beyond it",
            f"margin: {gib(self.kv_margin)} in the budget, {gib(self.outside_margin)} beyond it; estimate error "
            f"±{gib(self.error_bar)}",
        )


def _gib_number(n: float) -> float:
    return round(n / GiB, 2)


def served_dtype(launch: Launch, model: ModelFacts) -> tuple[str, str]:
    """(dtype, why) of the served weights."""
    checkpoint = (model.torch_dtype or "").lower().removeprefix("torch.")
    if launch.dtype != "auto":
        name = {"half": "float16", "float": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(
            launch.dtype, launch.dtype
        )
        return name, f"--dtype {launch.dtype}"
    if checkpoint in ("float32", "float", ""):
        return "bfloat16", "--dtype auto: a float32 (or unstated) checkpoint is served in 16 bits"
    return checkpoint, f"--dtype auto -> config.json torch_dtype {checkpoint}"


def vision_parameters(model: ModelFacts) -> int:
    """Parameters of the vision tower, from vision_config (blocks of attention + MLP, patch embedding, merger)."""
    shape = model.vision_shape
    depth = shape.get("depth") or shape.get("num_hidden_layers") or 0
    hidden = shape.get("hidden_size") or 0
    if not depth or not hidden:
        return 0
    mlp = _vision_mlp_width(shape)
    block = 4 * hidden * hidden + 3 * hidden * mlp
    patch = shape.get("patch_size") or 14
    embed = (shape.get("in_channels") or 3) * (shape.get("temporal_patch_size") or 1) * patch * patch * hidden
    out = shape.get("out_hidden_size") or 0
    merge = shape.get("spatial_merge_size") or 1
    merger = (hidden * merge * merge * out + 3 * out * (shape.get("intermediate_size") or out)) if out else 0
    return depth * block + embed + merger


def _vision_mlp_width(shape: dict[str, int]) -> int:
    # GLM-4.1V's vision blocks use out_hidden_size as their MLP width (transformers' Glm4vVisionMlp) and
    # intermediate_size for the merger; other towers use intermediate_size, else 4 x hidden.
    hidden = shape.get("hidden_size") or 0
    if shape.get("out_hidden_size") and shape.get("intermediate_size", 0) > 4 * hidden:
        return shape["out_hidden_size"]
    return shape.get("intermediate_size") or 4 * hidden


def served_weight_bytes(model: ModelFacts, dtype: str) -> int:
    """Bytes of the whole model's weights served at ``dtype`` (a quantized checkpoint: as stored)."""
    per = _DTYPE_BYTES.get(dtype, 2)
    stored = stored_per_param(model)
    if model.parameter_bytes and stored < 2:  # a quantized checkpoint loads as stored
        return model.parameter_bytes
    if model.parameter_count:
        return model.parameter_count * per
    return int((model.parameter_bytes or 0) * per / stored)


def stored_per_param(model: ModelFacts) -> float:
    """Bytes per parameter as the checkpoint stores them (its dominant safetensors dtype; 2 when unknown)."""
    if model.bytes_by_dtype:
        dominant = max(model.bytes_by_dtype, key=lambda k: model.bytes_by_dtype[k])
        return float(STORED_BYTES.get(dominant.upper(), 2))
    return 2.0


def kv_shape(model: ModelFacts) -> tuple[int, int, int] | None:
    """(layers, KV heads, head_dim) of the language model, or None when config.json lacks them."""
    layers = model.num_hidden_layers
    heads = model.num_attention_heads
    kv_heads = model.num_key_value_heads or heads
    head_dim = model.head_dim or (model.hidden_size // heads if model.hidden_size and heads else None)
    if not layers or not kv_heads or not head_dim:
        return None
    return layers, kv_heads, head_dim


def served_memory(launch: Launch, model: ModelFacts, device: GpuDevice, tp: int | None = None) -> ServedMemory | None:
    """The engine's accounting for one GPU (``tp`` overrides the launch's tensor-parallel size)."""
    shape = kv_shape(model)
    if shape is None or not (model.parameter_count or model.parameter_bytes):
        return None
    tp = tp or launch.tensor_parallel
    total, free = _memory(device)
    dtype, dtype_source = served_dtype(launch, model)
    per = _DTYPE_BYTES.get(dtype, 2)
    weights_total = served_weight_bytes(model, dtype)
    vision = min(vision_parameters(model) * per, weights_total)
    if tp > 1 and launch.encoder_data_parallel:
        weights = (weights_total - vision) // tp + vision
    else:
        weights = weights_total // tp
    layers, kv_heads, head_dim = shape
    kv_bytes = 1 if launch.kv_cache_dtype.startswith("fp8") else per
    # vLLM gives each GPU max(1, KV heads / TP) heads: past the KV heads, they are replicated, not split.
    heads_here = max(1, kv_heads // tp)
    kv_per_token = layers * heads_here * head_dim * 2 * kv_bytes
    replicated = f" (of {kv_heads}, replicated: TP {tp} > {kv_heads} KV heads)" if tp > kv_heads else ""
    kv_formula = (
        f"{layers} layers x {heads_here} KV heads{' per GPU' if tp > 1 else ''}{replicated} x {head_dim} x 2 x "
        f"{kv_bytes} B"
    )
    if launch.max_model_len:
        length, length_source = launch.max_model_len, launch.flag("max-model-len")
    else:
        length = model.max_position_embeddings or 0
        length_source = f"{launch.flag('max-model-len')} unset: max_position_embeddings"
    engine = engines.get(launch.engine)
    profile = _profile_shape(launch, model, device, total, per, tp)
    activation, activation_formula = engine.profile_peak(profile)
    outside_items = engine.outside_budget(profile)
    return ServedMemory(
        total=total,
        free=free,
        budget=int(total * launch.utilization),
        dtype=dtype,
        dtype_source=dtype_source,
        weights=weights,
        weights_total=weights_total,
        vision=vision,
        activation=activation,
        activation_formula=activation_formula,
        kv_per_token=kv_per_token,
        kv_formula=kv_formula,
        max_model_len=length,
        max_model_len_source=length_source,
        block=engine.model.kv_block_tokens,
        length_limit=model.max_position_embeddings or 0,
        outside=sum(item.bytes for item in outside_items),
        outside_formula=" + ".join(item.text() for item in outside_items),
        eager_frees=sum(item.bytes for item in outside_items if item.eager_frees),
        error_bar=engine.model.error_bar,
    )


def _memory(device: GpuDevice) -> tuple[int, int]:
    if device.mig_mode and device.mig_devices:
        largest = max(device.mig_devices, key=lambda m: m.memory_total)
        return largest.memory_total, largest.memory_free
    return device.memory_total, device.memory_free


def _profile_shape(launch: Launch, model: ModelFacts, device: GpuDevice, total: int, per: int, tp: int) -> ProfileShape:
    """What the engine is asked about its start-up profile and what it keeps beyond the budget on one GPU."""
    vision = model.vision_shape
    return ProfileShape(
        gpu_total=total,
        gpu_name=device.name,
        tensor_parallel=tp,
        dtype_bytes=per,
        batched_tokens=launch.batched_tokens,
        max_seqs=launch.max_seqs,
        max_pixels=launch.max_pixels or vision.get("max_pixels"),
        eager=launch.eager,
        hidden_size=model.hidden_size or 0,
        intermediate_size=model.intermediate_size or 0,
        vocab_size=model.vocab_size or 0,
        vision_hidden=vision.get("hidden_size") or 0,
        vision_mlp=_vision_mlp_width(vision),
        vision_patch=vision.get("patch_size") or 14,
    )


MIG_ONE_DEVICE = (
    "a CUDA process enumerates a single MIG instance, however many are made visible (NVIDIA Multi-Instance GPU "
    "User Guide, CUDA device enumeration), so tensor parallelism cannot span MIG instances"
)
"""Why a host whose CUDA GPUs are MIG instances counts as one GPU for ``--tensor-parallel-size``."""


def gpus_for_tensor_parallel(gpu: GpuFacts | None) -> tuple[int | None, bool]:
    """(how many GPUs one server process can split the model over, whether MIG limits it); None: unknown.

    A GPU in MIG mode shows CUDA its instances, and one CUDA process sees only one of them: the
    server gets one device, whatever ``CUDA_VISIBLE_DEVICES`` names.
    """
    if gpu is None:
        return None, False
    visible = gpu.visible_gpus()
    if any(device.mig_mode and device.mig_devices for device in visible):
        return 1, True
    return len(visible), False


@dataclass(frozen=True, slots=True)
class TensorParallel:
    """A tensor-parallel size the engine accepts for the model on this host."""

    size: int
    """``--tensor-parallel-size``."""
    needs_data_mode: bool
    """Only with ``--mm-encoder-tp-mode data`` (the vision heads do not split this many ways)."""

    def flags(self, engine: str) -> str:
        """The launch flags that set it (``--tensor-parallel-size 8 --mm-encoder-tp-mode data``)."""
        spelled = engines.get(engine).flag
        data = f" {spelled('mm-encoder-tp-mode')} data" if self.needs_data_mode else ""
        return f"{spelled('tensor-parallel-size')} {self.size}{data}"


def vision_heads(model: ModelFacts) -> int:
    """The vision tower's attention heads (0: no vision tower, or config.json does not say)."""
    return model.vision_shape.get("num_heads") or model.vision_shape.get("num_attention_heads") or 0


def kv_heads_split(tp: int, kv_heads: int) -> bool:
    """Whether vLLM's QKVParallelLinear can split or replicate ``kv_heads`` over ``tp`` GPUs.

    Up to the KV head count each GPU takes kv/tp heads; past it, each GPU holds one head replicated
    tp/kv times. Either way one must divide the other.
    """
    return tp <= 1 or not kv_heads or (kv_heads % tp == 0 if tp <= kv_heads else tp % kv_heads == 0)


def tensor_parallel_sizes(
    model: ModelFacts | None, engine: str, *, data_mode: bool, gpus: int | None
) -> list[TensorParallel]:
    """Every tensor-parallel size that passes all the checks the doctor makes of it, smallest first.

    The one place config.values (head divisibility) and cuda.memory (spreading the model) take their
    ``--tensor-parallel-size`` fixes from, so they agree: the size divides the text attention heads,
    splits or replicates the KV heads, divides the vision tower's heads unless ``--mm-encoder-tp-mode
    data`` is set (a size that needs it is offered with it, where the engine has the flag), and is at
    most the GPUs one process can use (``gpus``; None: not known here, no limit).
    """
    heads = (model.num_attention_heads or 0) if model is not None else 0
    kv_heads = (model.num_key_value_heads or 0) if model is not None else 0
    vision = vision_heads(model) if model is not None else 0
    has_mode = engines.get(engine).has("mm-encoder-tp-mode")
    upto = min(gpus if gpus is not None else 1024, heads or 1024)
    sizes = []
    for tp in range(1, max(upto, 1) + 1):
        if (heads and heads % tp) or not kv_heads_split(tp, kv_heads):
            continue
        if vision and has_mode and vision % tp:
            sizes.append(TensorParallel(tp, needs_data_mode=not data_mode))
        else:
            sizes.append(TensorParallel(tp, needs_data_mode=False))
    return sizes


def tp_that_fits(
    launch: Launch, model: ModelFacts, device: GpuDevice, gpus: int | None, margin: int = 0
) -> tuple[TensorParallel, ServedMemory] | None:
    """The smallest tensor-parallel size above the launch's that fits the sequence, with its memory.

    The size passes every head check and is within ``gpus``; its GPUs fit the sequence with ``margin``
    to spare, if need be without CUDA graphs (``memory.outside_margin`` below ``margin`` says
    ``--enforce-eager`` is needed too); the memory is at ``--mm-encoder-tp-mode data`` if it needs it.
    """
    choices = tensor_parallel_sizes(model, launch.engine, data_mode=launch.encoder_data_parallel, gpus=gpus)
    for choice in choices:
        if choice.size <= launch.tensor_parallel:
            continue
        served = replace(launch, encoder_data_parallel=True) if choice.needs_data_mode else launch
        memory = served_memory(served, model, device, tp=choice.size)
        if memory is not None and memory.kv_margin >= margin and memory.outside_margin + memory.eager_frees >= margin:
            return choice, memory
    return None
