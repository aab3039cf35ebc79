"""The smoke test's child script, run by the TARGET interpreter (``python -c SOURCE REQUEST``).

It loads the tokenizer and the model the way the deployment does, generates a few tokens
greedily and reports what happened as JSON lines on the protocol stream (the original
stdout; everything else the libraries print goes to stderr). The GPU path is the CPU path:
only the device string differs. It imports nothing of autoglm_doctor and must run on
Python 3.8+, so it keeps to old syntax. After the final line it leaves with ``os._exit``:
the doctor does not wait for torch's interpreter teardown.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import sys
import time
import traceback
from typing import Any

MARKER = "@autoglm-doctor-smoke@ "
# Importing torch and transformers builds hundreds of thousands of objects, and the cyclic
# collector re-scans them again and again: a third of the start-up. It stays off until the
# weights load, then the import-time heap is frozen (never scanned again) and it runs as in
# the deployment, so the memory-heavy part is measured faithfully.
gc.disable()
_START = time.perf_counter()
_PROTO = os.dup(1)  # the protocol stream; stdout itself now goes to stderr
os.dup2(2, 1)
_phase = "start"
VISION_TOWERS = ("vision_tower", "visual", "vision_model", "vision_encoder", "vision")
"""Names transformers gives a vision-language model's image encoder (LLaVA, GLM-4.1V/Qwen-VL, Idefics, ...)."""


def emit(event: str, **fields: Any) -> None:
    """Write one protocol line (a JSON object) to the doctor."""
    fields["event"] = event
    fields["t"] = round(time.perf_counter() - _START, 4)
    data = (MARKER + json.dumps(fields, default=str) + "\n").encode("utf-8")
    while data:
        data = data[os.write(_PROTO, data) :]


def phase(name: str, **fields: Any) -> None:
    """Announce the phase the load is in (shown as progress, named when it fails)."""
    global _phase
    _phase = name
    emit("phase", phase=name, **fields)


def _count_shards(path: str) -> int:
    index = os.path.join(path, "model.safetensors.index.json")
    try:
        with open(index, encoding="utf-8") as handle:
            return len(set(json.load(handle).get("weight_map", {}).values()))
    except (OSError, ValueError, AttributeError):
        return 1


def _watch_shards(transformers: Any, total: int) -> None:
    """Report ``weights k/N`` as transformers opens each safetensors file (best effort)."""
    modeling = getattr(transformers, "modeling_utils", None)
    original = getattr(modeling, "safe_open", None)
    if modeling is None or original is None:
        return
    seen: list[Any] = []

    def counting_safe_open(filename: Any, *args: Any, **kwargs: Any) -> Any:
        if filename not in seen:
            seen.append(filename)
            phase("weights", done=len(seen), total=max(total, len(seen)))
        return original(filename, *args, **kwargs)

    modeling.safe_open = counting_safe_open


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _peak_rss_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


class _FirstTokenClock:
    """A generate() streamer that only notes when each new token arrives."""

    def __init__(self) -> None:
        self.calls = 0
        self.first: float | None = None
        self.last: float | None = None

    def put(self, value: Any) -> None:
        self.calls += 1
        if self.calls == 1:  # the prompt itself
            return
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.last = now

    def end(self) -> None:
        pass


def _vision_inputs(processor: Any, image_module: Any, request: dict[str, Any]) -> Any:
    """The chat template applied to a synthetic phone screenshot and a short instruction."""
    width, height = request.get("image_size") or (1080, 2400)
    image = image_module.new("RGB", (int(width), int(height)), (242, 244, 247))
    for row in range(5):  # a grid of app icons, so the vision tower sees edges
        for column in range(4):
            left, top = width // 16 + column * width // 4, height // 6 + row * height // 7
            image.paste(
                (60 + 50 * column, 90 + 30 * row, 200 - 30 * column), (left, top, left + width // 6, top + width // 6)
            )
    messages = [
        {
            "role": "user",
            "content": [{"type": "image", "image": image}, {"type": "text", "text": request["prompt"]}],
        }
    ]
    return processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )


def run(request: dict[str, Any]) -> dict[str, Any]:
    """Load, generate, measure; returns the result fields."""
    phase("import", module="torch")
    torch = importlib.import_module("torch")
    phase("import", module="transformers")
    transformers = importlib.import_module("transformers")
    emit("versions", torch=torch.__version__, transformers=transformers.__version__)

    path = request["model_path"]
    trust = bool(request.get("trust_remote_code"))
    device = request.get("device") or "cpu"
    if device == "auto":
        device = "cuda:0" if torch.cuda.is_available() else "cpu"

    vision = bool(request.get("vision"))
    processor = None
    if vision:
        phase("import", module="PIL")
        image_module = importlib.import_module("PIL.Image")
        phase("processor")
        processor = transformers.AutoProcessor.from_pretrained(path, trust_remote_code=trust)
        if getattr(processor, "image_processor", None) is None:
            raise RuntimeError(
                f"no image processor could be loaded from {path}: AutoProcessor gave {type(processor).__name__} "
                "(preprocessor_config.json / processor_config.json are missing or name no image processor)"
            )
        tokenizer = processor.tokenizer
    else:
        phase("tokenizer")
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, trust_remote_code=trust)

    kwargs: dict[str, Any] = {"trust_remote_code": trust}
    dtype = request.get("dtype")
    if dtype:
        value = dtype if dtype == "auto" else getattr(torch, str(dtype))
        new_name = _version_tuple(transformers.__version__) >= (4, 56)
        kwargs["dtype" if new_name else "torch_dtype"] = value
    if request.get("attn_implementation"):
        kwargs["attn_implementation"] = request["attn_implementation"]
    device_map = request.get("device_map")
    if device_map is not None:
        kwargs["device_map"] = device_map
    gc.freeze()
    gc.enable()
    total = _count_shards(path)
    phase("weights", done=0, total=total)
    _watch_shards(transformers, total)
    started = time.perf_counter()
    default_class = "AutoModelForImageTextToText" if vision else "AutoModelForCausalLM"
    auto_class = getattr(transformers, request.get("auto_class") or default_class)
    model = auto_class.from_pretrained(path, **kwargs)
    if device_map is None:
        model = model.to(device)
    model.eval()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    load_s = time.perf_counter() - started

    devices = sorted({str(p.device) for p in model.parameters()})
    first_device = str(next(model.parameters()).device)
    seen: dict[str, Any] = {}
    if vision:
        phase("generate")
        inputs = _vision_inputs(processor, image_module, request).to(first_device)
        seen["sent"] = list(inputs["pixel_values"].shape) if "pixel_values" in inputs else None

        def note_pixels(module: Any, args: Any, kwargs: Any) -> None:
            pixels = kwargs.get("pixel_values")
            if pixels is None and args and hasattr(args[0], "shape") and args[0].dtype.is_floating_point:
                pixels = args[0]  # a vision tower called with the pixels as its first argument
            if pixels is not None and "reached" not in seen:
                seen["reached"] = list(pixels.shape)

        # generate() may call forward() directly (no hooks); the vision tower is always called as a module
        towers = [m for name, m in model.named_modules() if name.rsplit(".", 1)[-1] in VISION_TOWERS][:1]
        for module in [model, *towers]:
            module.register_forward_pre_hook(note_pixels, with_kwargs=True)
    else:
        phase("generate")
        inputs = tokenizer(request["prompt"], return_tensors="pt").to(first_device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    clock = _FirstTokenClock()
    gen_kwargs = {
        "max_new_tokens": int(request.get("max_new_tokens", 8)),
        "do_sample": False,
        "return_dict_in_generate": True,
        "streamer": clock,
        "pad_token_id": pad,
    }
    started = time.perf_counter()
    with torch.no_grad():
        try:
            out = model.generate(**inputs, output_logits=True, **gen_kwargs)
            logits = out.logits
        except (TypeError, ValueError) as exc:  # transformers < 4.38 has no output_logits
            if "output_logits" not in str(exc):
                raise
            out = model.generate(**inputs, output_scores=True, **gen_kwargs)
            logits = out.scores
    if first_device.startswith("cuda"):
        torch.cuda.synchronize()
    ended = time.perf_counter()
    prompt_len = inputs["input_ids"].shape[1]
    new_tokens = out.sequences[0][prompt_len:]
    text = tokenizer.decode(new_tokens, skip_special_tokens=True)
    finite = bool(logits) and all(bool(torch.isfinite(step.float()).all()) for step in logits)
    n_new = int(new_tokens.shape[0])
    first = clock.first if clock.first is not None else ended
    decode_s = (clock.last or ended) - first
    result = {
        "load_s": round(load_s, 4),
        "ttft_s": round(first - started, 4),
        "tokens": n_new,
        "tokens_per_s": round((n_new - 1) / decode_s, 2) if n_new > 1 and decode_s > 0 else None,
        "device": first_device,
        "devices": devices,
        "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
        "logits_finite": finite,
        "text_chars": len(text.strip()),
        "text_preview": text.strip()[:80],
        "peak_rss_bytes": _peak_rss_bytes(),
        "cuda_peak_bytes": {},
        "vision": vision,
        "pixel_values_sent": seen.get("sent"),
        "pixel_values_reached": seen.get("reached"),
    }
    if any(d.startswith("cuda") for d in devices):
        result["cuda_peak_bytes"] = {
            d: int(torch.cuda.max_memory_allocated(torch.device(d))) for d in devices if d.startswith("cuda")
        }
    return result


def main() -> None:
    """Run the request given as JSON in argv[1]; the exit status says little, the protocol says all."""
    code = 0
    try:
        request = json.loads(sys.argv[1])
        emit("hello", pid=os.getpid(), python=sys.version.split()[0], executable=sys.executable)
        emit("result", **run(request))
    except BaseException as exc:  # noqa: BLE001 - every failure is reported, classified by the doctor
        code = 1
        try:
            emit(
                "error",
                phase=_phase,
                type=type(exc).__name__,
                message=str(exc)[-4000:],
                traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-6000:],
            )
        except BaseException:  # noqa: BLE001 - out of memory while reporting: say the least possible
            os.write(_PROTO, (MARKER + '{"event": "error", "type": "MemoryError", "message": ""}\n').encode())
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
