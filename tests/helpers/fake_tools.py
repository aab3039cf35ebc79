"""Fake device tools (adb, hdc) for CLI runs: tests/fixtures/adb/fake_adb.py replaying a fixture dict.

:func:`fake_tool` puts the fake on a PATH of its own and returns the environment a doctor run needs;
:func:`started_pids` reads the pids it wrote when it hung, :func:`alive` says whether one still runs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from autoglm_doctor.phone.screenshot import synthetic_png

FIXTURES = Path(__file__).parent.parent / "fixtures"
ADB_READY: dict[str, Any] = json.loads((FIXTURES / "adb" / "ready.json").read_text(encoding="utf-8"))
"""One authorised Android phone (8a7f3c21) with ADB Keyboard; its screencap is a phone-sized PNG."""
HDC_READY: dict[str, Any] = json.loads((FIXTURES / "hdc" / "ready.json").read_text(encoding="utf-8"))
"""One HarmonyOS target (FMR0223C13000649) whose snapshot is received from files/screen.jpeg."""


def fake_tool(tmp_path: Path, name: str, fixture: dict[str, Any]) -> dict[str, str]:
    """A fake ``name`` (adb or hdc) on PATH replaying ``fixture``; the environment a run needs."""
    tools = tmp_path / "bin"
    tools.mkdir(exist_ok=True)
    fake = tools / name
    fake.write_text(f"#!{sys.executable}\n" + (FIXTURES / "adb" / "fake_adb.py").read_text(encoding="utf-8"))
    fake.chmod(0o755)
    spec = tmp_path / f"{name}.json"
    spec.write_text(json.dumps(fixture), encoding="utf-8")
    files = tmp_path / "files"
    files.mkdir(exist_ok=True)
    (files / "screen.png").write_bytes(synthetic_png())
    return {
        "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}",
        "FAKE_ADB_FIXTURE": str(spec),
        "FAKE_ADB_FILES": str(files),
        "FAKE_ADB_PIDS": str(tmp_path / "pids"),
        "PHONE_AGENT_DEVICE_TYPE": name,
        "PHONE_AGENT_MODEL": "autoglm-phone-9b",
    }


def started_pids(tmp_path: Path) -> list[int]:
    """The pids the fake wrote when it hung (itself and its helper, per hung command)."""
    path = tmp_path / "pids"
    return [int(p) for p in path.read_text(encoding="utf-8").split()] if path.exists() else []


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False
