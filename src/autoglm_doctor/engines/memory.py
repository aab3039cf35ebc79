"""How a serving engine spends GPU memory: the questions ``checks/_served.py``'s accounting asks an engine.

The accounting itself (weights at the served dtype, the KV cache of one sequence, the two margins)
is the same arithmetic for every engine and stays in ``checks/_served.py``; what differs is what
the engine answers here, each fact with its source in the engine's module:

- :class:`MemoryModel`: its share of the GPU without the flag, its KV block size, whether its
  start-up profile's activations count inside the share, whether it refuses to start when less
  than the share is free, and the estimate's error bar;
- ``Engine.profile_peak``: the activation peak inside the share, at the batch its start-up profile
  runs when the launch names none (``0`` with why when activations live outside it);
- ``Engine.outside_budget``: what it keeps beyond the share (CUDA context, CUDA graphs, NCCL), as
  :class:`Allowance` items.

The allowances every CUDA engine process shares (the context, NCCL's buffers) are stated once here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GiB = 1024**3

CUDA_CONTEXT_BYTES = int(0.5 * GiB)
"""The engine process's CUDA context, outside the budget (vLLM's start-up snapshot is taken after it exists). An
allowance: a torch process's context measured 287,047,680 bytes with lazy module loading and 666,632,192 without
(https://github.com/pytorch/pytorch/pull/86509; lazy is the default since CUDA 12.2 on Linux), and the kernels vLLM
loads as it runs (cuBLAS, FlashAttention, Triton) add to the lazy figure."""
NCCL_BYTES = int(0.5 * GiB)
"""NCCL buffers and the custom all-reduce of tensor parallelism (only with --tensor-parallel-size > 1), outside the
budget: vLLM initialises NCCL before its start-up snapshot (``Worker.init_device``). An allowance: NCCL's default
channel buffers (``NCCL_BUFFSIZE`` 4 MiB per channel and peer) plus vLLM's custom all-reduce buffer (8 MiB per
rank) and the IPC handles of the peers come to a few hundred MiB on 2-8 GPUs."""
ESTIMATE_ERROR_BYTES = int(0.75 * GiB)
"""The estimate's error bar: the largest margin the doctor computes for a launch that did not start, in the table
of real start-ups of ``tests/test_served_memory_logs.py`` (Open-AutoGLM#2 on an RTX 4090: 0.64 GiB left beyond the
budget, and the server did not start), rounded up to the next quarter GiB. It is a lower bound on the error: the
table has no launch that started with a small margin to bound it from above. Every row of that table is a vLLM
start-up; an engine without rows of its own keeps this bar (``MemoryModel.error_bar``).
A margin below it is "may not start", a warning."""


@dataclass(frozen=True, slots=True)
class MemoryModel:
    """The facts of one engine's memory accounting that are numbers, not computations."""

    default_share: float
    """Its share of the GPU's memory without the utilization flag (``total x share`` is the budget)."""
    kv_block_tokens: int
    """Tokens per KV-cache block: the KV cache of a sequence is allocated in whole blocks."""
    activations_in_budget: bool
    """Whether its start-up profile's activation peak is taken out of the share (vLLM) or lives beyond it (SGLang)."""
    refuses_below_budget: str = ""
    """The words it stops with when the GPU has less free than ``total x share`` at start-up (empty: it does not
    check)."""
    no_room: str = ""
    """The words it stops with when the weights (and its profile) leave no room for a KV cache in the share."""
    too_long: str = ""
    """The words it stops with when one sequence of the longest length does not fit the KV cache (``{length}``:
    that length; empty: it does not stop for it)."""
    error_bar: int = ESTIMATE_ERROR_BYTES
    """The estimate's uncertainty for this engine: a margin below it may not start."""
    sources: tuple[str, ...] = field(default=())
    """Where these facts are stated (the engine's files, issues)."""


@dataclass(frozen=True, slots=True)
class ProfileShape:
    """What an engine needs to answer for its start-up profile and what it keeps beyond the budget on one GPU."""

    gpu_total: int
    """The GPU's memory (a MIG instance's when the GPU is split)."""
    gpu_name: str
    """The GPU's name as NVML gives it (``NVIDIA A100-SXM4-80GB``)."""
    tensor_parallel: int
    """GPUs the model is split over."""
    dtype_bytes: int
    """Bytes per element at the served dtype."""
    batched_tokens: int | None = None
    """The launch's token budget per step (None: the engine's default)."""
    max_seqs: int | None = None
    """The launch's sequences per step (None: the engine's default)."""
    max_pixels: int | None = None
    """The largest image the processor keeps (the launch's, else the model's; None: unknown)."""
    eager: bool = False
    """The launch turns CUDA graphs off."""
    hidden_size: int = 0
    """The language model's hidden size."""
    intermediate_size: int = 0
    """The language model's MLP width (``4 x hidden`` when config.json omits it)."""
    vocab_size: int = 0
    """Rows of the logits."""
    vision_hidden: int = 0
    """The vision tower's hidden size (0: no vision tower)."""
    vision_mlp: int = 0
    """The vision tower's MLP width."""
    vision_patch: int = 14
    """The vision tower's patch size in pixels."""


@dataclass(frozen=True, slots=True)
class Allowance:
    """One thing an engine keeps beyond its budget on one GPU."""

    label: str
    """How the accounting names it (``CUDA context``, ``67 CUDA graphs (sizes 1..512)``)."""
    bytes: int
    """Its size (0: named for the record, nothing spent: ``no CUDA graphs (--enforce-eager)``)."""
    source: str = ""
    """Where the figure comes from."""
    eager_frees: bool = False
    """Turning CUDA graphs off gives it back (what ``--enforce-eager`` would free)."""

    def text(self) -> str:
        """``CUDA context 0.50 GiB``, as the accounting prints it; the label alone when nothing is spent."""
        return f"{self.label} {gib(self.bytes)}" if self.bytes else self.label


def gib(n: float) -> str:
    """Bytes as ``12.34 GiB`` (two decimals, as vLLM prints)."""
    return f"{n / GiB:.2f} GiB"


def shared_allowances(tensor_parallel: int) -> tuple[Allowance, Allowance | None]:
    """(the CUDA context, NCCL when the model is split over GPUs): what every CUDA engine process keeps."""
    context = Allowance("CUDA context", CUDA_CONTEXT_BYTES, "pytorch/pytorch#86509")
    nccl = Allowance("NCCL", NCCL_BYTES, "NCCL_BUFFSIZE, vLLM's custom all-reduce") if tensor_parallel > 1 else None
    return context, nccl
