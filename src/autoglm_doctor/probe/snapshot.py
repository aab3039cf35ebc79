"""The typed Snapshot: every fact the checks read, gathered once.

A snapshot is plain data. It serialises to JSON (``autoglm-doctor snapshot -o F``) and is
read back by ``check --snapshot F`` on any machine, so nothing here may hold live objects.
Each area keeps its facts in its own dataclass; the areas that gather them live beside this
module (``gpu``, ``host``, ``weights``) and in :mod:`autoglm_doctor.configfile`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autoglm_doctor.configfile.facts import ConfigFacts
from autoglm_doctor.engines.base import EngineFlags
from autoglm_doctor.probe.abi import AbiFacts
from autoglm_doctor.probe.gpu import GpuFacts
from autoglm_doctor.probe.host import HostFacts
from autoglm_doctor.probe.libraries import LibraryFacts
from autoglm_doctor.probe.weights import ModelFacts
from autoglm_doctor.serde import SerdeError, from_data, to_data

SCHEMA = "autoglm-doctor/snapshot@1"

_NORMALIZE = re.compile(r"[-_.]+")


def canonical_name(name: str) -> str:
    """PEP 503 normalised distribution name (``Foo_Bar`` -> ``foo-bar``)."""
    return _NORMALIZE.sub("-", name).lower()


@dataclass(frozen=True, slots=True)
class PythonFacts:
    """The inspected interpreter."""

    version: str
    """``platform.python_version()``, e.g. ``3.11.7``."""
    implementation: str
    """``cpython``, ``pypy``..."""
    executable: str
    """``sys.executable`` of the target."""
    prefix: str
    """``sys.prefix``."""
    base_prefix: str
    """``sys.base_prefix`` (equal to prefix outside a virtual environment)."""
    env_kind: str
    """One of ``venv``, ``virtualenv``, ``uv``, ``conda``, ``system``."""
    sys_path: list[str] = field(default_factory=list)
    """The module search path a program started in ``cwd`` would see (cwd first)."""
    cwd: str = ""
    """Working directory the probe ran in."""
    platform: str = ""
    """``sys.platform`` (``linux``, ``win32``, ``darwin``)."""
    platform_full: str = ""
    """``platform.platform()``."""
    machine: str = ""
    """``platform.machine()`` (``x86_64``, ``aarch64``)."""
    libc: str = ""
    """C library and version, e.g. ``glibc 2.36``; empty when unknown."""
    env_name: str = ""
    """Name of the conda environment, when there is one."""
    externally_managed: bool = False
    """The base interpreter carries an EXTERNALLY-MANAGED marker (PEP 668)."""
    system_site_packages: bool = False
    """A virtual environment created with ``--system-site-packages`` (sees the system's packages)."""
    user_site: str = ""
    """The user site-packages folder when it is on the search path (``pip install --user``)."""


@dataclass(frozen=True, slots=True)
class Distribution:
    """One installed distribution, as found on disk (``*.dist-info`` / ``*.egg-info``)."""

    name: str
    """Name as written in its metadata (or derived from the folder name when missing)."""
    version: str
    """Version as written in its metadata; empty when unknown."""
    location: str
    """The ``sys.path`` entry it lives in."""
    path: str
    """The metadata folder itself."""
    requires: list[str] = field(default_factory=list)
    """``Requires-Dist`` lines, verbatim."""
    requires_python: str = ""
    """``Requires-Python``, verbatim."""
    installer: str = ""
    """Contents of the ``INSTALLER`` file (pip, uv, conda...)."""
    top_level: list[str] = field(default_factory=list)
    """Top-level import names, when ``top_level.txt`` says."""
    direct_url: str = ""
    """``direct_url.json`` (PEP 610) verbatim: set for editable, local-path, URL and VCS installs."""
    problem: str = ""
    """What is wrong with the metadata itself (missing METADATA, undecodable text...)."""
    path_index: int = 0
    """Position of ``location`` in the search path; lower wins at import time."""

    @property
    def key(self) -> str:
        """Normalised name used for comparisons."""
        return canonical_name(self.name)


@dataclass(frozen=True, slots=True)
class TorchBuild:
    """What ``torch/version.py`` says, read as text; torch itself is never imported."""

    version: str
    """``torch.__version__`` including the local tag, e.g. ``2.1.2+cu121``."""
    cuda: str | None = None
    """``torch.version.cuda`` (None for CPU and ROCm builds)."""
    hip: str | None = None
    """``torch.version.hip`` (ROCm builds)."""
    git_version: str = ""
    """Commit the build came from."""
    debug: bool = False
    """A debug build."""
    path: str = ""
    """The version.py that was read."""

    @property
    def local_tag(self) -> str:
        """``cu121``, ``cpu``, ``rocm6.2`` or empty for PyPI wheels without a tag."""
        return self.version.partition("+")[2]


@dataclass(frozen=True, slots=True)
class Shadow:
    """A file or folder that wins an import over the real module of the same name."""

    module: str
    """The import name, e.g. ``torch``."""
    path: str
    """The file or folder that shadows it."""
    shadowed: str
    """Where the real module lives (a path), or ``stdlib``."""
    distribution: str = ""
    """The distribution that owns the real module, when known."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every fact about one deployment target, gathered once."""

    python: PythonFacts
    """The target interpreter."""
    distributions: list[Distribution] = field(default_factory=list)
    """Every distribution on the search path, duplicates included, in path order."""
    torch: TorchBuild | None = None
    """torch's build facts, when torch is installed."""
    shadows: list[Shadow] = field(default_factory=list)
    """Local files and folders that shadow real modules."""
    probe_errors: list[str] = field(default_factory=list)
    """Non-fatal problems the probe met (unreadable folders...)."""
    libraries: LibraryFacts | None = None
    """What transformers, vLLM and SGLang state about themselves, read from their files."""
    env: dict[str, str] = field(default_factory=dict)
    """Environment variables relevant to the deployment; secret values redacted."""
    gpu: GpuFacts | None = None
    """NVIDIA driver, GPUs and CUDA toolkit facts."""
    host: HostFacts | None = None
    """Container, memory and disk facts of the host."""
    config: ConfigFacts | None = None
    """The deployment config, parsed with positions."""
    model: ModelFacts | None = None
    """The model folder, from file headers only."""
    abi: AbiFacts | None = None
    """Compiled extensions linking against torch, read from their ELF dynamic sections (host side)."""
    engines: dict[str, EngineFlags] = field(default_factory=dict)
    """The argument definitions of the serving engine the launch command starts, read (host side) from the
    engine installed in the target; a release's unchanged files keep only the name of its table."""
    schema: str = SCHEMA
    """Version of this format."""
    tool_version: str = ""
    """autoglm-doctor version that made it."""
    created: str = ""
    """ISO-8601 time it was made."""

    def effective(self) -> dict[str, Distribution]:
        """The distribution import machinery would pick for each name (first on the path)."""
        chosen: dict[str, Distribution] = {}
        for dist in sorted(self.distributions, key=lambda d: d.path_index):
            chosen.setdefault(dist.key, dist)
        return chosen

    def to_json(self) -> str:
        """Serialise to indented JSON, secrets redacted (every snapshot writer goes through here)."""
        from autoglm_doctor.redact import redact_snapshot_data

        return json.dumps(redact_snapshot_data(to_data(self)), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Any) -> Snapshot:
        """Build from parsed JSON; raises ValueError with the bad path when malformed."""
        if not isinstance(data, dict):
            raise SnapshotError("a snapshot is a JSON object")
        schema = data.get("schema")
        if schema != SCHEMA:
            raise SnapshotError(f"unsupported snapshot schema {schema!r} (expected {SCHEMA!r})")
        try:
            return from_data(cls, data)
        except SerdeError as exc:
            raise SnapshotError(str(exc)) from exc

    @classmethod
    def load(cls, path: Path) -> Snapshot:
        """Read a snapshot file; a report produced with ``--format json`` is refused clearly."""
        from autoglm_doctor.safeio import loads_json, read_text

        try:
            text = read_text(path, "snapshot")
        except OSError as exc:
            raise SnapshotError(f"cannot read {path}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise SnapshotError(f"{path} is not UTF-8 (byte {exc.start})") from exc
        try:
            data = loads_json(text)
        except json.JSONDecodeError as exc:
            raise SnapshotError(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from exc
        except ValueError as exc:
            raise SnapshotError(f"{path}: cannot be read: {exc}") from exc
        if isinstance(data, dict) and str(data.get("schema", "")).startswith("autoglm-doctor/report"):
            raise SnapshotError(f"{path} is a report, not a snapshot (make one with `autoglm-doctor snapshot -o FILE`)")
        return cls.from_dict(data)


class SnapshotError(ValueError):
    """A snapshot file is unreadable or malformed."""
