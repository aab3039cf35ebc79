"""Issue 23's endpoint reproductions, each through the CLI against a real server on 127.0.0.1.

Every run goes through :func:`tests.helpers.hostile.doctor`: exit 0/1/2, no traceback, within a
stated bound, under a 1 GiB address-space cap, no process left; no result may have status ``error``.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor.phone.actions import REPLY_MAX_CHARS
from tests.helpers.fake_tools import ADB_READY, fake_tool
from tests.helpers.hostile import doctor
from tests.helpers.openai_servers import ScriptedServer, scripted_server, serve_in_thread

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc: Linux")

MODEL = "autoglm-phone-9b"


def _pack(tmp_path: Path, timeout: float) -> Path:
    path = tmp_path / "pack.yaml"
    path.write_text(
        f"pack: open-autoglm-phone\ndescription: test\nservice:\n  model: {MODEL}\n  timeout: {timeout}\n"
        "  step_budget: 60\ndevices: {}\n",
        encoding="utf-8",
    )
    return path


def _check(
    tmp_path: Path, url: str, only: str, *, timeout: float, bound_s: float, env: dict[str, str] | None = None
) -> tuple[dict[str, Any], float]:
    """Run ``only`` against ``url``; (its result, seconds the run took)."""
    run = doctor(
        ["check", "--no-smoke", "--pack", str(_pack(tmp_path, timeout)), "--only", only, "--endpoint", url]
        + ["--format", "json"],
        cwd=tmp_path,
        env={"PHONE_AGENT_MODEL": MODEL, **(env or {})},
        bound_s=bound_s,
    )
    assert run.code in (0, 1), run.stderr
    results = json.loads(run.text)["results"]
    assert all(r["status"] != "error" for r in results), results
    (result,) = [r for r in results if r["id"] == only]
    return result, run.seconds


def _errors(result: dict[str, Any]) -> list[str]:
    return [f["code"] for f in result["findings"] if f["severity"] == "error"]


class _RawStream(BaseHTTPRequestHandler):
    """Lists the model; answers a completion with ``body`` (bytes, or a callable writing to the socket)."""

    protocol_version = "HTTP/1.0"  # no length, no chunked encoding: the stream ends when the connection does
    body: Any = b""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        data = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        body = type(self).body
        try:
            if callable(body):
                body(self.wfile)
            else:
                self.wfile.write(body)
        except OSError:  # the doctor hung up: what it should do
            pass


def _raw_server(body: Any) -> Iterator[str]:
    handler = type("Handler", (_RawStream,), {"body": body})
    server, stop = serve_in_thread(handler)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        stop()


def test_a_chunk_whose_choices_are_strings_is_not_the_openai_shape(tmp_path: Path) -> None:
    """Was: check.crashed, "AttributeError: 'str' object has no attribute 'get'" in service.endpoint."""
    for url in _raw_server(b'data: {"choices": ["do(action=\\"Home\\")", "b"]}\n\ndata: [DONE]\n\n'):
        result, _ = _check(tmp_path, url, "service.endpoint", timeout=10, bound_s=30)
    assert _errors(result) == ["service.bad-reply"]
    message = result["findings"][0]["message"]
    assert "not the OpenAI shape of a stream chunk: choices[0] is a string" in message, message


def test_a_stream_trickled_without_framing_ends_at_the_deadline(tmp_path: Path) -> None:
    """1 byte/s, no length, no chunked encoding: was 150 s while the report said 12; now the deadline holds."""

    def trickle(out: Any) -> None:
        for _ in range(300):
            out.write(b"d")
            out.flush()
            time.sleep(1)

    for url in _raw_server(trickle):
        started = time.monotonic()
        result, seconds = _check(tmp_path, url, "service.endpoint", timeout=3, bound_s=40)
        took = time.monotonic() - started
    assert _errors(result) == ["service.timeout"]
    # the server answered (its headers came): not "got nothing" (QA P3.17)
    assert "an agent step to 127.0.0.1:" in result["findings"][0]["message"]
    assert "answered (HTTP 200) but the reply did not finish within 3 s" in result["findings"][0]["message"]
    assert result["duration_ms"] < 3000 + 1500, result["duration_ms"]  # the check's own time: the deadline, held
    assert took < 20 and seconds < 20


def _distinct_words(size: int) -> str:
    """``size`` characters of distinct lower-case words (no word twice)."""
    words = ("".join(letters) for letters in itertools.product("abcdefghijklmnopqrstuvwxyz", repeat=4))
    text = " ".join(itertools.islice(words, size // 5 + 1))
    return text[:size]


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    yield from scripted_server()


def test_a_700_kb_reply_is_cut_off_at_the_reply_bound(tmp_path: Path, server: ScriptedServer) -> None:
    """700 KB of distinct words: was 42 s to more than 240 s in the reply judge; now a bounded finding."""
    server.script.reply = _distinct_words(700_000)
    result, seconds = _check(tmp_path, server.url, "service.endpoint", timeout=60, bound_s=60)
    assert _errors(result) == ["service.bad-reply"]
    finding = result["findings"][0]
    assert f"{REPLY_MAX_CHARS:,} characters" in finding["message"]
    # an OpenAI server that streamed too much: about the length and the server's limits, not the URL (QA P3.17)
    assert "too long for an agent step" in finding["message"]
    assert "max_tokens 3000 asked; its context is 25480 tokens" in finding["message"]
    assert "PHONE_AGENT_BASE_URL" not in finding["fix"] and "OpenAI-compatible" not in finding["fix"]
    assert "did not stop at max_tokens 3000" in finding["fix"]
    assert seconds < 30


def test_a_long_reply_under_the_bound_is_judged_in_linear_time(tmp_path: Path, server: ScriptedServer) -> None:
    """250 KB of distinct words, under the bound: judged (prose, no action) in well under the deadline."""
    server.script.reply = _distinct_words(250_000)
    result, seconds = _check(tmp_path, server.url, "service.endpoint", timeout=60, bound_s=60)
    assert [f["code"] for f in result["findings"] if f["severity"] != "info"] == ["service.not-an-action"]
    assert result["duration_ms"] < 20_000 and seconds < 30


@pytest.mark.parametrize(
    "element",
    ["+".join(["1"] * 20_000), "-" * 100_000 + "1", "+".join(["1"] * 3000), "(" * 90 + "1" + ")" * 90],
    ids=["20000-terms", "100000-unary-minus", "3000-terms-under-the-size-bound", "90-nested-parentheses"],
)
def test_a_hostile_action_is_unparsed_not_a_crash(tmp_path: Path, server: ScriptedServer, element: str) -> None:
    """Was RecursionError / MemoryError inside ast in service.agent-step; now service.action-unparsed.

    Enough thinking comes first that the reply is mostly words, so it reaches the action parser.
    """
    thinking = "the home screen shows the settings icon " * (len(element) // 30 + 10)  # 33 letters in 40
    server.script.reply = f'<think>{thinking}</think><answer>do(action="Tap", element=[{element}, 1])</answer>'
    env = fake_tool(tmp_path, "adb", ADB_READY)
    result, _ = _check(tmp_path, server.url, "service.agent-step", timeout=30, bound_s=60, env=env)
    assert _errors(result) == ["service.action-unparsed"], result


# --- the validators and the reply bounds, in-process --------------------------------------------


@pytest.mark.parametrize(
    ("validate", "data", "said"),
    [
        ("stream_chunk", {"choices": ["a"]}, 'choices[0] is a string ("a"), not an object'),
        ("stream_chunk", {"choices": [{"delta": {"content": 5}}]}, "choices[0].delta.content is a number (5)"),
        ("stream_chunk", [1, 2], "the event is a list ([1, 2])"),
        ("model_list", {"data": ["m"]}, 'data[0] is a string ("m")'),
        ("model_list", {"data": [{"id": None}]}, "data[0].id is null (null), not a model name"),
        ("model_list", {"object": "list"}, '"data" is null'),
        ("completion", {"choices": []}, '"choices" is a list ([]), not a list of at least one choice'),
        ("completion", {"choices": [{"message": "hi"}]}, 'choices[0].message is a string ("hi")'),
    ],
)
def test_each_shape_says_which_part_is_wrong(validate: str, data: Any, said: str) -> None:
    from autoglm_doctor.phone import openai_shapes

    with pytest.raises(openai_shapes.NotOpenAIShape, match="not the OpenAI shape") as caught:
        getattr(openai_shapes, validate)(data)
    assert said in str(caught.value), str(caught.value)


def test_the_shapes_read_what_servers_send() -> None:
    """vLLM's model card, a stream with reasoning and a null delta, the error bodies servers use."""
    from autoglm_doctor.phone import openai_shapes as shapes

    listing = shapes.model_list({"object": "list", "data": [{"id": MODEL, "max_model_len": 25480, "root": "x"}]})
    assert listing.card(MODEL) == shapes.ModelCard(MODEL, 25480)
    assert shapes.model_list({"data": [{"id": MODEL, "max_model_len": "big"}]}).models[0].max_model_len is None
    chunk = shapes.stream_chunk(
        {"choices": [{"delta": {"content": None, "reasoning_content": "hm"}}, {"delta": None, "finish_reason": "stop"}]}
    )
    assert chunk.deltas == (shapes.Delta(reasoning="hm"), shapes.Delta(finish_reason="stop"))
    assert shapes.stream_chunk({"choices": [], "usage": {"prompt_tokens": 3}}).deltas == ()
    for body in (
        {"error": {"message": "boom", "type": "BadRequestError"}},
        {"object": "error", "message": "boom"},
        {"detail": "boom"},
        {"error": "boom"},
    ):
        assert shapes.error_body(body) == shapes.ErrorBody("boom"), body
    assert shapes.stream_chunk({"object": "error", "message": "boom"}).error == shapes.ErrorBody("boom")


def test_quotes_are_bounded_and_escaped() -> None:
    from autoglm_doctor.phone.openai_shapes import QUOTE_CHARS, quote

    huge = {"k": ["\x1b[2J" * 100_000]}
    started = time.monotonic()
    shown = quote(huge)
    assert time.monotonic() - started < 0.5 and len(shown) <= QUOTE_CHARS
    assert "\x1b" not in shown and "\\u001b" in shown


def test_the_reply_judge_is_linear() -> None:
    """250,000 characters of distinct words: the quadratic judge took 42 s at 300 KB; now well under a second."""
    from autoglm_doctor.phone.actions import judge_reply

    started = time.monotonic()
    assert judge_reply(_distinct_words(250_000)) is None
    assert time.monotonic() - started < 1.0
    assert judge_reply("go " * 10 + "now") == ("service.garbled-reply", "the reply repeats one word over and over")


@pytest.mark.parametrize(
    ("action", "count"),
    [
        ('do(action="Tap", element=[500, 300])', 7),
        ('do(action="Swipe", start=[1,2], end=[3,4])', 10),
        ('finish(message="a (b) [c] + - not")', 4),
        ("do(action='Type', text='''x\"y''')", 5),
        ('do(action="Tap", element=[0.5, 1.5])', 9),
        ('do(action=f"{x}")', None),
    ],
)
def test_the_action_pre_scan_counts_only_outside_strings(action: str, count: int | None) -> None:
    from autoglm_doctor.phone.actions import action_structure

    assert action_structure(action) == count
