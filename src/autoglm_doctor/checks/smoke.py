"""smoke.load-infer: the real load-and-infer, in a subprocess of the target interpreter (smoke area).

This is the one check that runs what the deployment runs. Everything heavy happens in a
child process of the *target* interpreter (:mod:`autoglm_doctor.smoke`); this module only
decides how to load (device, dtype, remote code), starts it, shows progress and turns the
outcome into findings.

A vision-language model (config.json has a vision_config, or the folder has
preprocessor_config.json / processor_config.json) is loaded with AutoProcessor and the
image-text-to-text class, shown a synthetic phone screenshot through the chat template, and
must show that the pixel values reached the model's forward.

Pack keys read (``smoke:`` section, all optional): ``auto_class`` (default
``AutoModelForCausalLM``; ``AutoModelForImageTextToText`` for a vision-language model),
``prompt``, ``max_new_tokens`` (default 8).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoglm_doctor.checks._util import pip_install
from autoglm_doctor.context import CheckContext, config_value
from autoglm_doctor.model import Finding, Skip, error, info, warning
from autoglm_doctor.probe.collect import ProbeError, resolve_interpreter
from autoglm_doctor.probe.snapshot import Snapshot
from autoglm_doctor.registry import check

if TYPE_CHECKING:
    from autoglm_doctor.smoke.runner import ProgressFn

DTYPES = {
    "auto": "auto",
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}
"""Config spellings of torch_dtype and the torch attribute each means."""


def gpu_usable(snap: Snapshot) -> bool:
    """Whether the facts show an NVIDIA GPU that CUDA will see and this torch build can use (no facts: no)."""
    if snap.torch is None or not snap.torch.cuda or snap.gpu is None:
        return False
    return bool(snap.gpu.gpus) and bool(snap.gpu.visible)


def resolve_device(snap: Snapshot, ctx: CheckContext) -> tuple[str | None, Any, str]:
    """(device, device_map, where it came from): ``--device`` over the config over ``auto``."""
    if ctx.options.device:
        device, source = ctx.options.device, "--device"
    else:
        device_map = config_value(snap, "device_map")
        if device_map is not None and device_map is not False:
            return None, device_map, "config device_map"
        configured = config_value(snap, "device")
        device, source = (str(configured), "config device") if configured else ("auto", "default")
    if device == "auto":
        return ("cuda:0" if gpu_usable(snap) else "cpu"), None, f"{source} auto"
    return device, None, source


def _progress(ctx: CheckContext) -> ProgressFn | None:
    footer = ctx.options.progress
    if footer is not None:  # the run's live footer shows the phase

        def to_footer(phase: str, elapsed: float) -> None:
            footer(f"{phase} · {elapsed:.1f} s")

        return to_footer
    if not sys.stderr.isatty():
        return None

    def show(phase: str, elapsed: float) -> None:
        sys.stderr.write(f"\r\033[2K  smoke.load-infer: {phase} · {elapsed:.1f} s")
        sys.stderr.flush()

    return show


@check(
    "smoke.load-infer",
    title="Model loads and generates",
    needs=("python", "torch", "model", "live"),
    why="Every static check can pass and the model still fail to load; loading it the way the deployment "
    "does and generating a few tokens settles it.",
    fix="Each failure names its cause (out of memory, missing kernels for the GPU, CUDA libraries, accelerate, "
    "remote code, a hang, a crash) and the change that fixes it.",
    last=True,
)
def load_infer(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """Loads tokenizer and model with the config's options in the target interpreter, then generates.

    A few tokens, greedily: the load must finish in time, the logits be finite and the text non-empty.
    """
    model = snap.model
    assert model is not None  # noqa: S101 - guaranteed by needs=("model",)
    if not model.exists:
        raise Skip(f"the model folder {model.path} does not exist (see weights.path)")
    if not ctx.options.smoke:
        raise Skip("--no-smoke")

    wants_remote = config_value(snap, "trust_remote_code") is True
    if (model.auto_map or wants_remote) and not ctx.options.allow_remote_code:
        reason = (
            "config.json has an auto_map (custom model code)" if model.auto_map else "the config sets trust_remote_code"
        )
        yield warning(
            "smoke.remote-code-refused",
            f"the smoke test did not run: {reason}, and running code from the model folder needs --allow-remote-code",
            fix=f"review the *.py files in {model.path}, then re-run with --allow-remote-code",
            observed=", ".join(sorted(model.auto_map)) if model.auto_map else "trust_remote_code: true",
        )
        return

    try:
        interpreter = resolve_interpreter(ctx.options.python)
    except ProbeError as exc:
        yield error("smoke.not-started", f"the smoke test could not start: {exc}", fix="pass a working --python")
        return

    device, device_map, source = resolve_device(snap, ctx)
    if source.endswith("auto") and device == "cpu" and ctx.pack.gpu == "required":
        yield warning(
            "smoke.no-gpu",
            f"pack {ctx.pack.name} expects a GPU but none is usable here: the smoke test runs on the CPU "
            "(slow, and it proves nothing about the GPU stack)",
            fix="see the cuda.* findings; or pass --device cuda:0 to force the GPU",
            observed="cpu",
            expected="cuda:0",
        )
    raw_dtype = config_value(snap, "torch_dtype") or config_value(snap, "dtype")
    dtype = DTYPES.get(str(raw_dtype).lower()) if raw_dtype is not None else None
    if raw_dtype is not None and dtype is None:
        yield warning(
            "smoke.unknown-dtype",
            f"torch_dtype {raw_dtype!r} is not one the smoke test knows; it loads with transformers' default",
            fix="use one of auto, float32, float16, bfloat16",
            observed=str(raw_dtype),
        )
    attn = config_value(snap, "attn_implementation")
    section = ctx.pack.settings.smoke  # typed and range-checked when the pack loaded
    # imported here: runs without the smoke test (--no-smoke, --only) never pay for them
    from autoglm_doctor.smoke.classify import classify
    from autoglm_doctor.smoke.protocol import PROMPT, VISION_PROMPT, SmokeRequest
    from autoglm_doctor.smoke.runner import run_script

    request = SmokeRequest(
        # a hub id loads by the id, offline, so that transformers resolves the cache as the service will
        model_path=model.hub_id if model.source == "hub-cache" and model.hub_id else model.path,
        device=device,
        device_map=device_map,
        dtype=dtype,
        attn_implementation=str(attn) if attn else None,
        trust_remote_code=wants_remote and ctx.options.allow_remote_code,
        prompt=section.prompt or (VISION_PROMPT if model.vision else PROMPT),
        max_new_tokens=section.max_new_tokens,
        auto_class=section.auto_class or ("AutoModelForImageTextToText" if model.vision else "AutoModelForCausalLM"),
        vision=model.vision,
    )
    cwd = Path(snap.python.cwd) if snap.python.cwd and Path(snap.python.cwd).is_dir() else None
    progress = _progress(ctx)
    started = time.monotonic()
    try:
        run = run_script(request, interpreter, ctx.options.smoke_timeout, cwd=cwd, progress=progress)
    finally:
        if progress is not None and ctx.options.progress is None:
            sys.stderr.write("\r\033[2K")
            sys.stderr.flush()
    pip = pip_install(snap).rstrip()
    findings = list(classify(run, request, pip, ctx.options.smoke_timeout))
    yield from findings
    placement = f"device_map={device_map!r}" if device_map is not None else f"device={device}"
    yield info(
        "smoke.options",
        f"loaded with {placement} ({source}), torch_dtype={dtype or 'default'}, "
        f"attn_implementation={attn or 'default'}, trust_remote_code={request.trust_remote_code} "
        f"in {time.monotonic() - started:.1f} s by {interpreter}, from {request.model_path}",
    )
