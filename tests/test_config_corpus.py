"""The corpus under tests/configs/: each broken config is reported with its check id, code and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.config_lint import (
    DEFAULT_INSTALLED,
    PHONE_ENV,
    facts_for,
    findings,
    model_facts,
    run_checks,
    snapshot,
)

CORPUS = Path(__file__).parent / "configs"
EXPECTATIONS: dict[str, dict[str, Any]] = yaml.safe_load((CORPUS / "expectations.yaml").read_text())["files"]


def _lint(name: str, spec: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    phone = Path(name).name.startswith("serve")
    pack = spec.get("pack") or ("open-autoglm-server,open-autoglm-phone" if phone else "open-autoglm")
    model = model_facts(**spec["model"]) if "model" in spec else None
    snap = snapshot(
        facts_for(CORPUS / name, cwd=CORPUS.parent),
        installed=spec.get("installed", DEFAULT_INSTALLED),
        env=spec.get("env", PHONE_ENV if phone else {}),
        model=model,
        gpu_gib=spec.get("gpu_gib", 80),
        torch_cuda=spec.get("torch_cuda", "12.1"),
    )
    results = run_checks(snap, pack)
    assert not [r.id for r in results.values() if r.status.value == "error"], "a config check crashed"
    return findings(results)


def test_corpus_is_complete() -> None:
    on_disk = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.is_file() and p.parent.name != "relweights"}
    on_disk.discard("expectations.yaml")
    assert on_disk == set(EXPECTATIONS), "every corpus file needs an expectation (and every expectation a file)"
    broken = [n for n in EXPECTATIONS if not n.startswith("valid/")]
    assert len(broken) >= 30


@pytest.mark.parametrize("name", sorted(n for n in EXPECTATIONS if not n.startswith("valid/")))
def test_broken_config_is_reported_at_its_line(name: str) -> None:
    spec = EXPECTATIONS[name]
    expected = sorted((c, code, line) for c, code, line in spec["expect"])
    assert _lint(name, spec) == expected


@pytest.mark.parametrize("name", sorted(n for n in EXPECTATIONS if n.startswith("valid/")))
def test_valid_config_gives_no_finding(name: str) -> None:
    assert _lint(name, EXPECTATIONS[name]) == []
