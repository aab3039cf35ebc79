"""What the doctor sends the smoke script and what it reads back.

The script is started as ``python -c SOURCE REQUEST_JSON``. It answers on its stdout with
lines ``MARKER + JSON``; each JSON object has an ``event``: ``hello``, ``versions``,
``phase`` (``import``, ``tokenizer``, ``weights`` with ``done``/``total``, ``generate``),
then exactly one ``result`` or ``error``. Lines without the marker are ordinary output (a
sitecustomize printing before the script starts) and are kept with stderr.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from autoglm_doctor.safeio import loads_json

MARKER = "@autoglm-doctor-smoke@ "
"""Prefix of every protocol line; must match ``_script.MARKER``."""

PROMPT = "The capital of France is"
"""The fixed prompt every smoke test generates from."""

VISION_PROMPT = "Open the Settings app. Answer with one action."
"""The instruction shown with the screenshot to a vision-language model."""


@dataclass(frozen=True, slots=True)
class SmokeRequest:
    """How to load the model: the config's options, resolved."""

    model_path: str
    """The model folder."""
    device: str | None = "cpu"
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (cuda:0 when torch sees a GPU); ignored with device_map."""
    device_map: Any = None
    """``device_map`` for from_pretrained (needs accelerate); None: load, then move to ``device``."""
    dtype: str | None = None
    """``auto``, ``float32``, ``float16``, ``bfloat16`` or None (transformers' default)."""
    attn_implementation: str | None = None
    """``eager``, ``sdpa``, ``flash_attention_2`` or None."""
    trust_remote_code: bool = False
    """Run model code from the model folder (only with ``--allow-remote-code``)."""
    prompt: str = PROMPT
    """The prompt to continue."""
    max_new_tokens: int = 8
    """Tokens to generate greedily."""
    auto_class: str = "AutoModelForCausalLM"
    """The transformers Auto class the deployment loads the model with."""
    vision: bool = False
    """A vision-language model: AutoProcessor, an image in the chat template, the image-text-to-text class."""
    image_size: tuple[int, int] = (1080, 2400)
    """Width and height of the synthetic screenshot a vision-language model is shown."""

    def to_json(self) -> str:
        """The request as the script's argument."""
        return json.dumps(asdict(self))


@dataclass(frozen=True, slots=True)
class SmokeResult:
    """What a successful run measured."""

    load_s: float
    """Seconds from_pretrained (and the move to the device) took."""
    ttft_s: float
    """Seconds from calling generate to the first new token."""
    tokens: int
    """New tokens generated."""
    tokens_per_s: float | None
    """Decode speed after the first token (None with fewer than two tokens)."""
    device: str
    """Device of the first parameter, e.g. ``cpu`` or ``cuda:0``."""
    devices: list[str]
    """Every device holding parameters."""
    dtype: str
    """dtype of the first parameter."""
    logits_finite: bool
    """No NaN or inf in any step's logits."""
    text_chars: int
    """Length of the decoded new text, stripped."""
    text_preview: str = ""
    """The first characters of the decoded text."""
    peak_rss_bytes: int | None = None
    """Peak resident memory of the script (the host side)."""
    cuda_peak_bytes: dict[str, int] = field(default_factory=dict)
    """torch.cuda.max_memory_allocated per CUDA device."""
    vision: bool = False
    """The run was a vision-language one (processor, image, chat template)."""
    pixel_values_sent: list[int] | None = None
    """Shape of the pixel values the processor made from the screenshot (None: it made none)."""
    pixel_values_reached: list[int] | None = None
    """Shape of the pixel values the model's forward received (None: they never reached it)."""

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> SmokeResult:
        """Build from the script's ``result`` line (unknown keys ignored)."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in event.items() if k in known})


@dataclass(frozen=True, slots=True)
class SmokeRun:
    """Everything one run of the script left behind."""

    events: list[dict[str, Any]]
    """Every protocol line, in order."""
    returncode: int | None
    """Exit status (negative: killed by that signal; None: it was killed for running over)."""
    timed_out: bool
    """The deadline passed and the process group was killed."""
    elapsed_s: float
    """Wall time from start to exit."""
    output: str
    """The tail of everything else it printed (stderr, and stdout before the script ran)."""
    interpreter: str
    """The interpreter that ran it."""
    start_error: str = ""
    """Why the interpreter could not be started at all."""

    @property
    def result(self) -> SmokeResult | None:
        """The measured result, when the run got that far."""
        for event in reversed(self.events):
            if event.get("event") == "result":
                try:
                    return SmokeResult.from_event(event)
                except TypeError:
                    return None
        return None

    @property
    def error(self) -> dict[str, Any] | None:
        """The script's ``error`` event, when it caught the failure itself."""
        return next((e for e in reversed(self.events) if e.get("event") == "error"), None)

    @property
    def last_phase(self) -> str:
        """The last phase the script announced, with k/N for weights (``start`` if none)."""
        for event in reversed(self.events):
            if event.get("event") == "phase":
                return describe_phase(event)
        return "start"

    @property
    def versions(self) -> dict[str, str]:
        """The versions of torch and transformers the script saw."""
        for event in self.events:
            if event.get("event") == "versions":
                return {k: str(v) for k, v in event.items() if k in ("torch", "transformers")}
        return {}


def describe_phase(event: dict[str, Any]) -> str:
    """``import torch``, ``tokenizer``, ``weights 2/4``, ``generate``."""
    name = str(event.get("phase", "?"))
    if name == "import" and event.get("module"):
        return f"import {event['module']}"
    if name == "weights" and event.get("total"):
        return f"weights {event.get('done', 0)}/{event['total']}"
    return name


def parse_line(line: str) -> dict[str, Any] | None:
    """The event in a protocol line, or None for ordinary output."""
    if not line.startswith(MARKER):
        return None
    try:
        data = loads_json(line[len(MARKER) :])
    except ValueError:  # not JSON, nested too deeply, a number too long to read
        return None
    return data if isinstance(data, dict) else None
