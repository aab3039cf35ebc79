"""Issue 23: pack sections typed at the boundary, and ``--output`` never replacing what the run reads.

The reproductions run through the CLI with :func:`tests.helpers.hostile.doctor` (exit 0/1/2, no
traceback, within the bound, no process left); the property test loads random pack sections
and runs every check that reads them in-process, so that it stays cheap.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoglm_doctor import check_command, packs
from autoglm_doctor.check_command import CheckArgs, RunMemo
from autoglm_doctor.exits import UsageError
from autoglm_doctor.packs_schema import SCHEMA
from autoglm_doctor.probe.collect import TargetMemo
from autoglm_doctor.report import Format
from tests.helpers.hostile import doctor, fake_interpreter, tree_state
from tests.helpers.model_folders import build_model
from tests.helpers.venvs import make_venv

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses /proc, setsid and RLIMIT_AS")

PHONE_HEAD = "pack: my-phone\ndescription: a user's own pack\n"
FIXTURES = Path(__file__).parent / "fixtures" / "adb"


def _hanging_adb(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    fake_interpreter(folder / "adb", "sleep 600")
    return folder


@pytest.mark.parametrize(
    ("section", "key", "words"),
    [
        ("devices: {adb_timeout: .nan}", "devices.adb_timeout", "number of seconds from 0.1 to 300 (got .nan)"),
        ("service: {timeout: .inf}", "service.timeout", "number of seconds from 0.5 to 600 (got .inf)"),
        ("service: {timeout: -3}", "service.timeout", "(got -3)"),
        ("service: {max_tokens: '3000'}", "service.max_tokens", "whole number from 1 to 1048576 (got '3000')"),
        ("service: {max_tokens: 1" + "0" * 400 + "}", "service.max_tokens", "integer of more than 60 digits"),
        ("devices: {hdc_timeout: [1, 2]}", "devices.hdc_timeout", "(got a list)"),
        ("devices: {keyboard: 'a b'}", "devices.keyboard", "without spaces"),
        ("service: {action_required: 'yes'}", "service.action_required", "true or false"),
        ("smoke: {max_new_tokens: 1.5}", "smoke.max_new_tokens", "whole number from 1 to 4096"),
        ("devices: {adb_timeut: 5}", "devices.adb_timeut", "unknown key"),
        ("devices: [1]", "devices", "must be a mapping"),
    ],
)
def test_bad_pack_values_are_usage_errors_naming_file_key_and_range(
    tmp_path: Path, section: str, key: str, words: str
) -> None:
    """``devices: {adb_timeout: .nan}`` with an adb that hangs used to crash devices.adb; now exit 2 at load."""
    pack = tmp_path / "mine.yaml"
    pack.write_text(PHONE_HEAD + section + "\n")
    bin_dir = _hanging_adb(tmp_path / "bin")
    run = doctor(
        ["check", "--no-smoke", "--pack", str(pack), "--only", "devices.*,service.*", "--format", "json"],
        cwd=tmp_path,
        env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PHONE_AGENT_BASE_URL": "http://127.0.0.1:9/v1"},
        bound_s=30,
    )
    assert run.code == 2, run.stderr
    assert f"{pack}:3:" in run.stderr and f"'{key}'" in run.stderr and words in run.stderr, run.stderr
    assert run.stdout == b""


def test_valid_pack_values_reach_the_checks_typed(tmp_path: Path) -> None:
    """A hanging adb is stopped at the pack's own adb_timeout (0.5 s): the typed value is the one used."""
    pack = tmp_path / "mine.yaml"
    pack.write_text(PHONE_HEAD + "devices: {adb_timeout: 0.5}\n")
    loaded = packs.load(str(pack))
    assert loaded.settings.devices.adb_timeout == 0.5
    assert loaded.settings.service.timeout == 12.0  # the default where the pack says nothing
    bin_dir = _hanging_adb(tmp_path / "bin")
    run = doctor(
        ["check", "--no-smoke", "--pack", str(pack), "--only", "devices.adb", "--format", "json"],
        cwd=tmp_path,
        env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        bound_s=30,
    )
    report = json.loads(run.stdout)
    (result,) = report["results"]
    assert result["status"] == "fail" and run.code == 1
    assert any("within 0.5 s" in f["message"] for f in result["findings"]), result["findings"]


def test_merged_packs_keep_typed_values(tmp_path: Path) -> None:
    pack = tmp_path / "mine.yaml"
    pack.write_text(PHONE_HEAD + "service: {timeout: 20, max_tokens: 64}\n")
    merged = packs.load(f"{pack},open-autoglm-phone")
    assert merged.settings.service.timeout == 20.0 and merged.settings.service.max_tokens == 64
    assert merged.settings.devices.adb_timeout == 5.0  # from the built-in phone pack


# --------------------------------------------------------------------------- the property test

_ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
)
_GOOD_NUMBER = st.one_of(st.floats(min_value=0.1, max_value=2.0), st.integers(min_value=1, max_value=2))
_GOOD_TEXT = {"model": "autoglm-phone-9b", "keyboard": "com.android.adbkeyboard/.AdbIME", "prompt": "Hi"}
_GOOD_TEXT["auto_class"] = "AutoModelForCausalLM"


def _value(key: str) -> st.SearchStrategy[object]:
    """Mostly a value the key accepts (so that most packs load and their checks run), sometimes anything."""
    if key in _GOOD_TEXT:
        good: st.SearchStrategy[object] = st.just(_GOOD_TEXT[key])
    elif key in ("action_required", "require_token"):
        good = st.booleans()
    else:
        good = _GOOD_NUMBER
    return _mostly(good)


def _mostly(good: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """``good`` seven times in eight, anything (NaN, infinities, strings, lists, huge integers) the eighth."""
    return st.integers(0, 7).flatmap(lambda n: _ANY_VALUE if n == 0 else good)


def _section(name: str) -> st.SearchStrategy[dict[str, object]]:
    keys = sorted(SCHEMA[name][1])
    return st.fixed_dictionaries({}, optional={key: _value(key) for key in keys})


_PACKS = st.fixed_dictionaries(
    {},
    optional={
        "service": _section("service"),
        "devices": _section("devices"),
        "smoke": _section("smoke"),
        "request": st.fixed_dictionaries({}, optional={"max_items": _mostly(st.integers(1, 100))}),
        "config": st.fixed_dictionaries(
            {
                "keys": st.fixed_dictionaries(
                    {
                        "port": st.fixed_dictionaries(
                            {}, optional={"min": _mostly(st.integers(0, 10)), "max": _mostly(st.floats(10, 1e6))}
                        )
                    }
                )
            }
        ),
    },
)

# the checks that read the pack's sections
_READERS = ("devices.adb", "devices.hdc", "devices.ios", "service.endpoint", "service.auth", "config.values")


@contextlib.contextmanager
def _fake_phone_tools(folder: Path) -> Iterator[None]:
    """adb and hdc that answer at once (a recorded ready phone), first on PATH for the block."""
    folder.mkdir(exist_ok=True)
    adb = folder / "adb"
    adb.write_text(f"#!{sys.executable}\n" + (FIXTURES / "fake_adb.py").read_text())
    adb.chmod(0o755)
    fake_interpreter(folder / "hdc", "echo 'FMR0223C13000649'")
    saved = {k: os.environ.get(k) for k in ("PATH", "FAKE_ADB_FIXTURE", "FAKE_ADB_PIDS")}
    os.environ["PATH"] = f"{folder}{os.pathsep}{os.environ['PATH']}"
    os.environ["FAKE_ADB_FIXTURE"] = str(FIXTURES / "ready.json")
    os.environ["FAKE_ADB_PIDS"] = str(folder / "adb.pids")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _yaml(value: object) -> str:
    """The value in YAML flow syntax: JSON for the rest, YAML's own words for NaN and the infinities."""
    if isinstance(value, float) and value != value:
        return ".nan"
    if value == float("inf"):
        return ".inf"
    if value == float("-inf"):
        return "-.inf"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_yaml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    return json.dumps(value)


_SHARED_TARGET = TargetMemo()
"""The test venv probed once for every example (as the pre-commit form does), so each example costs milliseconds."""


@settings(
    derandomize=True,
    max_examples=int(os.environ.get("AUTOGLM_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sections=_PACKS)
def test_any_pack_section_is_a_usage_error_or_a_clean_run(tmp_path: Path, sections: dict[str, object]) -> None:
    """Whatever the pack says, a run exits 0, 1 or 2 and no check that reads the pack ends in `error`.

    In-process through check_command.run (what the CLI calls), with adb and hdc answering at once
    and an endpoint that refuses: a usage error names the file; otherwise the JSON report is read.
    """
    pack = tmp_path / "p.yaml"
    pack.write_text(PHONE_HEAD + "".join(f"{name}: {_yaml(body)}\n" for name, body in sections.items()))
    args = CheckArgs(
        pack=str(pack),
        only=",".join(_READERS),
        smoke=False,
        endpoint="http://127.0.0.1:9/v1",
        output_format=Format.JSON,
    )
    out = io.StringIO()
    with _fake_phone_tools(tmp_path / "bin"), contextlib.redirect_stdout(out):
        try:
            code = check_command.run(args, RunMemo(target=_SHARED_TARGET))
        except UsageError as exc:  # exit 2: it names the file and a line
            assert str(exc).startswith(f"{pack}:"), exc
            return
    assert code in (0, 1)
    report = json.loads(out.getvalue())
    assert report["counts"]["error"] == 0, [r for r in report["results"] if r["status"] == "error"]
    assert {r["id"] for r in report["results"]} == set(_READERS)


# --------------------------------------------------------------------------- --output never replaces an input


@pytest.fixture
def deployment(tmp_path: Path) -> dict[str, Path]:
    model = build_model(tmp_path / "model")
    (model / "tokenizer.json").write_text('{"version": "1.0"}')
    venv = make_venv(tmp_path / "venv")
    config = tmp_path / "app" / "deploy.yaml"
    config.parent.mkdir()
    config.write_text(f"model_path: {model}\n")
    return {"model": model, "venv": venv.root, "python": venv.python, "config": config, "root": tmp_path}


def test_output_into_what_the_run_inspects_is_refused(deployment: dict[str, Path]) -> None:
    """--output M/config.json replaced the model's config.json with the report; now exit 2, nothing changed."""
    root, model, venv = deployment["root"], deployment["model"], deployment["venv"]
    (root / "link.json").symlink_to(model / "config.json")
    before = {name: tree_state(path) for name, path in (("model", model), ("venv", venv), ("app", root / "app"))}
    base = ["check", "--no-smoke", "--only", "weights.*", "--model", str(model), "--python", str(deployment["python"])]
    attempts = [
        ["--output", str(model / "config.json")],
        ["--format", f"json:{model / 'tokenizer.json'}"],
        ["--output", str(model / "new-report.txt")],  # absent, but inside the model folder
        ["--output", str(root / "link.json")],  # a link into the model folder
        ["--output", str(deployment["python"])],  # the interpreter itself
        ["--output", str(venv / "pyvenv.cfg")],  # inside the target environment
        ["--config", str(deployment["config"]), "--output", str(deployment["config"])],
        ["--fix", "--fix-output", str(model / "requirements.txt")],
        ["--fix", "--fix-output", str(venv / "requirements.txt")],
    ]
    for extra in attempts:
        run = doctor([*base, *extra], cwd=root, bound_s=60)
        assert run.code == 2, (extra, run.stderr)
        assert "this run" in run.stderr, run.stderr
    after = {name: tree_state(path) for name, path in (("model", model), ("venv", venv), ("app", root / "app"))}
    assert after == before
    # beside them is fine: the documented CI recipe writes the report next to the config
    run = doctor(
        [*base, "--config", str(deployment["config"]), "--output", str(root / "app" / "report.txt")],
        cwd=root,
        bound_s=60,
    )
    assert run.code in (0, 1) and (root / "app" / "report.txt").is_file()


def test_snapshot_output_into_the_model_folder_is_refused(deployment: dict[str, Path]) -> None:
    model = deployment["model"]
    before = tree_state(model)
    run = doctor(["snapshot", "--model", str(model), "-o", str(model / "config.json")], cwd=deployment["root"])
    assert run.code == 2 and "inside the model folder" in run.stderr
    assert tree_state(model) == before


def test_output_into_a_hub_cache_snapshot_is_refused(tmp_path: Path) -> None:
    """A snapshot's config.json links into blobs/: replacing the link's target would rewrite the cached model."""
    from tests.helpers.model_folders import build_hf_cache

    snapshot = build_hf_cache(tmp_path / "hub", "zai-org/AutoGLM-Phone-9B", build_model(tmp_path / "src"))
    repo = snapshot.parent.parent
    before = tree_state(repo)
    for output in (snapshot / "config.json", repo / "blobs" / "report.json"):
        run = doctor(
            [
                "check",
                "--no-smoke",
                "--only",
                "weights.*",
                "--model",
                "zai-org/AutoGLM-Phone-9B",
                "--output",
                str(output),
            ],
            cwd=tmp_path,
            env={"HF_HUB_CACHE": str(tmp_path / "hub")},
            bound_s=60,
        )
        assert run.code == 2, run.stderr
        assert "lies inside the model" in run.stderr, run.stderr
    assert tree_state(repo) == before
