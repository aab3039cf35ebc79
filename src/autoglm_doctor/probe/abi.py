"""Compiled extensions against the installed torch, from their ELF dynamic sections (host side).

The probe finds the target's site-packages and its torch; this gatherer then reads, from the
doctor's side, every compiled extension there that links against torch's libraries (or the CUDA
libraries torch ships) and answers the dynamic linker's two questions without loading anything:

1. does each ``DT_NEEDED`` library resolve? In the loader's order: ``DT_RPATH`` (when there is no
   ``DT_RUNPATH``), ``LD_LIBRARY_PATH``, ``DT_RUNPATH`` (``$ORIGIN`` expanded), then what ``import
   torch`` has already loaded by soname (``torch/lib`` and the ``nvidia-*`` wheels' ``lib``
   folders, which torch loads), then the system's folders (``/etc/ld.so.conf`` and the defaults);
2. is every torch symbol it needs exported by torch's libraries (looked up in their GNU hash
   tables, else their classic ``DT_HASH``, at the symbol version it names)?

The probe lists the shared objects (``probe/_script.py``, ``scan_folder``): it walks the target's
site-packages and the source tree of each editable install (``pip install -e`` builds extensions in
place) in its own process, reads each file's ``DT_NEEDED`` names with ``struct`` and sends back only
those that need a library ``sonames.LINKS`` matches, or that it could not pre-read. The walk is bounded
there (its ``SCAN_*`` constants); this module reads those files in full.

Missing symbols are demangled with ``c++filt`` (binutils; one call for the whole run, with a
timeout); where it is absent they stay mangled and the finding says so. Nothing is cached
outside the run; a file that cannot be read is recorded with the reason, never raised.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from autoglm_doctor.probe import sonames

if TYPE_CHECKING:
    from autoglm_doctor.probe.elf import SharedObject, Undefined

# probe.elf (and pyelftools with it) is imported only once a file that links torch is read: the
# snapshot's types live here, and reading a snapshot needs neither.

TORCH_LIBRARY = re.compile(sonames.TORCH_LIBRARY)
"""Libraries torch ships in ``torch/lib`` (``libc10.so``, ``libtorch_cuda.so``, ``libtorch_python.so``)."""
CUDA_LIBRARY = re.compile(sonames.CUDA_LIBRARY)
"""The CUDA runtime libraries torch's CUDA builds load from the ``nvidia-*`` wheels."""
TORCH_SYMBOL = re.compile(r"^_Z(?:T[ISV]|GV)?N?[rVKRO]*(?:3c10|2at|5torch|6caffe2)")
"""A mangled name in torch's namespaces (c10::, at::, torch::, caffe2::): only torch can provide it."""
CXX11_STRING = "NSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE"
"""``std::__cxx11::basic_string<char>`` mangled (``_GLIBCXX_USE_CXX11_ABI=1``)."""
OLD_STRING = "Ss"
"""``std::string`` mangled under the old C++ ABI (``_GLIBCXX_USE_CXX11_ABI=0``)."""

MAX_FILE_BYTES = 4 << 30
"""Largest shared object mapped (libtorch_cuda.so is about 1.5 GB); a larger one is a finding."""
SCAN_DEADLINE_S = 20.0
"""Reading the extensions that link torch stops (and says so) after this long: a hung mount must not hang the run."""
SYMBOLS_KEPT = 5
"""Missing symbols named per extension (the count is exact)."""
DEMANGLE_TIMEOUT_S = 5.0
_SYSTEM_DIRS = ("/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib")


@dataclass(frozen=True, slots=True)
class MissingSymbol:
    """A symbol an extension needs that torch's libraries do not export."""

    name: str
    """Mangled, as in the extension."""
    demangled: str = ""
    """``c++filt``'s reading; empty when it was not available."""
    other_abi: bool = False
    """Torch exports the same symbol spelled for the other C++ ABI (``_GLIBCXX_USE_CXX11_ABI``)."""
    version: str = ""
    """The symbol version it needs, when it names one."""

    @property
    def shown(self) -> str:
        """How a finding names it: demangled when it could be, with the version it needs."""
        return (self.demangled or self.name) + (f" (version {self.version})" if self.version else "")


@dataclass(frozen=True, slots=True)
class ExtensionFacts:
    """One compiled extension that links against torch (or the CUDA libraries torch ships)."""

    path: str
    """The ``.so`` file."""
    distribution: str = ""
    """The installed distribution that owns it (by its folder), when known."""
    version: str = ""
    """That distribution's version."""
    needed: list[str] = field(default_factory=list)
    """Its ``DT_NEEDED`` libraries, in order."""
    missing_libraries: list[str] = field(default_factory=list)
    """Needed libraries the loader would not find."""
    torch_libraries: list[str] = field(default_factory=list)
    """The torch libraries it resolves against (the files the symbols were looked up in)."""
    missing_symbols: list[MissingSymbol] = field(default_factory=list)
    """The first torch symbols it needs that are not exported (at most a few)."""
    missing_count: int = 0
    """How many torch symbols are missing in all."""
    checked_symbols: int = 0
    """How many torch symbols were looked up."""
    cxx11_abi: bool | None = None
    """Built with ``_GLIBCXX_USE_CXX11_ABI=1`` (True), ``=0`` (False), unknown (None); from its symbols."""
    problem: str = ""
    """Why it could not be read (corrupt, truncated, over the size limit)."""

    @property
    def broken(self) -> bool:
        """It will not load with the installed torch (or could not be read)."""
        return bool(self.missing_libraries or self.missing_count or self.problem)


@dataclass(frozen=True, slots=True)
class AbiFacts:
    """The compiled extensions of the target that link against torch, each proven or not."""

    torch_lib: str = ""
    """The installed torch's ``lib`` folder ("" when torch is not installed)."""
    torch_cuda: bool = False
    """That torch ships its CUDA libraries (``libc10_cuda.so``)."""
    search_path: list[str] = field(default_factory=list)
    """Folders searched after the extension's own ``RUNPATH``: ``LD_LIBRARY_PATH``, torch's, system."""
    extensions: list[ExtensionFacts] = field(default_factory=list)
    """Every extension that links against torch or its CUDA libraries."""
    scanned: int = 0
    """Shared objects looked at."""
    demangler: str = ""
    """The ``c++filt`` used, empty when none was found."""
    problems: list[str] = field(default_factory=list)
    """Why the scan was incomplete (too many files, the deadline)."""


def short_path(path: str) -> str:
    """An extension's path inside its site-packages (``torchvision/_C.so``); the full path elsewhere."""
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in path:
            return path.rsplit(marker, 1)[1]
    return path


def proof(ext: ExtensionFacts) -> str:
    """The ELF evidence for a broken extension, in one line (shared by every finding that cites it)."""
    parts = []
    path = short_path(ext.path)
    if ext.problem:
        parts.append(f"{path}: {ext.problem}")
    if ext.missing_libraries:
        parts.append(f"{path} needs {', '.join(ext.missing_libraries)} (DT_NEEDED): not found by the loader")
    if ext.missing_symbols:
        shown = "; ".join(s.shown for s in ext.missing_symbols)
        more = (
            f" and {ext.missing_count - len(ext.missing_symbols)} more"
            if ext.missing_count > len(ext.missing_symbols)
            else ""
        )
        libs = ", ".join(os.path.basename(p) for p in ext.torch_libraries)
        parts.append(f"{path} needs {shown}{more}: not exported by {libs}")
    return "; ".join(parts)


# --- gathering ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Installed:
    """What the scan needs to know of one installed distribution (from the probe's answer)."""

    name: str
    version: str
    location: str
    top_level: list[str] = field(default_factory=list)
    path_index: int = 0


@dataclass(frozen=True, slots=True)
class Listed:
    """A shared object the probe found needing torch's or CUDA's libraries (``sonames.LINKS``) or could not pre-read."""

    path: str
    needed: list[str] | None = None
    """Its ``DT_NEEDED`` names, None when the probe could not read them (the full read says why)."""


@dataclass(frozen=True, slots=True)
class Listing:
    """What the probe found under one folder (a site-packages or an editable install's source tree)."""

    location: str
    shared_objects: list[Listed] = field(default_factory=list)
    scanned: int = 0
    """Shared objects the probe pre-read there."""
    problems: list[str] = field(default_factory=list)
    """Why the walk stopped early (too many entries or files, its deadline)."""


def gather(
    platform: str,
    torch_version_py: str,
    installed: list[Installed],
    ld_library_path: str,
    listings: list[Listing] | None,
) -> AbiFacts | None:
    """Read every extension linking torch that the probe listed (None without torch or off Linux).

    ``torch_version_py`` is the installed torch's ``version.py`` (its folder is torch's package);
    ``ld_library_path`` is ``LD_LIBRARY_PATH`` as the target runs with it; ``listings`` is the probe's
    ``shared_objects`` answer (None: it did not list them).
    """
    if (platform and platform != "linux") or not torch_version_py:
        return None
    torch_pkg = Path(torch_version_py).parent
    scan = _Scan(installed, torch_pkg / "lib", ld_library_path)
    if listings is None:
        scan.problems.append("the probe did not list the target's shared objects")
    else:
        scan.run(listings)
    return scan.facts()


class _Scan:
    def __init__(self, installed: list[Installed], torch_lib: Path, ld_library_path: str) -> None:
        self.installed = installed
        self.torch_lib = str(torch_lib)
        self.deadline = time.monotonic() + SCAN_DEADLINE_S
        self.problems: list[str] = []
        self.scanned = 0
        self.locations = sorted({d.location for d in installed if d.location and os.path.isdir(d.location)})
        self.ld_library_path = [p for p in ld_library_path.split(":") if p]
        self.preloaded = self._preloaded()
        self.system = _system_dirs()
        self.providers: dict[str, SharedObject | None] = {}
        self.results: list[ExtensionFacts] = []

    def _preloaded(self) -> list[str]:
        """Folders whose libraries ``import torch`` has loaded already (matched by soname afterwards)."""
        folders = [self.torch_lib]
        for location in self.locations:
            nvidia = Path(location, "nvidia")
            if nvidia.is_dir():
                folders += sorted(str(p) for p in nvidia.glob("*/lib") if p.is_dir())
        return folders

    def facts(self) -> AbiFacts:
        import shutil

        demangler = shutil.which("c++filt") or ""
        names = sorted({s.name for e in self.results for s in e.missing_symbols})
        readable = _demangle(demangler, names) if demangler and names else {}
        extensions = [
            _with_demangled(ext, readable) if ext.missing_symbols else ext
            for ext in sorted(self.results, key=lambda e: e.path)
        ]
        return AbiFacts(
            torch_lib=self.torch_lib,
            torch_cuda=os.path.exists(os.path.join(self.torch_lib, "libc10_cuda.so")),
            search_path=self.ld_library_path + self.preloaded + self.system,
            extensions=extensions,
            scanned=self.scanned,
            demangler=demangler,
            problems=self.problems,
        )

    def run(self, listings: list[Listing]) -> None:
        owners = _owners(self.installed)
        try:
            for listing in listings:
                self.problems += listing.problems
                self.scanned += listing.scanned
                for listed in listing.shared_objects:
                    if time.monotonic() > self.deadline:
                        self.problems.append(f"the reading stopped after {SCAN_DEADLINE_S:g} s (a slow disk?)")
                        return
                    if listed.needed is not None and not _links_torch(listed.needed):
                        continue  # the probe sends only these; a stray one is not read
                    ext = self._examine(listed.path, listing.location, owners)
                    if ext is not None:
                        self.results.append(ext)
        finally:
            for obj in self.providers.values():
                if obj is not None:
                    obj.close()

    def _examine(self, path: str, location: str, owners: dict[str, tuple[str, str]]) -> ExtensionFacts | None:
        from autoglm_doctor.probe.elf import ElfError, SharedObject

        owner = owners.get(_top_level(path, location), ("", ""))
        try:
            obj = SharedObject.open(path, MAX_FILE_BYTES)
        except (ElfError, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            if isinstance(exc, ElfError) and str(exc) == "not an ELF file":
                return None  # a linker script or another platform's file named .so: not an extension
            return ExtensionFacts(
                path=path, distribution=owner[0], version=owner[1], problem=f"cannot be read: {reason}"
            )
        with obj:
            if not _links_torch(obj.needed):
                return None
            try:
                return self._prove(obj, owner)
            except ValueError as exc:  # the reader raises only ElfError (a ValueError) on a malformed file
                return ExtensionFacts(
                    path=path,
                    distribution=owner[0],
                    version=owner[1],
                    needed=obj.needed,
                    problem=f"malformed ELF: {exc}",
                )

    def _prove(self, obj: SharedObject, owner: tuple[str, str]) -> ExtensionFacts:
        origin = os.path.dirname(obj.path)
        own = [p.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for p in (obj.runpath or obj.rpath)]
        before = own if not obj.runpath else []
        after = own if obj.runpath else []
        missing: list[str] = []
        torch_libs: dict[str, SharedObject] = {}  # by path: libc10.so is needed by nearly every one of them
        for name in obj.needed:
            if "/" in name:
                found: str | None = name if os.path.isfile(name) else None
            else:
                found = self._resolve(name, before + self.ld_library_path + after + self.preloaded + self.system)
            if found is None:
                missing.append(name)
            elif TORCH_LIBRARY.match(name):
                torch_libs.update((lib.path, lib) for lib in self._closure(found))
        undefined = obj.undefined()
        cxx11 = _abi_of(u.name for u in undefined)
        base = ExtensionFacts(
            path=obj.path,
            distribution=owner[0],
            version=owner[1],
            needed=list(obj.needed),
            missing_libraries=missing,
            torch_libraries=list(torch_libs),
            cxx11_abi=cxx11,
        )
        if any(TORCH_LIBRARY.match(m) for m in missing) or not torch_libs:
            return base  # symbols of a library that is not there cannot be checked: the library is the finding
        wanted = [u for u in undefined if not u.weak and TORCH_SYMBOL.match(u.name)]
        libs = list(torch_libs.values())
        absent = [u for u in wanted if not any(_exports(lib, u.name, u.version, u.version_file) for lib in libs)]
        absent += [u for u in _versions_not_defined(undefined, libs) if u not in absent]
        kept = [
            MissingSymbol(
                u.name, other_abi=any(lib.exports(t) for lib in libs for t in _twins(u.name)), version=u.version
            )
            for u in absent[:SYMBOLS_KEPT]
        ]
        return dataclasses.replace(base, missing_symbols=kept, missing_count=len(absent), checked_symbols=len(wanted))

    def _resolve(self, name: str, folders: list[str]) -> str | None:
        for folder in folders:
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate):
                return candidate
        return None

    def _provider(self, path: str) -> SharedObject | None:
        real = os.path.realpath(path)
        if real not in self.providers:
            from autoglm_doctor.probe.elf import ElfError, SharedObject

            try:
                self.providers[real] = SharedObject.open(real, MAX_FILE_BYTES)
            except (ElfError, OSError) as exc:
                self.problems.append(f"{path}: cannot be read ({exc})")
                self.providers[real] = None
        return self.providers[real]

    def _closure(self, path: str) -> list[SharedObject]:
        """The torch library at ``path`` and the torch libraries it needs (symbols come from the whole set)."""
        out: list[SharedObject] = []
        pending = [path]
        seen: set[str] = set()
        while pending:
            current = pending.pop(0)
            if current in seen:
                continue
            seen.add(current)
            obj = self._provider(current)
            if obj is None:
                continue
            out.append(obj)
            for name in obj.needed:
                if TORCH_LIBRARY.match(name):
                    found = self._resolve(name, [os.path.dirname(current), self.torch_lib])
                    if found is not None:
                        pending.append(found)
        return out


def _links_torch(needed: list[str]) -> bool:
    return any(TORCH_LIBRARY.match(n) or CUDA_LIBRARY.match(n) for n in needed)


def _exports(lib: SharedObject, name: str, version: str, version_file: str) -> bool:
    """A versioned need is met only by the library it names, at that version."""
    if version and version_file and version_file != _soname(lib):
        return lib.exports(name)
    return lib.exports(name, version if version_file else "")


def _soname(lib: SharedObject) -> str:
    return lib.soname or os.path.basename(lib.path)


def _versions_not_defined(undefined: list[Undefined], libs: list[SharedObject]) -> list[Undefined]:
    """References to a version a torch library does not define (the loader's "version `X' not found")."""
    by_name = {_soname(lib): lib for lib in libs}
    out = []
    for u in undefined:
        lib = by_name.get(u.version_file) if u.version and not u.weak else None
        if lib is not None and lib.defines_version(u.version) is False:
            out.append(u)
    return out


def _twins(name: str) -> list[str]:
    """The same mangled name under the other C++ ABI (the std::string spelling swapped)."""
    if CXX11_STRING in name or "B5cxx11" in name:
        return [name.replace(CXX11_STRING, OLD_STRING).replace("B5cxx11", "")]
    if OLD_STRING in name:
        return [name.replace(OLD_STRING, CXX11_STRING)]
    return []


def _abi_of(names: Iterator[str]) -> bool | None:
    """Which ``_GLIBCXX_USE_CXX11_ABI`` the object was compiled with, from the std::string it names."""
    old = False
    for name in names:
        if "__cxx11" in name or "B5cxx11" in name:
            return True
        if name.startswith(("_ZNSs", "_ZNKSs")) or (name.startswith("_Z") and re.search(r"[RP]K?Ss", name)):
            old = True
    return False if old else None


def _top_level(path: str, location: str) -> str:
    parts = os.path.relpath(path, location).split(os.sep)
    if parts[0] == "src" and len(parts) > 2:  # a source tree's src layout
        parts = parts[1:]
    return parts[0].split(".", 1)[0] if parts[0].endswith(".so") else parts[0]


def _owners(distributions: list[Installed]) -> dict[str, tuple[str, str]]:
    """Top-level name -> (distribution, version), from top_level.txt, else the distribution's name."""
    owners: dict[str, tuple[str, str]] = {}
    for dist in sorted(distributions, key=lambda d: -d.path_index):  # the first on the path wins
        for top in dist.top_level or [dist.name.replace("-", "_").lower()]:
            owners[top] = (dist.name, dist.version)
        owners.setdefault(dist.name.replace("-", "_").lower(), (dist.name, dist.version))
    return owners


def _system_dirs() -> list[str]:
    """The system's library folders: ``/etc/ld.so.conf`` (with its includes), then the defaults."""
    from glob import glob

    from autoglm_doctor.safeio import read_text

    folders: list[str] = []
    pending = ["/etc/ld.so.conf"]
    read = 0
    while pending and read < 64:
        conf = pending.pop(0)
        read += 1
        try:
            text = read_text(conf, "config", errors="replace")
        except (OSError, ValueError):
            continue
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            if line.startswith("include "):
                pattern = line.split(None, 1)[1]
                pending.extend(sorted(glob(pattern if pattern.startswith("/") else os.path.join("/etc", pattern))))
            elif line.startswith("/"):
                folders.append(line)
    return [f for f in dict.fromkeys(folders + list(_SYSTEM_DIRS)) if os.path.isdir(f)]


def _demangle(tool: str, names: list[str]) -> dict[str, str]:
    """Mangled -> readable, with one ``c++filt`` call (bounded); empty when it fails."""
    from autoglm_doctor import procs

    try:
        done = procs.run([tool], timeout=DEMANGLE_TIMEOUT_S, feed=("\n".join(names) + "\n").encode(), cap=1 << 20)
    except OSError:
        return {}
    if done.timed_out or done.returncode != 0:
        return {}
    lines = done.stdout.decode("utf-8", "replace").splitlines()
    if len(lines) != len(names):
        return {}
    return {name: line.strip() for name, line in zip(names, lines, strict=True) if line.strip() != name}


def _with_demangled(ext: ExtensionFacts, readable: dict[str, str]) -> ExtensionFacts:
    symbols = [dataclasses.replace(s, demangled=readable.get(s.name, "")) for s in ext.missing_symbols]
    return dataclasses.replace(ext, missing_symbols=symbols)
