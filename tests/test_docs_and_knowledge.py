"""Docs for every check, and a knowledge base whose every table loads and names its sources."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from autoglm_doctor import knowledge, registry
from autoglm_doctor.knowledge import packages as kp

REPO = Path(__file__).resolve().parents[1]


def test_every_check_is_documented() -> None:
    loaded = registry.load(plugins=False)
    missing = [i for i in loaded.checks if not (REPO / "docs" / "checks" / f"{i}.md").is_file()]
    assert missing == []
    for spec in loaded.checks.values():
        assert spec.decides and spec.why and spec.fix, spec.id


def test_every_design_check_id_is_registered() -> None:
    design = REPO.parent / "shared" / "DESIGN.md"
    if not design.is_file():
        pytest.skip("the shared DESIGN.md is not beside this checkout")
    rows = [line.split("|") for line in design.read_text(encoding="utf-8").splitlines() if line.startswith("| ")]
    ids = {cells[1].strip() for cells in rows if re.fullmatch(r"[a-z]+\.[a-z-]+", cells[1].strip())}
    assert len(ids) >= 20
    assert sorted(ids - set(registry.load(plugins=False).checks)) == []


@pytest.mark.parametrize("name", knowledge.table_names())
def test_knowledge_table_loads_with_sources(name: str) -> None:
    doc = knowledge.load_table(name)
    assert doc.data["sources"]


def test_knowledge_accessors() -> None:
    assert str(kp.torch_release("2.1.2+cu121").python) in ("<3.12,>=3.8", ">=3.8,<3.12")  # type: ignore[union-attr]
    assert kp.torch_release("9.9") is None
    row = kp.transformers_release("4.57.6")
    assert row is not None and row.runtime_torch == "2.1"
    assert kp.torchvision_pairs()["2.13"] == "0.28"
    assert any(c.id == "numpy2-old-torch" for c in kp.combinations())


def test_selection_and_order() -> None:
    from autoglm_doctor.runner import SelectionError, select

    checks = registry.load(plugins=False).checks
    chosen = [s.id for s in select(checks, "python.*,packages.versions")]
    assert chosen == ["python.version", "python.venv", "packages.versions"]
    assert [s.id for s in select(checks, "packages.*", "packages.c*,packages.s*")] == [
        "packages.required",
        "packages.versions",
        "packages.abi",
    ]
    with pytest.raises(SelectionError):
        select(checks, "nope.*")
    last = [s for s in checks.values() if s.last]
    assert list(checks.values())[-len(last) :] == last if last else True
