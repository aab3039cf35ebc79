"""One agent step over the OpenAI API, as the phone-agent client sends it, with a hard deadline.

The request is the client's (``phone_agent/model/client.py`` + ``MessageBuilder``): a system
message, a user message whose content is the screenshot as an ``image_url`` data URL followed
by the task and the screen info, ``stream: true``, ``temperature 0``, ``max_tokens 3000``.

The answer is read as server-sent events with ``http.client``, through the proxy the environment
names (HTTP_PROXY/HTTPS_PROXY, NO_PROXY), as the client's OpenAI SDK and the doctor's GET do.
The deadline covers the whole exchange: a watchdog shuts the socket down when it passes, so a
server that accepts the connection and then says nothing (or trickles bytes) is cut off at the
timeout, not at the socket's per-read timeout times the number of reads.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import ParseResult, unquote, urlparse

from autoglm_doctor.phone import openai_shapes
from autoglm_doctor.phone.actions import REPLY_MAX_CHARS
from autoglm_doctor.phone.openai_shapes import MESSAGE_CHARS
from autoglm_doctor.phone.prompt import TASK
from autoglm_doctor.phone.screenshot import data_url
from autoglm_doctor.safeio import loads_json

STREAM_LINE_MAX_BYTES = 1 << 20
"""Longest event line read (a server sending one endless line must not fill the memory)."""
STREAM_MAX_BYTES = 64 << 20
"""Most of an event stream read: an agent's step is a few KiB."""
CLIENT_MAX_TOKENS = 3000
"""The client's max_tokens (ModelConfig.max_tokens)."""


@dataclass(frozen=True, slots=True)
class StepExchange:
    """What one streamed chat completion gave back."""

    status: int | None
    """HTTP status; None when no response came."""
    text: str = ""
    """The reply: every ``delta.content`` joined (what the client parses)."""
    reasoning: str = ""
    """``delta.reasoning_content`` joined (servers with a reasoning parser put <think> there)."""
    body: bytes = b""
    """The body of a non-200 answer (capped)."""
    failure: str = ""
    """refused, dns, timeout, network, ``stream`` for a broken event stream, ``too-long`` for a reply past
    REPLY_MAX_CHARS; empty when it worked."""
    detail: str = ""
    """The underlying error, one line."""
    ttft_s: float | None = None
    """Seconds from sending to the first content token."""
    total_s: float = 0.0
    """Seconds from sending to the end of the stream."""
    chunks: int = 0
    """Events received."""
    finish_reason: str = ""
    """The last ``finish_reason`` the stream named."""
    streamed: bool = True
    """False when the server answered with one JSON body despite ``stream: true``."""
    answered: int | None = None
    """The HTTP status whose headers arrived before a failure: the server answered, its reply did not finish."""


def agent_messages(system_prompt: str, image: bytes, task: str = TASK) -> list[dict[str, Any]]:
    """The first step's messages, built as the client's MessageBuilder builds them."""
    screen_info = json.dumps({"current_app": "System Home"}, ensure_ascii=False)
    return [
        {"role": "system", "content": system_prompt},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": data_url(image)}},
                {"type": "text", "text": f"{task}\n\n{screen_info}"},
            ],
        },
    ]


def agent_payload(model: str, system_prompt: str, image: bytes, max_tokens: int = CLIENT_MAX_TOKENS) -> dict[str, Any]:
    """The chat-completion body of one agent step."""
    return {
        "model": model,
        "messages": agent_messages(system_prompt, image),
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": True,
    }


def error_message(body: bytes) -> str:
    """The server's own error text from an error body (:func:`openai_shapes.error_body`), else its first words."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        found = openai_shapes.error_body(loads_json(text))
    except ValueError:  # not JSON, nested too deeply, a number too long to read
        found = None
    return found.message if found is not None else " ".join(text[: 4 * MESSAGE_CHARS].split())[:MESSAGE_CHARS]


def proxy_for(url: str) -> ParseResult | None:
    """The proxy the environment names for ``url`` (HTTP_PROXY/HTTPS_PROXY, NO_PROXY honoured), as urllib finds it."""
    import urllib.request

    parsed = urlparse(url)
    proxy = urllib.request.getproxies().get(parsed.scheme)
    if not proxy or urllib.request.proxy_bypass(parsed.hostname or ""):
        return None
    return urlparse(proxy if "://" in proxy else f"http://{proxy}")


def _too_long(size: int) -> str:
    return f"the reply ran past {REPLY_MAX_CHARS:,} characters ({size:,} so far)"


def _failure_kind(exc: BaseException) -> str:
    import http.client

    if isinstance(exc, (ConnectionResetError, BrokenPipeError, http.client.IncompleteRead)):
        return "reset"  # the server hung up mid-request (RemoteDisconnected is a ConnectionResetError)
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, socket.gaierror):
        return "dns"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "network"


def stream_chat(url: str, payload: dict[str, Any], *, timeout: float, token: str | None = None) -> StepExchange:
    """POST ``payload`` to ``url`` and read the event stream; never raises, never runs past ``timeout``."""
    import http.client

    from autoglm_doctor import httpclient  # urllib.request pulls in ssl and email: only when an endpoint is asked

    url, basic = httpclient.split_userinfo(url)
    parsed = urlparse(url)
    secure = parsed.scheme == "https"
    connection_class = http.client.HTTPSConnection if secure else http.client.HTTPConnection
    path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
        "User-Agent": "autoglm-doctor",
    }
    proxy = proxy_for(url)
    tunnel: tuple[str, int, dict[str, str]] | None = None
    if proxy is None:
        host, port = parsed.hostname or "localhost", parsed.port
    else:  # as the client's OpenAI SDK (httpx) does: HTTP(S)_PROXY unless NO_PROXY names the host
        host, port = proxy.hostname or "localhost", proxy.port or 8080
        if proxy.username:
            credentials = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}".encode()
            headers["Proxy-Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
        if secure:
            tunnel = (parsed.hostname or "localhost", parsed.port or 443, headers.copy())
            headers.pop("Proxy-Authorization", None)
        else:
            path = url  # a plain-HTTP proxy takes the absolute URL
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if basic:  # as httpx does: the URL's own credentials replace the bearer token
        headers["Authorization"] = basic
    started = time.monotonic()
    # one deadline for the whole exchange, whatever the framing: the watchdog holds every socket of the
    # connection (http.client drops conn.sock for a response without length) and shuts it down in time
    watchdog = httpclient.Watchdog(timeout)
    conn = httpclient.watched_connection(connection_class, watchdog)(host, port, timeout=timeout)
    if tunnel is not None:
        conn.set_tunnel(*tunnel)
    text: list[str] = []
    size = 0
    received = 0
    reasoning: list[str] = []
    ttft: float | None = None
    chunks = 0
    finish = ""
    answered: int | None = None  # the status line and headers arrived: a later timeout cut a reply short

    def took() -> float:
        return time.monotonic() - started

    def timed_out(detail: str) -> StepExchange:
        return StepExchange(
            answered=answered,
            status=200 if chunks else None,
            text="".join(text),
            reasoning="".join(reasoning),
            failure="timeout",
            detail=detail,
            ttft_s=ttft,
            total_s=took(),
            chunks=chunks,
        )

    def broken(detail: str, failure: str = "stream") -> StepExchange:
        return StepExchange(
            status=200,
            text="".join(text)[:4096],
            failure=failure,
            detail=detail,
            ttft_s=ttft,
            total_s=took(),
            chunks=chunks,
        )

    try:
        try:
            conn.request("POST", path or "/", body=json.dumps(payload).encode("utf-8"), headers=headers)
            response = conn.getresponse()
            answered = response.status
        except (OSError, http.client.HTTPException) as exc:
            if watchdog.expired:
                return timed_out(f"no answer within {timeout:g} s")
            return StepExchange(
                status=None, failure=_failure_kind(exc), detail=str(exc) or type(exc).__name__, total_s=took()
            )
        if response.status != 200:
            try:
                body = response.read(1 << 16)
            except (OSError, http.client.HTTPException):
                body = b""
            return StepExchange(status=response.status, body=body, detail=response.reason, total_s=took())
        if "text/event-stream" not in (response.getheader("Content-Type") or ""):
            try:
                raw = response.read(1 << 20)
            except (OSError, http.client.HTTPException, ValueError):
                raw = b""
            if watchdog.expired:
                return timed_out(f"no complete answer within {timeout:g} s")
            try:
                answer = openai_shapes.completion(loads_json(raw))
            except openai_shapes.NotOpenAIShape as exc:
                return broken(f"not an event stream, and {exc}")
            except ValueError:  # not JSON, nested too deeply, a number too long to read
                shown = openai_shapes.quote(raw[:200].decode("utf-8", "replace"))
                return broken(f"not an event stream, nor a JSON completion: {shown}")
            if len(answer.content) > REPLY_MAX_CHARS:
                return broken(_too_long(len(answer.content)), "too-long")
            return StepExchange(status=200, text=answer.content, ttft_s=took(), total_s=took(), streamed=False)
        while True:
            try:
                line = response.readline(STREAM_LINE_MAX_BYTES)  # a line without end cannot fill the memory
                received += len(line)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                if watchdog.expired:
                    return timed_out(f"the stream stalled; cut off at {timeout:g} s")
                return StepExchange(
                    status=200,
                    text="".join(text),
                    failure=_failure_kind(exc),
                    detail=str(exc) or type(exc).__name__,
                    ttft_s=ttft,
                    total_s=took(),
                )
            if watchdog.expired:
                return timed_out(f"the stream was still running at {timeout:g} s")
            if received > STREAM_MAX_BYTES or len(line) >= STREAM_LINE_MAX_BYTES:
                return broken(
                    f"an event line over {STREAM_LINE_MAX_BYTES >> 20} MiB or a stream over "
                    f"{STREAM_MAX_BYTES >> 20} MiB: not an agent's step"
                )
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            data_text = line[5:].strip()
            if data_text == b"[DONE]":
                break
            try:
                event = openai_shapes.stream_chunk(loads_json(data_text))
            except openai_shapes.NotOpenAIShape as exc:
                return broken(str(exc))
            except ValueError:  # not JSON, nested too deeply, a number too long to read
                return broken(f"not JSON: {openai_shapes.quote(data_text[:200].decode('utf-8', 'replace'))}")
            chunks += 1
            if event.error is not None:
                return broken(event.error.message)
            for delta in event.deltas:
                if (delta.content or delta.reasoning) and ttft is None:
                    ttft = took()
                if delta.content:
                    text.append(delta.content)
                    size += len(delta.content)
                if delta.reasoning:
                    reasoning.append(delta.reasoning)
                    size += len(delta.reasoning)
                if delta.finish_reason:
                    finish = delta.finish_reason
            if size > REPLY_MAX_CHARS:
                return broken(_too_long(size), "too-long")
        return StepExchange(
            status=200,
            text="".join(text),
            reasoning="".join(reasoning),
            ttft_s=ttft,
            total_s=took(),
            chunks=chunks,
            finish_reason=finish,
        )
    finally:
        watchdog.cancel()
        conn.close()
