"""The OpenAI response shapes the doctor reads, validated where the endpoint's JSON enters.

Four shapes, one validator each, each turning decoded JSON (from the guarded decoder,
:func:`autoglm_doctor.safeio.loads_json`) into a small frozen record or raising
:class:`NotOpenAIShape`, whose message says which part is wrong and quotes it bounded and
escaped (:func:`quote`):

- the model list of ``GET /v1/models`` (:func:`model_list`),
- a chat completion, for a server that answers ``stream: true`` with one JSON body (:func:`completion`),
- one event of a streamed completion (:func:`stream_chunk`),
- an error body, OpenAI's ``{"error": {"message": ...}}`` and the forms servers send besides (:func:`error_body`).

Only the fields the doctor uses are typed; others are ignored, as the client's SDK ignores them.
Extensions a server may add (vLLM's ``max_model_len``) are kept when well typed and dropped
otherwise: a server without them is still an OpenAI server.

Why not pydantic (the typed-validation library the ecosystem trusts, and what the client's
OpenAI SDK uses): measured with pydantic 2.14.4 on Python 3.11, importing it takes 41 to 68 ms
and importing it, declaring these shapes as ten models and validating one chunk 106 to 110 ms;
this module, imported with its validators and run once, takes about 4 ms (``python -X importtime``).
Every run imports the service checks, so pydantic would add a quarter of ``pip check``'s own
time (about 400 ms here) to a start-up budgeted at 1.0x ``pip check``, for a dozen fields.
Dataclasses with one validator per shape are the project's way for records; the validators
are plain functions over the decoded JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

QUOTE_CHARS = 120
"""The most of an offending value quoted in a message."""
MODELS_MAX = 1000
"""The most model cards read from one list (a real server serves a handful)."""
CONTEXT_MAX = 1 << 31
"""Largest ``max_model_len`` taken as a number of tokens (a larger one is dropped, not used)."""


class NotOpenAIShape(ValueError):
    """JSON from the endpoint that is not the OpenAI shape the doctor expected; the message says where."""


@dataclass(frozen=True, slots=True)
class ModelCard:
    """One entry of ``GET /v1/models``."""

    id: str
    """The model name a request must send."""
    max_model_len: int | None = None
    """vLLM's context length in tokens; None when the server does not say (or says it oddly)."""


@dataclass(frozen=True, slots=True)
class ModelList:
    """``GET /v1/models``: the models the server serves, in its order."""

    models: tuple[ModelCard, ...]
    """At most :data:`MODELS_MAX` cards."""

    @property
    def ids(self) -> list[str]:
        """The served model names."""
        return [card.id for card in self.models]

    def card(self, name: str) -> ModelCard | None:
        """The card of ``name``; None when it is not served."""
        return next((card for card in self.models if card.id == name), None)


@dataclass(frozen=True, slots=True)
class Completion:
    """A chat completion answered in one body: its first choice."""

    content: str
    """``choices[0].message.content`` (empty when null)."""
    finish_reason: str = ""
    """``choices[0].finish_reason`` (empty when null)."""


@dataclass(frozen=True, slots=True)
class Delta:
    """One choice of a streamed event."""

    content: str = ""
    """``delta.content`` (empty when null or absent)."""
    reasoning: str = ""
    """``delta.reasoning_content`` or ``delta.reasoning`` (servers with a reasoning parser)."""
    finish_reason: str = ""
    """``finish_reason`` (empty when null)."""


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """What a server said went wrong."""

    message: str
    """The server's own words, at most :data:`MESSAGE_CHARS` characters."""


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """One ``data:`` event of a streamed chat completion."""

    deltas: tuple[Delta, ...] = ()
    """Its choices (empty in a usage-only event)."""
    error: ErrorBody | None = None
    """Set when the server reported an error inside the stream."""


MESSAGE_CHARS = 500
"""The most of a server's error message kept."""


def quote(value: Any, limit: int = QUOTE_CHARS) -> str:
    r"""``value`` as JSON text, at most ``limit`` characters, non-ASCII and control characters as escapes.

    Linear in ``limit``, not in the value: a container is encoded lazily and cut off.
    """
    pieces: list[str] = []
    size = 0
    try:
        for piece in json.JSONEncoder(ensure_ascii=True).iterencode(value):
            pieces.append(piece)
            size += len(piece)
            if size > limit:
                break
    except (TypeError, ValueError):  # not JSON-encodable (a float('nan') is encoded; only odd types land here)
        return repr(type(value).__name__)
    text = "".join(pieces)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _wrong(what: str, where: str, value: Any, expected: str) -> NotOpenAIShape:
    return NotOpenAIShape(f"not the OpenAI shape of {what}: {where} is {_kind(value)} ({quote(value)}), not {expected}")


def _optional_text(value: Any, what: str, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _wrong(what, where, value, "a string or null")
    return value


def model_list(data: Any) -> ModelList:
    """``GET /v1/models``' body: an object whose ``data`` lists objects with a string ``id``."""
    what = "a model list"
    if not isinstance(data, dict):
        raise _wrong(what, "the body", data, 'an object {"data": [...]}')
    items = data.get("data")
    if not isinstance(items, list):
        raise _wrong(what, '"data"', items, "a list of models")
    cards = []
    for index, item in enumerate(items[:MODELS_MAX]):
        if not isinstance(item, dict):
            raise _wrong(what, f"data[{index}]", item, 'an object {"id": ...}')
        name = item.get("id")
        if not isinstance(name, str) or not name:
            raise _wrong(what, f"data[{index}].id", name, "a model name")
        limit = item.get("max_model_len")
        usable = isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < CONTEXT_MAX
        cards.append(ModelCard(id=name, max_model_len=limit if usable else None))
    return ModelList(models=tuple(cards))


def completion(data: Any) -> Completion:
    """A chat completion's body: ``choices[0].message.content`` a string or null."""
    what = "a chat completion"
    if not isinstance(data, dict):
        raise _wrong(what, "the body", data, 'an object {"choices": [...]}')
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _wrong(what, '"choices"', choices, "a list of at least one choice")
    first = choices[0]
    if not isinstance(first, dict):
        raise _wrong(what, "choices[0]", first, 'an object {"message": ...}')
    message = first.get("message")
    if not isinstance(message, dict):
        raise _wrong(what, "choices[0].message", message, 'an object {"content": ...}')
    return Completion(
        content=_optional_text(message.get("content"), what, "choices[0].message.content"),
        finish_reason=_optional_text(first.get("finish_reason"), what, "choices[0].finish_reason"),
    )


def stream_chunk(data: Any) -> StreamChunk:
    """One streamed event: ``choices`` a list of objects whose ``delta`` holds string-or-null texts.

    An event carrying an error (``{"error": ...}``, or vLLM's ``{"object": "error", "message": ...}``)
    is returned with :attr:`StreamChunk.error` set.
    """
    what = "a stream chunk"
    if not isinstance(data, dict):
        raise _wrong(what, "the event", data, 'an object {"choices": [...]}')
    problem = error_body(data) if data.get("error") or data.get("object") == "error" else None
    if problem is not None:
        return StreamChunk(error=problem)
    choices = data.get("choices", [])
    if choices is None:
        choices = []
    if not isinstance(choices, list):
        raise _wrong(what, '"choices"', choices, "a list")
    deltas = []
    for index, choice in enumerate(choices):
        where = f"choices[{index}]"
        if not isinstance(choice, dict):
            raise _wrong(what, where, choice, 'an object {"delta": ...}')
        delta = choice.get("delta")
        if delta is None:
            delta = {}
        if not isinstance(delta, dict):
            raise _wrong(what, f"{where}.delta", delta, 'an object {"content": ...}')
        reasoning_key = "reasoning_content" if delta.get("reasoning_content") is not None else "reasoning"
        deltas.append(
            Delta(
                content=_optional_text(delta.get("content"), what, f"{where}.delta.content"),
                reasoning=_optional_text(delta.get(reasoning_key), what, f"{where}.delta.{reasoning_key}"),
                finish_reason=_optional_text(choice.get("finish_reason"), what, f"{where}.finish_reason"),
            )
        )
    return StreamChunk(deltas=tuple(deltas))


def error_body(data: Any) -> ErrorBody | None:
    """The message of an error body; None when ``data`` holds none.

    Read in the order servers use: OpenAI and vLLM ``{"error": {"message": ...}}``, older vLLM
    ``{"object": "error", "message": ...}``, FastAPI ``{"detail": ...}``, ``{"error": "..."}``.
    A message that is not a string is quoted as JSON, bounded.
    """
    if not isinstance(data, dict):
        return None
    inner = data.get("error")
    if isinstance(inner, dict) and inner.get("message"):
        return _message(inner["message"])
    for key in ("message", "detail", "error"):
        if data.get(key):
            return _message(data[key])
    return None


def _message(value: Any) -> ErrorBody:
    text = value[:MESSAGE_CHARS] if isinstance(value, str) else quote(value, MESSAGE_CHARS)
    return ErrorBody(message=text)
