"""devices.adb with a fake adb on PATH that replays outputs recorded from real phones."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from autoglm_doctor import packs, registry, runner
from autoglm_doctor.context import CheckContext, Options
from autoglm_doctor.model import CheckResult, Status
from autoglm_doctor.probe.snapshot import PythonFacts, Snapshot

FIXTURES = Path(__file__).parent / "fixtures" / "adb"

PHONE_PACK = """
pack: open-autoglm-phone
description: "test pack: the phone agent over adb"
devices:
  adb_timeout: 1
"""


@pytest.fixture
def phone_pack(tmp_path: Path) -> packs.Pack:
    path = tmp_path / "phone.yaml"
    path.write_text(PHONE_PACK)
    return packs.load(str(path))


@pytest.fixture
def fake_adb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """Put an `adb` on PATH that replays the named fixture."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    adb = bin_dir / "adb"
    adb.write_text(f"#!{sys.executable}\n" + (FIXTURES / "fake_adb.py").read_text())
    adb.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_ADB_PIDS", str(tmp_path / "adb.pids"))

    def use(scenario: str) -> Path:
        monkeypatch.setenv("FAKE_ADB_FIXTURE", str(FIXTURES / f"{scenario}.json"))
        return tmp_path / "adb.pids"

    return use


def snap(env: dict[str, str] | None = None) -> Snapshot:
    return Snapshot(
        python=PythonFacts(
            version="3.11.7",
            implementation="cpython",
            executable=sys.executable,
            prefix="",
            base_prefix="",
            env_kind="venv",
        ),
        env=env or {},
    )


def run(pack: packs.Pack, env: dict[str, str] | None = None, **options: object) -> CheckResult:
    spec = registry.load(plugins=False).checks["devices.adb"]
    return runner.run_check(spec, snap(env), CheckContext(pack=pack, options=Options(**options)))  # type: ignore[arg-type]


def errors(result: CheckResult) -> list[str]:
    return [f.code for f in result.findings if f.severity.value == "error"]


def test_ready_phone_passes(fake_adb, phone_pack: packs.Pack) -> None:  # noqa: ANN001
    fake_adb("ready")
    result = run(phone_pack)
    assert result.status is Status.PASS, result.findings
    messages = " | ".join(f.message for f in result.findings)
    assert "Android Debug Bridge version 1.0.41" in messages
    assert "8a7f3c21: device" in messages and "ADB Keyboard is enabled" in messages


def test_no_device(fake_adb, phone_pack: packs.Pack) -> None:  # noqa: ANN001
    fake_adb("no-device")
    result = run(phone_pack)
    assert errors(result) == ["devices.none"]
    assert "USB debugging" in (result.findings[0].fix or "")


def test_unauthorized(fake_adb, phone_pack: packs.Pack) -> None:  # noqa: ANN001
    fake_adb("unauthorized")
    result = run(phone_pack)
    assert errors(result) == ["devices.unauthorized"]
    assert "R58M42ABCDE" in result.findings[0].message
    assert "Allow USB debugging" in (result.findings[0].fix or "")


def test_offline(fake_adb, phone_pack: packs.Pack) -> None:  # noqa: ANN001
    fake_adb("offline")
    assert errors(run(phone_pack)) == ["devices.offline"]


def test_two_devices_without_a_device_id(fake_adb, phone_pack: packs.Pack) -> None:  # noqa: ANN001
    fake_adb("two-devices")
    result = run(phone_pack)
    assert errors(result) == ["devices.ambiguous"]
    assert result.findings[0].fix == "export PHONE_AGENT_DEVICE_ID=8a7f3c21"


def test_two_devices_with_a_device_id_checks_that_one(fake_adb, phone_pack: packs.Pack) -> None:  # noqa: ANN001
    fake_adb("two-devices")
    result = run(phone_pack, {"PHONE_AGENT_DEVICE_ID": "emulator-5554"})
    assert errors(result) == ["devices.keyboard-missing"]
    assert "emulator-5554" in next(f.message for f in result.findings if f.code == "devices.keyboard-missing")
    result = run(phone_pack, {"PHONE_AGENT_DEVICE_ID": "8a7f3c21"})
    assert result.status is Status.PASS
    result = run(phone_pack, {"PHONE_AGENT_DEVICE_ID": "nope"})
    assert errors(result) == ["devices.selected-missing"]


def test_keyboard_missing(fake_adb, phone_pack: packs.Pack) -> None:  # noqa: ANN001
    fake_adb("keyboard-missing")
    result = run(phone_pack)
    assert errors(result) == ["devices.keyboard-missing"]
    fix = result.findings[0].fix or ""
    assert "adb -s 8a7f3c21 shell ime enable com.android.adbkeyboard/.AdbIME" in fix
    assert "USB debugging (Security settings)" in fix


def test_keyboard_installed_but_disabled(fake_adb, phone_pack: packs.Pack) -> None:  # noqa: ANN001
    fake_adb("keyboard-disabled")
    result = run(phone_pack)
    assert errors(result) == ["devices.keyboard-disabled"]
    assert (result.findings[0].fix or "").startswith("adb -s 8a7f3c21 shell ime enable com.android.adbkeyboard/.AdbIME")


def test_write_secure_settings_security_exception(fake_adb, phone_pack: packs.Pack) -> None:  # noqa: ANN001
    fake_adb("security-exception")
    result = run(phone_pack)
    assert errors(result) == ["devices.secure-settings-denied"]
    finding = result.findings[0]
    assert "WRITE_SECURE_SETTINGS" in finding.message
    assert "USB debugging (Security settings)" in (finding.fix or "")
    assert "adb -s 8a7f3c21 shell ime enable com.android.adbkeyboard/.AdbIME" in (finding.fix or "")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_adb_that_hangs_is_cut_off(fake_adb, phone_pack: packs.Pack) -> None:  # noqa: ANN001
    pids = fake_adb("hangs")
    started = time.monotonic()
    result = run(phone_pack)
    assert time.monotonic() - started < 4
    assert errors(result) == ["devices.adb-timeout"]
    assert "within 1 s" in result.findings[0].message
    adb_pid, helper_pid = map(int, pids.read_text().split())
    deadline = time.monotonic() + 3
    while (_alive(adb_pid) or _alive(helper_pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(adb_pid) and not _alive(helper_pid)


def test_adb_missing(phone_pack: packs.Pack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = run(phone_pack)
    assert errors(result) == ["devices.adb-missing"]
    assert "platform-tools" in (result.findings[0].fix or "")


def test_skips_for_other_packs_and_device_types(fake_adb, phone_pack: packs.Pack) -> None:  # noqa: ANN001
    fake_adb("ready")
    assert run(packs.load()).status is Status.SKIP
    result = run(phone_pack, {"PHONE_AGENT_DEVICE_TYPE": "hdc"})
    assert result.status is Status.SKIP and "hdc" in result.findings[0].message
    assert run(phone_pack, from_snapshot=True).status is Status.SKIP
