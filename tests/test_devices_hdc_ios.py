"""devices.hdc, devices.ios and service.agent-step on each device type, through the CLI.

Only the devices are fake: an hdc on PATH replaying outputs recorded from a HarmonyOS phone, and a
WebDriverAgent stub on loopback answering /status and /screenshot as WDA does. Both log every
command; the tests assert that only reading commands were sent. The model server is the scripted
loopback server (the real-server path is in test_service_transformers_serve.py).
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import result
from tests.helpers.openai_servers import ScriptedServer, free_port, scripted_server, wda_stub
from tests.helpers.venvs import Venv

FIXTURES = Path(__file__).parent / "fixtures"
HDC_FILE = "/data/local/tmp/autoglm-doctor-screen.jpeg"
HDC_READING = {
    "hdc list targets",
    f"hdc -t FMR0223C13000649 shell snapshot_display -f {HDC_FILE}",
    f"hdc -t FMR0223C13000649 file recv {HDC_FILE}",
    f"hdc -t FMR0223C13000649 shell rm -f {HDC_FILE}",  # the doctor's own file, nothing else
}


def _image(fmt: str, size: tuple[int, int]) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, (250, 250, 250))
    ImageDraw.Draw(image).rectangle((100, 300, 500, 700), fill=(30, 120, 220))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    yield from scripted_server()


@pytest.fixture
def env(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("PHONE_AGENT_BASE_URL", "PHONE_AGENT_API_KEY", "PHONE_AGENT_DEVICE_ID", "PHONE_AGENT_WDA_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PHONE_AGENT_MODEL", "autoglm-phone-9b")
    return monkeypatch


@pytest.fixture
def fake_hdc(tmp_path: Path, env: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """An hdc on PATH replaying tests/fixtures/hdc/NAME.json; returns (use(NAME), log path)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    hdc = bin_dir / "hdc"
    hdc.write_text(f"#!{sys.executable}\n" + (FIXTURES / "adb" / "fake_adb.py").read_text())
    hdc.chmod(0o755)
    files = tmp_path / "files"
    files.mkdir()
    (files / "screen.jpeg").write_bytes(_image("JPEG", (1260, 2720)))
    log = tmp_path / "hdc.log"
    env.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    env.setenv("FAKE_ADB_FILES", str(files))
    env.setenv("FAKE_ADB_LOG", str(log))
    env.setenv("PHONE_AGENT_DEVICE_TYPE", "hdc")

    def use(name: str) -> Path:
        env.setenv("FAKE_ADB_FIXTURE", str(FIXTURES / "hdc" / f"{name}.json"))
        return log

    return use


@pytest.fixture
def wda(env: pytest.MonkeyPatch) -> Iterator[list[str]]:
    log: list[str] = []
    http, stop = wda_stub(_image("PNG", (1179, 2556)), log)
    env.setenv("PHONE_AGENT_DEVICE_TYPE", "ios")
    env.setenv("PHONE_AGENT_WDA_URL", f"http://127.0.0.1:{http.server_address[1]}")
    yield log
    stop()


def check(run_json, check_id: str, *args: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return result(run_json("--pack", "open-autoglm-phone", "--only", check_id, *args)[1], check_id)


def errors(res: dict[str, Any]) -> list[str]:
    return [f["code"] for f in res["findings"] if f["severity"] == "error"]


def test_hdc_ready_and_one_agent_step(fake_hdc, server: ScriptedServer, run_json) -> None:  # type: ignore[no-untyped-def]
    log = fake_hdc("ready")
    res = check(run_json, "devices.hdc")
    assert res["status"] == "pass", res
    assert "FMR0223C13000649" in res["findings"][0]["message"]
    step = check(run_json, "service.agent-step", "--endpoint", server.url)
    assert step["status"] == "pass", step
    assert step["findings"][-1]["message"].startswith(
        'hdc FMR0223C13000649: a 1260x2720 screenshot → do(action="Launch"'
    )
    sent = server.requests[-1]["body"]["messages"][1]["content"][0]["image_url"]["url"]
    assert sent.startswith("data:image/jpeg;base64,")
    commands = {" ".join(line.split()[:-1]) if " file recv " in line else line for line in log.read_text().splitlines()}
    assert commands <= HDC_READING, commands


def test_hdc_missing(env: pytest.MonkeyPatch, tmp_path: Path, run_json) -> None:  # type: ignore[no-untyped-def]
    env.setenv("PATH", str(tmp_path))
    env.setenv("PHONE_AGENT_DEVICE_TYPE", "hdc")
    res = check(run_json, "devices.hdc")
    assert errors(res) == ["devices.hdc-missing"]
    assert "PATH" in res["findings"][0]["fix"]


def test_hdc_empty_and_ambiguous(fake_hdc, run_json, env: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    fake_hdc("empty")
    assert errors(check(run_json, "devices.hdc")) == ["devices.hdc-none"]
    fake_hdc("two-targets")
    res = check(run_json, "devices.hdc")
    assert errors(res) == ["devices.hdc-ambiguous"]
    assert res["findings"][0]["fix"] == "export PHONE_AGENT_DEVICE_ID=FMR0223C13000649"
    env.setenv("PHONE_AGENT_DEVICE_ID", "192.168.1.40:5555")
    assert check(run_json, "devices.hdc")["status"] == "pass"
    env.setenv("PHONE_AGENT_DEVICE_ID", "nope")
    assert errors(check(run_json, "devices.hdc")) == ["devices.hdc-selected-missing"]


def test_wda_ready_and_one_agent_step(wda: list[str], server: ScriptedServer, venv: Venv, run_json) -> None:  # type: ignore[no-untyped-def]
    res = check(run_json, "devices.ios", "--python", str(venv.python))
    assert errors(res) == ["devices.ios-requests-missing"]  # a bare environment: the client cannot reach WDA
    assert "-m pip install 'requests>=2.31.0'" in res["findings"][0]["fix"]
    venv.add("requests", "2.32.3")
    res = check(run_json, "devices.ios", "--python", str(venv.python))
    assert res["status"] == "pass", res
    assert "iOS 17.5.1" in res["findings"][-1]["message"]
    step = check(run_json, "service.agent-step", "--endpoint", server.url)
    assert step["status"] == "pass", step
    assert "a 1179x2556 screenshot" in step["findings"][-1]["message"]
    assert set(wda) <= {"GET /status", "GET /screenshot"}, wda  # no session, no taps: nothing but reads


def test_wda_down(env: pytest.MonkeyPatch, run_json, server: ScriptedServer) -> None:  # type: ignore[no-untyped-def]
    env.setenv("PHONE_AGENT_DEVICE_TYPE", "ios")
    env.setenv("PHONE_AGENT_WDA_URL", f"http://127.0.0.1:{free_port()}")
    res = check(run_json, "devices.ios")
    assert "devices.wda-down" in errors(res)
    assert "iproxy 8100 8100" in next(f["fix"] for f in res["findings"] if f["code"] == "devices.wda-down")
    step = check(run_json, "service.agent-step", "--endpoint", server.url)
    assert step["status"] == "skip" and "WebDriverAgent does not answer" in step["findings"][0]["message"]
    assert server.requests == []


def test_the_device_type_picks_the_check_that_must_pass(env: pytest.MonkeyPatch, run_json) -> None:  # type: ignore[no-untyped-def]
    env.delenv("PHONE_AGENT_DEVICE_TYPE", raising=False)
    report = run_json("--pack", "open-autoglm-phone", "--only", "devices.hdc,devices.ios")[1]
    for check_id, kind in (("devices.hdc", "hdc"), ("devices.ios", "ios")):
        res = result(report, check_id)
        assert res["status"] == "skip"
        message = res["findings"][0]["message"]
        # unset is not "'adb'": the message says what the variable is (QA P3.17)
        assert message.startswith("PHONE_AGENT_DEVICE_TYPE is unset: the client defaults to adb"), message
        assert f"(set it to {kind} to drive that device)" in message
        assert "is 'adb'" not in message
    env.setenv("PHONE_AGENT_DEVICE_TYPE", "ios")
    adb = result(run_json("--pack", "open-autoglm-phone", "--only", "devices.adb")[1], "devices.adb")
    assert adb["status"] == "skip"
    assert adb["findings"][0]["message"] == "PHONE_AGENT_DEVICE_TYPE is 'ios', not adb"


def test_agent_step_skips_without_an_endpoint_or_a_device(env: pytest.MonkeyPatch, tmp_path: Path, run_json) -> None:  # type: ignore[no-untyped-def]
    res = check(run_json, "service.agent-step")  # no endpoint given: the client's default is the one, no device
    assert res["status"] == "skip" and res["findings"][0]["message"].startswith("no device")
    env.setenv("PATH", str(tmp_path))
    env.delenv("PHONE_AGENT_DEVICE_TYPE", raising=False)
    res = check(run_json, "service.agent-step", "--endpoint", "http://127.0.0.1:9/v1")
    assert res["status"] == "skip" and "adb is not on PATH" in res["findings"][0]["message"]


@pytest.mark.parametrize(
    ("reply", "code", "said"),
    [
        (
            '<think>x</think><answer>do(action="Tap", element=[1200,40])</answer>',
            "service.action-out-of-range",
            "0..999",
        ),
        ('<think>x</think><answer>do(action="Click", element=[10,40])</answer>', "service.action-unknown", "'Click'"),
        ('<think>x</think><answer>do(action="Tap", element=[10,</answer>', "service.action-unparsed", "does not parse"),
        ("I would tap the gear icon to open the settings.", "service.action-missing", "no do(action="),
    ],
)
def test_agent_step_validates_the_action(  # type: ignore[no-untyped-def]
    wda: list[str], server: ScriptedServer, run_json, reply: str, code: str, said: str
) -> None:
    server.script.reply = reply
    step = check(run_json, "service.agent-step", "--endpoint", server.url)
    assert errors(step) == [code]
    assert said in step["findings"][0]["message"]
    assert set(wda) <= {"GET /status", "GET /screenshot"}  # parsed, never executed


def test_agent_step_on_a_protected_screen(
    env: pytest.MonkeyPatch, tmp_path: Path, server: ScriptedServer, run_json
) -> None:  # type: ignore[no-untyped-def]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    adb = bin_dir / "adb"
    adb.write_text(f"#!{sys.executable}\n" + (FIXTURES / "adb" / "fake_adb.py").read_text())
    adb.chmod(0o755)
    env.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    env.setenv("FAKE_ADB_FIXTURE", str(FIXTURES / "adb" / "protected-screen.json"))
    env.setenv("PHONE_AGENT_DEVICE_TYPE", "adb")
    step = check(run_json, "service.agent-step", "--endpoint", server.url)
    assert errors(step) == ["service.screenshot-failed"]
    assert "Status: -1" in step["findings"][0]["message"] and "protected" in step["findings"][0]["message"]
    assert server.requests == []  # nothing sent without a screenshot


def test_the_served_checks_together_stay_under_30_s_on_a_hung_server(  # type: ignore[no-untyped-def]
    wda: list[str], server: ScriptedServer, run_json, tmp_path: Path
) -> None:
    server.script.hang = True  # accepts every completion, never answers
    config = tmp_path / "work" / "deploy.yaml"
    config.write_text("auth:\n  require_token: true\n")  # service.auth runs too
    started = time.monotonic()
    report = run_json(
        "--pack", "open-autoglm-phone", "--endpoint", server.url, "--config", str(config), "--only", "service.*"
    )[1]
    took = time.monotonic() - started
    assert errors(result(report, "service.endpoint")) == ["service.timeout"]
    step = result(report, "service.agent-step")  # one failure, one finding: the step is not sent again
    assert (step["status"], step["findings"][0]["message"]) == ("skip", "not run: service.endpoint failed")
    assert result(report, "service.auth")["status"] == "fail"  # /models answers without a token here
    served = sum(r["duration_ms"] for r in report["results"] if r["id"].startswith("service.")) / 1000
    assert served < 30, served  # the served checks' own time; the whole run adds the probe's start-up
    assert took < 45, took


def test_wda_answering_deeply_nested_json_is_a_finding_not_a_crash(env: pytest.MonkeyPatch, run_json) -> None:  # type: ignore[no-untyped-def]
    import http.server
    import threading

    body = ('{"value": ' + "[" * 5000 + "]" * 5000 + "}").encode()

    class Nested(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Nested)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        env.setenv("PHONE_AGENT_DEVICE_TYPE", "ios")
        env.setenv("PHONE_AGENT_WDA_URL", f"http://127.0.0.1:{httpd.server_address[1]}")
        res = check(run_json, "devices.ios")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert res["status"] != "error", res  # the JSON is refused by the bounded decoder, not a RecursionError
