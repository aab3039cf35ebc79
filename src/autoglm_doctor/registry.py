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

import importlib
import importlib.metadata
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autoglm_doctor.model import Finding

if TYPE_CHECKING:
    from autoglm_doctor.context import CheckContext
    from autoglm_doctor.probe.snapshot import Snapshot

ENTRY_POINT_GROUP = "autoglm_doctor.checks"

CheckFunc = Callable[["Snapshot", "CheckContext"], Iterable[Finding]]

BUILTIN_MODULES = (
    "autoglm_doctor.checks.python_env",
    "autoglm_doctor.checks.packages",
    "autoglm_doctor.checks.cuda",
    "autoglm_doctor.checks.system",
    "autoglm_doctor.checks.config",
    "autoglm_doctor.checks.weights",
    "autoglm_doctor.checks.service",
    "autoglm_doctor.checks.devices",
    "autoglm_doctor.checks.smoke",
)
"""Built-in check modules, imported explicitly in this order (the order of the report)."""


@dataclass(frozen=True)
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


_REGISTRY: dict[str, CheckSpec] = {}
_current_origin = "autoglm-doctor"


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
    """Register a check function under a stable id.

    The function's docstring says what the check decides; ``why`` and ``fix`` feed
    ``autoglm-doctor explain``.
    """
    if "." not in check_id or check_id != check_id.strip().lower():
        raise RegistryError(f"check id {check_id!r} must be lower-case 'area.name'")

    def register(func: CheckFunc) -> CheckFunc:
        existing = _REGISTRY.get(check_id)
        if existing is not None and existing.func is not func:
            raise RegistryError(f"check id {check_id!r} is registered twice ({existing.origin} and {_current_origin})")
        _REGISTRY[check_id] = CheckSpec(
            id=check_id,
            title=title,
            category=category or check_id.split(".", 1)[0],
            func=func,
            needs=tuple(needs),
            decides=" ".join((func.__doc__ or "").split()),
            why=why,
            fix=fix,
            last=last,
            origin=_current_origin,
        )
        return func

    return register


@dataclass(frozen=True)
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
    """Every check by id, in registration order."""
    failures: list[PluginFailure]
    """Plugins that raised while loading."""


def _discover() -> list[importlib.metadata.EntryPoint]:
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    return sorted(eps, key=lambda ep: (ep.name, ep.value))


def _dist_name(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return str(dist.metadata["Name"]) if dist is not None else "unknown distribution"


def load(*, plugins: bool = True) -> Registry:
    """Import the built-in checks, then every plugin; returns the registry and load failures."""
    global _current_origin
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    failures: list[PluginFailure] = []
    if plugins:
        for ep in _discover():
            _current_origin = _dist_name(ep)
            try:
                ep.load()
            except Exception as exc:  # noqa: BLE001 - any plugin failure is reported, never fatal
                cause = f"{type(exc).__name__}: {exc}".strip()
                failures.append(
                    PluginFailure(
                        name=ep.name,
                        distribution=_current_origin,
                        message=f"plugin {ep.name!r} ({ep.value}) from {_current_origin} failed to load: {cause}",
                        traceback=traceback.format_exc(),
                    )
                )
            finally:
                _current_origin = "autoglm-doctor"
    ordered = sorted(_REGISTRY.values(), key=lambda spec: spec.last)  # stable: keeps registration order
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
