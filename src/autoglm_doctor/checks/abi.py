"""packages.abi: every compiled extension that links against torch loads with the installed torch.

The proof is the dynamic linker's, read from the ELF files host-side (``probe/abi.py``): the
libraries an extension needs resolve, and the torch symbols it needs are exported. This module
only reads those facts and says what they mean.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Iterator

from packaging.requirements import InvalidRequirement, Requirement

from autoglm_doctor.checks._util import parse_version, pip_install
from autoglm_doctor.checks.packages import family_fix
from autoglm_doctor.context import CheckContext
from autoglm_doctor.knowledge.libraries import TORCH_FAMILY, family_pin
from autoglm_doctor.model import Finding, Location, Skip, error, info, warning
from autoglm_doctor.probe.abi import CXX11_STRING, TORCH_LIBRARY, ExtensionFacts, proof, short_path
from autoglm_doctor.probe.snapshot import Snapshot, canonical_name
from autoglm_doctor.registry import check

_BUILT_FOR = re.compile(r"torch(\d+)\.?(\d+)")
"""``flash_attn 2.8.3+cu12torch2.7cxx11abiTRUE``: the torch a wheel's local label says it was built for."""


@check(
    "packages.abi",
    needs=("python",),
    title="Compiled extensions match torch",
    why=(
        "An extension compiled against another torch (another version, another C++ ABI, a CUDA build beside a "
        "CPU torch) installs cleanly and passes pip check, then fails at import with 'undefined symbol', "
        "'cannot open shared object file' or 'operator torchvision::nms does not exist'."
    ),
    fix="Reinstall the extension built for the installed torch (or rebuild it against it), or install the torch it "
    "was built for.",
)
def packages_abi(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """Every compiled extension linking torch resolves its libraries and finds its torch symbols (ELF, not imported)."""
    facts = snap.abi
    if facts is None:
        if snap.torch is None:
            raise Skip("torch is not installed")
        if snap.python.platform and snap.python.platform != "linux":
            raise Skip(f"extensions are read as ELF files, and the target runs on {snap.python.platform}")
        raise Skip("the snapshot holds no ELF facts (made by an older doctor)")
    for problem in facts.problems:
        yield warning(
            "packages.abi-incomplete",
            f"not every compiled extension could be read: {problem}",
            observed=problem,
            expected="every extension read",
            fix="rerun where site-packages is on a local disk",
        )
    if not facts.scanned and not facts.problems:  # a pass would have tested nothing
        raise Skip("no compiled extension in site-packages: nothing to match")
    if not facts.extensions and not facts.problems:  # a pass must say what it looked at, even when it found none
        yield info(
            "packages.abi-none",
            f"no compiled extension in the target links against torch ({facts.scanned} shared objects read): "
            "nothing can mismatch it",
            observed=f"{facts.scanned} shared objects, none linking torch",
        )
    by_owner: dict[str, list[ExtensionFacts]] = defaultdict(list)
    for ext in facts.extensions:
        if ext.broken:
            by_owner[canonical_name(ext.distribution) if ext.distribution else ext.path].append(ext)
    for extensions in by_owner.values():
        yield from _findings(snap, extensions)


def _findings(snap: Snapshot, extensions: list[ExtensionFacts]) -> Iterator[Finding]:
    """One finding per distribution and kind of failure, naming its first extension and the count."""
    unreadable = [e for e in extensions if e.problem]
    libraries = [e for e in extensions if e.missing_libraries and not e.problem]
    symbols = [e for e in extensions if e.missing_count and not e.problem and not e.missing_libraries]
    for ext in unreadable:
        yield warning(
            "packages.abi-unreadable",
            f"{_who(ext)}: {short_path(ext.path)} {ext.problem}: "
            "whether it loads with the installed torch cannot be proven",
            observed=ext.problem,
            expected="a readable ELF shared object",
            fix=_fix(snap, ext),
            location=Location(ext.path),
        )
    if libraries:
        yield _missing_libraries(snap, libraries)
    if symbols:
        yield _missing_symbols(snap, symbols)


def _missing_libraries(snap: Snapshot, extensions: list[ExtensionFacts]) -> Finding:
    first = extensions[0]
    torch_version = snap.torch.version if snap.torch is not None else "?"
    names = list(dict.fromkeys(n for e in extensions for n in e.missing_libraries))
    torch_missing = [n for n in names if TORCH_LIBRARY.match(n)]
    cuda_of_torch = [n for n in torch_missing if "cuda" in n or "hip" in n]
    cpu_torch = snap.abi is not None and not snap.abi.torch_cuda and snap.torch is not None and not snap.torch.cuda
    if cuda_of_torch and cpu_torch:
        kind = "ROCm" if any("hip" in n for n in cuda_of_torch) else "CUDA"
        meaning = (
            f"it is a {kind} build beside torch {torch_version}, a CPU-only build that has no "
            f"{', '.join(cuda_of_torch)}"
        )
    elif torch_missing:
        meaning = (
            f"torch {torch_version} does not ship {', '.join(torch_missing)}: it was built for another torch build"
        )
    else:
        meaning = "they are in none of its RUNPATH, LD_LIBRARY_PATH, torch's and the system's library folders"
    symptom = (
        " (symptom: RuntimeError: operator torchvision::nms does not exist)"
        if canonical_name(first.distribution) == "torchvision"
        else f" (symptom: ImportError: {names[0]}: cannot open shared object file)"
    )
    more = f" ({len(extensions)} extensions)" if len(extensions) > 1 else ""
    return error(
        "packages.abi-missing-library",
        f"{_who(first)}: {short_path(first.path)}{more} needs {', '.join(names)}, which the loader cannot find: "
        f"{meaning}; importing it fails{symptom}{_table_note(snap, first)}",
        observed=proof(first),
        expected=f"every DT_NEEDED library found (torch {torch_version}: {snap.abi.torch_lib if snap.abi else ''})",
        fix=_fix(snap, first),
        location=Location(first.path),
    )


def _missing_symbols(snap: Snapshot, extensions: list[ExtensionFacts]) -> Finding:
    first = extensions[0]
    torch_version = snap.torch.version if snap.torch is not None else "?"
    other_abi = [s for s in first.missing_symbols if s.other_abi]
    shown = "; ".join(s.shown for s in first.missing_symbols)
    raw = "" if all(s.demangled for s in first.missing_symbols) else " (mangled: c++filt was not found)"
    count = sum(e.missing_count for e in extensions)
    more = f" and {count - len(first.missing_symbols)} more" if count > len(first.missing_symbols) else ""
    if other_abi:
        # The symbol it needs names the std::string of the ABI it was compiled with; torch exports the other.
        built = "1" if any(CXX11_STRING in s.name or "B5cxx11" in s.name for s in other_abi) else "0"
        other = "0" if built == "1" else "1"
        code = "packages.abi-cxx11"
        meaning = (
            f"it was compiled with _GLIBCXX_USE_CXX11_ABI={built}, and torch {torch_version} exports these symbols "
            f"only as compiled with _GLIBCXX_USE_CXX11_ABI={other} (std::string is "
            f"{'std::__cxx11::basic_string' if other == '1' else 'the pre-C++11 std::string'} there): another C++ ABI"
        )
    else:
        code = "packages.abi-missing-symbol"
        meaning = f"it was built for another torch version (these signatures differ in torch {torch_version})"
    return error(
        code,
        f"{_who(first)}: {short_path(first.path)} needs {shown}{more}{raw} from torch, which torch {torch_version} "
        f"does not export: {meaning}; importing it fails with 'undefined symbol'{_table_note(snap, first)}",
        observed=proof(first),
        expected=f"every torch symbol exported by {', '.join(os.path.basename(p) for p in first.torch_libraries)}",
        fix=_fix(snap, first),
        location=Location(first.path),
    )


def _who(ext: ExtensionFacts) -> str:
    return (
        f"{ext.distribution} {ext.version}".strip() if ext.distribution else "an extension of no installed distribution"
    )


def torch_pin(snap: Snapshot, distribution: str) -> str:
    """The torch requirement a distribution's metadata states (``torch==2.8.0``), empty when none."""
    dist = snap.effective().get(canonical_name(distribution))
    if dist is None:
        return ""
    for line in dist.requires:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if canonical_name(req.name) == "torch" and req.marker is None and req.specifier:
            return f"torch{req.specifier}"
    return ""


def _built_for(snap: Snapshot, ext: ExtensionFacts) -> str:
    """The torch the extension was built for, as its metadata or its version label says ("" when unknown)."""
    label = ext.version.partition("+")[2]
    match = _BUILT_FOR.search(label)
    if match:
        return f"torch=={match.group(1)}.{match.group(2)}.*"
    pin = torch_pin(snap, ext.distribution) if ext.distribution else ""
    torch = parse_version(snap.torch.version.partition("+")[0]) if snap.torch is not None else None
    if pin and torch is not None:
        spec = Requirement(pin).specifier
        if not spec.contains(torch, prereleases=True):
            return pin
    return ""


def _table_note(snap: Snapshot, ext: ExtensionFacts) -> str:
    """What the metadata and knowledge tables say too (packages.conflicts leaves that finding to this one)."""
    key = canonical_name(ext.distribution) if ext.distribution else ""
    torch_version = snap.torch.version if snap.torch is not None else ""
    if key in TORCH_FAMILY and torch_version:
        pin = family_pin(key, torch_version, torch_version.partition("+")[2], ext.version)
        if pin.partition("==")[2] and pin.partition("==")[2] != ext.version:
            return f"; torch {torch_version} pairs with {pin} (knowledge/torch_family.yaml)"
    built_for = _built_for(snap, ext)
    return f"; its metadata says it was built for {built_for}" if built_for else ""


def _fix(snap: Snapshot, ext: ExtensionFacts) -> str:
    """Reinstall the build made for this torch; else rebuild it against this torch; else the torch it needs."""
    key = canonical_name(ext.distribution) if ext.distribution else ""
    torch_version = snap.torch.version if snap.torch is not None else ""
    if key in TORCH_FAMILY and torch_version:
        return family_fix(snap, key, torch_version, torch_version.partition("+")[2], ext.version)
    if not ext.distribution:
        return f"remove {ext.path} or rebuild it against the installed torch"
    public = ext.version.partition("+")[0]
    rebuild = pip_install(
        snap,
        "--force-reinstall",
        "--no-deps",
        "--no-build-isolation",
        "--no-cache-dir",
        "--no-binary",
        ext.distribution,
        f"{ext.distribution}=={public}" if public else ext.distribution,
    )
    built_for = _built_for(snap, ext)
    tail = f"   # or a wheel whose tag names torch {torch_version.partition('+')[0]}"
    return (
        rebuild
        + tail
        + (f", or install the torch it was built for: {pip_install(snap, built_for)}" if built_for else "")
    )


def abi_codes(snap: Snapshot, distribution: str) -> list[str]:
    """The packages.abi finding codes one distribution gets (what ``--fix`` says a line resolves)."""
    if snap.abi is None:
        return []
    key = canonical_name(distribution)
    mine = [
        e for e in snap.abi.extensions if e.distribution and canonical_name(e.distribution) == key and not e.problem
    ]
    out = []
    if any(e.missing_libraries for e in mine):
        out.append("packages.abi-missing-library")
    symbols = [e for e in mine if e.missing_count and not e.missing_libraries]
    if symbols:
        other = any(s.other_abi for s in symbols[0].missing_symbols)
        out.append("packages.abi-cxx11" if other else "packages.abi-missing-symbol")
    return out
