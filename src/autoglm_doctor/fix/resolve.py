"""Exact versions for the plan's constraints, chosen by a real resolver for the target interpreter.

The plan states what must hold (the checks' findings, the driver-aware torch build, the pack's
ranges); a resolver then picks one version of every distribution, for the target's Python and
platform, with the sha256 of the file it would install:

- ``uv pip compile --python TARGET --format pylock.toml`` when ``uv`` is on PATH (and the doctor runs
  on Python 3.11+, whose ``tomllib`` reads uv's answer);
- otherwise pip's resolver run for the target: ``TARGET -m pip install --dry-run --ignore-installed
  --report``, whose report names every file with its URL and hash (for ``--find-links`` wheels too).

Index options pass through; without any, pip reads the target environment's own configuration
(``pip.conf``, ``PIP_*``), and uv is given the same index settings read with ``pip config list``.
When no index answers, :func:`resolve` returns :class:`NotLocked` and the file keeps the plan's
ranges; nothing here raises for a resolver's failure.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from autoglm_doctor.probe.snapshot import canonical_name
from autoglm_doctor.safeio import loads_json, read_text

from .verify import VerifyUnavailable, _conflict, _run, pip_command, shown_command

RESOLVE_TIMEOUT_S = 600.0
"""Seconds a resolver may take: a cold pip may download large wheels (torch) to read their metadata."""

PYPI_SIMPLE = "https://pypi.org/simple"
NOTHING_TO_LOOK_IN = "no index to look in (--no-index without --find-links)"
_PYPI_FILES = "files.pythonhosted.org"


@dataclass(frozen=True, slots=True)
class IndexOptions:
    """Where the resolver looks: ``--index-url``, ``--extra-index-url``, ``--find-links``, ``--no-index``."""

    index_url: str | None = None
    """Replaces the default index (PyPI or the target's pip configuration)."""
    extra_index_urls: tuple[str, ...] = ()
    """More indexes, searched beside the main one."""
    find_links: tuple[str, ...] = ()
    """Folders or pages of archives."""
    no_index: bool = False
    """Only ``find_links``: no index at all."""

    def given(self) -> bool:
        """Any option was given (else the target's own pip configuration applies)."""
        return bool(self.index_url or self.extra_index_urls or self.find_links or self.no_index)

    def args(self) -> list[str]:
        """The options as pip (and uv) spell them."""
        out: list[str] = []
        if self.no_index:
            out.append("--no-index")
        if self.index_url:
            out += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            out += ["--extra-index-url", url]
        for link in self.find_links:
            out += ["--find-links", link]
        return out

    def indexes(self, torch_index: str = "") -> list[str]:
        """Every index the resolver searches (PyPI unless ``--index-url`` replaces it), torch's last."""
        return [self.index_url or PYPI_SIMPLE, *self.extra_index_urls, *([torch_index] if torch_index else [])]

    def nothing_reachable(self) -> bool:
        """``--no-index`` without ``--find-links``: there is nowhere to look."""
        return self.no_index and not self.find_links


@dataclass(frozen=True, slots=True)
class LockedFile:
    """One archive of a locked version."""

    url: str
    """Where the file lives (``https://files.pythonhosted.org/...``, ``file:///wheelhouse/...``)."""
    sha256: str = ""
    """The file's sha256; empty when the resolver could not say."""

    @property
    def filename(self) -> str:
        """The file's name, from its URL."""
        return unquote(urlsplit(self.url).path.rsplit("/", 1)[-1])

    @property
    def is_wheel(self) -> bool:
        """A wheel (else a source distribution)."""
        return self.filename.endswith(".whl")


@dataclass(frozen=True, slots=True)
class LockedPackage:
    """One distribution the resolver chose, and the files that install it."""

    name: str
    """Distribution name, as its metadata writes it."""
    version: str
    """The exact version (with a local tag such as ``+cpu`` when the build has one)."""
    files: tuple[LockedFile, ...] = ()
    """pip: the one file it picked for the target; uv: every file of that version it knows."""
    index: str = ""
    """The index that serves it; empty for ``--find-links`` files."""

    @property
    def hashes(self) -> tuple[str, ...]:
        """The sha256 of every file, in order, without repeats."""
        return tuple(dict.fromkeys(f.sha256 for f in self.files if f.sha256))


@dataclass(frozen=True, slots=True)
class Lock:
    """Every distribution to install, one exact version each."""

    resolver: str
    """Which resolver chose, for the header: ``pip 26.3 (--dry-run --report)``."""
    packages: tuple[LockedPackage, ...]
    """Sorted by name."""
    command: tuple[str, ...] = ()
    """The command that resolved."""

    def get(self, name: str) -> LockedPackage | None:
        """The locked package of one distribution."""
        key = canonical_name(name)
        return next((p for p in self.packages if canonical_name(p.name) == key), None)

    @property
    def hashed(self) -> bool:
        """Every package has a hash (so ``--require-hashes`` works)."""
        return all(p.files and all(f.sha256 for f in p.files) for p in self.packages)


@dataclass(frozen=True, slots=True)
class NotLocked:
    """The resolver could not choose: the file keeps the plan's ranges."""

    reason: str
    """One sentence for a person (it goes into the file's header)."""
    conflict: bool = False
    """The resolver ran and found that the constraints do not resolve (else it could not choose: no
    index answered, no resolver could run); a conflict fails ``--fix``, the rest only make it not a lock."""
    detail: str = ""
    """The resolver's own words."""
    command: tuple[str, ...] = field(default=())
    """The command that ran, if any."""


_UNREACHABLE_HINTS = (
    "from versions: none",  # pip: no index or link offered any release
    "Could not fetch URL",
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Connection refused",
    "not found in the provided package locations",  # uv: nothing to look in
    "Failed to fetch",  # uv
    "error sending request",  # uv
)


_NOT_FOUND = "No matching distribution found for"


def _looks_unreachable(output: str, options: IndexOptions) -> bool:
    """The resolver failed because nothing answered, not because the constraints conflict."""
    return options.nothing_reachable() or any(hint in output for hint in _UNREACHABLE_HINTS)


def _index_of(url: str, indexes: Sequence[str]) -> str:
    """The index a file came from, as PEP 751's ``index`` names it; empty for local files."""
    parts = urlsplit(url)
    if parts.scheme == "file" or not parts.scheme:
        return ""
    if parts.netloc == _PYPI_FILES:
        return PYPI_SIMPLE
    for index in indexes:
        if urlsplit(index).netloc == parts.netloc:
            return index.rstrip("/")
    return ""


def _resolver_output(path: Path, what: str, parse: Callable[[str], Any], cmd: Sequence[str]) -> Any:
    """The resolver's answer file, read through the bounded reader and parsed; a NotLocked saying why not."""
    try:
        data = parse(read_text(path, "report"))
    except (OSError, ValueError, RecursionError) as exc:
        return NotLocked(f"{what} is unreadable: {exc}", command=shown_command(cmd))
    if not isinstance(data, dict):
        return NotLocked(f"{what} is not in the resolver's format (not a mapping)", command=shown_command(cmd))
    return data


ARCHIVE_SIZE_LIMIT = 8 << 30
"""The largest local archive hashed (8 GiB): the biggest torch wheels are about 2.5 GB."""


def local_roots(options: IndexOptions) -> tuple[Path, ...]:
    """The wheelhouses the user named (``--find-links`` folders or ``file://`` URLs): the only local files hashed."""
    roots = []
    for link in options.find_links:
        parts = urlsplit(link)
        if parts.scheme not in ("", "file"):
            continue
        path = Path(unquote(parts.path) if parts.scheme == "file" else link).expanduser()
        try:
            roots.append(Path(os.path.realpath(path if path.is_dir() else path.parent)))
        except (OSError, ValueError):
            continue
    return tuple(roots)


def _file_sha256(url: str, roots: Sequence[Path]) -> str:
    """The sha256 of a ``file://`` archive a resolver gave no hash for; empty when it is not one to read.

    The resolver's answer is input like any other: only a regular file (opened without blocking:
    a FIFO is never waited on, ``/dev/zero`` never read) inside a wheelhouse the user named
    (``roots``: links resolved) and at most :data:`ARCHIVE_SIZE_LIMIT` bytes is hashed.
    """
    import stat

    parts = urlsplit(url)
    if parts.scheme != "file" or not roots:
        return ""
    try:
        path = Path(os.path.realpath(unquote(parts.path)))
    except (OSError, ValueError):
        return ""
    if not any(root == path.parent or root in path.parents for root in roots):
        return ""
    digest = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (OSError, ValueError):
        return ""
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > ARCHIVE_SIZE_LIMIT:
            return ""
        left = info.st_size
        try:
            while left > 0 and (chunk := handle.read(min(1 << 20, left))):
                digest.update(chunk)
                left -= len(chunk)
        except OSError:
            return ""
    return digest.hexdigest()


def _mapping(value: Any) -> dict[str, Any]:
    """A mapping from a resolver's answer; anything else reads as empty (its shape is not trusted)."""
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[dict[str, Any]]:
    """The mappings of a list from a resolver's answer; other entries are skipped."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _text(value: Any) -> str:
    """A string from a resolver's answer ("" for any other type: a number or list is not a name or URL)."""
    return value if isinstance(value, str) else ""


def find_uv(env: Mapping[str, str] | None = None) -> str | None:
    """``uv`` on PATH (of ``env`` when given), usable when this interpreter can read its TOML answer."""
    if sys.version_info < (3, 11):
        return None
    path = (env if env is not None else os.environ).get("PATH")
    return shutil.which("uv", path=path)


def pip_config_indexes(pip: Sequence[str], env: Mapping[str, str] | None, timeout: float = 30.0) -> IndexOptions:
    """The index settings of the target's pip configuration (``pip config list``), for uv."""
    try:
        done = _run([*pip, "config", "list"], timeout, env, redact=False)  # its index URLs are passed on to uv
    except (OSError, subprocess.TimeoutExpired):
        return IndexOptions()
    if done.returncode != 0:
        return IndexOptions()
    values: dict[str, str] = {}
    for line in done.stdout.splitlines():
        key, eq, value = line.partition("=")
        if not eq:
            continue
        values[key.rpartition(".")[2].strip()] = value.strip().strip("'\"")
    no_index = values.get("no-index", "").lower() in ("1", "true", "yes", "on")
    return IndexOptions(
        index_url=values.get("index-url") or None,
        extra_index_urls=tuple(values.get("extra-index-url", "").split()),
        find_links=tuple(values.get("find-links", "").split()),
        no_index=no_index,
    )


def _requirements_file(folder: Path, requirements: Sequence[str], torch_index: str, options: IndexOptions) -> Path:
    lines = list(requirements)
    if torch_index and not options.no_index:
        lines.insert(0, f"--extra-index-url {torch_index}")
    path = folder / "constraints-stated.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def resolve(
    requirements: Sequence[str],
    python: str,
    options: IndexOptions,
    *,
    torch_index: str = "",
    timeout: float = RESOLVE_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
) -> Lock | NotLocked:
    """Exact versions and hashes for ``requirements`` on the target ``python``; :class:`NotLocked` when none."""
    if options.nothing_reachable():
        return NotLocked(NOTHING_TO_LOOK_IN)
    uv = find_uv(env)
    pip: list[str] = []
    pip_problem = ""
    if uv is None or not options.given():  # uv with index options needs no pip at all
        try:
            pip, _note = pip_command(python, env)
        except VerifyUnavailable as exc:
            pip_problem = str(exc)
    try:
        scratch = tempfile.TemporaryDirectory(prefix="autoglm-doctor-lock-")
    except OSError as exc:  # a read-only container: no writable TMPDIR
        return NotLocked(f"no writable temporary folder ({exc.strerror or exc}); set TMPDIR")
    with scratch as tmp:
        folder = Path(tmp)
        if uv is not None:
            effective = options if options.given() or not pip else pip_config_indexes(pip, env)
            if effective.nothing_reachable():
                return NotLocked(f"{NOTHING_TO_LOOK_IN}, from the target's pip configuration")
            stated = _requirements_file(folder, requirements, torch_index, effective)
            return _resolve_uv(uv, stated, python, effective, torch_index, folder, timeout, env)
        if not pip:
            return NotLocked(f"no resolver: {pip_problem}")
        stated = _requirements_file(folder, requirements, torch_index, options)
        return _resolve_pip(pip, stated, options, torch_index, folder, timeout, env)


def _run_resolver(
    tool: str, cmd: Sequence[str], options: IndexOptions, timeout: float, env: Mapping[str, str] | None
) -> NotLocked | None:
    """Run a resolver; None when it succeeded, else why not (its output is the detail)."""
    try:
        done = _run(cmd, timeout, env, merge=True)  # procs: its group is killed at the deadline
    except subprocess.TimeoutExpired:
        return NotLocked(f"{tool} did not finish within {timeout:.0f} s (stopped)", command=shown_command(cmd))
    except OSError as exc:
        return NotLocked(f"cannot run {tool}: {exc.strerror or exc}", command=shown_command(cmd))
    if done.returncode == 0:
        return None
    unreachable = _looks_unreachable(done.stdout, options)
    output = done.stdout  # redacted where it entered (verify._run): an index URL's password, a token
    if unreachable:
        said = next((line.strip() for line in output.splitlines() if _NOT_FOUND in line), "")
        why = f"{tool} found no index or file to resolve from" + (f" ({said[:200]})" if said else "")
    else:
        why = f"{tool} cannot resolve the constraints"
    return NotLocked(why, conflict=not unreachable, detail=_conflict(output), command=shown_command(cmd))


def _resolve_pip(
    pip: Sequence[str],
    stated: Path,
    options: IndexOptions,
    torch_index: str,
    folder: Path,
    timeout: float,
    env: Mapping[str, str] | None,
) -> Lock | NotLocked:
    report_path = folder / "report.json"
    cmd = [*pip, "install", "--dry-run", "--ignore-installed", "--report", str(report_path), *options.args()]
    cmd += ["-r", str(stated)]
    failed = _run_resolver("pip", cmd, options, timeout, env)
    if failed is not None:
        return failed
    report = _resolver_output(report_path, "pip's report", loads_json, cmd)
    if isinstance(report, NotLocked):
        return report
    indexes = options.indexes(torch_index)
    roots = local_roots(options)
    packages = []
    for item in _items(report.get("install")):
        meta = _mapping(item.get("metadata"))
        info = _mapping(item.get("download_info"))
        url = _text(info.get("url"))
        sha = _text(_mapping(_mapping(info.get("archive_info")).get("hashes")).get("sha256"))
        packages.append(
            LockedPackage(
                name=_text(meta.get("name")),
                version=_text(meta.get("version")),
                files=(LockedFile(url, sha or _file_sha256(url, roots)),) if url else (),
                index=_index_of(url, indexes),
            )
        )
    version = _text(report.get("pip_version")).strip()
    return Lock(
        resolver=f"pip {version} (install --dry-run --report)" if version else "pip (install --dry-run --report)",
        packages=tuple(sorted((p for p in packages if p.name), key=lambda p: canonical_name(p.name))),
        command=shown_command(cmd),
    )


def _resolve_uv(
    uv: str,
    stated: Path,
    python: str,
    options: IndexOptions,
    torch_index: str,
    folder: Path,
    timeout: float,
    env: Mapping[str, str] | None,
) -> Lock | NotLocked:
    # Python 3.11+ (find_uv() offers uv only there); imported by name as mypy checks for 3.10.
    tomllib = importlib.import_module("tomllib")

    out = folder / "pylock.toml"
    cmd = [uv, "pip", "compile", "--python", python, "--format", "pylock.toml", "--quiet", "--no-header"]
    # pip's semantics: every index offers every package, the best version wins. uv's default takes a
    # package only from the first index that has it, and PyTorch's index mirrors (older) numpy,
    # filelock, jinja2...: the lock would then differ from what pip installs from the same file.
    cmd += ["--index-strategy", "unsafe-best-match"]
    cmd += [*options.args(), "-o", str(out), str(stated)]
    failed = _run_resolver("uv", cmd, options, timeout, env)
    if failed is not None:
        return failed
    data = _resolver_output(out, "uv's pylock.toml", tomllib.loads, cmd)
    if isinstance(data, NotLocked):
        return data
    indexes = options.indexes(torch_index)
    roots = local_roots(options)
    packages = []
    for item in _items(data.get("packages")):
        entries = [*_items(item.get("wheels")), *_items([item.get("sdist")])]
        files = []
        for entry in entries:
            url = _text(entry.get("url"))
            sha = _text(_mapping(entry.get("hashes")).get("sha256"))
            if url:
                files.append(LockedFile(url, sha or _file_sha256(url, roots)))
        first = files[0].url if files else ""
        packages.append(
            LockedPackage(
                name=_text(item.get("name")),
                version=_text(item.get("version")),
                files=tuple(files),
                index=_text(item.get("index")) or _index_of(first, indexes),
            )
        )
    try:
        version = " ".join(_run([uv, "--version"], 30.0, env).stdout.split()[:2])
    except (OSError, subprocess.TimeoutExpired):
        version = "uv"
    return Lock(
        resolver=f"{version} (pip compile)",
        packages=tuple(sorted((p for p in packages if p.name), key=lambda p: canonical_name(p.name))),
        command=shown_command(cmd),
    )
