"""packages.*: required packages, their versions, conflicts between them, and shadowing."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet

from autoglm_doctor.checks._util import marker_environment, parse_version, pip_install
from autoglm_doctor.context import CheckContext, config_value
from autoglm_doctor.knowledge import confidence_note
from autoglm_doctor.knowledge.gpu import torch_cuda_release
from autoglm_doctor.knowledge.libraries import (
    TORCH_FAMILY,
    family_index,
    family_pin,
    family_requirements,
    paired_version,
    transformers_floor,
)
from autoglm_doctor.knowledge.packages import combinations, torchvision_pairs, transformers_release
from autoglm_doctor.model import Finding, Location, Severity, error, info, warning
from autoglm_doctor.packs import Condition, PackageRule
from autoglm_doctor.probe.snapshot import Distribution, Shadow, Snapshot, canonical_name
from autoglm_doctor.registry import check

# Modules whose shadowing by a local file is harmless or intended.
_HARMLESS_STDLIB = {"test", "tests", "this", "antigravity", "idlelib", "turtledemo", "sitecustomize", "usercustomize"}


def _holds(condition: Condition, snap: Snapshot) -> bool:
    value = snap.env.get(condition.env) if condition.env else config_value(snap, condition.key)
    if condition.equals is None:
        return value not in (None, False, "", "none", "None")
    if isinstance(condition.equals, str) and isinstance(value, str):
        return value.lower() == condition.equals.lower()
    return bool(value == condition.equals)


def _trigger(rule: PackageRule, snap: Snapshot) -> Condition | None:
    """The config condition that makes a conditional rule apply, or None."""
    return next((c for c in rule.when if _holds(c, snap)), None)


def _requirement_text(rule: PackageRule, snap: Snapshot | None = None) -> str:
    """What to install for a rule: the pack's range, else the floor the installed transformers sets."""
    if rule.spec:
        return f"{rule.name}{rule.spec}"
    floor = transformers_floor(snap, rule.name) if snap is not None else None
    return f"{rule.name}>={floor.version}" if floor is not None else rule.name


def active_rules(snap: Snapshot, ctx: CheckContext) -> Iterator[tuple[PackageRule, Condition | None]]:
    """The pack's package rules that apply here, each with the config condition that made it apply (or None)."""
    for rule in ctx.pack.packages:
        trigger = _trigger(rule, snap) if rule.when else None
        if rule.when and trigger is None:
            continue
        yield rule, trigger


def _config_location(snap: Snapshot) -> Location | None:
    return Location(snap.config.path) if snap.config is not None and snap.config.path else None


@check(
    "packages.required",
    needs=("python",),
    title="Required packages installed",
    why="A package the deployment imports, or that a config option implies, fails the service at start-up.",
    fix="Install each missing package into the target interpreter with the command shown.",
)
def packages_required(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """Every package the pack requires is installed, including those the config's options imply."""
    installed = snap.effective()
    for rule, trigger in active_rules(snap, ctx):
        if rule.alternatives:
            yield from _one_of_missing(snap, rule, installed)
            continue
        if canonical_name(rule.name) in installed:
            continue
        because = f" ({trigger.describe()})" if trigger else ""
        why = f": {rule.why}" if rule.why else ""
        yield error(
            "packages.missing",
            f"{rule.name} is not installed{because}{why}",
            observed="not installed",
            expected=_requirement_text(rule, snap),
            fix=pip_install(snap, _requirement_text(rule, snap)),
            location=_config_location(snap) if trigger else None,
        )


def _one_of_missing(snap: Snapshot, rule: PackageRule, installed: dict[str, Distribution]) -> Iterator[Finding]:
    """A ``one_of`` rule: the engine the launch command runs must be installed, else any of the choices."""
    from autoglm_doctor.checks._served import launch_engine  # served packs only

    engine = launch_engine(snap)
    named = next((c for c in rule.choices if canonical_name(c.name) == engine), None)
    wanted = (named,) if named is not None else rule.choices
    if any(canonical_name(c.name) in installed for c in wanted):
        return
    why = f": {rule.why}" if rule.why else ""
    if named is not None:
        message = f"{named.name} is not installed, but the launch command runs {named.name}{why}"
    else:
        message = f"none of {', '.join(c.name for c in rule.choices)} is installed (one is needed){why}"
    first = wanted[0]
    yield error(
        "packages.missing",
        message,
        observed="not installed",
        expected=" or ".join(_requirement_text(c) for c in wanted),
        fix=pip_install(snap, _requirement_text(first)),
        location=_config_location(snap) if named is not None else None,
    )


@check(
    "packages.versions",
    needs=("python",),
    title="Package versions in range",
    why="Versions outside the tested range fail at import or behave differently at generation time.",
    fix="Install a version inside the pack's range; the recommended version is the one the guide tested.",
)
def packages_versions(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """Installed versions lie in the pack's ranges; versions below the recommended one warn."""
    installed = snap.effective()
    for active, trigger in active_rules(snap, ctx):
        for rule in active.choices:
            yield from _version_findings(snap, rule, installed, trigger)


def _version_findings(
    snap: Snapshot, rule: PackageRule, installed: dict[str, Distribution], trigger: Condition | None
) -> Iterator[Finding]:
    """Findings for one installed package against its range, transformers' floor and the recommended version."""
    dist = installed.get(canonical_name(rule.name))
    if dist is None:
        return  # packages.required reports it
    version = parse_version(dist.version)
    if version is None:
        yield warning(
            "packages.unparseable-version",
            f"{rule.name} reports version {dist.version!r}, which is not a PEP 440 version",
            observed=dist.version or "(empty)",
            expected=_requirement_text(rule),
            fix=pip_install(snap, "--force-reinstall", _requirement_text(rule)),
        )
        return
    if rule.spec and not rule.specifier.contains(version, prereleases=True):
        why = f": {rule.why}" if rule.why else ""
        yield error(
            "packages.out-of-range",
            f"{rule.name} {version} is outside the supported range {rule.spec}{why}",
            observed=f"{rule.name}=={version}",
            expected=_requirement_text(rule),
            fix=pip_install(snap, _requirement_text(rule)),
        )
        return
    floor = transformers_floor(snap, rule.name) if canonical_name(rule.name) not in _OWN_FLOORS else None
    if floor is not None and (parse_version(floor.version) or version) > version:
        because = f" ({trigger.describe()})" if trigger else ""
        yield error(
            "packages.below-transformers-floor",
            f"{rule.name} {version} is older than {floor.version}, the floor the installed transformers "
            f"{_version_of(installed, 'transformers')} sets{because}: {floor.source}",
            observed=f"{rule.name}=={version}",
            expected=f"{rule.name}>={floor.version}",
            fix=pip_install(snap, f"{rule.name}>={floor.version}"),
            location=_config_location(snap) if trigger else None,
        )
        return
    recommended = parse_version(rule.recommended) if rule.recommended else None
    if recommended is not None and version < recommended:
        yield warning(
            "packages.below-recommended",
            f"{rule.name} {version} is older than the recommended {recommended}",
            observed=f"{rule.name}=={version}",
            expected=f"{rule.name}>={recommended}",
            fix=pip_install(snap, f"{rule.name}>={recommended}"),
        )


_OWN_FLOORS = frozenset({"transformers", "torch"})
"""Packages whose floor is not transformers' dependency floor: itself, and torch, whose import-time
floor packages.conflicts reports (packages.transformers-torch-floor)."""


def _version_of(installed: dict[str, Distribution], name: str) -> str:
    dist = installed.get(name)
    return dist.version if dist is not None else "?"


# `name ; extra == "x"`: a line that only matters when extra x is requested. Most Requires-Dist
# lines of torch and transformers look like this; skipping them unparsed keeps the check fast.
_EXTRA_ONLY = re.compile(r"""^[^;]*;\s*extra\s*==\s*(['"])([^'"]+)\1\s*$""")


def _requirements(dist: Distribution, extras: set[str], env: dict[str, str]) -> Iterator[Requirement | str]:
    """The requirements of ``dist`` that apply to the target with ``extras`` requested; bad lines as str."""
    wanted = {canonical_name(e) for e in extras}
    for line in dist.requires:
        extra_only = _EXTRA_ONLY.match(line)
        if extra_only is not None and canonical_name(extra_only.group(2)) not in wanted:
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            yield line
            continue
        if req.marker is None:
            if not extras:
                yield req
            continue
        try:
            applies = any(req.marker.evaluate({**env, "extra": extra}) for extra in (extras or {""}))
            base = req.marker.evaluate({**env, "extra": ""})
        except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
            yield line
            continue
        # With extras requested, only the extra-specific lines are new; base lines were checked already.
        if applies and (not extras or not base):
            yield req


def _dependency_findings(snap: Snapshot) -> Iterator[Finding]:
    env = marker_environment(snap.python)
    installed = snap.effective()
    python = parse_version(snap.python.version)
    proven = proven_broken(snap)
    pending: list[tuple[Distribution, set[str], str]] = [(d, set(), "") for d in installed.values()]
    missing: dict[tuple[str, frozenset[str]], tuple[Distribution, list[Finding]]] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        dist, extras, via = pending.pop()
        marker = (dist.key, frozenset(extras))
        if marker in seen:
            continue
        seen.add(marker)
        if not extras and dist.requires_python and python is not None:
            try:
                allowed = SpecifierSet(dist.requires_python)
            except ValueError:
                allowed = None
            if allowed is not None and not allowed.contains(python, prereleases=True):
                yield error(
                    "packages.requires-python",
                    f"{dist.name} {dist.version} requires Python {dist.requires_python}, "
                    f"but the target is Python {snap.python.version}",
                    observed=f"Python {snap.python.version}",
                    expected=f"Python {dist.requires_python}",
                    fix=pip_install(snap, "--force-reinstall", dist.name),
                )
        for req in _requirements(dist, extras, env):
            if isinstance(req, str):
                yield warning(
                    "packages.bad-requirement",
                    f"{dist.name} {dist.version} declares a requirement that cannot be parsed: {req!r}",
                    observed=req,
                    fix=pip_install(snap, "--force-reinstall", dist.name),
                )
                continue
            who = f"{dist.name} {dist.version}" + (f" (extra {', '.join(sorted(extras))}{via})" if extras else "")
            target = installed.get(canonical_name(req.name))
            wanted = f"{req.name}{req.specifier}" if req.specifier else req.name
            if target is None:
                missing.setdefault((dist.key, frozenset(extras)), (dist, []))[1].append(
                    error(
                        "packages.dependency-missing",
                        missing_requirement(who, req),
                        observed="not installed",
                        expected=wanted,
                        fix=pip_install(snap, wanted),
                    )
                )
                continue
            version = parse_version(target.version)
            if target.key == "torch" and dist.key in proven and not extras:
                continue  # packages.abi reports the pin with the ELF proof of what it breaks
            if req.specifier and version is not None and not req.specifier.contains(version, prereleases=True):
                yield error(
                    "packages.dependency-conflict",
                    f"{who} requires {wanted}, but {target.name} {target.version} is installed",
                    observed=f"{target.name}=={target.version}",
                    expected=wanted,
                    fix=pip_install(snap, wanted),
                )
            if req.extras:
                pending.append((target, set(req.extras), f" via {dist.name}"))
    for (_, for_extras), (dependent, findings) in missing.items():
        if len(findings) < GROUP_MISSING_AT or for_extras:
            yield from findings
            continue
        yield _missing_group(snap, dependent, findings)


def missing_requirement(who: str, req: Requirement) -> str:
    """The words for a requirement of ``who`` (``vllm 0.12.0``) that is not installed.

    One text for the finding, the line of a grouped finding's ``details`` and the ``--fix`` line that
    adds the requirement, so that the file can say which finding each of its lines resolves.
    """
    wanted = f"{req.name}{req.specifier}" if req.specifier else req.name
    return f"{who} requires {wanted}, which is not installed"


GROUPED_MISSING = "packages.dependencies-missing"
"""The code of one distribution's many missing requirements as one finding (``details``: one line each)."""


def grouped_requirements(snap: Snapshot, details: Iterable[str]) -> dict[str, str | None]:
    """Each line of grouped missing-requirements findings -> the canonical name of what it asks for.

    The lines are :func:`missing_requirement`'s words; each installed distribution's base requirements
    are worded the same way to find their names (None where no installed distribution says it).
    """
    named: dict[str, str | None] = dict.fromkeys(details)
    if not named:
        return named
    env = marker_environment(snap.python)
    for dist in snap.distributions:
        for req in _requirements(dist, set(), env):
            if isinstance(req, str):
                continue
            said = missing_requirement(f"{dist.name} {dist.version}", req)
            if said in named:
                named[said] = canonical_name(req.name)
    return named


GROUP_MISSING_AT = 3
"""From this many missing requirements of one distribution, they are one finding (an install with ``--no-deps``,
or an interrupted install): vLLM 0.12 installed with ``--no-deps`` lacks 60-odd, which were ~220 lines, one per
requirement, before any GPU or model finding. The list goes under ``-v`` and into the JSON ``details``."""


def _missing_group(snap: Snapshot, dist: Distribution, findings: list[Finding]) -> Finding:
    """One error for a distribution that lacks many of its requirements, with the reinstall that brings them."""
    names = [f.expected or "" for f in findings]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    total = sum(1 for _ in _requirements(dist, set(), marker_environment(snap.python)))
    return error(
        GROUPED_MISSING,
        f"{dist.name} {dist.version} is missing {len(findings)} of its {total} requirements ({shown}): "
        "installed without them (pip install --no-deps, or interrupted), it fails at import",
        observed=f"{len(findings)} requirements not installed",
        expected=f"every requirement of {dist.name} {dist.version} installed",
        fix=pip_install(snap, f"{dist.name}=={dist.version}")
        + "   (without --no-deps: pip installs what the release requires)",
        details=tuple(f.message for f in findings),
    )


def _duplicate_findings(snap: Snapshot) -> Iterator[Finding]:
    by_key: dict[str, list[Distribution]] = defaultdict(list)
    for dist in snap.distributions:
        by_key[dist.key].append(dist)
    for copies in by_key.values():
        if len(copies) < 2:
            continue
        used, others = _current_copy(copies)
        listing = "; ".join(f"{d.version or '?'} at {d.path}" for d in copies)
        same_folder = len({d.location for d in copies}) == 1
        how = (
            "two metadata folders in one site-packages (a half-finished upgrade): pip and importlib.metadata "
            f"may report either, and the files on disk are probably {used.version or '?'}'s"
            if same_folder
            else f"import uses {used.version or '?'} (first on the path) and the other copies only confuse pip"
        )
        stale = " ".join("'" + d.path.replace("'", "'\"'\"'") + "'" for d in others)  # always quoted, safely
        yield error(
            "packages.duplicate",
            f"{used.name} is installed {len(copies)} times ({listing}); {how}",
            observed=f"{len(copies)} copies",
            expected="one copy",
            fix=f"rm -r {stale}   then   "
            + pip_install(snap, "--force-reinstall", "--no-deps", f"{used.name}=={used.version}"),
            location=Location(others[0].path),
        )


def _current_copy(copies: list[Distribution]) -> tuple[Distribution, list[Distribution]]:
    """The copy import uses (first on the path; newest within one folder) and the stale rest."""
    first_index = min(d.path_index for d in copies)
    front = [d for d in copies if d.path_index == first_index]
    used = max(front, key=lambda d: parse_version(d.version) or parse_version("0"))  # type: ignore[return-value,arg-type]
    return used, [d for d in copies if d is not used]


def _broken_metadata_findings(snap: Snapshot) -> Iterator[Finding]:
    for dist in snap.distributions:
        if dist.problem:
            yield warning(
                "packages.broken-metadata",
                f"{dist.name} at {dist.path}: {dist.problem}; pip skips or mis-reports it",
                observed=dist.problem,
                expected="complete metadata",
                fix=f"remove '{dist.path}' and reinstall: " + pip_install(snap, "--force-reinstall", dist.name),
                location=Location(dist.path),
            )


def _knowledge_findings(snap: Snapshot) -> Iterator[Finding]:
    installed = snap.effective()
    versions = {}
    for key, dist in installed.items():
        version = parse_version(dist.version)
        if version is not None:
            versions[key] = version
    for combo in combinations():
        if combo.platform and combo.platform != snap.python.platform:
            continue
        keys = {canonical_name(name): spec for name, spec in combo.when.items()}
        if not all(k in versions and spec.contains(versions[k], prereleases=True) for k, spec in keys.items()):
            continue
        values = {name: str(versions[canonical_name(name)]) for name in combo.when}
        severity = Severity.WARNING if combo.severity == "warning" else Severity.ERROR
        yield Finding(
            severity,
            f"packages.known-bad.{combo.id}",
            combo.message.format(**values)
            + (f" (symptom: {combo.symptom})" if combo.symptom else "")
            + confidence_note(combo.confidence),
            observed=", ".join(f"{n}=={v}" for n, v in values.items()),
            expected=f"not: {', '.join(f'{n}{s}' for n, s in combo.when.items())}",
            fix=(pip_install(snap, *combo.install) if combo.install else combo.alternative)
            + (f"   # {combo.alternative}" if combo.install and combo.alternative else ""),
        )
    transformers = versions.get("transformers")
    torch = versions.get("torch")
    if transformers is not None and torch is not None:
        row = transformers_release(str(transformers))
        floor = parse_version(row.runtime_torch) if row and row.runtime_torch else None
        if row is not None and floor is not None and torch.release[:2] < floor.release[:2]:
            yield error(
                "packages.transformers-torch-floor",
                f"transformers {transformers} disables PyTorch below {floor} at import, and torch {torch} is "
                "installed: models will not load ('Disabling PyTorch because PyTorch >= "
                f"{floor} is required')" + confidence_note(row.confidence),
                observed=f"torch=={torch}",
                expected=f"torch>={floor}",
                fix=pip_install(snap, f"torch>={floor}"),
            )
    yield from _torch_family_findings(snap, installed)


def _local_label(version: str) -> str:
    return version.partition("+")[2]


def _torch_spec(dist: Distribution, member: str) -> SpecifierSet | None:
    """The torch range a torchvision/torchaudio release names: its own metadata, else the generated table."""
    for line in dist.requires:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if canonical_name(req.name) == "torch" and req.marker is None:
            return req.specifier
    return family_requirements().get(member, {}).get(dist.version.partition("+")[0])


def _pypi_build(torch_version: str, platform: str, machine: str) -> str:
    """The build of PyPI's untagged wheels for a torch line here (``cu130``); empty when unknown."""
    version = parse_version(torch_version)
    if version is None or platform != "linux" or machine.lower() not in ("x86_64", "amd64"):
        return ""
    row = torch_cuda_release(f"{version.major}.{version.minor}")
    return row.pypi_default if row is not None else ""


def family_fix(snap: Snapshot, member: str, torch_version: str, variant: str, installed: str) -> str:
    """Reinstall torchvision/torchaudio as the release and build paired with this torch (from torch's index)."""
    pin = family_pin(member, torch_version, variant, installed)
    index = family_index(pin)
    return pip_install(snap, "--force-reinstall", "--no-deps", pin) + (f" --index-url {index}" if index else "")


def proven_broken(snap: Snapshot) -> set[str]:
    """Distributions (normalised names) whose extensions the ELF facts prove broken against the installed torch.

    packages.abi reports those, with the ELF proof and the same fix; the table-based findings here
    (torchvision/torchaudio pairing, a torch pin in the metadata) stand back for them, so that one
    broken distribution is one finding.
    """
    if snap.abi is None:
        return set()
    return {
        canonical_name(e.distribution)
        for e in snap.abi.extensions
        if e.distribution and (e.missing_libraries or e.missing_count)
    }


def _torch_family_findings(snap: Snapshot, installed: dict[str, Distribution]) -> Iterator[Finding]:
    """Torchvision and torchaudio carry the version torch's release pairs them with, and torch's build.

    pip check compares public versions only: a torchvision 0.28.0+cu130 beside torch 2.13.0+cpu
    satisfies ``torch==2.13.0`` and then fails at import. The build is the local version label
    (``+cpu``, ``+cu126``, ``+rocm6.2``); an untagged wheel is PyPI's own build of that line.
    """
    torch_dist = installed.get("torch")
    torch_version = snap.torch.version if snap.torch is not None and snap.torch.version else ""
    torch_version = torch_version or (torch_dist.version if torch_dist is not None else "")
    torch = parse_version(torch_version)
    if torch is None:
        return
    torch_label = _local_label(torch_version)
    proven = proven_broken(snap)
    for member in TORCH_FAMILY:
        dist = installed.get(member)
        if member in proven:
            continue  # packages.abi reports it, with the ELF proof
        version = parse_version(dist.version) if dist is not None else None
        if dist is None or version is None:
            continue
        spec = _torch_spec(dist, member)
        public_torch = parse_version(torch.public)
        if spec is not None and str(spec) and public_torch is not None:
            fits = spec.contains(public_torch, prereleases=True)
            expected = f"torch{spec}"
        else:
            line = torchvision_pairs().get(f"{torch.major}.{torch.minor}") if member == "torchvision" else None
            fits = line is None or f"{version.major}.{version.minor}" == line
            expected = f"{member}=={line}.*"
        if not fits:
            paired = paired_version(member, torch_version)
            yield error(
                f"packages.{member}-mismatch",
                f"{member} {dist.version} was not made for torch {torch_version} (it needs {expected}"
                + (f"; torch {torch.public} pairs with {member} {paired}" if paired else "")
                + "): `import "
                + member
                + "` fails (symptom: RuntimeError: operator torchvision::nms does not exist)",
                observed=f"{member}=={dist.version}, torch=={torch_version}",
                expected=family_pin(member, torch_version, torch_label, "") if paired else expected,
                fix=family_fix(snap, member, torch_version, torch_label, dist.version),
            )
            continue
        exact = spec is not None and any(s.operator == "==" for s in spec)
        member_label = _local_label(dist.version)
        if not exact or member_label == torch_label:
            continue  # a pure-Python release (a torch range, no pin) runs with any build
        pypi = _pypi_build(torch_version, snap.python.platform, snap.python.machine)  # reads cuda.yaml: only here
        torch_build = torch_label or pypi
        member_build = member_label or pypi
        if not torch_build or not member_build or torch_build == member_build:
            continue
        yield error(
            "packages.torch-family-build",
            f"{member} {dist.version} is a {_build_name(member_build, member_label)} beside torch {torch_version}, "
            f"a {_build_name(torch_build, torch_label)}: pip check passes (it ignores the +label), but `import "
            f"{member}` fails (symptom: RuntimeError: operator torchvision::nms does not exist)",
            observed=f"{member}=={dist.version}, torch=={torch_version}",
            expected=family_pin(member, torch_version, torch_label, dist.version),
            fix=family_fix(snap, member, torch_version, torch_label, dist.version),
        )


def _build_name(build: str, label: str) -> str:
    kind = "CPU" if build == "cpu" else "ROCm" if build.startswith("rocm") else f"CUDA {build[2:-1]}.{build[-1]}"
    return f"{kind} build ({'+' + label if label else 'PyPI, untagged: ' + build})"


@check(
    "packages.conflicts",
    needs=("python",),
    title="Dependencies consistent",
    why=(
        "A dependency outside its dependent's range, two copies of one package, or a combination known to "
        "break (NumPy 2 with torch < 2.3) fails at import time, often with a misleading error."
    ),
    fix="Install the version the dependent asks for, remove stale copies, or follow the knowledge-base fix.",
)
def packages_conflicts(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """Every installed distribution's requirements hold for the target (markers and extras).

    Also: no distribution installed twice, no broken metadata, no known-bad combination.
    """
    yield from _dependency_findings(snap)
    yield from _duplicate_findings(snap)
    yield from _broken_metadata_findings(snap)
    yield from _knowledge_findings(snap)


@check(
    "packages.shadowing",
    needs=("python",),
    title="No local files shadow packages",
    why=(
        "Python imports from the working directory first: a ./torch.py or ./transformers/ there replaces the "
        "real package, and the service fails with baffling AttributeErrors."
    ),
    fix="Rename the local file or folder (and delete its __pycache__ entry).",
)
def packages_shadowing(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """No file or folder in the working directory (or a path entry before site-packages) shadows a real module."""
    required = {canonical_name(rule.name) for rule in ctx.pack.packages}
    for shadow in snap.shadows:
        if shadow.shadowed.startswith("stdlib"):
            if shadow.module in _HARMLESS_STDLIB:
                continue
            yield warning(
                "packages.shadows-stdlib",
                f"the local {Path(shadow.path).name} shadows the standard library module {shadow.module!r}: "
                "anything importing it (torch, transformers, uvicorn) gets the local file",
                observed=shadow.path,
                expected=f"no local {shadow.module}",
                fix=f"rename {shadow.path} (e.g. to my_{shadow.module}) and delete its __pycache__ entry",
                location=Location(shadow.path),
            )
            continue
        checkout = _client_checkout(shadow)
        if checkout is not None:  # the clone the client runs from: its own package is the one meant to load
            yield _checkout_package(snap, shadow, checkout)
            continue
        owner = (
            f" (from {shadow.distribution})"
            if shadow.distribution and canonical_name(shadow.distribution) != canonical_name(shadow.module)
            else ""
        )
        important = canonical_name(shadow.distribution or shadow.module) in required
        yield error(
            "packages.shadowed",
            f"the local {Path(shadow.path).name} shadows the installed {shadow.module}{owner} at {shadow.shadowed}: "
            f"`import {shadow.module}` from {Path(shadow.path).parent} loads the local one",
            observed=shadow.path,
            expected=shadow.shadowed,
            fix=f"rename {shadow.path} (e.g. to my_{shadow.module}) and delete its __pycache__ entry"
            + (" (the deployment imports it)" if important else ""),
            location=Location(shadow.path),
        )


def _client_checkout(shadow: Shadow) -> Path | None:
    """The Open-AutoGLM checkout whose own ``phone_agent`` this is (main.py beside it), else None."""
    from autoglm_doctor.knowledge.client_defects import client_checkouts

    folder = Path(shadow.path).parent
    if shadow.module != "phone_agent" or not client_checkouts([], str(folder)):
        return None
    return folder


def _checkout_package(snap: Snapshot, shadow: Shadow, checkout: Path) -> Finding:
    """Running from the checkout imports its phone_agent: say which copy loads and that the installed one is unused.

    ``python main.py`` in the clone is how the client is run, so renaming the clone's package (the
    advice for any other shadowing) would break the client.
    """
    from autoglm_doctor.knowledge.client_defects import checkout_version

    installed = next(
        (
            d.version
            for d in snap.distributions
            if canonical_name(d.name) == canonical_name(shadow.distribution or "phone-agent")
        ),
        None,
    )
    local = checkout_version(checkout)
    said = (
        f"`python main.py` in the Open-AutoGLM checkout {checkout} imports its own phone_agent ({shadow.path}); "
        f"the installed phone_agent{f' {installed}' if installed else ''} at {shadow.shadowed} is unused there"
    )
    ours, theirs = (parse_version(local) if local else None), (parse_version(installed) if installed else None)
    differ = ours != theirs if ours is not None and theirs is not None else local != installed
    if installed and local and differ:
        return warning(
            "packages.checkout-differs",
            f"{said}, and the two differ in version (checkout {local}, installed {installed})",
            fix=f"run the client from the checkout as is (its setup.py says {local}); to use one copy everywhere, "
            f"reinstall it from the checkout: pip install -e {checkout}",
            observed=f"checkout {local}, installed {installed}",
            expected="one version",
            location=Location(shadow.path),
        )
    return info(
        "packages.checkout-package",
        said + (f" (both {local})" if local and installed else ""),
        location=Location(shadow.path),
    )
