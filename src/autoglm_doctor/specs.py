"""Version-range arithmetic: can two ranges both hold, is a range bounded above (the torch chooser and --fix)."""

from __future__ import annotations

from packaging.specifiers import InvalidSpecifier, Specifier, SpecifierSet
from packaging.version import InvalidVersion, Version

_HUGE = Version("999999")
_UPPER_OPERATORS = ("<", "<=", "==", "~=", "===")


def _probes(spec: Specifier) -> list[Version]:
    """Versions on and just above the boundary of one specifier."""
    text = spec.version.removesuffix(".*")
    try:
        version = Version(text)
    except InvalidVersion:
        return []
    release = ".".join(str(part) for part in version.release)
    above = Version(f"{release}.0.0.0.1")  # greater than the boundary, smaller than any real next release
    return [version, above]


def common_version(*specs: SpecifierSet) -> Version | None:
    """A version every range in ``specs`` allows (prereleases too), or None when they cannot all hold.

    Tests the boundaries of every range (and a point just above each), which decides the question
    for the ranges requirement files use (``<``, ``<=``, ``>``, ``>=``, ``==``, ``==X.*``, ``~=``).
    """
    candidates: list[Version] = [Version("0"), _HUGE]
    for spec_set in specs:
        for spec in spec_set:
            candidates.extend(_probes(spec))
    for version in sorted(set(candidates)):
        if all(s.contains(version, prereleases=True) for s in specs):
            return version
    return None


def bounded_above(spec: SpecifierSet) -> bool:
    """The range caps the version (``<2``, ``==1.4``, ``~=0.13``): the dependency moves with its dependent."""
    return any(s.operator in _UPPER_OPERATORS for s in spec)


def parse_spec(text: str) -> SpecifierSet | None:
    """A specifier set, or None when the text is not one."""
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        return None


def exact(version: str) -> SpecifierSet:
    """The range that allows exactly ``version`` (local tags included: ``==2.1.2+cu121``)."""
    return SpecifierSet(f"=={version}")
