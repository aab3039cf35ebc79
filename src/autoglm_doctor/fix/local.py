"""Distributions the fix never pins from an index: the doctor itself, editable, local-path and VCS installs.

An index cannot reproduce them: ``autoglm-doctor==0.1.0`` or ``myapp==0.3.0`` installed with
``pip install -e .`` exists on no index, and pinning it made the whole file fail to install
("No matching distribution found"). So the file leaves them out and says, in a comment, how to
install each one again: the URL it came from (PEP 610's ``direct_url.json``) when that is
reproducible (a VCS commit, an archive URL), otherwise the folder to install it from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from autoglm_doctor.probe.snapshot import Distribution, canonical_name

DOCTOR = "autoglm-doctor"
"""The doctor's own distribution name: a tool beside the deployment, not part of it."""


@dataclass(frozen=True, slots=True)
class LeftOut:
    """An installed distribution the file does not pin, and why."""

    name: str
    """Distribution name, as its metadata writes it."""
    version: str
    """The installed version."""
    why: str
    """Why no index pin: ``installed editable from /src/app``."""
    install: str
    """How to install it again (a pip argument), or empty when there is no reproducible source."""


def _source(direct_url: str) -> dict[str, object] | None:
    try:
        data = json.loads(direct_url)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def left_out(dist: Distribution) -> LeftOut | None:
    """Why ``dist`` must not be pinned from an index, or None when an index pin reproduces it."""
    source = _source(dist.direct_url) if dist.direct_url else None
    is_doctor = canonical_name(dist.name) == DOCTOR
    if source is None:
        if is_doctor:
            return LeftOut(dist.name, dist.version, "the doctor itself, not part of the deployment", "")
        return None
    url = str(source.get("url", ""))
    dir_info = source.get("dir_info")
    vcs_info = source.get("vcs_info")
    editable = isinstance(dir_info, dict) and bool(dir_info.get("editable"))
    prefix = "the doctor itself, " if is_doctor else ""
    if editable:
        folder = url.removeprefix("file://")
        return LeftOut(dist.name, dist.version, f"{prefix}installed editable from {url}", f"-e {folder}")
    if isinstance(vcs_info, dict):
        commit = str(vcs_info.get("commit_id", ""))
        vcs = str(vcs_info.get("vcs", "git"))
        pinned = f"{dist.name} @ {vcs}+{url}@{commit}" if commit else ""
        return LeftOut(dist.name, dist.version, f"{prefix}installed from {vcs} {url}", pinned)
    if isinstance(dir_info, dict):
        return LeftOut(dist.name, dist.version, f"{prefix}installed from the local folder {url}", url)
    if url.startswith("file:"):
        return LeftOut(dist.name, dist.version, f"{prefix}installed from the local file {url}", url)
    if is_doctor:
        return LeftOut(dist.name, dist.version, f"the doctor itself, installed from {url}", f"{dist.name} @ {url}")
    # An archive URL (https://.../x.whl): an index pin would fetch a different file.
    return LeftOut(dist.name, dist.version, f"installed from the URL {url}", f"{dist.name} @ {url}")
