"""service.*: a served OpenAI-compatible endpoint, its auth, and one agent step (smoke/service area).

For the served deployment (vLLM/SGLang + the phone agent) the equivalent of the smoke test
is asking the running endpoint the way the agent asks it. These checks talk to it over HTTP
(stdlib only, every exchange under a deadline); they are live checks and skip when evaluating
a saved snapshot.

Where the endpoint comes from: ``--endpoint URL``, else ``PHONE_AGENT_BASE_URL`` in the
snapshot's environment. The model name the client sends: ``PHONE_AGENT_MODEL``, else the
pack's ``service.model``. The API key (``PHONE_AGENT_API_KEY``) is redacted in the snapshot,
so when the snapshot says it is set its value is read from the live environment; it is
sent, never reported.

Pack keys read (``service:`` section, all optional): ``model``, ``timeout`` (seconds one
served check may take in all, default 12: service.endpoint + service.agent-step + service.auth
stay under 30 s), ``max_tokens`` (default 3000, the client's), ``step_budget`` (seconds a step
may take before it warns, default 10), ``action_required`` (a reply without an action is an
error, not a warning), ``require_token`` (bool).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shlex
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from autoglm_doctor.context import CheckContext, config_value
from autoglm_doctor.model import Finding, Skip, error, info, warning
from autoglm_doctor.probe.snapshot import Snapshot
from autoglm_doctor.registry import check
from autoglm_doctor.safeio import loads_json

if TYPE_CHECKING:
    from autoglm_doctor.phone.chat import StepExchange
    from autoglm_doctor.phone.openai_shapes import ModelCard

# The phone modules (the client's exchange, its prompt and screenshot, the reply's judge) are imported
# by the functions that talk to an endpoint: a run without one does not load them (11 ms of start-up).

AUTH_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP exchange: the status and body, or why there was none."""

    status: int | None
    """HTTP status; None when no response came."""
    body: bytes = b""
    """Response body (capped)."""
    failure: str = ""
    """Stable failure kind: refused, dns, timeout, network, reset."""
    token_sent: bool = False
    """The request carried a token (bearer or the URL's Basic credentials)."""
    detail: str = ""
    """The underlying error, one line."""
    seconds: float = 0.0
    """Wall time of the exchange."""
    answered: int | None = None
    """The HTTP status whose headers arrived before a timeout: the server answered, its reply did not finish."""

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return loads_json(self.body.decode("utf-8"))
        except ValueError:  # not UTF-8, not JSON, nested too deeply, a number too long to read
            return None


def base_url(snap: Snapshot, ctx: CheckContext) -> str | None:
    """The endpoint to ask: ``--endpoint`` over PHONE_AGENT_BASE_URL; None when neither is given.

    The snapshot stores the variable with a password in it masked: the live value is read when
    it is the one the snapshot masked (as the API key is).
    """
    from autoglm_doctor.redact import redact_url

    url = ctx.options.endpoint or snap.env.get("PHONE_AGENT_BASE_URL")
    live = os.environ.get("PHONE_AGENT_BASE_URL")
    if url and not ctx.options.endpoint and live and live != url and redact_url(live) == url:
        url = live
    if not url:
        url = client_default(ctx, "PHONE_AGENT_BASE_URL")
    return url.rstrip("/") if url else None


def client_default(ctx: CheckContext, variable: str) -> str:
    """The client's own default for an unset variable, as the pack's ``env:`` section states it; else empty."""
    env = ctx.pack.sections.get("env")
    spec = env.get(variable) if isinstance(env, dict) else None
    default = spec.get("default") if isinstance(spec, dict) else None
    return default if isinstance(default, str) else ""


def default_note(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """An info note when the endpoint asked is the client's default because PHONE_AGENT_BASE_URL is unset."""
    if ctx.options.endpoint or snap.env.get("PHONE_AGENT_BASE_URL"):
        return
    default = client_default(ctx, "PHONE_AGENT_BASE_URL")
    if default:
        yield info(
            "service.client-default",
            f"PHONE_AGENT_BASE_URL is not set: {default} is probed, the endpoint the client uses by default",
            fix="export PHONE_AGENT_BASE_URL=http://SERVER:8000/v1 (or pass --endpoint URL) to check another",
        )


CLIENT_API_KEY_DEFAULT = "EMPTY"
"""The key Open-AutoGLM's client sends when PHONE_AGENT_API_KEY is unset, when no checkout's main.py says
(main.py at 6b18d7b, line 422: ``default=os.getenv("PHONE_AGENT_API_KEY", "EMPTY")``; the OpenAI SDK sends it
as ``Authorization: Bearer EMPTY``)."""


@dataclass(frozen=True, slots=True)
class ClientToken:
    """The bearer token the client sends, and, when it is the client's default, where that default is stated."""

    value: str | None
    """The token; None when the client sends none."""
    default_note: str = ""
    """Non-empty when PHONE_AGENT_API_KEY is unset and ``value`` is the client's default: says so and where from."""


def client_token(snap: Snapshot) -> ClientToken:
    """What the client sends as its API key: PHONE_AGENT_API_KEY (live value), else the client's own default.

    The default is read from an Open-AutoGLM checkout's main.py as text where one is on the target's path or
    the working directory, else it is :data:`CLIENT_API_KEY_DEFAULT`.
    """
    from autoglm_doctor.knowledge.client_defects import client_checkouts, source_default

    if "PHONE_AGENT_API_KEY" in snap.env:
        return ClientToken(os.environ.get("PHONE_AGENT_API_KEY") or None)
    found = source_default(client_checkouts(snap.python.sys_path, snap.python.cwd), "PHONE_AGENT_API_KEY")
    value, where = (
        (found.value, f"{found.path}:{found.line}")
        if found is not None
        else (CLIENT_API_KEY_DEFAULT, "Open-AutoGLM main.py")
    )
    if not value:
        return ClientToken(None)
    return ClientToken(value, f"PHONE_AGENT_API_KEY is unset: the client sends its default {value!r} ({where})")


def _with_token_note(finding: Finding, token: ClientToken) -> Finding:
    """A token finding that says the token refused is the client's default, when it is."""
    if not token.default_note or finding.code != "service.token-refused":
        return finding
    return dataclasses.replace(finding, message=f"{finding.message} ({token.default_note})")


@dataclass(frozen=True, slots=True)
class Names:
    """The settings a served check's hints name, in the machine's role.

    On the client (the phone agent) they are its PHONE_AGENT_* variables; on the server the launch command's
    flags (--host/--port, --served-model-name, --api-key) in the file that holds it; on the in-process
    deployment its config's keys. The doctor asks the same endpoint in each role; what the user changes differs.
    """

    role: str
    """``client``, ``server`` or ``in-process``."""
    where: str = ""
    """The launch command or config file (its name) on the server and in-process roles."""
    listens: str = ""
    """The base URL the launch command or config says the service listens on; empty when it does not say."""
    served_name: str = ""
    """The launch command's --served-model-name; empty when it has none."""

    @property
    def endpoint(self) -> str:
        """What to correct when the endpoint URL is wrong."""
        if self.role == "client":
            return "PHONE_AGENT_BASE_URL / --endpoint"
        return f"--endpoint ({self.where} listens at {self.listens})" if self.listens else "--endpoint"

    def no_endpoint(self) -> str:
        """Why a served check has nothing to ask, and what to pass."""
        if self.role == "client":
            return "no endpoint (pass --endpoint URL or export PHONE_AGENT_BASE_URL)"
        if self.listens:
            service = "the server" if self.role == "server" else "the service"
            return f"no endpoint: pass --endpoint {self.listens} ({self.where}'s {self._address()}) once {service} runs"
        return "no endpoint: pass --endpoint URL (the server's OpenAI base URL, ending in /v1)"

    def _address(self) -> str:
        return "--host/--port" if self.role == "server" else "host/port"

    def start(self, port: int | None) -> str:
        """How to get something listening at the endpoint."""
        if self.role == "server" and self.where:
            return (
                f"start the server ({self.where}; it listens at {self.listens or 'its --port'}) or correct --endpoint"
            )
        if self.role == "in-process" and self.where:
            return f"start the service ({self.where}'s host/port: {self.listens or 'its port'}) or correct --endpoint"
        return f"start the model server (e.g. `vllm serve MODEL --port {port or 8000}`) or correct {self.endpoint}"

    def base_fix(self, base: str) -> str:
        """How to point the check at the OpenAI base URL ``base``."""
        if self.role == "client":
            return f"use the OpenAI base URL, e.g. export PHONE_AGENT_BASE_URL={base}"
        return f"use the OpenAI base URL: pass --endpoint {base}"

    @property
    def base_setting(self) -> str:
        """The setting that holds the base URL."""
        return "PHONE_AGENT_BASE_URL" if self.role == "client" else "--endpoint"

    def token_fix(self) -> str:
        """What makes the token sent the one the server checks."""
        if self.role == "server":
            flag = f"{self.where}'s --api-key" if self.where else "the server's --api-key"
            return (
                f"the server checks the token against {flag}: export PHONE_AGENT_API_KEY=<that value> before running "
                "the doctor, and give every client the same value"
            )
        if self.role == "in-process":
            return (
                f"send the token {self.where or 'the config'} expects (auth.require_token): export PHONE_AGENT_API_KEY"
            )
        return "export PHONE_AGENT_API_KEY=<the server's --api-key value>"

    def model_fix(self, served: str, wanted: str) -> str:
        """What makes the model name asked and the name served agree."""
        if self.role == "server":
            if self.served_name:
                return (
                    f"this endpoint is not the server {self.where} starts (--served-model-name {self.served_name}): "
                    f"pass --endpoint {self.listens or 'URL'} of that server, or restart it from {self.where}"
                )
            return f"restart the server with --served-model-name {wanted} (the name the phone agent sends)"
        return f"export PHONE_AGENT_MODEL={served}  (or restart the server with --served-model-name {wanted})"


def names(snap: Snapshot, ctx: CheckContext) -> Names:
    """The settings this run's hints name: the client's variables when the client is checked, else the server's."""
    from autoglm_doctor.configfile.launch import port_of, setting

    env = ctx.pack.sections.get("env")
    if isinstance(env, dict) and "PHONE_AGENT_BASE_URL" in env:  # the client is (one of) the roles checked
        return Names("client")
    config = snap.config
    if config is None or not config.exists:  # no file to name: the server's flags by their names, else the client's
        return Names("server" if "launch" in ctx.pack.sections else "client")
    where = Path(config.path).name
    if config.engine:
        port = port_of(config.data, config.engine)
        host = setting(config.data, config.engine, "host")
        served = setting(config.data, config.engine, "served-model-name")
        return Names(
            "server",
            where,
            _listens(host[1] if host else None, port, "/v1"),
            served[1] if served is not None and isinstance(served[1], str) else "",
        )
    port_value = config_value(snap, "port")
    port = port_value if isinstance(port_value, int) and not isinstance(port_value, bool) else None
    return Names("in-process", where, _listens(config_value(snap, "host"), port, ""))


def _listens(host: Any, port: int | None, path: str) -> str:
    """``http://HOST:PORT/v1`` a local client reaches; empty without a port."""
    if port is None or not 0 < port < 65536:
        return ""
    shown = host if isinstance(host, str) and host.strip() and host not in ("0.0.0.0", "::", "[::]") else "localhost"
    return f"http://{shown}:{port}{path}"


def _timeout(ctx: CheckContext) -> float:
    if ctx.options.endpoint_timeout is not None:  # --endpoint-timeout, read and bounded by the command line
        return ctx.options.endpoint_timeout
    return ctx.pack.settings.service.timeout  # typed and range-checked when the pack loaded


def request(url: str, *, timeout: float, payload: Any = None, token: str | None = None) -> Answer:
    """One GET (or POST with a JSON payload) with a timeout; never raises for network trouble."""
    import urllib.error  # urllib.request pulls in http, ssl and email: only when an endpoint is asked
    import urllib.request

    from autoglm_doctor import httpclient

    url, basic = httpclient.split_userinfo(url)
    data = None if payload is None else json.dumps(payload).encode("utf-8")
    headers = {"Accept": "application/json", "User-Agent": "autoglm-doctor"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if basic:  # as the client's OpenAI SDK (httpx) does: the URL's own credentials replace the bearer token
        headers["Authorization"] = basic
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")  # noqa: S310
    return dataclasses.replace(_exchange(req, timeout), token_sent="Authorization" in headers)


def _exchange(req: Any, timeout: float) -> Answer:
    """Send ``req`` (a ``urllib.request.Request``) under one deadline; the answer or why there was none."""
    import urllib.error

    from autoglm_doctor import httpclient

    started = time.monotonic()
    headers: int | None = None  # the status line and headers arrived: a later timeout cut the body short

    def took() -> float:
        return time.monotonic() - started

    try:
        # one total deadline, a bounded error body, no Authorization to another origin (httpclient); its
        # fresh opener reads HTTP(S)_PROXY/NO_PROXY now, as the streamed step does
        with httpclient.urlopen(req, timeout) as resp:
            headers = resp.status
            return Answer(status=resp.status, body=resp.read(1 << 20), seconds=took())
    except urllib.error.HTTPError as exc:
        return Answer(
            status=exc.code, body=exc.read(1 << 16) if exc.fp else b"", detail=str(exc.reason), seconds=took()
        )
    except urllib.error.URLError as exc:
        return _network_failure(exc.reason, took())
    except TimeoutError as exc:
        return Answer(status=None, failure="timeout", detail=str(exc) or "timed out", seconds=took(), answered=headers)
    except (OSError, ValueError) as exc:
        return _network_failure(exc, took())


def _network_failure(reason: object, seconds: float) -> Answer:
    import socket

    if isinstance(reason, (ConnectionResetError, BrokenPipeError)):
        return Answer(status=None, failure="reset", detail=str(reason) or type(reason).__name__, seconds=seconds)
    if isinstance(reason, ConnectionRefusedError):
        return Answer(status=None, failure="refused", detail=str(reason), seconds=seconds)
    if isinstance(reason, socket.gaierror):
        return Answer(status=None, failure="dns", detail=str(reason), seconds=seconds)
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return Answer(status=None, failure="timeout", detail=str(reason) or "timed out", seconds=seconds)
    return Answer(status=None, failure="network", detail=str(reason), seconds=seconds)


def _host(url: str) -> str:
    """``host:port`` of ``url``, without any ``user:password@``."""
    netloc = urlparse(url).netloc.rpartition("@")[2]
    return netloc or url


NO_ANSWER_CODES = frozenset(
    {
        "service.connection-refused",
        "service.dns-failure",
        "service.timeout",
        "service.network-error",
        "service.connection-reset",
    }
)
"""service.endpoint's findings that mean the endpoint did not answer: the other served checks do not ask again."""


def unfinished(what: str, host: str, status: int, timeout: float) -> Finding:
    """service.timeout for a server that sent its status and headers, then did not finish the reply in time."""
    return error(
        "service.timeout",
        f"{what} to {host} answered (HTTP {status}) but the reply did not finish within {timeout:g} s",
        fix="the server started its answer, then stalled or trickles it: check its log (a stuck worker) and what sits "
        "between (a proxy that buffers); raise --endpoint-timeout S (or service.timeout in the pack) if it is merely "
        "slow",
        observed=f"HTTP {status} and its headers, then no complete reply after {timeout:g} s",
        expected=f"a complete reply within {timeout:g} s",
    )


def explain_failure(
    answer: Answer,
    url: str,
    timeout: float,
    what: str,
    base: str = "",
    *,
    token_sent: bool = False,
    hints: Names = Names("client"),
) -> Finding:
    """A finding for an exchange with ``url`` (under the endpoint ``base``) that got no usable answer.

    ``token_sent``: the request carried a token (PHONE_AGENT_API_KEY or the URL's credentials), so
    a 401/403 refused that token rather than asked for one.
    """
    from autoglm_doctor.redact import redact_url

    host = _host(url)
    url = redact_url(url)
    base = redact_url(base)
    if answer.failure == "refused":
        return error(
            "service.connection-refused",
            f"nothing is listening at {host}: {what} was refused",
            fix=hints.start(urlparse(url).port),
            observed=answer.detail,
        )
    if answer.failure == "dns":
        return error(
            "service.dns-failure",
            f"the host name in {url} does not resolve",
            fix=f"correct the host in {hints.endpoint} (or add it to DNS / /etc/hosts)",
            observed=answer.detail,
        )
    if answer.failure == "timeout" and answer.answered is not None:
        return unfinished(what, host, answer.answered, timeout)
    if answer.failure == "timeout":
        return error(
            "service.timeout",
            f"{what} to {host} got no answer within {timeout:g} s",
            fix="the server is overloaded, still loading the model, or a firewall drops packets: check its log; "
            "raise --endpoint-timeout S (or service.timeout in the pack) if it is merely slow",
            observed=f"no answer after {timeout:g} s",
            expected=f"an answer within {timeout:g} s",
        )
    if answer.failure == "reset":
        return error(
            "service.connection-reset",
            f"the server closed the connection during the request: see its log ({what} to {host})",
            fix="read the model server's log at the time of this request: it crashed, restarted or dropped the "
            "request (out of memory, an exception in the image processor)",
            observed=answer.detail,
            expected="an HTTP answer",
        )
    if answer.status in (401, 403) and token_sent:
        return error(
            "service.token-refused",
            f"{what} was refused with HTTP {answer.status}: the server does not accept the token the client sends",
            fix=f"{hints.token_fix()} (the token sent is not the server's)",
            observed=f"HTTP {answer.status} with a token",
        )
    if answer.status in (401, 403):
        return error(
            "service.unauthorized",
            f"{what} was refused with HTTP {answer.status}: the endpoint wants a token the client does not send",
            fix=hints.token_fix(),
            observed=f"HTTP {answer.status}",
        )
    if answer.status == 404 and base and not base.endswith("/v1"):
        return error(
            "service.http-error",
            f"{what} got HTTP 404 from {url}: the base URL is probably missing its /v1",
            fix=hints.base_fix(f"{base}/v1"),
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


def _model_name(snap: Snapshot, ctx: CheckContext, hints: Names) -> tuple[str | None, str]:
    """(the model name to ask, whose name it is): PHONE_AGENT_MODEL, the launch's --served-model-name, the pack's."""
    if snap.env.get("PHONE_AGENT_MODEL"):
        return snap.env["PHONE_AGENT_MODEL"], "the client sends model name"
    if hints.role == "server" and hints.served_name:
        return hints.served_name, f"{hints.where}'s --served-model-name is"
    if hints.role == "server":
        return ctx.pack.settings.service.model, "the phone agent's default model name (PHONE_AGENT_MODEL unset) is"
    return ctx.pack.settings.service.model, "the client sends model name"


def _chat_payload(model: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }


@dataclass(frozen=True, slots=True)
class StepSettings:
    """How a served check asks: the pack's ``service:`` keys, resolved."""

    timeout: float
    """Seconds the whole check may take (the /models request and the completion together)."""
    max_tokens: int
    """max_tokens of the completion (the client sends 3000)."""
    step_budget: float
    """Seconds a step may take before it warns."""
    action_required: bool
    """A reply without an action fails instead of warning."""


def step_settings(ctx: CheckContext) -> StepSettings:
    """The pack's service settings with their defaults; --endpoint-timeout over the pack's timeout."""
    service = ctx.pack.settings.service  # typed and range-checked when the pack loaded
    return StepSettings(
        timeout=_timeout(ctx),
        max_tokens=service.max_tokens,
        step_budget=service.step_budget,
        action_required=service.action_required,
    )


def _client_folders(snap: Snapshot) -> list[Path]:
    """Folders of an installed ``phone_agent`` package in the target environment (from dist-info, as text)."""
    folders = [
        Path(dist.location) / "phone_agent"
        for dist in snap.distributions
        if "phone_agent" in dist.top_level or dist.name.lower().replace("_", "-") == "phone-agent"
    ]
    # a source checkout on the path (pip install -e, PYTHONPATH), or Open-AutoGLM's clone the client runs from
    roots = [*snap.python.sys_path, snap.python.cwd]
    folders += [Path(e, "phone_agent") for e in roots if e and Path(e, "phone_agent", "config").is_dir()]
    return folders


def system_prompt(snap: Snapshot) -> tuple[str, str]:
    """(prompt, where it came from): the installed client's own SYSTEM_PROMPT, else the doctor's."""
    from autoglm_doctor.phone.prompt import DOCTOR_PROMPT, client_prompt, prompt_files

    lang = snap.env.get("PHONE_AGENT_LANG") or "cn"  # the client's default language
    folders = _client_folders(snap)
    found = client_prompt(folders, lang)
    if found is not None:
        return found[0], str(found[1])
    if folders:  # installed, but not in the shape whose prompt the doctor reads: say what was looked for
        looked = " or ".join(prompt_files(lang))
        return DOCTOR_PROMPT, (
            f"the doctor's own instruction (phone_agent is installed at {folders[0]}, but no SYSTEM_PROMPT was "
            f"found in its {looked})"
        )
    return DOCTOR_PROMPT, "the doctor's own instruction (phone_agent is not installed in the target environment)"


def estimated_prompt_tokens(image: tuple[int, int], text: str) -> int:
    """Tokens the step's prompt takes at the least in a GLM-4.1V server: the image's patches plus the text.

    Image (exact for GLM-4.1V): its processor (transformers ``glm4v`` smart_resize) rounds each
    side to a multiple of 28 px (14 px patches merged 2x2), capped at 28*28*15000 pixels; one
    token per 28x28 block: 3354 for a 1080x2400 screenshot. Text (a lower bound, so that
    service.context-too-small is never a false alarm): one token per 2 CJK characters and per 5
    other characters; GLM's tokenizer needs more.
    """
    width, height = image
    factor, max_pixels = 28, 28 * 28 * 15000
    h_bar, w_bar = max(factor, round(height / factor) * factor), max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    cjk = sum(1 for ch in text if "\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef")
    return (h_bar // factor) * (w_bar // factor) + cjk // 2 + (len(text) - cjk) // 5


IMAGE_REFUSED = re.compile(
    r"At most \d+ image\(s\) may be provided|image input is not supported|does not support (multimodal|image|vision)"
    r"|not a multimodal model|images? (are|is) not supported|image_url.{0,40}not supported",
    re.IGNORECASE,
)
"""Server messages that refuse the screenshot itself (vLLM: ``At most 0 image(s) may be provided in one request.``)."""

CONTEXT_TOO_SMALL = re.compile(
    r"maximum context length|max_model_len|context length|too many tokens|longer than the maximum|exceeds the maximum",
    re.IGNORECASE,
)
"""Server messages that say prompt plus max_tokens do not fit (vLLM/SGLang 400s)."""

IMAGE_FAILED = re.compile(r"image|pixel|processor|temporal_factor|patch|vision|PIL|decode", re.IGNORECASE)
"""Words in a server error that point at the image pipeline."""

MODEL_NOT_FOUND = re.compile(r"does not exist|not found|pinned to|unknown model|no such model", re.IGNORECASE)


def served_model(
    url: str, ctx: CheckContext, snap: Snapshot, deadline: float, token: str | None
) -> tuple[list[Finding], tuple[str, ModelCard] | None]:
    """GET /models: (findings, the model name to ask and its model card, or None when there is none to ask)."""
    findings: list[Finding] = []
    chosen = None
    for item in _served(url, ctx, snap, deadline, token):
        if isinstance(item, tuple):
            chosen = item
        else:
            findings.append(item)
    return findings, chosen


def _served(
    url: str, ctx: CheckContext, snap: Snapshot, deadline: float, token: str | None
) -> Iterator[Finding | tuple[str, ModelCard]]:
    """GET /models: yields findings, and last the (model name, its model card) to ask when there is one."""
    from autoglm_doctor.phone.openai_shapes import ModelCard, NotOpenAIShape, model_list, quote

    models_url = f"{url}/models"
    hints = names(snap, ctx)
    timeout = max(0.5, deadline - time.monotonic())
    answer = request(models_url, timeout=timeout, token=token)
    if answer.status != 200:
        yield explain_failure(
            answer, models_url, _timeout(ctx), "GET /models", url, token_sent=answer.token_sent, hints=hints
        )
        return
    data = answer.json()
    try:
        listing = model_list(data)
    except NotOpenAIShape as exc:
        yield error(
            "service.no-models",
            f"GET {models_url} answered, but {exc if data is not None else 'not with JSON'}",
            fix=f"point {hints.base_setting} at the OpenAI-compatible API of the model server (its /v1)",
            observed=quote(answer.body[:200].decode("utf-8", errors="replace")),
            expected='{"object": "list", "data": [{"id": "<model name>", ...}]}',
        )
        return
    served = listing.ids
    wanted, whose = _model_name(snap, ctx, hints)
    if not served:
        yield error(
            "service.no-models",
            f"GET {models_url} answered but lists no model",
            fix=f"point {hints.base_setting} at the OpenAI-compatible API of the model server (its /v1)",
            observed=quote(answer.body[:200].decode("utf-8", errors="replace")),
        )
        return
    if wanted is None:
        wanted = served[0]
        yield warning(
            "service.model-unset",
            f"PHONE_AGENT_MODEL is not set; the server serves {_names(served)}",
            fix=f"export PHONE_AGENT_MODEL={shlex.quote(served[0][:200])}",
        )
    elif wanted not in served:
        # an error on every role: the name the agent sends is not served, so its first step gets a 404
        yield error(
            "service.model-not-served",
            f"{whose} {wanted!r} but the server serves {_names(served, quoted=True)}",
            fix=hints.model_fix(shlex.quote(served[0][:200]), wanted),
            observed=_names(served),
            expected=wanted,
        )
        return
    card = listing.card(wanted)
    yield wanted, card if card is not None else ModelCard(id=wanted)


def _names(served: list[str], *, quoted: bool = False, shown: int = 10) -> str:
    """The first ``shown`` served names, each cut to 200 characters, and how many more there are."""
    from autoglm_doctor.phone.openai_shapes import MODELS_MAX

    names = [repr(n[:200]) if quoted else n[:200] for n in served[:shown]]
    more = len(served) - shown
    if more > 0:
        names.append(f"and {more}{'+' if len(served) >= MODELS_MAX else ''} more")
    return ", ".join(names)


def _context_check(card: ModelCard, need: int, max_tokens: int) -> Finding | None:
    limit = card.max_model_len
    if limit is None or need <= limit:
        return None
    prompt_tokens = need - max_tokens
    return error(
        "service.context-too-small",
        f"the server's context ({limit} tokens, /v1/models max_model_len) cannot hold one agent step: "
        f"a phone screenshot and the system prompt take at least {prompt_tokens} tokens, and the client asks "
        f"for {max_tokens} more (max_tokens)",
        fix=f"restart the server with --max-model-len {max(25480, need)} (Open-AutoGLM's launch command uses "
        "25480; with less GPU memory, at least "
        f"{need}; SGLang: --context-length)",
        observed=f"max_model_len {limit}",
        expected=f">= {need} (at least {prompt_tokens} prompt + {max_tokens} reply tokens)",
    )


def _too_long_reply(exchange: StepExchange, wanted: str, max_tokens: int, card: ModelCard | None) -> Finding:
    """service.bad-reply for a reply cut off at REPLY_MAX_CHARS: the server did not stop where an agent step stops.

    The endpoint is an OpenAI server (it streamed a reply): the advice is about the length, what the
    doctor asked for (max_tokens) and what the server allows (its max_model_len), not the URL.
    """
    limit = card.max_model_len if card is not None else None
    context = (
        f"its context is {limit} tokens (/v1/models max_model_len, --max-model-len)"
        if limit is not None
        else "/v1/models names no max_model_len (see the server's --max-model-len)"
    )
    return error(
        "service.bad-reply",
        f"{exchange.detail}: far too long for an agent step (model {wanted!r}, max_tokens {max_tokens} asked; "
        f"{context})",
        fix=f"the server did not stop at max_tokens {max_tokens}: check that it honours max_tokens (a generation "
        "config or a proxy that drops it) and the chat template (a model that never emits its stop token runs on "
        "to --max-model-len); read the server's log for this request",
        observed=exchange.detail,
        expected=f"a reply of at most max_tokens {max_tokens} tokens: <think>…</think><answer>one action</answer>",
    )


def _rejected(
    exchange: StepExchange,
    url: str,
    wanted: str,
    timeout: float,
    base: str,
    *,
    token_sent: bool = False,
    hints: Names = Names("client"),
) -> Finding:
    """A finding for a step the server did not answer with a stream of content."""
    from autoglm_doctor.phone.chat import error_message

    message = error_message(exchange.body) if exchange.body else exchange.detail
    quoted = f'"{message}"' if message else f"HTTP {exchange.status}"
    if exchange.status is not None and exchange.status != 200 and IMAGE_REFUSED.search(message):
        return error(
            "service.image-refused",
            f"the server refused the screenshot (HTTP {exchange.status}): {quoted}",
            fix="the agent sends one screenshot per step: restart vLLM with --limit-mm-per-prompt '{\"image\":10}' "
            "(as Open-AutoGLM's launch command does) and serve the vision-language model "
            "(zai-org/AutoGLM-Phone-9B), not a text-only one",
            observed=message,
            expected="a streamed reply",
        )
    if exchange.status is not None and exchange.status != 200 and CONTEXT_TOO_SMALL.search(message):
        return error(
            "service.context-too-small",
            f"the server says the step does not fit its context (HTTP {exchange.status}): {quoted}",
            fix="restart the server with a larger --max-model-len (Open-AutoGLM uses 25480; SGLang: --context-length)",
            observed=message,
        )
    if exchange.status in (400, 404) and MODEL_NOT_FOUND.search(message) and wanted in message:
        return error(
            "service.model-not-served",
            f"the server does not answer for model {wanted!r}: {quoted}",
            fix=hints.model_fix("<the server's --served-model-name>", wanted),
            observed=message,
            expected=wanted,
        )
    if exchange.status is not None and exchange.status >= 500 and IMAGE_FAILED.search(message):
        return error(
            "service.image-failed",
            f"the server failed while processing the screenshot (HTTP {exchange.status}): {quoted}",
            fix="the server's image processor does not match the model: upgrade transformers on the server "
            "(Open-AutoGLM: pip install -U 'transformers>=5.0.0rc0' after installing vLLM/SGLang) and restart it; "
            "the server log has the full traceback",
            observed=message,
            expected="HTTP 200",
        )
    if exchange.failure == "stream":
        return error(
            "service.bad-reply",
            f"the streamed completion broke off: {exchange.detail}",
            fix=f"point {hints.base_setting} at an OpenAI-compatible server (vLLM/SGLang with their /v1 API); "
            "read its log for this request",
            observed=exchange.detail,
        )
    if exchange.failure == "timeout" and exchange.ttft_s is None and exchange.answered is not None:
        return unfinished("an agent step", _host(url), exchange.answered, timeout)
    if exchange.failure == "timeout":
        got = "nothing" if exchange.ttft_s is None else f"a first token after {exchange.ttft_s:.1f} s, then no end"
        return error(
            "service.timeout",
            f"an agent step to {_host(url)} got {got} within {timeout:g} s",
            fix="the server accepts connections but does not answer: it is still loading, overloaded or stuck; "
            "check its log and GPU; raise --endpoint-timeout S (or service.timeout in the pack) if it is merely slow",
            observed=f"no complete answer after {timeout:g} s",
            expected=f"an answer within {timeout:g} s",
        )
    answer = Answer(
        status=exchange.status,
        body=exchange.body,
        failure=exchange.failure,
        detail=exchange.detail,
        seconds=exchange.total_s,
    )
    return explain_failure(answer, url, timeout, "an agent step", base, token_sent=token_sent, hints=hints)


def agent_step(
    url: str,
    wanted: str,
    image: bytes,
    prompt: str,
    settings: StepSettings,
    deadline: float,
    token: str | None,
    card: ModelCard | None = None,
    hints: Names = Names("client"),
) -> tuple[list[Finding], StepExchange | None]:
    """Send one agent step; (findings about the exchange itself, the exchange when it gave a reply)."""
    from autoglm_doctor.phone.chat import agent_payload, stream_chat
    from autoglm_doctor.phone.prompt import TASK
    from autoglm_doctor.phone.screenshot import PHONE_SIZE, image_size

    size = image_size(image) or PHONE_SIZE
    need = estimated_prompt_tokens(size, prompt + TASK) + settings.max_tokens
    if card is not None:
        too_small = _context_check(card, need, settings.max_tokens)
        if too_small is not None:
            return [too_small], None
    chat_url = f"{url}/chat/completions"
    timeout = max(0.5, deadline - time.monotonic())
    exchange = stream_chat(
        chat_url, agent_payload(wanted, prompt, image, settings.max_tokens), timeout=timeout, token=token
    )
    if exchange.status != 200 or exchange.failure:
        from autoglm_doctor.httpclient import split_userinfo

        sent = bool(token) or split_userinfo(url)[1] is not None
        if exchange.failure == "too-long":
            return [_too_long_reply(exchange, wanted, settings.max_tokens, card)], None
        return [_rejected(exchange, chat_url, wanted, settings.timeout, url, token_sent=sent, hints=hints)], None
    return [], exchange


def send_step(
    url: str, snap: Snapshot, ctx: CheckContext, image: bytes
) -> Generator[Finding, None, tuple[str, StepExchange, str] | None]:
    """Ask /models, then send one agent step with ``image``, all within the pack's timeout.

    Yields the findings about the exchange; returns (model name, the exchange, where the system
    prompt came from) when the server answered with a reply, None otherwise.
    """
    settings = step_settings(ctx)
    deadline = time.monotonic() + settings.timeout
    token = client_token(snap)
    found, chosen = served_model(url, ctx, snap, deadline, token.value)
    yield from (_with_token_note(f, token) for f in found)
    if chosen is None:
        return None
    wanted, card = chosen
    prompt, source = system_prompt(snap)
    findings, exchange = agent_step(url, wanted, image, prompt, settings, deadline, token.value, card, names(snap, ctx))
    yield from (_with_token_note(f, token) for f in findings)
    return None if exchange is None else (wanted, exchange, source)


def judge_step(
    exchange: StepExchange, wanted: str, settings: StepSettings, *, action_required: bool
) -> Iterator[Finding]:
    """Findings about the reply of a step and its timing."""
    from autoglm_doctor.phone.actions import has_action_marker, judge_reply

    text = exchange.text
    verdict = judge_reply(text)
    if verdict is not None:
        code, why = verdict
        if code != "service.one-word-reply" or not has_action_marker(text):
            yield error(
                code,
                f"{why} (model {wanted!r}, {len(text.strip())} characters"
                + (", the reasoning arrived apart in reasoning_content" if exchange.reasoning else "")
                + ")",
                fix="a served model that answers like this has a broken deployment: check the chat template "
                "(--chat-template), the weights (re-download), the dtype (float16 overflow: use bfloat16) and "
                "max_model_len",
                observed=f"{len(text.split())} word(s), {len(text.strip())} characters",
                expected="<think>…</think><answer>do(action=…) or finish(message=…)</answer>",
            )
            return
    if not has_action_marker(text):
        make = error if action_required else warning
        yield make(
            "service.not-an-action",
            f"the reply has no do(action=...) or finish(message=...): the agent cannot act on it "
            f"({len(text.strip())} characters of prose)",
            fix="serve the agent's model (zai-org/AutoGLM-Phone-9B) under PHONE_AGENT_MODEL; a general chat model "
            "answers in prose. With the real model, check the chat template and that the system prompt reached it",
            observed="prose",
            expected="do(action=…) or finish(message=…)",
        )
    timing = f"first token after {exchange.ttft_s:.2f} s, " if exchange.ttft_s is not None else ""
    if exchange.total_s > settings.step_budget:
        yield warning(
            "service.slow-step",
            f"one agent step took {exchange.total_s:.1f} s ({timing}over the pack's step budget of "
            f"{settings.step_budget:g} s): a task of 30 steps would take {exchange.total_s * 30 / 60:.0f} min",
            fix="serve on a faster GPU or with tensor parallelism, check the server is not sharing its GPU, and keep "
            "--max-model-len no larger than needed; raise service.step_budget if this speed is acceptable",
            observed=f"{exchange.total_s:.2f} s",
            expected=f"<= {settings.step_budget:g} s",
        )


@check(
    "service.endpoint",
    title="Served endpoint answers the agent",
    needs=("live",),
    why="The phone agent fails at its first step when the server is down, serves another model name, refuses or "
    "cannot process the screenshot, has too little context for it, or answers with anything but an action.",
    fix="Start the server as Open-AutoGLM's launch command does (served model name, --max-model-len, "
    "--limit-mm-per-prompt), export PHONE_AGENT_BASE_URL/PHONE_AGENT_MODEL to match, and fix what each finding names.",
)
def endpoint(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """The endpoint serves the client's model name and answers one agent step: screenshot, streamed, an action.

    The step is the client's own request (its system prompt when phone_agent is installed), with a
    synthetic phone-sized screenshot; /v1/models' max_model_len is checked against it first.
    """
    url = base_url(snap, ctx)
    if url is None:
        raise Skip(names(snap, ctx).no_endpoint())
    from autoglm_doctor.phone.screenshot import PHONE_SIZE, synthetic_png

    yield from default_note(snap, ctx)
    settings = step_settings(ctx)
    sent = yield from send_step(url, snap, ctx, synthetic_png())
    if sent is None:
        return
    wanted, exchange, source = sent
    verdict = list(judge_step(exchange, wanted, settings, action_required=settings.action_required))
    yield from verdict
    if any(f.severity.value == "error" for f in verdict):
        return
    width, height = PHONE_SIZE
    ttft = f"{exchange.ttft_s:.2f} s" if exchange.ttft_s is not None else "n/a"
    yield info(
        "service.answered",
        f"{wanted} answered an agent step ({width}x{height} screenshot, streamed, max_tokens {settings.max_tokens}): "
        f"first token after {ttft}, step {exchange.total_s:.2f} s",
        observed=f"ttft {ttft}, step {exchange.total_s:.3f} s",
    )
    yield info("service.system-prompt", f"system prompt: {source}")
    if ctx.options.endpoint_concurrency > 0:
        yield from _concurrency(
            f"{url}/chat/completions",
            wanted,
            client_token(snap).value,
            settings.timeout,
            ctx.options.endpoint_concurrency,
        )


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


def endpoint_failed(ctx: CheckContext, *, unanswered_only: bool = False) -> bool:
    """Whether service.endpoint already ran in this run and failed (``unanswered_only``: got no HTTP answer at all).

    The served checks after it do not ask the same server again: one failure is one finding, and
    a hung server costs one timeout for the whole run.
    """
    earlier = ctx.earlier.get("service.endpoint")
    if earlier is None or earlier.status.value not in ("fail", "error"):
        return False
    if not unanswered_only:
        return True
    # its GET /models got no answer (a completion that hung after /models answered leaves /models worth asking)
    return any(
        f.code == "service.dns-failure" or (f.code in NO_ANSWER_CODES and "GET /models" in f.message)
        for f in earlier.findings
    )


def _auth_required(snap: Snapshot, ctx: CheckContext) -> str:
    """Where the requirement for a token comes from, by name; empty when nothing requires one.

    The config's ``auth.require_token``, the launch command's ``--api-key``, or the pack's ``service.require_token``.
    """
    from autoglm_doctor.configfile.launch import setting

    config = snap.config
    if config is not None and config_value(snap, "auth.require_token") is True:
        line, _ = config.position("auth.require_token")
        return f"{Path(config.path).name}{f':{line}' if line else ''} sets auth.require_token: true"
    if config is not None and config.engine:
        key = setting(config.data, config.engine, "api-key")
        if key is not None and key[1] not in (None, "", False):
            return f"{Path(config.path).name} starts the server with --api-key"
    if ctx.pack.settings.service.require_token:
        return f"pack {ctx.pack.name} sets service.require_token: true"
    return ""


def _no_token_required(snap: Snapshot, ctx: CheckContext) -> str:
    """Why service.auth has nothing to test, naming what it looked at."""
    config = snap.config
    if config is not None and config.engine:
        looked = f"{Path(config.path).name} starts the server without --api-key"
    elif config is not None and config.exists:
        looked = f"{Path(config.path).name} does not set auth.require_token: true"
    else:
        looked = "no config sets auth.require_token"
    return f"nothing requires a token: {looked}, and pack {ctx.pack.name} does not set service.require_token"


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
    required = _auth_required(snap, ctx)
    if not required:
        raise Skip(_no_token_required(snap, ctx))
    url = base_url(snap, ctx)
    if url is None:
        raise Skip(names(snap, ctx).no_endpoint())
    if endpoint_failed(ctx, unanswered_only=True):
        raise Skip("not run: service.endpoint failed (the endpoint gave no complete answer)")
    timeout = min(_timeout(ctx), AUTH_TIMEOUT_S)  # one GET: the served checks together stay under 30 s
    models_url = f"{url}/models"
    answer = request(models_url, timeout=timeout)
    hints = names(snap, ctx)
    if answer.status in (401, 403):
        yield info(
            "service.auth-enforced",
            f"a request without a token was refused with HTTP {answer.status} (required: {required})",
        )
    elif answer.status is not None and 200 <= answer.status < 300:
        if hints.role == "server":
            fix = f"restart the server from {hints.where or 'its launch command'} with --api-key (its token check)"
        elif hints.role == "in-process":
            fix = f"restart the service so that {hints.where or 'its config'}'s auth.require_token is in force"
        else:
            fix = "restart the server with its token check on (vLLM/SGLang: --api-key $PHONE_AGENT_API_KEY)"
        yield error(
            "service.auth-not-enforced",
            f"the service should require a bearer token ({required}), but GET {models_url} without one answered "
            f"HTTP {answer.status}",
            fix=fix,
            observed=f"HTTP {answer.status} without a token",
            expected="HTTP 401 or 403",
        )
    elif answer.status is None:
        yield explain_failure(answer, models_url, timeout, "GET /models without a token", hints=hints)
    else:
        yield warning(
            "service.auth-unclear",
            f"a request without a token got HTTP {answer.status}, neither a refusal (401/403) nor an answer",
            fix="check the server's log for this request",
            observed=f"HTTP {answer.status}",
            expected="HTTP 401 or 403",
        )


@check(
    "service.agent-step",
    title="One agent step end to end",
    needs=("live",),
    why="The endpoint can answer a synthetic screenshot and still fail the agent on a real one (a protected screen, "
    "an odd resolution, a device that gives no image); one real step, read-only on the phone, settles it.",
    fix="Each finding names the part that broke: the screenshot, the server's answer, or the action it returned.",
)
def agent_step_check(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """A screenshot from the chosen device, sent as the agent sends it; the reply parses into a valid action.

    Nothing is executed on the device: the screenshot is read (adb exec-out screencap, hdc's
    snapshot, WebDriverAgent's /screenshot) and the action is only parsed and checked (a known
    name, points inside 0..999).
    """
    from autoglm_doctor.checks.devices import NoDevice, take_screenshot
    from autoglm_doctor.phone.actions import ActionError, parse_action
    from autoglm_doctor.phone.screenshot import image_size

    url = base_url(snap, ctx)
    if url is None:
        raise Skip(names(snap, ctx).no_endpoint())
    if endpoint_failed(ctx):
        raise Skip("not run: service.endpoint failed")
    try:
        screen = take_screenshot(snap, ctx)
    except NoDevice as exc:
        raise Skip(str(exc)) from None
    if screen.problem is not None or screen.image is None:
        if screen.problem is not None:
            yield screen.problem
        return
    settings = step_settings(ctx)
    sent = yield from send_step(url, snap, ctx, screen.image)
    if sent is None:
        return
    wanted, exchange, _ = sent
    verdict = [
        f for f in judge_step(exchange, wanted, settings, action_required=True) if f.code != "service.not-an-action"
    ]
    yield from verdict
    if any(f.severity.value == "error" for f in verdict):
        return
    try:
        action = parse_action(exchange.text)
    except ActionError as exc:
        yield error(
            exc.code,
            f"the model's reply to {screen.device}'s screen is not an action the agent can take: {exc}",
            fix="serve the agent's model (zai-org/AutoGLM-Phone-9B) with its own chat template; a reply the client "
            "cannot parse stops the agent at this step",
            observed=action_preview(exchange.text),
            expected="do(action=<known name>, …) or finish(message=…), points inside 0..999",
        )
        return
    size = image_size(screen.image)
    shape = f"{size[0]}x{size[1]}" if size else "unknown size"
    yield info(
        "service.step",
        f"{screen.device}: a {shape} screenshot → {action.source[:120]} (parsed, not executed) in "
        f"{exchange.total_s:.2f} s"
        + (f", first token after {exchange.ttft_s:.2f} s" if exchange.ttft_s is not None else ""),
        observed=action.name,
    )
    if screen.note:
        yield info(
            "service.screenshot-note",
            f"{screen.device}: the screenshot came after this text, which the doctor left out: {screen.note}",
        )


def action_preview(text: str) -> str:
    """The end of a reply, where the action should be (the thinking before it is left out)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= 160 else "…" + flat[-160:]
