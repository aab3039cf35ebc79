"""Real loopback servers for the served checks: `transformers serve`, a scripted OpenAI server, a WDA stub.

`transformers serve` (transformers' own OpenAI-compatible server, the `serving` extra) runs
the tiny LLaVA of :mod:`tests.helpers.tiny_vlm` on the CPU; it is started on 127.0.0.1 with a
deadline and stopped by its pid (its process group). The scripted server answers with the
exact error shapes real servers give that no server here can be made to produce.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SERVE_START_TIMEOUT_S = 120.0


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TransformersServe:
    """A running `transformers serve` process pinned to one model."""

    process: subprocess.Popen[bytes]
    port: int
    model: str
    log: Path

    @property
    def url(self) -> str:
        """Its OpenAI base URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        """SIGTERM its process group by pid, SIGKILL after 10 s."""
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


def start_transformers_serve(model: Path, log: Path) -> TransformersServe:
    """Start `transformers serve MODEL` on a free loopback port; wait (bounded) until /v1/models answers."""
    exe = Path(sys.executable).with_name("transformers")
    port = free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1")
    with open(log, "wb") as out:
        process = subprocess.Popen(  # noqa: S603 - the venv's own transformers CLI
            [str(exe), "serve", str(model), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    server = TransformersServe(process, port, str(model), log)
    deadline = time.monotonic() + SERVE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"transformers serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/models", timeout=2) as resp:  # noqa: S310 - loopback
                if resp.status == 200:
                    return server
        except OSError:
            time.sleep(0.3)
    server.stop()
    tail = log.read_text()[-3000:]
    raise RuntimeError(f"transformers serve did not answer within {SERVE_START_TIMEOUT_S:g} s:\n{tail}")


# --- a scripted OpenAI-compatible server -----------------------------------------------------------


@dataclass
class Script:
    """What the scripted server does with a chat completion."""

    served: list[str] = field(default_factory=lambda: ["autoglm-phone-9b"])
    """Model ids /v1/models lists."""
    max_model_len: int | None = 25480
    """max_model_len in the model card (vLLM's field); None leaves it out."""
    reply: str = '<think>The home screen is showing.</think><answer>do(action="Launch", app="Settings")</answer>'
    """What the model says, streamed in pieces."""
    status: int = 200
    """A non-200 status answers with ``error_body`` instead."""
    error_body: dict[str, Any] = field(default_factory=dict)
    """The JSON body of the error."""
    hang: bool = False
    """Accept the completion, then say nothing at all."""
    delay: float = 0.0
    """Seconds before the first token."""
    token: str | None = None
    """Bearer token required on every request."""


class _ScriptedHTTP(ThreadingHTTPServer):
    daemon_threads = True
    script: Script
    requests: list[dict[str, Any]]
    stop_hanging: threading.Event


class _Handler(BaseHTTPRequestHandler):
    server: _ScriptedHTTP
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        token = self.server.script.token
        if token and self.headers.get("Authorization") != f"Bearer {token}":
            self._json(401, {"error": {"message": "Unauthorized", "type": "invalid_request_error"}})
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802
        self.server.requests.append({"path": self.path, "auth": self.headers.get("Authorization")})
        if not self._authorised():
            return
        if self.path != "/v1/models":
            self._json(404, {"detail": "Not Found"})
            return
        script = self.server.script
        cards = []
        for name in script.served:
            card: dict[str, Any] = {"id": name, "object": "model", "owned_by": "vllm", "root": name}
            if script.max_model_len is not None:
                card["max_model_len"] = script.max_model_len
            cards.append(card)
        self._json(200, {"object": "list", "data": cards})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        self.server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if not self._authorised():
            return
        script = self.server.script
        if script.hang:
            self.server.stop_hanging.wait(60)  # accepted, never answered
            return
        if script.status != 200:
            self._json(script.status, script.error_body)
            return
        time.sleep(script.delay)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        pieces = [script.reply[i : i + 7] for i in range(0, len(script.reply), 7)] or [""]
        events = [{"choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
        events += [{"choices": [{"index": 0, "delta": {"content": piece}}]} for piece in pieces]
        events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        for event in events:
            self._chunk(b"data: " + json.dumps(event).encode() + b"\n\n")
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


@dataclass
class ScriptedServer:
    """A running scripted server."""

    http: _ScriptedHTTP

    @property
    def script(self) -> Script:
        """What it does; change it between requests."""
        return self.http.script

    @property
    def url(self) -> str:
        """Its OpenAI base URL."""
        return f"http://127.0.0.1:{self.http.server_address[1]}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request received, in order."""
        return self.http.requests


def scripted_server() -> Iterator[ScriptedServer]:
    """Run a scripted server on 127.0.0.1 until the generator is closed."""
    http = _ScriptedHTTP(("127.0.0.1", 0), _Handler)
    http.script = Script()
    http.requests = []
    http.stop_hanging = threading.Event()
    thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield ScriptedServer(http)
    finally:
        http.stop_hanging.set()
        http.shutdown()
        http.server_close()


def serve_in_thread(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, Callable[[], None]]:
    """Serve ``handler`` on a free loopback port in a daemon thread; (the server, a function that stops it)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return server, stop


# --- a WebDriverAgent stub -------------------------------------------------------------------------


def wda_stub(screenshot_png: bytes, log: list[str]) -> tuple[ThreadingHTTPServer, Callable[[], None]]:
    """WebDriverAgent's /status and /screenshot on loopback, answering as WDA does; logs every request."""
    import base64

    status = {
        "value": {
            "ready": True,
            "message": "WebDriverAgent is ready to accept commands",
            "state": "success",
            "os": {"name": "iOS", "version": "17.5.1", "sdkVersion": "17.5"},
            "ios": {"ip": "192.168.1.23"},
            "build": {"productBundleIdentifier": "com.facebook.WebDriverAgentRunner"},
        },
        "sessionId": None,
    }
    shot = {"value": base64.b64encode(screenshot_png).decode(), "sessionId": None}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            log.append(f"GET {self.path}")
            if self.path == "/status":
                self._send(status)
            elif self.path == "/screenshot":
                self._send(shot)
            else:
                self.send_error(404)

        def do_POST(self) -> None:  # noqa: N802
            log.append(f"POST {self.path}")
            self.send_error(404)

    return serve_in_thread(Handler)


# --- a forwarding HTTP proxy -----------------------------------------------------------------------


def forwarding_proxy(log: list[str]) -> tuple[ThreadingHTTPServer, Callable[[], None]]:
    """A plain-HTTP forward proxy on loopback (absolute-URI requests), streaming answers back; logs each request."""
    import http.client
    from urllib.parse import urlparse

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _forward(self) -> None:
            log.append(f"{self.command} {self.path}")
            target = urlparse(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))) if self.command == "POST" else None
            upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "proxy-connection")}
            upstream.request(self.command, target.path, body=body, headers=headers)
            answer = upstream.getresponse()
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                    self.send_header(key, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            while chunk := answer.read1(65536):
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            upstream.close()

        do_GET = _forward  # noqa: N815
        do_POST = _forward  # noqa: N815

    return serve_in_thread(Handler)
