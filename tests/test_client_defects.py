"""Known defects of the client's own source, read as text, warned about when this machine's state makes them bite.

First: Open-AutoGLM's main.py (to at least 6b18d7b) runs its ADB Keyboard check as `adb shell ime list -s`
without `-s SERIAL`, so with two phones attached the client exits even when PHONE_AGENT_DEVICE_ID names one.
The checkout here is a folder of the doctor's own shaped like the clone (main.py beside phone_agent/), with
the call written as the client writes it; adb is the fake one replaying two attached devices.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import result

FIXTURES = Path(__file__).parent / "fixtures" / "adb"

DEFECTIVE_CHECK = """import subprocess


def check_keyboard():
    result = subprocess.run(
        ["adb", "shell", "ime", "list", "-s"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return "com.android.adbkeyboard/.AdbIME" in result.stdout
"""

FIXED_CHECK = DEFECTIVE_CHECK.replace('["adb", "shell", "ime"', '["adb", "-s", device_id, "shell", "ime"')


@pytest.fixture
def clone(workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory as an Open-AutoGLM clone, two phones on a fake adb, the client pointed at one."""
    (workdir / "phone_agent").mkdir()
    (workdir / "phone_agent" / "__init__.py").write_text("raise SystemExit('imported')\n")
    (workdir / "main.py").write_text(DEFECTIVE_CHECK)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    adb = bin_dir / "adb"
    adb.write_text(f"#!{sys.executable}\n" + (FIXTURES / "fake_adb.py").read_text())
    adb.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_ADB_FIXTURE", str(FIXTURES / "two-devices.json"))
    for name in ("PHONE_AGENT_DEVICE_TYPE", "ANDROID_SERIAL", "PHONE_AGENT_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PHONE_AGENT_DEVICE_ID", "8a7f3c21")
    return workdir


def defects(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in result(report, "devices.adb")["findings"] if f["code"] == "devices.client-defect"]


def test_two_phones_and_the_clients_keyboard_check_without_serial_warns(clone: Path, run_json) -> None:  # type: ignore[no-untyped-def]
    code, report = run_json("--only", "devices.adb")
    assert report["packs"] == ["open-autoglm-phone"]
    assert any("Open-AutoGLM checkout" in line for line in report["role"]["evidence"])
    (found,) = defects(report)
    assert found["severity"] == "warning"
    assert "`adb shell ime list -s` without `-s SERIAL` (main.py:6)" in found["message"]
    assert "2 devices attached" in found["message"] and "even with PHONE_AGENT_DEVICE_ID=8a7f3c21" in found["message"]
    assert found["fix"].startswith("export ANDROID_SERIAL=8a7f3c21")
    assert (found["location"]["file"], found["location"]["line"]) == (str(clone / "main.py"), 6)
    assert "issues/364" in found["evidence"]["expected"]
    assert "imported" not in str(report)  # read as text, never imported


def test_no_warning_when_android_serial_names_the_device(clone: Path, run_json, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ANDROID_SERIAL", "8a7f3c21")
    assert defects(run_json("--only", "devices.adb")[1]) == []


def test_no_warning_for_a_fixed_client_or_one_phone(clone: Path, run_json, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (clone / "main.py").write_text(FIXED_CHECK)
    assert defects(run_json("--only", "devices.adb")[1]) == []
    (clone / "main.py").write_text(DEFECTIVE_CHECK)
    monkeypatch.setenv("FAKE_ADB_FIXTURE", str(FIXTURES / "ready.json"))
    monkeypatch.delenv("PHONE_AGENT_DEVICE_ID")
    assert defects(run_json("--only", "devices.adb")[1]) == []


def test_two_phones_and_no_device_id_get_the_whole_workaround_in_one_run(  # type: ignore[no-untyped-def]
    clone: Path, run_json, monkeypatch
) -> None:
    # QA P2.13: the fix was only PHONE_AGENT_DEVICE_ID, with which main.py still exits; the ANDROID_SERIAL
    # part came only on the next run. Now the ambiguous-device finding and the known defect agree at once.
    monkeypatch.delenv("PHONE_AGENT_DEVICE_ID")
    code, report = run_json("--only", "devices.adb")
    findings = result(report, "devices.adb")["findings"]
    ambiguous = next(f for f in findings if f["code"] == "devices.ambiguous")
    assert ambiguous["fix"].startswith("export PHONE_AGENT_DEVICE_ID=8a7f3c21 ANDROID_SERIAL=8a7f3c21")
    assert "main.py:6 runs adb without -s" in ambiguous["fix"]
    (found,) = defects(report)
    assert found["fix"].startswith("export ANDROID_SERIAL=8a7f3c21")
    assert "PHONE_AGENT_DEVICE_ID names" not in found["message"]  # it is not set: the message must not say it is
    # both applied as one step: the next run has neither finding
    monkeypatch.setenv("PHONE_AGENT_DEVICE_ID", "8a7f3c21")
    monkeypatch.setenv("ANDROID_SERIAL", "8a7f3c21")
    codes = [f["code"] for f in result(run_json("--only", "devices.adb")[1], "devices.adb")["findings"]]
    assert "devices.ambiguous" not in codes and "devices.client-defect" not in codes
    # a fixed client needs only PHONE_AGENT_DEVICE_ID
    (clone / "main.py").write_text(FIXED_CHECK)
    monkeypatch.delenv("PHONE_AGENT_DEVICE_ID")
    monkeypatch.delenv("ANDROID_SERIAL")
    fixed = result(run_json("--only", "devices.adb")[1], "devices.adb")["findings"]
    assert next(f for f in fixed if f["code"] == "devices.ambiguous")["fix"] == "export PHONE_AGENT_DEVICE_ID=8a7f3c21"
