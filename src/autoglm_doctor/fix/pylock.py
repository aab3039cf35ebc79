"""``--fix-format pylock``: the lock as a PEP 751 ``pylock.toml``.

One ``[[packages]]`` table per distribution with its ``version``, the ``index`` that serves it and
its files (``wheels``, or an ``sdist``) with ``name``, ``url`` and ``hashes.sha256``. uv installs
it with ``uv pip install -r pylock.toml``. The plan's reasons, the header and what is left out
are TOML comments, so the file explains itself like the requirements file does.

Strings are written as TOML basic strings through :func:`json.dumps` (JSON's escapes are TOML's
for every character it emits), so no TOML writer is needed for these few flat tables.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from autoglm_doctor.probe.snapshot import canonical_name

from .plan import FixPlan, plan_line
from .render import _header, _left_out, _one_line, comment_after_resolution, lock_satisfies, resolver_name
from .resolve import Lock, LockedFile

LOCK_VERSION = "1.0"
"""PEP 751's ``lock-version``."""


def _text(value: str) -> str:
    return json.dumps(value)


def _file(item: LockedFile) -> str:
    return f"{{ name = {_text(item.filename)}, url = {_text(item.url)}, hashes = {{ sha256 = {_text(item.sha256)} }} }}"


def requires_python(plan_python: str) -> str:
    """The target's ``X.Y`` line (``==3.11.*``): the lock was resolved for that interpreter."""
    version = plan_python.split()[0]
    parts = version.split(".")
    return f"=={parts[0]}.{parts[1]}.*" if len(parts) >= 2 else f"=={version}"


def render_pylock(
    plan: FixPlan,
    lock: Lock,
    *,
    output_name: str,
    created: str = "",
    tool_version: str = "",
    index_args: Sequence[str] = (),
) -> str:
    """The lock as ``pylock.toml`` text."""
    out = _header(plan, "pylock.toml (PEP 751)", created=created, tool_version=tool_version, title="Locked")
    out.append(f"# Resolver: {lock.resolver} chose every version for this interpreter and platform")
    extra = "".join(f" {arg}" for arg in index_args)
    out.append(f"# Install:  uv pip install --python {plan.executable}{extra} -r {output_name}")
    if plan.resolved:
        out.append(f"# Resolves: {', '.join(plan.resolved)}")
    out.append("# Nothing was installed: this file only says what to install.")
    out += _left_out(plan.left_out)
    unresolved = [item for item in plan.unresolved if not lock_satisfies(lock, item)]
    if unresolved:
        out.append("# Not resolved by this file (do these by hand):")
        out += [f"#   {item.code}: {item.message}" for item in unresolved]
    made = "autoglm-doctor" + (f" {tool_version}" if tool_version else "")
    out = [_one_line(text) for text in out]
    while out and not out[-1]:
        out.pop()
    out += [
        "",
        f"lock-version = {_text(LOCK_VERSION)}",
        f"created-by = {_text(made)}",
        f"requires-python = {_text(requires_python(plan.python))}",
    ]
    for package in lock.packages:
        out.append("")
        line = plan_line(plan.lines, package.name)
        resolver = resolver_name(lock)
        comment = "a dependency of the packages above"
        if line is not None:
            comment = comment_after_resolution(package, line, resolver)
        if comment:
            out.append(_one_line(f"# {comment}"))
        out.append("[[packages]]")
        out.append(f"name = {_text(canonical_name(package.name))}")  # PEP 751: the normalized name
        out.append(f"version = {_text(package.version)}")
        if package.index:
            out.append(f"index = {_text(package.index)}")
        wheels = [f for f in package.files if f.is_wheel]
        sdists = [f for f in package.files if not f.is_wheel]
        if wheels:
            out.append("wheels = [")
            out += [f"  {_file(item)}," for item in wheels]
            out.append("]")
        elif sdists:
            out.append(f"sdist = {_file(sdists[0])}")
    return "\n".join(out).rstrip("\n") + "\n"
