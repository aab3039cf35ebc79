"""Which torch build a deployment should run: the one chooser behind cuda.torch-build's fix and ``check --fix``.

The command the ``cuda.torch-build`` check prints and the requirements file ``check --fix`` writes
both come from :func:`choose`, so for the same Snapshot and pack they name the same torch version,
CUDA variant and wheel index. The policy (docs/fix.md, "torch: the build this driver runs"):

- keep the installed torch when nothing is wrong with it;
- otherwise, on a host with a visible NVIDIA GPU, prefer the driver's own CUDA major, then a build
  the driver runs in full before one that needs CUDA minor-version compatibility (which cannot
  JIT-compile PTX from a newer toolkit: Triton and ``torch.compile`` kernels), then the newest torch
  line, then the newest CUDA variant;
- every build lies in the pack's torch range, ships wheels for the target Python
  (``knowledge/torch.yaml``) and has kernels for every visible GPU (``knowledge/cuda.yaml``).

torch is chosen together with transformers, because transformers constrains torch (its ``[torch]``
extra, the floor it enforces at import) and known-bad combinations tie the two: each candidate pair
is tested against named constraints, and the first pair in preference order wins. When none fits,
:class:`NoChoice` names the two constraints that cannot both hold.

This module reads the Snapshot, the pack and the knowledge base only; it imports neither the checks
nor the fix.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from autoglm_doctor.context import CheckContext, Options, config_value
from autoglm_doctor.knowledge import confidence_note
from autoglm_doctor.knowledge import gpu as kb
from autoglm_doctor.knowledge.packages import (
    TransformersRelease,
    combinations,
    torch_release,
    transformers_release,
    transformers_releases,
)
from autoglm_doctor.packs import Pack, PackageRule
from autoglm_doctor.probe.gpu import GpuDevice, GpuFacts
from autoglm_doctor.probe.snapshot import Snapshot, canonical_name
from autoglm_doctor.specs import common_version, exact

# --- where the deployment runs ----------------------------------------------------------------


def names_cuda(value: Any) -> bool | None:
    """True: a CUDA device; False: the CPU (or disk); None: says nothing definite (auto, unset)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return True
    if isinstance(value, dict):
        verdicts = [names_cuda(v) for v in value.values()]
        return True if any(verdicts) else (False if verdicts and all(v is False for v in verdicts) else None)
    text = str(value).strip().lower()
    if text.startswith("cuda") or text.isdigit():
        return True
    if text in ("cpu", "disk", "meta", "mps"):
        return False
    return None


def device_choice(snap: Snapshot, ctx: CheckContext) -> tuple[bool | None, str]:
    """Whether the deployment runs on a CUDA GPU (None: either) and the setting that says so."""
    device = ctx.options.device or config_value(snap, "device")
    where = "--device" if ctx.options.device else "config device"
    verdict = names_cuda(device)
    if verdict is not None:
        return verdict, f"{where}: {device}"
    device_map = config_value(snap, "device_map")
    verdict = names_cuda(device_map)
    if verdict is not None:
        return verdict, f"config device_map: {device_map}"
    return None, ""


def cpu_deployment(snap: Snapshot, ctx: CheckContext) -> str:
    """Why the deployment runs on the CPU (empty when it does not)."""
    runs_on_cuda, said_by = device_choice(snap, ctx)
    if runs_on_cuda is False:
        return said_by
    if ctx.pack.gpu == "none":
        return f"the {ctx.pack.name} pack runs without a GPU"
    return ""


def usable_gpus(gpu: GpuFacts | None) -> list[GpuDevice]:
    """The GPUs CUDA will see."""
    return gpu.visible_gpus() if gpu is not None else []


def windows_target(snap: Snapshot) -> bool:
    """The target interpreter runs on Windows (whose drivers have their own version floors)."""
    return snap.python.platform in ("win32", "cygwin")


def driver_cuda(snap: Snapshot) -> tuple[tuple[int, int] | None, str]:
    """The newest CUDA the driver runs, and a note when it was inferred from the driver version."""
    gpu = snap.gpu
    if gpu is None:
        return None, ""
    if gpu.cuda_driver is not None:
        return gpu.cuda_driver, ""
    driver = kb.parse_driver(gpu.driver_version)
    if driver is None:
        return None, ""
    row = kb.max_cuda_for_driver(driver, windows=windows_target(snap))
    if row is None:
        return None, ""
    return row.cuda, f" (inferred from the driver version{confidence_note(row.confidence)})"


def runs_on_driver(build: tuple[int, int], drv: tuple[int, int] | None) -> str | None:
    """``full`` when the driver runs this CUDA outright, ``minor`` through minor-version compatibility, else None."""
    if drv is None:
        return None
    if build <= drv:
        return "full"
    if build[0] == drv[0] and build[0] >= 11:
        return "minor"
    return None


def torch_variant(snap: Snapshot) -> str:
    """The wheel variant of the installed torch: ``cu121``, ``cpu``, ``rocm6.2``; empty when unknown."""
    build = snap.torch
    if build is None:
        return ""
    tag = build.local_tag
    if tag.startswith(("cu", "rocm")) or tag == "cpu":
        return tag
    if build.hip:
        return "rocm"
    cuda = kb.parse_cuda(build.cuda)
    if cuda is not None:
        return kb.variant_of(cuda)
    return "cpu" if build.version else ""


@dataclass(frozen=True, slots=True)
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


# --- candidates -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
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

    @property
    def cuda(self) -> tuple[int, int] | None:
        """The CUDA version of a ``cuXYZ`` build; None for CPU and default wheels."""
        return kb.parse_cuda(self.variant) if self.variant.startswith("cu") else None


@dataclass(frozen=True, slots=True)
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


Test = Callable[[TorchPick | None, TransformersPick | None], bool]


@dataclass(frozen=True, slots=True)
class Constraint:
    """A named condition on a (torch, transformers) pair."""

    label: str
    """How it reads in a message: ``Python 3.11.7 (the target interpreter)``."""
    holds: Test = field(repr=False)
    """The test."""


@dataclass(frozen=True, slots=True)
class Choice:
    """The pair the search picked."""

    torch: TorchPick | None
    transformers: TransformersPick | None
    host: Host


class NoChoice(Exception):
    """No candidate pair satisfies every constraint; ``first`` and ``second`` cannot both hold."""

    def __init__(self, first: str, second: str, detail: str = "") -> None:
        self.first = first
        self.second = second
        self.detail = detail
        super().__init__(f"{first} and {second} cannot both hold" + (f" ({detail})" if detail else ""))


def pack_rule(pack: Pack, name: str) -> PackageRule | None:
    """The pack's rule for one distribution (canonical name), or None."""
    return next((r for r in pack.packages if canonical_name(r.name) == name), None)


def _cuda_rank(pick: TorchPick) -> tuple[int, ...]:
    """Prefer the driver's own CUDA major, then builds it runs in full, then the newest torch and CUDA.

    The newest CUDA major comes first: a newer major than the driver's never runs (the driver
    constraint drops it), so the first major that remains is the driver's own.
    """
    cuda = pick.cuda or (0, 0)
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
        except InvalidVersion:
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
                build = kb.parse_cuda(variant) if variant.startswith("cu") else None
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
    rule = pack_rule(pack, "transformers")
    allowed = rule.specifier if rule is not None else SpecifierSet()
    installed = snap.effective().get("transformers")
    if installed is not None:
        try:
            Version(installed.version)
            picks.append(
                TransformersPick(exact(installed.version), True, transformers_release(installed.version), "installed")
            )
        except InvalidVersion:
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


def representative(pick: TransformersPick) -> Version | None:
    """One version the pick's range allows (its lowest boundary), or None."""
    return common_version(pick.spec)


# --- constraints ------------------------------------------------------------------------------


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


def _combos_ok(snap: Snapshot) -> Test:
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


def _torch_in(spec: SpecifierSet) -> Test:
    return lambda t, f: t is None or spec.contains(Version(t.version), prereleases=True)


def _transformers_in(spec: SpecifierSet) -> Test:
    return lambda t, f: f is None or common_version(f.spec, spec) is not None


def _runs_on_driver(t: TorchPick | None, f: TransformersPick | None) -> bool:
    return t is None or bool(t.compat)


def _has_kernels_for(cc: tuple[int, int]) -> Test:
    return lambda t, f: t is None or covers(t, cc)


def _python_supported(python: Version) -> Test:
    def holds(t: TorchPick | None, f: TransformersPick | None) -> bool:
        if t is not None:
            row = torch_release(t.version)
            if row is not None and not row.python.contains(python, prereleases=True):
                return False
        return f is None or f.row is None or not str(f.row.python) or f.row.python.contains(python, prereleases=True)

    return holds


def covers(t: TorchPick, cc: tuple[int, int]) -> bool:
    """The build has kernels for a GPU of compute capability ``cc`` (an unknown arch list is not held against it)."""
    archs = kb.arch_list(t.line, t.variant)
    return archs is None or archs.covers(cc)


def constraints(snap: Snapshot, pack: Pack, host: Host) -> tuple[list[Constraint], list[Constraint]]:
    """The named (unary) constraints and the knowledge-base relations every pair must meet."""
    named: list[Constraint] = []
    torch_rule = pack_rule(pack, "torch")
    if torch_rule is not None and torch_rule.spec:
        named.append(Constraint(f"torch{torch_rule.spec} (pack {pack.name})", _torch_in(torch_rule.specifier)))
    tf_rule = pack_rule(pack, "transformers")
    if tf_rule is not None and tf_rule.spec:
        named.append(Constraint(f"transformers{tf_rule.spec} (pack {pack.name})", _transformers_in(tf_rule.specifier)))
    try:
        python: Version | None = Version(snap.python.version)
    except InvalidVersion:
        python = None  # nothing to hold builds against; --fix refuses such a target before choosing
    if python is not None:
        named.append(Constraint(f"Python {snap.python.version} (the target interpreter)", _python_supported(python)))
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


# --- the search -------------------------------------------------------------------------------


def _preference(t: TorchPick | None, f: TransformersPick | None) -> int:
    """0: keep both; 1: change torch only (what the findings' fixes say); 2: transformers only; 3: both."""
    torch_changed = t is not None and not t.installed
    tf_changed = f is not None and not f.installed
    return (1 if torch_changed else 0) + (2 if tf_changed else 0)


def choose(snap: Snapshot, pack: Pack, *, device: str | None = None, below_recommended: bool = True) -> Choice:
    """The (torch, transformers) pair to run; raises :class:`NoChoice` naming two conflicting constraints.

    ``device`` is ``--device`` (it decides CPU or CUDA wheels like the config's device does).
    """
    host = host_of(snap, pack, device)
    installed = snap.effective()
    wants_torch = "torch" in installed or pack_rule(pack, "torch") is not None
    wants_tf = "transformers" in installed or pack_rule(pack, "transformers") is not None
    torches: Sequence[TorchPick | None] = torch_candidates(snap, host) if wants_torch else [None]
    tfs: Sequence[TransformersPick | None] = transformers_candidates(snap, pack) if wants_tf else [None]
    named, relations = constraints(snap, pack, host)
    every = named + relations
    torch_rule = pack_rule(pack, "torch")
    tf_rule = pack_rule(pack, "transformers")

    def below(t: TorchPick | None, f: TransformersPick | None) -> int:
        """Keeping a version below the pack's recommended one is the last resort."""
        count = 0
        if below_recommended and t is not None and t.installed and torch_rule and torch_rule.recommended:
            count += Version(t.version) < Version(torch_rule.recommended)
        if below_recommended and f is not None and f.installed and tf_rule and tf_rule.recommended:
            rep = representative(f)
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
) -> NoChoice:
    def satisfiable(group: list[Constraint]) -> bool:
        return any(all(c.holds(t, f) for c in group + relations) for t, f in pairs)

    for single in named:
        if not satisfiable([single]):
            return NoChoice(single.label, "the torch builds in the knowledge base (knowledge/cuda.yaml)")
    for first, second in itertools.combinations(named, 2):
        if not satisfiable([first, second]):
            return NoChoice(first.label, second.label, "knowledge: torch.yaml, transformers.yaml, cuda.yaml")
    labels = [c.label for c in named]
    return NoChoice(labels[0], " and ".join(labels[1:]) or "the knowledge base")
