"""The fast YAML readers (line scanner, libyaml events) give exactly what the node builder gives, or step aside."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoglm_doctor.configfile import parse
from autoglm_doctor.configfile.parse import Parsed, Source

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


def _same(a: Parsed, b: Parsed) -> None:
    assert _typed(a.data) == _typed(b.data)
    assert list(a.positions.items()) == list(b.positions.items())
    assert a.diagnostics == b.diagnostics


def _typed(value: Any) -> Any:
    """The value with every type spelled out (so 1, 1.0 and True differ)."""
    if isinstance(value, dict):
        return ("dict", [(k, _typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_typed(v) for v in value])
    return (type(value).__name__, repr(value))


def _node_builder(text: str, monkeypatch: pytest.MonkeyPatch) -> Parsed:
    with monkeypatch.context() as patch:
        patch.setattr(parse, "_fast_yaml", lambda source: None)
        patch.setattr(parse, "_events_yaml", lambda source: None)
        return parse.parse_yaml(Source(text))


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
def test_fast_readers_agree_with_the_node_builder(loader: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if loader == "python":
        monkeypatch.setattr(parse, "_YAML_LOADER", yaml.SafeLoader)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML was built without libyaml")
    taken = {"lines": 0, "events": 0}
    for text in _documents():
        expected = _node_builder(text, monkeypatch)
        fast = parse._fast_yaml(Source(text))
        if fast is not None:
            taken["lines"] += 1
            _same(fast, expected)
        events = parse._events_yaml(Source(text))
        if events is not None:
            taken["events"] += 1
            tabs = [d for d in expected.diagnostics if d.code == "config.tab-indent"]
            _same(Parsed(events.data, events.positions, tabs + events.diagnostics), expected)
    assert taken["lines"] > 50 and taken["events"] > 100, taken  # both readers do take part


def test_plain_block_yaml_takes_the_line_scanner_and_the_rest_the_events() -> None:
    plain = parse._fast_yaml(Source(PLAIN_BLOCK))
    assert plain is not None
    assert plain.data["server"] == {"host": "0.0.0.0", "port": "8000", "timeout": 90, "ratio": 1500.0, "empty": None}
    assert plain.data["1"] == "one" and plain.data["null"] == "nothing"
    assert plain.positions["templates.1"] == [23, 5]
    assert parse._fast_yaml(Source(ANCHORS_AND_FLOW)) is None
    events = parse._events_yaml(Source(ANCHORS_AND_FLOW))
    assert events is not None
    assert events.data["model"] == {"device": "cuda:0", "dtype": "float16", "stop": ["a", "b", "c", 1]}
    assert events.data["both"] == {"device": "cuda", "dtype": "bfloat16", "extra": 1}
    assert [(d.code, d.line) for d in events.diagnostics] == [("config.duplicate-key", 7)]
    for refused in ("a: !!python/name:os.system ''\n", "a: &x [*x]\n", "a: 1\n---\nb: 2\n", "a: [1,\n"):
        assert parse._events_yaml(Source(refused)) is None  # the node builder reports these
