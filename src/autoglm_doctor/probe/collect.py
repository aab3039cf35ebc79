"""Gather a Snapshot: run the probe in the target interpreter, then the host-side gatherers."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from autoglm_doctor import __version__
from autoglm_doctor.probe.snapshot import Distribution, PythonFacts, Shadow, Snapshot, TorchBuild
from autoglm_doctor.serde import SerdeError, from_data

PROBE_TIMEOUT_S = 30.0
"""A probe that has not answered by then is stuck (a hung NFS mount, a wedged interpreter)."""

SECRET_NAME = re.compile(r"token|key|secret|passw|credential|auth", re.IGNORECASE)
REDACTED = "<redacted>"

# Variables the checks read. Values of secret-looking names are never stored.
ENV_VARS = (
    "AUTOGLM_CONFIG",
    "MODEL_WEIGHT_PATH",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "CUDA_VERSION",
    "CUDA_HOME",
    "LD_LIBRARY_PATH",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "CONDA_DEFAULT_ENV",
    "HF_HOME",
    "HF_HUB_CACHE",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_CACHE",
    "TRANSFORMERS_OFFLINE",
    "HF_TOKEN",
    "PHONE_AGENT_BASE_URL",
    "PHONE_AGENT_MODEL",
    "PHONE_AGENT_API_KEY",
    "PHONE_AGENT_DEVICE_ID",
    "PHONE_AGENT_DEVICE_TYPE",
    "OPENAI_API_KEY",
)


class ProbeError(RuntimeError):
    """The target interpreter could not be probed at all."""


@dataclass(frozen=True)
class GatherOptions:
    """What to gather facts about."""

    python: str | None = None
    """Target interpreter; None means the doctor's own."""
    config: Path | None = None
    """Deployment config file, when one was given or discovered."""
    model: str | None = None
    """Model folder or hub id, when given."""
    cwd: Path = field(default_factory=Path.cwd)
    """Working directory the deployment runs from."""
    timeout: float = PROBE_TIMEOUT_S
    """Seconds the probe may take."""
    verify_hashes: bool = False
    """Hash every weight file (slow; off by default)."""


def probe_source() -> str:
    """The probe script's text (shipped inside the package)."""
    return resources.files("autoglm_doctor.probe").joinpath("_script.py").read_text(encoding="utf-8")


def resolve_interpreter(python: str | None) -> str:
    """Absolute path of the target interpreter; raises ProbeError when there is none."""
    if python is None:
        return sys.executable
    candidate = Path(python).expanduser()
    if candidate.is_dir():
        for sub in ("bin/python", "Scripts/python.exe", "bin/python3"):
            if (candidate / sub).exists():
                return str(candidate / sub)
        raise ProbeError(f"{python} is a folder without bin/python (pass the interpreter or the venv folder)")
    if os.sep in python or (os.altsep and os.altsep in python):
        if not candidate.exists():
            raise ProbeError(f"interpreter {python} does not exist")
        return str(candidate)
    found = shutil.which(python)
    if not found:
        raise ProbeError(f"interpreter {python!r} is not on PATH")
    return found


def run_probe(python: str | None, cwd: Path, timeout: float = PROBE_TIMEOUT_S) -> dict[str, object]:
    """Run the stdlib-only probe in the target interpreter and return its JSON facts."""
    exe = resolve_interpreter(python)
    try:
        proc = subprocess.run(  # noqa: S603 - the interpreter is the user's own target
            [exe, "-"],
            input=probe_source(),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            encoding="utf-8",
            errors="replace",
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ProbeError(f"{exe} did not answer the probe within {timeout:g} s") from exc
    except OSError as exc:
        raise ProbeError(f"cannot run {exe}: {exc.strerror or exc}") from exc
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        if proc.returncode < 0:
            last = f"killed by signal {-proc.returncode} at start-up ({last})"
        raise ProbeError(f"{exe} failed to run the probe: {last}")
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise ProbeError(f"{exe} printed something other than the probe's JSON: {proc.stdout[:200]!r}") from exc
    if not isinstance(data, dict):
        raise ProbeError(f"{exe} answered the probe with a {type(data).__name__}")
    return data


def environment() -> dict[str, str]:
    """Relevant environment variables, secret values replaced by a marker."""
    out = {}
    for name in ENV_VARS:
        value = os.environ.get(name)
        if value is None:
            continue
        out[name] = REDACTED if SECRET_NAME.search(name) and value else value
    return out


def snapshot_from_probe(data: dict[str, object], env: dict[str, str]) -> Snapshot:
    """Type the probe's raw JSON."""
    try:
        python = from_data(PythonFacts, data["python"])
        dists = from_data(list[Distribution], data.get("distributions", []))
        torch = from_data(TorchBuild | None, data.get("torch"))  # type: ignore[arg-type]
        shadows = from_data(list[Shadow], data.get("shadows", []))
        errors = from_data(list[str], data.get("probe_errors", []))
    except (KeyError, SerdeError) as exc:
        raise ProbeError(f"the probe's answer is malformed: {exc}") from exc
    return Snapshot(
        python=python,
        distributions=dists,
        torch=torch,
        shadows=shadows,
        probe_errors=errors,
        env=env,
        tool_version=__version__,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def gather(options: GatherOptions) -> Snapshot:
    """Gather every fact once: the interpreter probe first, then the host-side areas."""
    data = run_probe(options.python, options.cwd, options.timeout)
    snap = snapshot_from_probe(data, environment())
    return add_host_facts(snap, options)


def add_host_facts(snap: Snapshot, options: GatherOptions) -> Snapshot:
    """Add the host-side areas (config first: the model location may come from it)."""
    from autoglm_doctor.configfile import facts as config_facts
    from autoglm_doctor.probe import gpu, host, weights

    config = config_facts.gather(options)
    snap = dataclasses.replace(snap, config=config)
    return dataclasses.replace(
        snap,
        gpu=gpu.gather(options),
        host=host.gather(options),
        model=weights.gather(options, config),
    )


def unprobed_snapshot(reason: str) -> Snapshot:
    """A snapshot for a target that could not be probed: checks that need the interpreter skip."""
    return Snapshot(
        python=PythonFacts(version="", implementation="", executable="", prefix="", base_prefix="", env_kind=""),
        probe_errors=[reason],
        env=environment(),
        tool_version=__version__,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
