"""Fuzzing: no input may crash the doctor.

Targets: the probe's metadata parsing (``probe/_script.py``: parse_metadata, egg_info_requires,
read_distribution, then the doctor's typing of the result), the config parsers (raw bytes in
YAML, JSON, TOML and launch-flag form through ``parse_config``, then the config checks and the
snapshot writer) and the safetensors header reader (raw bytes and structured headers).

Examples per target: ``AUTOGLM_FUZZ_EXAMPLES`` (default 300, what CI runs); releases run
10,000 (see docs/security.md):  AUTOGLM_FUZZ_EXAMPLES=10000 pytest tests/test_trust_fuzz.py
"""

from __future__ import annotations

import itertools
import json
import os
import runpy
import shutil
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import autoglm_doctor.probe as probe_package
from autoglm_doctor.configfile.facts import ConfigFacts
from autoglm_doctor.configfile.load import parse_config
from autoglm_doctor.probe.safetensors import DTYPE_BITS, LFS_PREFIX, SafetensorsHeader, read_header
from autoglm_doctor.probe.snapshot import Distribution, PythonFacts, Snapshot
from autoglm_doctor.redact import snapshot_json
from autoglm_doctor.serde import from_data

EXAMPLES = int(os.environ.get("AUTOGLM_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

PROBE_SCRIPT = Path(probe_package.__file__).with_name("_script.py")


def load_probe() -> dict[str, Any]:
    """The probe's functions, without running its main() (it only runs as __main__)."""
    saved = list(sys.path)
    try:
        return runpy.run_path(str(PROBE_SCRIPT), run_name="autoglm_probe_under_test")
    finally:
        sys.path[:] = saved


PROBE = load_probe()
_counter = itertools.count()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def fresh(scratch: Path) -> Path:
    """A new empty folder for one example."""
    path = scratch / f"ex{next(_counter)}"
    path.mkdir()
    return path


# --------------------------------------------------------------------------- probe metadata

HEADER_NAMES = st.sampled_from(
    ["Name", "Version", "Requires-Dist", "Requires-Python", "Metadata-Version", "Summary", "name", "VERSION", ""]
)
header_line = st.one_of(
    st.tuples(HEADER_NAMES, st.sampled_from([":", ": ", "", "::"]), st.text(max_size=40)).map("".join),
    st.text(max_size=40).map(lambda t: " " + t),  # folded continuation
    st.text(max_size=60),
)
metadata_text = st.one_of(
    st.text(max_size=400),
    st.lists(header_line, max_size=20).flatmap(
        lambda lines: st.sampled_from(["\n", "\r\n", "\r", "\x0b", "\u2028"]).map(lambda sep: sep.join(lines))
    ),
)
requires_line = st.one_of(
    st.text(max_size=40),
    st.tuples(st.text(max_size=10), st.sampled_from(["", ":"]), st.text(max_size=20)).map(lambda t: f"[{''.join(t)}]"),
    st.sampled_from(["#comment", "[", "]", "[]", "[:]", "torch>=2", "[cuda:sys_platform == 'linux']"]),
)
requires_text = st.one_of(st.text(max_size=300), st.lists(requires_line, max_size=15).map("\n".join))


def assert_distribution(dist: Any) -> None:
    """What the probe returns must survive its JSON hop and the doctor's typing."""
    assert isinstance(dist, dict)
    hopped = json.loads(json.dumps(dist))
    typed = from_data(Distribution, hopped)
    assert isinstance(typed.name, str) and isinstance(typed.version, str)
    assert all(isinstance(r, str) for r in typed.requires)
    typed.key  # noqa: B018 - normalising the name must not raise either


@FUZZ
@given(metadata_text)
def test_parse_metadata_never_crashes(text: str) -> None:
    headers = PROBE["parse_metadata"](text)
    assert isinstance(headers, dict)
    for name, values in headers.items():
        assert isinstance(name, str)
        assert all(isinstance(v, str) for v in values)


@FUZZ
@given(requires_text)
def test_egg_info_requires_never_crashes(text: str) -> None:
    out = PROBE["egg_info_requires"](text)
    assert isinstance(out, list) and all(isinstance(line, str) for line in out)


folder_stem = st.text(
    alphabet=st.characters(blacklist_characters="/\x00", blacklist_categories=["Cs"]), min_size=1, max_size=60
).filter(lambda s: s not in (".", "..") and len(s.encode("utf-8")) < 200)
encodings = st.sampled_from(["utf-8", "latin-1", "utf-16"])


def encoded(text: str, encoding: str) -> bytes:
    return text.encode(encoding, "replace")


@FUZZ
@given(
    stem=folder_stem,
    kind=st.sampled_from([".dist-info", ".egg-info", ".egg-info-file"]),
    metadata=st.one_of(
        st.none(), st.binary(max_size=300), st.tuples(metadata_text, encodings).map(lambda t: encoded(*t))
    ),
    requires=st.one_of(st.none(), st.binary(max_size=100), requires_text.map(lambda t: t.encode("utf-8", "replace"))),
    installer=st.one_of(st.none(), st.binary(max_size=30)),
    top_level=st.one_of(
        st.none(), st.binary(max_size=60), st.text(max_size=60).map(lambda t: t.encode("utf-8", "replace"))
    ),
    index=st.integers(min_value=0, max_value=50),
)
def test_read_distribution_never_crashes(
    scratch: Path,
    stem: str,
    kind: str,
    metadata: bytes | None,
    requires: bytes | None,
    installer: bytes | None,
    top_level: bytes | None,
    index: int,
) -> None:
    location = fresh(scratch)
    try:
        if kind == ".egg-info-file":  # a bare PKG-INFO file named *.egg-info
            folder = stem + ".egg-info"
            (location / folder).write_bytes(metadata or b"")
        else:
            folder = stem + kind
            path = location / folder
            path.mkdir()
            files = {
                "PKG-INFO" if kind == ".egg-info" else "METADATA": metadata,
                "requires.txt": requires,
                "INSTALLER": installer,
                "top_level.txt": top_level,
            }
            for name, content in files.items():
                if content is not None:
                    (path / name).write_bytes(content)
        dist = PROBE["read_distribution"](str(location), folder, index)
        assert_distribution(dist)
        assert dist["path_index"] == index
    finally:
        shutil.rmtree(location, ignore_errors=True)


def test_probe_still_runs_as_a_script() -> None:
    """The guard that lets tests import the probe leaves `python -` running main()."""
    from autoglm_doctor.probe.collect import run_probe

    data = run_probe(None, Path.cwd())
    assert data["python"]["version"]
    assert any(d["name"].lower() == "hypothesis" for d in data["distributions"])


# --------------------------------------------------------------------------- config parsers

CONFIG_NAMES = ["autoglm.yaml", "autoglm.json", "autoglm.toml", "launch.sh", "autoglm.conf"]
yaml_piece = st.sampled_from(
    [
        "model:",
        "  model_path: ${MODEL_WEIGHT_PATH}",
        "  device: cuda:0",
        "\tdevice_map: auto",
        "  torch_dtype: bfloat16",
        "max_batch_size: 5000",
        "max_batch_size: -1",
        "model_max_length: 1e309",
        "request_timeout: .inf",
        "trust_remote_code: yes",
        "auth:",
        "  require_token: true",
        "  secret_key: changeme",
        "  secret_key: ${SECRET",
        "api_key: sk-0123456789",
        "port: 99999",
        "host: 0.0.0.0",
        "- a",
        "? complex",
        "&anchor a: 1",
        "b: *anchor",
        "c: *missing",
        "<<: *anchor",
        "!!python/object:os.system x: 1",
        "d: !!binary AAAA",
        "e: !custom 3",
        "f: [1, 2,",
        "g: {h: 1, h: 2}",
        "dup: 1",
        "dup: 2",
        "---",
        "...",
        "%YAML 1.1",
        '"quoted: key": "v\\x"',
        "'single': 'it''s'",
        "k: |",
        "  block",
        "# comment",
        "",
        "device: ${DEVICE:-cpu}",
        "load_in_8bit: true",
        "load_in_4bit: true",
        "attn_implementation: flash_attention_2",
        "deep: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    ]
)
CONFIG_KEYS = ["model", "model_path", "device", "device_map", "torch_dtype", "max_batch_size", "auth", "secret_key"]


def json_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Lists and objects of ``inner`` (objects keyed by config names or random text)."""
    keys = st.one_of(st.sampled_from(CONFIG_KEYS), st.text(max_size=10))
    return st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5))


json_piece = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
        st.sampled_from(["${MODEL_WEIGHT_PATH}", "${UNSET}", "$", "${", "cuda:0", "auto", "bfloat16"]),
    ),
    json_containers,
    max_leaves=20,
)
flags_piece = st.sampled_from(
    [
        "vllm serve",
        "python -m vllm.entrypoints.openai.api_server",
        "--model",
        "/models/glm",
        "--max-model-len",
        "32768",
        "--dtype=bfloat16",
        "--trust-remote-code",
        "--tensor-parallel-size",
        "abc",
        "'unterminated",
        '"quoted arg"',
        "\\",
        "--port=${PORT}",
        "KEY=value",
        "--",
    ]
)


def json_text(value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=True)
    except (ValueError, RecursionError):
        return "{}"


config_bytes = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.lists(yaml_piece, max_size=25).map(lambda lines: "\n".join(lines).encode("utf-8")),
    json_piece.map(lambda v: json_text(v).encode("utf-8")),
    st.lists(flags_piece, max_size=20).map(lambda words: " ".join(words).encode("utf-8")),
    st.tuples(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b""]), st.binary(max_size=80)).map(
        lambda t: t[0] + t[1]
    ),
)


def config_checks() -> list[Any]:
    from autoglm_doctor import registry

    loaded = registry.load()
    return [spec for check_id, spec in loaded.checks.items() if check_id.startswith("config.")]


CONFIG_CHECKS = config_checks()


def evaluate(facts: ConfigFacts, folder: Path) -> Iterator[tuple[str, str]]:
    """Run the config checks over a snapshot holding ``facts``: (check id, status) of each."""
    from autoglm_doctor import packs, runner
    from autoglm_doctor.context import CheckContext, Options

    python = PythonFacts(
        version="3.11.7",
        implementation="cpython",
        executable=sys.executable,
        prefix="/",
        base_prefix="/",
        env_kind="venv",
    )
    snap = Snapshot(python=python, config=facts)
    ctx = CheckContext(pack=packs.load(None), options=Options(smoke=False, from_snapshot=True))
    for spec in CONFIG_CHECKS:
        result = runner.run_check(spec, snap, ctx)
        yield spec.id, result.status.value if result.traceback is None else f"error\n{result.traceback}"


ENVIRON = {"MODEL_WEIGHT_PATH": "/models/glm", "DEVICE": "cpu", "EMPTY": "", "HF_TOKEN": "hf_fuzz_token_value"}


@FUZZ
@given(raw=config_bytes, name=st.sampled_from(CONFIG_NAMES))
def test_config_parsing_never_crashes(scratch: Path, raw: bytes, name: str) -> None:
    folder = fresh(scratch)
    try:
        facts = parse_config(raw, shown=name, folder=folder, cwd=folder, environ=ENVIRON)
        assert isinstance(facts, ConfigFacts)
        assert facts.parsed == bool(facts.data) or facts.parsed
        # The snapshot writer and `check --snapshot` must take whatever the parser produced.
        text = snapshot_json(Snapshot(python=PythonFacts("3.11", "cpython", "", "", "", "venv"), config=facts))
        again = Snapshot.from_dict(json.loads(text))
        assert again.config is not None and again.config.path == name
        crashed = [(check_id, status) for check_id, status in evaluate(facts, folder) if status.startswith("error")]
        assert not crashed, f"config checks crashed on {raw!r}: {crashed}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- safetensors headers

dims = st.one_of(st.integers(min_value=0, max_value=64), st.integers(), st.booleans(), st.text(max_size=3))
tensor_entry = st.one_of(
    st.fixed_dictionaries(
        {
            "dtype": st.one_of(st.sampled_from(sorted(DTYPE_BITS)), st.text(max_size=5), st.integers()),
            "shape": st.one_of(st.lists(dims, max_size=4), st.integers(), st.none()),
            "data_offsets": st.one_of(
                st.lists(st.integers(min_value=-5, max_value=5000), max_size=3), st.text(max_size=4)
            ),
        }
    ),
    json_piece,
)
header_dict = st.dictionaries(st.one_of(st.text(max_size=12), st.just("__metadata__")), tensor_entry, max_size=6)


@st.composite
def safetensors_bytes(draw: st.DrawFn) -> bytes:
    header = json_text(draw(header_dict)).encode("utf-8")
    header += b" " * draw(st.integers(min_value=0, max_value=8))
    declared = draw(st.one_of(st.just(len(header)), st.integers(min_value=0, max_value=(1 << 64) - 1)))
    data = draw(st.binary(max_size=256))
    return struct.pack("<Q", declared) + header + data


weight_bytes = st.one_of(
    st.binary(max_size=300),
    safetensors_bytes(),
    st.binary(max_size=200).map(lambda b: LFS_PREFIX + b),
    st.tuples(st.integers(min_value=0, max_value=300), st.binary(max_size=300)).map(
        lambda t: struct.pack("<Q", t[0]) + t[1]
    ),
)


@FUZZ
@given(weight_bytes)
def test_safetensors_header_reader_never_crashes(scratch: Path, raw: bytes) -> None:
    folder = fresh(scratch)
    try:
        path = folder / "model.safetensors"
        path.write_bytes(raw)
        header = read_header(path)
        assert isinstance(header, SafetensorsHeader)
        assert header.size == len(raw)
        if header.error:
            assert isinstance(header.error, str)
        else:
            assert header.expected_size is not None
            assert header.parameter_count >= 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)
