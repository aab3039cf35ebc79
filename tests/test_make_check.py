"""`make check`, the README's first command, passes on the bundled example deployment.

It runs the Makefile's own recipe (so a change to the doctor's defaults that the recipe does not
follow shows here), on a copy of examples/deployment so the checkout is left as it was.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    shutil.which("make") is None or not (ROOT / ".venv" / ".installed").exists(),
    reason="needs make and the .venv that `make test` sets up",
)
def test_make_check_passes_on_the_example_deployment(tmp_path: Path) -> None:
    example = tmp_path / "deployment"
    shutil.copytree(ROOT / "examples" / "deployment", example, ignore=shutil.ignore_patterns("model"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "CONDA_", "AUTOGLM_"))}
    proc = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "check", f"EXAMPLE={example}"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "NO_COLOR": "1", "COLUMNS": "100"},
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "→ PASS" in proc.stdout
    assert "role: open-autoglm, because autoglm.yaml is the in-process service's config (--config)" in proc.stdout
    assert "smoke.load-infer" in proc.stdout and "(smoke.load-infer) ...." in proc.stdout
