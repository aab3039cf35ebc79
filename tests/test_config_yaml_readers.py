"""The one YAML reader (PyYAML's composer + one walk) builds what PyYAML's safe loader builds, with positions."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoglm_doctor.configfile import parse
from autoglm_doctor.configfile.parse import Source, parse_yaml
from autoglm_doctor.yamlpos import YamlError, load

CONFIGS = Path(__file__).parent / "configs"

PLAIN_BLOCK = (
    "# deployment\n"
    "---\n"
    "model:\n"
    "  model_path: ${MODEL_WEIGHT_PATH}   # the weights\n"
    "  torch_dtype: bfloat16\n"
    "  trust_remote_code: yes\n"
    "  device_map:\n"
    "    transformer.layers.0: 0\n"
    "    transformer.layers.1: 1\n"
    "  stop: []\n"
    "server:\n"
    "  host: '0.0.0.0'\n"
    '  port: "8000"\n'
    "  timeout: 1:30\n"
    "  ratio: 1.5e+3\n"
    "  empty:\n"
    "templates:\n"
    "- name: task-0\n"
    "  tags:\n"
    "  - phone\n"
    "  - 中文 é\n"
    "  weights: {}\n"
    "-   name: it's # not a comment start\n"
    "    max_new_tokens: 0x1F\n"
    "1: one\n"
    "null: nothing\n"
)
ANCHORS_AND_FLOW = (
    "defaults: &defaults {device: cuda, dtype: bfloat16}\n"
    "model:\n"
    "  <<: *defaults\n"
    "  dtype: float16\n"
    "  stop: [a, 'b', \"c\", 1]\n"
    "  device: cpu\n"
    "  device: cuda:0\n"
    "both:\n"
    "  <<: [*defaults, {extra: 1}]\n"
    "keys:\n"
    "  - &k name\n"
    "  - *k\n"
    "block: |\n"
    "  text\n"
    "folded: >\n"
    "  more text\n"
    'quoted: "tab\\there"\n'
)
CASES = [
    PLAIN_BLOCK,
    ANCHORS_AND_FLOW,
    "a: 1\na: 2\n",
    "a:\n  - x\n  - y\nb: 1\n",
    "a:\n    b: 1\n  c: 2\n",
    "a: b\n  continued\n",
    "a: b: c\n",
    "- - x\n",
    "-\n  a: 1\n",
    "a: 1\n---\nb: 2\n",
    "a: &x [*x]\n",
    "a: *undefined\n",
    "a: &x 1\nb: &x 2\n",
    "? [complex]\n: 1\n",
    "a: !!python/name:os.system ''\n",
    "a: !!str 1\n",
    "a: =\n",
    "k" * 1100 + ": 1\n",
    "a: [" * 120 + "]" * 120 + "\n",
    "a:\n\tb: 1\n",
    "a: 1\r\nb: 2\r\n",
    "",
    "# only a comment\n",
    "---\n",
]
TRICKY = [
    "\t", ":", ",", "{", "}", "[", "]", '"', "'", "$", "\n", "!!python/name:os.system ", "&a ", "*a", "- ", "# ", "é",
    "<<: ", "<<: *a\n", "---\n", "  ", "\\", "=", ": ", "-", "#", "\n  ", "\n- ", "~", "yes", "[]", "{}", "? ", "|",
]  # fmt: skip


def _typed(value: Any) -> Any:
    """The value with every type spelled out (so 1, 1.0 and True differ)."""
    if isinstance(value, dict):
        return ("dict", [(k, _typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_typed(v) for v in value])
    return (type(value).__name__, repr(value))


def _as_config(value: Any) -> Any:
    """What safe_load built, in the reader's terms: keys as text (``null``, ``true``, ``1``)."""
    if isinstance(value, dict):
        return {
            (k if isinstance(k, str) else "null" if k is None else str(k).lower()): _as_config(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_as_config(v) for v in value]
    return value


def _plain(value: Any) -> bool:
    """Only the types both readers build alike (timestamps, binary and sets stay text in the reader)."""
    if isinstance(value, dict):
        return all(isinstance(k, (str, int, float, bool)) or k is None for k in value) and all(
            map(_plain, value.values())
        )
    if isinstance(value, list):
        return all(map(_plain, value))
    return value is None or isinstance(value, (str, int, float, bool))


def _documents() -> list[str]:
    bases = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(CONFIGS.rglob("*.y*ml"))]
    bases += CASES
    rnd = random.Random(20261125)
    mutated = []
    for _ in range(600):
        text = rnd.choice(bases)
        for _ in range(rnd.randint(1, 3)):
            at = rnd.randrange(len(text) + 1)
            if rnd.random() < 0.7:
                text = text[:at] + rnd.choice(TRICKY) + text[at:]
            else:
                text = text[:at] + text[at + rnd.randint(1, 4) :]
        mutated.append(text)
    return bases + mutated


@pytest.mark.parametrize("loader", ["libyaml", "python"])
def test_the_reader_builds_what_safe_load_builds(loader: str, monkeypatch: pytest.MonkeyPatch) -> None:
    safe: type[Any] = yaml.SafeLoader
    if loader == "python":
        monkeypatch.setattr(parse, "_YAML_LOADER", yaml.SafeLoader)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML was built without libyaml")
    else:
        safe = yaml.CSafeLoader
    compared = refused = 0
    for text in _documents():
        got = parse_yaml(Source(text))
        codes = {d.code for d in got.diagnostics if d.severity == "error"}
        if "config.alias-bomb" in codes:
            continue  # safe_load would expand it
        try:
            expected = yaml.load(text, Loader=safe)  # noqa: S506 - a safe loader
        except (yaml.YAMLError, RecursionError, TypeError):
            assert codes, text  # what safe_load refuses, the reader reports
            refused += 1
            continue
        if codes or not _plain(expected):
            continue  # the reader is stricter (recursive aliases, unknown tags) or keeps text
        assert _typed(got.data) == _typed(_as_config(expected)), text
        compared += 1
    assert compared > 250 and refused > 200, (compared, refused)  # both sides of the comparison take part


def test_plain_block_yaml_with_positions() -> None:
    plain = parse_yaml(Source(PLAIN_BLOCK))
    assert plain.diagnostics == []
    assert plain.data["server"] == {"host": "0.0.0.0", "port": "8000", "timeout": 90, "ratio": 1500.0, "empty": None}
    assert plain.data["1"] == "one" and plain.data["null"] == "nothing"
    assert plain.positions["templates.1"] == [23, 5]
    assert plain.positions["model.torch_dtype"] == [5, 16]
    assert "model.device_map.transformer.layers.0" not in plain.positions  # deeper than POSITION_DEPTH


def test_anchors_merges_flow_and_duplicates() -> None:
    events = parse_yaml(Source(ANCHORS_AND_FLOW))
    assert events.data["model"] == {"device": "cuda:0", "dtype": "float16", "stop": ["a", "b", "c", 1]}
    assert events.data["both"] == {"device": "cuda", "dtype": "bfloat16", "extra": 1}
    assert events.positions["model.device"] == [7, 11]  # the duplicate that wins
    assert [(d.code, d.line) for d in events.diagnostics] == [("config.duplicate-key", 7)]


@pytest.mark.parametrize(
    ("text", "code", "line", "column"),
    [
        ("a: !!python/name:os.system ''\n", "config.unsafe-tag", 1, 4),
        ("a: &x [*x]\n", "config.recursive-alias", 1, 4),
        ("a: 1\n---\nb: 2\n", "config.multiple-documents", 2, 1),
        ("a: [1,\n", "config.syntax-error", 1, 7),
        ("? [complex]\n: 1\n", "config.complex-key", 1, 3),
        ("a: !custom 1\n", "config.unknown-tag", 1, 4),
    ],
)
def test_what_the_walk_reports(text: str, code: str, line: int, column: int) -> None:
    found = [(d.code, d.line, d.column) for d in parse_yaml(Source(text)).diagnostics]
    assert (code, line, column) in found, found


def test_positions_at_every_depth_for_the_doctors_own_yaml() -> None:
    doc = load("launch:\n  flags:\n    port:\n      min: 1\n      max: 65535\n", "pack.yaml")
    assert doc.data == {"launch": {"flags": {"port": {"min": 1, "max": 65535}}}}
    assert doc.line(("launch", "flags", "port", "max")) == 5
    assert doc.line(("launch", "flags", "port", "nope")) == 3  # the nearest parent
    with pytest.raises(YamlError, match=r"pack.yaml:2: .*'a' is defined twice"):
        load("a: 1\na: 2\n", "pack.yaml")
    with pytest.raises(YamlError, match=r"pack.yaml:1: .*python"):
        load("a: !!python/object:os.system {}\n", "pack.yaml")
