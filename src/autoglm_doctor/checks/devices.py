"""devices.*: the phone agent's devices: Android (adb), HarmonyOS (hdc), iOS (WebDriverAgent).

Live checks: they run ``adb``/``hdc`` (found on PATH), every call with a timeout, or ask
WebDriverAgent over HTTP, and only read from the devices (``adb devices -l``, ``ime list``,
``hdc list targets``, WDA's ``/status``); they never change a phone's settings.

They apply to the phone-agent pack (``open-autoglm-phone``, or any pack with a ``devices:``
section). PHONE_AGENT_DEVICE_TYPE (default ``adb``, as the client) picks the one that must
pass; the others skip saying so. Pack keys read (``devices:`` section, optional):
``adb_timeout`` / ``hdc_timeout`` / ``wda_timeout`` (seconds per call, default 5),
``screenshot_timeout`` (default 10), ``keyboard`` (the IME id that must be enabled, default
``com.android.adbkeyboard/.AdbIME``).

This module also takes service.agent-step's screenshot (:func:`take_screenshot`): adb
``exec-out screencap -p`` (streamed, nothing written on the phone), WebDriverAgent's
``/screenshot``, and on HarmonyOS ``snapshot_display`` into a file of the doctor's own under
/data/local/tmp, received and removed (hdc has no way to stream it).
"""

from __future__ import annotations

import base64
import os
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autoglm_doctor import safeio
from autoglm_doctor.checks._util import pip_install
from autoglm_doctor.context import CheckContext
from autoglm_doctor.model import Finding, Skip, error, info, warning
from autoglm_doctor.probe.snapshot import Snapshot
from autoglm_doctor.registry import check
from autoglm_doctor.safeio import loads_json

if TYPE_CHECKING:
    from autoglm_doctor.knowledge.client_defects import Found

PHONE_PACK = "open-autoglm-phone"
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


def run_adb(adb: str, *args: str, timeout: float) -> tuple[int, str]:
    """Run one adb command; (exit status, stdout+stderr). Raises AdbTimeout after ``timeout`` seconds."""
    code, out = _run([adb, *args], timeout, merge_stderr=True)
    return code, out.decode("utf-8", errors="replace")


TOOL_TEXT_CAP_BYTES = 1 << 20
"""The most of a device tool's text output read (device lists, input methods, hdc's messages): a real one
is a few KiB; adb once printed 6 GB in 5 s."""
SCREENSHOT_CAP_BYTES = safeio.LIMITS["screenshot"]
"""The most of a screenshot read, however it arrives (adb's streamed PNG, the file hdc receives, the image in
WebDriverAgent's JSON): a 1440x3200 phone's PNG is 2 to 10 MiB, larger than any text a tool prints."""
WDA_BODY_CAP_BYTES = SCREENSHOT_CAP_BYTES * 4 // 3 + (1 << 20)
"""The most of a WebDriverAgent answer read: a screenshot's base64 and its JSON around it."""


def _run(argv: list[str], timeout: float, *, merge_stderr: bool, cap: int = TOOL_TEXT_CAP_BYTES) -> tuple[int, bytes]:
    """Run a device tool through :mod:`autoglm_doctor.procs` (own group, one deadline, capped output).

    On timeout its whole group is killed and AdbTimeout raised; past ``cap`` it is stopped (exit 1).
    """
    from autoglm_doctor import procs

    try:
        done = procs.run(argv, timeout=timeout, merge_stderr=merge_stderr, cap=cap)
    except OSError as exc:
        return 127, f"cannot run {argv[0]}: {exc.strerror or exc}".encode()
    tool = os.path.basename(argv[0])
    if done.timed_out:
        raise AdbTimeout(f"`{tool} {' '.join(argv[1:])}` did not answer within {timeout:g} s")
    if done.truncated:
        note = f"\n({tool} printed more than {cap >> 20} MiB; it was stopped)"
        return 1, done.stdout[:2000] + note.encode()
    code = done.returncode if done.returncode is not None else 1
    # a screenshot's bytes stay clean on success; on failure the tool's complaint is what matters
    return code, done.stdout if merge_stderr or code == 0 else done.stdout + done.stderr


DEVICES_MAX = 256
"""The most devices read from one listing (adb serves 16 USB devices a hub; a flood is not a device list)."""


def parse_devices(text: str) -> list[Device]:
    """The devices in ``adb devices -l`` output (daemon chatter and the header skipped), at most :data:`DEVICES_MAX`."""
    found: list[Device] = []
    for line in text.splitlines():
        if len(found) >= DEVICES_MAX:
            break
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
    kind = device_type(snap)
    if kind != "adb":
        raise Skip(_device_type_skip(snap, kind, "adb"))


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
    timeout = ctx.pack.settings.devices.adb_timeout  # typed and range-checked when the pack loaded
    keyboard = ctx.pack.settings.devices.keyboard
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
        if len(devices) > 1:
            yield from _client_defects(snap, wanted, len(devices))
    elif len(devices) > 1:
        suggest = next((d.serial for d in devices if d.state == "device"), devices[0].serial)
        # the client's own start-up check may run adb without -s: then PHONE_AGENT_DEVICE_ID alone is not
        # enough, and the fix is the whole workaround (the known defect, reported below in this same run)
        hits = _defect_hits(snap, suggest)
        fix = f"export PHONE_AGENT_DEVICE_ID={suggest}"
        if hits:
            where = ", ".join(f"{h.path.name}:{h.line}" for h in hits)
            fix = (
                f"export PHONE_AGENT_DEVICE_ID={suggest} ANDROID_SERIAL={suggest}  (both: the client's start-up "
                f"check at {where} runs adb without -s, and adb then uses ANDROID_SERIAL)"
            )
        yield error(
            "devices.ambiguous",
            f"{len(devices)} devices are attached and PHONE_AGENT_DEVICE_ID is not set: adb refuses to guess "
            "('more than one device/emulator')",
            fix=fix,
            observed=", ".join(f"{d.serial} ({d.state})" for d in devices),
            expected="one device, or PHONE_AGENT_DEVICE_ID" + (" and ANDROID_SERIAL" if hits else ""),
        )
        yield from _defect_findings(hits, suggest, len(devices))
        return
    else:
        chosen = devices[0]
    if chosen.state != "device":
        return
    try:
        yield from _keyboard(adb, chosen.serial, keyboard, timeout)
    except AdbTimeout as exc:
        yield _timeout_finding(str(exc))


def _client_defects(snap: Snapshot, serial: str, count: int) -> Iterator[Finding]:
    """Known defects of the client's own source that bite with several devices attached (knowledge/client_defects)."""
    yield from _defect_findings(_defect_hits(snap, serial), serial, count)


def _defect_hits(snap: Snapshot, serial: str) -> list[Found]:
    """The client's known several-devices defects that bite when ``serial`` is the device wanted."""
    from autoglm_doctor.knowledge.client_defects import client_checkouts, found_in

    if snap.env.get("ANDROID_SERIAL", "").strip() == serial:  # adb without -s uses it: the defect cannot bite
        return []
    return found_in(client_checkouts(snap.python.sys_path, snap.python.cwd), "several-adb-devices")


def _defect_findings(hits: list[Found], serial: str, count: int) -> Iterator[Finding]:
    """devices.client-defect for each hit, with its workaround for ``serial``."""
    from autoglm_doctor.model import Location

    for hit in hits:
        fields = {"file": hit.path.name, "line": hit.line, "count": count, "serial": serial}
        yield warning(
            "devices.client-defect",
            hit.defect.message.format(**fields),
            fix=hit.defect.workaround.format(**fields),
            location=Location(str(hit.path), hit.line),
            observed=f"{count} devices attached; {hit.path}:{hit.line} ({hit.defect.affected})",
            expected=f"the client's checks pass -s {serial}; sources: {', '.join(hit.defect.sources)}",
        )


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


# --- HarmonyOS (hdc) and iOS (WebDriverAgent) --------------------------------------------------

HDC_TIMEOUT_S = 5.0
WDA_DEFAULT_URL = "http://localhost:8100"
"""The client's default PHONE_AGENT_WDA_URL (main.py)."""
HDC_SCREENSHOT = "/data/local/tmp/autoglm-doctor-screen.jpeg"
"""Where hdc's snapshot is written on the device: hdc has no stdout capture, so the file is the doctor's own."""


def device_type(snap: Snapshot) -> str:
    """PHONE_AGENT_DEVICE_TYPE as the client reads it (default adb)."""
    return (snap.env.get("PHONE_AGENT_DEVICE_TYPE") or "adb").strip().lower() or "adb"


def _applies_to(snap: Snapshot, ctx: CheckContext, kind: str) -> None:
    if ctx.pack.name != PHONE_PACK and "devices" not in ctx.pack.sections:
        raise Skip(f"pack {ctx.pack.name} drives no phones (use --pack {PHONE_PACK})")
    chosen = device_type(snap)
    if chosen != kind:
        raise Skip(_device_type_skip(snap, chosen, kind))


def _device_type_skip(snap: Snapshot, chosen: str, kind: str) -> str:
    """Why a device check for ``kind`` does not run: the variable's value, or that it is unset (adb, the default)."""
    if not (snap.env.get("PHONE_AGENT_DEVICE_TYPE") or "").strip():
        return f"PHONE_AGENT_DEVICE_TYPE is unset: the client defaults to adb (set it to {kind} to drive that device)"
    return f"PHONE_AGENT_DEVICE_TYPE is {chosen!r}, not {kind}"


def parse_hdc_targets(text: str) -> list[str]:
    """Targets in ``hdc list targets`` output; ``[Empty]`` means none."""
    return [line.strip() for line in text.splitlines() if line.strip() and line.strip() != "[Empty]"]


def choose_target(targets: list[str], wanted: str) -> tuple[str | None, Finding | None]:
    """The target the client will use, or the finding that says why there is none."""
    if wanted:
        if wanted in targets:
            return wanted, None
        return None, error(
            "devices.hdc-selected-missing",
            f"PHONE_AGENT_DEVICE_ID={wanted} is not among hdc's targets ({', '.join(targets)})",
            fix=f"connect {wanted} (hdc tconn {wanted} for a device over the network), or export "
            f"PHONE_AGENT_DEVICE_ID={targets[0]}",
            observed=", ".join(targets),
            expected=wanted,
        )
    if len(targets) > 1:
        return None, error(
            "devices.hdc-ambiguous",
            f"{len(targets)} HarmonyOS targets are connected and PHONE_AGENT_DEVICE_ID is not set",
            fix=f"export PHONE_AGENT_DEVICE_ID={targets[0]}",
            observed=", ".join(targets),
            expected="one target, or PHONE_AGENT_DEVICE_ID",
        )
    return targets[0], None


@check(
    "devices.hdc",
    title="HarmonyOS devices ready over hdc",
    needs=("live",),
    why="With PHONE_AGENT_DEVICE_TYPE=hdc the agent drives a HarmonyOS device with hdc: a missing hdc, no target, "
    "or an ambiguous choice between several stops it before its first step.",
    fix="Install the HarmonyOS SDK's toolchains (hdc) on PATH, enable USB debugging on the device, and set "
    "PHONE_AGENT_DEVICE_ID when several are connected.",
)
def hdc_devices(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """Hdc is on PATH; ``hdc list targets`` lists one target, or PHONE_AGENT_DEVICE_ID names a listed one."""
    _applies_to(snap, ctx, "hdc")
    timeout = ctx.pack.settings.devices.hdc_timeout
    hdc = shutil.which("hdc")
    if hdc is None:
        yield error(
            "devices.hdc-missing",
            "hdc is not on PATH: the agent cannot reach a HarmonyOS device (PHONE_AGENT_DEVICE_TYPE=hdc)",
            fix="install DevEco Studio or the HarmonyOS command-line tools and put the folder holding hdc "
            "(sdk/default/openharmony/toolchains) on PATH",
        )
        return
    try:
        code, out = run_adb(hdc, "list", "targets", timeout=timeout)
    except AdbTimeout as exc:
        yield error(
            "devices.hdc-timeout",
            f"{exc}: the hdc server or the device is stuck",
            fix="hdc kill && hdc start, then replug the device",
        )
        return
    if code != 0:
        last = (out.strip().splitlines() or [f"exit status {code}"])[-1]
        yield error(
            "devices.hdc-failed", f"`hdc list targets` failed: {last}", fix="hdc kill && hdc start", observed=last
        )
        return
    targets = parse_hdc_targets(out)
    if not targets:
        yield error(
            "devices.hdc-none",
            "no HarmonyOS device is connected (hdc list targets: [Empty])",
            fix="connect the device by USB with USB debugging on (Settings → About phone → tap the build number "
            "7 times; Developer options → USB debugging), or `hdc tconn HOST:PORT` over the network",
            observed="0 targets",
            expected="at least 1",
        )
        return
    chosen, problem = choose_target(targets, snap.env.get("PHONE_AGENT_DEVICE_ID", "").strip())
    if problem is not None:
        yield problem
        return
    yield info("devices.hdc-ready", f"{chosen}: listed by hdc ({hdc})")


def wda_url(snap: Snapshot) -> str:
    """PHONE_AGENT_WDA_URL, else the client's default."""
    return (snap.env.get("PHONE_AGENT_WDA_URL") or WDA_DEFAULT_URL).rstrip("/")


@dataclass(frozen=True, slots=True)
class WdaStatus:
    """What WebDriverAgent's ``GET /status`` says: ``{"value": {"ready": ..., "os": {"version": ...}}}``."""

    ready: bool | None = None
    """``value.ready``; None when it is absent or not a boolean."""
    os_version: str | None = None
    """``value.os.version`` (at most 40 characters); None when absent or not a string."""


def _wda_value(body: bytes) -> Any:
    try:
        data = loads_json(body)
    except ValueError:  # not JSON, nested too deeply, a number too long to read
        return None
    return data.get("value") if isinstance(data, dict) else None


def wda_status(body: bytes) -> WdaStatus:
    """``GET /status``'s body, typed; anything else in it is ignored, never raises."""
    value = _wda_value(body)
    if not isinstance(value, dict):
        return WdaStatus()
    ready = value.get("ready")
    os_info = value.get("os")
    version = os_info.get("version") if isinstance(os_info, dict) else None
    return WdaStatus(
        ready=ready if isinstance(ready, bool) else None,
        os_version=version[:40] if isinstance(version, str) and version else None,
    )


def wda_screenshot(body: bytes) -> bytes:
    """The image in ``GET /screenshot``'s body (``{"value": "<base64>"}``); empty when there is none."""
    value = _wda_value(body)
    if not isinstance(value, str):
        return b""
    try:
        return base64.b64decode(value)
    except ValueError:  # binascii.Error: not base64
        return b""


def wda_get(url: str, timeout: float) -> tuple[int | None, bytes, str]:
    """(status, body, failure detail) of one GET to WebDriverAgent; never raises."""
    import urllib.error
    import urllib.request

    from autoglm_doctor import httpclient

    try:  # one deadline for the whole exchange (httpclient), not one per read
        with httpclient.urlopen(urllib.request.Request(url), timeout) as resp:  # noqa: S310 - the user's own WDA
            return resp.status, resp.read(WDA_BODY_CAP_BYTES), ""
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(1 << 16) if exc.fp else b"", str(exc.reason)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, b"", str(getattr(exc, "reason", exc))


@check(
    "devices.ios",
    title="iPhone ready over WebDriverAgent",
    needs=("live",),
    why="With PHONE_AGENT_DEVICE_TYPE=ios the agent drives the iPhone through WebDriverAgent's HTTP API "
    "(PHONE_AGENT_WDA_URL) with the requests library: WDA not running or not forwarded, or requests missing, "
    "stops it before its first step.",
    fix="Start WebDriverAgent from Xcode on the iPhone, forward its port (iproxy 8100 8100), export "
    "PHONE_AGENT_WDA_URL, and install requests in the client's environment.",
)
def ios_devices(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """Requests is installed in the target environment; WebDriverAgent answers GET /status at PHONE_AGENT_WDA_URL."""
    _applies_to(snap, ctx, "ios")
    installed = {d.name.lower() for d in snap.distributions}
    if snap.python.version and "requests" not in installed:  # the probe ran and found no requests
        yield error(
            "devices.ios-requests-missing",
            "requests is not installed in the target environment: the client talks to WebDriverAgent with it",
            fix=f"{pip_install(snap, 'requests>=2.31.0')}  (Open-AutoGLM's requirements.txt: for iOS support)",
            expected="requests>=2.31.0",
        )
    url = wda_url(snap)
    timeout = ctx.pack.settings.devices.wda_timeout
    status, body, detail = wda_get(f"{url}/status", timeout)
    if status is None:
        yield error(
            "devices.wda-down",
            f"WebDriverAgent does not answer at {url}: {detail}",
            fix="start WebDriverAgent on the iPhone (Xcode: WebDriverAgentRunner → Product → Test), forward its port "
            "over USB (iproxy 8100 8100), and export PHONE_AGENT_WDA_URL=http://localhost:8100",
            observed=detail,
            expected=f"HTTP 200 from {url}/status",
        )
        return
    if status != 200:
        yield error(
            "devices.wda-error",
            f"WebDriverAgent at {url} answered GET /status with HTTP {status}",
            fix="restart WebDriverAgent from Xcode; check that PHONE_AGENT_WDA_URL points at WDA, not another service",
            observed=f"HTTP {status}",
            expected="HTTP 200",
        )
        return
    answer = wda_status(body)
    where = f"iOS {answer.os_version}" if answer.os_version else "an iPhone"
    ready = answer.ready
    if ready is False:
        yield error(
            "devices.wda-not-ready",
            f"WebDriverAgent at {url} answers but says it is not ready",
            fix="unlock the iPhone and trust the developer app (Settings → General → VPN & Device Management), then "
            "restart WebDriverAgent",
            observed="ready: false",
            expected="ready: true",
        )
        return
    yield info("devices.wda-ready", f"WebDriverAgent answers at {url} ({where})")


# --- one screenshot from the chosen device, read-only (service.agent-step) ----------------------


@dataclass(frozen=True, slots=True)
class Screen:
    """A screenshot taken for service.agent-step, or why there is none."""

    image: bytes | None
    """PNG or JPEG bytes."""
    device: str
    """Which device, in words (``adb 8a7f3c21``)."""
    problem: Finding | None = None
    """A failure taking it (the device is there but gave no image)."""
    note: str = ""
    """What the tool said besides the image (screencap's warning about several displays), first line."""


class NoDevice(Exception):  # noqa: N818 - a reason to skip, not an error
    """There is no device to take a screenshot from; the message says why."""


def run_binary(argv: list[str], timeout: float, *, cap: int = TOOL_TEXT_CAP_BYTES) -> tuple[int, bytes]:
    """Run one device-tool command, its stdout kept as bytes (a PNG with a screenshot's ``cap``); raises AdbTimeout."""
    return _run(argv, timeout, merge_stderr=False, cap=cap)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _is_binary(output: bytes) -> bool:
    """Output that is not text: NUL or other control bytes, or not UTF-8."""
    try:
        text = output.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return any(ord(ch) < 32 and ch not in "\t\r\n" for ch in text)


def first_printable_line(output: bytes) -> str:
    """The first non-empty line of ``output`` that is printable text, or empty."""
    for raw in output.splitlines():
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            continue
        if line and line.isprintable():
            return line[:400]  # screencap's display warning is 230 characters
    return ""


def quoted_output(output: bytes) -> str:
    """A tool's output fit to quote in a finding: its last line when it is text; never raw binary.

    Binary output (a PNG after a warning, a truncated image) is told as a byte count and its first
    printable line.
    """
    if _is_binary(output):
        first = first_printable_line(output)
        return f"{len(output)} bytes of binary output" + (f", first printable line: {first}" if first else "")
    text = output.decode("utf-8").strip()
    return (text.splitlines() or [f"{len(output)} bytes that are not an image"])[-1][:200]


def image_after_text(output: bytes) -> tuple[str, bytes] | None:
    """(the text, the PNG) when a tool wrote a warning and then the image (screencap with several displays)."""
    at = output.find(PNG_SIGNATURE)
    if at <= 0 or _is_binary(output[:at]):
        return None
    return output[:at].decode("utf-8").strip(), output[at:]


def _screenshot_failed(device: str, command: str, output: bytes) -> Finding:
    text = output.decode("utf-8", errors="replace").strip()
    line = quoted_output(output)
    sensitive = "Status: -1" in text or "fail" in text.lower()
    return error(
        "service.screenshot-failed",
        f"{device} gave no screenshot for `{command}`: {line}"
        + (" (the screen may be a protected one: payment, password)" if sensitive else ""),
        fix="unlock the phone and leave a normal screen (home screen) showing; then run the command by hand",
        observed=line,
        expected="a PNG image",
    )


def take_screenshot(snap: Snapshot, ctx: CheckContext) -> Screen:
    """A screenshot from the device the client would use, read-only; raises NoDevice when there is none."""
    from autoglm_doctor.phone.screenshot import image_size

    kind = device_type(snap)
    wanted = snap.env.get("PHONE_AGENT_DEVICE_ID", "").strip()
    timeout = ctx.pack.settings.devices.screenshot_timeout
    if kind == "ios":
        url = wda_url(snap)
        status, _, detail = wda_get(f"{url}/status", HDC_TIMEOUT_S)
        if status != 200:
            raise NoDevice(
                f"no device: WebDriverAgent does not answer at {url} ({detail or f'HTTP {status}'}; see devices.ios)"
            )
        status, body, detail = wda_get(f"{url}/screenshot", timeout)
        image = wda_screenshot(body) if status == 200 else b""
        if not image_size(image):
            return Screen(
                None,
                f"iOS at {url}",
                _screenshot_failed(f"WebDriverAgent at {url}", "GET /screenshot", body or detail.encode()),
            )
        return Screen(image, f"iOS at {url}")
    tool = "hdc" if kind == "hdc" else "adb"
    path = shutil.which(tool)
    if path is None:
        raise NoDevice(f"no device: {tool} is not on PATH (see devices.{tool})")
    try:
        if tool == "adb":
            code, out = run_adb(path, "devices", "-l", timeout=HDC_TIMEOUT_S)
            ready = [d.serial for d in parse_devices(out) if d.state == "device"] if code == 0 else []
        else:
            code, out = run_adb(path, "list", "targets", timeout=HDC_TIMEOUT_S)
            ready = parse_hdc_targets(out) if code == 0 else []
        if wanted:
            if wanted not in ready:
                raise NoDevice(
                    f"no device: PHONE_AGENT_DEVICE_ID={wanted} is not a ready {tool} device (see devices.{tool})"
                )
            serial = wanted
        elif len(ready) == 1:
            serial = ready[0]
        elif not ready:
            raise NoDevice(f"no device: {tool} lists no ready device (see devices.{tool})")
        else:
            raise NoDevice(
                f"no device chosen: {len(ready)} are attached and PHONE_AGENT_DEVICE_ID is not set (see devices.{tool})"
            )
        if tool == "adb":
            command = ["-s", serial, "exec-out", "screencap", "-p"]
            code, image = run_binary([path, *command], timeout, cap=SCREENSHOT_CAP_BYTES)
            split = image_after_text(image) if code == 0 else None
            if split is not None and image_size(split[1]):
                # screencap warned first (several displays, no -d) and then wrote the first display's image
                return Screen(split[1], f"adb {serial}", None, note=first_printable_line(split[0].encode()))
            if code != 0 or not image_size(image):
                return Screen(
                    None, f"adb {serial}", _screenshot_failed(f"adb {serial}", f"adb {' '.join(command)}", image)
                )
            return Screen(image, f"adb {serial}")
        return _hdc_screenshot(path, serial, timeout)
    except AdbTimeout as exc:
        return Screen(
            None,
            f"{tool}",
            error(
                "service.screenshot-failed",
                f"{exc}: the device tool is stuck",
                fix=f"restart the {tool} server and replug the phone",
            ),
        )


def _hdc_screenshot(hdc: str, target: str, timeout: float) -> Screen:
    """Write hdc's snapshot to a file of the doctor's own on the device, receive it, remove it."""
    import tempfile

    from autoglm_doctor.phone.screenshot import image_size

    device = f"hdc {target}"
    code, out = run_binary([hdc, "-t", target, "shell", "snapshot_display", "-f", HDC_SCREENSHOT], timeout)
    if code != 0 or b"fail" in out.lower() or b"error" in out.lower():
        return Screen(None, device, _screenshot_failed(device, f"hdc shell snapshot_display -f {HDC_SCREENSHOT}", out))
    with tempfile.TemporaryDirectory(prefix="autoglm-doctor-") as folder:
        local = os.path.join(folder, "screen.jpeg")
        try:
            code, out = run_binary([hdc, "-t", target, "file", "recv", HDC_SCREENSHOT, local], timeout)
        finally:
            run_binary([hdc, "-t", target, "shell", "rm", "-f", HDC_SCREENSHOT], timeout)
        if code != 0:
            return Screen(None, device, _screenshot_failed(device, f"hdc file recv {HDC_SCREENSHOT}", out))
        try:  # what hdc left there is read like any file: a link to a device, a FIFO or 8 GB is refused
            image = safeio.read_bytes(local, "screenshot")
        except OSError as exc:
            refused = isinstance(exc, safeio.RefusedFile | IsADirectoryError)  # strerror says "is ..."
            why = f"the received file {'' if refused else 'cannot be read: '}{exc.strerror}"
            return Screen(None, device, _screenshot_failed(device, f"hdc file recv {HDC_SCREENSHOT}", why.encode()))
    if not image_size(image):
        return Screen(None, device, _screenshot_failed(device, f"hdc file recv {HDC_SCREENSHOT}", out))
    return Screen(image, device)
