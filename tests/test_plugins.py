"""Third-party checks through the ``autoglm_doctor.checks`` entry-point group, with real dist-info."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from autoglm_doctor.cli import main
from tests.helpers.venvs import Venv

PLUGIN = '''
from autoglm_doctor.model import warning
from autoglm_doctor.registry import check


@check("acme.gpu-quota", title="ACME GPU quota", why="quota", fix="ask ops")
def gpu_quota(snap, ctx):
    """The node has quota left."""
    yield warning("acme.quota-low", f"only 1 GPU-hour left for {snap.python.version}", fix="ask ops for more")
'''


def install_plugin(site: Path, dist: str, module: str, source: str) -> None:
    """A real distribution on sys.path whose entry_points.txt names ``module``."""
    (site / f"{module}.py").write_text(source, encoding="utf-8")
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[autoglm_doctor.checks]\n{module} = {module}\n", encoding="utf-8")


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "plugins"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    yield site
    for module in [m for m in sys.modules if m.endswith("_checks")]:
        del sys.modules[module]


def test_plugin_check_runs(
    plugin_site: Path, healthy_venv: Venv, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install_plugin(plugin_site, "acme-doctor-checks", "acme_checks", PLUGIN)
    args = ["check", "--no-smoke", "--python", str(healthy_venv.python), "--format", "json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    acme = next(r for r in report["results"] if r["id"] == "acme.gpu-quota")
    assert acme["status"] == "warn"
    assert acme["findings"][0]["message"].startswith("only 1 GPU-hour left for 3.")
    assert main(["list"]) == 0
    listing = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["acme.gpu-quota", "ACME", "GPU", "quota", "[acme-doctor-checks]"] in listing


def test_plugin_that_raises_on_import_is_reported(
    plugin_site: Path, healthy_venv: Venv, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install_plugin(plugin_site, "broken-plugin", "broken_checks", "raise ImportError('needs libfoo.so')\n")
    install_plugin(plugin_site, "acme-doctor-checks", "acme_checks", PLUGIN)
    args = ["check", "--no-smoke", "--python", str(healthy_venv.python), "--format", "json"]
    assert main(args) == 1
    report = json.loads(capsys.readouterr().out)
    failed = next(r for r in report["results"] if r["id"] == "plugins.broken_checks")
    assert failed["status"] == "error"
    message = failed["findings"][0]["message"]
    assert "from broken-plugin failed to load: ImportError: needs libfoo.so" in message
    assert "pip uninstall broken-plugin" in failed["findings"][0]["fix"]
    # the run went on: built-ins and the healthy plugin still ran
    ids = [r["id"] for r in report["results"]]
    assert "packages.conflicts" in ids and "acme.gpu-quota" in ids


def test_plugin_reusing_a_builtin_id_is_reported(
    plugin_site: Path, healthy_venv: Venv, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clash = PLUGIN.replace("acme.gpu-quota", "packages.required")
    install_plugin(plugin_site, "clashing-plugin", "clash_checks", clash)
    assert main(["check", "--no-smoke", "--python", str(healthy_venv.python), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    failed = next(r for r in report["results"] if r["id"] == "plugins.clash_checks")
    assert "registered twice" in failed["findings"][0]["message"]
