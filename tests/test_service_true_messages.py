"""The served checks say what happened: one failure one finding, one timeout per hung server, true messages.

Each test reproduces its situation with a real socket on 127.0.0.1 and runs the doctor through the CLI.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import result
from tests.helpers.openai_servers import ScriptedServer, scripted_server, serve_in_thread


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    yield from scripted_server()


@pytest.fixture
def clean_env(workdir, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    for name in ("PHONE_AGENT_BASE_URL", "PHONE_AGENT_API_KEY", "PHONE_AGENT_MODEL", "PHONE_AGENT_LANG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PHONE_AGENT_MODEL", "autoglm-phone-9b")


def errors(res: dict[str, Any]) -> list[str]:
    return [f["code"] for f in res["findings"] if f["severity"] == "error"]


@contextlib.contextmanager
def _raw_server(on_connection: Callable[[socket.socket, threading.Event], None]) -> Iterator[str]:
    """A real loopback socket that hands each accepted connection to ``on_connection``; its base URL.

    ``on_connection`` gets the connection and the event set when the server stops; every
    connection is closed then.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(conn)
            on_connection(conn, stop)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        stop.set()
        thread.join(2)
        for conn in accepted:
            conn.close()
        listener.close()


@pytest.fixture
def silent_socket() -> Iterator[str]:
    """A real socket that accepts every connection and never answers (a wedged server); its base URL."""
    with _raw_server(lambda conn, stop: None) as url:
        yield url


@pytest.mark.usefixtures("clean_env")
def test_a_hung_server_costs_one_endpoint_timeout_for_the_whole_run(silent_socket: str, run_json, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "deploy.yaml"
    config.write_text("auth:\n  require_token: true\n")  # so that service.auth would ask too
    started = time.monotonic()
    code, report = run_json(
        "--pack",
        "open-autoglm-phone",
        "--only",
        "service.*",
        "--endpoint",
        silent_socket,
        "--endpoint-timeout",
        "2",
        "--config",
        str(config),
    )
    took = time.monotonic() - started
    endpoint = result(report, "service.endpoint")
    assert errors(endpoint) == ["service.timeout"]
    assert "within 2 s" in endpoint["findings"][0]["message"]
    for other in ("service.agent-step", "service.auth"):
        res = result(report, other)
        assert res["status"] == "skip", res
        assert res["findings"][0]["message"].startswith("not run: service.endpoint failed")
    served_s = sum(r["duration_ms"] for r in report["results"] if r["id"].startswith("service.")) / 1000
    assert served_s < 2 + 1.0, served_s  # one timeout, not one per check (it was 2 x 12 s before)
    assert took < 2 + 8, took  # the probe and start-up besides


@pytest.fixture
def trickling_socket() -> Iterator[str]:
    """A real socket that answers every request with a 200 status and headers, then one byte a second; its base URL."""

    def trickle(conn: socket.socket, stop: threading.Event) -> None:
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
            while not stop.wait(1):
                conn.sendall(b" ")
        except OSError:
            pass

    with _raw_server(
        lambda conn, stop: threading.Thread(target=trickle, args=(conn, stop), daemon=True).start()
    ) as url:
        yield url


@pytest.mark.usefixtures("clean_env")
def test_a_server_that_answered_then_trickles_is_not_called_silent(trickling_socket: str, run_json) -> None:  # type: ignore[no-untyped-def]
    # QA P3.17: headers, then a byte a second, was "got no answer within 2 s"
    code, report = run_json(
        "--pack",
        "open-autoglm-phone",
        "--only",
        "service.endpoint",
        "--endpoint",
        trickling_socket,
        "--endpoint-timeout",
        "2",
    )
    endpoint = result(report, "service.endpoint")
    assert errors(endpoint) == ["service.timeout"]
    message = endpoint["findings"][0]["message"]
    assert "GET /models to 127.0.0.1:" in message
    assert "answered (HTTP 200) but the reply did not finish within 2 s" in message
    assert "no answer" not in message


@pytest.mark.usefixtures("clean_env")
def test_endpoint_timeout_must_be_a_bounded_number(run_json) -> None:  # type: ignore[no-untyped-def]
    from autoglm_doctor.cli import main

    assert main(["check", "--no-smoke", "--endpoint-timeout", "nan", "--only", "service.endpoint"]) == 2
    assert main(["check", "--no-smoke", "--endpoint-timeout", "0", "--only", "service.endpoint"]) == 2


@pytest.mark.usefixtures("clean_env")
def test_endpoint_timeout_and_the_packs_service_timeout_accept_the_same_range(  # type: ignore[no-untyped-def]
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # QA P3.18: --endpoint-timeout took 0.5 to 3600 s, the pack's service.timeout 0.1 to 600 s
    from autoglm_doctor.cli import main
    from autoglm_doctor.packs_schema import SERVICE_SECONDS_MAX, SERVICE_TIMEOUT_MIN

    def pack(value: float) -> str:
        path = tmp_path / f"p{value:g}.yaml"
        path.write_text(f"pack: client\ndescription: test\nservice:\n  timeout: {value!r}\n")
        return str(path)

    base = ["check", "--no-smoke", "--only", "python.version"]
    below, above = SERVICE_TIMEOUT_MIN / 2, SERVICE_SECONDS_MAX * 2
    for value, code in ((SERVICE_TIMEOUT_MIN, 0), (SERVICE_SECONDS_MAX, 0), (below, 2), (above, 2)):
        assert main([*base, "--endpoint-timeout", repr(value)]) == code, value
        err = capsys.readouterr().err
        assert main([*base, "--pack", pack(value)]) == code, value
        pack_err = capsys.readouterr().err
        if code == 2:
            wanted = f"a number of seconds from {SERVICE_TIMEOUT_MIN:g} to {SERVICE_SECONDS_MAX:g}"
            assert wanted in err and wanted in pack_err, (err, pack_err)


@pytest.mark.usefixtures("clean_env")
def test_agent_step_does_not_repeat_the_endpoints_failure(run_json) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: refused
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        code, report = run_json("--pack", "open-autoglm-phone", "--only", "service.*", "--endpoint", url)
    assert errors(result(report, "service.endpoint")) == ["service.connection-refused"]
    step = result(report, "service.agent-step")
    assert step["status"] == "skip"
    assert [f["message"] for f in step["findings"]] == ["not run: service.endpoint failed"]
    refused = [f for r in report["results"] for f in r["findings"] if f["code"] == "service.connection-refused"]
    assert len(refused) == 1


@pytest.mark.usefixtures("clean_env")
def test_credentials_in_the_url_are_sent_as_basic_auth_and_never_printed(  # type: ignore[no-untyped-def]
    server: ScriptedServer, run_json
) -> None:
    url = server.url.replace("http://", "http://agent:pa55w0rd-in-url@")
    code, report = run_json("--pack", "open-autoglm-phone", "--only", "service.endpoint", "--endpoint", url)
    res = result(report, "service.endpoint")
    assert res["status"] == "pass", res
    expected = "Basic " + base64.b64encode(b"agent:pa55w0rd-in-url").decode()
    assert [r["auth"] for r in server.requests] == [expected, expected]
    assert "pa55w0rd" not in json.dumps(report)
    server.script.served = ["other-model"]  # a failure quotes the host: still no password
    code, report = run_json("--pack", "open-autoglm-phone", "--only", "service.endpoint", "--endpoint", url)
    assert errors(result(report, "service.endpoint")) == ["service.model-not-served"]
    assert "pa55w0rd" not in json.dumps(report) and "does not resolve" not in json.dumps(report)


@pytest.mark.usefixtures("clean_env")
def test_a_refused_token_is_not_called_a_missing_one(  # type: ignore[no-untyped-def]
    server: ScriptedServer, run_json, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.script.token = "the-servers-token"
    monkeypatch.setenv("PHONE_AGENT_API_KEY", "an-old-token-value")
    code, report = run_json("--pack", "open-autoglm-phone", "--only", "service.endpoint", "--endpoint", server.url)
    res = result(report, "service.endpoint")
    assert errors(res) == ["service.token-refused"]
    assert "does not accept the token the client sends" in res["findings"][0]["message"]
    assert "does not send" not in res["findings"][0]["message"]
    monkeypatch.delenv("PHONE_AGENT_API_KEY")
    code, report = run_json("--pack", "open-autoglm-phone", "--only", "service.endpoint", "--endpoint", server.url)
    res = result(report, "service.endpoint")  # unset: the client still sends its default, EMPTY (QA P3.16)
    assert errors(res) == ["service.token-refused"]
    message = res["findings"][0]["message"]
    assert "PHONE_AGENT_API_KEY is unset: the client sends its default 'EMPTY'" in message, message
    assert [r["auth"] for r in server.requests[-1:]] == ["Bearer EMPTY"]
    # a client whose main.py defaults the key to "" sends none: that one is a missing token
    write_checkout(Path.cwd(), 'os.getenv("PHONE_AGENT_API_KEY", "")')
    code, report = run_json("--pack", "open-autoglm-phone", "--only", "service.endpoint", "--endpoint", server.url)
    assert errors(result(report, "service.endpoint")) == ["service.unauthorized"]
    assert server.requests[-1]["auth"] is None


def write_checkout(root: Path, key_default: str) -> None:
    """An Open-AutoGLM-shaped checkout in ``root``: main.py reading the key as ``key_default``, and phone_agent/."""
    (root / "phone_agent").mkdir(exist_ok=True)
    (root / "phone_agent" / "__init__.py").write_text("raise SystemExit('imported')\n")
    (root / "main.py").write_text(
        "import argparse\nimport os\n\nparser = argparse.ArgumentParser()\n"
        f'parser.add_argument("--apikey", type=str, default={key_default})\n'
        "raise SystemExit('run')\n"
    )


@pytest.mark.usefixtures("clean_env")
def test_an_unset_api_key_is_sent_as_the_clients_default(server: ScriptedServer, run_json) -> None:  # type: ignore[no-untyped-def]
    # QA P3.16: Open-AutoGLM's main.py sends Bearer EMPTY when PHONE_AGENT_API_KEY is unset; a server whose
    # --api-key is EMPTY accepts it, and the doctor must not say the client sends no token
    server.script.token = "EMPTY"
    code, report = run_json("--pack", "open-autoglm-phone", "--only", "service.endpoint", "--endpoint", server.url)
    res = result(report, "service.endpoint")
    assert res["status"] == "pass", res
    assert [r["auth"] for r in server.requests] == ["Bearer EMPTY", "Bearer EMPTY"]
    # the default is read from the client's own main.py where a checkout is the working directory
    write_checkout(Path.cwd(), 'os.getenv("PHONE_AGENT_API_KEY", "sk-local")')
    server.script.token = "sk-local"
    code, report = run_json("--pack", "open-autoglm-phone", "--only", "service.endpoint", "--endpoint", server.url)
    assert result(report, "service.endpoint")["status"] == "pass"
    assert server.requests[-1]["auth"] == "Bearer sk-local"


class _HangsUpOnCompletion(BaseHTTPRequestHandler):
    """Lists the model, then closes the connection in the middle of the completion request (a crashing server)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        data = json.dumps({"object": "list", "data": [{"id": "autoglm-phone-9b", "max_model_len": 25480}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.connection.close()  # RST: the server process died mid-request
        self.close_connection = True


@pytest.mark.usefixtures("clean_env")
def test_a_connection_reset_mid_request_points_at_the_servers_log(run_json) -> None:  # type: ignore[no-untyped-def]
    http, stop = serve_in_thread(_HangsUpOnCompletion)
    try:
        url = f"http://127.0.0.1:{http.server_address[1]}/v1"
        code, report = run_json("--pack", "open-autoglm-phone", "--only", "service.endpoint", "--endpoint", url)
    finally:
        stop()
    res = result(report, "service.endpoint")
    assert errors(res) == ["service.connection-reset"], res
    finding = res["findings"][0]
    assert "the server closed the connection during the request: see its log" in finding["message"]
    assert "proxies" not in finding["fix"] and "PROXY" not in finding["fix"]


MULTI_DISPLAY_WARNING = (
    b"[Warning] Multiple displays were found, but no display id was specified! Defaulting to the first display "
    b"found, however this default is not guaranteed to be consistent across captures. A display id should be "
    b"specified.\nA display id can be specified with the [-d display-id] option.\n"
    b'See "dumpsys SurfaceFlinger --display-id" for valid display IDs.\n'
)


@pytest.fixture
def fake_adb(tmp_path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from autoglm_doctor.phone.screenshot import synthetic_png

    fixtures = Path(__file__).parent / "fixtures" / "adb"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    adb = bin_dir / "adb"
    adb.write_text(f"#!{sys.executable}\n" + (fixtures / "fake_adb.py").read_text())
    adb.chmod(0o755)
    files = tmp_path / "files"
    files.mkdir()
    png = synthetic_png()
    (files / "multi-display.bin").write_bytes(MULTI_DISPLAY_WARNING + png)
    (files / "cut-off.bin").write_bytes(MULTI_DISPLAY_WARNING + png[:300])
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_ADB_FILES", str(files))
    monkeypatch.setenv("PHONE_AGENT_DEVICE_TYPE", "adb")
    monkeypatch.delenv("PHONE_AGENT_DEVICE_ID", raising=False)

    def use(name: str) -> None:
        monkeypatch.setenv("FAKE_ADB_FIXTURE", str(fixtures / f"{name}.json"))

    return use


@pytest.mark.usefixtures("clean_env")
def test_binary_screenshot_output_is_never_printed_raw(fake_adb, server: ScriptedServer, run_json) -> None:  # type: ignore[no-untyped-def]
    fake_adb("binary-screenshot-failure")
    code, report = run_json("--pack", "open-autoglm-phone", "--only", "service.agent-step", "--endpoint", server.url)
    step = result(report, "service.agent-step")
    assert errors(step) == ["service.screenshot-failed"]
    message = step["findings"][0]["message"]
    assert "bytes of binary output, first printable line: [Warning] Multiple displays were found" in message
    shown = json.dumps(report)
    assert "\\u0089PNG" not in shown and "IHDR" not in shown and "\\ufffd" not in shown


@pytest.mark.usefixtures("clean_env")
def test_a_screenshot_after_screencaps_display_warning_is_used(fake_adb, server: ScriptedServer, run_json) -> None:  # type: ignore[no-untyped-def]
    fake_adb("multi-display")
    code, report = run_json("--pack", "open-autoglm-phone", "--only", "service.agent-step", "--endpoint", server.url)
    step = result(report, "service.agent-step")
    assert step["status"] == "pass", step
    note = next(f for f in step["findings"] if f["code"] == "service.screenshot-note")
    assert note["message"].endswith(
        "[Warning] Multiple displays were found, but no display id was specified! "
        "Defaulting to the first display found, however this default is not guaranteed "
        "to be consistent across captures. A display id should be specified."
    )
    assert "IHDR" not in json.dumps(report)


@pytest.mark.usefixtures("clean_env")
def test_unset_base_url_is_probed_at_the_clients_default(server: ScriptedServer, run_json, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # the built-in client pack: its default is the client's own (main.py: http://localhost:8000/v1)
    code, report = run_json("--pack", "open-autoglm-phone", "--only", "service.endpoint", "--endpoint-timeout", "2")
    res = result(report, "service.endpoint")
    assert res["status"] != "skip"  # tested, not skipped
    note = next(f for f in res["findings"] if f["code"] == "service.client-default")
    assert "PHONE_AGENT_BASE_URL is not set: http://localhost:8000/v1 is probed" in note["message"]
    # a pack whose client default is this server: the default is what gets asked, and it answers
    pack = tmp_path / "client.yaml"
    pack.write_text(
        "pack: client\ndescription: test\nenv:\n  PHONE_AGENT_BASE_URL:\n    format: url\n"
        f'    default: "{server.url}"\nservice:\n  model: autoglm-phone-9b\n  timeout: 2\n'
    )
    code, report = run_json("--pack", str(pack), "--only", "service.endpoint")
    res = result(report, "service.endpoint")
    assert res["status"] == "pass", res
    assert [r["path"] for r in server.requests] == ["/v1/models", "/v1/chat/completions"]


@pytest.mark.usefixtures("clean_env")
def test_strict_never_passes_a_run_that_tested_nothing(run_json, capsys) -> None:  # type: ignore[no-untyped-def]
    from autoglm_doctor.cli import main

    code, report = run_json("--pack", "open-autoglm", "--only", "service.auth", "--strict")
    assert result(report, "service.auth")["status"] == "skip"
    assert (code, report["status"]) == (1, "fail")
    assert main(["check", "--no-smoke", "--pack", "open-autoglm", "--only", "service.auth", "--strict"]) == 1
    assert "every selected check was skipped, nothing was tested" in capsys.readouterr().out
    code, report = run_json("--pack", "open-autoglm", "--only", "service.auth")
    assert (code, report["status"]) == (0, "pass")  # without --strict a skip fails nothing


@pytest.mark.usefixtures("clean_env")
def test_server_role_hints_name_the_launch_commands_settings(  # type: ignore[no-untyped-def]
    server: ScriptedServer, run_json, monkeypatch: pytest.MonkeyPatch
) -> None:
    # QA P2.9: on the server role the hints named the client's PHONE_AGENT_* variables, and a server serving
    # another model was a warning there but an error on the client role
    from tests.helpers.served import README_LAUNCH

    monkeypatch.delenv("PHONE_AGENT_MODEL")
    Path("serve.sh").write_text(README_LAUNCH)
    server_role = ("--pack", "open-autoglm-server", "--config", "serve.sh", "--only", "service.*")
    code, report = run_json(*server_role)
    res = result(report, "service.endpoint")
    assert res["status"] == "skip"
    assert res["findings"][0]["message"] == (
        "no endpoint: pass --endpoint http://localhost:8000/v1 (serve.sh's --host/--port) once the server runs"
    )
    server.script.served = ["glm-4.1v"]
    code, report = run_json(*server_role, "--endpoint", server.url)
    res = result(report, "service.endpoint")
    assert errors(res) == ["service.model-not-served"]
    finding = res["findings"][0]
    assert finding["message"] == "serve.sh's --served-model-name is 'autoglm-phone-9b' but the server serves 'glm-4.1v'"
    assert "--served-model-name autoglm-phone-9b" in finding["fix"] and "PHONE_AGENT" not in finding["fix"]
    auth = result(report, "service.auth")
    assert auth["findings"][0]["message"] == (
        "nothing requires a token: serve.sh starts the server without --api-key, and pack open-autoglm-server "
        "does not set service.require_token"
    )
    # the same server on the client role: the same severity (error), the client's variable in the fix
    code, report = run_json("--pack", "open-autoglm-phone", "--only", "service.endpoint", "--endpoint", server.url)
    client = result(report, "service.endpoint")
    assert errors(client) == ["service.model-not-served"]
    assert client["findings"][0]["fix"].startswith("export PHONE_AGENT_MODEL=glm-4.1v")
    # nothing listening: start what serve.sh starts, not "correct PHONE_AGENT_BASE_URL"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        code, report = run_json(*server_role, "--endpoint", url)
    refused = result(report, "service.endpoint")["findings"][0]
    assert refused["code"] == "service.connection-refused"
    assert refused["fix"] == "start the server (serve.sh; it listens at http://localhost:8000/v1) or correct --endpoint"
    # a refused token: serve.sh's --api-key, not the client's variable alone
    server.script.served = ["autoglm-phone-9b"]
    server.script.token = "the-servers-token"
    code, report = run_json(*server_role, "--endpoint", server.url)
    refused = result(report, "service.endpoint")["findings"][0]
    assert refused["code"] == "service.token-refused"
    assert refused["fix"].startswith("the server checks the token against serve.sh's --api-key")


@pytest.mark.usefixtures("clean_env")
def test_in_process_role_hints_name_its_config(run_json) -> None:  # type: ignore[no-untyped-def]
    # QA P2.9: the in-process deployment's hints named the client's PHONE_AGENT_BASE_URL
    Path("deploy.yaml").write_text("host: 0.0.0.0\nport: 8080\nauth:\n  require_token: true\n")
    code, report = run_json("--pack", "open-autoglm", "--config", "deploy.yaml", "--only", "service.*")
    for check_id in ("service.endpoint", "service.auth"):
        res = result(report, check_id)
        assert res["status"] == "skip"
        message = res["findings"][0]["message"]
        assert (
            message
            == "no endpoint: pass --endpoint http://localhost:8080 (deploy.yaml's host/port) once the service runs"
        )
        assert "PHONE_AGENT" not in message
