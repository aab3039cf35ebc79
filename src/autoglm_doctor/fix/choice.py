"""Which torch build and which transformers the fix pins: a search over knowledge-base candidates.

Every candidate pair (torch build, transformers) is tested against named constraints: the pack's
ranges, the target Python, the NVIDIA driver and each GPU's architecture, plus the knowledge
base's relations between them (transformers' torch floor, known-bad combinations). The first pair
in preference order wins; when none fits, the two constraints that cannot both hold are named.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from autoglm_doctor.checks.cuda import cpu_deployment, driver_cuda, runs_on_driver, torch_variant, usable_gpus
from autoglm_doctor.context import CheckContext, Options
from autoglm_doctor.knowledge import gpu as kb
from autoglm_doctor.knowledge.packages import (
    TransformersRelease,
    combinations,
    torch_release,
    transformers_release,
    transformers_releases,
)
from autoglm_doctor.packs import Pack, PackageRule
from autoglm_doctor.probe.gpu import GpuDevice
from autoglm_doctor.probe.snapshot import Snapshot, canonical_name

from .errors import Unsatisfiable
from .specs import common_version, exact


@dataclass(frozen=True)
class Host:
    """What the torch build must run on."""

    kind: str
    """``cuda`` (an NVIDIA GPU is visible), ``cpu`` or ``default`` (macOS: PyPI's own wheels)."""
    reason: str
    """Why: ``GPU 0: NVIDIA H100 (sm_90) on driver 550.54.15`` or ``no NVIDIA GPU visible``."""
    driver: str = ""
    """Driver version text."""
    driver_cuda: tuple[int, int] | None = None
    """Newest CUDA the driver runs."""
    gpus: tuple[GpuDevice, ...] = ()
    """GPUs CUDA sees."""

    def describe(self) -> str:
        """One line for the file's header."""
        if self.kind != "cuda":
            return self.reason
        cuda = kb.cuda_text(self.driver_cuda) if self.driver_cuda else "unknown"
        shown = "; ".join(f"GPU {g.index}: {g.name}" + (f" (sm_{g.cc[0]}{g.cc[1]})" if g.cc else "") for g in self.gpus)
        return f"NVIDIA driver {self.driver} (runs CUDA <= {cuda}); {shown}"


# Machines whose CPU wheels on download.pytorch.org/whl/cpu carry the +cpu tag; elsewhere (aarch64)
# PyPI's own wheels are the CPU build.
_TAGGED_CPU_MACHINES = frozenset({"x86_64", "amd64", "x64", ""})


def host_of(snap: Snapshot, pack: Pack, device: str | None = None) -> Host:
    """The platform the chosen torch build targets, from the GPU facts and the deployment's device."""
    if snap.python.platform == "darwin":
        return Host("default", "macOS: PyPI's torch wheels (CPU and MPS), no CUDA")
    cpu_kind = "cpu" if snap.python.machine.lower() in _TAGGED_CPU_MACHINES else "default"
    ctx = CheckContext(pack=pack, options=Options(device=device, smoke=False))
    on_cpu = cpu_deployment(snap, ctx)
    if on_cpu:
        return Host(cpu_kind, f"the deployment runs on the CPU ({on_cpu}): CPU wheels")
    gpus = usable_gpus(snap.gpu)
    if not gpus:
        if snap.gpu is None:
            why = "no GPU facts in the snapshot"
        elif snap.gpu.nvml_error and not snap.gpu.gpus:
            why = f"no NVIDIA driver answers ({snap.gpu.nvml_error})"
        else:
            why = "no NVIDIA GPU visible to CUDA"
        return Host(
            cpu_kind,
            f"{why}: CPU wheels (run `check --fix` on the GPU host, or `check --snapshot NODE.json --fix` "
            "with its snapshot, for a CUDA build)",
        )
    drv, _ = driver_cuda(snap)
    driver = snap.gpu.driver_version if snap.gpu is not None else ""
    return Host("cuda", "", driver=driver or "unknown", driver_cuda=drv, gpus=tuple(gpus))


@dataclass(frozen=True)
class TorchPick:
    """One torch build."""

    version: str
    """Public version, e.g. ``2.5.1``."""
    variant: str
    """``cu121``, ``cpu`` or empty (PyPI's default wheel, macOS)."""
    installed: bool
    """It is the installed version (only the build may differ)."""
    compat: str = ""
    """``full`` or ``minor`` (CUDA minor-version compatibility) on a GPU host."""
    confidence: str = "high"
    """Lowest confidence of the knowledge rows behind it."""

    @property
    def line(self) -> str:
        """``major.minor``."""
        v = Version(self.version)
        return f"{v.major}.{v.minor}"

    @property
    def requirement(self) -> str:
        """``torch==2.5.1+cu121``."""
        return f"torch=={self.full_version}"

    @property
    def full_version(self) -> str:
        """``2.5.1+cu121`` (the public version when there is no variant)."""
        return f"{self.version}+{self.variant}" if self.variant else self.version

    @property
    def index_url(self) -> str:
        """The wheel index of the variant; empty for PyPI's default wheels."""
        return kb.index_url(self.variant) if self.variant else ""


@dataclass(frozen=True)
class TransformersPick:
    """One transformers choice: the installed version, or a range from the pack and knowledge base."""

    spec: SpecifierSet
    """The range written to the file (``==4.35.*`` or an exact installed pin)."""
    installed: bool
    """It keeps the installed version."""
    row: TransformersRelease | None
    """The knowledge-base row that covers it (None when unknown)."""
    source: str
    """Where the range comes from, for the comment."""

    @property
    def requirement(self) -> str:
        """``transformers==4.35.*``."""
        return f"transformers{self.spec}"


@dataclass(frozen=True)
class Constraint:
    """A named condition on a (torch, transformers) pair."""

    label: str
    """How it reads in a message: ``Python 3.11.7 (the target interpreter)``."""
    holds: Callable[[TorchPick | None, TransformersPick | None], bool] = field(repr=False)

    """The test."""


@dataclass(frozen=True)
class Choice:
    """The pair the search picked."""

    torch: TorchPick | None
    transformers: TransformersPick | None
    host: Host


def _rule(pack: Pack, name: str) -> PackageRule | None:
    return next((r for r in pack.packages if canonical_name(r.name) == name), None)


def _cuda_rank(pick: TorchPick) -> tuple[int, ...]:
    """Prefer the driver's own CUDA major, then builds it runs in full, then the newest torch and CUDA."""
    cuda = kb.parse_cuda(pick.variant) or (0, 0)
    line = Version(pick.version)
    return (-cuda[0], 0 if pick.compat == "full" else 1, -line.major, -line.minor, -cuda[1])


def torch_candidates(snap: Snapshot, host: Host) -> list[TorchPick]:
    """The installed torch (rebuilt for this host) first, then every knowledge-base build in preference order."""
    picks: list[TorchPick] = []
    installed = snap.effective().get("torch")
    if installed is not None and snap.torch is not None:
        public = installed.version.partition("+")[0]
        try:
            Version(public)
        except ValueError:
            public = ""
        if public:
            variant = torch_variant(snap)
            if host.kind == "cpu":
                variant = "cpu"
            elif host.kind == "default":
                variant = ""
            elif not variant.startswith("cu"):
                variant = variant or "cpu"
            compat = ""
            if host.kind == "cuda":
                build = kb.parse_cuda(variant)
                compat = (runs_on_driver(build, host.driver_cuda) or "") if build else ""
            picks.append(TorchPick(public, variant, True, compat))
    table: list[TorchPick] = []
    for release in kb.torch_cuda_releases():
        if host.kind == "cuda":
            for variant in release.variants:
                build = kb.parse_cuda(variant)
                compat = (runs_on_driver(build, host.driver_cuda) or "") if build else ""
                table.append(TorchPick(release.latest, variant, False, compat, release.confidence))
        else:
            variant = "cpu" if host.kind == "cpu" else ""
            table.append(TorchPick(release.latest, variant, False, "", release.confidence))
    if host.kind == "cuda":
        table.sort(key=_cuda_rank)
    return picks + table


def transformers_candidates(snap: Snapshot, pack: Pack) -> list[TransformersPick]:
    """The installed transformers first, then the pack's recommended line, then knowledge rows newest first."""
    picks: list[TransformersPick] = []
    rule = _rule(pack, "transformers")
    allowed = rule.specifier if rule is not None else SpecifierSet()
    installed = snap.effective().get("transformers")
    if installed is not None:
        try:
            Version(installed.version)
            picks.append(
                TransformersPick(exact(installed.version), True, transformers_release(installed.version), "installed")
            )
        except ValueError:
            pass
    if rule is not None and rule.recommended:
        spec = SpecifierSet(f"=={_line(rule.recommended)}.*")
        picks.append(
            TransformersPick(spec, False, transformers_release(rule.recommended), f"the {pack.name} pack's recommended")
        )
    for row in reversed(transformers_releases()):
        spec = row.versions & allowed if str(allowed) else row.versions
        if common_version(spec) is None:
            continue
        picks.append(TransformersPick(spec, False, row, "the newest knowledge-base release line that fits"))
    return picks


def _line(version: str) -> str:
    v = Version(version)
    return f"{v.major}.{v.minor}"


def _representative(pick: TransformersPick) -> Version | None:
    return common_version(pick.spec)


def _torch_ok_for_transformers(t: TorchPick | None, f: TransformersPick | None) -> bool:
    if t is None or f is None or f.row is None:
        return True
    version = Version(t.version)
    if f.row.runtime_torch:
        floor = Version(f.row.runtime_torch)
        if version.release[:2] < floor.release[:2]:
            return False
    return not str(f.row.torch) or f.row.torch.contains(version, prereleases=True)


def _requirement_name(text: str) -> str:
    try:
        return canonical_name(Requirement(text).name)
    except InvalidRequirement:
        return ""


def _combos_ok(snap: Snapshot) -> Callable[[TorchPick | None, TransformersPick | None], bool]:
    """Known-bad combinations whose only fix is another torch or transformers rule the pair out."""
    others = {
        key: dist.version
        for key, dist in snap.effective().items()
        if key not in ("torch", "transformers") and dist.version
    }
    rows = [
        c
        for c in combinations()
        if (not c.platform or c.platform == snap.python.platform)
        and {canonical_name(n) for n in c.when} & {"torch", "transformers"}
        and all(_requirement_name(req) in ("torch", "transformers") for req in c.install)
    ]

    def holds(t: TorchPick | None, f: TransformersPick | None) -> bool:
        for combo in rows:
            matched = True
            for name, spec in combo.when.items():
                key = canonical_name(name)
                if key == "torch":
                    ok = t is not None and spec.contains(Version(t.version), prereleases=True)
                elif key == "transformers":
                    ok = f is not None and common_version(f.spec, spec) is not None
                else:
                    ok = key in others and common_version(exact(others[key]), spec) is not None
                if not ok:
                    matched = False
                    break
            if matched:
                return False
        return True

    return holds


Test = Callable[[TorchPick | None, TransformersPick | None], bool]


def _torch_in(spec: SpecifierSet) -> Test:
    return lambda t, f: t is None or spec.contains(Version(t.version), prereleases=True)


def _transformers_in(spec: SpecifierSet) -> Test:
    return lambda t, f: f is None or common_version(f.spec, spec) is not None


def _runs_on_driver(t: TorchPick | None, f: TransformersPick | None) -> bool:
    return t is None or bool(t.compat)


def _has_kernels_for(cc: tuple[int, int]) -> Test:
    return lambda t, f: t is None or _covers(t, cc)


def _python_supported(python: Version) -> Test:
    def holds(t: TorchPick | None, f: TransformersPick | None) -> bool:
        if t is not None:
            row = torch_release(t.version)
            if row is not None and not row.python.contains(python, prereleases=True):
                return False
        return f is None or f.row is None or not str(f.row.python) or f.row.python.contains(python, prereleases=True)

    return holds


def constraints(snap: Snapshot, pack: Pack, host: Host) -> tuple[list[Constraint], list[Constraint]]:
    """The named (unary) constraints and the knowledge-base relations every pair must meet."""
    named: list[Constraint] = []
    torch_rule = _rule(pack, "torch")
    if torch_rule is not None and torch_rule.spec:
        named.append(Constraint(f"torch{torch_rule.spec} (pack {pack.name})", _torch_in(torch_rule.specifier)))
    tf_rule = _rule(pack, "transformers")
    if tf_rule is not None and tf_rule.spec:
        named.append(Constraint(f"transformers{tf_rule.spec} (pack {pack.name})", _transformers_in(tf_rule.specifier)))
    named.append(
        Constraint(
            f"Python {snap.python.version} (the target interpreter)", _python_supported(Version(snap.python.version))
        )
    )
    if host.kind == "cuda":
        cuda = kb.cuda_text(host.driver_cuda) if host.driver_cuda else "an unknown CUDA"
        named.append(Constraint(f"NVIDIA driver {host.driver} (runs CUDA <= {cuda})", _runs_on_driver))
        named.extend(
            Constraint(f"GPU {gpu.index} {gpu.name} (sm_{gpu.cc[0]}{gpu.cc[1]})", _has_kernels_for(gpu.cc))
            for gpu in host.gpus
            if gpu.cc is not None
        )
    relations = [
        Constraint("transformers' torch requirement (knowledge/transformers.yaml)", _torch_ok_for_transformers),
        Constraint("known-bad combinations (knowledge/combinations.yaml)", _combos_ok(snap)),
    ]
    return named, relations


def _covers(t: TorchPick, cc: tuple[int, int]) -> bool:
    archs = kb.arch_list(t.line, t.variant)
    return archs is None or archs.covers(cc)  # an unknown arch list is not held against a build


def _preference(t: TorchPick | None, f: TransformersPick | None) -> int:
    """0: keep both; 1: change torch only (what the findings' fixes say); 2: transformers only; 3: both."""
    torch_changed = t is not None and not t.installed
    tf_changed = f is not None and not f.installed
    return (1 if torch_changed else 0) + (2 if tf_changed else 0)


def choose(snap: Snapshot, pack: Pack, *, device: str | None = None, below_recommended: bool = True) -> Choice:
    """The (torch, transformers) pair to pin; raises :class:`Unsatisfiable` naming two conflicting constraints."""
    host = host_of(snap, pack, device)
    installed = snap.effective()
    wants_torch = "torch" in installed or _rule(pack, "torch") is not None
    wants_tf = "transformers" in installed or _rule(pack, "transformers") is not None
    torches: Sequence[TorchPick | None] = torch_candidates(snap, host) if wants_torch else [None]
    tfs: Sequence[TransformersPick | None] = transformers_candidates(snap, pack) if wants_tf else [None]
    named, relations = constraints(snap, pack, host)
    every = named + relations
    torch_rule = _rule(pack, "torch")
    tf_rule = _rule(pack, "transformers")

    def below(t: TorchPick | None, f: TransformersPick | None) -> int:
        """Keeping a version below the pack's recommended one is the last resort."""
        count = 0
        if below_recommended and t is not None and t.installed and torch_rule and torch_rule.recommended:
            count += Version(t.version) < Version(torch_rule.recommended)
        if below_recommended and f is not None and f.installed and tf_rule and tf_rule.recommended:
            rep = _representative(f)
            count += rep is not None and rep < Version(tf_rule.recommended)
        return count

    order = {id(t): i for i, t in enumerate(torches)}
    order_f = {id(f): i for i, f in enumerate(tfs)}
    pairs = sorted(
        itertools.product(torches, tfs),
        key=lambda p: (below(*p), _preference(*p), order[id(p[0])], order_f[id(p[1])]),
    )
    for t, f in pairs:
        if all(c.holds(t, f) for c in every):
            return Choice(t, f, host)
    raise _name_conflict(pairs, named, relations)


def _name_conflict(
    pairs: list[tuple[TorchPick | None, TransformersPick | None]],
    named: list[Constraint],
    relations: list[Constraint],
) -> Unsatisfiable:
    def satisfiable(group: list[Constraint]) -> bool:
        return any(all(c.holds(t, f) for c in group + relations) for t, f in pairs)

    for single in named:
        if not satisfiable([single]):
            return Unsatisfiable(single.label, "the torch builds in the knowledge base (knowledge/cuda.yaml)")
    for first, second in itertools.combinations(named, 2):
        if not satisfiable([first, second]):
            return Unsatisfiable(first.label, second.label, "knowledge: torch.yaml, transformers.yaml, cuda.yaml")
    labels = [c.label for c in named]
    return Unsatisfiable(labels[0], " and ".join(labels[1:]) or "the knowledge base")
