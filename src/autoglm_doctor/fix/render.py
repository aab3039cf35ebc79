"""The plan as text: a requirements file (``pip install -r``) or a constraints file (``pip install -c``).

Requirements: torch's wheel index goes in as ``--extra-index-url`` (not ``--index-url``: PyTorch's
index does not carry transformers, fastapi...); the torch pin carries the build's local tag
(``+cu121``), which only that index serves (PyPI refuses local versions), so the build cannot come
from anywhere else. Constraints: the same pins; the index is a comment to pass on the command
line (a constraints file is laid over other requirements, where an index option would redirect
the whole install), and lines that name no version are comments (they constrain nothing).
"""

from __future__ import annotations

from .formats import FixFormat
from .plan import FixPlan, Line

__all__ = ["FixFormat", "render"]


def _requirement(line: Line, fmt: FixFormat) -> str:
    comment = line.comment()
    if fmt is FixFormat.CONSTRAINTS and not line.pinned:
        return f"# {line.name}: no version to constrain" + (f" ({comment})" if comment else "")
    return f"{line.requirement}  # {comment}" if comment else line.requirement


def render(plan: FixPlan, fmt: FixFormat, *, output_name: str, created: str = "", tool_version: str = "") -> str:
    """The file's text."""
    kind = "constraints" if fmt is FixFormat.CONSTRAINTS else "requirements"
    flag = "-c" if fmt is FixFormat.CONSTRAINTS else "-r"
    made = "autoglm-doctor" + (f" {tool_version}" if tool_version else "") + " check --fix"
    out = [
        f"# Pinned {kind} for the {plan.pack} deployment, made by {made}" + (f" on {created}" if created else ""),
        f"# For:      Python {plan.python} at {plan.executable}",
        f"#           on {plan.platform}",
        f"# GPU:      {plan.host}",
    ]
    if plan.torch_why:
        out.append(f"# torch:    {plan.torch_why}")
    install = f"{plan.executable} -m pip install {flag} {output_name}"
    if fmt is FixFormat.CONSTRAINTS:
        extra = f" --extra-index-url {plan.index_url}" if plan.index_url else ""
        install = f"{plan.executable} -m pip install{extra} -c {output_name} -r YOUR-REQUIREMENTS.txt"
    out.append(f"# Install:  {install}")
    out.append("#           (a fresh venv is cleanest: it drops stale copies and packages no line names)")
    if plan.resolved:
        out.append(f"# Resolves: {', '.join(plan.resolved)}")
    out.append("# Lines with a comment changed (was: the installed version); the others pin what is installed now.")
    out.append("# Nothing was installed: this file only says what to install.")
    out.append("")
    if plan.index_url:
        out.append("# torch's builds live on PyTorch's wheel index; everything else comes from PyPI.")
        if fmt is FixFormat.CONSTRAINTS:
            out.append(f"# pass on the command line: --extra-index-url {plan.index_url}")
        else:
            out.append(f"--extra-index-url {plan.index_url}")
        out.append("")
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
    if plan.skipped:
        out.append("# Installed but not pinned (unreadable metadata; reinstall them by name if they are needed):")
        out.extend(f"#   {item}" for item in plan.skipped)
        out.append("")
    if plan.unresolved:
        out.append("# Not resolved by this file (do these by hand):")
        for item in plan.unresolved:
            out.append(f"#   {item.code}: {item.message}")
            if item.fix:
                out.append(f"#     fix: {item.fix}")
        out.append("")
    return "\n".join(_one_line(text) for text in out).rstrip("\n") + "\n"


def _one_line(text: str) -> str:
    """A message with a newline in it must not end the comment early."""
    return " ".join(text.splitlines())
