"""The built wheel ships the packs, the knowledge base and the probe, and runs from a fresh venv."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.venvs import install_wheel_offline, make_venv

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_runs_check_from_a_fresh_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(REPO)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    [wheel] = dist.glob("autoglm_doctor-*.whl")
    fresh = make_venv(tmp_path / "fresh")
    # the doctor itself must come from the wheel (the fresh site-packages is searched first)
    install_wheel_offline(fresh, wheel)
    packs = fresh.site_packages / "autoglm_doctor" / "_packs"
    assert (packs / "open-autoglm.yaml").is_file()
    assert (fresh.site_packages / "autoglm_doctor" / "knowledge" / "torch.yaml").is_file()
    assert (fresh.site_packages / "autoglm_doctor" / "knowledge" / "engines" / "vllm-0.34.json").is_file()
    assert (fresh.site_packages / "autoglm_doctor" / "probe" / "_script.py").is_file()
    assert (fresh.site_packages / "autoglm_doctor" / "report" / "report.schema.json").is_file()

    work = tmp_path / "work"
    work.mkdir()
    where = subprocess.run(
        [str(fresh.python), "-c", "import autoglm_doctor; print(autoglm_doctor.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=work,
    )
    assert where.stdout.strip().startswith(str(fresh.root))
    script = fresh.root / "bin" / "autoglm-doctor"
    target = make_venv(tmp_path / "target")  # an empty deployment env: the pack's packages are missing
    proc = subprocess.run(
        [
            str(script),
            "check",
            "--no-smoke",
            "--pack",
            "open-autoglm",
            "--format",
            "json",
            "--python",
            str(target.python),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=work,
        check=False,
    )
    assert proc.stdout.startswith("{"), proc.stderr
    report = json.loads(proc.stdout)
    assert report["schema"] == "autoglm-doctor/report@1"
    assert report["environment"]["executable"].startswith(str(target.root))
    required = next(r for r in report["results"] if r["id"] == "packages.required")
    # the fresh venv holds only the doctor: the pack's torch requirement is reported missing
    assert any(f["message"].startswith("torch is not installed") for f in required["findings"])
    assert proc.returncode == 1
