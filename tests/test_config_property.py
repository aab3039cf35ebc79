"""Property-based: random and mutated YAML/JSON never crash the parser or the checks; lines stay in the file."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from autoglm_doctor.configfile.load import parse_config
from tests.helpers.config_lint import ENVIRON, PHONE_ENV, model_facts, run_checks, snapshot

VALID = sorted((Path(__file__).parent / "configs" / "valid").iterdir())
TRICKY = [
    "\t",
    ":",
    ",",
    "{",
    "}",
    "[",
    "]",
    '"',
    "'",
    "$",
    "${",
    "}",
    "\n",
    "!!python/name:os.system ",
    "&a ",
    "*a",
    "- ",
    "# ",
    "\ufeff",
    "\xff",
    "<<: ",
    "---\n",
    "  ",
    "\\",
    "=",
    "--max-model-len ",
    "9" * 30,
    "é",
]
# A fixed seed, as every property test of the suite has: CI reproduces what a developer ran. The random
# search found `?` (an empty key at the end of the stream) once: it is an explicit example below.
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _lines_in_file(raw: bytes, name: str) -> None:
    facts = parse_config(raw, shown=name, folder=Path("/srv"), cwd=Path("/srv"), environ=ENVIRON)
    total = max(1, facts.line_count)
    for d in facts.diagnostics:
        assert d.line is None or 1 <= d.line <= total, (d, total)
        assert d.column is None or d.column >= 1
    for pos in facts.positions.values():
        assert 1 <= pos[0] <= total
    json.dumps(facts.data)  # JSON-serialisable, always
    snap = snapshot(facts, env=PHONE_ENV, model=model_facts(max_position_embeddings=4096, auto_map={"A": "m.A"}))
    for pack in ("open-autoglm", "open-autoglm-phone"):
        for result in run_checks(snap, pack, ids=("config.syntax", "config.env", "config.values")).values():
            assert result.status.value != "error", result.traceback
            for f in result.findings:
                if f.location is not None and f.location.line is not None:
                    assert 1 <= f.location.line <= total, (f, total)


@SETTINGS
@given(st.binary(max_size=300), st.sampled_from(["c.yaml", "c.json", "c.toml", "serve.sh"]))
@example(b"?", "c.yaml")
@example(b"a:\n  ? ", "c.yaml")
def test_random_bytes_never_crash(raw: bytes, name: str) -> None:
    _lines_in_file(raw, name)


@SETTINGS
@given(
    st.lists(st.sampled_from(TRICKY + list("abcdefgxyz0123 ")), max_size=60).map("".join),
    st.sampled_from(["c.yaml", "c.json", "serve.sh"]),
)
def test_random_tricky_text_never_crashes(text: str, name: str) -> None:
    _lines_in_file(text.encode("utf-8", "surrogatepass"), name)


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[bytes, str]:
    path = draw(st.sampled_from(VALID))
    text = path.read_text()
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.sampled_from(TRICKY))
        if kind == "insert":
            text = text[:at] + piece + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 5)) :]
        else:
            text = text[:at] + piece + text[at + len(piece) :]
    return text.encode("utf-8", "surrogatepass"), path.name


@SETTINGS
@given(_mutated())
def test_mutated_valid_configs_never_crash(case: tuple[bytes, str]) -> None:
    _lines_in_file(*case)


# YAML itself treats NEL and the Unicode line separators as line breaks: keep them out of generated text.
_chars = st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\x85\ufeff")
_text = st.text(_chars, max_size=12)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), _text)
_documents = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(_chars, min_size=1, max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@SETTINGS
@given(st.dictionaries(st.text(_chars, min_size=1, max_size=8), _documents, min_size=1, max_size=5))
def test_round_trip_of_generated_documents(doc: dict[str, object]) -> None:
    for name, text in (("c.json", json.dumps(doc, indent=1)), ("c.yaml", yaml.safe_dump(doc, allow_unicode=True))):
        facts = parse_config(text.encode(), shown=name, folder=Path("/srv"), cwd=Path("/srv"), environ={})
        if any("$" in str(v) for v in json.dumps(doc)) or facts.secrets:
            continue  # interpolation and secret masking change values on purpose
        assert facts.diagnostics == [] and facts.data == doc
        _lines_in_file(text.encode(), name)
