"""service.endpoint and service.agent-step against a real server: `transformers serve` with a tiny VLM.

The server is transformers' own OpenAI-compatible server (the `serving` extra) running the tiny
LLaVA of tests/helpers/tiny_vlm.py on the CPU (LLaVA, not GLM-4.1V: GLM-4.1V's processor needs
torchvision, which has no CPU build on this machine's index). It really decodes the data-URL
screenshot, runs the vision tower and streams what generate() makes. Only the phone is fake: an
adb on PATH replaying recorded outputs, with a real PNG (drawn by Pillow) as its screencap.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import codes, result
from tests.helpers.openai_servers import TransformersServe, start_transformers_serve
from tests.helpers.tiny_vlm import make_tiny_vlm

FIXTURES = Path(__file__).parent / "fixtures"

READING_COMMANDS = {"adb version", "adb devices -l", "adb -s 8a7f3c21 exec-out screencap -p"}
"""Everything the doctor may send a phone here: listing devices and streaming a screenshot."""


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TransformersServe]:
    folder = tmp_path_factory.mktemp("serve")
    model = make_tiny_vlm(folder / "tiny-llava")
    server = start_transformers_serve(model, folder / "serve.log")
    try:
        yield server
    finally:
        server.stop()
    assert server.process.poll() is not None  # stopped by its pid


def phone_screenshot() -> bytes:
    """A real PNG, encoded by Pillow (not by the doctor's own writer), phone-sized."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (1080, 2400), (245, 245, 245))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 1080, 80), fill=(20, 20, 20))
    for row in range(5):
        for column in range(4):
            x, y = 60 + column * 260, 400 + row * 300
            draw.rounded_rectangle((x, y, x + 180, y + 180), radius=40, fill=(40 * column, 90, 200 - 30 * row))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def fake_adb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An adb on PATH replaying tests/fixtures/adb/ready.json; returns the log of the commands it got."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    adb = bin_dir / "adb"
    adb.write_text(f"#!{sys.executable}\n" + (FIXTURES / "adb" / "fake_adb.py").read_text())
    adb.chmod(0o755)
    files = tmp_path / "files"
    files.mkdir()
    (files / "screen.png").write_bytes(phone_screenshot())
    log = tmp_path / "adb.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_ADB_FIXTURE", str(FIXTURES / "adb" / "ready.json"))
    monkeypatch.setenv("FAKE_ADB_FILES", str(files))
    monkeypatch.setenv("FAKE_ADB_LOG", str(log))
    return log


@pytest.fixture
def client_env(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> pytest.MonkeyPatch:
    for name in ("PHONE_AGENT_DEVICE_TYPE", "PHONE_AGENT_DEVICE_ID", "PHONE_AGENT_API_KEY", "PHONE_AGENT_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_endpoint_and_agent_step_pass(serve: TransformersServe, fake_adb: Path, client_env, run_json) -> None:  # type: ignore[no-untyped-def]
    client_env.setenv("PHONE_AGENT_MODEL", serve.model)
    client_env.setenv("PHONE_AGENT_BASE_URL", serve.url)
    code, report = run_json("--pack", "open-autoglm-phone", "--only", "service.endpoint,service.agent-step")
    endpoint, step = result(report, "service.endpoint"), result(report, "service.agent-step")
    assert endpoint["status"] == "pass", endpoint
    assert step["status"] == "pass", step
    assert code == 0
    answered = next(f for f in endpoint["findings"] if f["code"] == "service.answered")
    assert "1080x2400 screenshot, streamed, max_tokens 3000" in answered["message"]
    assert "first token after" in answered["message"] and "step" in answered["message"]
    taken = next(f for f in step["findings"] if f["code"] == "service.step")
    assert taken["message"].startswith('adb 8a7f3c21: a 1080x2400 screenshot → do(action="Tap", element=[500,500])')
    assert "not executed" in taken["message"]
    sent = fake_adb.read_text().splitlines()
    assert "adb -s 8a7f3c21 exec-out screencap -p" in sent
    assert set(sent) <= READING_COMMANDS, sent  # only reading commands reached the phone


def test_wrong_model_name_fails_naming_the_served_one(  # type: ignore[no-untyped-def]
    serve: TransformersServe, fake_adb: Path, client_env, run_json
) -> None:
    client_env.setenv("PHONE_AGENT_MODEL", "autoglm-phone-9b")
    code, report = run_json(
        "--pack", "open-autoglm-phone", "--endpoint", serve.url, "--only", "service.endpoint,service.agent-step"
    )
    assert code == 1
    assert codes(report, "service.endpoint") == ["service.model-not-served"]
    finding = result(report, "service.endpoint")["findings"][0]
    assert serve.model in finding["message"] and "'autoglm-phone-9b'" in finding["message"]
    assert f"export PHONE_AGENT_MODEL={serve.model}" in finding["fix"]
    # one failure, one finding: the step is not sent to a server that does not serve the model
    step = result(report, "service.agent-step")
    assert (step["status"], step["findings"][0]["message"]) == ("skip", "not run: service.endpoint failed")
