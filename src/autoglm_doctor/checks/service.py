"""service.*: a served OpenAI-compatible endpoint and its auth (smoke/service area).

For the served deployment (vLLM/SGLang + the phone agent) the equivalent of the smoke test
is asking the running endpoint. These checks talk to it over HTTP (stdlib urllib, every
request with a timeout); they are live checks and skip when evaluating a saved snapshot.

Where the endpoint comes from: ``--endpoint URL``, else ``PHONE_AGENT_BASE_URL`` in the
snapshot's environment. The model name the client sends: ``PHONE_AGENT_MODEL``, else the
pack's ``service.model``. The API key (``PHONE_AGENT_API_KEY``) is redacted in the snapshot,
so when the snapshot says it is set its value is read from the live environment; it is
sent, never reported.

Pack keys read (``service:`` section, all optional): ``model``, ``timeout`` (seconds,
default 30), ``prompt``, ``action_pattern`` (a regex the reply must match),
``require_token`` (bool), ``max_tokens`` (default 64).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from autoglm_doctor.context import CheckContext, config_value
from autoglm_doctor.model import Finding, Skip, error, info, warning
from autoglm_doctor.probe.snapshot import Snapshot
from autoglm_doctor.registry import check

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_PROMPT = "In one short sentence: what is the capital of France?"


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP exchange: the status and body, or why there was none."""

    status: int | None
    """HTTP status; None when no response came."""
    body: bytes = b""
    """Response body (capped)."""
    failure: str = ""
    """Stable failure kind: refused, dns, timeout, network."""
    detail: str = ""
    """The underlying error, one line."""
    seconds: float = 0.0
    """Wall time of the exchange."""

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None


def _section(ctx: CheckContext) -> dict[str, Any]:
    section = ctx.pack.sections.get("service")
    return section if isinstance(section, dict) else {}


def base_url(snap: Snapshot, ctx: CheckContext) -> str | None:
    """The endpoint to ask: ``--endpoint`` over PHONE_AGENT_BASE_URL; None when neither is given."""
    url = ctx.options.endpoint or snap.env.get("PHONE_AGENT_BASE_URL")
    return url.rstrip("/") if url else None


def _api_key(snap: Snapshot) -> str | None:
    if "PHONE_AGENT_API_KEY" not in snap.env:
        return None
    return os.environ.get("PHONE_AGENT_API_KEY") or None


def _timeout(ctx: CheckContext) -> float:
    value = _section(ctx).get("timeout", DEFAULT_TIMEOUT_S)
    try:
        return float(value)
    except (TypeError, ValueError):
        return DEFAULT_TIMEOUT_S


def request(url: str, *, timeout: float, payload: Any = None, token: str | None = None) -> Answer:
    """One GET (or POST with a JSON payload) with a timeout; never raises for network trouble."""
    import urllib.error  # urllib.request pulls in http, ssl and email: only when an endpoint is asked
    import urllib.request

    data = None if payload is None else json.dumps(payload).encode("utf-8")
    headers = {"Accept": "application/json", "User-Agent": "autoglm-doctor"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")  # noqa: S310
    started = time.monotonic()

    def took() -> float:
        return time.monotonic() - started

    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the user's own endpoint
            return Answer(status=resp.status, body=resp.read(1 << 20), seconds=took())
    except urllib.error.HTTPError as exc:
        return Answer(
            status=exc.code, body=exc.read(1 << 16) if exc.fp else b"", detail=str(exc.reason), seconds=took()
        )
    except urllib.error.URLError as exc:
        return _network_failure(exc.reason, took())
    except TimeoutError as exc:
        return Answer(status=None, failure="timeout", detail=str(exc) or "timed out", seconds=took())
    except (OSError, ValueError) as exc:
        return _network_failure(exc, took())


def _network_failure(reason: object, seconds: float) -> Answer:
    import socket

    if isinstance(reason, ConnectionRefusedError):
        return Answer(status=None, failure="refused", detail=str(reason), seconds=seconds)
    if isinstance(reason, socket.gaierror):
        return Answer(status=None, failure="dns", detail=str(reason), seconds=seconds)
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return Answer(status=None, failure="timeout", detail=str(reason) or "timed out", seconds=seconds)
    return Answer(status=None, failure="network", detail=str(reason), seconds=seconds)


def _host(url: str) -> str:
    return urlparse(url).netloc or url


def explain_failure(answer: Answer, url: str, timeout: float, what: str, base: str = "") -> Finding:
    """A finding for an exchange with ``url`` (under the endpoint ``base``) that got no usable answer."""
    host = _host(url)
    if answer.failure == "refused":
        return error(
            "service.connection-refused",
            f"nothing is listening at {host}: {what} was refused",
            fix=f"start the model server (e.g. `vllm serve MODEL --port {urlparse(url).port or 8000}`) "
            "or correct PHONE_AGENT_BASE_URL / --endpoint",
            observed=answer.detail,
        )
    if answer.failure == "dns":
        return error(
            "service.dns-failure",
            f"the host name in {url} does not resolve",
            fix="correct the host in PHONE_AGENT_BASE_URL / --endpoint (or add it to DNS / /etc/hosts)",
            observed=answer.detail,
        )
    if answer.failure == "timeout":
        return error(
            "service.timeout",
            f"{what} to {host} got no answer within {timeout:g} s",
            fix="the server is overloaded, still loading the model, or a firewall drops packets: check its log; "
            "raise service.timeout in the pack if it is merely slow",
            observed=f"no answer after {timeout:g} s",
            expected=f"an answer within {timeout:g} s",
        )
    if answer.status in (401, 403):
        return error(
            "service.unauthorized",
            f"{what} was refused with HTTP {answer.status}: the endpoint wants a token the client does not send",
            fix="export PHONE_AGENT_API_KEY=<the server's --api-key value>",
            observed=f"HTTP {answer.status}",
        )
    if answer.status == 404 and base and not base.endswith("/v1"):
        return error(
            "service.http-error",
            f"{what} got HTTP 404 from {url}: the base URL is probably missing its /v1",
            fix=f"use the OpenAI base URL, e.g. export PHONE_AGENT_BASE_URL={base}/v1",
            observed="HTTP 404",
            expected="HTTP 200",
        )
    if answer.status is not None:
        body = answer.body.decode("utf-8", errors="replace").strip().splitlines()
        return error(
            "service.http-error",
            f"{what} got HTTP {answer.status} from {host}" + (f": {body[0][:200]}" if body else ""),
            fix="read the model server's log for this request; 5xx means the server failed while answering",
            observed=f"HTTP {answer.status}",
            expected="HTTP 200",
        )
    return error(
        "service.network-error",
        f"{what} to {host} failed: {answer.detail}",
        fix="check the URL, proxies (HTTP_PROXY/NO_PROXY) and the network path to the server",
        observed=answer.detail,
    )


def judge_reply(text: str, action_pattern: str | None) -> tuple[str, str] | None:
    """(code, why) when a reply is not a sound answer; None when it is.

    Garbled: replacement or control characters, little that is a letter, or one word said
    over and over. One word is not an answer. With an action format, the reply must match it.
    """
    stripped = text.strip()
    if not stripped:
        return "service.empty-reply", "the reply is empty"
    visible = [ch for ch in stripped if not ch.isspace()]
    odd = sum(1 for ch in visible if ch == "\ufffd" or (not ch.isprintable()))
    letters = sum(1 for ch in visible if ch.isalpha())
    words = stripped.split()
    cjk = sum(1 for ch in visible if "\u3040" <= ch <= "\u9fff")
    if odd / len(visible) > 0.05 or letters / len(visible) < 0.5:
        return "service.garbled-reply", "the reply is mostly not text (stray bytes, symbols or control characters)"
    if len(words) >= 6 and max(words.count(w) for w in set(words)) / len(words) > 0.5:
        return "service.garbled-reply", "the reply repeats one word over and over"
    if len(words) < 2 and cjk < 4:
        return "service.one-word-reply", "the reply is a single word, not an answer"
    if action_pattern and not re.search(action_pattern, stripped, re.DOTALL):
        return "service.not-an-action", "the reply does not parse as an agent action"
    return None


def _reply_text(data: Any) -> str | None:
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else ("" if content is None else str(content))


def _model_name(snap: Snapshot, ctx: CheckContext) -> str | None:
    name = snap.env.get("PHONE_AGENT_MODEL") or _section(ctx).get("model")
    return str(name) if name else None


def _chat_payload(model: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }


@check(
    "service.endpoint",
    title="Served endpoint answers soundly",
    needs=("live",),
    why="The phone agent fails on its first step when the server is down, serves another model name, or "
    "answers with garbage; a one-line request settles it before a device is touched.",
    fix="Start the server, export PHONE_AGENT_BASE_URL/PHONE_AGENT_MODEL to what it serves, and fix what makes "
    "it answer badly (wrong chat template, wrong weights, dtype overflow).",
)
def endpoint(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """GET /models lists the model name the client sends; one short chat completion answers soundly in time."""
    url = base_url(snap, ctx)
    if url is None:
        raise Skip("no endpoint (pass --endpoint URL or export PHONE_AGENT_BASE_URL)")
    timeout = _timeout(ctx)
    token = _api_key(snap)
    section = _section(ctx)
    models_url = f"{url}/models"
    answer = request(models_url, timeout=timeout, token=token)
    if answer.status != 200:
        yield explain_failure(answer, models_url, timeout, "GET /models", url)
        return
    listing = answer.json()
    served = (
        [str(m.get("id")) for m in listing.get("data", []) if isinstance(m, dict)] if isinstance(listing, dict) else []
    )
    wanted = _model_name(snap, ctx)
    if not served:
        yield error(
            "service.no-models",
            f"GET {models_url} answered but lists no model",
            fix="point PHONE_AGENT_BASE_URL at the OpenAI-compatible API of the model server (its /v1)",
            observed=answer.body[:200].decode("utf-8", errors="replace"),
        )
        return
    if wanted is None:
        wanted = served[0]
        yield warning(
            "service.model-unset",
            f"PHONE_AGENT_MODEL is not set; the server serves {', '.join(served)}",
            fix=f"export PHONE_AGENT_MODEL={served[0]}",
        )
    elif wanted not in served:
        yield error(
            "service.model-not-served",
            f"the client sends model name {wanted!r} but the server serves {', '.join(map(repr, served))}",
            fix=f"export PHONE_AGENT_MODEL={served[0]}  (or restart the server with --served-model-name {wanted})",
            observed=", ".join(served),
            expected=wanted,
        )
        return
    prompt = str(section.get("prompt") or DEFAULT_PROMPT)
    max_tokens = int(section.get("max_tokens") or 64)
    chat_url = f"{url}/chat/completions"
    answer = request(chat_url, timeout=timeout, payload=_chat_payload(wanted, prompt, max_tokens), token=token)
    if answer.status != 200:
        yield explain_failure(answer, chat_url, timeout, "a chat completion", url)
        return
    text = _reply_text(answer.json())
    if text is None:
        yield error(
            "service.bad-reply",
            "the chat completion is not in the OpenAI shape (choices[0].message.content)",
            fix="point PHONE_AGENT_BASE_URL at an OpenAI-compatible server (vLLM/SGLang with their /v1 API)",
            observed=answer.body[:200].decode("utf-8", errors="replace"),
        )
        return
    pattern = section.get("action_pattern")
    verdict = judge_reply(text, str(pattern) if pattern else None)
    if verdict is not None:
        code, why = verdict
        yield error(
            code,
            f"{why} (model {wanted!r}, {len(text.strip())} characters)",
            fix="a served model that answers like this has a broken deployment: check the chat template "
            "(--chat-template), the weights (re-download), the dtype (float16 overflow: use bfloat16) and "
            "max_model_len",
            observed=f"{len(text.split())} word(s), {len(text.strip())} characters",
            expected="a sentence" + (" that parses as an action" if pattern else ""),
        )
        return
    yield info("service.answered", f"{wanted} answered a chat completion soundly in {answer.seconds:.2f} s")
    if ctx.options.endpoint_concurrency > 0:
        yield from _concurrency(chat_url, wanted, token, timeout, ctx.options.endpoint_concurrency)


def _concurrency(url: str, model: str, token: str | None, timeout: float, count: int) -> Iterator[Finding]:
    import statistics
    from concurrent.futures import ThreadPoolExecutor

    payload = _chat_payload(model, "Say hello.", 8)
    with ThreadPoolExecutor(max_workers=min(count, 64)) as pool:
        answers = list(pool.map(lambda _: request(url, timeout=timeout, payload=payload, token=token), range(count)))
    latencies = sorted(a.seconds for a in answers if a.status == 200)
    failed = [a for a in answers if a.status != 200]
    if latencies:
        p50 = statistics.median(latencies)
        p95 = latencies[min(len(latencies) - 1, max(0, round(0.95 * len(latencies)) - 1))]
        yield info(
            "service.concurrency",
            f"{count} concurrent requests: {len(latencies)} answered, p50 {p50:.2f} s, p95 {p95:.2f} s",
            observed=f"p50 {p50:.3f} s, p95 {p95:.3f} s",
        )
    if failed:
        kinds = sorted({a.failure or f"HTTP {a.status}" for a in failed})
        yield error(
            "service.concurrency-errors",
            f"{len(failed)} of {count} concurrent requests failed ({', '.join(kinds)})",
            fix="the server breaks under concurrency: lower --max-num-seqs / raise --gpu-memory-utilization, or "
            "limit the agents sharing it",
            observed=f"{len(failed)}/{count} failed",
            expected="0 failed",
        )


def _auth_required(snap: Snapshot, ctx: CheckContext) -> bool:
    return config_value(snap, "auth.require_token") is True or _section(ctx).get("require_token") is True


@check(
    "service.auth",
    title="Endpoint requires its token",
    why="A service meant to require a bearer token but answering without one is open to anyone who can reach the port.",
    fix="Start the server with its token check switched on (vLLM/SGLang: --api-key).",
    needs=("live",),
)
def auth(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """When the config or the pack requires a bearer token, a request without one is refused (401/403).

    The signing secret itself (auth.secret_key) is judged by config.values (config.weak-secret).
    """
    if not _auth_required(snap, ctx):
        raise Skip("neither the config (auth.require_token) nor the pack says the service requires a token")
    url = base_url(snap, ctx)
    if url is None:
        raise Skip("no endpoint to ask (pass --endpoint URL or export PHONE_AGENT_BASE_URL)")
    timeout = _timeout(ctx)
    models_url = f"{url}/models"
    answer = request(models_url, timeout=timeout)
    if answer.status in (401, 403):
        yield info("service.auth-enforced", f"a request without a token was refused with HTTP {answer.status}")
    elif answer.status is not None and 200 <= answer.status < 300:
        yield error(
            "service.auth-not-enforced",
            f"the service should require a bearer token, but GET {models_url} without one answered "
            f"HTTP {answer.status}",
            fix="restart the server with its token check on (vLLM/SGLang: --api-key $PHONE_AGENT_API_KEY; "
            "in-process: enable auth.require_token in the app's middleware)",
            observed=f"HTTP {answer.status} without a token",
            expected="HTTP 401 or 403",
        )
    elif answer.status is None:
        yield explain_failure(answer, models_url, timeout, "GET /models without a token")
    else:
        yield warning(
            "service.auth-unclear",
            f"a request without a token got HTTP {answer.status}, neither a refusal (401/403) nor an answer",
            fix="check the server's log for this request",
            observed=f"HTTP {answer.status}",
            expected="HTTP 401 or 403",
        )
