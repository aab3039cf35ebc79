"""What every reporter is told: the format and how to render it."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Format(str, enum.Enum):
    """Output formats of ``check``."""

    RICH = "rich"
    JSON = "json"
    JUNIT = "junit"
    MARKDOWN = "markdown"
    GITHUB = "github"
    SARIF = "sarif"


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """How to render."""

    color: bool = False
    """Use colour (rich only); off for non-terminals and under NO_COLOR."""
    width: int = 100
    """Line width for the rich report."""
    verbose: bool = False
    """Show durations, info findings and tracebacks."""
    strict: bool = False
    """Warnings count as failures in the overall status."""
