"""config.request: a sample batch request linted item by item, with index and line."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from autoglm_doctor.configfile.rules import RequestPolicy
from tests.helpers.config_lint import run_checks, snapshot


def _lint(tmp_path: Path, text: str) -> list[tuple[str, int | None, str]]:
    path = tmp_path / "request.json"
    path.write_text(text)
    result = run_checks(snapshot(None), request=path, ids=("config.request",))["config.request"]
    return [(f.code, f.location.line if f.location else None, f.message) for f in result.findings]


def test_valid_batch_passes(tmp_path: Path) -> None:
    image = base64.b64encode(b"\x89PNG fake screenshot").decode()
    items = [{"id": str(i), "data": {"pixels": [[0, 1], [2, 3]], "image": image}} for i in range(3)]
    assert _lint(tmp_path, json.dumps(items, indent=2)) == []


def test_each_offending_item_with_index_and_line(tmp_path: Path) -> None:
    text = (
        "[\n"
        '  {"id": 1, "data": [[1, 2], [3, 4]]},\n'
        '  {"id": 2, "data": [[1, 2, 3], [4, 5, 6]]},\n'
        '  {"id": 1, "data": [[1, 2], [3, 4]]},\n'
        '  {"id": 4, "data": [[1, 2], [3]]},\n'
        '  {"id": 5, "data": [[1, 2], [3, 4]], "image": "not base64!"},\n'
        '  {"id": 6, "data": [[1, 2], [3, 4]], "meta": {"thumb": "data:image/png;base64,@@@"}},\n'
        '  {"data": [[1, 2], [3, 4]]},\n'
        "  7\n"
        "]\n"
    )
    got = [(code, line) for code, line, _ in _lint(tmp_path, text)]
    assert got == [
        ("config.request-shape", 3),
        ("config.request-duplicate-id", 4),
        ("config.request-shape", 5),
        ("config.request-base64", 6),
        ("config.request-base64", 7),
        ("config.request-item", 8),
        ("config.request-item", 9),
    ]
    messages = [m for _, _, m in _lint(tmp_path, text)]
    assert messages[0].startswith("item 1 (line 3): its 'data' is 2x3, but item 0 has 2x2")
    assert "item 0 (line 2)" in messages[1]


def test_too_many_items(tmp_path: Path) -> None:
    items = [{"id": i, "data": [i]} for i in range(1001)]
    text = "[\n" + ",\n".join(json.dumps(i) for i in items) + "\n]\n"
    assert [(c, line) for c, line, _ in _lint(tmp_path, text)] == [("config.request-too-many", 1002)]
    assert RequestPolicy().max_items == 1000


def test_not_an_array_and_syntax_errors(tmp_path: Path) -> None:
    assert [c for c, _, _ in _lint(tmp_path, '{"id": 1, "data": []}')] == ["config.request-not-array"]
    assert [(c, line) for c, line, _ in _lint(tmp_path, '[\n  {"id": 1, "data": [1]},\n]')] == [
        ("config.request-syntax", 2)
    ]


def test_missing_file(tmp_path: Path) -> None:
    result = run_checks(snapshot(None), request=tmp_path / "nope.json", ids=("config.request",))["config.request"]
    assert result.status.value == "fail" and result.findings[0].code == "config.request-missing"


def test_skips_without_request() -> None:
    result = run_checks(snapshot(None), ids=("config.request",))["config.request"]
    assert result.status.value == "skip"
