"""Turn a smoke run into findings: what failed, in words, and the fix for it.

The order matters: a timeout explains everything after it; a message the script caught is
more precise than an exit status; an out-of-memory message beats the SIGABRT that a failed
allocation in native code ends with.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass

from autoglm_doctor.model import Finding, error, info
from autoglm_doctor.smoke.protocol import SmokeRequest, SmokeResult, SmokeRun

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Known:
    """A failure recognised by a message in the script's error or output."""

    code: str
    """Finding code."""
    pattern: re.Pattern[str]
    """What identifies it."""
    message: str
    """What it means; ``{line}`` is the decisive line, ``{phase}`` the phase."""
    fix: str
    """What to do; ``{pip}`` is the pip command of the target interpreter."""
    native: bool = False
    """Native code prints it to stderr (so it counts even when the script could not report it)."""


def _re(text: str) -> re.Pattern[str]:
    return re.compile(text, re.IGNORECASE)


KNOWN: tuple[Known, ...] = (
    Known(
        "smoke.out-of-memory",
        _re(
            r"CUDA out of memory|OutOfMemoryError|DefaultCPUAllocator: can't allocate memory|\bMemoryError\b"
            r"|Cannot allocate memory|memory allocation of \d+ bytes failed|std::bad_alloc"
        ),
        "ran out of memory during {phase}: {line}",
        "load in less memory: set torch_dtype: bfloat16 (or float16) in the config, spread the model with "
        "device_map: auto, or quantise (load_in_8bit: true / load_in_4bit: true); on a GPU free it first "
        "(nvidia-smi lists the processes holding memory); on the host add RAM or swap",
        native=True,
    ),
    Known(
        "smoke.no-kernel-image",
        _re(r"no kernel image is available|is not compatible with the current PyTorch installation"),
        "torch has no CUDA kernels for this GPU's architecture: {line}",
        "install a torch build compiled for this GPU (compute capability), e.g. "
        "{pip} --force-reinstall torch --index-url https://download.pytorch.org/whl/cu128 "
        "(Blackwell sm_100/sm_120 needs torch >= 2.7 with cu128 or newer)",
        native=True,
    ),
    Known(
        "smoke.cuda-library",
        _re(
            r"lib(cudnn|nccl|cublas|cusparse|cufft|nvJitLink|cudart)[\w.\-]*(\.so[\w.]*|\.dll)?[^\n]*"
            r"(cannot open shared object|not found|undefined symbol)|(Could not load|Unable to load) library "
            r"(lib)?(cudnn|nccl)|cuDNN (version incompatibility|error)|NCCL (error|version)"
        ),
        "a CUDA library torch needs could not be loaded: {line}",
        "reinstall torch with its matching nvidia-* wheels ({pip} --force-reinstall torch) and make sure "
        "LD_LIBRARY_PATH does not point at another cuDNN/NCCL (unset LD_LIBRARY_PATH and retry)",
        native=True,
    ),
    Known(
        "smoke.needs-accelerate",
        _re(r"requires `?accelerate`?|requires Accelerate"),
        "transformers refused device_map without accelerate: {line}",
        "{pip} 'accelerate>=1.1.0' (transformers 5.x; 'accelerate>=0.26.0' for 4.x), or drop device_map "
        "and set device: cuda:0",
    ),
    Known(
        "smoke.remote-code-refused",
        _re(r"trust_remote_code|contains custom code"),
        "the model needs code from its own folder, and the load did not allow it: {line}",
        "if the deployment should run that code, set trust_remote_code: true in the config; review the "
        "model folder's *.py files and re-run with --allow-remote-code",
    ),
    Known(
        "smoke.processor-missing",
        _re(r"no image processor could be loaded|Can't load image processor|Unrecognized image processor"),
        "the model's image processor could not be loaded during {phase}: {line}",
        "the model folder lacks its processor files: download them next to the weights "
        "(huggingface-cli download REPO preprocessor_config.json processor_config.json chat_template.jinja "
        "--local-dir MODEL_DIR); GLM-4.1V's processor also needs torchvision in the target environment",
    ),
    Known(
        "smoke.corrupt-weights",
        _re(
            r"SafetensorError|HeaderTooLarge|Error while deserializing header|MetadataIncompleteBuffer"
            r"|InvalidHeader|incomplete metadata|file (is )?truncated|PytorchStreamReader failed|invalid load key"
        ),
        "the weight files could not be read during {phase}: {line}",
        "re-download the model (a shard is truncated or corrupt): huggingface-cli download REPO "
        "--local-dir MODEL_DIR, then run `autoglm-doctor check --only weights.files --verify-hashes`",
    ),
)

# Lines that say more than the exception that ends a failed import of torch.
DECISIVE = (
    _re(r"A module that was compiled using NumPy 1\.x cannot be run in\s+NumPy 2[^\n]*"),
    _re(r"_ARRAY_API not found"),
    _re(r"[^\n]*undefined symbol[^\n]*"),
    _re(r"[^\n]*cannot open shared object file[^\n]*"),
    _re(r"[^\n]*GLIBC[X_]*\S* not found[^\n]*"),
)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _bytes(count: int | None) -> str:
    return "unknown" if count is None else f"{count / MiB:,.0f} MiB"


def decisive_line(run: SmokeRun) -> str:
    """The one line that says why it failed: a known cause if any, else the exception's last line."""
    err = run.error
    text = "\n".join(filter(None, [err.get("traceback", "") if err else "", run.output]))
    for pattern in DECISIVE:
        match = pattern.search(text)
        if match:
            return " ".join(match.group(0).split())
    if err:
        message = str(err.get("message", "")).strip()
        first = message.splitlines()[-1].strip() if message else ""
        return f"{err.get('type', 'Error')}: {first}" if first else str(err.get("type", "Error"))
    return _last_line(run.output)


def classify(run: SmokeRun, request: SmokeRequest, pip: str, timeout: float) -> Iterator[Finding]:
    """Findings for one run: a classified failure with its fix, or the measurements of a pass."""
    where = f"(run by {run.interpreter})"
    if run.start_error:
        yield error(
            "smoke.not-started",
            f"the smoke test could not start: {run.start_error}",
            fix="pass a working interpreter with --python (a venv folder or its bin/python)",
        )
        return
    if run.timed_out:
        yield error(
            "smoke.timeout",
            f"the smoke test was still in '{run.last_phase}' after {timeout:g} s and was killed "
            f"with everything it started {where}",
            fix=f"if the model is just large, allow more time: --smoke-timeout {int(timeout * 2)}; otherwise "
            f"the load hangs in '{run.last_phase}': run it by hand with PYTHONFAULTHANDLER=1 and "
            "`kill -SIGABRT PID` to see where it is stuck (a network mount, a lock, a GPU that does not answer)",
            observed=f"still in '{run.last_phase}' at {timeout:g} s",
            expected=f"done within {timeout:g} s",
        )
        return
    result = run.result
    if result is None:
        yield _failure(run, request, pip, where)
        return
    yield from _judge(result, run)


def _failure(run: SmokeRun, request: SmokeRequest, pip: str, where: str) -> Finding:
    err = run.error
    phase = run.last_phase  # the most precise: "import transformers", "weights 3/8"
    if phase == "start" and err and err.get("phase"):
        phase = str(err["phase"])
    text = f"{err.get('type', '')}: {err.get('message', '')}" if err else ""
    haystack = "\n".join([text, str(err.get("traceback", "")) if err else "", run.output])
    line = decisive_line(run)
    # the script's own message first; then what native code printed on stderr
    matched = next((k for k in KNOWN if k.pattern.search(text)), None) or next(
        (k for k in KNOWN if k.native and k.pattern.search(haystack)), None
    )
    if matched is not None:
        return error(
            matched.code,
            matched.message.format(line=line, phase=phase) + f" {where}",
            fix=matched.fix.format(pip=pip),
            observed=line,
        )
    if run.returncode is not None and run.returncode < 0:
        name = _signal_name(-run.returncode)
        if -run.returncode == signal.SIGKILL:
            return error(
                "smoke.out-of-memory",
                f"the smoke test was killed by SIGKILL during '{phase}': most likely the kernel's OOM "
                f"killer (host memory ran out) {where}",
                fix="check `dmesg | grep -i 'killed process'`; load in less host memory: torch_dtype: bfloat16, "
                "device_map: auto (loads straight to the GPU), or add RAM/swap",
                observed=f"SIGKILL in '{phase}'",
            )
        return error(
            "smoke.crashed",
            f"the smoke test crashed with {name} during '{phase}' {where}" + (f": {line}" if line else ""),
            fix="a native library crashed; run the load by hand with `PYTHONFAULTHANDLER=1` to see the frame, and "
            "check for mismatched builds (torch vs CUDA libraries, flash-attn/bitsandbytes built for another "
            "torch, a sitecustomize.py or .pth file doing something at start-up)",
            observed=f"{name} in '{phase}'",
            expected="a clean exit",
        )
    if phase.startswith("import"):
        module = phase.partition(" ")[2] or "torch"
        return error(
            "smoke.import-failed",
            f"{module} fails to import in the target environment: {line} {where}",
            fix=_import_fix(line, module, pip),
            observed=line,
        )
    if err is None:
        return error(
            "smoke.process-failed",
            f"the smoke test exited with status {run.returncode} during '{phase}' without a result {where}"
            + (f": {line}" if line else ""),
            fix=f"run `{run.interpreter} -c 'import torch, transformers'` to see the error in full",
            observed=line or f"exit status {run.returncode}",
        )
    return error(
        "smoke.load-failed",
        f"the model failed during '{phase}': {line} {where}",
        fix="read the error above; the same load fails in the deployment. Run with -v for the traceback",
        observed=line,
    )


def _import_fix(line: str, module: str, pip: str) -> str:
    missing = re.search(r"No module named '([\w.]+)'", line)
    if missing:
        return f"{pip} {missing.group(1).split('.')[0]}"
    if "NumPy" in line or "_ARRAY_API" in line:
        return f"{pip} 'numpy<2' (or upgrade torch to >= 2.3, which is built against NumPy 2)"
    if "undefined symbol" in line or "cannot open shared object" in line:
        return f"{pip} --force-reinstall {module} (a compiled part does not match the rest of the install)"
    return f"{pip} --force-reinstall {module}, then `python -c 'import {module}'` in the target environment"


def _judge(result: SmokeResult, run: SmokeRun) -> Iterator[Finding]:
    if not result.logits_finite:
        yield error(
            "smoke.nonfinite-logits",
            f"the model produced NaN or inf logits on {result.device} ({result.dtype})",
            fix="float16 overflows in many models: set torch_dtype: bfloat16 (or float32); otherwise the weights "
            "are damaged: re-download them",
            observed="NaN/inf in the logits",
            expected="finite logits",
        )
    if result.text_chars == 0:
        yield error(
            "smoke.empty-output",
            f"the model generated {result.tokens} token(s) that decode to empty text",
            fix="check that the tokenizer belongs to the model (tokenizer files in the model folder) and that "
            "generation_config.json's eos_token_id is right",
            observed="empty text",
            expected="some text",
        )
    if result.vision and result.pixel_values_reached is None:
        yield error(
            "smoke.image-not-used",
            "the screenshot's pixel values never reached the model: "
            + (
                "the processor made none (its chat template has no image slot)"
                if result.pixel_values_sent is None
                else f"the processor made {result.pixel_values_sent} but the model's forward did not receive them"
            ),
            fix="load the model with its processor (AutoProcessor) and a chat template that places the image; check "
            "that preprocessor_config.json / processor_config.json and chat_template.jinja belong to this model",
            observed="no pixel_values in forward()",
            expected="pixel_values passed to the model",
        )
    memory = (
        ", ".join(f"{dev} peak {_bytes(n)}" for dev, n in result.cuda_peak_bytes.items())
        if result.cuda_peak_bytes
        else f"peak RSS {_bytes(result.peak_rss_bytes)}"
    )
    speed = f"{result.tokens_per_s:g} tok/s" if result.tokens_per_s else "speed n/a"
    summary = (
        f"loaded in {result.load_s:.2f} s on {', '.join(result.devices) or result.device} ({result.dtype}); "
        f"first token after {result.ttft_s:.3f} s; {result.tokens} tokens at {speed}; {memory}; "
        f"total {run.elapsed_s:.1f} s"
        + (f"; screenshot pixel values {result.pixel_values_reached} reached the model" if result.vision else "")
    )
    yield info("smoke.measured", summary)


__all__ = ["KNOWN", "Known", "classify", "decisive_line"]
