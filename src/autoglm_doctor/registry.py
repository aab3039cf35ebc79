"""The check registry: the ``@check`` decorator, built-in checks and entry-point plugins.

A check is a function ``(snap, ctx) -> Iterable[Finding]`` registered with a stable id. It
reads facts from the Snapshot only; it never probes on its own. Raising :class:`Skip` makes
it ``skip`` with the reason; any other exception makes it ``error`` (the run goes on).

Third-party checks come from the entry-point group ``autoglm_doctor.checks``: each entry
point names a module (importing it registers its checks) or a decorated function. Discovery
and loading are two steps, as in flake8: a plugin that fails to load is reported as an
``error`` result naming its distribution, never a crash.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import traceback
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autoglm_doctor.model import Finding

if TYPE_CHECKING:
    import importlib.metadata

    from autoglm_doctor.context import CheckContext
    from autoglm_doctor.probe.snapshot import Snapshot

ENTRY_POINT_GROUP = "autoglm_doctor.checks"

CheckFunc = Callable[["Snapshot", "CheckContext"], Iterable[Finding]]

BUILTIN_MODULES = (
    "autoglm_doctor.checks.python_env",
    "autoglm_doctor.checks.packages",
    "autoglm_doctor.checks.abi",
    "autoglm_doctor.checks.cuda",
    "autoglm_doctor.checks.system",
    "autoglm_doctor.checks.config",
    "autoglm_doctor.checks.weights",
    "autoglm_doctor.checks.architecture",
    "autoglm_doctor.checks.service",
    "autoglm_doctor.checks.devices",
    "autoglm_doctor.checks.smoke",
)
"""Built-in check modules, imported explicitly in this order (the order of the report)."""


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """A registered check."""

    id: str
    """Stable id such as ``packages.required``; never renamed."""
    title: str
    """Short title shown in reports."""
    category: str
    """Group in the rich report; defaults to the id's first part."""
    func: CheckFunc = field(compare=False, repr=False)
    """The check itself."""
    needs: tuple[str, ...] = ()
    """Snapshot areas it needs (``config``, ``model``, ``gpu``...); absent ones make it skip."""
    decides: str = ""
    """What it decides (from the docstring)."""
    why: str = ""
    """Why it matters."""
    fix: str = ""
    """How to fix what it finds."""
    last: bool = False
    """Runs after every other check (the smoke test)."""
    origin: str = "autoglm-doctor"
    """Distribution that provides it."""


class RegistryError(ValueError):
    """Two checks claim one id, or an id is malformed."""


_ATTRIBUTE = "__autoglm_check__"


def check(
    check_id: str,
    *,
    title: str,
    category: str | None = None,
    needs: tuple[str, ...] = (),
    why: str = "",
    fix: str = "",
    last: bool = False,
) -> Callable[[CheckFunc], CheckFunc]:
    """Mark a function as a check with a stable id.

    The function's docstring says what the check decides; ``why`` and ``fix`` feed
    ``autoglm-doctor explain``. Marking has no global side effect: :func:`load` collects the
    marked functions of the built-in modules and of each plugin, in definition order.
    """
    if "." not in check_id or check_id != check_id.strip().lower():
        raise RegistryError(f"check id {check_id!r} must be lower-case 'area.name'")

    def mark(func: CheckFunc) -> CheckFunc:
        spec = CheckSpec(
            id=check_id,
            title=title,
            category=category or check_id.split(".", 1)[0],
            func=func,
            needs=tuple(needs),
            decides=" ".join((func.__doc__ or "").split()),
            why=why,
            fix=fix,
            last=last,
        )
        setattr(func, _ATTRIBUTE, spec)
        return func

    return mark


def specs_in(obj: object, origin: str) -> list[CheckSpec]:
    """The checks a module defines (in definition order), or the check a marked function is."""
    spec = getattr(obj, _ATTRIBUTE, None)
    if isinstance(spec, CheckSpec):
        return [dataclasses.replace(spec, origin=origin)]
    if isinstance(obj, types.ModuleType):
        found = []
        for value in vars(obj).values():
            marked = getattr(value, _ATTRIBUTE, None)
            if isinstance(marked, CheckSpec) and getattr(value, "__module__", None) == obj.__name__:
                found.append(dataclasses.replace(marked, origin=origin))
        return found
    return []


@dataclass(frozen=True, slots=True)
class PluginFailure:
    """A third-party plugin that could not be loaded."""

    name: str
    """Entry-point name."""
    distribution: str
    """Distribution that declared it."""
    message: str
    """One-line cause."""
    traceback: str
    """Full traceback, for ``-v``."""


@dataclass
class Registry:
    """Loaded checks plus the plugins that failed to load."""

    checks: dict[str, CheckSpec]
    """Every check by id: built-ins in module order, then plugins; ``last`` ones at the end."""
    failures: list[PluginFailure]
    """Plugins that raised while loading."""


def _may_have_plugins() -> bool:
    """False only when no distribution on ``sys.path`` can declare an entry point of our group.

    A cheap pre-scan (importing :mod:`importlib.metadata` and reading every distribution's
    metadata costs ~0.1 s, for a group that is usually empty): it reads the ``entry_points.txt``
    of each ``*.dist-info`` / ``*.egg-info`` folder that sits directly in a ``sys.path`` folder.
    Anything it cannot see through (a zip or egg file on the path, a custom finder of
    distributions) answers True, so that the real discovery decides.
    """
    if any(
        hasattr(finder, "find_distributions")
        for finder in sys.meta_path
        if finder.__module__ != "_frozen_importlib_external"
    ):
        return True
    for entry in sys.path:
        base = entry or "."
        try:
            children = os.listdir(base)
        except NotADirectoryError:
            return True  # a zip archive or egg file: only importlib.metadata reads those
        except OSError:
            continue
        is_egg = base.lower().endswith(".egg")
        for child in children:
            low = child.lower()
            if not (low.endswith((".dist-info", ".egg-info")) or (is_egg and low == "egg-info")):
                continue
            try:
                with open(os.path.join(base, child, "entry_points.txt"), "rb") as handle:
                    if ENTRY_POINT_GROUP.encode() in handle.read():
                        return True
            except OSError:
                continue
    return False


def _discover() -> list[importlib.metadata.EntryPoint]:
    if not _may_have_plugins():
        return []
    import importlib.metadata

    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    return sorted(eps, key=lambda ep: (ep.name, ep.value))


def _dist_name(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return str(dist.metadata["Name"]) if dist is not None else "unknown distribution"


def _failure(ep: importlib.metadata.EntryPoint, origin: str, cause: str, trace: str = "") -> PluginFailure:
    return PluginFailure(
        name=ep.name,
        distribution=origin,
        message=f"plugin {ep.name!r} ({ep.value}) from {origin} failed to load: {cause}",
        traceback=trace,
    )


def load(*, plugins: bool = True) -> Registry:
    """Collect the built-in checks, then every plugin's; returns the registry and load failures."""
    checks: dict[str, CheckSpec] = {}
    for module in BUILTIN_MODULES:
        for spec in specs_in(importlib.import_module(module), "autoglm-doctor"):
            if spec.id in checks:
                raise RegistryError(f"check id {spec.id!r} is defined twice in the built-in checks")
            checks[spec.id] = spec
    failures: list[PluginFailure] = []
    for ep in _discover() if plugins else []:
        origin = _dist_name(ep)
        try:
            found = specs_in(ep.load(), origin)
        except Exception as exc:  # noqa: BLE001 - any plugin failure is reported, never fatal
            failures.append(_failure(ep, origin, f"{type(exc).__name__}: {exc}".strip(), traceback.format_exc()))
            continue
        clashes = [spec for spec in found if spec.id in checks]
        if not found:
            failures.append(
                _failure(ep, origin, "it names neither a module with @check functions nor a @check function")
            )
        elif clashes:
            other = checks[clashes[0].id].origin
            failures.append(
                _failure(ep, origin, f"check id {clashes[0].id!r} is registered twice ({other} and {origin})")
            )
        else:
            checks.update((spec.id, spec) for spec in found)
    ordered = sorted(checks.values(), key=lambda spec: spec.last)  # stable: keeps the order above
    return Registry(checks={spec.id: spec for spec in ordered}, failures=failures)


def describe(spec: CheckSpec) -> dict[str, Any]:
    """A check's description as plain data (``list --format json``)."""
    return {
        "id": spec.id,
        "title": spec.title,
        "category": spec.category,
        "needs": list(spec.needs),
        "decides": spec.decides,
        "why": spec.why,
        "fix": spec.fix,
        "origin": spec.origin,
    }
