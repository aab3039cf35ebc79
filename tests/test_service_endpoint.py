"""service.endpoint and service.auth against a scripted OpenAI-compatible server on 127.0.0.1.

The scripted server (tests/helpers/openai_servers.py) streams like vLLM and answers with the exact error
bodies real servers send in situations no server here can be put in; each test names the message
it reproduces and where it comes from. The healthy path against a real server is in
test_service_transformers_serve.py.
"""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor.phone.screenshot import png_size
from tests.conftest import result
from tests.helpers.openai_servers import ScriptedServer, forwarding_proxy, scripted_server

FAST_PACK = """
pack: open-autoglm-phone
description: "test pack: the served phone agent, short timeouts"
service:
  model: autoglm-phone-9b
  timeout: 2
  step_budget: 1
"""

STRICT_PACK = FAST_PACK + "  action_required: true\n"

PROMPT_MODULE = '''"""System prompts for the AI agent (trimmed from Open-AutoGLM's phone_agent/config/prompts_zh.py)."""

import this_module_is_never_imported_by_the_doctor  # noqa: F401

from datetime import datetime

today = datetime.today()
formatted_date = today.strftime("%Y年%m月%d日")

SYSTEM_PROMPT = (
    "今天的日期是: "
    + formatted_date
    + """
你是一个智能体分析专家，可以根据操作历史和当前状态图执行一系列操作来完成任务。
你必须严格按照要求输出以下格式：
<think>{think}</think>
<answer>{action}</answer>
"""
)
'''


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    yield from scripted_server()


@pytest.fixture
def packs_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "packs"
    folder.mkdir()
    (folder / "fast.yaml").write_text(FAST_PACK)
    (folder / "strict.yaml").write_text(STRICT_PACK)
    return folder


@pytest.fixture
def ask(packs_dir: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch, run_json):  # type: ignore[no-untyped-def]
    """Run service.endpoint through the CLI; (exit code, its result)."""
    for name in ("PHONE_AGENT_BASE_URL", "PHONE_AGENT_API_KEY", "PHONE_AGENT_MODEL", "PHONE_AGENT_LANG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PHONE_AGENT_MODEL", "autoglm-phone-9b")

    def run(*args: str, pack: str = "fast", check: str = "service.endpoint") -> tuple[int, dict[str, Any]]:
        chosen = pack if pack == "open-autoglm-phone" else str(packs_dir / f"{pack}.yaml")
        code, report = run_json("--pack", chosen, "--only", check, *args)
        return code, result(report, check)

    return run


def errors(res: dict[str, Any]) -> list[str]:
    return [f["code"] for f in res["findings"] if f["severity"] == "error"]


def test_healthy_endpoint_passes_and_asks_like_the_agent(server: ScriptedServer, ask) -> None:  # type: ignore[no-untyped-def]
    code, res = ask("--endpoint", server.url, pack="open-autoglm-phone")
    assert (code, res["status"]) == (0, "pass"), res
    assert [r["path"] for r in server.requests] == ["/v1/models", "/v1/chat/completions"]
    body = server.requests[1]["body"]
    assert body["stream"] is True and body["temperature"] == 0 and body["max_tokens"] == 3000
    assert body["model"] == "autoglm-phone-9b"
    system, user = body["messages"]
    assert system["role"] == "system" and "<answer>" in system["content"] and "do(action=" in system["content"]
    image, text = user["content"]
    assert image["type"] == "image_url" and text["type"] == "text"
    url = image["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert png_size(base64.b64decode(url.partition(",")[2])) == (1080, 2400)
    assert "current_app" in text["text"]
    answered = next(f for f in res["findings"] if f["code"] == "service.answered")
    assert "first token after" in answered["message"]
    assert (
        "the doctor's own instruction"
        in next(f for f in res["findings"] if f["code"] == "service.system-prompt")["message"]
    )


def test_the_installed_clients_prompt_is_read_as_text_and_sent(  # type: ignore[no-untyped-def]
    server: ScriptedServer, ask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "src"
    (source / "phone_agent" / "config").mkdir(parents=True)
    (source / "phone_agent" / "__init__.py").write_text("raise SystemExit('imported')\n")
    (source / "phone_agent" / "config" / "prompts_zh.py").write_text(PROMPT_MODULE, encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(source))  # on the target interpreter's sys.path, as `pip install -e` puts it
    code, res = ask("--endpoint", server.url)
    assert res["status"] == "pass", res
    sent = server.requests[1]["body"]["messages"][0]["content"]
    assert sent.startswith("今天的日期是: ") and "你是一个智能体分析专家" in sent and "{think}" in sent
    assert time.strftime("%Y") in sent  # the date the module computes at import, filled in without importing it
    note = next(f for f in res["findings"] if f["code"] == "service.system-prompt")
    assert "prompts_zh.py" in note["message"]


def test_an_installed_client_without_prompt_files_is_not_called_missing(  # type: ignore[no-untyped-def]
    server: ScriptedServer, ask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # QA P3.17: a phone_agent without config/prompts*.py was reported as "phone_agent is not installed"
    source = tmp_path / "src"
    (source / "phone_agent").mkdir(parents=True)
    (source / "phone_agent" / "__init__.py").write_text("")
    site = source / "phone_agent-0.1.0.dist-info"
    site.mkdir()
    (site / "METADATA").write_text("Metadata-Version: 2.1\nName: phone-agent\nVersion: 0.1.0\n")
    (site / "top_level.txt").write_text("phone_agent\n")
    monkeypatch.setenv("PYTHONPATH", str(source))
    code, res = ask("--endpoint", server.url)
    assert res["status"] == "pass", res
    note = next(f for f in res["findings"] if f["code"] == "service.system-prompt")["message"]
    assert "not installed" not in note
    assert f"phone_agent is installed at {source / 'phone_agent'}" in note
    assert "config/prompts_zh.py or config/prompts.py" in note


def test_image_refused(server: ScriptedServer, ask) -> None:  # type: ignore[no-untyped-def]
    # vLLM's multimodal input check, a server started without --limit-mm-per-prompt for images
    # (vllm/multimodal/processing.py: "At most {limit} {modality}(s) may be provided in one request.")
    server.script.status = 400
    server.script.error_body = {
        "object": "error",
        "message": "At most 0 image(s) may be provided in one request.",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }
    code, res = ask("--endpoint", server.url)
    assert (code, errors(res)) == (1, ["service.image-refused"])
    assert "At most 0 image(s) may be provided in one request." in res["findings"][0]["message"]
    assert "--limit-mm-per-prompt" in res["findings"][0]["fix"]


def test_image_processing_failed(server: ScriptedServer, ask) -> None:  # type: ignore[no-untyped-def]
    # GLM-4.1V's image processor raising inside the server (transformers/models/glm4v/image_processing_glm4v.py,
    # smart_resize: f"t:{num_frames} must be larger than temporal_factor:{temporal_factor}"), as vLLM's 500 reports it
    server.script.status = 500
    server.script.error_body = {
        "object": "error",
        "message": "ValueError: t:1 must be larger than temporal_factor:2",
        "type": "InternalServerError",
        "param": None,
        "code": 500,
    }
    code, res = ask("--endpoint", server.url)
    assert errors(res) == ["service.image-failed"]
    assert '"ValueError: t:1 must be larger than temporal_factor:2"' in res["findings"][0]["message"]
    assert "transformers" in res["findings"][0]["fix"]


def test_context_too_small_from_the_model_card_before_sending(server: ScriptedServer, ask) -> None:  # type: ignore[no-untyped-def]
    server.script.max_model_len = 4096  # vLLM lists max_model_len in /v1/models
    code, res = ask("--endpoint", server.url, pack="open-autoglm-phone")
    assert errors(res) == ["service.context-too-small"]
    finding = res["findings"][0]
    assert "4096 tokens" in finding["message"] and "3000" in finding["message"]
    assert "--max-model-len 25480" in finding["fix"]
    assert [r["path"] for r in server.requests] == ["/v1/models"]  # nothing sent that cannot fit


def test_context_too_small_from_the_servers_400(server: ScriptedServer, ask) -> None:  # type: ignore[no-untyped-def]
    # vLLM's serving_engine.py length check when /v1/models does not say max_model_len (an older server)
    server.script.max_model_len = None
    server.script.status = 400
    server.script.error_body = {
        "object": "error",
        "message": "This model's maximum context length is 4096 tokens. However, you requested 6421 tokens "
        "(3421 in the messages, 3000 in the completion). Please reduce the length of the messages or completion.",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }
    code, res = ask("--endpoint", server.url)
    assert errors(res) == ["service.context-too-small"]
    assert "maximum context length is 4096 tokens" in res["findings"][0]["message"]


def test_prose_reply_warns_and_fails_where_an_action_is_required(server: ScriptedServer, ask) -> None:  # type: ignore[no-untyped-def]
    server.script.reply = "Sure! To open the Settings app, swipe up and tap the gear icon."
    code, res = ask("--endpoint", server.url)
    assert (code, res["status"]) == (0, "warn")
    assert "service.not-an-action" in [f["code"] for f in res["findings"] if f["severity"] == "warning"]
    code, res = ask("--endpoint", server.url, pack="strict")
    assert (code, errors(res)) == (1, ["service.not-an-action"])


def test_hung_completion_fails_within_the_default_timeout(server: ScriptedServer, ask) -> None:  # type: ignore[no-untyped-def]
    server.script.hang = True  # accepts the completion and never answers (a wedged engine)
    started = time.monotonic()
    code, res = ask("--endpoint", server.url, pack="open-autoglm-phone")
    took = time.monotonic() - started
    assert errors(res) == ["service.timeout"]
    assert "within 12 s" in res["findings"][0]["message"]
    assert took < 30, took  # it was 60.5 s before: the served checks together stay under 30 s


def test_slow_step_warns_over_the_budget(server: ScriptedServer, ask) -> None:  # type: ignore[no-untyped-def]
    server.script.delay = 1.2
    code, res = ask("--endpoint", server.url)
    assert res["status"] == "warn"
    slow = next(f for f in res["findings"] if f["code"] == "service.slow-step")
    assert "step budget of 1 s" in slow["message"]


def test_skips_without_an_endpoint(ask) -> None:  # type: ignore[no-untyped-def]
    code, res = ask()
    assert res["status"] == "skip"
    assert "--endpoint" in res["findings"][0]["message"]


def test_endpoint_flag_wins_over_the_environment(server: ScriptedServer, ask, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PHONE_AGENT_BASE_URL", "http://127.0.0.1:9/v1")
    assert ask("--endpoint", server.url)[1]["status"] == "pass"


def test_wrong_served_name(server: ScriptedServer, ask) -> None:  # type: ignore[no-untyped-def]
    server.script.served = ["glm-4v"]
    code, res = ask("--endpoint", server.url)
    assert errors(res) == ["service.model-not-served"]
    fix = res["findings"][0]["fix"]
    assert "export PHONE_AGENT_MODEL=glm-4v" in fix and "--served-model-name autoglm-phone-9b" in fix


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ("  ", "service.empty-reply"),
        ("\ufffd\ufffd\x00\x01 \ufffd##@@ \ufffd", "service.garbled-reply"),
        ("the the the the the the the the", "service.garbled-reply"),
    ],
)
def test_unsound_replies_fail(server: ScriptedServer, ask, reply: str, code: str) -> None:  # type: ignore[no-untyped-def]
    server.script.reply = reply
    res = ask("--endpoint", server.url)[1]
    assert errors(res) == [code]
    assert reply.strip() == "" or reply not in res["findings"][0]["message"]  # judged, not printed


def test_nothing_listening(ask) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: the connection is refused
        res = ask("--endpoint", f"http://127.0.0.1:{port}/v1")[1]
    assert errors(res) == ["service.connection-refused"]
    assert "vllm serve" in res["findings"][0]["fix"]


def test_dns_failure(ask) -> None:  # type: ignore[no-untyped-def]
    assert errors(ask("--endpoint", "http://no-such-host.invalid/v1")[1]) == ["service.dns-failure"]


def test_http_error_and_missing_v1(server: ScriptedServer, ask) -> None:  # type: ignore[no-untyped-def]
    base = server.url.removesuffix("/v1")
    res = ask("--endpoint", base)[1]
    assert errors(res) == ["service.http-error"]
    assert f"PHONE_AGENT_BASE_URL={base}/v1" in res["findings"][0]["fix"]
    server.script.status = 503
    server.script.error_body = {"detail": "Service Unavailable"}
    res = ask("--endpoint", server.url)[1]
    assert errors(res) == ["service.http-error"]
    assert "HTTP 503" in res["findings"][0]["message"]


def test_token_is_sent_from_the_live_environment(server: ScriptedServer, ask, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    server.script.token = "s3cr3t-token-value"
    monkeypatch.setenv("PHONE_AGENT_API_KEY", "s3cr3t-token-value")
    code, res = ask("--endpoint", server.url)
    assert res["status"] == "pass", res
    assert all("s3cr3t" not in f["message"] for f in res["findings"])
    monkeypatch.delenv("PHONE_AGENT_API_KEY")  # unset: the client sends its default, which this server refuses
    assert errors(ask("--endpoint", server.url)[1]) == ["service.token-refused"]
    assert server.requests[-1]["auth"] == "Bearer EMPTY"


def test_concurrency_reports_latency_percentiles(server: ScriptedServer, ask) -> None:  # type: ignore[no-untyped-def]
    res = ask("--endpoint", server.url, "--endpoint-concurrency", "8")[1]
    conc = next(f for f in res["findings"] if f["code"] == "service.concurrency")
    assert "8 concurrent requests: 8 answered" in conc["message"] and "p95" in conc["message"]
    assert len(server.requests) == 2 + 8


def test_auth_required_and_enforced(server: ScriptedServer, ask, tmp_path: Path, run_json) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "work" / "deploy.yaml"
    config.write_text("auth:\n  require_token: true\n")
    server.script.token = "t0ken"
    res = ask("--endpoint", server.url, "--config", str(config), check="service.auth")[1]
    assert [f["code"] for f in res["findings"]] == ["service.auth-enforced"]
    assert server.requests == [{"path": "/v1/models", "auth": None}]  # asked without a token
    server.script.token = None
    res = ask("--endpoint", server.url, "--config", str(config), check="service.auth")[1]
    assert errors(res) == ["service.auth-not-enforced"]
    # the requirement is cited from where it came, by name; an in-process config's fix names that config (QA P2.9)
    finding = res["findings"][0]
    assert "(deploy.yaml:2 sets auth.require_token: true)" in finding["message"]
    assert "deploy.yaml's auth.require_token" in finding["fix"] and "--api-key" not in finding["fix"]
    # the pack's key, by the pack's name
    pack = tmp_path / "work" / "tokens.yaml"
    pack.write_text("pack: tokens\ndescription: test\nservice:\n  model: autoglm-phone-9b\n  require_token: true\n")
    code, report = run_json("--pack", str(pack), "--only", "service.auth", "--endpoint", server.url)
    finding = result(report, "service.auth")["findings"][0]
    assert "(pack tokens sets service.require_token: true)" in finding["message"], finding


def test_auth_skips_when_no_token_is_required(server: ScriptedServer, ask) -> None:  # type: ignore[no-untyped-def]
    assert ask("--endpoint", server.url, check="service.auth")[1]["status"] == "skip"


def test_live_checks_skip_from_a_snapshot(server: ScriptedServer, ask, tmp_path: Path, run_json) -> None:  # type: ignore[no-untyped-def]
    from autoglm_doctor.cli import main

    snap = tmp_path / "snap.json"
    assert main(["snapshot", "-o", str(snap)]) == 0
    code, report = run_json(
        "--snapshot", str(snap), "--pack", "open-autoglm-phone", "--endpoint", server.url, "--only", "service.*"
    )
    assert {r["status"] for r in report["results"]} == {"skip"}
    assert server.requests == []


def test_requests_go_through_the_proxy_the_environment_names(  # type: ignore[no-untyped-def]
    server: ScriptedServer, ask, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the client's OpenAI SDK (httpx) honours HTTP_PROXY/NO_PROXY; so do both of the doctor's requests
    log: list[str] = []
    proxy, stop = forwarding_proxy(log)
    try:
        for name in ("http_proxy", "HTTP_PROXY"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.server_address[1]}")
        for name in ("no_proxy", "NO_PROXY"):
            monkeypatch.delenv(name, raising=False)
        code, res = ask("--endpoint", server.url)
        assert res["status"] == "pass", res["findings"]
        assert log == [f"GET {server.url}/models", f"POST {server.url}/chat/completions"]
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert ask("--endpoint", server.url)[1]["status"] == "pass"
        assert len(log) == 2  # NO_PROXY names the host: straight to the server
    finally:
        stop()
