"""python.* and packages.* against real venvs with hand-written dist-info, through the CLI."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import codes, result
from tests.helpers.venvs import Venv, find_python, healthy, make_venv

Run = Callable[..., tuple[int, dict[str, Any]]]


def findings(report: dict[str, Any], check_id: str, code: str) -> list[dict[str, Any]]:
    return [f for f in result(report, check_id)["findings"] if f["code"] == code]


def test_healthy_venv_has_no_failure(healthy_venv: Venv, workdir: Path, run_json: Run) -> None:
    code, report = run_json("--python", str(healthy_venv.python))
    failing = {r["id"]: r["findings"] for r in report["results"] if r["status"] in ("fail", "error")}
    assert failing == {}
    assert code == 0
    assert report["environment"]["executable"].startswith(str(healthy_venv.root))
    for check_id in ("python.version", "packages.required", "packages.versions", "packages.conflicts"):
        assert result(report, check_id)["status"] in ("pass", "warn")


def test_missing_required_package(healthy_venv: Venv, workdir: Path, run_json: Run) -> None:
    for folder in healthy_venv.site_packages.glob("fastapi*"):
        shutil.rmtree(folder)
    code, report = run_json("--python", str(healthy_venv.python))
    assert code == 1
    [missing] = findings(report, "packages.required", "packages.missing")
    assert "fastapi is not installed" in missing["message"]
    assert missing["fix"] == f"{healthy_venv.python} -m pip install fastapi"
    assert result(report, "packages.required")["status"] == "fail"


def test_device_map_in_config_requires_accelerate(healthy_venv: Venv, workdir: Path, run_json: Run) -> None:
    config = workdir / "autoglm.yaml"
    config.write_text("model_path: ./model\ndevice_map: auto\n", encoding="utf-8")
    code, report = run_json("--python", str(healthy_venv.python), "--config", str(config), "--only", "packages.*")
    [missing] = findings(report, "packages.required", "packages.missing")
    assert missing["message"].startswith("accelerate is not installed (the config sets device_map)")
    assert "accelerate>=0.20.3" in missing["fix"]  # the floor transformers 4.35 states, not a fixed one
    assert code == 1


def test_too_old_transformers(healthy_venv: Venv, workdir: Path, run_json: Run) -> None:
    for folder in healthy_venv.site_packages.glob("transformers*"):
        shutil.rmtree(folder)
    healthy_venv.add("transformers", "4.29.2", ["tokenizers<0.14,>=0.11.1", "numpy>=1.17"])
    healthy_venv.site_packages.joinpath("tokenizers-0.15.0.dist-info").rename(
        healthy_venv.site_packages / "tokenizers-0.13.3.dist-info"
    )
    (healthy_venv.site_packages / "tokenizers-0.13.3.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tokenizers\nVersion: 0.13.3\n", encoding="utf-8"
    )
    code, report = run_json("--python", str(healthy_venv.python))
    [old] = findings(report, "packages.versions", "packages.out-of-range")
    assert old["evidence"] == {"observed": "transformers==4.29.2", "expected": "transformers>=4.30"}
    assert old["fix"].endswith("-m pip install 'transformers>=4.30'")
    assert code == 1


def test_below_recommended_warns(healthy_venv: Venv, workdir: Path, run_json: Run) -> None:
    for folder in healthy_venv.site_packages.glob("transformers*"):
        shutil.rmtree(folder)
    healthy_venv.add("transformers", "4.31.0", ["tokenizers<0.19,>=0.14"])
    code, report = run_json("--python", str(healthy_venv.python), "--only", "packages.versions")
    assert result(report, "packages.versions")["status"] == "warn"
    [warn] = findings(report, "packages.versions", "packages.below-recommended")
    assert "older than the recommended 4.35" in warn["message"]
    assert code == 0
    strict_code, _ = run_json("--python", str(healthy_venv.python), "--only", "packages.versions", "--strict")
    assert strict_code == 1


def test_requirement_outside_dependents_range(healthy_venv: Venv, workdir: Path, run_json: Run) -> None:
    for folder in healthy_venv.site_packages.glob("tokenizers*"):
        shutil.rmtree(folder)
    healthy_venv.add("tokenizers", "0.19.1", ["huggingface_hub>=0.16.4,<1.0"])
    code, report = run_json("--python", str(healthy_venv.python))
    [conflict] = findings(report, "packages.conflicts", "packages.dependency-conflict")
    assert conflict["message"] == (
        "transformers 4.35.2 requires tokenizers<0.19,>=0.14, but tokenizers 0.19.1 is installed"
    )
    assert conflict["evidence"] == {"observed": "tokenizers==0.19.1", "expected": "tokenizers<0.19,>=0.14"}
    assert conflict["fix"].endswith("-m pip install 'tokenizers<0.19,>=0.14'")
    assert code == 1


def test_markers_are_evaluated_for_the_target(healthy_venv: Venv, workdir: Path, run_json: Run) -> None:
    # uvicorn needs colorama only on Windows; the accelerate line only with transformers[torch].
    code, report = run_json("--python", str(healthy_venv.python), "--only", "packages.conflicts")
    assert codes(report, "packages.conflicts") == []
    healthy_venv.add("needs-extra", "1.0", ["transformers[torch]>=4.0"])
    code, report = run_json("--python", str(healthy_venv.python), "--only", "packages.conflicts")
    [missing] = findings(report, "packages.conflicts", "packages.dependency-missing")
    assert "transformers 4.35.2 (extra torch via needs-extra) requires accelerate>=0.20.3" in missing["message"]


def test_numpy2_beside_torch_21(healthy_venv: Venv, workdir: Path, run_json: Run) -> None:
    for folder in healthy_venv.site_packages.glob("numpy*"):
        shutil.rmtree(folder)
    healthy_venv.add("numpy", "2.0.1")
    code, report = run_json("--python", str(healthy_venv.python))
    [bad] = findings(report, "packages.conflicts", "packages.known-bad.numpy2-old-torch")
    assert bad["severity"] == "error"
    assert "NumPy 2.0.1 is installed beside torch 2.1.2" in bad["message"]
    assert bad["fix"] == f"{healthy_venv.python} -m pip install 'numpy<2'   # or upgrade torch to 2.3 or newer"
    assert "A module that was compiled using NumPy 1.x cannot be run in NumPy 2.x" in bad["message"]
    assert code == 1


@pytest.mark.skipif(find_python("3.11") is None, reason="needs a Python 3.11 interpreter")
def test_torch_113_under_python_311(tmp_path: Path, workdir: Path, run_json: Run) -> None:
    venv = healthy(make_venv(tmp_path / "v311", find_python("3.11")))
    for folder in venv.site_packages.glob("torch*"):
        shutil.rmtree(folder)
    venv.add_torch("1.13.1")
    code, report = run_json("--python", str(venv.python), "--only", "python.version")
    [bad] = findings(report, "python.version", "python.torch-unsupported")
    assert "torch 1.13.1 ships no wheels for Python 3.11" in bad["message"]
    assert "torch==2." in bad["fix"]
    assert code == 1


def test_distribution_installed_twice(healthy_venv: Venv, workdir: Path, run_json: Run) -> None:
    stale = healthy_venv.site_packages / "numpy-1.24.0.dist-info"
    stale.mkdir()
    (stale / "METADATA").write_text("Metadata-Version: 2.1\nName: numpy\nVersion: 1.24.0\n", encoding="utf-8")
    code, report = run_json("--python", str(healthy_venv.python), "--only", "packages.conflicts")
    [dup] = findings(report, "packages.conflicts", "packages.duplicate")
    assert "numpy is installed 2 times" in dup["message"]
    assert "half-finished upgrade" in dup["message"]
    assert dup["fix"].startswith(f"rm -r '{stale}'")
    assert dup["fix"].endswith("--force-reinstall --no-deps numpy==1.26.4")
    assert code == 1


def test_torch_py_in_working_directory(healthy_venv: Venv, workdir: Path, run_json: Run) -> None:
    (workdir / "torch.py").write_text("print('oops')\n", encoding="utf-8")
    (workdir / "transformers").mkdir()
    (workdir / "transformers" / "__init__.py").write_text("", encoding="utf-8")
    (workdir / "json.py").write_text("", encoding="utf-8")
    code, report = run_json("--python", str(healthy_venv.python))
    shadows = {f["location"]["file"]: f for f in result(report, "packages.shadowing")["findings"]}
    assert shadows[str(workdir / "torch.py")]["code"] == "packages.shadowed"
    assert shadows[str(workdir / "torch.py")]["severity"] == "error"
    assert "rename" in shadows[str(workdir / "torch.py")]["fix"]
    assert shadows[str(workdir / "transformers")]["code"] == "packages.shadowed"
    assert shadows[str(workdir / "json.py")]["code"] == "packages.shadows-stdlib"
    # the probe itself survived the local json.py (it drops the working directory from its own path)
    assert result(report, "python.version")["status"] != "error"
    assert code == 1


def test_running_from_the_client_checkout_is_not_shadowing(venv: Venv, workdir: Path, run_json: Run) -> None:
    # QA P3.20: phone_agent installed (not editable) and the Open-AutoGLM clone as working directory: the
    # doctor told the user to rename the clone's phone_agent, which would break `python main.py`
    venv.add("phone-agent", "0.1.0", package="phone_agent")
    (workdir / "phone_agent").mkdir()
    (workdir / "phone_agent" / "__init__.py").write_text("raise SystemExit('imported')\n", encoding="utf-8")
    (workdir / "main.py").write_text("raise SystemExit('run')\n", encoding="utf-8")
    (workdir / "setup.py").write_text('from setuptools import setup\n\nsetup(name="phone-agent", version="0.1.0")\n')
    code, report = run_json("--python", str(venv.python), "--only", "packages.shadowing")
    res = result(report, "packages.shadowing")
    assert res["status"] == "pass", res
    (note,) = res["findings"]
    assert note["code"] == "packages.checkout-package"
    assert f"`python main.py` in the Open-AutoGLM checkout {workdir} imports its own phone_agent" in note["message"]
    assert "the installed phone_agent 0.1.0 at" in note["message"] and "is unused there (both 0.1.0)" in note["message"]
    assert "rename" not in json.dumps(report)
    (workdir / "setup.py").write_text('setup(name="phone-agent", version="0.2.0")\n', encoding="utf-8")
    res = result(run_json("--python", str(venv.python), "--only", "packages.shadowing")[1], "packages.shadowing")
    (differs,) = res["findings"]
    assert (differs["code"], differs["severity"]) == ("packages.checkout-differs", "warning")
    assert "differ in version (checkout 0.2.0, installed 0.1.0)" in differs["message"]
    assert "rename" not in differs["fix"]
    # without main.py beside it the folder is no client checkout: the ordinary shadowing error
    (workdir / "main.py").unlink()
    res = result(run_json("--python", str(venv.python), "--only", "packages.shadowing")[1], "packages.shadowing")
    assert [f["code"] for f in res["findings"]] == ["packages.shadowed"]


def test_dist_info_without_metadata(healthy_venv: Venv, workdir: Path, run_json: Run) -> None:
    healthy_venv.add("broken-thing", "1.0", metadata=False)
    undecodable = healthy_venv.site_packages / "latin-1.0.dist-info"
    undecodable.mkdir()
    (undecodable / "METADATA").write_bytes(b"Metadata-Version: 2.1\nName: latin\nVersion: 1.0\nSummary: caf\xe9\n")
    code, report = run_json("--python", str(healthy_venv.python))
    broken = findings(report, "packages.conflicts", "packages.broken-metadata")
    messages = " | ".join(f["message"] for f in broken)
    assert "METADATA is missing or unreadable" in messages
    assert "not valid UTF-8" in messages
    assert all("--force-reinstall" in f["fix"] for f in broken)
    assert result(report, "packages.conflicts")["status"] == "warn"


def test_requires_python_of_an_installed_distribution(healthy_venv: Venv, workdir: Path, run_json: Run) -> None:
    healthy_venv.add("future-only", "1.0", requires_python=">=3.99")
    code, report = run_json("--python", str(healthy_venv.python), "--only", "packages.conflicts")
    [bad] = findings(report, "packages.conflicts", "packages.requires-python")
    assert "future-only 1.0 requires Python >=3.99" in bad["message"]


def test_system_interpreter_warns(workdir: Path, run_json: Run) -> None:
    system = find_python("3.12") or find_python("3.10")
    if system is None:
        pytest.skip("needs a second interpreter that is not a venv")
    code, report = run_json("--python", system, "--only", "python.venv", "--pack", "open-autoglm")
    res = result(report, "python.venv")
    assert res["status"] == "warn"
    assert res["findings"][0]["code"] == "python.system-interpreter"
    assert res["findings"][0]["fix"].startswith(f"{report['environment']['executable']} -m venv .venv")


def test_venv_is_isolated(healthy_venv: Venv, workdir: Path, run_json: Run) -> None:
    code, report = run_json("--python", str(healthy_venv.python), "--only", "python.venv")
    assert result(report, "python.venv")["status"] == "pass"


def test_unrunnable_interpreter_is_a_finding(workdir: Path, run_json: Run) -> None:
    code, report = run_json("--python", str(workdir / "nope" / "python"))
    assert code == 1
    [probe] = result(report, "python.version")["findings"]
    assert probe["code"] == "python.probe-failed"
    assert "does not exist" in probe["message"]
    assert result(report, "packages.required")["status"] == "skip"


def test_python_option_accepts_a_venv_folder(healthy_venv: Venv, workdir: Path, run_json: Run) -> None:
    code, report = run_json("--python", str(healthy_venv.root), "--only", "python.*")
    assert report["environment"]["executable"].startswith(str(healthy_venv.root))
