"""Issue 17's bounds, one mechanism at a time: subprocesses, HTTP, redaction, escaping, readers.

The CLI-level reproductions are in test_security_cli.py; these pin each mechanism with small
inputs (a cap tested at cap + 1, a deadline of one second) so the suite stays fast.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoglm_doctor import httpclient, procs, redact, safeio
from autoglm_doctor.cli import main
from autoglm_doctor.configfile.load import parse_config
from autoglm_doctor.probe.snapshot import Snapshot, SnapshotError
from autoglm_doctor.textsafe import escape_control, escape_json_text
from tests.helpers.hostile import fake_interpreter, still_running, tree_state
from tests.helpers.venvs import make_venv

LINUX = pytest.mark.skipif(sys.platform != "linux", reason="uses /proc, setsid and FIFOs")
FORMATS = ("rich", "json", "junit", "markdown", "github")


# --------------------------------------------------------------------------- subprocesses


@LINUX
def test_deadline_covers_a_grandchild_holding_the_pipes(tmp_path: Path) -> None:
    marker = f"mark-{os.getpid()}-{time.monotonic_ns()}"
    env = procs.child_environment({**os.environ, "AUTOGLM_HOSTILE_MARK": marker})
    started = time.monotonic()
    done = procs.run(["sh", "-c", "setsid sleep 150 & echo started; sleep 150"], timeout=1.0, env=env)
    assert time.monotonic() - started < procs.REAP_WAIT_S
    assert done.timed_out and done.returncode is None and done.stdout == b"started\n"
    assert still_running(marker) == []


@LINUX
def test_exited_child_leaves_no_pipe_holder(tmp_path: Path) -> None:
    marker = f"mark-{os.getpid()}-{time.monotonic_ns()}"
    env = {**os.environ, "AUTOGLM_HOSTILE_MARK": marker}
    done = procs.run(["sh", "-c", "setsid sleep 150 & echo ok"], timeout=30.0, env=env)
    assert done.returncode == 0 and done.stdout == b"ok\n" and done.elapsed_s < 5
    assert still_running(marker) == []


def test_output_is_capped() -> None:
    done = procs.run(["sh", "-c", "yes"], timeout=10.0, cap=4096)
    assert done.truncated and len(done.stdout) == 4096 and done.returncode is None


def test_input_is_fed_and_python_children_write_no_bytecode(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("X = 1\n")
    argv = procs.python_argv(
        sys.executable, "-c", "import sys; sys.path.insert(0, '.'); import mod; print(sys.stdin.read())"
    )
    done = procs.run(argv, timeout=30.0, cwd=tmp_path, feed=b"x" * 200_000, env=procs.child_environment())
    assert done.stdout.strip() == b"x" * 200_000
    assert not (tmp_path / "__pycache__").exists()


def test_isolated_child_does_not_import_the_working_directory(tmp_path: Path) -> None:
    """A model folder's json.py is not what the smoke child's ``import json`` gets."""
    (tmp_path / "json.py").write_text(f"open({str(tmp_path / 'PWNED')!r}, 'w').write('x')\n")
    source = "from __future__ import annotations\nimport json, sys\nprint(json.__file__, sys.argv[1:])\n"
    done = procs.run(procs.isolated_c_argv(sys.executable, source, "arg"), timeout=30.0, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert str(tmp_path) not in done.stdout.decode() and "['arg']" in done.stdout.decode()
    assert not (tmp_path / "PWNED").exists()


@LINUX
def test_adb_flood_and_hang_are_bounded(tmp_path: Path) -> None:
    from autoglm_doctor.checks.devices import TOOL_TEXT_CAP_BYTES, AdbTimeout, run_adb

    flood = fake_interpreter(tmp_path / "adb", "yes adb")
    started = time.monotonic()
    code, text = run_adb(str(flood), "devices", timeout=5)
    assert code != 0 and "it was stopped" in text and len(text) < TOOL_TEXT_CAP_BYTES
    hang = fake_interpreter(tmp_path / "adb2", "setsid sleep 150 &\nsleep 150")
    with pytest.raises(AdbTimeout):
        run_adb(str(hang), "devices", timeout=1)
    assert time.monotonic() - started < 10


def test_nvidia_smi_flood_is_bounded(tmp_path: Path) -> None:
    from autoglm_doctor.probe.gpu import run_tool

    flood = fake_interpreter(tmp_path / "nvidia-smi", "yes GPU")
    run = run_tool([str(flood)], timeout=10)
    assert "printed more than" in run.error


@LINUX
def test_probe_reads_only_regular_files_and_bounded(tmp_path: Path) -> None:
    """A requires.txt linked to /dev/zero (7.45 GB before) and a METADATA FIFO: read bounded, never blocked."""
    from autoglm_doctor.probe.collect import run_probe

    venv = make_venv(tmp_path / "venv")
    info = venv.add("evil", "1.0")
    (info / "requires.txt").symlink_to("/dev/zero")
    fifo_info = venv.add("fifo", "1.0")
    (fifo_info / "METADATA").unlink()
    os.mkfifo(fifo_info / "METADATA")
    started = time.monotonic()
    facts = run_probe(str(venv.python), tmp_path, timeout=30)
    assert time.monotonic() - started < 20
    names = {d["name"] for d in facts["distributions"]}  # type: ignore[union-attr]
    assert "evil" in names


@LINUX
def test_fix_verify_without_a_writable_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from autoglm_doctor.fix.verify import verify

    requirements = tmp_path / "req.txt"
    requirements.write_text("packaging\n")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing" / "tmp"))
    result = verify(requirements, sys.executable, timeout=60)
    assert not result.ok and "temporary folder" in result.summary


# --------------------------------------------------------------------------- HTTP


class _Hostile(http.server.BaseHTTPRequestHandler):
    mode = "trickle"
    seen: list[dict[str, str]]

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.server.seen.append(dict(self.headers))  # type: ignore[attr-defined]
        mode = self.server.mode  # type: ignore[attr-defined]
        try:
            if mode == "trickle":
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                for _ in range(100):
                    self.wfile.write(b"X")
                    self.wfile.flush()
                    time.sleep(0.2)
            elif mode == "continue":
                for _ in range(200):
                    self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    self.wfile.flush()
                    time.sleep(0.05)
            elif mode.startswith("redirect:"):
                self.send_response(302)
                self.send_header("Location", mode.split(":", 1)[1])
                self.end_headers()
            else:
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
        except OSError:
            pass


@pytest.fixture
def hostile_server() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.daemon_threads = True
    server.seen = []  # type: ignore[attr-defined]
    server.mode = "ok"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("mode", ["trickle", "continue"])
def test_total_deadline_per_request(hostile_server: http.server.ThreadingHTTPServer, mode: str) -> None:
    import urllib.request

    hostile_server.mode = mode  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{hostile_server.server_address[1]}/"
    started = time.monotonic()
    with pytest.raises(TimeoutError), httpclient.urlopen(urllib.request.Request(url), 1.0) as resp:  # noqa: S310
        resp.read()
    assert time.monotonic() - started < 3


def test_redirect_to_another_origin_drops_authorization(hostile_server: http.server.ThreadingHTTPServer) -> None:
    import urllib.request

    port = hostile_server.server_address[1]
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    other.seen = []  # type: ignore[attr-defined]
    other.mode = "ok"  # type: ignore[attr-defined]
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        hostile_server.mode = f"redirect:http://localhost:{other.server_address[1]}/v1/models"  # type: ignore[attr-defined]
        req = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Authorization": "Bearer sk-live-secret"})
        with httpclient.urlopen(req, 5.0) as resp:
            assert json.loads(resp.read()) == {"ok": True}
        assert "Authorization" in hostile_server.seen[0]  # type: ignore[attr-defined]
        assert all("Authorization" not in h for h in other.seen)  # type: ignore[attr-defined]
        # the same origin keeps it
        hostile_server.mode = f"redirect:http://127.0.0.1:{port}/again"  # type: ignore[attr-defined]
        hostile_server.seen.clear()  # type: ignore[attr-defined]
        with pytest.raises(OSError):  # it redirects to itself until urllib gives up
            with httpclient.urlopen(
                urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Authorization": "x"}), 5.0
            ):
                pass
        assert all("Authorization" in h for h in hostile_server.seen)  # type: ignore[attr-defined]
    finally:
        other.shutdown()
        other.server_close()


def test_nothing_listening_is_not_a_timeout() -> None:
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OSError) as caught, httpclient.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/"), 5.0):
        pass
    assert not isinstance(caught.value, TimeoutError)


# --------------------------------------------------------------------------- redaction and escaping


@pytest.mark.parametrize(
    "line",
    [
        "a" * 1_000_000,
        "a." * 500_000,
        "-a" * 500_000,
        " " * 1_000_000 + "x",
        "http:" * 200_000,
        "<" * 1_000_000,
        "a=" * 500_000,
    ],
)
def test_redaction_is_linear(line: str) -> None:
    """A 1 MB hostile line: the old URL pattern took over 5 minutes; each pattern now scans it once."""
    started = time.monotonic()
    redact.redact_text(line, ["some-long-secret-value"])
    redact.mask_after_secret_keys(line)
    redact.is_placeholder(line)
    assert time.monotonic() - started < 5


def test_flags_and_dotted_names_stay_masked() -> None:
    """The linear patterns still find ``--api-key=...`` and ``x.API_KEY=...``."""
    assert redact.redact_text("vllm serve m --api-key=sk-123456789abc --port=8000", []) == (
        "vllm serve m --api-key=*** --port=8000"
    )
    assert redact.redact_text("x.API_KEY=abcdefgh123", []) == "x.API_KEY=***"
    assert redact.mask_after_secret_keys("  --password: hunter2 x") == "  --password: ***"


def test_url_credentials_up_to_the_last_at() -> None:
    assert redact.redact_url("http://u:p@ss@word@127.0.0.1:9/v1") == "http://u:***@127.0.0.1:9/v1"
    assert redact.redact_url("see https://a:b@h/x?q=@y") == "see https://a:***@h/x?q=@y"


def test_pwd_key_is_secret_but_the_pwd_variable_is_not() -> None:
    assert redact.is_secret_name("pwd") and not redact.is_secret_name("PWD")
    data = redact.redact_snapshot_data({"config": {"data": {"pwd": "hunter2-long-password"}}})
    assert "hunter2" not in json.dumps(data)


@pytest.mark.parametrize(
    ("name", "text", "secret"),
    [
        ("dup.yaml", "model_path: /m\npassword: my s3cret value\npassword: my s3cret value\n", "s3cret"),
        ("flow.yaml", "db: {password: hunter2secret, host: [x}\n", "hunter2"),
        ("quote.yaml", 'model_path: /m\npassword: "unclosedsecret99\nother: 1\n', "unclosedsecret"),
        ("pwd.yaml", "model_path: /m\npwd: pwdsecret12345\n", "pwdsecret"),
    ],
)
def test_no_secret_in_any_format(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    text: str,
    secret: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text(text)
    for fmt in FORMATS:
        code = main(["check", "--no-smoke", "--only", "config.*", "--config", name, "--format", fmt])
        out, err = capsys.readouterr()
        assert code in (0, 1) and secret not in out + err, fmt
    assert main(["snapshot", "--config", name]) == 0
    assert secret not in capsys.readouterr().out


def test_no_escape_byte_in_any_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """ESC from a config's name, a weight file's name, a distribution's Name: none reaches the output."""
    monkeypatch.chdir(tmp_path)
    venv = make_venv(tmp_path / "venv")
    venv.add("evil\x1b[2J", "1.0", package="evil")
    model = tmp_path / "model"
    model.mkdir()
    (model / "w\x1b[31m.safetensors").write_bytes(b"\0" * 16)
    config = "c\x1b[31m.yaml"
    (tmp_path / config).write_text(f"model_path: {model}\nbad: [\n")
    for fmt in FORMATS:
        code = main(["check", "--no-smoke", "--python", str(venv.python), "--config", config, "--format", fmt])
        out, err = capsys.readouterr()
        assert code in (0, 1)
        assert "\x1b" not in out and "\x9b" not in out, fmt
        assert "\x1b" not in err


def test_escapes() -> None:
    assert escape_control("a\x1b[31mb\x9bc\u202ed\re\n\t") == "a\\x1b[31mb\\x9bc\\u202ed\\re\n\t"
    assert json.loads(escape_json_text(json.dumps("\x9b\u202e\x7f", ensure_ascii=False))) == "\x9b\u202e\x7f"


# --------------------------------------------------------------------------- readers (property test)

_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.text(max_size=20),
)
_docs = st.recursive(
    _leaf, lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
)


def _hostile_texts() -> st.SearchStrategy[str]:
    deep = st.integers(min_value=1, max_value=5000).map(lambda n: "[" * n + "]" * n)
    deep_map = st.integers(min_value=1, max_value=3000).map(
        lambda n: "a:\n" + "".join(" " * i + "b:\n" for i in range(n))
    )
    huge = st.integers(min_value=4000, max_value=6000).map(lambda n: "n: " + "7" * n)
    flow = st.integers(min_value=1, max_value=3000).map(lambda n: "x: " + "{a: " * n + "}" * n)
    return st.one_of(deep, deep_map, huge, flow, _docs.map(json.dumps), st.text(max_size=200))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_hostile_texts(), name=st.sampled_from(["c.yaml", "c.json", "c.toml"]))
def test_config_reader_never_raises(text: str, name: str) -> None:
    facts = parse_config(
        text.encode("utf-8", "surrogatepass"), shown=name, folder=Path("/tmp"), cwd=Path("/tmp"), environ={}
    )
    assert facts.path == name
    if facts.data is not None:
        assert not safeio.depth_over(facts.data)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(text=_hostile_texts())
def test_snapshot_reader_raises_only_snapshot_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "snap.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        Snapshot.load(path)
    except SnapshotError as exc:
        assert str(path) in str(exc) or "snapshot" in str(exc)


def test_bounded_reader_caps_at_limit_plus_one(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 11)
    assert safeio.read_bytes(path, "config", limit=11) == b"x" * 11
    with pytest.raises(safeio.RefusedFile, match="limit"):
        safeio.read_bytes(path, "config", limit=10)
    with pytest.raises(safeio.RefusedFile, match="character device"):
        safeio.read_bytes("/dev/zero", "config")


def test_security_doc_states_the_bounds_in_force() -> None:
    """docs/security.md lists the caps and limits with the numbers the code uses."""
    from autoglm_doctor.check_command import ENDPOINT_CONCURRENCY_MAX, SMOKE_TIMEOUT_MAX
    from autoglm_doctor.configfile.envvars import MAX_REFERENCES
    from autoglm_doctor.configfile.load import MAX_ENV_DIAGNOSTICS
    from autoglm_doctor.output import MAX_WIDTH, MIN_WIDTH

    doc = (Path(__file__).parent.parent / "docs" / "security.md").read_text(encoding="utf-8")
    for kind in ("config", "pack", "snapshot", "request", "model metadata", "manifest"):
        assert f"{safeio.LIMITS[kind] >> 20} MiB" in doc, kind
    assert f"{safeio.MAX_DEPTH} levels" in doc
    assert f"**{ENDPOINT_CONCURRENCY_MAX}**" in doc
    assert f"{MIN_WIDTH}..{MAX_WIDTH}" in doc
    assert f"{SMOKE_TIMEOUT_MAX:,.0f} s" in doc
    assert f"**{MAX_REFERENCES}**" in doc and f"**{MAX_ENV_DIAGNOSTICS}**" in doc
    assert f"{procs.OUTPUT_CAP_BYTES >> 20} MiB" in doc and f"{procs.REAP_WAIT_S:g} s" in doc


def test_security_doc_states_the_endpoint_reply_and_tool_bounds() -> None:
    """The bounds of issue 23 (endpoint JSON, the model's reply, device tools) as the code has them."""
    from autoglm_doctor.checks.devices import SCREENSHOT_CAP_BYTES, TOOL_TEXT_CAP_BYTES, WDA_BODY_CAP_BYTES
    from autoglm_doctor.packs_schema import ServiceSettings
    from autoglm_doctor.phone import actions, chat, openai_shapes

    doc = (Path(__file__).parent.parent / "docs" / "security.md").read_text(encoding="utf-8")
    mib = safeio.MiB
    assert "1 MiB for the text a device tool prints" in doc and TOOL_TEXT_CAP_BYTES == 1 * mib
    assert f"{SCREENSHOT_CAP_BYTES // mib} MiB for a screenshot" in doc
    assert f"| {safeio.LIMITS['screenshot'] // mib} MiB |" in doc
    assert f"{WDA_BODY_CAP_BYTES / mib:.1f} MiB" in doc
    assert f"default\n{ServiceSettings().timeout:g} s" in doc
    assert f"event lines up to {chat.STREAM_LINE_MAX_BYTES // mib} MiB" in doc
    assert f"the stream up to {chat.STREAM_MAX_BYTES // mib} MiB" in doc
    assert f"**{openai_shapes.MODELS_MAX}** models" in doc
    assert f"at most **{openai_shapes.QUOTE_CHARS}**" in doc and f"cut at {openai_shapes.MESSAGE_CHARS}" in doc
    assert f"**{actions.REPLY_MAX_CHARS:,}** characters" in doc
    assert f"**{actions.ACTION_MAX_CHARS:,}** characters" in doc
    assert f"**{actions.ACTION_MAX_STRUCTURE}** brackets" in doc
    assert f"`{procs.MARK_VARIABLE}`" in doc


def test_security_doc_states_the_pack_and_fix_bounds_in_force() -> None:
    """The pack ranges, the resolver's archive cap and the probe's nesting limit, as the code has them."""
    from autoglm_doctor import packs_schema as ps
    from autoglm_doctor.configfile import rules
    from autoglm_doctor.fix.resolve import ARCHIVE_SIZE_LIMIT
    from autoglm_doctor.probe import _script

    doc = (Path(__file__).parent.parent / "docs" / "security.md").read_text(encoding="utf-8")
    assert f"**{ps.SECONDS_MIN:g} to {ps.DEVICE_SECONDS_MAX:g}**" in doc
    assert f"**{ps.SECONDS_MIN:g} to {ps.SERVICE_SECONDS_MAX:g}**" in doc
    # the pack's service.timeout and --endpoint-timeout: one range, stated once (QA P3.18)
    assert (
        f"**{ps.SERVICE_TIMEOUT_MIN:g} to {ps.SERVICE_SECONDS_MAX:g}**: the range `--endpoint-timeout` accepts" in doc
    )
    assert f"**1 to {ps.MAX_TOKENS_MAX}**" in doc and f"**1 to {ps.SMOKE_TOKENS_MAX}**" in doc
    assert f"**{ps.NAME_MAX}**" in doc and f"**{ps.TEXT_MAX}**" in doc
    assert f"**±{float(rules.NUMBER_LIMIT):g}**" in doc and f"**1 to {rules.MAX_ITEMS_LIMIT}**" in doc
    assert f"**{ARCHIVE_SIZE_LIMIT >> 30} GiB**" in doc
    assert f"**{_script.NESTING_LIMIT}**" in doc
    # packages.abi: the probe's walk, then the doctor's reading of what links torch
    from autoglm_doctor.probe import abi

    assert (
        f"| {abi.MAX_FILE_BYTES >> 30} GiB; the probe walks at most {_script.SCAN_MAX_ENTRIES:,} folder entries per "
        f"folder, {_script.SCAN_MAX_SHARED_OBJECTS:,} shared objects and {_script.SCAN_DEADLINE_S:g} s per run; "
        f"reading those that link torch stops after {abi.SCAN_DEADLINE_S:g} s |"
    ) in doc
    # every key of the schema is in the table, and the table names no key the schema lacks
    table = doc.split("### Packs: typed when they load", 1)[1].split("###", 1)[0]
    for section, (_record, validators) in ps.SCHEMA.items():
        for key in validators:
            assert f"`{key}`" in table, (section, key)


SECRET_URL = "http://u:p@ss@word@127.0.0.1:9/v1"


class _EvilEndpoint(http.server.BaseHTTPRequestHandler):
    """Serves a model id with an ESC in it and answers chats with an error body full of them."""

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        self._send(200, json.dumps({"data": [{"id": "evil\x1b[2Jmodel", "object": "model"}]}).encode())

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._send(500, b'{"error": "\x1b[31mboom\x1b]0;title\x07"}')


def test_endpoint_text_reaches_no_terminal_raw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The served model id and an error body with ESC bytes; the endpoint URL's password in every format."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EvilEndpoint)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PHONE_AGENT_MODEL", "autoglm-phone-9b")
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        for fmt in FORMATS:
            code = main(["check", "--no-smoke", "--only", "service.*", "--endpoint", endpoint, "--format", fmt])
            out, err = capsys.readouterr()
            assert code in (0, 1)
            assert "\x1b" not in out + err and "\x07" not in out + err, fmt
            assert "x1b[2J" in out, (fmt, out)  # the served id is reported, escaped
            code = main(["check", "--no-smoke", "--only", "service.*", "--endpoint", SECRET_URL, "--format", fmt])
            out, err = capsys.readouterr()
            assert code in (0, 1) and "ss@word" not in out + err and "127.0.0.1:9" in out, fmt
    finally:
        server.shutdown()
        server.server_close()


@LINUX
def test_kill_all_reaches_a_running_smoke_child(tmp_path: Path) -> None:
    """What SIGINT/SIGTERM do (cli._interrupted): the smoke child's whole group dies at once."""
    from autoglm_doctor.smoke.protocol import SmokeRequest
    from autoglm_doctor.smoke.runner import run_script

    marker = f"mark-{os.getpid()}-{time.monotonic_ns()}"
    python = fake_interpreter(tmp_path / "python", "sleep 100 & sleep 100")
    request = SmokeRequest(model_path=str(tmp_path), device="cpu")
    done: list[object] = []
    worker = threading.Thread(
        target=lambda: done.append(
            run_script(request, str(python), 60, env={**os.environ, "AUTOGLM_HOSTILE_MARK": marker})
        )
    )
    worker.start()
    time.sleep(1.0)
    assert procs.kill_all() == 1
    worker.join(timeout=10)
    assert done and not worker.is_alive()
    assert still_running(marker) == []


def test_smoke_child_ignores_a_model_folders_json_py(tmp_path: Path) -> None:
    """The real smoke script, run from a model folder holding json.py: that file is never imported."""
    from autoglm_doctor.smoke.protocol import SmokeRequest
    from autoglm_doctor.smoke.runner import run_script

    (tmp_path / "json.py").write_text(f"open({str(tmp_path / 'PWNED')!r}, 'w').write('x')\n")
    before = tree_state(tmp_path)
    run = run_script(SmokeRequest(model_path=str(tmp_path)), sys.executable, 120, cwd=tmp_path)
    assert run.events and run.events[0].get("event") == "hello"
    assert not (tmp_path / "PWNED").exists()
    assert tree_state(tmp_path) == before  # no __pycache__ either


def test_fix_and_verify_without_a_writable_temp_dir_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A read-only container: --fix --verify says it cannot use a temporary folder, and exits cleanly."""
    import tempfile

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing" / "tmp"))
    out_file = tmp_path / "req.txt"
    code = main(["check", "--no-smoke", "--only", "packages.*", "--fix", "--verify", "--fix-output", str(out_file)])
    _out, err = capsys.readouterr()
    assert code in (0, 1) and "Traceback" not in err and "crashed" not in err
    assert "temporary folder" in err or "temporary folder" in out_file.read_text()


def test_hostile_json_from_servers_and_children_is_not_json() -> None:
    """An endpoint body, a smoke protocol line or a JSON flag nested 100k deep or with a 5000-digit number."""
    from autoglm_doctor.checks.service import Answer
    from autoglm_doctor.engines.base import FlagSpec, convert
    from autoglm_doctor.smoke.protocol import MARKER, parse_line

    for text in ("[" * 100_000 + "]" * 100_000, '{"a": ' + "9" * 5000 + "}"):
        assert Answer(status=200, body=text.encode()).json() is None
        assert parse_line(MARKER + text) is None
        value, message = convert(FlagSpec(names=["--x"], kind="json"), text, engine_json_message="bad {value}")
        assert value is None if message else isinstance(value, dict)


class _EndlessLine(http.server.BaseHTTPRequestHandler):
    """An event stream whose first line never ends."""

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        try:
            self.wfile.write(b"data: ")
            for _ in range(400):
                self.wfile.write(b"x" * 65536)
        except OSError:
            pass


def test_agent_step_stream_is_bounded() -> None:
    from autoglm_doctor.phone.chat import STREAM_LINE_MAX_BYTES, stream_chat

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EndlessLine)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/chat/completions"
        exchange = stream_chat(url, {"model": "m", "messages": []}, timeout=20)
        assert exchange.failure == "stream" and f"{STREAM_LINE_MAX_BYTES >> 20} MiB" in exchange.detail
        assert len(exchange.text) <= 4096
    finally:
        server.shutdown()
        server.server_close()
