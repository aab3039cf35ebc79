"""What a check may read besides the Snapshot: the pack and the run's options."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoglm_doctor.packs import Pack

if TYPE_CHECKING:
    from autoglm_doctor.model import CheckResult
    from autoglm_doctor.probe.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class Options:
    """Command-line options that change what checks do (not what facts are gathered)."""

    smoke: bool = True
    """Run the smoke test."""
    device: str | None = None
    """``--device``: overrides the config's device."""
    smoke_timeout: float = 600.0
    """Seconds the smoke test may take."""
    allow_remote_code: bool = False
    """Let the smoke test run model code from the model folder."""
    request: Path | None = None
    """Sample request file for config.request."""
    endpoint: str | None = None
    """Served OpenAI-compatible endpoint for service.* checks."""
    endpoint_timeout: float | None = None
    """``--endpoint-timeout``: seconds each served check may take (None: the pack's ``service.timeout``)."""
    endpoint_concurrency: int = 0
    """Concurrent requests for the load probe (0: off)."""
    verify_hashes: bool = False
    """Hash every weight file."""
    python: str | None = None
    """The target interpreter (for checks that must run it, such as the smoke test)."""
    from_snapshot: bool = False
    """Facts come from a saved snapshot: checks that need the live machine skip."""
    doctor_tool_venv: str = ""
    """The doctor's own pipx/uv tool venv, when it became the target by default (python.venv warns)."""
    no_env: bool = False
    """``--no-env``: unset ${VAR} references are warnings (commit time: the deployment's variables are elsewhere)."""
    request_lint: bool = False
    """The run lints a request JSON given as a file to ``check`` (pre-commit): no config is looked for."""
    progress: Callable[[str], None] | None = None
    """Where a long check reports its phase (the live footer of a terminal run); None: nowhere."""


@dataclass(frozen=True, slots=True)
class CheckContext:
    """Everything besides the Snapshot that a check may read."""

    pack: Pack
    """The check pack in force."""
    options: Options
    """The run's options."""
    earlier: dict[str, CheckResult] = field(default_factory=dict)
    """Results of the checks that already ran in this run, by id (the runner fills it): a check that
    depends on another's outcome (service.agent-step on service.endpoint) says so instead of repeating it."""


# need name -> (is it present?, the reason given when it is not)
NEEDS: dict[str, tuple[Callable[[Snapshot, CheckContext], bool], str]] = {
    "python": (lambda s, c: bool(s.python.version), "the target interpreter could not be probed (see python.version)"),
    "torch": (lambda s, c: s.torch is not None, "torch is not installed in the target environment"),
    "config": (
        lambda s, c: s.config is not None and bool(s.config.path),
        "no deployment config (pass --config FILE, set AUTOGLM_CONFIG, or add ./autoglm.yaml)",
    ),
    "model": (
        lambda s, c: s.model is not None and bool(s.model.path),
        "no model located (pass --model PATH, set the config's model path or MODEL_WEIGHT_PATH)",
    ),
    "model-given": (
        lambda s, c: s.model is not None and bool(s.model.given or s.model.path),
        "no model named (pass --model PATH, set the config's model path or MODEL_WEIGHT_PATH)",
    ),
    "model-folder": (
        lambda s, c: s.model is not None and s.model.exists,
        "the model folder is not usable (see weights.path)",
    ),
    "gpu": (lambda s, c: s.gpu is not None, "GPU facts were not gathered"),
    "live": (
        lambda s, c: not c.options.from_snapshot,
        "evaluating a saved snapshot: this check needs the live machine",
    ),
}


SERVER_NEEDS = {
    "torch": "torch is not installed in the target environment (vLLM and SGLang bring their own: install the engine)",
    "config": "no launch command (pass --config serve.sh: the file with the vllm serve / sglang.launch_server line)",
    "model": "no model located (the launch command's --model or --model-path names it: pass --config serve.sh)",
    "model-given": "no model named (the launch command's --model or --model-path names it: pass --config serve.sh)",
}
"""What a need means on the model server: a skip says what it needs in terms of that role."""


def need_reason(need: str, ctx: CheckContext) -> str:
    """What is missing when ``need`` is not met, in terms of the pack's role (the server's launch command)."""
    entry = NEEDS.get(need)
    if entry is None:
        return f"unknown need {need!r}"
    if need == "config" and ctx.options.request_lint and ctx.options.request is not None:
        # the file is a request, not a config: an existing ./autoglm.yaml is not what this run reads
        return (
            f"{ctx.options.request} is a request JSON, linted by config.request; no config is read for it "
            "(name the config as another file, e.g. `check autoglm.yaml request.json`, to lint it too)"
        )
    if "open-autoglm-server" in ctx.pack.names and "open-autoglm" not in ctx.pack.names:
        return SERVER_NEEDS.get(need, entry[1])
    return entry[1]


def missing_need(needs: tuple[str, ...], snap: Snapshot, ctx: CheckContext) -> str | None:
    """The reason a check cannot run here, or None when every need is met."""
    for need in needs:
        entry = NEEDS.get(need)
        if entry is None or not entry[0](snap, ctx):
            if need == "torch" and (requirer := _requires_torch(snap)):
                return f"torch is not installed: {requirer} was installed without its requirements"
            return need_reason(need, ctx)
    return None


_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _requires_torch(snap: Snapshot) -> str:
    """``vllm 0.12.0``: an installed distribution whose base requirements name torch, or empty.

    Such a distribution was installed without its requirements (an engine with ``--no-deps``); with none,
    a skip says how torch usually comes instead.
    """
    for dist in snap.distributions:
        for line in dist.requires:
            name = _NAME.match(line)
            if name and name.group(1).lower() == "torch" and "extra" not in line.partition(";")[2]:
                return f"{dist.name} {dist.version}"
    return ""


def config_value(snap: Snapshot, key: str) -> Any:
    """A config value by dotted key, also found one section down (``model.device_map``); None if unset."""
    if snap.config is None:
        return None
    data: Any = snap.config.data
    parts = key.split(".")
    node = data
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            node = None
            break
        node = node[part]
    if node is not None or len(parts) > 1:
        return node
    for value in data.values() if isinstance(data, dict) else ():
        if isinstance(value, dict) and key in value:
            return value[key]
    return None
