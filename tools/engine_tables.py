"""Generate the serving engines' flag tables from their released files, with the parsers the doctor uses.

Without vLLM or SGLang installed (a client machine, a CI lint, pre-commit) the doctor reads a launch
command against the table of the engine version it names. Each table is what the engine module reads
from an installed engine, applied to the released files of one version; nothing in it is typed by hand.

Versions: every vLLM minor line from 0.12 to the newest on the index, its newest patch (vLLM changes
flags between minors, patches fix bugs); every SGLang patch line from 0.5.6 on, its newest
post-release (SGLang adds and renames flags in patch releases: 0.5.6 has 292 ``add_argument`` calls,
0.5.13 406, and 0.5.14 / 0.5.20 moved the definitions twice).

Three steps; only the first touches the network (PyPI, through pip itself):

    python tools/engine_tables.py download DIR        # sdists (vLLM; its wheel where none) / wheels (SGLang)
    python tools/engine_tables.py collect DIR         # DIR/<engine>-<version>/ -> knowledge_sources/<engine>.tar.xz
    python tools/engine_tables.py generate [--check]  # sources -> src/autoglm_doctor/knowledge/engines/*.json

``download`` leaves, per version, a folder ``DIR/<engine>-<version>/`` holding the release's files
(pip's unpacked sdist, or the members of the wheel that ``collect`` keeps) and its metadata file
(``PKG-INFO`` / ``METADATA``); the wheel itself is deleted. ``collect`` keeps,
verbatim, only the files the engine module reads (``flag_files``: the argument definitions;
``registry_files``: vLLM's ``vllm/model_executor/models/registry.py``, SGLang's every
``sglang/srt/models/*.py``, whose ``EntryClass`` lines name what it serves) plus the metadata, in one
deterministic archive per engine (ordered by path then version, mtime 0). ``generate`` parses them
(each table carries the release's ``architectures`` where its registry was kept); ``--check`` only
compares, and the test suite runs it (tests/test_engines_tables.py).

What the registry costs, measured (xz preset 9 extreme, members ordered by path then version so a file's
releases sit side by side): vllm.tar.xz 267,776 -> 286,548 bytes with 23 registry.py files (46-71 KB
each, 1.3 MB raw); sglang.tar.xz 176,816 -> 530,696 bytes with 748 model files of 5 releases
(15.4 MB raw). The registries are kept for every vLLM release and for SGLang 0.5.6.post2 to 0.5.10.post1:
the package index here no longer serves the files of SGLang 0.5.11 to 0.5.23 (``download`` reports
"no release files"), so their argument files stay as collected before and their tables carry no
architecture list. ``collect`` keeps the archive's members of a release ``download`` could not fetch.
"""

from __future__ import annotations

import argparse
import io
import json
import lzma
import os
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "tools" / "knowledge_sources"
TABLES = REPO / "src" / "autoglm_doctor" / "knowledge" / "engines"
sys.path.insert(0, str(REPO / "src"))

from packaging.version import Version  # noqa: E402

from autoglm_doctor.engines import ENGINES, table_data  # noqa: E402  (the parsers the doctor runs)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from knowledge_tables import pip_versions  # noqa: E402  (the index listing both generators use)

METADATA_NAMES = ("PKG-INFO", "METADATA")


def chosen_versions(name: str, available: list[Version]) -> list[Version]:
    """The newest release of each line (the engine's ``release_line_parts``) from its ``first_release`` on."""
    engine = ENGINES[name]
    newest: dict[tuple[int, ...], Version] = {}
    for v in available:
        if v.is_prerelease or v < Version(engine.first_release):
            continue
        line = v.release[: engine.release_line_parts]
        newest[line] = max(newest.get(line, v), v)
    return sorted(newest.values())


WHEEL_FALLBACK = ("--only-binary", ":all:", "--python-version", "3.12") + tuple(
    option for glibc in (28, 31, 35) for option in ("--platform", f"manylinux_2_{glibc}_x86_64")
)
"""The Linux x86_64 wheel, for a release that has no source distribution (pip matches each ``--platform``
exactly, so each glibc tag the engines build for is named)."""


def _pip_download(name: str, version: Version, options: tuple[str, ...], work: Path) -> None:
    """``pip download --no-deps`` of one release into ``work`` (its temporary files there too)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(work), *options, f"{name}=={version}"],
        check=False,
        timeout=900,
        env={**os.environ, "TMPDIR": str(work)},
    )


def kept_files(name: str, listing: list[str]) -> list[str]:
    """The files of a release the engine module reads: its flag files and its model registry."""
    engine = ENGINES[name]
    return sorted({*engine.flag_files(listing), *engine.registry_files(listing)})


def from_wheel(wheel: Path, dest: Path, name: str) -> list[str]:
    """Copy out of ``wheel`` only what ``collect`` keeps: the engine's flag files and the wheel's METADATA.

    Members are read one by one with zipfile; nothing else is unpacked (vLLM 0.15.1's wheel is 509 MB,
    the 27 members read from it 0.5 MB). Returns the members copied.
    """
    with zipfile.ZipFile(wheel) as archive:
        listing = archive.namelist()
        metadata = [m for m in listing if m.endswith(".dist-info/METADATA") and m.count("/") == 1]
        copied = [*kept_files(name, listing), *metadata[:1]]
        for member in copied:
            target = dest / ("METADATA" if member in metadata else member)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(member))
    return copied


def download(folder: Path) -> None:
    """Fetch the released files (network: PyPI through pip) into ``folder/<engine>-<version>/``.

    vLLM: the source distribution (its wheels are ~500 MB); pip cannot build its metadata without
    CUDA, so ``--no-clean`` keeps the unpacked tree it downloaded. A release with no source
    distribution (vLLM 0.15.x was published as wheels only) falls back to its Linux wheel, read
    with :func:`from_wheel`. SGLang: the wheel. Only the files ``collect`` keeps are written.
    """
    import shutil

    for name in ENGINES:
        for version in chosen_versions(name, [Version(v) for v in pip_versions(name)]):
            dest = folder / f"{name}-{version}"
            if dest.exists():
                continue
            work = folder / "work"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            _pip_download(name, version, ENGINES[name].pip_download, work)
            trees = sorted(work.glob(f"pip-download-*/{name}_*")) + sorted(work.glob(f"pip-download-*/{name}-*"))
            if not trees and not list(work.glob(f"{name}-*.whl")):
                _pip_download(name, version, WHEEL_FALLBACK, work)
            wheels = sorted(work.glob(f"{name}-*.whl"))
            if trees:
                shutil.copytree(trees[0], dest)
            elif wheels:
                from_wheel(wheels[0], dest, name)
            else:
                print(f"{name} {version}: no release files of the kind wanted on the index", file=sys.stderr)
            shutil.rmtree(work, ignore_errors=True)


def collect(folder: Path) -> None:
    """Keep, verbatim, the files the engine modules read, one archive per engine.

    A release with no folder under ``folder`` (the index no longer serves its files) keeps the members
    the archive already holds. Members are ordered by path, then version: a file that changes little
    between releases sits beside its other versions, inside xz's 64 MiB dictionary (preset 9 extreme),
    and costs a few hundred bytes per release instead of its full compressed size.
    """
    for name in ENGINES:
        members: dict[tuple[str, str], bytes] = {}
        archive = SOURCES / f"{name}.tar.xz"
        fresh = {p.name.split("-", 1)[1] for p in folder.glob(f"{name}-*") if p.is_dir()}
        if archive.exists():
            with tarfile.open(archive, mode="r:xz") as tar:
                for member in tar.getmembers():
                    release, _, path = member.name.partition("/")
                    handle = tar.extractfile(member)
                    if handle is not None and release.partition("-")[2] not in fresh:
                        members[(release.partition("-")[2], path)] = handle.read()
        for version in fresh:
            release = folder / f"{name}-{version}"
            listing = [str(p.relative_to(release)) for p in release.rglob("*") if p.is_file()]
            wanted = [*kept_files(name, listing), *(m for m in METADATA_NAMES if m in listing)]
            members.update({(version, path): (release / path).read_bytes() for path in set(wanted)})
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:xz", preset=9 | lzma.PRESET_EXTREME) as tar:
            for version, path in sorted(members, key=lambda key: (key[1], Version(key[0]))):
                data = members[(version, path)]
                info = tarfile.TarInfo(f"{name}-{version}/{path}")
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))
        archive.write_bytes(buffer.getvalue())


def read_sources(name: str) -> dict[str, dict[str, str]]:
    """Version -> relative path -> text, from ``tools/knowledge_sources/<engine>.tar.xz``."""
    out: dict[str, dict[str, str]] = {}
    with tarfile.open(SOURCES / f"{name}.tar.xz", mode="r:xz") as tar:
        for member in tar.getmembers():
            release, _, path = member.name.partition("/")
            handle = tar.extractfile(member)
            if handle is not None:
                out.setdefault(release.partition("-")[2], {})[path] = handle.read().decode("utf-8", "replace")
    return out


def requires_of(files: dict[str, str]) -> list[str]:
    """The release's Requires-Dist lines, from its own metadata file."""
    for name in METADATA_NAMES:
        if name in files:
            return [str(v) for v in Parser().parsestr(files[name]).get_all("Requires-Dist") or []]
    return []


def requires_python_of(files: dict[str, str]) -> str:
    """The release's Requires-Python."""
    for name in METADATA_NAMES:
        if name in files:
            return str(Parser().parsestr(files[name]).get("Requires-Python") or "")
    return ""


def tables() -> dict[Path, str]:
    """Every table file and its text, from the committed sources."""
    out: dict[Path, str] = {}
    for name in ENGINES:
        for version, files in sorted(read_sources(name).items(), key=lambda kv: Version(kv[0])):
            data = table_data(name, version, files, requires_of(files), requires_python_of(files))
            data["sources"] = [
                f"{name} {version} released files on PyPI, kept verbatim in tools/knowledge_sources/{name}.tar.xz"
            ]
            line = ENGINES[name].table_line(version)
            out[TABLES / f"{name}-{line}.json"] = json.dumps(data, indent=0, sort_keys=True) + "\n"
    return out


def generate(check: bool) -> int:
    """Write the tables (``check``: only compare, 1 when they differ)."""
    wanted = tables()
    present = set(TABLES.glob("*.json")) if TABLES.exists() else set()
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    extra = sorted(present - set(wanted))
    if check:
        for path in [*stale, *extra]:
            print(f"out of date: {path.relative_to(REPO)}", file=sys.stderr)
        return 1 if stale or extra else 0
    TABLES.mkdir(parents=True, exist_ok=True)
    for path in stale:
        path.write_text(wanted[path], encoding="utf-8")
    for path in extra:
        path.unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    sub.add_parser("download").add_argument("folder", type=Path)
    sub.add_parser("collect").add_argument("folder", type=Path)
    gen = sub.add_parser("generate")
    gen.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    if args.step == "download":
        download(args.folder)
        return 0
    if args.step == "collect":
        collect(args.folder)
        return 0
    return generate(args.check)


if __name__ == "__main__":
    sys.exit(main())
