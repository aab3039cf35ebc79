"""Parsing with positions: YAML, JSON, TOML and launch flags; encodings; aliases; unsafe tags."""

from __future__ import annotations

import json
from pathlib import Path

from autoglm_doctor.configfile.load import parse_config
from autoglm_doctor.configfile.parse import ALIAS_EXPANSION_LIMIT, Source, detect_format, parse
from autoglm_doctor.probe.snapshot import Snapshot
from tests.helpers.config_lint import ENVIRON, python_facts


def _facts(text: str | bytes, name: str = "deploy.yaml", environ: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    raw = text.encode() if isinstance(text, str) else text
    return parse_config(raw, shown=name, folder=Path("/srv/app"), cwd=Path("/srv"), environ=environ or ENVIRON)


def _codes(facts) -> list[tuple[str, int | None, int | None]]:  # type: ignore[no-untyped-def]
    return [(d.code, d.line, d.column) for d in facts.diagnostics]


def test_yaml_positions_point_at_values_and_keys() -> None:
    facts = _facts("model:\n  device_map: auto\n  stop: [a, b]\nport: 8000\n")
    assert facts.positions["model"] == [1, 1]
    assert facts.positions["model.device_map"] == [2, 15]
    assert facts.positions["model.stop"] == [3, 3]
    assert "model.stop.1" not in facts.positions  # positions go two levels deep
    assert facts.positions["port"] == [4, 7]
    assert facts.data == {"model": {"device_map": "auto", "stop": ["a", "b"]}, "port": 8000}
    assert facts.parsed and facts.format == "yaml" and facts.line_count == 4


def test_duplicate_key_names_both_places_and_last_value_wins() -> None:
    facts = _facts("a: 1\nb: 2\na: 3\n")
    (d,) = facts.diagnostics
    assert (d.code, d.line, d.column) == ("config.duplicate-key", 3, 1)
    assert "lines 1 and 3" in d.message
    assert facts.data["a"] == 3 and facts.positions["a"] == [3, 4]


def test_syntax_error_has_line_column_and_caret_excerpt() -> None:
    facts = _facts("model_path: /m\ndevice: cuda: 0\n")
    (d,) = facts.diagnostics
    assert (d.code, d.line, d.column) == ("config.syntax-error", 2, 13)
    assert d.excerpt == "device: cuda: 0\n            ^"
    assert not facts.parsed and facts.data == {}


def test_tab_indentation_is_reported_once_with_its_column() -> None:
    facts = _facts("model:\n  a: 1\n \tb: 2\n")
    assert _codes(facts) == [("config.tab-indent", 3, 2)]
    assert "→" in facts.diagnostics[0].excerpt


def test_tab_inside_block_scalar_is_content_not_indentation() -> None:
    facts = _facts("prompt: |\n  first\n  \tindented with a tab inside the text\nport: 8000\n")
    assert _codes(facts) == []
    assert facts.data["port"] == 8000


def test_bom_is_noted_and_dropped() -> None:
    facts = _facts(b"\xef\xbb\xbfport: 8000\n")
    assert _codes(facts) == [("config.bom", 1, 1)]
    assert facts.data == {"port": 8000}


def test_non_utf8_byte_position() -> None:
    facts = _facts("a: 1\nb: caf\u00e9\n".encode("latin-1"))
    (d,) = facts.diagnostics
    assert (d.code, d.line, d.column) == ("config.encoding", 2, 7)
    assert "0xe9" in d.message


def test_unsafe_tag_is_never_constructed() -> None:
    facts = _facts("x: !!python/object/new:builtins.dict {}\ny: !!python/name:os.system\nz: 1\n")
    assert [d.code for d in facts.diagnostics] == ["config.unsafe-tag", "config.unsafe-tag"]
    assert facts.data == {"x": None, "y": None, "z": 1}


def test_alias_bomb_is_refused_without_expanding() -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    facts = _facts("\n".join(lines) + "\n")
    assert [d.code for d in facts.diagnostics] == ["config.alias-bomb"]
    assert facts.data == {}
    assert ALIAS_EXPANSION_LIMIT < 9**9


def test_recursive_alias_and_merge_keys() -> None:
    facts = _facts("base: &base {device: cpu, port: 1}\nsvc:\n  <<: *base\n  port: 8000\nloop: &l [*l]\n")
    assert facts.data["svc"] == {"device": "cpu", "port": 8000}
    assert [d.code for d in facts.diagnostics] == ["config.recursive-alias"]


def test_json_trailing_commas_each_reported_at_the_comma() -> None:
    facts = _facts('{\n  "a": [1, 2,],\n  "b": 1,\n}\n', "c.json")
    assert _codes(facts) == [("config.trailing-comma", 2, 13), ("config.trailing-comma", 3, 9)]


def test_json_positions_and_duplicates_deep_down() -> None:
    text = '{"a": {"b": {"c": {"d": 1, "d": 2}}}, "list": [{"x": 1}, 5]}'
    facts = _facts(text, "c.json")
    assert _codes(facts) == [("config.duplicate-key", 1, 28)]
    assert facts.positions["list.1"] == [1, 58]
    assert facts.positions["a.b"] == [1, 8] and "a.b.c" not in facts.positions
    assert facts.data == json.loads(text)


def test_json_hints_for_comments_and_single_quotes() -> None:
    assert "comments" in _facts('{\n  // x\n  "a": 1}', "c.json").diagnostics[0].message
    assert "double quotes" in _facts("{'a': 1}", "c.json").diagnostics[0].message


def test_toml_positions_and_errors() -> None:
    facts = _facts('[model]\nmodel_path = "/m"\nmodel_max_length = 512\n', "c.toml")
    assert facts.positions["model.model_max_length"] == [3, 20]
    assert facts.data == {"model": {"model_path": "/m", "model_max_length": 512}}
    bad = _facts("a = 1\na = 2\n", "c.toml")
    assert _codes(bad)[0][:2] == ("config.duplicate-key", 2)


def test_launch_flags_with_continuations_quotes_and_equals() -> None:
    text = (
        "vllm serve zai-org/AutoGLM-Phone-9B \\\n"
        "  --served-model-name=autoglm-phone-9b \\\n"
        "  --limit-mm-per-prompt '{\"image\":10}' --enforce-eager \\\n"
        "  --max_model_len 8192  # comment\n"
    )
    parsed = parse(text, "flags")
    assert parsed.data == {
        "model": "zai-org/AutoGLM-Phone-9B",
        "served-model-name": "autoglm-phone-9b",
        "limit-mm-per-prompt": '{"image":10}',
        "enforce-eager": True,
        "max-model-len": 8192,
    }
    assert parsed.positions["served-model-name"] == [2, 23]
    assert parsed.positions["max-model-len"] == [4, 19]
    assert parsed.diagnostics == []


def test_format_detection() -> None:
    assert detect_format("serve.sh", "") == "flags"
    assert detect_format("x.conf", "--max-model-len 1") == "flags"
    assert detect_format("x.conf", ' {"a": 1}') == "json"
    assert detect_format("x", "a: 1") == "yaml"


def test_source_excerpt_shortens_long_lines() -> None:
    src = Source("x" * 300 + "!\n")
    excerpt = src.excerpt(1, 301)
    first, caret = excerpt.split("\n")
    assert first.startswith("…") and len(first) < 130 and first[len(caret) - 1] == "!"


def test_facts_round_trip_through_a_snapshot() -> None:
    facts = _facts("model:\n  model_path: ${MODEL_WEIGHT_PATH}\n  bad: ${NOPE_NOT_SET_X}\nauth:\n  secret_key: abc\n")
    snap = Snapshot(python=python_facts(), config=facts)
    again = Snapshot.from_dict(json.loads(snap.to_json()))
    assert again.config == facts
    assert again.config is not None and again.config.positions["model.model_path"] == [2, 15]
