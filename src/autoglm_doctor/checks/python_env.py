"""python.version and python.venv: the interpreter itself."""

from __future__ import annotations

from collections.abc import Iterator

from packaging.specifiers import SpecifierSet

from autoglm_doctor.checks._util import parse_version, pip_install, short_version
from autoglm_doctor.context import CheckContext
from autoglm_doctor.knowledge import confidence_note
from autoglm_doctor.knowledge.packages import torch_release, torch_releases
from autoglm_doctor.model import Finding, error, info, warning
from autoglm_doctor.probe.snapshot import Snapshot
from autoglm_doctor.registry import check

_CANDIDATE_PYTHONS = ("3.12", "3.11", "3.10", "3.9", "3.8", "3.13", "3.14")


def _suggest_python(spec: SpecifierSet, recommended: str) -> str:
    if recommended:
        return recommended
    return next((v for v in _CANDIDATE_PYTHONS if spec.contains(v + ".0")), "a supported Python")


def _venv_command(python: str) -> str:
    return f"uv venv --python {python} .venv   (or: python{python} -m venv .venv)"


@check(
    "python.version",
    title="Python version",
    why=(
        "torch and transformers publish wheels for a range of Python versions only; outside it pip "
        "either finds no wheel or builds from source, and a deployment may not import at all."
    ),
    fix="Create the environment with a Python inside the pack's range that the installed torch supports.",
)
def python_version(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """The interpreter's version lies in the pack's range and in the range the installed torch supports."""
    if not snap.python.version:
        cause = snap.probe_errors[0] if snap.probe_errors else "no facts about the interpreter"
        if " the oldest the doctor can inspect" in cause:  # probe.collect.too_old_message
            needs = f"; the {ctx.pack.name} pack needs Python {ctx.pack.python}" if ctx.pack.python else ""
            wanted = ctx.pack.python or ">=3.8"
            yield error(
                "python.too-old",
                f"{cause}{needs}",
                observed=cause.split(" is Python ", 1)[1].split(",", 1)[0],
                expected=wanted,
                fix=_venv_command(_suggest_python(SpecifierSet(wanted), ctx.pack.python_recommended)),
            )
            return
        yield error(
            "python.probe-failed",
            f"the target interpreter could not be inspected: {cause}",
            fix="pass a working interpreter with --python (a path to bin/python or a venv folder)",
        )
        return
    version = parse_version(snap.python.version)
    if version is None:
        yield error("python.unparseable", f"cannot read the Python version {snap.python.version!r}")
        return
    pack = ctx.pack
    if pack.python and not SpecifierSet(pack.python).contains(version, prereleases=True):
        suggested = _suggest_python(SpecifierSet(pack.python), pack.python_recommended)
        yield error(
            "python.outside-pack-range",
            f"Python {version} is outside the range the {pack.name} pack supports ({pack.python})",
            observed=str(version),
            expected=pack.python,
            fix=_venv_command(suggested),
        )
    elif pack.python_recommended:
        rec = parse_version(pack.python_recommended)
        if rec is not None and short_version(version) != short_version(rec):
            yield info(
                "python.not-recommended",
                f"Python {short_version(version)} is supported; the guide is tested with {short_version(rec)}",
                observed=str(version),
                expected=short_version(rec),
            )
    if snap.torch is None:
        return
    torch_version = parse_version(snap.torch.version)
    release = torch_release(snap.torch.version)
    if torch_version is None or release is None:
        yield info(
            "python.torch-unknown",
            f"torch {snap.torch.version} is not in the knowledge base; its Python support was not checked",
        )
        return
    if not release.python.contains(version, prereleases=True):
        supported = [r for r in torch_releases() if r.python.contains(version, prereleases=True)]
        newest = supported[-1].line if supported else None
        fix = pip_install(snap, f"torch=={newest}.*") if newest else _venv_command(_suggest_python(release.python, ""))
        yield error(
            "python.torch-unsupported",
            f"torch {snap.torch.version} ships no wheels for Python {short_version(version)} "
            f"(torch {release.line} supports Python {release.python}): it will not import or was built by hand"
            + confidence_note(release.confidence),
            observed=f"Python {version} with torch {snap.torch.version}",
            expected=f"Python {release.python} for torch {release.line}",
            fix=fix,
        )


@check(
    "python.venv",
    needs=("python",),
    title="Isolated environment",
    why=(
        "A deployment installed into the system interpreter shares packages with the OS and every other "
        "tool: an upgrade elsewhere silently changes torch or numpy under the service."
    ),
    fix="Create a virtual environment (venv, uv or conda) for the deployment and install into it.",
)
def python_venv(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """The target runs in an isolated environment (venv, virtualenv, uv or conda), not the system interpreter."""
    py = snap.python
    if ctx.options.doctor_tool_venv:
        yield warning(
            "python.doctor-venv",
            f"the target is the doctor's own tool venv {ctx.options.doctor_tool_venv}, not your deployment's "
            "environment: it holds autoglm-doctor and nothing the model needs",
            observed=py.executable or ctx.options.doctor_tool_venv,
            expected="the deployment's interpreter",
            fix="autoglm-doctor check --python /path/to/deployment/.venv/bin/python",
        )
    if py.env_kind == "system":
        managed = " (it is marked EXTERNALLY-MANAGED: pip refuses to install into it)" if py.externally_managed else ""
        yield warning(
            "python.system-interpreter",
            f"{py.executable} is the system interpreter, not an isolated environment{managed}",
            observed=f"system interpreter at {py.prefix}",
            expected="a venv, uv or conda environment",
            fix=f"{py.executable} -m venv .venv && .venv/bin/python -m pip install -r requirements.txt",
        )
        return
    if py.env_kind == "conda" and py.env_name == "base":
        yield warning(
            "python.conda-base",
            "this is conda's base environment; installing a deployment there breaks conda itself on upgrade",
            observed="conda env: base",
            expected="a dedicated conda environment",
            fix=f"conda create -n autoglm python={py.version.rsplit('.', 1)[0]} && conda activate autoglm",
        )
    if py.system_site_packages:
        yield warning(
            "python.system-site-packages",
            f"the environment at {py.prefix} was created with --system-site-packages: "
            "packages of the base interpreter leak into it",
            observed="include-system-site-packages = true",
            expected="include-system-site-packages = false",
            fix=f"set include-system-site-packages = false in {py.prefix}/pyvenv.cfg, or recreate the venv without it",
        )
    if py.user_site:
        yield warning(
            "python.user-site",
            f"the user site-packages {py.user_site} is on the search path: "
            "`pip install --user` packages can override the environment's",
            observed=py.user_site,
            expected="no user site-packages",
            fix="export PYTHONNOUSERSITE=1 in the service's environment",
        )
