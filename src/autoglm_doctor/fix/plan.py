"""The fix plan: every line of the pinned requirements file, and why each changed.

:func:`make_plan` is a pure function of the Report, the Snapshot and the Pack: it starts from
every installed distribution pinned at its installed version, lets :mod:`.choice` pick torch
and transformers, applies the pack's rules and the knowledge base's known-bad combinations,
then settles every installed distribution's requirements until they all hold together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from autoglm_doctor.checks._util import marker_environment, parse_version
from autoglm_doctor.checks.abi import abi_codes
from autoglm_doctor.checks.packages import GROUPED_MISSING, active_rules, grouped_requirements, missing_requirement
from autoglm_doctor.context import CheckContext, Options
from autoglm_doctor.knowledge import gpu as kb
from autoglm_doctor.knowledge.libraries import TORCH_FAMILY, family_pin, transformers_floor
from autoglm_doctor.knowledge.packages import combinations, torch_release, transformers_release
from autoglm_doctor.knowledge.torch_choice import runs_on_driver, torch_variant
from autoglm_doctor.model import Report, Severity
from autoglm_doctor.packs import Pack, PackageRule
from autoglm_doctor.probe.snapshot import Distribution, Snapshot, canonical_name
from autoglm_doctor.specs import bounded_above, common_version, exact

from .choice import Choice, Host, TorchPick, TransformersPick, choose
from .errors import FixError, Unsatisfiable
from .local import LeftOut, left_out

NOT_PINNED = frozenset({"pip", "setuptools", "wheel", "distribute"})
"""Installer tooling that ``pip freeze`` leaves out as well."""

FIXED_AREAS = ("packages.", "cuda.torch-build")
"""Checks whose findings the file resolves (check ids or their prefix)."""

_MAX_ROUNDS = 200


@dataclass(frozen=True, slots=True)
class Line:
    """One requirement of the file."""

    name: str
    """Distribution name, as its metadata writes it."""
    requirement: str
    """What the file says: ``torch==2.5.1+cu121``, ``numpy<2``, ``tokenizers``."""
    installed: str
    """The installed version; empty when it is not installed."""
    action: str
    """``keep`` (pinned as installed), ``change``, ``add`` or ``free`` (left to pip's resolver)."""
    why: str = ""
    """Why it changed (empty for ``keep``)."""
    resolves: tuple[str, ...] = ()
    """Finding codes this line resolves."""
    note: str = ""
    """A remark on an unchanged line (a duplicate copy, say)."""

    @property
    def pinned(self) -> bool:
        """The line names versions (a free line names only the distribution)."""
        return self.requirement != self.name

    def comment(self) -> str:
        """The inline comment: what was installed, why it changed, which findings it resolves."""
        parts = []
        if self.action != "keep":
            was = f"was {self.installed}" if self.installed else "not installed"
            parts.append(f"{was}: {self.why}" if self.why else was)
        if self.note:
            parts.append(self.note)
        if self.resolves:
            parts.append("resolves " + ", ".join(self.resolves))
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Unresolved:
    """A finding the file cannot fix (a shadowing file, a driver to upgrade)."""

    code: str
    message: str
    fix: str
    expected: str = ""
    """The finding's expected value (``numpy<2`` for a dependency conflict): a lock may satisfy it."""


@dataclass(frozen=True, slots=True)
class FixPlan:
    """Everything the file says."""

    lines: tuple[Line, ...]
    """Changed and added lines first, then the kept ones, each group sorted by name."""
    index_url: str
    """torch's wheel index (``https://download.pytorch.org/whl/cu121``); empty for PyPI's own wheels."""
    torch_why: str
    """Why this torch build: the host and the knowledge-base rule."""
    host: str
    """The GPU line of the header."""
    python: str
    """``3.11.7 (cpython)``."""
    executable: str
    """The target interpreter."""
    platform: str
    """``linux x86_64 (Linux-6.1-...)``."""
    pack: str
    """The pack's name."""
    resolved: tuple[str, ...]
    """Codes of the report's findings that the file resolves."""
    unresolved: tuple[Unresolved, ...]
    """The report's findings in the fixed areas that no line resolves."""
    skipped: tuple[str, ...] = ()
    """Installed distributions deliberately left out (pip, setuptools, unreadable metadata)."""
    left_out: tuple[LeftOut, ...] = ()
    """The doctor itself and editable, local-path, URL or VCS installs: no index can reproduce them."""

    def line(self, name: str) -> Line | None:
        """The line of one distribution."""
        return plan_line(self.lines, name)


@dataclass
class _Entry:
    name: str
    installed: str = ""
    dist: Distribution | None = None
    action: str = "keep"
    pin: str = ""  # exact version written (keep, or a chosen exact version)
    spec: SpecifierSet | None = None  # range written when not exact
    decided: bool = False  # chosen by the search, the pack or the knowledge base: dependents yield to it
    reasons: list[tuple[str, str]] = field(default_factory=list)
    note: str = ""
    rule: PackageRule | None = None
    extras: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return canonical_name(self.name)

    @property
    def allowed(self) -> SpecifierSet:
        if self.pin:
            return exact(self.pin)
        return self.spec if self.spec is not None else SpecifierSet()

    def requirement(self) -> str:
        if self.pin:
            return f"{self.name}=={self.pin}"
        if self.spec is not None and str(self.spec):
            return f"{self.name}{self.spec}"
        return self.name

    def main_code(self) -> str:
        """The code of the latest change (what a dependent's change resolves in turn)."""
        return next((code for _, code in reversed(self.reasons) if code), "")

    def label(self) -> str:
        origin = next((text for text, _ in self.reasons if text), "installed")
        return f"{self.requirement()} ({origin})"

    def change(self, *, pin: str = "", spec: SpecifierSet | None = None, why: str, code: str, action: str = "") -> None:
        self.pin = pin
        self.spec = spec
        self.action = action or ("change" if self.installed else "add")
        self.reasons.append((why, code))


def _used_copy(copies: list[Distribution]) -> Distribution:
    """The copy import uses: first on the path; within one folder, the newest."""
    first = min(d.path_index for d in copies)
    front = [d for d in copies if d.path_index == first]
    return max(front, key=lambda d: parse_version(d.version) or Version("0"))


def _requirements(dist: Distribution, extras: set[str], env: dict[str, str]) -> Iterator[Requirement]:
    """The parseable requirements of ``dist`` that apply to the target, with ``extras`` requested."""
    for line in dist.requires:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is None:
            yield req
            continue
        try:
            if any(req.marker.evaluate({**env, "extra": extra}) for extra in (*extras, "")):
                yield req
        except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
            continue


class _Planner:
    def __init__(self, snap: Snapshot, pack: Pack, device: str | None) -> None:
        self.snap = snap
        self.pack = pack
        self.device = device
        self.env = marker_environment(snap.python)
        self.python = Version(snap.python.version)
        self.entries: dict[str, _Entry] = {}
        self.skipped: list[str] = []
        self.left_out: list[LeftOut] = []
        self.torch_why = ""

    # --- installed distributions ------------------------------------------------------------

    def load_installed(self) -> None:
        by_key: dict[str, list[Distribution]] = defaultdict(list)
        for dist in self.snap.distributions:
            by_key[dist.key].append(dist)
        for key, copies in sorted(by_key.items()):
            used = _used_copy(copies)
            if key in NOT_PINNED:
                continue
            local = left_out(used)
            if local is not None:
                self.left_out.append(local)
                continue
            if parse_version(used.version) is None:
                why = used.problem or f"version {used.version!r} is not a PEP 440 version"
                self.skipped.append(f"{used.name} at {used.path}: {why}")
                continue
            entry = _Entry(name=used.name, installed=used.version, dist=used, pin=used.version)
            if len(copies) > 1:
                stale = ", ".join(f"{d.version or '?'} at {d.path}" for d in copies if d is not used)
                entry.note = (
                    f"installed {len(copies)} times, import uses {used.version} (stale: {stale}); a fresh venv "
                    "gets one copy, in place remove the stale folder first"
                )
                entry.reasons.append(("", "packages.duplicate"))
            if used.problem:
                entry.note = (entry.note + "; " if entry.note else "") + f"metadata problem: {used.problem}"
                entry.reasons.append(("", "packages.broken-metadata"))
            if used.requires_python:
                try:
                    allowed = SpecifierSet(used.requires_python)
                except ValueError:
                    allowed = None
                if allowed is not None and not allowed.contains(self.python, prereleases=True):
                    entry.change(
                        why=f"{used.name} {used.version} requires Python {used.requires_python}, the target is "
                        f"{self.snap.python.version}: pip picks a release for this Python",
                        code="packages.requires-python",
                        action="free",
                    )
            self.entries[key] = entry

    def _is_left_out(self, key: str) -> bool:
        """Installed editable, from a folder, a URL or VCS (or the doctor itself): never pinned from an index."""
        return any(canonical_name(item.name) == key for item in self.left_out)

    # --- torch and transformers --------------------------------------------------------------

    def apply_choice(self, choice: Choice) -> None:
        if choice.torch is not None:
            self._apply_torch(choice.torch, choice.host)
        if choice.transformers is not None:
            self._apply_transformers(choice.transformers, choice.torch)

    def _torch_problems(self, pick: TorchPick, host: Host) -> list[tuple[str, str]]:
        """Why the installed torch was not kept as it is, with the codes of the findings."""
        entry = self.entries.get("torch")
        if entry is None:
            return []
        if self.snap.torch is None:
            return [("its torch/version.py could not be read (a broken install)", "")]
        installed = entry.installed
        version = parse_version(installed)
        problems: list[tuple[str, str]] = []
        rule = entry.rule
        if version is None:
            return problems
        if rule is not None and rule.spec and not rule.specifier.contains(version, prereleases=True):
            problems.append((f"outside the pack's range {rule.spec}", "packages.out-of-range"))
        elif rule is not None and rule.recommended and version < Version(rule.recommended):
            problems.append((f"older than the recommended {rule.recommended}", "packages.below-recommended"))
        row = torch_release(installed)
        if row is not None and not row.python.contains(self.python, prereleases=True):
            problems.append(
                (f"torch {row.line} ships no wheels for Python {self.snap.python.version}", "python.torch-unsupported")
            )
        tf = self.entries.get("transformers")
        if tf is not None and tf.action == "keep" and tf.installed:
            tf_row = transformers_release(tf.installed)
            if tf_row is not None and tf_row.runtime_torch:
                floor = Version(tf_row.runtime_torch)
                if version.release[:2] < floor.release[:2]:
                    problems.append(
                        (
                            f"transformers {tf.installed} disables torch below {floor}",
                            "packages.transformers-torch-floor",
                        )
                    )
        if host.kind == "cuda":
            variant = torch_variant(self.snap)
            if variant.startswith("rocm"):
                problems.append(("a ROCm build on an NVIDIA host", "cuda.rocm-build-on-nvidia"))
            elif not variant.startswith("cu"):
                problems.append(("a CPU-only build on a host with an NVIDIA GPU", "cuda.cpu-only-torch"))
            elif not pick.installed:
                build = kb.parse_cuda(variant)
                if build is not None and runs_on_driver(build, host.driver_cuda) is None:
                    problems.append(
                        (f"built for CUDA {kb.cuda_text(build)}, newer than the driver runs", "cuda.driver-too-old")
                    )
                else:
                    archs = kb.arch_list(f"{version.major}.{version.minor}", variant)
                    if archs is not None and any(g.cc and not archs.covers(g.cc) for g in host.gpus):
                        problems.append(("no kernels for this GPU's architecture", "cuda.arch-not-in-build"))
        return problems

    def _apply_torch(self, pick: TorchPick, host: Host) -> None:
        entry = self.entries.get("torch")
        build = self._torch_build_why(pick, host)
        self.torch_why = build
        if entry is None:
            entry = self.entries["torch"] = _Entry(name="torch")
            entry.change(
                pin=pick.full_version, why=f"required by the {self.pack.name} pack; {build}", code="packages.missing"
            )
            entry.decided = True
            return
        entry.decided = True
        current_variant = torch_variant(self.snap) if self.snap.torch is not None else ""
        same_version = entry.installed.partition("+")[0] == pick.version
        if pick.installed and same_version and (current_variant == pick.variant or not pick.variant):
            entry.pin = pick.full_version if pick.variant else entry.installed
            if entry.pin != entry.installed:
                entry.note = f"the installed {current_variant} build, from {pick.index_url}"
            self._pair_torchvision(pick)
            return
        problems = self._torch_problems(pick, host)
        if pick.installed and same_version:
            what = current_variant or "untagged"
            why = (
                f"the {what} build is replaced by the {pick.variant} build of the same version: {host.reason or build}"
            )
            codes = [c for _, c in problems if c.startswith("cuda.")]
            entry.change(pin=pick.full_version, why=why, code=codes[0] if codes else "")
            for _, code in problems[1:]:
                entry.reasons.append(("", code))
            return
        if not problems:
            problems = [("to fit the transformers this file installs", "")]
        text = "; ".join(p for p, _ in problems)
        entry.change(pin=pick.full_version, why=f"{text}; {build}", code=problems[0][1])
        for _, code in problems[1:]:
            entry.reasons.append(("", code))
        self._release_coupled(entry)
        self._pair_torchvision(pick)

    def _torch_build_why(self, pick: TorchPick, host: Host) -> str:
        if host.kind == "cuda":
            how = "in full" if pick.compat == "full" else "through CUDA minor-version compatibility"
            ccs = ", ".join(sorted({f"sm_{g.cc[0]}{g.cc[1]}" for g in host.gpus if g.cc}))
            cuda = kb.parse_cuda(pick.variant)
            return (
                f"torch {pick.full_version} is the newest build (CUDA {kb.cuda_text(cuda) if cuda else '?'}) that "
                f"driver {host.driver} runs {how}"
                + (f", with kernels for {ccs}" if ccs else "")
                + " (knowledge/cuda.yaml)"
            )
        if host.kind == "cpu":
            return f"torch {pick.full_version}: the newest CPU build for this Python and pack (knowledge/cuda.yaml)"
        return f"torch {pick.full_version}: the newest release for this Python and pack (knowledge/cuda.yaml)"

    def _pair_torchvision(self, pick: TorchPick) -> None:
        """torchvision/torchaudio: the release and build knowledge/libraries.py pairs with this torch."""
        for member in TORCH_FAMILY:
            entry = self.entries.get(member)
            if entry is None or entry.action == "remove":
                continue
            pin = family_pin(member, pick.version, pick.variant).partition("==")[2]
            if not pin or pin == (entry.pin or entry.installed):
                continue
            same_release = pin.partition("+")[0] == (entry.pin or entry.installed).partition("+")[0]
            entry.change(
                pin=pin,
                why=f"torch {pick.full_version} pairs with {member} {pin} (knowledge/torch_family.yaml)",
                code="packages.torch-family-build" if same_release else f"packages.{member}-mismatch",
            )
            # packages.abi reports the same distribution with the ELF proof (and this same fix).
            entry.reasons.extend(("", code) for code in abi_codes(self.snap, member))
            entry.decided = True

    def _apply_transformers(self, pick: TransformersPick, torch: TorchPick | None) -> None:
        entry = self.entries.get("transformers")
        if entry is None:
            entry = self.entries["transformers"] = _Entry(name="transformers")
            entry.change(
                spec=pick.spec,
                why=f"required by the {self.pack.name} pack ({pick.source} range)",
                code="packages.missing",
            )
            entry.decided = True
        elif pick.installed:
            entry.decided = True
        else:
            version = Version(entry.installed)
            rule = entry.rule
            problems: list[tuple[str, str]] = []
            if rule is not None and rule.spec and not rule.specifier.contains(version, prereleases=True):
                problems.append((f"outside the pack's range {rule.spec}", "packages.out-of-range"))
            elif rule is not None and rule.recommended and version < Version(rule.recommended):
                problems.append((f"older than the recommended {rule.recommended}", "packages.below-recommended"))
            row = pick.row
            if torch is not None and not problems:
                problems.append((f"does not fit torch {torch.full_version}", "packages.transformers-torch-floor"))
            if not problems:
                problems.append(("", ""))
            text = "; ".join(p for p, _ in problems if p)
            entry.change(
                spec=pick.spec,
                why=f"{text}; {pick.source} line" + (" (knowledge/transformers.yaml)" if row else ""),
                code=problems[0][1],
            )
            for _, code in problems[1:]:
                entry.reasons.append(("", code))
            entry.decided = True
            self._release_coupled(entry)
        row = pick.row
        hub = self.entries.get("huggingface-hub")
        if row is not None and str(row.huggingface_hub) and hub is not None:
            if common_version(hub.allowed, row.huggingface_hub) is None or hub.action == "free":
                hub.change(
                    spec=row.huggingface_hub,
                    why=f"transformers {pick.spec} checks huggingface_hub{row.huggingface_hub} at import "
                    "(knowledge/transformers.yaml)",
                    code="packages.dependency-conflict" if hub.action != "free" else "",
                )
                hub.decided = True

    # --- what the pack requires --------------------------------------------------------------

    def apply_pack(self) -> None:
        ctx = CheckContext(pack=self.pack, options=Options(device=self.device, smoke=False))
        for rule in self.pack.packages:
            entry = self.entries.get(canonical_name(rule.name))
            if entry is not None:
                entry.rule = rule
        for rule, trigger in active_rules(self.snap, ctx):
            key = canonical_name(rule.name)
            if key in ("torch", "transformers") or self._is_left_out(key):
                continue
            entry = self.entries.get(key)
            target = SpecifierSet(f"=={_line(rule.recommended)}.*") if rule.recommended else rule.specifier
            floor = None if rule.spec or rule.recommended else transformers_floor(self.snap, rule.name)
            target = SpecifierSet(f">={floor.version}") if floor is not None else target
            because = f" ({trigger.describe()})" if trigger else ""
            if entry is None:
                entry = self.entries[key] = _Entry(name=rule.name, rule=rule)
                entry.change(
                    spec=target,
                    why=f"required by the {self.pack.name} pack{because}" + (f": {rule.why}" if rule.why else ""),
                    code="packages.missing",
                )
                entry.decided = True
                continue
            version = parse_version(entry.installed)
            if version is None:
                continue
            if rule.spec and not rule.specifier.contains(version, prereleases=True):
                entry.change(spec=target, why=f"outside the pack's range {rule.spec}", code="packages.out-of-range")
            elif rule.recommended and version < Version(rule.recommended):
                entry.change(
                    spec=target, why=f"older than the recommended {rule.recommended}", code="packages.below-recommended"
                )
            else:
                continue
            entry.decided = True
            self._release_coupled(entry)

    # --- known-bad combinations ---------------------------------------------------------------

    def apply_combinations(self) -> bool:
        changed = False
        for combo in combinations():
            if combo.platform and combo.platform != self.snap.python.platform:
                continue
            present = [self.entries.get(canonical_name(name)) for name in combo.when]
            if any(e is None or e.action == "free" for e in present):
                continue
            if not all(
                e is not None and common_version(e.allowed, spec) is not None
                for e, spec in zip(present, combo.when.values(), strict=True)
            ):
                continue
            for text in combo.install:
                req = Requirement(text)
                target = self.entries.get(canonical_name(req.name))
                if target is None or target.key in ("torch", "transformers"):
                    continue
                code = f"packages.known-bad.{combo.id}"
                if target.pin and req.specifier.contains(Version(target.pin), prereleases=True):
                    continue
                if any(c == code for _, c in target.reasons):
                    continue
                combined = req.specifier
                if target.spec is not None and common_version(target.spec, req.specifier) is not None:
                    combined = target.spec & req.specifier
                target.change(
                    spec=combined,
                    why=combo.message.format(**{name: self._shown(canonical_name(name)) for name in combo.when}),
                    code=code,
                )
                target.decided = True
                self._release_coupled(target)
                changed = True
        return changed

    def _shown(self, key: str) -> str:
        entry = self.entries[key]
        return entry.pin or str(entry.allowed) or "any"

    # --- every installed distribution's requirements -----------------------------------------

    def _release_coupled(self, changed: _Entry) -> None:
        """Free the dependencies the old version of ``changed`` capped: they move with it."""
        if changed.dist is None:
            return
        for req in _requirements(changed.dist, changed.extras, self.env):
            dep = self.entries.get(canonical_name(req.name))
            if dep is None or dep.action != "keep" or dep.decided or not bounded_above(req.specifier):
                continue
            if self._held_by_others(dep, exclude=changed):
                continue
            dep.change(
                why=f"installed for {changed.name} {changed.installed} ({req}), which changes: pip picks the "
                f"{dep.name} the new {changed.name} needs",
                code=changed.main_code(),
                action="free",
            )

    def _held_by_others(self, dep: _Entry, *, exclude: _Entry) -> bool:
        """Another kept distribution caps ``dep`` too, so it stays pinned."""
        for other in self.entries.values():
            if other is exclude or other.action != "keep" or other.dist is None:
                continue
            for req in _requirements(other.dist, other.extras, self.env):
                if canonical_name(req.name) == dep.key and bounded_above(req.specifier):
                    return True
        return False

    def settle(self) -> None:
        """Make every kept distribution's requirements hold: move the dependency, or free the dependent."""
        for _ in range(_MAX_ROUNDS):
            if not self._settle_once():
                return
        raise FixError("the requirements did not settle (a dependency cycle that keeps changing); please report it")

    def _settle_once(self) -> bool:
        for dependent in sorted(self.entries.values(), key=lambda e: e.key):
            if dependent.action != "keep" or dependent.dist is None:
                continue
            for req in _requirements(dependent.dist, dependent.extras, self.env):
                key = canonical_name(req.name)
                who = f"{dependent.name} {dependent.installed} requires {req.name}{req.specifier}"
                target = self.entries.get(key)
                if target is None:
                    if key in NOT_PINNED or self._is_left_out(key):
                        continue
                    entry = self.entries[key] = _Entry(name=req.name)
                    entry.change(
                        spec=req.specifier if str(req.specifier) else None,
                        why=missing_requirement(f"{dependent.name} {dependent.installed}", req),
                        code="packages.dependency-missing",
                    )
                    entry.extras |= set(req.extras)
                    return True
                if req.extras and not req.extras <= target.extras:
                    target.extras |= set(req.extras)
                    return True
                if target.action == "free" or not str(req.specifier):
                    continue
                if common_version(target.allowed, req.specifier) is not None:
                    continue
                if target.decided:
                    if dependent.decided:
                        raise Unsatisfiable(f"{dependent.requirement()} ({who})", target.label())
                    dependent.change(
                        spec=dependent.rule.specifier if dependent.rule is not None and dependent.rule.spec else None,
                        why=f"{who}, but {target.requirement()} is what this file installs: pip picks a "
                        f"{dependent.name} that fits",
                        code=target.main_code(),
                        action="free",
                    )
                    self._release_coupled(dependent)
                    return True
                if target.action == "keep":
                    target.change(
                        spec=req.specifier,
                        why=f"{who}, but {target.name} {target.installed} is installed",
                        code="packages.dependency-conflict",
                    )
                    self._release_coupled(target)
                    return True
                combined = (target.spec or SpecifierSet()) & req.specifier
                if common_version(combined) is None:
                    raise Unsatisfiable(f"{req.name}{req.specifier} ({who})", target.label())
                target.spec = combined
                return True
        return False

    # --- the result ---------------------------------------------------------------------------

    def lines(self) -> tuple[Line, ...]:
        out = []
        for entry in self.entries.values():
            codes = tuple(dict.fromkeys(code for _, code in entry.reasons if code))
            why = "; ".join(dict.fromkeys(text for text, _ in entry.reasons if text))
            out.append(
                Line(
                    name=entry.name,
                    requirement=entry.requirement(),
                    installed=entry.installed,
                    action=entry.action,
                    why=why,
                    resolves=codes,
                    note=entry.note,
                )
            )
        return tuple(sorted(out, key=lambda item: (item.action == "keep", canonical_name(item.name))))


def plan_line(lines: tuple[Line, ...], name: str) -> Line | None:
    """The line of one distribution."""
    key = canonical_name(name)
    return next((item for item in lines if canonical_name(item.name) == key), None)


def _line(version: str) -> str:
    v = Version(version)
    return f"{v.major}.{v.minor}"


def _platform(snap: Snapshot) -> str:
    py = snap.python
    base = " ".join(part for part in (py.platform, py.machine) if part) or "unknown platform"
    return f"{base} ({py.platform_full})" if py.platform_full else base


@dataclass(frozen=True, slots=True)
class _Found:
    """A warning or error of the report, as the plan weighs it."""

    code: str
    message: str
    fix: str
    fixed_area: bool
    expected: str
    details: tuple[str, ...]


def _report_findings(report: Report) -> Iterator[_Found]:
    """Every warning and error of the report."""
    for result in report.results:
        fixed_area = result.id.startswith(FIXED_AREAS[0]) or result.id == FIXED_AREAS[1]
        for finding in result.findings:
            if finding.severity is Severity.INFO:
                continue
            yield _Found(
                finding.code, finding.message, finding.fix or "", fixed_area, finding.expected or "", finding.details
            )


def _credit_grouped(lines: tuple[Line, ...], grouped: dict[str, str | None], found: list[_Found]) -> tuple[Line, ...]:
    """Lines that install a requirement of a grouped finding resolve that finding, by the code the report used.

    ``packages.dependency-missing`` stays only where the report has such a finding for that distribution.
    """
    keys = {key for key in grouped.values() if key}
    single: set[str] = set()
    for finding in found:
        if finding.code == "packages.dependency-missing":
            try:
                single.add(canonical_name(Requirement(finding.expected).name))
            except InvalidRequirement:
                continue
    out = []
    for line in lines:
        key = canonical_name(line.name)
        if line.action == "keep" or key not in keys:
            out.append(line)
            continue
        codes = [c for c in line.resolves if c != "packages.dependency-missing" or key in single]
        out.append(replace(line, resolves=tuple(dict.fromkeys([*codes, GROUPED_MISSING]))))
    return tuple(out)


def make_plan(report: Report, snap: Snapshot, pack: Pack, *, device: str | None = None) -> FixPlan:
    """The pinned requirements that resolve the report's packages.* and cuda.torch-build findings.

    Raises :class:`FixError` when the target could not be inspected, and :class:`~.choice.Unsatisfiable`
    (a FixError's sibling) naming two requirements that cannot both hold.
    """
    if not snap.python.version:
        raise FixError("the target interpreter could not be inspected (see python.version): nothing to pin")
    try:
        Version(snap.python.version)
    except InvalidVersion:
        raise FixError(f"cannot read the target's Python version {snap.python.version!r}") from None
    planner = _Planner(snap, pack, device)
    planner.load_installed()
    for rule in pack.packages:
        entry = planner.entries.get(canonical_name(rule.name))
        if entry is not None:
            entry.rule = rule
    choice = choose(snap, pack, device=device)
    planner.apply_choice(choice)
    planner.apply_pack()
    for _ in range(_MAX_ROUNDS):
        planner.settle()
        if not planner.apply_combinations():
            break
    found = list(_report_findings(report))
    grouped = grouped_requirements(snap, [line for f in found if f.code == GROUPED_MISSING for line in f.details])
    lines = _credit_grouped(planner.lines(), grouped, found)
    torch = choice.torch
    resolvable = {code for item in lines for code in item.resolves}
    in_file = {canonical_name(item.name) for item in lines}

    def resolves(item: _Found) -> bool:
        if item.code == GROUPED_MISSING:  # only when every requirement it lists is in the file
            return all(grouped.get(detail) in in_file for detail in item.details)
        return item.code in resolvable

    resolved = tuple(dict.fromkeys(item.code for item in found if resolves(item)))
    unresolved = tuple(
        Unresolved(item.code, item.message, item.fix, item.expected)
        for item in found
        if item.fixed_area and not resolves(item)
    )
    torch_why = ""
    if torch is not None:
        torch_line = plan_line(lines, "torch")
        kept = torch_line is not None and torch_line.action == "keep"
        torch_why = f"{torch.full_version} (the installed version)" if kept else planner.torch_why
    return FixPlan(
        lines=lines,
        index_url=torch.index_url if torch is not None else "",
        torch_why=torch_why,
        host=choice.host.describe(),
        python=f"{snap.python.version} ({snap.python.implementation or 'python'})",
        executable=snap.python.executable,
        platform=_platform(snap),
        pack=pack.name,
        resolved=resolved,
        unresolved=unresolved,
        skipped=tuple(planner.skipped),
        left_out=tuple(planner.left_out),
    )


__all__ = ["FixError", "FixPlan", "Line", "Unresolved", "Unsatisfiable", "make_plan"]
