"""devices.*: Android devices over ADB for the phone agent (smoke/service area).

A live check: it runs ``adb`` (found on PATH), every call with a timeout, and only reads
from the devices (``adb devices -l``, ``ime list``); it never changes a phone's settings.

Applies to the phone-agent pack (``open-autoglm-phone``, or any pack with a ``devices:``
section) when PHONE_AGENT_DEVICE_TYPE is unset or ``adb``. Pack keys read (``devices:``
section, optional): ``adb_timeout`` (seconds per adb call, default 5), ``keyboard`` (the IME
id that must be enabled, default ``com.android.adbkeyboard/.AdbIME``).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from autoglm_doctor.context import CheckContext
from autoglm_doctor.model import Finding, Skip, error, info, warning
from autoglm_doctor.probe.snapshot import Snapshot
from autoglm_doctor.registry import check

PHONE_PACK = "open-autoglm-phone"
ADB_TIMEOUT_S = 5.0
ADB_KEYBOARD = "com.android.adbkeyboard/.AdbIME"
SECURITY_SWITCH = (
    'turn on "USB debugging (Security settings)" in Developer options (Xiaomi/Redmi/POCO: MIUI/HyperOS; '
    "it needs a signed-in Mi account and a SIM), then replug the phone"
)


class AdbTimeout(Exception):
    """An adb call did not finish in time (it and what it started were killed)."""


@dataclass(frozen=True, slots=True)
class Device:
    """One line of ``adb devices -l``."""

    serial: str
    """The id adb -s takes."""
    state: str
    """device, unauthorized, offline, no permissions, recovery, ..."""
    details: str = ""
    """model:..., transport_id:..., as adb printed them."""


def _section(ctx: CheckContext) -> dict[str, Any]:
    section = ctx.pack.sections.get("devices")
    return section if isinstance(section, dict) else {}


def run_adb(adb: str, *args: str, timeout: float) -> tuple[int, str]:
    """Run one adb command; (exit status, stdout+stderr). Raises AdbTimeout after ``timeout`` seconds."""
    try:
        proc = subprocess.Popen(  # noqa: S603 - adb from PATH, fixed arguments
            [adb, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=sys.platform != "win32",
        )
    except OSError as exc:
        return 127, f"cannot run {adb}: {exc.strerror or exc}"
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        if sys.platform != "win32":
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        proc.kill()
        proc.communicate()
        raise AdbTimeout(f"`adb {' '.join(args)}` did not answer within {timeout:g} s") from None
    return proc.returncode, out.decode("utf-8", errors="replace")


def parse_devices(text: str) -> list[Device]:
    """The devices in ``adb devices -l`` output (daemon chatter and the header skipped)."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("*") or line.lower().startswith("list of devices"):
            continue
        serial, _, rest = line.partition("\t") if "\t" in line else line.partition(" ")
        rest = rest.strip()
        for state in ("no permissions", "unauthorized", "offline", "device", "recovery", "sideload", "bootloader"):
            if rest.startswith(state):
                found.append(Device(serial=serial.strip(), state=state, details=rest[len(state) :].strip()))
                break
        else:
            if rest:
                found.append(Device(serial=serial.strip(), state=rest.split()[0], details=rest))
    return found


def _state_finding(dev: Device) -> Finding | None:
    if dev.state == "device":
        return None
    if dev.state == "unauthorized":
        return error(
            "devices.unauthorized",
            f"{dev.serial} has not authorised this computer for USB debugging",
            fix="unlock the phone and accept 'Allow USB debugging?' (tick 'Always allow from this computer'); "
            "if no prompt appears: Developer options → Revoke USB debugging authorisations, then replug",
            observed=dev.state,
            expected="device",
        )
    if dev.state == "offline":
        return error(
            "devices.offline",
            f"{dev.serial} is offline: adb sees it but cannot talk to it",
            fix=f"adb -s {dev.serial} reconnect  (or replug the cable; else adb kill-server && adb start-server)",
            observed=dev.state,
            expected="device",
        )
    if dev.state == "no permissions":
        return error(
            "devices.no-permissions",
            f"{dev.serial}: this user may not open the USB device",
            fix="install the Android udev rules (apt install android-sdk-platform-tools-common) and add yourself to "
            "the plugdev group, then replug",
            observed=dev.state,
            expected="device",
        )
    return error(
        "devices.not-ready",
        f"{dev.serial} is in state '{dev.state}', not booted into Android",
        fix=f"reboot the phone into Android: adb -s {dev.serial} reboot",
        observed=dev.state,
        expected="device",
    )


def _applies(snap: Snapshot, ctx: CheckContext) -> None:
    if ctx.pack.name != PHONE_PACK and "devices" not in ctx.pack.sections:
        raise Skip(f"pack {ctx.pack.name} drives no phones (use --pack {PHONE_PACK})")
    kind = snap.env.get("PHONE_AGENT_DEVICE_TYPE", "adb").strip().lower()
    if kind and kind != "adb":
        raise Skip(f"PHONE_AGENT_DEVICE_TYPE is {kind!r}, not adb")


@check(
    "devices.adb",
    title="Phones ready over ADB",
    needs=("live",),
    why="The phone agent drives Android phones over adb: an unauthorised or offline phone, an ambiguous choice "
    "between several, or a missing ADB Keyboard stops it at its first action.",
    fix="Authorise the computer on the phone, set PHONE_AGENT_DEVICE_ID when several are attached, and enable "
    "ADB Keyboard.",
)
def adb_devices(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """Adb is installed; each attached device is authorised and online; the agent's device has ADB Keyboard.

    The device the agent will use must be unambiguous: one attached, or PHONE_AGENT_DEVICE_ID names it.
    """
    _applies(snap, ctx)
    section = _section(ctx)
    timeout = float(section.get("adb_timeout") or ADB_TIMEOUT_S)
    keyboard = str(section.get("keyboard") or ADB_KEYBOARD)
    adb = shutil.which("adb")
    if adb is None:
        yield error(
            "devices.adb-missing",
            "adb is not on PATH: the agent cannot reach any phone",
            fix="install Android platform-tools (apt install adb; macOS: brew install android-platform-tools; or "
            "https://developer.android.com/tools/releases/platform-tools) and put adb on PATH",
        )
        return
    try:
        code, out = run_adb(adb, "version", timeout=timeout)
        version = next((line.strip() for line in out.splitlines() if line.strip()), "unknown")
        if code == 0:
            yield info("devices.adb-version", f"{adb}: {version}")
        code, out = run_adb(adb, "devices", "-l", timeout=timeout)
    except AdbTimeout as exc:
        yield _timeout_finding(str(exc))
        return
    if code != 0:
        last = (out.strip().splitlines() or [f"exit status {code}"])[-1]
        yield error(
            "devices.adb-failed",
            f"`adb devices` failed: {last}",
            fix="restart the adb server: adb kill-server && adb start-server",
            observed=last,
        )
        return
    devices = parse_devices(out)
    if not devices:
        yield error(
            "devices.none",
            "no Android device is attached (adb devices lists none)",
            fix="connect the phone by USB with USB debugging on (Settings → About phone → tap Build number 7 times; "
            "Developer options → USB debugging), or `adb connect HOST:PORT` for a phone over Wi-Fi",
            observed="0 devices",
            expected="at least 1",
        )
        return
    for dev in devices:
        finding = _state_finding(dev)
        if finding is not None:
            yield finding
        else:
            yield info("devices.ready", f"{dev.serial}: device {dev.details}".rstrip())
    wanted = snap.env.get("PHONE_AGENT_DEVICE_ID", "").strip()
    if wanted:
        chosen = next((d for d in devices if d.serial == wanted), None)
        if chosen is None:
            yield error(
                "devices.selected-missing",
                f"PHONE_AGENT_DEVICE_ID={wanted} is not attached (attached: {', '.join(d.serial for d in devices)})",
                fix=f"attach {wanted}, or export PHONE_AGENT_DEVICE_ID={devices[0].serial}",
                observed=", ".join(d.serial for d in devices),
                expected=wanted,
            )
            return
    elif len(devices) > 1:
        suggest = next((d.serial for d in devices if d.state == "device"), devices[0].serial)
        yield error(
            "devices.ambiguous",
            f"{len(devices)} devices are attached and PHONE_AGENT_DEVICE_ID is not set: adb refuses to guess "
            "('more than one device/emulator')",
            fix=f"export PHONE_AGENT_DEVICE_ID={suggest}",
            observed=", ".join(f"{d.serial} ({d.state})" for d in devices),
            expected="one device, or PHONE_AGENT_DEVICE_ID",
        )
        return
    else:
        chosen = devices[0]
    if chosen.state != "device":
        return
    try:
        yield from _keyboard(adb, chosen.serial, keyboard, timeout)
    except AdbTimeout as exc:
        yield _timeout_finding(str(exc))


def _timeout_finding(message: str) -> Finding:
    return error(
        "devices.adb-timeout",
        f"{message}: the adb server or the phone is stuck",
        fix="adb kill-server && adb start-server, then replug the phone (a charge-only cable or a locked USB mode "
        "also hangs adb)",
    )


def _keyboard(adb: str, serial: str, keyboard: str, timeout: float) -> Iterator[Finding]:
    enable = f"adb -s {shlex.quote(serial)} shell ime enable {keyboard}"
    code, enabled = run_adb(adb, "-s", serial, "shell", "ime", "list", "-s", timeout=timeout)
    if "SecurityException" in enabled or "WRITE_SECURE_SETTINGS" in enabled:
        yield error(
            "devices.secure-settings-denied",
            f"{serial} refuses adb access to secure settings (SecurityException: WRITE_SECURE_SETTINGS): the agent "
            "cannot switch to ADB Keyboard to type",
            fix=f"{SECURITY_SWITCH}; then `{enable}`",
            observed=next((line.strip() for line in enabled.splitlines() if "SecurityException" in line), "")[:200],
        )
        return
    if code != 0:
        last = (enabled.strip().splitlines() or [f"exit status {code}"])[-1]
        yield warning(
            "devices.ime-unknown",
            f"could not list the input methods of {serial}: {last}",
            fix=f"adb -s {shlex.quote(serial)} shell ime list -s  (run it by hand to see why)",
        )
        return
    if keyboard in enabled.split():
        yield info("devices.keyboard", f"{serial}: ADB Keyboard is enabled")
        return
    _, installed = run_adb(adb, "-s", serial, "shell", "ime", "list", "-a", "-s", timeout=timeout)
    if keyboard in installed.split():
        yield error(
            "devices.keyboard-disabled",
            f"ADB Keyboard is installed on {serial} but not enabled: the agent cannot type text",
            fix=f"{enable}  (if that fails with a SecurityException: {SECURITY_SWITCH})",
            observed="installed, not enabled",
            expected=f"{keyboard} enabled",
        )
    else:
        yield error(
            "devices.keyboard-missing",
            f"ADB Keyboard is not installed on {serial}: the agent cannot type text",
            fix=f"adb -s {shlex.quote(serial)} install ADBKeyboard.apk "
            f"(https://github.com/senzhk/ADBKeyBoard/releases), then `{enable}` "
            f"(if that fails with a SecurityException: {SECURITY_SWITCH})",
            observed=", ".join(enabled.split()) or "no input method enabled",
            expected=f"{keyboard} enabled",
        )
