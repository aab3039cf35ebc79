"""``--verify``: let pip's own resolver judge the file, for the target interpreter, without installing.

Runs ``<target python> -m pip install --dry-run --ignore-installed --report REPORT -r FILE`` (with
``--require-hashes`` for a lock, as a user installs it); a ``pylock.toml`` is resolved by
``uv pip install --dry-run -r FILE`` (pip installs no pylock.toml yet).
A target without pip (a venv made ``--without-pip``) is resolved by the doctor's own pip with
``--python <target>`` (pip 22.3 or newer), and the result says so.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.version import InvalidVersion, Version

from autoglm_doctor.safeio import loads_json, read_text

VERIFY_TIMEOUT_S = 600.0
"""Seconds pip may take: a dry run may download large wheels (torch) to read their metadata."""

PIP_PROBE_TIMEOUT_S = 30.0
"""Seconds ``python -m pip --version`` may take."""

_MIN_PIP_FOR_PYTHON = Version("22.3")
_MIN_PIP_FOR_REPORT = Version("22.2")


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What pip said about the file."""

    ok: bool
    """pip resolved every requirement."""
    summary: str
    """One line for a person."""
    detail: str = ""
    """pip's own words when it did not resolve (the conflict it found)."""
    command: tuple[str, ...] = ()
    """The command that ran."""
    installs: tuple[str, ...] = ()
    """``name==version`` of what pip would install, when it resolved."""


def _run(
    cmd: Sequence[str], timeout: float, env: Mapping[str, str] | None, *, merge: bool = False, redact: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run through :mod:`autoglm_doctor.procs` (``merge``: stderr into stdout, in order); raises TimeoutExpired.

    At the deadline the child's whole process group is killed (procs), so a stalled resolver leaves
    nothing running. Its output is redacted here, where it enters (an index URL with a password, a
    token echoed in an error), unless ``redact=False`` for output the doctor reads and never shows
    (``pip config list``, whose index URLs are passed on to uv).
    """
    from autoglm_doctor import procs

    done = procs.run(cmd, timeout=timeout, env=procs.child_environment(env), merge_stderr=merge)
    if done.timed_out:
        raise subprocess.TimeoutExpired(list(shown_command(cmd)), timeout)
    out, err = done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")
    if redact:
        from autoglm_doctor.redact import redact_text, secret_values

        secrets = secret_values()
        out, err = redact_text(out, secrets), redact_text(err, secrets)
    code = done.returncode if done.returncode is not None else 1  # stopped for printing too much
    return subprocess.CompletedProcess(list(cmd), code, out, err)


def shown_command(cmd: Sequence[str]) -> tuple[str, ...]:
    """A resolver's or pip's command as it may be shown: credentials in index URLs masked."""
    from autoglm_doctor.redact import redact_url

    return tuple(redact_url(part) for part in cmd)


def _pip_version(output: str) -> Version | None:
    """The version in ``pip X.Y from ... (python 3.11)``."""
    words = output.split()
    try:
        return Version(words[1]) if len(words) > 1 and words[0] == "pip" else None
    except InvalidVersion:
        return None


def pip_command(python: str, env: Mapping[str, str] | None = None) -> tuple[list[str], str]:
    """The pip to run for ``python`` and a note when it is not the target's own.

    The target's own pip when it has ``install --dry-run --report`` (pip 22.2+); otherwise the
    doctor's pip, run for the target with ``--python`` (pip 22.3+).
    """
    why = f"{python} has no pip"
    try:
        probe = _run([python, "-m", "pip", "--version"], PIP_PROBE_TIMEOUT_S, env)
        if probe.returncode == 0:
            theirs = _pip_version(probe.stdout)
            if theirs is None or theirs >= _MIN_PIP_FOR_REPORT:
                return [python, "-m", "pip"], ""
            why = f"{python}'s pip {theirs} is older than {_MIN_PIP_FOR_REPORT} (no install --dry-run --report)"
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        own = Version(metadata.version("pip"))
    except (metadata.PackageNotFoundError, InvalidVersion):
        own = None
    if own is None or own < _MIN_PIP_FOR_PYTHON:
        raise VerifyUnavailable(
            f"{why}, and the doctor's own pip ({own or 'not installed'}) is older than "
            f"{_MIN_PIP_FOR_PYTHON}, which added --python: install a newer pip into the target "
            f"({python} -m ensurepip --upgrade) to verify"
        )
    return [sys.executable, "-m", "pip", "--python", python], (
        f"{why}: resolved with the doctor's own pip {own} (--python {python})"
    )


class VerifyUnavailable(Exception):  # noqa: N818 - a condition reported to the user
    """pip cannot be run for the target; the message says why."""


def _conflict(output: str) -> str:
    """The lines of pip's output from its first error on (the conflict and its causes), without progress chatter."""
    lines = output.strip().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("ERROR")), 0)
    return "\n".join(line for line in lines[start:] if line.strip()).strip()


def verify(
    path: Path,
    python: str,
    *,
    extra_args: Sequence[str] = (),
    timeout: float = VERIFY_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
    require_hashes: bool = False,
) -> VerifyResult:
    """Ask pip to resolve ``path`` for ``python`` (a dry run: nothing is installed)."""
    try:
        pip, note = pip_command(python, env)
    except VerifyUnavailable as exc:
        return VerifyResult(False, f"cannot verify: {exc}")
    prefix = f"{note}. " if note else ""
    # --report to a file rather than "-": on stdout the JSON would be mixed with pip's log, and --quiet
    # would drop the lines that explain a conflict ("The conflict is caused by: ...").
    try:
        scratch = tempfile.TemporaryDirectory(prefix="autoglm-doctor-verify-")
    except OSError as exc:  # a read-only container: no writable TMPDIR
        why = f"no writable temporary folder ({exc.strerror or exc}); set TMPDIR"
        return VerifyResult(False, f"{prefix}cannot verify: {why}")
    with scratch as folder:
        report_path = Path(folder) / "report.json"
        cmd = [*pip, "install", "--dry-run", "--ignore-installed", "--report", str(report_path), *extra_args]
        cmd += [*(["--require-hashes"] if require_hashes else []), "-r", str(path)]
        try:
            done = _run(cmd, timeout, env, merge=True)
        except subprocess.TimeoutExpired:
            return VerifyResult(False, f"{prefix}pip did not finish within {timeout:.0f} s", command=shown_command(cmd))
        except OSError as exc:
            return VerifyResult(False, f"{prefix}cannot run pip: {exc.strerror or exc}", command=shown_command(cmd))
        if done.returncode != 0:
            return VerifyResult(
                False,
                f"{prefix}pip cannot resolve {path}",
                detail=_conflict(done.stdout),
                command=shown_command(cmd),
            )
        installs: list[str] = []
        try:
            report = loads_json(read_text(report_path, "report"))
            for item in report.get("install", []) if isinstance(report, dict) else []:
                meta = item.get("metadata") if isinstance(item, dict) else None
                if isinstance(meta, dict) and isinstance(meta.get("name"), str):
                    installs.append(f"{meta['name']}=={meta.get('version')}")
        except (OSError, ValueError):
            pass
    return VerifyResult(
        True,
        f"{prefix}pip resolves {path}: {len(installs)} distributions would be installed",
        command=shown_command(cmd),
        installs=tuple(installs),
    )


def verify_pylock(
    path: Path,
    python: str,
    uv: str | None,
    *,
    extra_args: Sequence[str] = (),
    timeout: float = VERIFY_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
) -> VerifyResult:
    """Ask uv, a consumer of PEP 751 files, to install ``path`` for ``python`` as a dry run."""
    if uv is None:
        return VerifyResult(False, f"cannot verify {path}: installing a pylock.toml needs uv on PATH (pip install uv)")
    # --reinstall: like pip's --ignore-installed, judge the whole file, not only what differs from the target.
    cmd = [uv, "pip", "install", "--dry-run", "--reinstall", "--python", python, *extra_args, "-r", str(path)]
    try:
        done = _run(cmd, timeout, env, merge=True)
    except subprocess.TimeoutExpired:
        return VerifyResult(False, f"uv did not finish within {timeout:.0f} s", command=shown_command(cmd))
    except OSError as exc:
        return VerifyResult(False, f"cannot run uv: {exc.strerror or exc}", command=shown_command(cmd))
    if done.returncode != 0:
        return VerifyResult(False, f"uv cannot install {path}", detail=done.stdout.strip(), command=shown_command(cmd))
    installs = tuple(line.strip()[2:] for line in done.stdout.splitlines() if line.strip().startswith("+ "))
    return VerifyResult(
        True,
        f"uv installs {path}: {len(installs)} distributions would be installed",
        command=shown_command(cmd),
        installs=installs,
    )
