"""Issue 23's device-tool reproductions, each through the CLI: bounded, reported, nothing left running.

Every run goes through :func:`tests.helpers.hostile.doctor` (exit 0/1/2, no traceback, a time bound,
a 1 GiB address-space cap, no marked process left); the fake tool (tests/fixtures/adb/fake_adb.py)
also writes the pids of what it started when it hangs, and each test asserts they are gone.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor.checks.devices import SCREENSHOT_CAP_BYTES, TOOL_TEXT_CAP_BYTES
from autoglm_doctor.phone.screenshot import synthetic_png
from autoglm_doctor.safeio import LIMITS
from tests.helpers.fake_tools import ADB_READY, HDC_READY, alive, fake_tool, started_pids
from tests.helpers.hostile import doctor, fake_interpreter

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and FIFOs: Linux")

SERIAL = "8a7f3c21"
TARGET = "FMR0223C13000649"
HDC_FILE = "/data/local/tmp/autoglm-doctor-screen.jpeg"


STEP = ("service.agent-step", "--endpoint", "http://127.0.0.1:9/v1")
"""The agent step against an endpoint where nothing listens: the screenshot comes first."""


def _run(
    tmp_path: Path, env: dict[str, str], only: str, *args: str, bound_s: float = 40.0
) -> dict[str, dict[str, Any]]:
    run = doctor(
        ["check", "--no-smoke", "--pack", "open-autoglm-phone", "--only", only, *args, "--format", "json"],
        cwd=tmp_path,
        env=env,
        bound_s=bound_s,
    )
    assert run.code in (0, 1), run.stderr
    results = {r["id"]: r for r in json.loads(run.text)["results"]}
    assert all(r["status"] != "error" for r in results.values()), results
    return results


def _codes(result: dict[str, Any]) -> list[str]:
    return [f["code"] for f in result["findings"] if f["severity"] == "error"]


def test_a_hung_adb_version_is_cut_off_and_leaves_nothing(tmp_path: Path) -> None:
    """`adb version` never returns: devices.adb says so at its 5 s deadline; adb and its helper are gone."""
    fixture = dict(ADB_READY, hang=["version"])
    started = time.monotonic()
    results = _run(tmp_path, fake_tool(tmp_path, "adb", fixture), "devices.adb", bound_s=30)
    assert time.monotonic() - started < 25
    assert _codes(results["devices.adb"]) == ["devices.adb-timeout"]
    pids = started_pids(tmp_path)
    assert len(pids) == 2 and not any(alive(pid) for pid in pids), pids


def test_a_hung_adb_that_daemonised_a_child_leaves_nothing(tmp_path: Path) -> None:
    """The hung adb started a daemon that left its session and closed every pipe: found by its mark, killed."""
    tools = tmp_path / "bin"
    tools.mkdir()
    daemon_pid = tmp_path / "daemon.pid"
    fake_interpreter(
        tools / "adb",
        f"setsid sh -c 'echo $$ > {daemon_pid}; exec sleep 150' </dev/null >/dev/null 2>&1 &\nsleep 150",
    )
    env = {"PATH": f"{tools}{os.pathsep}{os.environ['PATH']}", "PHONE_AGENT_DEVICE_TYPE": "adb"}
    results = _run(tmp_path, env, "devices.adb", bound_s=30)  # doctor() also finds no marked process left
    assert _codes(results["devices.adb"]) == ["devices.adb-timeout"]
    assert daemon_pid.exists() and not alive(int(daemon_pid.read_text()))


@pytest.mark.parametrize(
    ("tool", "hung"),
    [
        ("adb", f"-s {SERIAL} exec-out screencap -p"),
        ("hdc", f"-t {TARGET} shell snapshot_display -f {HDC_FILE}"),
        ("hdc", f"-t {TARGET} file recv {HDC_FILE}"),
    ],
    ids=["adb-screencap", "hdc-snapshot", "hdc-recv"],
)
def test_a_hung_screenshot_tool_of_an_agent_step_leaves_nothing(tmp_path: Path, tool: str, hung: str) -> None:
    """The agent step's screenshot command hangs: a finding at the screenshot deadline, every tool gone."""
    fixture = dict(ADB_READY if tool == "adb" else HDC_READY, hang=[hung])
    env = fake_tool(tmp_path, tool, fixture)
    results = _run(tmp_path, env, *STEP, bound_s=40)
    assert _codes(results["service.agent-step"]) == ["service.screenshot-failed"]
    pids = started_pids(tmp_path)
    assert pids and not any(alive(pid) for pid in pids), pids


@pytest.mark.parametrize(
    ("received", "said"),
    [
        ("link:/dev/zero", "character device"),
        (f"sparse:{8 << 30}", "limit"),
        ("fifo", "FIFO"),
    ],
    ids=["link-to-dev-zero", "8-GB-sparse", "fifo"],
)
def test_hdc_screenshot_file_goes_through_the_bounded_reader(tmp_path: Path, received: str, said: str) -> None:
    """What `hdc file recv` left is read like any file: a device, a huge file or a FIFO is a finding, fast."""
    fixture = dict(HDC_READY, recv={f"-t {TARGET} file recv {HDC_FILE}": received})
    started = time.monotonic()
    results = _run(
        tmp_path, fake_tool(tmp_path, "hdc", fixture), "service.agent-step", "--endpoint", "http://127.0.0.1:9/v1"
    )
    assert time.monotonic() - started < 30  # a FIFO hung past 240 s; /dev/zero and 8 GB ran out of memory
    step = results["service.agent-step"]
    assert _codes(step) == ["service.screenshot-failed"]
    assert said in step["findings"][0]["message"], step


def test_text_output_is_cut_at_1_mib_but_a_large_screenshot_passes(tmp_path: Path) -> None:
    """`adb devices -l` is text (cut at 1 MiB, the run says so); a 5 MiB PNG screenshot is read whole."""
    flood = "List of devices attached\n" + "x" * (TOOL_TEXT_CAP_BYTES + 10)
    fixture = json.loads(json.dumps(ADB_READY))
    fixture["commands"]["devices -l"] = {"stdout": flood, "rc": 0}
    results = _run(tmp_path, fake_tool(tmp_path, "adb", fixture), "devices.adb")
    (finding,) = [f for f in results["devices.adb"]["findings"] if f["code"] == "devices.adb-failed"]
    assert "more than 1 MiB" in finding["message"], finding

    big = synthetic_png()
    big = big[:-12] + b"\x00" * (5 << 20) + big[-12:]  # a PNG header, 5 MiB of rows: larger than the text cap
    (tmp_path / "files").mkdir(exist_ok=True)
    env = fake_tool(tmp_path, "adb", ADB_READY)
    (tmp_path / "files" / "screen.png").write_bytes(big)
    results = _run(tmp_path, env, *STEP)
    assert _codes(results["service.agent-step"]) == ["service.connection-refused"]  # the screenshot got through


def test_the_bounds_agree() -> None:
    """One screenshot bound for every way a screenshot arrives; text output far below it."""
    assert LIMITS["screenshot"] == SCREENSHOT_CAP_BYTES == 32 << 20
    assert TOOL_TEXT_CAP_BYTES == 1 << 20
