"""Gather a Snapshot: run the probe in the target interpreter, then the host-side gatherers."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from autoglm_doctor import __version__
from autoglm_doctor.gather_options import PROBE_TIMEOUT_S, GatherOptions
from autoglm_doctor.phone import CLIENT_VARIABLES

if TYPE_CHECKING:
    from autoglm_doctor.configfile.facts import ConfigFacts
    from autoglm_doctor.probe.abi import AbiFacts
    from autoglm_doctor.probe.gpu import GpuFacts
    from autoglm_doctor.probe.libraries import LibraryFacts
    from autoglm_doctor.probe.snapshot import Snapshot

# The snapshot types (and every area's facts behind them) are imported where they are used, so
# that importing this module, and starting the probe, stays cheap (see gather()).

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
    *CLIENT_VARIABLES,
    "OPENAI_API_KEY",
    "ANDROID_SERIAL",
)


class ProbeError(RuntimeError):
    """The target interpreter could not be probed at all."""


PROBE_MIN_PYTHON = (3, 8)
"""The oldest Python the probe runs on (probe/_script.py)."""


def too_old_message(exe: str, version: str) -> str:
    """What python.version says about an interpreter older than the probe supports."""
    minimum = ".".join(map(str, PROBE_MIN_PYTHON))
    return f"{exe} is Python {version}, older than {minimum}, the oldest the doctor can inspect"


def probe_source() -> str:
    """The probe script's text (shipped inside the package)."""
    beside = Path(__file__).with_name("_script.py")  # a plain install: no importlib.resources machinery
    if beside.is_file():
        return beside.read_text(encoding="utf-8")
    from importlib import resources

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
        return os.path.abspath(candidate)  # Path("./python") is "python": never a PATH lookup
    found = shutil.which(python)
    if not found:
        raise ProbeError(f"interpreter {python!r} is not on PATH")
    return found


class RunningProbe:
    """The probe, started in the target interpreter; other facts are gathered while it runs.

    It runs through :mod:`autoglm_doctor.procs`: ``python -`` with no bytecode written into the
    target, its own process group, one deadline for the whole exchange, output capped.
    """

    def __init__(self, python: str | None, cwd: Path, timeout: float = PROBE_TIMEOUT_S) -> None:
        from autoglm_doctor import procs

        self.exe = resolve_interpreter(python)
        self.timeout = timeout
        try:
            self.child = procs.Child(
                procs.python_argv(self.exe, "-", *_probe_arguments()),
                cwd=cwd,
                env=procs.child_environment(),
                feed=probe_source().encode("utf-8"),
            )
        except OSError as exc:
            raise ProbeError(f"cannot run {self.exe}: {exc.strerror or exc}") from exc

    def kill(self) -> None:
        """Kill the probe and everything it started; reap it (bounded)."""
        self.child.kill()

    def result(self) -> dict[str, object]:
        """Wait for the probe (within its timeout) and return its JSON facts."""
        from autoglm_doctor.safeio import loads_json

        exe = self.exe
        done = self.child.finish(self.timeout)
        if done.timed_out:
            raise ProbeError(f"{exe} did not answer the probe within {self.timeout:g} s")
        if done.truncated:
            raise ProbeError(f"{exe} printed more than the probe's answer may be; it was stopped")
        stdout = done.stdout.decode("utf-8", "replace")
        stderr = done.stderr.decode("utf-8", "replace")
        code = done.returncode
        if code != 0:
            if (old := self._too_old()) is not None:
                raise ProbeError(too_old_message(exe, old))
            last = (stderr.strip().splitlines() or [f"exit status {code}"])[-1]
            if code is not None and code < 0:
                last = f"killed by signal {-code} at start-up ({last})"
            raise ProbeError(f"{exe} failed to run the probe: {last}")
        try:
            data = loads_json(stdout)
        except json.JSONDecodeError as exc:
            raise ProbeError(f"{exe} printed something other than the probe's JSON: {stdout[:200]!r}") from exc
        except ValueError as exc:  # nested too deeply, a number too long to read
            raise ProbeError(f"{exe} answered the probe with JSON that cannot be read: {exc}") from exc
        if not isinstance(data, dict):
            raise ProbeError(f"{exe} answered the probe with a {type(data).__name__}")
        if "too_old" in data:
            raise ProbeError(too_old_message(exe, str(data["too_old"])))
        return data

    def _too_old(self) -> str | None:
        """After a failed probe: the interpreter's version when it is older than the probe supports.

        The probe may not even compile on a Python 2 (its syntax is 3.8's), so the version is asked
        with the one expression every Python runs.
        """
        from autoglm_doctor import procs

        try:
            asked = procs.run(
                procs.python_argv(self.exe, "-c", "import sys; print('%d.%d.%d' % tuple(sys.version_info[:3]))"),
                timeout=self.timeout,
                env=procs.child_environment(),
                cap=4096,
            )
        except OSError:
            return None
        version = asked.stdout.decode("utf-8", "replace").strip()
        parts = version.split(".")
        if asked.returncode != 0 or len(parts) != 3 or not all(p.isdigit() for p in parts):
            return None
        return version if (int(parts[0]), int(parts[1])) < PROBE_MIN_PYTHON else None


def _probe_arguments() -> list[str]:
    """What the probe is asked beyond its facts: on Linux, the shared objects that link torch (packages.abi)."""
    if not sys.platform.startswith("linux"):
        return []
    from autoglm_doctor.probe.sonames import LINKS

    return ["--links", LINKS]


def run_probe(python: str | None, cwd: Path, timeout: float = PROBE_TIMEOUT_S) -> dict[str, object]:
    """Run the stdlib-only probe in the target interpreter and return its JSON facts."""
    return RunningProbe(python, cwd, timeout).result()


def environment() -> dict[str, str]:
    """Relevant environment variables, secret values replaced by a marker."""
    from autoglm_doctor.redact import redact_env_value

    out = {}
    for name in ENV_VARS:
        value = os.environ.get(name)
        if value is None:
            continue
        out[name] = redact_env_value(name, value)
    return out


def snapshot_from_probe(data: dict[str, object], env: dict[str, str]) -> Snapshot:
    """Type the probe's raw JSON."""
    from autoglm_doctor.probe.libraries import LibraryFacts
    from autoglm_doctor.probe.snapshot import Distribution, PythonFacts, Shadow, Snapshot, TorchBuild
    from autoglm_doctor.serde import SerdeError, from_data

    try:
        python = from_data(PythonFacts, data["python"])
        dists = from_data(list[Distribution], data.get("distributions", []))
        torch = from_data(TorchBuild | None, data.get("torch"))  # type: ignore[arg-type]
        shadows = from_data(list[Shadow], data.get("shadows", []))
        errors = from_data(list[str], data.get("probe_errors", []))
        libraries = from_data(LibraryFacts, data.get("libraries") or {})
    except (KeyError, SerdeError) as exc:
        raise ProbeError(f"the probe's answer is malformed: {exc}") from exc
    return Snapshot(
        python=python,
        distributions=dists,
        torch=torch,
        shadows=shadows,
        probe_errors=errors,
        libraries=libraries,
        env=env,
        tool_version=__version__,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


@dataclass
class TargetMemo:
    """The target's facts from a run's first gather, reused for the next files of the same run.

    Pre-commit passes every matching file to one ``check``: probing the same interpreter (and asking
    NVML) again for each of 1,000 files took 164 s; with the memo the target is probed once per run.
    Only what depends on the file (its config, the model it names, the disk under that model) is
    gathered again.
    """

    probed: Snapshot | None = None
    """The probe's snapshot (libraries not yet narrowed to one model), once the first probe answered."""
    failure: str | None = None
    """Why the target could not be probed, once that is known (then no file probes it again)."""
    gpu: GpuFacts | None = None
    """The GPU facts of the first gather."""

    @property
    def known(self) -> bool:
        """The first gather has finished: the target's facts (or why there are none) are here."""
        return self.probed is not None or self.failure is not None


def gather(options: GatherOptions, memo: TargetMemo | None = None) -> Snapshot:
    """Gather every fact once; the host-side areas are gathered while the probe runs.

    Never raises for a broken target: an interpreter that cannot be probed becomes a snapshot
    whose ``python.version`` is empty and whose ``probe_errors`` say why. With a ``memo`` that a
    previous gather of the same run filled, the target is not probed again.
    """
    if memo is not None and memo.known:
        host_side = add_host_facts(unprobed_snapshot(""), options, memo.gpu)
        if memo.probed is None:
            return dataclasses.replace(host_side, probe_errors=[memo.failure or ""])
        return _combined(memo.probed, host_side)
    try:
        probe: RunningProbe | None = RunningProbe(options.python, options.cwd, options.timeout)
    except ProbeError as exc:
        probe, failure = None, str(exc)
    # The probe is fed and awaited in a thread of its own (it mostly waits, without the GIL),
    # so that it runs from the start while this thread gathers the host-side facts.
    answer: list[dict[str, object] | BaseException] = []
    waiter = None
    if probe is not None:
        waiter = threading.Thread(target=_await_probe, args=(probe, answer), name="probe", daemon=True)
        waiter.start()
    try:
        host_side = add_host_facts(unprobed_snapshot(""), options)
    except BaseException:
        if probe is not None:
            probe.kill()
        raise
    finally:
        if waiter is not None:
            waiter.join()
    try:
        if probe is None:
            raise ProbeError(failure)
        facts = answer[0]
        if isinstance(facts, BaseException):
            raise facts
        snap = snapshot_from_probe(facts, host_side.env)
        # the ELF facts and the engines' registries depend on the target only: read once, kept with the
        # probe's facts for later files
        snap = dataclasses.replace(
            snap, abi=_abi_facts(snap, facts.get("shared_objects")), libraries=_engine_registries(snap)
        )
    except ProbeError as exc:
        if memo is not None:
            memo.failure, memo.gpu = str(exc), host_side.gpu
        return dataclasses.replace(host_side, probe_errors=[str(exc)])
    if memo is not None:
        memo.probed, memo.gpu = snap, host_side.gpu
    return _combined(snap, host_side)


def _combined(snap: Snapshot, host_side: Snapshot) -> Snapshot:
    """The probe's facts with the host side's: the transformers registries narrowed to the model's type."""
    libraries = snap.libraries
    if libraries is not None and libraries.transformers is not None:
        model_type = host_side.model.model_type if host_side.model is not None else ""
        libraries = dataclasses.replace(libraries, transformers=libraries.transformers.for_model(model_type))
    snap = dataclasses.replace(
        snap,
        config=host_side.config,
        gpu=host_side.gpu,
        host=host_side.host,
        model=host_side.model,
        libraries=libraries,
    )
    from autoglm_doctor.engines import target  # the launch command's engine, read from its files

    return dataclasses.replace(snap, engines=target.gather(snap))


def _engine_registries(snap: Snapshot) -> LibraryFacts | None:
    """The probe's library facts with each installed engine's registry, read by the engine's module."""
    from autoglm_doctor.engines import target

    if snap.libraries is None:
        return None
    return dataclasses.replace(snap.libraries, engines=target.registries(snap))


def _abi_facts(snap: Snapshot, listed: object) -> AbiFacts | None:
    """The ELF facts of the target's compiled extensions, from the shared objects the probe listed."""
    from autoglm_doctor.probe import abi
    from autoglm_doctor.serde import SerdeError, from_data

    try:
        listings = from_data(list[abi.Listing] | None, listed)  # type: ignore[arg-type]
    except SerdeError as exc:
        raise ProbeError(f"the probe's answer is malformed: {exc}") from exc
    installed = [abi.Installed(d.name, d.version, d.location, d.top_level, d.path_index) for d in snap.distributions]
    torch = snap.torch.path if snap.torch is not None else ""
    return abi.gather(snap.python.platform, torch, installed, os.environ.get("LD_LIBRARY_PATH", ""), listings)


def _await_probe(probe: RunningProbe, answer: list[dict[str, object] | BaseException]) -> None:
    """Thread body: the probe's facts, or what it raised (re-raised by the gathering thread)."""
    try:
        answer.append(probe.result())
    except BaseException as exc:  # noqa: BLE001 - handed to gather(), which raises it
        answer.append(exc)


def add_host_facts(snap: Snapshot, options: GatherOptions, gpu_facts: GpuFacts | None = None) -> Snapshot:
    """Add the host-side areas (config first: the model location may come from it); ``gpu_facts`` when known."""
    from autoglm_doctor import redact
    from autoglm_doctor.configfile import load as config_load
    from autoglm_doctor.probe import gpu, host, weights

    config = config_load.gather(options)
    if config is not None:  # reports mask these values wherever a check quotes them
        redact.register_secret_values(redact.secret_values_in(config.data))
    snap = dataclasses.replace(snap, config=config)
    model = weights.gather(options, config)
    host_facts = host.gather(options, model)  # disk facts cover the model folder wherever it was found
    if config is not None and config.engine:
        host_facts = dataclasses.replace(host_facts, ports_in_use=_launch_ports_in_use(config))
    gpu_facts = gpu_facts if gpu_facts is not None else gpu.gather(options)
    return dataclasses.replace(snap, gpu=gpu_facts, host=host_facts, model=model)


def _launch_ports_in_use(config: ConfigFacts) -> list[int]:
    """The launch command's port, when something on this host already listens on it."""
    from autoglm_doctor.configfile.launch import port_of, setting
    from autoglm_doctor.probe.host import port_taken

    port = port_of(config.data, config.engine)
    bound = setting(config.data, config.engine, "host")
    address = str(bound[1]) if bound is not None else ""
    return [port] if port is not None and port_taken(port, address) else []


def unprobed_snapshot(reason: str) -> Snapshot:
    """A snapshot for a target that could not be probed: checks that need the interpreter skip."""
    from autoglm_doctor.probe.snapshot import PythonFacts, Snapshot

    return Snapshot(
        python=PythonFacts(version="", implementation="", executable="", prefix="", base_prefix="", env_kind=""),
        probe_errors=[reason] if reason else [],
        env=environment(),
        tool_version=__version__,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
