"""service.endpoint and service.auth against a real OpenAI-compatible HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from autoglm_doctor import packs, registry, runner
from autoglm_doctor.configfile.facts import ConfigFacts
from autoglm_doctor.context import CheckContext, Options
from autoglm_doctor.model import CheckResult, Status
from autoglm_doctor.probe.snapshot import PythonFacts, Snapshot

PHONE_PACK = """
pack: open-autoglm-phone
description: "test pack: the served phone agent"
service:
  model: autoglm-phone-9b
  timeout: 1
  action_pattern: '(do|finish)\\(.*\\)'
  prompt: "Open the settings app. Answer with one action."
"""


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    served = ["autoglm-phone-9b"]
    reply: str | None = 'do(action="Launch", app="Settings")'
    delay = 0.0
    token: str | None = None
    fail_status: int | None = None
    ok_chats: int | None = None  # answer this many chat completions, then fail with 503
    requests: list[tuple[str, str | None]]
    chats = 0
    lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        auth = self.headers.get("Authorization")
        self.server.requests.append((self.path, auth))
        if self.server.token and auth != f"Bearer {self.server.token}":
            self._send(401, {"error": {"message": "invalid api key"}})
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802
        if not self._authorised():
            return
        if self.path != "/v1/models":
            self._send(404, {"detail": "Not Found"})
            return
        self._send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in self.server.served]})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", "0"))
        request = json.loads(self.rfile.read(length))
        if not self._authorised():
            return
        time.sleep(self.server.delay)
        with self.server.lock:
            self.server.chats += 1
            chats = self.server.chats
        if self.server.ok_chats is not None and chats > self.server.ok_chats:
            self._send(503, {"error": "overloaded"})
            return
        if self.server.fail_status:
            self._send(self.server.fail_status, {"error": "boom"})
            return
        if request["model"] not in self.server.served:
            self._send(404, {"error": {"message": f"model {request['model']} does not exist"}})
            return
        message = {"role": "assistant", "content": self.server.reply}
        self._send(200, {"object": "chat.completion", "choices": [{"index": 0, "message": message}]})


@pytest.fixture
def server() -> Iterator[FakeServer]:
    srv = FakeServer(("127.0.0.1", 0), Handler)
    srv.requests = []
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def phone_pack(tmp_path: Path) -> packs.Pack:
    path = tmp_path / "phone.yaml"
    path.write_text(PHONE_PACK)
    return packs.load(str(path))


def url(srv: FakeServer) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/v1"


def snap(env: dict[str, str] | None = None, config: dict | None = None) -> Snapshot:
    return Snapshot(
        python=PythonFacts(
            version="3.11.7",
            implementation="cpython",
            executable=sys.executable,
            prefix="",
            base_prefix="",
            env_kind="venv",
        ),
        env=env or {},
        config=ConfigFacts(path="deploy.yaml", data=config) if config is not None else None,
    )


def run(check_id: str, snapshot: Snapshot, pack: packs.Pack, **options: object) -> CheckResult:
    spec = registry.load(plugins=False).checks[check_id]
    return runner.run_check(spec, snapshot, CheckContext(pack=pack, options=Options(**options)))  # type: ignore[arg-type]


def only(result: CheckResult, status: Status) -> str:
    assert result.status is status, result.findings
    return result.findings[0].code


def test_healthy_endpoint_passes(server: FakeServer, phone_pack: packs.Pack) -> None:
    result = run(
        "service.endpoint",
        snap({"PHONE_AGENT_BASE_URL": url(server), "PHONE_AGENT_MODEL": "autoglm-phone-9b"}),
        phone_pack,
    )
    assert only(result, Status.PASS) == "service.answered"
    assert [p for p, _ in server.requests] == ["/v1/models", "/v1/chat/completions"]


def test_endpoint_flag_wins_over_the_environment(server: FakeServer, phone_pack: packs.Pack) -> None:
    env = {"PHONE_AGENT_BASE_URL": "http://127.0.0.1:9/v1", "PHONE_AGENT_MODEL": "autoglm-phone-9b"}
    result = run("service.endpoint", snap(env), phone_pack, endpoint=url(server))
    assert result.status is Status.PASS


def test_skips_without_an_endpoint(phone_pack: packs.Pack) -> None:
    result = run("service.endpoint", snap(), phone_pack)
    assert result.status is Status.SKIP
    assert "--endpoint" in result.findings[0].message


def test_wrong_served_name(server: FakeServer, phone_pack: packs.Pack) -> None:
    server.served = ["glm-4v"]
    result = run("service.endpoint", snap({"PHONE_AGENT_MODEL": "autoglm-phone-9b"}), phone_pack, endpoint=url(server))
    assert only(result, Status.FAIL) == "service.model-not-served"
    fix = result.findings[0].fix or ""
    assert "export PHONE_AGENT_MODEL=glm-4v" in fix and "--served-model-name autoglm-phone-9b" in fix


def test_slow_beyond_the_timeout(server: FakeServer, phone_pack: packs.Pack) -> None:
    server.delay = 3
    started = time.monotonic()
    result = run("service.endpoint", snap(), phone_pack, endpoint=url(server))
    assert time.monotonic() - started < 2.5
    assert only(result, Status.FAIL) == "service.timeout"
    assert "within 1 s" in result.findings[0].message


def test_empty_reply(server: FakeServer, phone_pack: packs.Pack) -> None:
    server.reply = "  "
    assert only(run("service.endpoint", snap(), phone_pack, endpoint=url(server)), Status.FAIL) == "service.empty-reply"


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ("\ufffd\ufffd\x00\x01 \ufffd##@@ \ufffd", "service.garbled-reply"),
        ("the the the the the the the the", "service.garbled-reply"),
        ("Paris", "service.one-word-reply"),
        ("I would open the settings app for you.", "service.not-an-action"),
    ],
)
def test_unsound_replies_fail(server: FakeServer, phone_pack: packs.Pack, reply: str, code: str) -> None:
    server.reply = reply
    result = run("service.endpoint", snap(), phone_pack, endpoint=url(server))
    assert only(result, Status.FAIL) == code
    assert reply not in result.findings[0].message  # judged, not printed


def test_nothing_listening(phone_pack: packs.Pack) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: the connection is refused
        result = run("service.endpoint", snap(), phone_pack, endpoint=f"http://127.0.0.1:{port}/v1")
    assert only(result, Status.FAIL) == "service.connection-refused"
    assert "vllm serve" in (result.findings[0].fix or "")


def test_dns_failure(phone_pack: packs.Pack) -> None:
    result = run("service.endpoint", snap(), phone_pack, endpoint="http://no-such-host.invalid/v1")
    assert only(result, Status.FAIL) == "service.dns-failure"


def test_http_error_and_missing_v1(server: FakeServer, phone_pack: packs.Pack) -> None:
    base = url(server).removesuffix("/v1")
    result = run("service.endpoint", snap(), phone_pack, endpoint=base)
    assert only(result, Status.FAIL) == "service.http-error"
    assert f"PHONE_AGENT_BASE_URL={base}/v1" in (result.findings[0].fix or "")
    server.fail_status = 500
    result = run("service.endpoint", snap(), phone_pack, endpoint=url(server))
    assert only(result, Status.FAIL) == "service.http-error"
    assert "HTTP 500" in result.findings[0].message


def test_token_is_sent_from_the_live_environment(
    server: FakeServer, phone_pack: packs.Pack, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.token = "s3cr3t-token-value"
    monkeypatch.setenv("PHONE_AGENT_API_KEY", "s3cr3t-token-value")
    result = run("service.endpoint", snap({"PHONE_AGENT_API_KEY": "<redacted>"}), phone_pack, endpoint=url(server))
    assert result.status is Status.PASS
    assert all("s3cr3t" not in f.message for f in result.findings)
    monkeypatch.delenv("PHONE_AGENT_API_KEY")
    result = run("service.endpoint", snap(), phone_pack, endpoint=url(server))
    assert only(result, Status.FAIL) == "service.unauthorized"


def test_concurrency_reports_latency_percentiles(server: FakeServer, phone_pack: packs.Pack) -> None:
    result = run("service.endpoint", snap(), phone_pack, endpoint=url(server), endpoint_concurrency=8)
    assert result.status is Status.PASS
    conc = next(f for f in result.findings if f.code == "service.concurrency")
    assert "8 concurrent requests: 8 answered" in conc.message and "p95" in conc.message
    assert len(server.requests) == 2 + 8


def test_concurrency_errors_fail(server: FakeServer, phone_pack: packs.Pack) -> None:
    server.ok_chats = 3  # the single completion and two of the concurrent ones; four fail
    result = run("service.endpoint", snap(), phone_pack, endpoint=url(server), endpoint_concurrency=6)
    assert result.status is Status.FAIL
    failed = next(f for f in result.findings if f.code == "service.concurrency-errors")
    assert "4 of 6 concurrent requests failed (HTTP 503)" in failed.message
    assert "2 answered" in next(f for f in result.findings if f.code == "service.concurrency").message


def test_auth_required_and_enforced(server: FakeServer, phone_pack: packs.Pack) -> None:
    server.token = "t0ken"
    result = run("service.auth", snap(config={"auth": {"require_token": True}}), phone_pack, endpoint=url(server))
    assert only(result, Status.PASS) == "service.auth-enforced"
    assert server.requests == [("/v1/models", None)]  # asked without a token


def test_auth_required_but_not_enforced(server: FakeServer, phone_pack: packs.Pack) -> None:
    result = run("service.auth", snap(config={"auth": {"require_token": True}}), phone_pack, endpoint=url(server))
    assert only(result, Status.FAIL) == "service.auth-not-enforced"
    assert "--api-key" in (result.findings[0].fix or "")


def test_auth_skips_when_no_token_is_required(server: FakeServer, phone_pack: packs.Pack) -> None:
    result = run("service.auth", snap(config={}), phone_pack, endpoint=url(server))
    assert result.status is Status.SKIP


def test_live_checks_skip_from_a_snapshot(server: FakeServer, phone_pack: packs.Pack) -> None:
    result = run("service.endpoint", snap(), phone_pack, endpoint=url(server), from_snapshot=True)
    assert result.status is Status.SKIP
    config = {"auth": {"require_token": True}}
    assert (
        run("service.auth", snap(config=config), phone_pack, endpoint=url(server), from_snapshot=True).status
        is Status.SKIP
    )
    assert server.requests == []
