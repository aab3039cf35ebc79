"""The lock's comments are written after resolution: what the resolver kept is not "changed", and the resolver is named.

Through the CLI with a real resolver (uv, then pip) over the tests' offline wheelhouse. The environment has
transformers 4.29.2 (outside the pack's range) whose cap on huggingface-hub makes the plan leave that
package to the resolver; the resolver keeps the installed 0.20.3 (the only one there is).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers.venvs import healthy, make_venv
from tests.test_fix_install import _check, offline, wheelhouse, with_uv  # noqa: F401 - fixtures


def _old_transformers_capping_the_hub(tmp_path: Path) -> Path:
    venv = healthy(make_venv(tmp_path / "broken"))
    for folder in [*venv.site_packages.glob("transformers*"), *venv.site_packages.glob("tokenizers*")]:
        shutil.rmtree(folder)
    venv.add("transformers", "4.29.2", ["tokenizers<0.14,>=0.11.1", "numpy>=1.17", "huggingface-hub<1.0,>=0.14.1"])
    venv.add("tokenizers", "0.13.3")
    return venv.python


def _lock_text(capsys, python: Path, wheels: Path, workdir: Path) -> str:  # type: ignore[no-untyped-def]
    code, _, err = _check(capsys, "--python", str(python), "--fix", "--no-index", "--find-links", str(wheels))
    assert "a lock of" in err, err
    return (workdir / "requirements-autoglm.txt").read_text(encoding="utf-8")


def _section(text: str, title: str) -> str:
    return text.split(title, 1)[1].split("\n\n", 1)[0] if title in text else ""


@pytest.mark.slow
def test_a_package_the_resolver_kept_is_not_under_changed_and_uv_is_named(  # type: ignore[no-untyped-def]
    tmp_path: Path,
    workdir: Path,
    wheelhouse: Path,  # noqa: F811
    with_uv: str,  # noqa: F811
    capsys,
) -> None:
    text = _lock_text(capsys, _old_transformers_capping_the_hub(tmp_path), wheelhouse, workdir)
    assert "# Resolver: uv " in text
    changed, kept = _section(text, "# Changed or added"), _section(text, "# Kept at the installed version")
    assert "transformers==4.35.2" in changed
    assert "huggingface-hub==0.20.3" not in changed and "huggingface-hub==0.20.3" in kept
    assert "unchanged: uv kept the installed 0.20.3" in kept
    assert "pip picks" not in text  # uv chose, and the comment says what it chose
    assert "uv picked 0.15.0" in changed  # tokenizers: freed by the plan, chosen by uv


@pytest.mark.slow
def test_pip_is_named_when_pip_resolved(  # type: ignore[no-untyped-def]
    tmp_path: Path,
    workdir: Path,
    wheelhouse: Path,  # noqa: F811
    offline: None,  # noqa: F811
    capsys,
) -> None:
    text = _lock_text(capsys, _old_transformers_capping_the_hub(tmp_path), wheelhouse, workdir)
    assert "# Resolver: pip " in text
    assert "pip picked 0.15.0" in _section(text, "# Changed or added")
    assert "unchanged: pip kept the installed 0.20.3" in _section(text, "# Kept at the installed version")


def test_a_conflict_the_lock_resolves_is_not_listed_as_unresolved() -> None:
    # A dependency conflict no line of the plan names (its package was left to the resolver): once the
    # resolver has chosen a version that meets the requirement, the file resolves it after all.
    from autoglm_doctor.fix.formats import FixFormat
    from autoglm_doctor.fix.plan import FixPlan, Line, Unresolved
    from autoglm_doctor.fix.render import render_lock
    from autoglm_doctor.fix.resolve import Lock, LockedPackage

    conflict = Unresolved(
        "packages.dependency-conflict",
        "tokenizers 0.15.0 requires huggingface_hub>=0.16.4,<1.0, but huggingface-hub 0.14.0 is installed",
        "pip install 'huggingface_hub>=0.16.4,<1.0'",
        expected="huggingface_hub>=0.16.4,<1.0",
    )
    shadow = Unresolved("packages.shadowing", "./torch.py shadows torch", "rename ./torch.py")
    plan = FixPlan(
        lines=(Line("tokenizers", "tokenizers==0.15.0", "0.15.0", "keep"),),
        index_url="",
        torch_why="",
        host="",
        python="3.11.7 (cpython)",
        executable="/venv/bin/python",
        platform="linux x86_64",
        pack="open-autoglm",
        resolved=(),
        unresolved=(conflict, shadow),
    )
    lock = Lock(
        "uv 0.13.8 (pip compile)", (LockedPackage("huggingface-hub", "0.20.3"), LockedPackage("tokenizers", "0.15.0"))
    )
    text = render_lock(plan, lock, FixFormat.REQUIREMENTS, output_name="requirements-autoglm.txt")
    assert "packages.shadowing" in text  # no lock fixes a file in the working directory
    assert "packages.dependency-conflict" not in text
    old_hub = Lock(lock.resolver, (LockedPackage("huggingface-hub", "0.14.0"), LockedPackage("tokenizers", "0.15.0")))
    assert "packages.dependency-conflict" in render_lock(
        plan, old_hub, FixFormat.REQUIREMENTS, output_name="requirements-autoglm.txt"
    )
