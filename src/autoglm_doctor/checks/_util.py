"""Helpers shared by the built-in checks: versions, markers and fix commands for the target."""

from __future__ import annotations

import shlex

from packaging.version import InvalidVersion, Version

from autoglm_doctor.probe.snapshot import PythonFacts, Snapshot


def parse_version(text: str) -> Version | None:
    """A PEP 440 version, or None when the text is not one."""
    try:
        return Version(text)
    except InvalidVersion:
        return None


def installed_version(snap: Snapshot, name: str) -> Version | None:
    """Version of the distribution import would use, or None when absent or unparseable."""
    from autoglm_doctor.probe.snapshot import canonical_name

    dist = snap.effective().get(canonical_name(name))
    return parse_version(dist.version) if dist is not None else None


def pip_install(snap: Snapshot, *requirements: str) -> str:
    """The exact command that installs ``requirements`` into the target interpreter."""
    args = " ".join(shlex.quote(r) for r in requirements)
    return f"{shlex.quote(snap.python.executable)} -m pip install {args}"


_SYSTEMS = {"linux": "Linux", "win32": "Windows", "cygwin": "Windows", "darwin": "Darwin"}


def marker_environment(python: PythonFacts) -> dict[str, str]:
    """PEP 508 marker variables of the *target* interpreter (not the doctor's)."""
    version = parse_version(python.version)
    short = f"{version.major}.{version.minor}" if version else python.version
    return {
        "implementation_name": python.implementation,
        "implementation_version": python.version,
        "os_name": "nt" if python.platform == "win32" else "posix",
        "platform_machine": python.machine,
        "platform_python_implementation": {"cpython": "CPython", "pypy": "PyPy"}.get(
            python.implementation, python.implementation
        ),
        "platform_release": "",
        "platform_system": _SYSTEMS.get(python.platform, python.platform.capitalize()),
        "platform_version": "",
        "python_full_version": python.version,
        "python_version": short,
        "sys_platform": python.platform,
    }


def short_version(version: Version) -> str:
    """``major.minor`` of a version."""
    return f"{version.major}.{version.minor}"
