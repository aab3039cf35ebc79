"""The fix as text: a requirements file (``-r``), a constraints file (``-c``), or (:mod:`.pylock`) a pylock.toml.

:func:`render_lock` writes what the resolver chose: every line ``name==version`` with the
``--hash=sha256:`` of each file (pip-compile ``--generate-hashes``'s layout), the plan's reasons as
comments under the lines that changed. :func:`render` writes the plan's own constraints (ranges
and bare names): the fallback when no resolver could choose, and its header says it is not a lock.

Requirements: torch's wheel index goes in as ``--extra-index-url`` (not ``--index-url``: PyTorch's
index does not carry transformers, fastapi...); the torch pin carries the build's local tag
(``+cu121``), which only that index serves (PyPI refuses local versions), so the build cannot come
from anywhere else. Constraints: the same pins; the index is a comment to pass on the command
line (a constraints file is laid over other requirements, where an index option would redirect
the whole install), and lines that name no version are comments (they constrain nothing).
"""

from __future__ import annotations

from collections.abc import Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from .formats import FixFormat
from .local import LeftOut
from .plan import FixPlan, Line, Unresolved, plan_line
from .resolve import Lock, LockedPackage, NotLocked

__all__ = ["FixFormat", "render", "render_lock"]


def _requirement(line: Line, fmt: FixFormat) -> str:
    comment = line.comment()
    if fmt is FixFormat.CONSTRAINTS and not line.pinned:
        return f"# {line.name}: no version to constrain" + (f" ({comment})" if comment else "")
    return f"{line.requirement}  # {comment}" if comment else line.requirement


def _header(plan: FixPlan, kind: str, *, created: str, tool_version: str, title: str = "Pinned") -> list[str]:
    made = "autoglm-doctor" + (f" {tool_version}" if tool_version else "") + " check --fix"
    out = [
        f"# {title} {kind} for the {plan.pack} deployment, made by {made}" + (f" on {created}" if created else ""),
        f"# For:      Python {plan.python} at {plan.executable}",
        f"#           on {plan.platform}",
        f"# GPU:      {plan.host}",
    ]
    if plan.torch_why:
        out.append(f"# torch:    {plan.torch_why}")
    return out


def _index_line(plan: FixPlan, fmt: FixFormat) -> list[str]:
    if not plan.index_url:
        return []
    out = ["# torch's builds live on PyTorch's wheel index; everything else comes from PyPI."]
    if fmt is FixFormat.CONSTRAINTS:
        out.append(f"# pass on the command line: --extra-index-url {plan.index_url}")
    else:
        out.append(f"--extra-index-url {plan.index_url}")
    return [*out, ""]


def _install(plan: FixPlan, fmt: FixFormat, output_name: str, index_args: Sequence[str], *, locked: bool) -> list[str]:
    """How to install the file (with the index options the fix resolved with), then torch's index line."""
    extra_args = "".join(f" {arg}" for arg in index_args)
    if fmt is FixFormat.CONSTRAINTS:
        extra = f" --extra-index-url {plan.index_url}" if plan.index_url else ""
        install = f"{plan.executable} -m pip install{extra_args}{extra} -c {output_name} -r YOUR-REQUIREMENTS.txt"
    else:
        hashes = " --require-hashes" if locked else ""
        install = f"{plan.executable} -m pip install{hashes}{extra_args} -r {output_name}"
    out = [
        f"# Install:  {install}",
        "#           (a fresh venv is cleanest: it drops stale copies and packages no line names)",
    ]
    if plan.resolved:
        out.append(f"# Resolves: {', '.join(plan.resolved)}")
    kept = "are as installed now" if locked else "pin what is installed now"
    out.append(f"# Lines with a comment changed (was: the installed version); the others {kept}.")
    out.append("# Nothing was installed: this file only says what to install.")
    return [*out, "", *_index_line(plan, fmt)]


def _left_out(items: Sequence[LeftOut]) -> list[str]:
    if not items:
        return []
    out = ["# Installed but not pinned: no index can reproduce these (install them yourself after this file):"]
    for item in items:
        how = f"; install with: pip install {item.install}" if item.install else ""
        out.append(f"#   {item.name} {item.version}: {item.why}{how}")
    return [*out, ""]


def _tail(plan: FixPlan, lock: Lock | None = None) -> list[str]:
    out = _left_out(plan.left_out)
    if plan.skipped:
        out.append("# Installed but not pinned (unreadable metadata; reinstall them by name if they are needed):")
        out.extend(f"#   {item}" for item in plan.skipped)
        out.append("")
    unresolved = [item for item in plan.unresolved if lock is None or not lock_satisfies(lock, item)]
    if unresolved:
        out.append("# Not resolved by this file (do these by hand):")
        for item in unresolved:
            out.append(f"#   {item.code}: {item.message}")
            if item.fix:
                out.append(f"#     fix: {item.fix}")
        out.append("")
    return out


LOCK_SATISFIES = ("packages.dependency-conflict", "packages.dependency-missing")
"""Findings that name a requirement (their ``expected``): a lock whose chosen version meets it resolves them."""


def lock_satisfies(lock: Lock, item: Unresolved) -> bool:
    """The resolver's choice meets the requirement this finding says is broken (so the file does resolve it)."""
    if item.code not in LOCK_SATISFIES or not item.expected:
        return False
    try:
        wanted = Requirement(item.expected)
        chosen = lock.get(wanted.name)
        return chosen is not None and wanted.specifier.contains(Version(chosen.version), prereleases=True)
    except (InvalidRequirement, InvalidVersion):
        return False


def resolver_name(lock: Lock) -> str:
    """``uv`` or ``pip``: the program that chose (the first word of ``Lock.resolver``)."""
    return (lock.resolver.split() or ["the resolver"])[0]


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def _finish(out: list[str]) -> str:
    return "\n".join(_one_line(text) for text in out).rstrip("\n") + "\n"


def render(
    plan: FixPlan,
    fmt: FixFormat,
    *,
    output_name: str,
    created: str = "",
    tool_version: str = "",
    not_locked: NotLocked | None = None,
    index_args: Sequence[str] = (),
) -> str:
    """The plan's own constraints as a file: exact pins where the plan knows them, ranges elsewhere.

    With ``not_locked`` (the resolver could not choose) the header says this is not a lock and how to get one.
    """
    kind = "constraints" if fmt is FixFormat.CONSTRAINTS else "requirements"
    out = _header(plan, kind, created=created, tool_version=tool_version)
    if not_locked is not None:
        out.append(f"# NOT A LOCK: {not_locked.reason}, so lines that changed are ranges, not exact versions,")
        out.append("#           and there are no hashes. For a lock, rerun check --fix where an index answers,")
        out.append("#           or pass --index-url URL / --find-links WHEELHOUSE (--no-index for a wheelhouse only).")
    out += _install(plan, fmt, output_name, index_args, locked=False)
    changed = [line for line in plan.lines if line.action != "keep"]
    kept = [line for line in plan.lines if line.action == "keep"]
    if changed:
        out.append("# Changed or added")
        out.extend(_requirement(line, fmt) for line in changed)
        out.append("")
    if kept:
        out.append("# Kept at the installed version")
        out.extend(_requirement(line, fmt) for line in kept)
        out.append("")
    out += _tail(plan)
    return _finish(out)


def _locked(package: LockedPackage, line: Line | None, resolver: str = "pip") -> list[str]:
    """pip-compile's layout: the pin, one ``--hash`` per file on continuation lines, then the reasons.

    The reasons are written after resolution: a line the resolver kept at the installed version says so
    (and resolves nothing), and "pip picks" becomes what ``resolver`` picked.
    """
    hashes = package.hashes
    pin = f"{package.name}=={package.version}"
    if not hashes:
        out = [pin]
    else:
        out = [pin + " \\"]
        last = len(hashes) - 1
        out += [f"    --hash=sha256:{digest}" + (" \\" if i < last else "") for i, digest in enumerate(hashes)]
    comment = comment_after_resolution(package, line, resolver) if line is not None else ""
    if comment:
        out.append(f"    # {comment}")
    return out


def comment_after_resolution(package: LockedPackage, line: Line, resolver: str) -> str:
    """A line's comment once the resolver chose ``package``: unchanged lines say so; "pip picks" names the choice."""
    if line.action != "keep" and line.installed and _same_version(package.version, line.installed):
        return f"unchanged: {resolver} kept the installed {line.installed}" + (f"; {line.note}" if line.note else "")
    return line.comment().replace("pip picks", f"{resolver} picked {package.version},")


def render_lock(
    plan: FixPlan,
    lock: Lock,
    fmt: FixFormat,
    *,
    output_name: str,
    created: str = "",
    tool_version: str = "",
    index_args: Sequence[str] = (),
) -> str:
    """The resolver's exact versions with hashes, grouped and commented by the plan's reasons."""
    kind = "constraints" if fmt is FixFormat.CONSTRAINTS else "requirements"
    out = _header(plan, kind, created=created, tool_version=tool_version, title="Locked")
    out.append(f"# Resolver: {lock.resolver} chose every version for this interpreter and platform;")
    out.append("#           the hashes are of the files it chose (pip install --require-hashes checks them)")
    out += _install(plan, fmt, output_name, index_args, locked=lock.hashed)
    groups: dict[str, list[str]] = {"changed": [], "kept": [], "added": []}
    resolver = resolver_name(lock)
    for package in lock.packages:
        line = plan_line(plan.lines, package.name)
        if line is None:
            group = "added"
        elif line.action == "keep" or (line.installed and _same_version(package.version, line.installed)):
            group = "kept"  # grouped by what the resolver chose, not by what the plan allowed
        else:
            group = "changed"
        groups[group] += _locked(package, line, resolver)
    titles = {
        "changed": "# Changed or added",
        "kept": "# Kept at the installed version",
        "added": "# Added by the resolver: dependencies of the lines above",
    }
    for group, lines in groups.items():
        if lines:
            out += [titles[group], *lines, ""]
    missing = [line.name for line in plan.lines if lock.get(line.name) is None]
    if missing:
        out.append(f"# Not installed by the resolver for this interpreter (markers exclude them): {', '.join(missing)}")
        out.append("")
    out += _tail(plan, lock)
    return _finish(out)


def _one_line(text: str) -> str:
    """A message with a newline in it must not end the comment early."""
    return " ".join(text.splitlines())
