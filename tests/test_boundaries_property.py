"""Property tests, one per boundary of issue 23: endpoint JSON and stream chunks, the model's reply, tool output.

Each asserts what the issue asks of every input: no check's status is ``error``, the check ends
within its deadline, and nothing it started is left running. The bulk runs in-process (the real
checks through the real runner, a synthetic Snapshot, a real server on 127.0.0.1, a fake tool
that is a two-line shell script); a few examples go through the CLI.

Bounded and reproducible: ``derandomize=True`` (a fixed seed), a small ``max_examples`` per test.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoglm_doctor import packs, procs, registry, runner
from autoglm_doctor.checks.devices import parse_devices, parse_hdc_targets, wda_screenshot, wda_status
from autoglm_doctor.context import CheckContext, Options
from autoglm_doctor.model import CheckResult
from autoglm_doctor.phone import openai_shapes
from autoglm_doctor.phone.actions import ActionError, judge_reply, parse_action
from autoglm_doctor.phone.screenshot import synthetic_png
from autoglm_doctor.probe.snapshot import Snapshot
from tests.helpers.config_lint import snapshot
from tests.helpers.hostile import doctor
from tests.helpers.openai_servers import serve_in_thread

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and sh: Linux")

FAST = settings(derandomize=True, max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
CHECKS = settings(derandomize=True, max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
CLI = settings(derandomize=True, max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))

MODEL = "autoglm-phone-9b"
TIMEOUT_S = 2.0
"""The pack's service timeout (and the screenshot's) in these runs."""
TOOL_TIMEOUT_S = 0.5
"""The pack's timeout per device-tool call in these runs (an example may hang a tool)."""
SLACK_S = 1.5
"""What a check may take past its deadline (finding the socket shut, reaping a killed tool)."""

# --- JSON of every shape, and JSON near the OpenAI shapes -----------------------------------------

LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["", "\x1b[2J", 'do(action="Home")', "stop", "\ufffd" * 3, MODEL])
)
JSON = st.recursive(
    LEAVES,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)
TEXTISH = st.none() | st.text(max_size=40) | JSON
DELTA = st.fixed_dictionaries(
    {}, optional={"content": TEXTISH, "reasoning_content": TEXTISH, "reasoning": TEXTISH, "role": TEXTISH}
)
CHOICE = st.fixed_dictionaries(
    {}, optional={"delta": DELTA | JSON, "finish_reason": TEXTISH, "index": JSON, "message": DELTA | JSON}
)
CHUNK = (
    st.fixed_dictionaries(
        {}, optional={"choices": st.lists(CHOICE | JSON, max_size=3) | JSON, "error": JSON, "object": JSON}
    )
    | JSON
)
CARD = st.fixed_dictionaries({}, optional={"id": st.just(MODEL) | TEXTISH, "max_model_len": JSON, "object": JSON})
MODELS = st.fixed_dictionaries({}, optional={"data": st.lists(CARD | JSON, max_size=3) | JSON, "object": JSON}) | JSON


@FAST
@given(st.one_of(CHUNK, MODELS, JSON))
def test_the_shape_validators_return_typed_records_or_say_why(data: Any) -> None:
    """Whatever the JSON: a typed record, or NotOpenAIShape with a bounded message; nothing else."""
    for validate in (openai_shapes.model_list, openai_shapes.completion, openai_shapes.stream_chunk):
        try:
            record = validate(data)
        except openai_shapes.NotOpenAIShape as exc:
            assert "not the OpenAI shape" in str(exc) and len(str(exc)) < 400
            continue
        if isinstance(record, openai_shapes.ModelList):
            assert all(isinstance(c.id, str) and c.id for c in record.models)
            assert all(c.max_model_len is None or isinstance(c.max_model_len, int) for c in record.models)
        elif isinstance(record, openai_shapes.Completion):
            assert isinstance(record.content, str)
        else:
            assert all(isinstance(d.content, str) and isinstance(d.reasoning, str) for d in record.deltas)
    body = openai_shapes.error_body(data)
    assert body is None or (isinstance(body.message, str) and len(body.message) <= openai_shapes.MESSAGE_CHARS)


# --- a real server whose answers each example sets -----------------------------------------------


class _Answers:
    models: bytes = b""
    events: list[bytes] = []  # noqa: RUF012 - one server, one example at a time
    framing: str = "chunked"


class _Endpoint(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(_Answers.models)))
        self.end_headers()
        self.wfile.write(_Answers.models)

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        chunked = _Answers.framing == "chunked"
        self.send_header("Transfer-Encoding" if chunked else "Connection", "chunked" if chunked else "close")
        self.end_headers()
        try:
            for event in _Answers.events:
                data = b"data: " + event + b"\n\n"
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
        self.close_connection = True


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server, stop = serve_in_thread(_Endpoint)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        stop()


@pytest.fixture(scope="module")
def phone_pack(tmp_path_factory: pytest.TempPathFactory) -> packs.Pack:
    path = tmp_path_factory.mktemp("pack") / "phone.yaml"
    path.write_text(
        f"pack: open-autoglm-phone\ndescription: test\nservice:\n  model: {MODEL}\n  timeout: {TIMEOUT_S}\n"
        f"devices:\n  adb_timeout: {TOOL_TIMEOUT_S}\n  hdc_timeout: {TOOL_TIMEOUT_S}\n  wda_timeout: {TOOL_TIMEOUT_S}\n"
        f"  screenshot_timeout: {TIMEOUT_S}\n",
        encoding="utf-8",
    )
    return packs.load(str(path))


_REGISTRY = registry.load(plugins=False)


def _run(check_id: str, snap: Snapshot, pack: packs.Pack, endpoint: str | None = None) -> CheckResult:
    """One check through the real runner; asserts what every input must leave true."""
    ctx = CheckContext(pack=pack, options=Options(smoke=False, endpoint=endpoint))
    before = _children()
    result = runner.run_check(_REGISTRY.checks[check_id], snap, ctx)
    assert result.status.value != "error", (result.findings, result.traceback)
    assert not procs._live, "a child is still registered as running"
    assert _children() <= before, "a child of the test process is left running"
    return result


def _children() -> set[int]:
    """Live (not zombie) children of this process, from /proc."""
    me = str(os.getpid())
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[1].decode() == me and fields[0] != b"Z":
            found.add(int(entry))
    return found


def _encode(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


SERVED = {"data": [{"id": MODEL, "max_model_len": 25480}]}
"""A model list that lets the step go on to the stream (most examples: the stream is what varies most)."""


@CHECKS
@given(
    models=st.one_of(st.just(SERVED), st.just(SERVED), st.just(SERVED), MODELS),
    events=st.lists(CHUNK.map(_encode) | st.binary(max_size=30), max_size=5),
    framing=st.sampled_from(["chunked", "close"]),
)
def test_endpoint_json_never_ends_a_check_in_error(
    endpoint: str, phone_pack: packs.Pack, models: Any, events: list[bytes], framing: str
) -> None:
    """service.endpoint over any model list and any stream: a finding, within the deadline."""
    _Answers.models, _Answers.events, _Answers.framing = _encode(models), events, framing
    snap = snapshot(None, env={"PHONE_AGENT_MODEL": MODEL})
    started = time.monotonic()
    _run("service.endpoint", snap, phone_pack, endpoint)
    assert time.monotonic() - started < TIMEOUT_S + SLACK_S


# --- the model's reply ----------------------------------------------------------------------------

HOSTILE = [
    'do(action="Tap", element=[',
    "finish(message=",
    "<answer>",
    "</answer>",
    "<think>",
    "1+",
    "-",
    "(",
    ")",
    "[",
    "]",
    "not ",
    "lambda: ",
    'f"{',
    '"""',
    "'",
    "\\",
    "\n",
    "9" * 50,
    "1e308",
    ".real",
    ", 1])",
    " the settings icon ",
    "\ufffd",
    "\x00",
]
REPLIES = st.lists(st.sampled_from(HOSTILE) | st.text(max_size=10), max_size=40).map("".join)
REPEATED = st.tuples(
    st.sampled_from(["1+", "-", "(", "[", "not ", "a.", "a(", "x if y else "]), st.integers(1, 30_000)
).map(lambda t: 'do(action="Tap", element=[' + t[0] * t[1] + "1, 1])")


@FAST
@given(st.one_of(REPLIES, REPEATED, st.text(max_size=200)))
def test_any_reply_is_judged_and_parsed_without_a_crash(reply: str) -> None:
    """The reply judge and the action parser: a verdict or ActionError, never another exception, fast."""
    started = time.monotonic()
    judge_reply(reply)
    try:
        action = parse_action(reply)
    except ActionError as exc:
        assert exc.code.startswith("service.action-")
    else:
        assert action.kind in ("do", "finish")
    assert time.monotonic() - started < 1.0


@pytest.fixture(scope="module")
def fake_adb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An adb on PATH: a shell script that prints what each example wrote for the command it got."""
    folder = tmp_path_factory.mktemp("adb")
    (folder / "screen.png").write_bytes(synthetic_png())
    script = folder / "adb"
    script.write_text(
        "#!/bin/sh\n"
        f"cd {shlex.quote(str(folder))} || exit 9\n"
        'key=$(printf %s "$*" | tr -c "A-Za-z0-9" _)\n'
        '[ -f "hang_$key" ] && exec sleep 60\n'
        '[ -f "out_$key" ] && cat "out_$key"\n'
        'exit "$(cat "rc_$key" 2>/dev/null || echo 0)"\n',
        encoding="utf-8",
    )
    script.chmod(0o755)
    old = os.environ["PATH"]
    os.environ["PATH"] = f"{folder}{os.pathsep}{old}"
    try:
        yield folder
    finally:
        os.environ["PATH"] = old


def _answer(folder: Path, args: str, out: bytes | None, rc: int = 0, *, hang: bool = False) -> None:
    """Make the fake adb answer ``args`` with ``out`` and ``rc`` (or hang)."""
    key = "".join(c if c.isalnum() else "_" for c in args)
    for prefix in ("out_", "rc_", "hang_"):
        (folder / f"{prefix}{key}").unlink(missing_ok=True)
    if hang:
        (folder / f"hang_{key}").write_bytes(b"")
        return
    if out is not None:
        (folder / f"out_{key}").write_bytes(out)
    (folder / f"rc_{key}").write_text(str(rc))


READY = b"List of devices attached\n8a7f3c21  device usb:1-1 model:M2006J10C\n"
SCREENCAP = "-s 8a7f3c21 exec-out screencap -p"


@settings(derandomize=True, max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    reply=st.builds(
        str.__add__,
        st.sampled_from(["", "<think>" + "the home screen shows the settings icon " * 40 + "</think>"]),
        st.one_of(REPLIES, REPEATED),
    )
)
def test_any_reply_never_ends_the_agent_step_in_error(
    fake_adb: Path, endpoint: str, phone_pack: packs.Pack, reply: str
) -> None:
    """service.agent-step: a real screenshot from the fake adb, any reply streamed back; a finding in time."""
    _answer(fake_adb, "devices -l", READY)
    _answer(fake_adb, SCREENCAP, synthetic_png())
    _Answers.models = _encode({"data": [{"id": MODEL}]})
    _Answers.events = [_encode({"choices": [{"delta": {"content": reply}}]})]
    _Answers.framing = "chunked"
    snap = snapshot(None, env={"PHONE_AGENT_MODEL": MODEL, "PHONE_AGENT_DEVICE_TYPE": "adb"})
    started = time.monotonic()
    _run("service.agent-step", snap, phone_pack, endpoint)
    assert time.monotonic() - started < 2 * TIMEOUT_S + 2 * SLACK_S  # the screenshot's deadline, then the step's


# --- tool output ----------------------------------------------------------------------------------

TOOL_TEXT = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.sampled_from(
            [
                b"List of devices attached\n",
                b"8a7f3c21\tdevice usb:1-1\n",
                b"emulator-5554 offline\n",
                b"x unauthorized\n",
                b"\tdevice\n",
                b"* daemon not running; starting now\n",
                b"com.android.adbkeyboard/.AdbIME\n",
                b"SecurityException WRITE_SECURE_SETTINGS\n",
                b"[Empty]\n",
                b"\x1b[2J\xff\xfe\n",
                b"\n",
            ]
        ),
        max_size=12,
    ).map(b"".join),
)
ANSWER = st.tuples(TOOL_TEXT, st.sampled_from([0, 0, 0, 1, 255]), st.sampled_from([False] * 14 + [True]))


@FAST
@given(st.binary(max_size=400) | TOOL_TEXT)
def test_tool_output_parsers_return_typed_values(raw: bytes) -> None:
    """adb/hdc listings and WebDriverAgent's JSON: typed values whatever the bytes."""
    text = raw.decode("utf-8", "replace")
    assert all(isinstance(d.serial, str) and isinstance(d.state, str) for d in parse_devices(text))
    assert all(isinstance(t, str) and t for t in parse_hdc_targets(text))
    status = wda_status(raw)
    assert status.ready in (None, True, False)
    assert status.os_version is None or (isinstance(status.os_version, str) and len(status.os_version) <= 40)
    assert isinstance(wda_screenshot(raw), bytes)


@CHECKS
@given(version=ANSWER, devices=ANSWER, ime=ANSWER)
def test_any_adb_output_never_ends_devices_adb_in_error(
    fake_adb: Path, phone_pack: packs.Pack, version: Any, devices: Any, ime: Any
) -> None:
    """devices.adb over any output, exit status or hang of each adb command: a finding, in time, no adb left."""
    for args, (out, rc, hang) in (
        ("version", version),
        ("devices -l", devices),
        ("-s 8a7f3c21 shell ime list -s", ime),
    ):
        _answer(fake_adb, args, out, rc, hang=hang)
    snap = snapshot(None, env={"PHONE_AGENT_DEVICE_TYPE": "adb"})
    started = time.monotonic()
    _run("devices.adb", snap, phone_pack)
    hung = sum(1 for answer in (version, devices, ime) if answer[2])
    assert time.monotonic() - started < (hung + 1) * (TOOL_TIMEOUT_S + SLACK_S)


# --- a few through the CLI ------------------------------------------------------------------------


@CLI
@given(events=st.lists(CHUNK.map(_encode), min_size=1, max_size=3))
def test_stream_chunks_through_the_cli(
    endpoint: str, tmp_path_factory: pytest.TempPathFactory, events: list[bytes]
) -> None:
    """The same property through ``autoglm-doctor check``: exit 0/1, no traceback, nothing left, no error."""
    _Answers.models, _Answers.events, _Answers.framing = _encode({"data": [{"id": MODEL}]}), events, "close"
    folder = tmp_path_factory.mktemp("cli")
    pack = folder / "pack.yaml"
    pack.write_text(f"pack: open-autoglm-phone\ndescription: t\nservice:\n  model: {MODEL}\n  timeout: {TIMEOUT_S}\n")
    run = doctor(
        [
            "check",
            "--no-smoke",
            "--pack",
            str(pack),
            "--only",
            "service.endpoint",
            "--endpoint",
            endpoint,
            "--format",
            "json",
        ],
        cwd=folder,
        env={"PHONE_AGENT_MODEL": MODEL},
        bound_s=30,
    )
    assert run.code in (0, 1)
    assert all(r["status"] != "error" for r in json.loads(run.text)["results"])


def test_the_watchdog_timers_end(endpoint: str) -> None:
    """No watchdog thread outlives its exchange (each is cancelled when the exchange ends)."""
    from autoglm_doctor.phone.chat import stream_chat

    _Answers.events, _Answers.framing = [b"{}"], "chunked"
    before = threading.active_count()
    for _ in range(20):
        stream_chat(f"{endpoint}/chat/completions", {"model": MODEL}, timeout=30)
    time.sleep(0.2)
    assert threading.active_count() <= before + 1
