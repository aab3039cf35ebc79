"""The two ways making the fix file can fail: for a reason, or because constraints conflict."""

from __future__ import annotations


class FixError(Exception):
    """The fix cannot be made or written; the message says why, for a person."""


class Unsatisfiable(FixError):
    """No set of versions satisfies every constraint; ``first`` and ``second`` cannot both hold."""

    def __init__(self, first: str, second: str, detail: str = "") -> None:
        self.first = first
        self.second = second
        self.detail = detail
        super().__init__(
            f"no requirements file satisfies every constraint: {first} and {second} cannot both hold"
            + (f" ({detail})" if detail else "")
        )
