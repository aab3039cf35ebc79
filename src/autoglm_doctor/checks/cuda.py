"""cuda.driver, cuda.torch-build, cuda.toolkit and cuda.memory: the NVIDIA GPU stack.

Three CUDA versions meet here and users mix them up: the driver's (the newest CUDA it can
run; what nvidia-smi prints as "CUDA Version"), torch's (the runtime its wheel bundles, the
+cuXYZ tag) and nvcc's (a toolkit, only used to build extensions). The checks read them from
the Snapshot and the knowledge base (knowledge/cuda.yaml, knowledge/gpu_arch.yaml).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from packaging.version import Version

from autoglm_doctor import engines
from autoglm_doctor.checks._served import (
    MIG_ONE_DEVICE,
    STORED_BYTES,
    Launch,
    ServedMemory,
    gpus_for_tensor_parallel,
    read_launch,
    served_memory,
    stored_per_param,
    tp_that_fits,
)
from autoglm_doctor.checks._served import gib as gib2
from autoglm_doctor.checks._util import installed_version, parse_version, pip_install
from autoglm_doctor.context import CheckContext, config_value
from autoglm_doctor.knowledge import confidence_note
from autoglm_doctor.knowledge import gpu as kb
from autoglm_doctor.knowledge.packages import torchvision_pairs
from autoglm_doctor.knowledge.torch_choice import (
    NoChoice,
    TorchPick,
    choose,
    cpu_deployment,
    device_choice,
    driver_cuda,
    names_cuda,
    runs_on_driver,
    torch_variant,
    usable_gpus,
    windows_target,
)
from autoglm_doctor.model import Breakdown, Finding, Location, Severity, Skip, error, info, warning
from autoglm_doctor.probe.gpu import GpuDevice, short_uuid
from autoglm_doctor.probe.snapshot import Snapshot, TorchBuild
from autoglm_doctor.probe.weights import ModelFacts
from autoglm_doctor.registry import check

GiB = 1024**3

DTYPE_BYTES = {"float32": 4.0, "float16": 2.0, "bfloat16": 2.0, "int8": 1.0, "int4": 0.5}
"""Bytes per parameter of each load dtype (8-bit and 4-bit loading as int8 / int4)."""

_DTYPE_ALIASES = {
    "fp32": "float32",
    "float": "float32",
    "torch.float32": "float32",
    "fp16": "float16",
    "half": "float16",
    "torch.float16": "float16",
    "bf16": "bfloat16",
    "torch.bfloat16": "bfloat16",
}

CUDA_CONTEXT_BYTES = 1 * GiB
"""Allowance for the CUDA context, cuBLAS/cuDNN workspaces and the caching allocator's slack."""
ACTIVATION_FRACTION = 0.10
"""Allowance for activations of one forward pass and temporaries, as a share of the weights."""
DEFAULT_SEQUENCE = 4096
"""Sequence length assumed for the KV cache when the config sets no model_max_length."""


def gib(n: float) -> str:
    """Bytes as ``12.3 GiB``."""
    return f"{n / GiB:.1f} GiB"


# --- what the deployment asks for ------------------------------------------------------------


def gpu_needed(snap: Snapshot, ctx: CheckContext) -> str:
    """Why the deployment needs a GPU (empty when nothing needs one)."""
    runs_on_cuda, said_by = device_choice(snap, ctx)
    if runs_on_cuda:
        return said_by
    if ctx.pack.gpu == "required" and runs_on_cuda is None:
        return f"the {ctx.pack.name} pack requires an NVIDIA GPU"
    return ""


def _config_key(data: Any, key: str) -> str | None:
    if not isinstance(data, dict):
        return None
    if key in data:
        return key
    return next((f"{name}.{key}" for name, value in data.items() if isinstance(value, dict) and key in value), None)


def config_location(snap: Snapshot, key: str) -> Location | None:
    """Where ``key`` is (or would go) in the config file."""
    if snap.config is None or not snap.config.path:
        return None
    dotted = _config_key(snap.config.data, key)
    position = getattr(snap.config, "position", None)
    line, column = position(dotted) if dotted and callable(position) else (None, None)
    return Location(snap.config.path, line, column)


def _config_name(snap: Snapshot) -> str:
    return snap.config.path if snap.config is not None and snap.config.path else "your deployment config"


# --- GPU facts helpers -----------------------------------------------------------------------


def describe_gpu(device: GpuDevice) -> str:
    """``cuda index 0: NVIDIA H100 80GB HBM3 (sm_90 Hopper, 80.0 GiB, 79.1 GiB free, GPU-1a2b3c4d…)``."""
    cc = device.cc
    arch = f"sm_{cc[0]}{cc[1]} {kb.architecture_name(cc)}" if cc else "compute capability unknown"
    parts = [arch, f"{gib(device.memory_total)}", f"{gib(device.memory_free)} free"]
    if device.mig_mode:
        parts.append(f"MIG mode, {len(device.mig_devices)} instance(s)")
    if device.uuid:
        parts.append(short_uuid(device.uuid))
    return f"GPU {device.index}: {device.name} ({', '.join(parts)})"


def family_floor_text(major: int, snap: Snapshot) -> str:
    """``>= 525.60.13`` for CUDA 12 on Linux; empty when not tabulated."""
    floor = kb.family_floors().get(major)
    if floor is None:
        return ""
    value = floor.windows if windows_target(snap) else floor.linux
    return f">= {kb.driver_text(value)}{confidence_note(floor.confidence)}" if value else ""


# --- torch builds ----------------------------------------------------------------------------


def torch_line(build: TorchBuild) -> str:
    """``2.1`` for ``2.1.2+cu121``; empty when unparseable."""
    version = parse_version(build.version)
    return f"{version.major}.{version.minor}" if version else ""


@dataclass(frozen=True, slots=True)
class Suggestion:
    """The torch build to install instead, or why there is none: what the fix command and message say."""

    pick: TorchPick | None
    """The build :func:`autoglm_doctor.knowledge.torch_choice.choose` picked (None: nothing fits)."""
    command: str
    """The exact install command for the target interpreter (empty without a pick)."""
    conflict: str
    """Why nothing fits: the two constraints that cannot both hold (empty with a pick)."""


def suggest_torch(snap: Snapshot, ctx: CheckContext) -> Suggestion:
    """The torch build ``check --fix`` would pin for this snapshot and pack, as an install command.

    The choice is :func:`autoglm_doctor.knowledge.torch_choice.choose`'s, the same call the fix plan makes, so
    this command and the requirements file name the same torch version, CUDA variant and index.
    """
    try:
        picked = choose(snap, ctx.pack, device=ctx.options.device).torch
    except NoChoice as exc:
        return Suggestion(None, "", str(exc))
    if picked is None or picked.installed or picked.cuda is None:
        # The installed build passes every constraint the chooser knows, or there is no CUDA build to name.
        return Suggestion(None, "", "")
    return Suggestion(picked, install_command(snap, picked), "")


def install_command(snap: Snapshot, pick: TorchPick) -> str:
    """``python -m pip install torch==2.6.0+cu124 --index-url https://download.pytorch.org/whl/cu124``.

    The pin carries the build's local tag, as the requirements file of ``check --fix`` does. torch 2.0
    and later take PyTorch's index as the only index (it mirrors torch's dependencies); 1.x builds
    need PyPI beside it.
    """
    option = "--index-url" if Version(pick.version) >= Version("2.0") else "--extra-index-url"
    reqs = [pick.requirement, option, pick.index_url]
    if installed_version(snap, "torchvision") is not None:
        pair = torchvision_pairs().get(pick.line)
        if pair:
            reqs.insert(1, f"torchvision=={pair}.*")
    return pip_install(snap, *reqs)


def _fix_with(suggestion: Suggestion, fallback: str) -> str:
    return suggestion.command or fallback


def _suggestion_note(suggestion: Suggestion) -> str:
    pick = suggestion.pick
    if pick is None:
        why = f": {suggestion.conflict}" if suggestion.conflict else ""
        return f" No torch build in the knowledge base fits this driver, GPU, Python and pack{why}."
    if pick.compat == "full":
        how = "in full"
    else:
        how = (
            "only through CUDA minor-version compatibility: no build this driver runs in full fits; PTX from "
            "Triton or torch.compile cannot be JIT-compiled by this driver"
        )
    archs = kb.arch_list(pick.line, pick.variant)
    note = confidence_note("low" if "low" in (pick.confidence, archs.confidence if archs else "") else "")
    return (
        f" torch {pick.full_version} is the build `check --fix` pins: it runs on this driver ({how}) and covers "
        f"the GPU{note}."
    )


# --- cuda.driver -----------------------------------------------------------------------------


@check(
    "cuda.driver",
    title="NVIDIA driver and GPUs",
    needs=("gpu",),
    why=(
        "Without a working NVIDIA driver, or with every GPU hidden by CUDA_VISIBLE_DEVICES, torch sees no "
        "GPU: a deployment configured for cuda fails at load time, and one on device_map auto silently "
        "runs on the CPU."
    ),
    fix="Install or repair the NVIDIA driver, pass the GPUs into the container, or fix CUDA_VISIBLE_DEVICES.",
)
def cuda_driver(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """An NVIDIA driver answers and CUDA sees at least one GPU when the pack or the config needs one."""
    gpu = snap.gpu
    assert gpu is not None  # guaranteed by needs=("gpu",)
    on_cpu = cpu_deployment(snap, ctx)
    if on_cpu:
        raise Skip(f"the deployment runs on the CPU ({on_cpu})")
    needed = gpu_needed(snap, ctx)
    visible = gpu.visible_gpus()
    for problem in gpu.visible_problems:
        yield warning(
            "cuda.visible-devices-invalid",
            f"CUDA_VISIBLE_DEVICES={gpu.cuda_visible_devices!r}: {problem}",
            observed=gpu.cuda_visible_devices,
            expected="indexes (0,1) or GPU UUID prefixes of GPUs on this host",
            fix="export CUDA_VISIBLE_DEVICES=" + ",".join(str(g.index) for g in gpu.gpus)
            if gpu.gpus
            else "unset CUDA_VISIBLE_DEVICES",
        )
    if gpu.nvml_error and not gpu.gpus:
        smi = f"; nvidia-smi: {gpu.nvidia_smi_error}" if gpu.nvidia_smi_error else ""
        if not needed:
            raise Skip(f"no NVIDIA driver here (NVML: {gpu.nvml_error}{smi}) and nothing needs a GPU")
        yield error(
            "cuda.no-driver",
            f"{needed}, but no NVIDIA driver answers (NVML: {gpu.nvml_error}{smi})",
            observed=gpu.nvml_error,
            expected="a working NVIDIA driver",
            fix=_no_driver_fix(snap),
        )
        return
    if not gpu.gpus:
        if not needed:
            raise Skip(f"the NVIDIA driver {gpu.driver_version} sees no GPU and nothing needs one")
        yield error(
            "cuda.no-gpu",
            f"{needed}, but the NVIDIA driver {gpu.driver_version} sees no GPU",
            fix="check `nvidia-smi` and `dmesg | grep -i nvidia` (GPU fallen off the bus, wrong driver for the card)",
        )
        return
    if not visible:
        hidden = f"CUDA_VISIBLE_DEVICES={gpu.cuda_visible_devices!r} hides all {len(gpu.gpus)} GPU(s) from CUDA"
        message = f"{needed}, but {hidden}" if needed else f"{hidden}: torch will run on the CPU"
        yield (error if needed else warning)(
            "cuda.all-gpus-hidden",
            message,
            observed=f"CUDA_VISIBLE_DEVICES={gpu.cuda_visible_devices!r}",
            expected=f"CUDA_VISIBLE_DEVICES unset or naming a GPU (0..{len(gpu.gpus) - 1})",
            fix="unset CUDA_VISIBLE_DEVICES   (or: export CUDA_VISIBLE_DEVICES=0)",
        )
        return
    if gpu.nvml_error:
        yield info(
            "cuda.nvml-failed",
            f"NVML failed ({gpu.nvml_error}) but nvidia-smi lists the GPUs: the NVML library the doctor loads "
            "(libnvidia-ml.so.1) is not the driver's; check LD_LIBRARY_PATH and `ldconfig -p | grep nvidia-ml`",
        )
    drv, inferred = driver_cuda(snap)
    cuda_text = kb.cuda_text(drv) if drv else "unknown"
    shown = ", ".join(f"cuda:{i}=GPU {g.index}" for i, g in enumerate(visible))
    yield info(
        "cuda.gpus",
        f"NVIDIA driver {gpu.driver_version} (runs CUDA <= {cuda_text}{inferred}); CUDA sees {len(visible)} of "
        f"{len(gpu.gpus)} GPU(s): {shown}"
        + (f" [CUDA_VISIBLE_DEVICES={gpu.cuda_visible_devices}]" if gpu.cuda_visible_devices is not None else ""),
        observed="; ".join(describe_gpu(g) for g in visible),
    )
    for device in visible:
        if device.mig_mode and not device.mig_devices:
            yield warning(
                "cuda.mig-no-instances",
                f"GPU {device.index} ({device.name}) is in MIG mode but has no MIG instance: CUDA sees no device on it",
                fix=f"sudo nvidia-smi mig -i {device.index} -cgi 9,9 -C   (create instances)  or "
                f"sudo nvidia-smi -i {device.index} -mig 0   (leave MIG mode)",
            )
        holders = [p for p in device.processes if p.used_memory]
        if holders:
            held = sum(p.used_memory or 0 for p in holders)
            names = ", ".join(
                f"pid {p.pid}{f' {p.name}' if p.name else ''} ({gib(p.used_memory or 0)})" for p in holders
            )
            yield info(
                "cuda.gpu-busy",
                f"GPU {device.index}: {len(holders)} process(es) hold {gib(held)}: {names}",
            )


def _no_driver_fix(snap: Snapshot) -> str:
    variant = torch_variant(snap)
    floor = ""
    cuda = kb.parse_cuda(variant) if variant.startswith("cu") else None
    if cuda is not None:
        text = family_floor_text(cuda[0], snap)
        floor = f" {text} for torch +{variant}" if text else ""
    in_container = snap.host is not None and snap.host.in_container
    if in_container:
        return (
            "pass the GPUs into the container: docker run --gpus all ...  (needs nvidia-container-toolkit and, "
            f"on the host, the NVIDIA driver{floor})"
        )
    return (
        f"install the NVIDIA driver{floor} (Ubuntu: sudo ubuntu-drivers install; then reboot), "
        "or set device: cpu in the config if the CPU is intended"
    )


# --- cuda.torch-build ------------------------------------------------------------------------


@check(
    "cuda.torch-build",
    title="torch's CUDA build fits the driver and GPU",
    needs=("torch", "gpu"),
    why=(
        "torch wheels bundle their own CUDA runtime and kernels for a fixed list of GPU architectures. A CPU-only "
        "wheel ignores the GPU, a wheel for a newer CUDA than the driver runs fails with 'The NVIDIA driver on your "
        "system is too old', and a GPU missing from the arch list fails with 'no kernel image is available for "
        "execution on the device'."
    ),
    fix="Install the torch build the finding names, from its wheel index (download.pytorch.org/whl/cuXYZ).",
)
def cuda_torch_build(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """The torch build (CPU, CUDA X.Y, ROCm) runs on this driver and has kernels for every visible GPU."""
    build = snap.torch
    assert build is not None
    on_cpu = cpu_deployment(snap, ctx)
    if on_cpu:
        raise Skip(f"the deployment runs on the CPU ({on_cpu})")
    gpus = usable_gpus(snap.gpu)
    if not gpus:
        raise Skip("no NVIDIA GPU visible to CUDA here (see cuda.driver)")
    variant = torch_variant(snap)
    names = ", ".join(sorted({g.name for g in gpus}))
    if variant.startswith("rocm") or build.hip:
        suggestion = suggest_torch(snap, ctx)
        yield error(
            "cuda.rocm-build-on-nvidia",
            f"torch {build.version} is a ROCm (AMD) build, but this host has NVIDIA GPUs ({names}): torch will not "
            "see them." + _suggestion_note(suggestion),
            observed=f"torch {build.version} (hip {build.hip or '?'})",
            expected="a CUDA build (+cuXYZ)",
            fix=_fix_with(suggestion, "install a CUDA build of torch from https://download.pytorch.org/whl/"),
        )
        return
    if variant == "cpu" or (not variant.startswith("cu") and build.cuda is None):
        suggestion = suggest_torch(snap, ctx)
        yield error(
            "cuda.cpu-only-torch",
            f"torch {build.version} is a CPU-only build, but this host has {len(gpus)} NVIDIA GPU(s) ({names}): "
            "the model would run on the CPU ('AssertionError: Torch not compiled with CUDA enabled' with "
            "device cuda)." + _suggestion_note(suggestion),
            observed=f"torch {build.version}",
            expected="a CUDA build of torch",
            fix=_fix_with(suggestion, "install a CUDA build of torch from https://download.pytorch.org/whl/"),
        )
        return
    build_cuda = kb.parse_cuda(build.cuda) or kb.parse_cuda(variant)
    drv, inferred = driver_cuda(snap)
    if build_cuda is not None and drv is not None:
        compat = runs_on_driver(build_cuda, drv)
        built = f"torch {build.version} is built for CUDA {kb.cuda_text(build_cuda)}"
        runs = f"the NVIDIA driver {snap.gpu.driver_version if snap.gpu else '?'} runs CUDA <= {kb.cuda_text(drv)}"
        if compat is None:
            exact = kb.toolkit_driver(build_cuda)
            floor = family_floor_text(build_cuda[0], snap)
            upgrade = floor or (f">= {kb.driver_text(exact.linux)}" if exact and exact.linux else "a newer driver")
            suggestion = suggest_torch(snap, ctx)
            yield error(
                "cuda.driver-too-old",
                f"{built}; {runs}{inferred}. torch fails at its first CUDA call: 'The NVIDIA driver on your system "
                f"is too old (found version {drv[0] * 1000 + drv[1] * 10})'. Either upgrade the driver to {upgrade} "
                f"(CUDA {build_cuda[0]}.x) or install a torch built for the driver's CUDA."
                + _suggestion_note(suggestion),
                observed=f"driver CUDA {kb.cuda_text(drv)}, torch CUDA {kb.cuda_text(build_cuda)}",
                expected=f"driver {upgrade}",
                fix=_fix_with(suggestion, f"upgrade the NVIDIA driver to {upgrade}"),
            )
            return
        if compat == "minor":
            floor = family_floor_text(build_cuda[0], snap)
            yield info(
                "cuda.minor-version-compat",
                f"{built}; {runs}{inferred}. It runs through CUDA minor-version compatibility (any CUDA "
                f"{build_cuda[0]}.x binary runs on a driver {floor or 'of that family'}): fine for torch's own "
                "kernels, but PTX from a newer toolkit cannot be JIT-compiled by this driver.",
            )
    line = torch_line(build)
    archs = kb.arch_list(line, variant) if line and variant.startswith("cu") else None
    if archs is None:
        yield info(
            "cuda.arch-list-unknown",
            f"the GPU architectures of torch {build.version} ({variant or 'unknown build'}) are not in the knowledge "
            "base; arch support was not checked",
        )
        return
    missing = [g for g in gpus if g.cc is not None and not archs.covers(g.cc)]
    suggestion = suggest_torch(snap, ctx) if missing else Suggestion(None, "", "")
    for device in missing:
        cc = device.cc
        assert cc is not None
        yield error(
            "cuda.arch-not-in-build",
            f"torch {build.version} has no kernels for GPU {device.index} ({device.name}, sm_{cc[0]}{cc[1]} "
            f"{kb.architecture_name(cc)}): every CUDA op fails with 'CUDA error: no kernel image is available for "
            f"execution on the device'. The build supports {archs.describe()}{confidence_note(archs.confidence)}."
            + _suggestion_note(suggestion),
            observed=f"sm_{cc[0]}{cc[1]}",
            expected=archs.describe(),
            fix=_fix_with(suggestion, "install a torch build whose arch list covers this GPU"),
        )
    if not missing:
        shown = ", ".join(sorted({f"sm_{g.cc[0]}{g.cc[1]}" for g in gpus if g.cc}))
        yield info(
            "cuda.torch-build-ok",
            f"torch {build.version} ({variant}) has kernels for {shown or 'the GPUs'} and runs on driver "
            f"{snap.gpu.driver_version if snap.gpu else '?'}",
        )


# --- cuda.toolkit ----------------------------------------------------------------------------


def normalise_dtype(value: Any) -> str:
    """``bf16``/``torch.bfloat16`` -> ``bfloat16``; empty for unset; ``auto`` kept."""
    if value is None:
        return ""
    text = str(value).strip().lower()
    return _DTYPE_ALIASES.get(text, text)


@dataclass(frozen=True, slots=True)
class Footprint:
    """The estimated GPU memory a model needs."""

    dtype: str
    """The dtype the weights load in (``bfloat16``, ``int4``...)."""
    dtype_source: str
    """Where the dtype came from (``config torch_dtype``, ``config.json``, a default)."""
    explicit: bool
    """The deployment config set the dtype explicitly."""
    weights: int
    """Parameter bytes at that dtype."""
    kv_cache: int
    """KV-cache bytes at the configured length and batch."""
    overhead: int
    """Allowance for activations, CUDA context and allocator slack."""
    formula: str
    """How it was computed, in words."""

    @property
    def total(self) -> int:
        """Everything together."""
        return self.weights + self.kv_cache + self.overhead


def load_dtype(snap: Snapshot) -> tuple[str, str, bool]:
    """(dtype, where it came from, explicitly configured) for the model's weights."""
    if config_value(snap, "load_in_4bit") is True:
        return "int4", "config load_in_4bit", True
    if config_value(snap, "load_in_8bit") is True:
        return "int8", "config load_in_8bit", True
    configured = normalise_dtype(config_value(snap, "torch_dtype") or config_value(snap, "dtype"))
    model_dtype = normalise_dtype(snap.model.torch_dtype if snap.model else "")
    if configured in DTYPE_BYTES:
        return configured, "config torch_dtype", True
    if configured == "auto":
        return model_dtype or "float32", "torch_dtype auto -> config.json", False
    transformers = installed_version(snap, "transformers")
    if transformers is not None and transformers.major >= 5:
        return model_dtype or "float32", "transformers 5 default (auto) -> config.json", False
    return "float32", "torch_dtype unset: transformers 4.x loads float32", False


def estimate_weights(snap: Snapshot) -> tuple[int, str, str, bool] | None:
    """(bytes, dtype, dtype source, explicit) of the model's weights as they will load; None without facts."""
    model = snap.model
    if model is None:
        return None
    dtype, source, explicit = load_dtype(snap)
    per_param = DTYPE_BYTES.get(dtype, 2.0)
    if model.parameter_count:
        return int(model.parameter_count * per_param), dtype, source, explicit
    if model.parameter_bytes:
        stored = _stored_bytes_per_param(model.bytes_by_dtype, model.torch_dtype)
        return int(model.parameter_bytes * per_param / stored), dtype, source, explicit
    return None


def _stored_bytes_per_param(by_dtype: dict[str, int], torch_dtype: str) -> float:
    if by_dtype:
        dominant = max(by_dtype, key=lambda k: by_dtype[k])
        return float(STORED_BYTES.get(dominant.upper(), 2))
    return DTYPE_BYTES.get(normalise_dtype(torch_dtype), 2.0)


def estimate_footprint(snap: Snapshot) -> Footprint | None:
    """Weights at the load dtype + KV cache at the configured length and batch + a stated allowance."""
    weights = estimate_weights(snap)
    if weights is None or snap.model is None:
        return None
    weight_bytes, dtype, source, explicit = weights
    model = snap.model
    seq_cfg = config_value(snap, "model_max_length")
    seq = int(seq_cfg) if isinstance(seq_cfg, int) and seq_cfg > 0 else DEFAULT_SEQUENCE
    batch_cfg = config_value(snap, "max_batch_size")
    batch = int(batch_cfg) if isinstance(batch_cfg, int) and batch_cfg > 0 else 1
    kv_bytes_per = 4 if dtype == "float32" else 2
    layers = model.num_hidden_layers
    heads = model.num_attention_heads
    kv_heads = model.num_key_value_heads or heads
    head_dim = model.head_dim or (model.hidden_size // heads if model.hidden_size and heads else None)
    if layers and kv_heads and head_dim:
        kv = 2 * layers * kv_heads * head_dim * seq * batch * kv_bytes_per
        kv_formula = (
            f"KV cache 2 x {layers} layers x {kv_heads} KV heads x {head_dim} head_dim x {seq} tokens x "
            f"batch {batch} x {kv_bytes_per} B = {gib(kv)}"
        )
    else:
        kv = 0
        kv_formula = "KV cache not estimated (config.json lacks the attention shape)"
    seq_note = "" if isinstance(seq_cfg, int) else f" (model_max_length unset: {DEFAULT_SEQUENCE} assumed)"
    overhead = CUDA_CONTEXT_BYTES + int(ACTIVATION_FRACTION * weight_bytes)
    count = (
        f"{model.parameter_count / 1e9:.2f}B params x {DTYPE_BYTES.get(dtype, 2):g} B"
        if model.parameter_count
        else "stored bytes rescaled"
    )
    formula = (
        f"weights {count} ({dtype}, {source}) = {gib(weight_bytes)}; {kv_formula}{seq_note}; allowance 1 GiB CUDA "
        f"context + {int(ACTIVATION_FRACTION * 100)}% of weights for activations = {gib(overhead)}"
    )
    return Footprint(dtype, source, explicit, weight_bytes, kv, overhead, formula)


def target_gpus(snap: Snapshot, ctx: CheckContext) -> tuple[list[GpuDevice], bool]:
    """(the GPUs the model loads onto, whether it may spill to CPU/disk: device_map auto)."""
    visible = usable_gpus(snap.gpu)
    device = ctx.options.device or config_value(snap, "device")
    device_map = config_value(snap, "device_map")
    for spec in (device, device_map):
        if isinstance(spec, (str, int)) and not isinstance(spec, bool):
            text = str(spec).strip().lower()
            if text in ("auto", "balanced", "balanced_low_0", "sequential"):
                return visible, True
            index = text.partition(":")[2] if text.startswith("cuda") else text
            if index.isdigit():
                number = int(index)
                return ([visible[number]] if number < len(visible) else []), False
            if text == "cuda":
                return visible[:1], False
        if isinstance(spec, dict):
            indexes = sorted({_cuda_index(v) for v in spec.values() if names_cuda(v)})
            return [visible[i] for i in indexes if i < len(visible)], False
    return visible[:1], False


def _cuda_index(value: Any) -> int:
    """``cuda:1`` / ``1`` / ``"1"`` -> 1; ``cuda`` -> 0."""
    text = str(value).strip().lower().removeprefix("cuda").lstrip(":")
    return int(text) if text.isdigit() else 0


def _free_memory(device: GpuDevice) -> int:
    if device.mig_mode and device.mig_devices:
        return max(m.memory_free for m in device.mig_devices)
    return device.memory_free


@check(
    "cuda.memory",
    title="GPU memory fits the model",
    needs=("model", "gpu"),
    why=(
        "A model whose weights, KV cache and activations exceed free GPU memory dies with 'CUDA out of memory' "
        "while loading or on the first long request; with device_map auto, accelerate silently offloads layers "
        "to the CPU or disk and generation becomes 10-100x slower. vLLM refuses to start when one --max-model-len "
        "sequence of KV cache does not fit beside the weights. GPUs before Ampere (compute capability < 8.0) have "
        "no native bfloat16."
    ),
    fix=(
        "In-process: load in a smaller dtype (float16, 8-bit, 4-bit), shorten model_max_length or the batch, or use "
        "a larger GPU. Served (vLLM/SGLang): lower --max-model-len to what fits, raise --gpu-memory-utilization while "
        "the CUDA graphs still fit beyond it (else --enforce-eager), or spread the model with --tensor-parallel-size."
    ),
)
def cuda_memory(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """The estimated footprint (weights at the load dtype + KV cache + allowance) fits in free memory of the GPUs.

    For a vLLM/SGLang launch command: the engine's own accounting, weights at the served dtype per GPU, the
    profiling peak and one --max-model-len sequence of KV cache within total memory x --gpu-memory-utilization,
    and the CUDA context, CUDA graphs and NCCL in what is free beyond it; a margin inside the estimate's error
    bar is a warning.
    """
    on_cpu = cpu_deployment(snap, ctx)
    if on_cpu:
        raise Skip(f"the deployment runs on the CPU ({on_cpu})")
    if not usable_gpus(snap.gpu):
        raise Skip("no NVIDIA GPU visible to CUDA here (see cuda.driver)")
    launch = read_launch(snap)
    if launch is not None:
        yield from _served_memory(snap, launch)
        return
    footprint = estimate_footprint(snap)
    if footprint is None:
        raise Skip("the model's parameter count is unknown (no safetensors headers read; see weights.files)")
    gpus, may_offload = target_gpus(snap, ctx)
    if not gpus:
        raise Skip("the configured device names a GPU CUDA does not see (see cuda.driver)")
    config = _config_name(snap)
    if footprint.dtype == "bfloat16":
        for device in gpus:
            cc = device.cc
            if cc is None or kb.supports_bf16(cc):
                continue
            arch = f"sm_{cc[0]}{cc[1]} {kb.architecture_name(cc)}"
            message = (
                f"bfloat16 on GPU {device.index} ({device.name}, {arch}): native bfloat16 needs compute capability "
                f">= {kb.cuda_text(kb.bf16_min_cc())} (Ampere); this GPU emulates it slowly or fails "
                "('bf16 is only supported on A100+ GPUs' / 'no kernel image is available')"
            )
            if footprint.explicit:
                yield error(
                    "cuda.bf16-unsupported",
                    message,
                    observed=f"torch_dtype: bfloat16 ({footprint.dtype_source})",
                    expected="float16 on this GPU",
                    fix=f"set torch_dtype: float16 in {config}",
                    location=config_location(snap, "torch_dtype"),
                )
            else:
                yield warning(
                    "cuda.bf16-unsupported",
                    f"{message} (the model's config.json says bfloat16: {footprint.dtype_source})",
                    observed="bfloat16 (from the model's config.json)",
                    expected="float16 on this GPU",
                    fix=f"set torch_dtype: float16 in {config}",
                    location=config_location(snap, "torch_dtype"),
                )
            break
    if not footprint.explicit and footprint.dtype == "float32" and "unset" in footprint.dtype_source:
        yield info(
            "cuda.float32-default",
            "torch_dtype is not set: transformers 4.x loads the weights in float32, twice the memory of the "
            "checkpoint's bfloat16/float16",
            fix=f"set torch_dtype: auto (or float16/bfloat16) in {config}",
            location=config_location(snap, "torch_dtype"),
        )
    free = sum(_free_memory(g) for g in gpus) if may_offload else _free_memory(gpus[0])
    where = (
        f"{len(gpus)} GPU(s) ({', '.join(f'GPU {g.index}' for g in gpus)})"
        if may_offload
        else f"GPU {gpus[0].index} ({gpus[0].name})"
    )
    if gpus[0].mig_mode and gpus[0].mig_devices:
        where += " [largest MIG instance]"
    need = footprint.total
    if need <= free:
        yield info(
            "cuda.memory-fits",
            f"estimated {gib(need)} of {gib(free)} free on {where}: {footprint.formula}",
            observed=gib(free) + " free",
            expected=gib(need),
        )
        return
    holders = [p for g in gpus for p in g.processes if p.used_memory]
    held = (
        f" Other processes hold {gib(sum(p.used_memory or 0 for p in holders))} "
        f"(pids {', '.join(str(p.pid) for p in holders)})."
        if holders
        else ""
    )
    alternative = _smaller_load(snap, footprint, free, config)
    if may_offload:
        yield warning(
            "cuda.memory-offload",
            f"the model needs ~{gib(need)} but {where} have {gib(free)} free: device_map auto will offload "
            f"~{gib(need - free)} of layers to the CPU (and to disk when RAM runs short), making generation "
            f"10-100x slower.{held} Estimate: {footprint.formula}",
            observed=f"{gib(free)} free",
            expected=f">= {gib(need)}",
            fix=alternative,
            location=config_location(snap, "device_map"),
        )
        return
    yield error(
        "cuda.memory-insufficient",
        f"the model needs ~{gib(need)} but {where} has {gib(free)} free: loading fails with 'CUDA out of "
        f"memory'.{held} Estimate: {footprint.formula}",
        observed=f"{gib(free)} free",
        expected=f">= {gib(need)}",
        fix=alternative,
        location=config_location(snap, "torch_dtype"),
    )


# Registered after cuda.memory, so it runs and prints after it: what decides whether the model runs comes
# before what only matters when building extensions (the first screen of a report shows the GPU verdict).
@check(
    "cuda.toolkit",
    title="nvcc matches torch's CUDA",
    needs=("torch", "gpu"),
    why=(
        "nvcc only matters when something is compiled against torch (flash-attn from source, custom kernels, "
        "DeepSpeed ops): torch.utils.cpp_extension refuses an nvcc whose CUDA major differs from torch's. Running "
        "the model never needs nvcc: torch's wheel brings its own CUDA runtime."
    ),
    fix="Install the CUDA toolkit matching torch's CUDA and point CUDA_HOME (and PATH) at it before building.",
)
def cuda_toolkit(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """The nvcc on PATH (or CUDA_HOME) has the CUDA version torch was built with."""
    build = snap.torch
    gpu = snap.gpu
    assert build is not None and gpu is not None
    torch_cuda = kb.parse_cuda(build.cuda)
    if torch_cuda is None:
        raise Skip(f"torch {build.version} is not a CUDA build: nvcc does not matter")
    if not gpu.nvcc_path:
        raise Skip("no nvcc found (PATH, CUDA_HOME, /usr/local/cuda): only needed to build CUDA extensions")
    nvcc = kb.parse_cuda(gpu.nvcc_version)
    if nvcc is None:
        yield info("cuda.nvcc-unreadable", f"{gpu.nvcc_path} gave no version: {gpu.nvcc_error or 'unknown output'}")
        return
    wants_flash = config_value(snap, "attn_implementation") == "flash_attention_2"
    flash = (
        " Your config asks for flash_attention_2: `pip install flash-attn` compiles with this nvcc when no "
        "prebuilt wheel matches your torch."
        if wants_flash
        else ""
    )
    torch_text = kb.cuda_text(torch_cuda)
    home = f"/usr/local/cuda-{torch_text}"
    fix = (
        f"install CUDA toolkit {torch_text} and build with it: export CUDA_HOME={home} PATH={home}/bin:$PATH  "
        f"(or: conda install -c nvidia cuda-toolkit={torch_text}). Prebuilt wheels do not need nvcc."
    )
    if nvcc[0] != torch_cuda[0]:
        yield warning(
            "cuda.nvcc-mismatch",
            f"nvcc at {gpu.nvcc_path} is CUDA {kb.cuda_text(nvcc)}, torch {build.version} is built with CUDA "
            f"{torch_text}. This only matters when building CUDA extensions (flash-attn, custom kernels): they "
            f"fail with 'The detected CUDA version ({kb.cuda_text(nvcc)}) mismatches the version that was used to "
            f"compile PyTorch ({torch_text})'. Running the model is not affected." + flash,
            observed=kb.cuda_text(nvcc),
            expected=f"{torch_cuda[0]}.x (ideally {torch_text})",
            fix=fix,
        )
    elif nvcc != torch_cuda:
        yield info(
            "cuda.nvcc-minor-mismatch",
            f"nvcc is CUDA {kb.cuda_text(nvcc)}, torch {build.version} uses CUDA {torch_text}: the same major, so "
            "extensions build (torch only warns)." + flash,
        )
    else:
        yield info("cuda.nvcc-ok", f"nvcc at {gpu.nvcc_path} is CUDA {kb.cuda_text(nvcc)}, as torch's build")


# --- cuda.memory -----------------------------------------------------------------------------


def _smaller_load(snap: Snapshot, footprint: Footprint, free: int, config: str) -> str:
    """The first lighter way of loading that fits, as a config edit."""
    base = footprint.weights / DTYPE_BYTES.get(footprint.dtype, 2.0)
    rest = footprint.kv_cache + CUDA_CONTEXT_BYTES
    options = [
        ("float16", "set torch_dtype: float16"),
        ("int8", "set load_in_8bit: true (needs bitsandbytes)"),
        ("int4", "set load_in_4bit: true (needs bitsandbytes)"),
    ]
    for dtype, edit in options:
        per = DTYPE_BYTES[dtype]
        if per >= DTYPE_BYTES.get(footprint.dtype, 2.0):
            continue
        need = int(base * per * (1 + ACTIVATION_FRACTION)) + rest
        if need <= free:
            return f"{edit} in {config} (~{gib(need)}), or use a GPU with >= {gib(footprint.total)} free"
    return (
        f"use a GPU with >= {gib(footprint.total)} free, or set device_map: auto in {config} to spread the model "
        "over several GPUs (and the CPU)"
    )


# --- cuda.memory of a served model (vLLM / SGLang) ----------------------------------------------


def _served_memory(snap: Snapshot, launch: Launch) -> Iterator[Finding]:
    """The launch command's memory as the engine accounts for it (see :mod:`autoglm_doctor.checks._served`)."""
    model = snap.model
    if model is None or not model.exists:
        raise Skip("the launch command's model folder is not usable here (see weights.path)")
    visible = usable_gpus(snap.gpu)
    devices = visible[: launch.tensor_parallel]
    device = min(devices, key=lambda g: g.memory_total)
    memory = served_memory(launch, model, device)
    if memory is None:
        raise Skip("the model's parameter count or attention shape is unknown (see weights.files)")
    bars = tuple(
        each.breakdown(f"GPU {gpu.index} ({gpu.name})")
        for gpu in devices
        if (each := served_memory(launch, model, gpu)) is not None
    )
    where = f"GPU {device.index} ({device.name})"
    if len(devices) > 1:
        where = f"each of {len(devices)} GPUs (smallest: {where})"
    util_flag = launch.flag("gpu-memory-utilization")
    if launch.dtype == "bfloat16" and device.cc is not None and not kb.supports_bf16(device.cc):
        # Only an explicit --dtype bfloat16 is refused; `auto` falls back to float16 with a warning
        # (vllm/config/model.py), which config.values judges for the model's family.
        yield error(
            "cuda.bf16-unsupported",
            f"{where} has compute capability {kb.cuda_text(device.cc)}: {launch.engine} refuses bfloat16 there "
            "('Bfloat16 is only supported on GPUs with compute capability of at least 8.0')",
            observed=f"bfloat16 ({memory.dtype_source})",
            expected="float16 on this GPU",
            fix="add --dtype half to the launch command",
            location=_launch_location(snap, "dtype", launch),
        )
    refusal = engines.get(launch.engine).model.refuses_below_budget
    if refusal and memory.free < memory.budget:
        holders = [p for p in device.processes if p.used_memory]
        held = f" (pids {', '.join(str(p.pid) for p in holders)})" if holders else ""
        lower = int(memory.free / memory.total * 100) / 100
        fits_lower = memory.kv_needed <= memory.kv_available - (memory.budget - int(memory.total * lower))
        fix = (
            f"stop the processes holding GPU memory{held}, or lower {util_flag} to {lower:.2f}"
            if fits_lower
            else f"stop the processes holding GPU memory{held}: below {util_flag} {launch.utilization:g} the "
            "model no longer fits"
        )
        yield error(
            "cuda.memory-startup-free",
            f"{where} has {gib2(memory.free)} free of {gib2(memory.total)}, less than the {gib2(memory.budget)} "
            f"{util_flag} {launch.utilization:g} reserves: {engines.get(launch.engine).title} refuses to start "
            f"('{refusal}')",
            observed=f"{gib2(memory.free)} free",
            expected=f">= {gib2(memory.budget)} free",
            fix=fix,
            location=_launch_location(snap, "gpu-memory-utilization", launch),
            breakdown=bars,
        )
        return
    yield _served_verdict(snap, launch, model, device, memory, where, bars)


def _served_verdict(
    snap: Snapshot,
    launch: Launch,
    model: ModelFacts,
    device: GpuDevice,
    memory: ServedMemory,
    where: str,
    bars: tuple[Breakdown, ...],
) -> Finding:
    """The one finding that says whether the engine starts: fits, within the error, or which limit it breaks."""
    util_flag = launch.flag("gpu-memory-utilization")
    len_flag = launch.flag("max-model-len")
    location = _launch_location(snap, "max-model-len", launch)
    severity = Severity.ERROR
    observed = f"{gib2(memory.kv_available)} left for the KV cache"
    expected = f">= {gib2(memory.kv_needed)} ({memory.max_model_len} tokens)"
    tighter = "in the budget" if memory.kv_margin <= memory.outside_margin else "beyond the budget"
    engine = engines.get(launch.engine)
    words = engine.model
    kept = memory.outside - memory.eager_frees  # the CUDA context and NCCL: no flag gives them back
    _, mig = gpus_for_tensor_parallel(snap.gpu)
    if memory.weights > memory.free - kept:
        code, fixes = "cuda.memory-weights", _weights_fixes(snap, launch, model, device, memory)
        per_gpu = " per GPU" if memory.weights < memory.weights_total else ""
        message = (
            f"{launch.engine} on {where}: the weights alone ({gib2(memory.weights)}{per_gpu} at {memory.dtype}) "
            f"exceed the {gib2(memory.free - kept)} this GPU can give them ({gib2(memory.free)} free, less the "
            f"{gib2(kept)} {launch.engine} keeps outside the budget even with {launch.flag('enforce-eager')}): "
            f"loading them fails with 'CUDA out of memory', whatever {len_flag} or {util_flag}"
        )
        observed = f"{gib2(memory.free - kept)} for the weights"
        expected = f">= {gib2(memory.weights)} (the weights{per_gpu})"
    elif memory.kv_margin < 0 and memory.largest_len <= 0:
        code, fixes = "cuda.memory-weights", _served_fixes(snap, launch, model, device, memory, 0)
        message = (
            f"{launch.engine} on {where}: the weights ({gib2(memory.weights)}) and the profiling peak "
            f"({gib2(memory.activation)}) leave no room for a KV cache in the {gib2(memory.budget)} that "
            f"{util_flag} {launch.utilization:g} allows: start-up fails"
            + (f" ('{words.no_room}')" if words.no_room else "")
        )
    elif memory.kv_margin < 0:
        code, fixes = "cuda.memory-max-model-len", _served_fixes(snap, launch, model, device, memory, 0)
        stops = words.too_long.format(length=memory.max_model_len) if words.too_long else ""
        message = (
            f"{launch.engine} on {where}: one {memory.max_model_len}-token sequence needs {gib2(memory.kv_needed)} "
            f"of KV cache, more than the {gib2(memory.kv_available)} left; the largest {len_flag} that fits is "
            f"{memory.largest_len}" + (f". {engine.title} stops at start-up with '{stops}'" if stops else "")
        )
    elif memory.outside_margin < 0:
        code, fixes = "cuda.memory-outside-budget", _outside_fixes(launch, memory)
        message = (
            f"{launch.engine} on {where}: beyond the {gib2(memory.budget)} budget ({util_flag} "
            f"{launch.utilization:g}) only {gib2(memory.outside_room)} is free, but what {launch.engine} keeps "
            f"there needs ~{gib2(memory.outside)} ({memory.outside_formula}): start-up fails with 'CUDA out of "
            "memory'" + (" while capturing CUDA graphs" if memory.eager_frees else "")
        )
        observed = f"{gib2(memory.outside_room)} free beyond the budget"
        expected = f">= {gib2(memory.outside)}"
        location = _launch_location(snap, "gpu-memory-utilization", launch)
    elif memory.margin < memory.error_bar:
        severity, code = Severity.WARNING, "cuda.memory-within-error"
        fixes = _served_fixes(snap, launch, model, device, memory, memory.error_bar)
        message = (
            f"{launch.engine} on {where} may not start: within the estimate's error. One {memory.max_model_len}-token "
            f"sequence of KV cache ({gib2(memory.kv_needed)}) leaves {gib2(memory.margin)} {tighter}, less than "
            f"the estimate's error of ±{gib2(memory.error_bar)} (measured against real start-up logs)"
        )
        observed = f"{gib2(memory.margin)} margin {tighter}"
        expected = f">= {gib2(memory.error_bar)} (the estimate's error)"
    else:
        severity, code, fixes = Severity.INFO, "cuda.memory-fits", []
        message = (
            f"{launch.engine} on {where}: the KV cache of one {memory.max_model_len}-token sequence "
            f"({gib2(memory.kv_needed)}) fits the {gib2(memory.kv_available)} left, {gib2(memory.margin)} to spare "
            f"{tighter} (estimate error ±{gib2(memory.error_bar)}); the largest {len_flag} that fits is "
            f"{memory.largest_len}"
        )
        expected = f">= {gib2(memory.kv_needed)}"
        location = None
    if mig and severity is not Severity.INFO:
        message += f"; more GPUs are no way out here: {MIG_ONE_DEVICE}"
    fix = "; or ".join(fixes) if fixes else None
    if severity is Severity.ERROR and not fix:
        # no shorter sequence helps when not even the weights and the profile leave a KV block
        shorter = "" if code == "cuda.memory-weights" else f", or a smaller {len_flag}"
        fix = f"use a GPU with more memory{shorter}"
    return Finding(
        severity,
        code,
        message,
        fix=fix,
        location=location,
        observed=observed,
        expected=expected,
        details=memory.accounting(),
        breakdown=bars,
    )


def _served_fixes(
    snap: Snapshot, launch: Launch, model: ModelFacts, device: GpuDevice, memory: ServedMemory, margin: int
) -> list[str]:
    """Launch-flag changes that make the sequence fit with ``margin`` to spare, each computed."""
    fixes = []
    length = memory.length_with_margin(margin)
    if 1024 <= length < memory.max_model_len:
        # a shorter sequence frees the budget only: beyond it, the CUDA graphs may need to go too
        if memory.outside_margin >= margin:
            fixes.append(f"{launch.flag('max-model-len')} {length}")
        elif memory.eager_frees and memory.outside_margin + memory.eager_frees >= margin:
            fixes.append(f"{launch.flag('max-model-len')} {length} {launch.flag('enforce-eager')}")
    need = memory.weights + memory.activation + memory.kv_needed + margin
    util = math.ceil(need / memory.total * 100) / 100
    room_after = memory.free - int(util * memory.total)
    if util <= 0.95 and util > launch.utilization and room_after - memory.outside >= margin:
        fixes.append(f"{launch.flag('gpu-memory-utilization')} {util:.2f}")
    elif (
        util <= 0.95
        and util > launch.utilization
        and memory.eager_frees
        and room_after - (memory.outside - memory.eager_frees) >= margin
    ):
        # a higher budget leaves no room for the CUDA graphs beyond it: without them it does
        fixes.append(f"{launch.flag('gpu-memory-utilization')} {util:.2f} {launch.flag('enforce-eager')}")
    if memory.outside_margin < margin:  # short beyond the budget: move memory there, or drop the CUDA graphs
        fixes += [fix for fix in _outside_room(launch, memory, margin) if fix not in fixes]
    fixes += _tp_fixes(snap, launch, model, device, margin)
    return fixes


def _tp_fixes(snap: Snapshot, launch: Launch, model: ModelFacts, device: GpuDevice, margin: int) -> list[str]:
    """Spreading the model over more of this host's GPUs, when a size fits with ``margin`` to spare.

    Only sizes every head check accepts (the sizes config.values offers), with ``--enforce-eager``
    where the CUDA graphs would not fit beyond the budget.
    """
    gpus, _ = gpus_for_tensor_parallel(snap.gpu)
    found = tp_that_fits(launch, model, device, gpus, margin)
    if found is None:
        return []
    choice, memory = found
    eager = f" {launch.flag('enforce-eager')}" if memory.outside_margin < margin and not launch.eager else ""
    return [choice.flags(launch.engine) + eager]


def _weights_fixes(
    snap: Snapshot, launch: Launch, model: ModelFacts, device: GpuDevice, memory: ServedMemory
) -> list[str]:
    """What can hold weights that one GPU cannot: more of this host's GPUs, fewer bits, a bigger GPU.

    Never a shorter --max-model-len or another --gpu-memory-utilization: neither makes room for weights.
    """
    fixes = _tp_fixes(snap, launch, model, device, 0)
    per = DTYPE_BYTES.get(memory.dtype, 2.0)
    if per >= 2 and stored_per_param(model) >= 2:  # not a quantized checkpoint already
        four_bit = memory.weights_total / per / 2 / launch.tensor_parallel
        fixes.append(
            f"serve a quantized checkpoint of the model (AWQ/GPTQ 4-bit weights: about {gib2(int(four_bit))}"
            f"{' per GPU' if launch.tensor_parallel > 1 else ''})"
        )
    # the smallest card whose budget holds the weights, the profile and the sequence, with room beyond it
    held = memory.weights + memory.activation + memory.kv_needed
    room = 1 - launch.utilization
    card = max(held / launch.utilization, memory.outside / room if room > 0 else 0) + (memory.total - memory.free)
    kind = "MIG instance or GPU" if device.mig_mode and device.mig_devices else "GPU"
    whole = (
        f": the whole {device.name} with MIG off (sudo nvidia-smi -i {device.index} -mig 0)"
        if device.mig_mode and device.mig_devices and device.memory_total >= card
        else ""
    )
    fixes.append(f"a {kind} with at least {gib2(int(card))} of memory{whole}")
    return fixes


def _outside_fixes(launch: Launch, memory: ServedMemory) -> list[str]:
    """Ways to leave room beyond the budget: a lower utilization that still holds the KV cache, or no CUDA graphs."""
    # a shorter sequence frees memory inside the budget only, never beyond it
    return _outside_room(launch, memory, 0) or ["use a GPU with more memory"]


def _outside_room(launch: Launch, memory: ServedMemory, margin: int) -> list[str]:
    """Leaving ``margin`` free beyond the budget while the budget keeps ``margin`` for the KV cache too.

    A lower utilization moves memory from the budget to beyond it; --enforce-eager drops the CUDA graphs.
    """
    fixes = []
    util = int((memory.free - memory.outside - margin) / memory.total * 100) / 100
    if 0 < util < launch.utilization and memory.kv_margin - (memory.budget - int(util * memory.total)) >= margin:
        fixes.append(f"{launch.flag('gpu-memory-utilization')} {util:.2f}")
    if (
        memory.eager_frees
        and not launch.eager
        and memory.kv_margin >= margin
        and memory.outside_margin + memory.eager_frees >= margin
    ):
        fixes.append(f"add {launch.flag('enforce-eager')} (no CUDA graphs: slower decoding)")
    return fixes


def _launch_location(snap: Snapshot, name: str, launch: Launch) -> Location | None:
    """Where a launch setting is (or, when absent, the launch file)."""
    from autoglm_doctor.configfile.launch import setting

    if snap.config is None or not snap.config.path:
        return None
    found = setting(snap.config.data, launch.engine, name)
    line, column = snap.config.position(found[0]) if found else (None, None)
    return Location(snap.config.path, line, column)
