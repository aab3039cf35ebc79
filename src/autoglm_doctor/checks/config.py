"""config.*: syntax, env vars, values and sample requests of the deployment config (config area)."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from autoglm_doctor import engines
from autoglm_doctor.checks._served import (
    MIG_ONE_DEVICE,
    TensorParallel,
    gpus_for_tensor_parallel,
    kv_heads_split,
    tensor_parallel_sizes,
    vision_heads,
)
from autoglm_doctor.checks._util import installed_version, pip_install
from autoglm_doctor.configfile.facts import DOCTOR_KEYS, ConfigFacts, Diagnostic
from autoglm_doctor.configfile.launch import TOKEN_COUNT_FLAGS, port_of, setting, token_count
from autoglm_doctor.configfile.rules import (
    LaunchRules,
    RequestPolicy,
    SecretPolicy,
    ValueRule,
    check_value,
    show,
)
from autoglm_doctor.context import CheckContext, need_reason
from autoglm_doctor.engines.launch import LaunchRecord, LaunchValue
from autoglm_doctor.engines.launch import read as read_record
from autoglm_doctor.model import Finding, Location, Severity, Skip, error, info, warning
from autoglm_doctor.packs import Condition
from autoglm_doctor.probe.snapshot import Snapshot, canonical_name
from autoglm_doctor.probe.weights import ModelFacts
from autoglm_doctor.redact import may_be_secret_variable
from autoglm_doctor.registry import check
from autoglm_doctor.safeio import read_bytes

_SEVERITY = {"error": Severity.ERROR, "warning": Severity.WARNING, "info": Severity.INFO}
_GIB = 1024**3
REQUEST_MAX_BYTES = 64 * 1024 * 1024
"""A sample request larger than this is not read (a sample, not a dataset)."""


# --------------------------------------------------------------------------- helpers


def _where(facts: ConfigFacts, key: str | None = None, line: int | None = None, column: int | None = None) -> Location:
    if key is not None and line is None:
        line, column = facts.position(key)
    return Location(facts.path, line, column)


def _start(facts: ConfigFacts) -> Location:
    """Where settings begin (for findings about something missing): the first key's line."""
    lines = [pos[0] for pos in facts.positions.values() if pos]
    return Location(facts.path, min(lines), 1) if lines else Location(facts.path, 1, 1)


def _from_diagnostic(facts: ConfigFacts, d: Diagnostic) -> Finding:
    return Finding(
        severity=_SEVERITY.get(d.severity, Severity.ERROR),
        code=d.code,
        message=d.message,
        fix=d.fix or None,
        location=Location(facts.path, d.line, d.column),
        observed=d.excerpt or None,
        expected=d.expected or None,
    )


def lookup(data: dict[str, Any], key: str, *, flag: bool = False) -> tuple[str, Any] | None:
    """(dotted path where it was found, value) for ``key``, also one section down; None when absent.

    With ``flag`` the dash and underscore spellings of a launch flag are both tried.
    """
    names = [key]
    if flag:
        names += [key.replace("-", "_"), key.replace("_", "-")]
    for name in names:
        node: Any = data
        parts = name.split(".")
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            return name, node
    for name in names:
        if "." in name:
            continue
        for section, value in data.items():
            if isinstance(value, dict) and name in value:
                return f"{section}.{name}", value[name]
    return None


def _unparsed_skip(facts: ConfigFacts | None, ctx: CheckContext) -> Skip:
    if facts is not None and facts.path:
        return Skip("the config could not be read or parsed (see config.syntax)")
    return Skip(need_reason("config", ctx))


# --------------------------------------------------------------------------- config.syntax


@check(
    "config.syntax",
    title="Config file parses",
    needs=("config",),
    why="A config that does not parse (a tab in YAML, a trailing comma in JSON) stops the service at start-up; "
    "a duplicate key silently replaces the first value; an unsafe YAML tag runs code when loaded unsafely.",
    fix="Edit the file at the line and column shown; each finding says what to write instead.",
)
def config_syntax(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """The config exists, is UTF-8, parses (YAML, JSON, TOML or launch flags), has no duplicate keys or unsafe tags."""
    facts = snap.config
    assert facts is not None  # noqa: S101 - guaranteed by needs=("config",)
    for d in facts.diagnostics:
        if d.check == "config.syntax":
            yield _from_diagnostic(facts, d)


# --------------------------------------------------------------------------- config.env


@check(
    "config.env",
    title="Environment references resolve",
    why="An unset ${VAR} leaves the literal text in the value (a model path of '${MODEL_WEIGHT_PATH}'); "
    "a client without PHONE_AGENT_* settings talks to the wrong server.",
    fix="Export the variables named, or give the reference a default with ${VAR:-value}.",
)
def config_env(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """Every ${VAR} in the config is well formed and set (or has a default); the pack's env variables are valid."""
    facts = snap.config
    rules = ctx.pack.rules.env  # typed when the pack loaded
    if (facts is None or not facts.path) and not rules:
        raise Skip(need_reason("config", ctx))
    unset_is_fine = ctx.options.no_env
    if facts is not None:
        for d in facts.diagnostics:
            if d.check == "config.env":
                finding = _from_diagnostic(facts, d)
                if unset_is_fine and finding.code == "config.env-unset":
                    finding = _commit_time(finding)
                yield finding
    for rule in rules:
        for finding in _env_rule(snap, rule):
            yield _commit_time(finding) if unset_is_fine and finding.code == "config.env-required" else finding


def _commit_time(finding: Finding) -> Finding:
    """``--no-env`` (pre-commit): the variable is set where the service runs, not on the committer's machine."""
    return dataclasses.replace(
        finding,
        severity=Severity.WARNING,
        message=finding.message + " (--no-env: make sure it is set where the service runs)",
    )


def _env_rule(snap: Snapshot, rule: ValueRule) -> Iterator[Finding]:
    name = rule.key
    value = snap.env.get(name)
    because = f": {rule.reason}" if rule.reason else ""
    if value is None or value == "":
        if rule.default and not rule.required:
            yield info(
                "config.env-default",
                f"{name} is not set: the client uses its default {rule.default}{because}",
                observed="not set",
                expected=f"{name} set, or the default {rule.default}",
                fix=rule.fix or f"export {name}={rule.default}",
            )
            return
        if rule.required:
            example = f" (e.g. {show(rule.enum[0])})" if rule.enum else ""
            yield error(
                "config.env-required",
                f"environment variable {name} is not set{because}",
                observed="not set",
                expected=f"{name} set{example}",
                fix=rule.fix or f"export {name}=...{example}",
            )
        return
    if may_be_secret_variable(name):
        return  # its value is never read back (the snapshot masks it); being set is what counts
    for v in check_value(rule, value, name=name):
        code = {"config.not-allowed": "config.env-value", "config.type": "config.env-value"}.get(v.code, v.code)
        severity = Severity.ERROR if v.severity == "error" else Severity.WARNING
        yield Finding(
            severity, code, v.message, fix=f"export {name}=...  ({v.fix})", observed=value, expected=v.expected
        )
    if rule.format == "url":
        yield from _url(name, value)


def _url(name: str, value: str) -> Iterator[Finding]:
    parts = urlsplit(value.strip())
    problem = ""
    try:
        port = parts.port
    except ValueError:
        port = None
        problem = "its port is not a number between 0 and 65535"
    if not problem and parts.scheme not in ("http", "https"):
        problem = "it must start with http:// or https://"
    elif not problem and not parts.hostname:
        problem = "it has no host name"
    elif not problem and (" " in value.strip() or value != value.strip()):
        problem = "it contains spaces"
    if problem:
        yield error(
            "config.env-url",
            f"{name}={value} is not a well-formed URL: {problem}",
            observed=value,
            expected="http://HOST:PORT/v1",
            fix=f"export {name}=http://localhost:8000/v1",
        )
        return
    if not parts.path.rstrip("/").endswith("/v1"):
        host = f"{parts.hostname}:{port}" if port else str(parts.hostname)
        yield warning(
            "config.env-url",
            f"{name}={value} does not end with /v1: the OpenAI client appends /chat/completions to it, "
            "and vLLM and SGLang serve that under /v1",
            observed=value,
            expected=f"{parts.scheme}://{host}/v1",
            fix=f"export {name}={parts.scheme}://{host}/v1",
        )


# --------------------------------------------------------------------------- config.values


@check(
    "config.values",
    title="Config values are sound",
    why="Values the service accepts but that break it later: model_max_length 512 truncates prompts, device_map "
    "'auto' spreads layers over the CPU, trust_remote_code disagreeing with the model, weak signing secrets.",
    fix="Change each value as the finding says; the rules come from the check pack (docs/config.md).",
)
def config_values(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """Config values obey the pack's rules and agree with the model, the installed packages and the GPU."""
    facts = snap.config
    parsed = facts is not None and facts.parsed
    vllm = installed_version(snap, "vllm") if snap.python.version else None
    if not parsed:
        # Without a config only the installed vLLM's pins are left to compare: a finding when one breaks,
        # else a skip that names the config it needs (a pass here would have tested no config value).
        pins = list(_vllm_pins(snap, str(vllm))) if vllm is not None else []
        if not pins:
            skip = _unparsed_skip(facts, ctx)
            held = f"; vllm {vllm}'s torch, transformers and Python pins hold" if vllm is not None else ""
            raise Skip(f"{skip}{held}")
        yield from pins
        return
    if facts is not None and facts.parsed:
        rules, launch = ctx.pack.rules.config, ctx.pack.rules.launch  # typed when the pack loaded
        yield from _pack_rules(facts, rules)
        if not facts.engine:  # a launch command's flags are the engine's to judge (_launch)
            yield from _unknown_keys(facts, rules, launch)
        yield from _secrets(facts, ctx.pack.rules.secrets)
        yield from _model_cross_checks(snap, facts)
        yield from _implied_packages(snap, ctx, facts)
        yield from _bf16_on_cpu(snap, facts)
        # The model's own path is weights.path's to judge; one finding per problem.
        model_key = snap.model.config_key if snap.model is not None and snap.model.source == "config" else ""
        yield from _relative_paths(facts, skip={model_key})
        yield from _launch(snap, facts, launch)
    if vllm is not None:
        yield from _vllm_pins(snap, str(vllm))


def _pack_rules(facts: ConfigFacts, rules: tuple[ValueRule, ...]) -> Iterator[Finding]:
    for rule in rules:
        found = lookup(facts.data, rule.key)
        if found is None or found[1] is None:
            if rule.required:
                because = f": {rule.reason}" if rule.reason else ""
                yield error(
                    "config.required-missing",
                    f"{rule.key} is not set{because}",
                    location=_start(facts),
                    observed="not set",
                    expected=f"{rule.key} set",
                    fix=rule.fix or f"add {rule.key}: ... to {facts.path}",
                )
            continue
        path, value = found
        if path in facts.secrets:
            continue  # masked: judged by the secret rules
        for v in check_value(rule, value, name=path):
            yield Finding(
                Severity.ERROR if v.severity == "error" else Severity.WARNING,
                v.code,
                v.message,
                fix=v.fix,
                location=_where(facts, path),
                observed=f"{path}: {show(value)}",
                expected=v.expected,
            )


_VOCABULARY = DOCTOR_KEYS


def _unknown_keys(facts: ConfigFacts, rules: tuple[ValueRule, ...], launch: LaunchRules) -> Iterator[Finding]:
    flags = {r.key for r in launch.flags} | {r.key.replace("-", "_") for r in launch.flags}
    known = set(_VOCABULARY) | {r.key.rsplit(".", 1)[-1] for r in rules} | flags
    if not rules and not launch.flags:
        return
    candidates: list[tuple[str, str]] = []
    for key, value in facts.data.items():
        candidates.append((key, key))
        if isinstance(value, dict) and key not in known:
            candidates.extend((f"{key}.{sub}", str(sub)) for sub in value)
    for path, name in candidates:
        if name in known:
            continue
        import difflib  # only for an unknown key's suggestion

        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
        if close:
            yield warning(
                "config.unknown-key",
                f"{path} is not a key the service reads; did you mean {close[0]}? (the value is ignored as written)",
                location=_where(facts, path),
                observed=name,
                expected=close[0],
                fix=f"rename {name} to {close[0]}",
            )


def _secrets(facts: ConfigFacts, policy: SecretPolicy) -> Iterator[Finding]:
    paths: list[str] = []
    for wanted in policy.keys:
        found = lookup(facts.data, wanted)
        if found is not None and found[0] not in paths:
            paths.append(found[0])
    for path in paths:
        secret = facts.secrets.get(path)
        if secret is None:
            continue
        env_fix = f"write {path.rsplit('.', 1)[-1]}: ${{{policy.env}}} and export {policy.env}=$(openssl rand -hex 32)"
        location = _where(facts, path)
        if secret.source == "empty":
            yield error(
                "config.weak-secret",
                f"{path} is empty: tokens signed with an empty key can be forged by anyone",
                location=location,
                observed="empty",
                expected=f"read from the environment, at least {policy.min_length} characters",
                fix=env_fix,
            )
        elif secret.source == "literal":
            why = "a well-known placeholder" if secret.placeholder else f"{secret.length} characters"
            short = secret.length < policy.min_length
            yield error(
                "config.weak-secret" if (secret.placeholder or short) else "config.hardcoded-secret",
                f"{path} is a signing secret hard-coded in the config ({why}, value not shown)"
                + (": anyone who has seen the guide or this file can forge tokens" if secret.placeholder else "")
                + (f"; it is shorter than {policy.min_length} characters" if short and not secret.placeholder else ""),
                location=location,
                observed=f"hard-coded, {why}",
                expected=f"${{{policy.env}}} (read from the environment), at least {policy.min_length} characters",
                fix=env_fix,
            )
        elif secret.length and (secret.placeholder or secret.length < policy.min_length):
            variables = ", ".join(secret.variables)
            why = "a well-known placeholder" if secret.placeholder else f"only {secret.length} characters"
            yield error(
                "config.weak-secret",
                f"{path} comes from {variables}, whose value is {why} (value not shown)",
                location=location,
                observed=why,
                expected=f"at least {policy.min_length} random characters",
                fix=f"export {secret.variables[0] if secret.variables else policy.env}=$(openssl rand -hex 32)",
            )


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1", "on")
    return bool(value)


def _model_cross_checks(snap: Snapshot, facts: ConfigFacts) -> Iterator[Finding]:
    model = snap.model
    if model is None:
        return
    where_model = model.path or model.given or "the model"
    length = lookup(facts.data, "model_max_length")
    limit = model.max_position_embeddings
    if length is not None and isinstance(length[1], int) and not isinstance(length[1], bool) and limit:
        if length[1] > limit:
            yield error(
                "config.exceeds-model-length",
                f"model_max_length is {length[1]}, but the model was trained for at most {limit} positions "
                f"(max_position_embeddings in {where_model}/config.json): longer inputs produce garbage or crash",
                location=_where(facts, length[0]),
                observed=f"model_max_length: {length[1]}",
                expected=f"<= {limit}",
                fix=f"set model_max_length: {limit}",
            )
    remote = lookup(facts.data, "trust_remote_code", flag=True)
    wants_remote = remote is not None and _truthy(remote[1])
    if model.auto_map and not wants_remote:
        classes = ", ".join(sorted(map(str, model.auto_map))) or "auto_map"
        said = f"trust_remote_code is {show(remote[1])}" if remote is not None else "trust_remote_code is not set"
        yield error(
            "config.remote-code-required",
            f"{said}, but the model's config.json has an auto_map ({classes}): its classes live in the model "
            "folder, and transformers refuses to load them without trust_remote_code: true",
            location=_where(facts, remote[0]) if remote is not None else _where(facts),
            observed=said,
            expected="trust_remote_code: true",
            fix="set trust_remote_code: true (after reviewing the model folder's *.py files)",
        )
    elif (
        wants_remote
        and not facts.engine
        and not model.auto_map
        and model.exists
        and (model.has_config or model.model_type)
    ):
        # (not for a launch command: the engines pass the flag on to the tokenizer and processor too,
        # and their own READMEs write it)
        assert remote is not None  # noqa: S101 - wants_remote implies it
        yield warning(
            "config.remote-code-unneeded",
            "trust_remote_code is true, but the model's config.json has no auto_map: the model loads with "
            "transformers' own classes, and the flag only allows code to run for nothing",
            location=_where(facts, remote[0]),
            observed="trust_remote_code: true",
            expected="trust_remote_code: false",
            fix="set trust_remote_code: false",
        )


def _holds(condition: Condition, data: dict[str, Any]) -> tuple[str, Any] | None:
    found = lookup(data, condition.key)
    if found is None:
        return None
    value = found[1]
    if condition.equals is None:
        return found if value not in (None, False, "", "none", "None") else None
    if isinstance(condition.equals, str) and isinstance(value, str):
        return found if value.lower() == condition.equals.lower() else None
    return found if value == condition.equals else None


def _implied_packages(snap: Snapshot, ctx: CheckContext, facts: ConfigFacts) -> Iterator[Finding]:
    if not snap.python.version:
        return
    installed = snap.effective()
    for rule in ctx.pack.packages:
        if not rule.when or canonical_name(rule.name) in installed:
            continue
        for condition in rule.when:
            hit = _holds(condition, facts.data)
            if hit is None:
                continue
            why = f": {rule.why}" if rule.why else ""
            requirement = f"{rule.name}{rule.spec}"
            yield error(
                "config.needs-package",
                f"{hit[0]} is {show(hit[1])}, which needs {rule.name}, and {rule.name} is not installed{why} "
                "(packages.required reports it too)",
                location=_where(facts, hit[0]),
                observed=f"{hit[0]}: {show(hit[1])}; {rule.name} not installed",
                expected=f"{rule.name} installed, or {hit[0]} removed",
                fix=pip_install(snap, requirement),
            )
            break


def _cpu_only(snap: Snapshot, facts: ConfigFacts) -> str:
    """Why the deployment runs on the CPU only, or empty when it may use a GPU."""
    for key in ("device", "device_map"):
        found = lookup(facts.data, key)
        if found is not None and isinstance(found[1], str) and found[1].strip().lower() == "cpu":
            return f"{found[0]} is cpu"
    if snap.torch is not None and snap.torch.cuda is None and snap.torch.hip is None:
        return f"torch {snap.torch.version} is a CPU-only build"
    if snap.gpu is not None and not snap.gpu.gpus and snap.gpu.nvml_error:
        return "no NVIDIA GPU is visible"
    return ""


def _bf16_on_cpu(snap: Snapshot, facts: ConfigFacts) -> Iterator[Finding]:
    found = lookup(facts.data, "torch_dtype") or lookup(facts.data, "dtype")
    if found is None or not isinstance(found[1], str) or found[1].strip().lower() not in ("bfloat16", "bf16"):
        return
    why = _cpu_only(snap, facts)
    if why:
        yield warning(
            "config.bf16-on-cpu",
            f"{found[0]} is bfloat16 but the deployment runs on the CPU ({why}): on CPUs without AVX-512 BF16/AMX "
            "bfloat16 matmuls are emulated and generation is many times slower",
            location=_where(facts, found[0]),
            observed=f"{found[0]}: {found[1]}",
            expected="float32 on CPU",
            fix=f"set {found[0]}: float32",
        )


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+")


def _relative_paths(facts: ConfigFacts, skip: set[str]) -> Iterator[Finding]:
    for key, p in facts.paths.items():
        if key in skip or p.config_relative == p.cwd_relative:
            continue
        if not p.config_exists and not p.cwd_exists:
            if _HUB_ID.fullmatch(p.value):
                continue  # more likely a hub id; weights.path judges it
            tail = "neither exists"
        elif p.config_exists and p.cwd_exists:
            tail = "both exist, and they are different files"
        elif p.config_exists:
            tail = "only the first exists"
        else:
            tail = "only the second exists: the doctor checks the first"
        yield warning(
            "config.relative-path",
            f"{key} is the relative path {p.value}: the doctor resolves it against the config's folder "
            f"({p.config_relative}), but a service started from {facts.cwd} opens {p.cwd_relative}; {tail}",
            location=_where(facts, key),
            observed=p.value,
            expected=p.config_relative,
            fix=f"write the absolute path: {key.rsplit('.', 1)[-1]}: {p.config_relative}",
        )


def _gpu_memory_gib(snap: Snapshot) -> float | None:
    gpus = snap.gpu.gpus if snap.gpu is not None else []
    sizes = [g.memory_total for g in gpus if g.memory_total]
    return min(sizes) / _GIB if sizes else None


def _launch(snap: Snapshot, facts: ConfigFacts, launch: LaunchRules) -> Iterator[Finding]:
    record = read_record(snap) if facts.engine else None
    if record is not None:
        yield from _engine_reading(facts, record)
    if not launch.flags and not launch.served_model_env and not launch.memory and record is None:
        return
    engine = facts.engine
    rejected = {p.key for p in record.problems} if record is not None else set()
    for rule in launch.flags:
        if engine and not engines.get(engine).has(rule.key):
            continue  # the engine has no such flag (SGLang and --limit-mm-per-prompt)
        spelled = engines.get(engine).flag(rule.key) if engine else f"--{rule.key}"
        found = setting(facts.data, engine, rule.key) if engine else lookup(facts.data, rule.key, flag=True)
        if found is None or found[1] is None:
            if rule.required:
                because = f": {rule.reason}" if rule.reason else ""
                yield error(
                    "config.launch-flag-missing",
                    f"the launch command has no {spelled}{because}",
                    location=_start(facts),
                    observed=f"{spelled} absent",
                    expected=spelled,
                    fix=(rule.fix or f"add --{rule.key} ... to the launch command").replace(f"--{rule.key}", spelled),
                )
            continue
        path, value = found
        typed = record.setting(rule.key) if record is not None else None
        if path in rejected or path.replace("_", "-") in rejected:
            continue  # the engine rejects the value itself: one finding (above)
        checked = typed.value if typed is not None else value
        if typed is None and rule.key in TOKEN_COUNT_FLAGS and isinstance(value, str) and value.strip()[-1:].isalpha():
            checked = token_count(value) if token_count(value) is not None else value
        for v in check_value(rule, checked, name=spelled):
            yield Finding(
                Severity.ERROR if v.severity == "error" else Severity.WARNING,
                "config.launch-flag" if v.code != "config.not-recommended" else v.code,
                v.message,
                fix=v.fix.replace(f"{spelled}: ", f"{spelled} "),
                location=_where(facts, path),
                observed=f"{spelled} {show(value)}",
                expected=v.expected,
            )
    if record is not None:
        yield from _served_launch(snap, facts, record)
    if launch.served_model_env:
        served = lookup(facts.data, "served-model-name", flag=True)
        client = snap.env.get(launch.served_model_env)
        if served is not None and client and isinstance(served[1], str) and client != served[1]:
            yield error(
                "config.served-model-mismatch",
                f"the server serves the model as {served[1]!r} (--served-model-name), but the client asks for "
                f"{client!r} ({launch.served_model_env}): every request fails with 404 'model does not exist'",
                location=_where(facts, served[0]),
                observed=f"{launch.served_model_env}={client}",
                expected=f"{launch.served_model_env}={served[1]}",
                fix=f"export {launch.served_model_env}={served[1]}",
            )
    memory = _gpu_memory_gib(snap)
    if memory is None:
        return
    for row in launch.memory:
        found = lookup(facts.data, row.flag, flag=True)
        if found is None or not isinstance(found[1], int) or isinstance(found[1], bool):
            continue
        if memory < row.below_gib and found[1] > row.max:
            because = f" ({row.reason})" if row.reason else ""
            yield error(
                "config.launch-memory",
                f"--{row.flag} {found[1]} does not fit the KV cache on a {memory:.0f} GiB GPU{because}",
                location=_where(facts, found[0]),
                observed=f"--{row.flag} {found[1]} on {memory:.1f} GiB",
                expected=f"--{row.flag} <= {row.max} below {row.below_gib:g} GiB",
                fix=f"--{row.flag} {row.max}",
            )


def _engine_reading(facts: ConfigFacts, record: LaunchRecord) -> Iterator[Finding]:
    """Which definitions the command was read against, and what the engine's parser rejects."""
    flags = record.flags
    title = engines.get(record.engine).title
    if flags.source == "none":
        yield warning(
            "config.launch-definitions",
            f"the launch command's flags were not checked: {title}'s flag definitions could not be read ({flags.why})",
            location=_start(facts),
            fix=f"install {record.engine} in the target, or pass its interpreter with --python",
        )
        return
    yield info(
        "config.launch-definitions",
        f"the launch command was read against {title} {flags.version}'s own flag definitions "
        f"({'its installed files' if flags.source == 'installed' else 'the table generated from its release'}: "
        f"{flags.why})",
        location=_start(facts),
        observed=f"{len(flags.flags)} flags, from {flags.source}",
    )
    for problem in record.problems:
        location = Location(facts.path, problem.line, problem.column) if problem.line else _where(facts, problem.key)
        yield Finding(
            Severity.ERROR if problem.severity == "error" else Severity.WARNING,
            problem.code,
            problem.message,
            fix=problem.fix,
            location=location,
            observed=problem.observed,
            expected=problem.expected,
        )


def _served_launch(snap: Snapshot, facts: ConfigFacts, record: LaunchRecord) -> Iterator[Finding]:
    """What the launch flags say against the model, the visible GPUs and this host's ports."""
    engine = record.engine
    title = engines.get(engine).title
    flag = engines.get(engine).flag

    def where(value: LaunchValue | None) -> Location:
        if value is None:
            return _start(facts)
        return Location(facts.path, value.line, value.column) if value.line else _where(facts, value.key)

    model = snap.model
    if model is None or not model.exists or not (model.has_config or model.model_type):
        named = record.setting("model")
        said = (
            f"the model the command names ({named.value}) is not on this machine (no folder, not in the Hugging "
            "Face cache)"
            if named is not None
            else "the command names no model"
        )
        yield info(
            "config.launch-model-absent",
            f"{said}: {flag('max-model-len')}, the image limit and the tensor-parallel split were not checked "
            "against its config.json",
            location=where(named),
            fix="run the check where the model is, or pass --model PATH",
        )
        model = None
    length = record.setting("max-model-len")
    limit = model.max_position_embeddings if model is not None else None
    if length is not None and isinstance(length.value, int) and limit and length.value > limit:
        yield error(
            "config.launch-exceeds-model-length",
            f"{flag('max-model-len')} {length.value} is more than the model's max_position_embeddings ({limit}, "
            f"config.json{' text_config' if model is not None and model.vision else ''}): {title} refuses to start "
            "('User-specified max_model_len ... is greater than the derived max_model_len')",
            location=where(length),
            observed=f"{flag('max-model-len')} {length.value}",
            expected=f"<= {limit}",
            fix=f"{flag('max-model-len')} {limit}",
        )
    if engines.get(engine).has("limit-mm-per-prompt") and model is not None and model.vision:
        yield from _image_limit(facts, record)
    tp_found = record.setting("tensor-parallel-size")
    tp = tp_found.value if tp_found is not None and isinstance(tp_found.value, int) else 1
    visible, mig = gpus_for_tensor_parallel(snap.gpu)
    if tp_found is not None and visible is not None and tp > visible:
        seen = f"{visible} {'is' if visible == 1 else 'are'} visible here (CUDA_VISIBLE_DEVICES included)"
        yield error(
            "config.launch-tensor-parallel",
            f"{flag('tensor-parallel-size')} {tp} needs {tp} GPUs, but "
            + (f"the server gets one MIG instance ({MIG_ONE_DEVICE})" if mig else seen)
            + f": {title} fails to start its workers",
            location=where(tp_found),
            observed=f"{visible} GPU(s) visible" + (" (MIG)" if mig else ""),
            expected=f">= {tp}",
            fix=_tp_fix(snap, record, model, below=tp) if visible else "run the server on a GPU host",
        )
    heads = model.num_attention_heads if model is not None else None
    if tp_found is not None and heads and heads % tp:
        yield error(
            "config.launch-tensor-parallel",
            f"{flag('tensor-parallel-size')} {tp} does not divide the model's {heads} attention heads: {title} "
            f"refuses it ('Total number of attention heads ({heads}) must be divisible by tensor parallel size "
            f"({tp})')",
            location=where(tp_found),
            observed=f"{flag('tensor-parallel-size')} {tp}",
            expected=f"a divisor of {heads}",
            fix=_tp_fix(snap, record, model, below=tp),
        )
    kv_heads = model.num_key_value_heads if model is not None else None
    if tp_found is not None and heads and not heads % tp and kv_heads and not kv_heads_split(tp, kv_heads):
        big, small = (kv_heads, tp) if tp <= kv_heads else (tp, kv_heads)
        yield error(
            "config.launch-tensor-parallel",
            f"{flag('tensor-parallel-size')} {tp} cannot split or replicate the model's {kv_heads} KV heads: "
            f"{title} stops with '{big} is not divisible by {small}'",
            location=where(tp_found),
            observed=f"{flag('tensor-parallel-size')} {tp}, num_key_value_heads {kv_heads}",
            expected=f"a divisor or a multiple of {kv_heads}",
            fix=_tp_fix(snap, record, model, below=tp),
        )
    yield from _vision_heads(snap, model, record, tp, where(tp_found))
    yield from _float16_family(snap, facts, record, where(record.setting("dtype")))
    port = port_of(facts.data, engine)
    port_value = record.number("port")
    if isinstance(port_value, int):
        port = port_value
    host = snap.host
    if port is not None and host is not None and port in host.ports_in_use:
        given = record.setting("port")
        yield error(
            "config.launch-port-in-use",
            f"port {port} is already taken on this host{'' if given else f' ({engine} default)'}: the server fails "
            f"with '[Errno 98] error while attempting to bind on address (..., {port}): address already in use'",
            location=where(given),
            observed=f"port {port} in use",
            expected="a free port",
            fix=f"stop what listens there (ss -ltnp 'sport = :{port}'), or start with --port {port + 1} and point "
            f"PHONE_AGENT_BASE_URL at it",
        )


def _tp_fix(snap: Snapshot, record: LaunchRecord, model: ModelFacts | None, *, below: int) -> str:
    """The ``--tensor-parallel-size`` fix of a tensor-parallel error, from the sizes cuda.memory picks from.

    The largest size below ``below`` that passes every check (heads, KV heads, vision heads, GPUs),
    and a larger one that needs ``--mm-encoder-tp-mode data`` where there is one.
    """
    gpus, _ = gpus_for_tensor_parallel(snap.gpu)
    data_mode = str(record.number("mm-encoder-tp-mode") or "").lower() == "data"
    choices = [c for c in tensor_parallel_sizes(model, record.engine, data_mode=data_mode, gpus=gpus) if c.size < below]
    plain = [c for c in choices if not c.needs_data_mode]  # never empty: 1 always passes
    offered = plain[-1:] + [c for c in choices[-1:] if c.needs_data_mode]
    return "; or ".join(c.flags(record.engine) for c in offered)


def _vision_heads(
    snap: Snapshot, model: ModelFacts | None, record: LaunchRecord, tp: int, location: Location
) -> Iterator[Finding]:
    """VLLM shards the vision tower over TP too, unless --mm-encoder-tp-mode data keeps it whole per GPU."""
    engine = engines.get(record.engine)
    if tp <= 1 or not engine.has("mm-encoder-tp-mode") or model is None:
        return
    model_heads = vision_heads(model)
    if not model_heads:
        return
    mode = record.number("mm-encoder-tp-mode")
    if str(mode or "weights") == "data" or model_heads % tp == 0:
        return
    gpus, _ = gpus_for_tensor_parallel(snap.gpu)
    # adding data mode is a fix only where this size passes every other check too
    with_data = TensorParallel(tp, needs_data_mode=True) in tensor_parallel_sizes(
        model, record.engine, data_mode=False, gpus=gpus
    )
    fix = _tp_fix(snap, record, model, below=tp)
    yield error(
        "config.launch-vision-tensor-parallel",
        f"{engine.flag('tensor-parallel-size')} {tp} splits the vision tower's {model_heads} attention heads "
        f"{tp} ways: {engine.title} stops with 'AssertionError: {model_heads} is not divisible by {tp}'",
        location=location,
        observed=f"{engine.flag('tensor-parallel-size')} {tp}, vision num_heads {model_heads}",
        expected=f"a divisor of {model_heads}, or --mm-encoder-tp-mode data",
        fix=(
            f"add {engine.flag('mm-encoder-tp-mode')} data (each GPU keeps the whole vision tower); or {fix}"
            if with_data
            else fix
        ),
    )


def _float16_family(snap: Snapshot, facts: ConfigFacts, record: LaunchRecord, location: Location) -> Iterator[Finding]:
    """GLM-4 family in float16 (asked for, or the engine's fallback on a GPU without bfloat16) answers garbage."""
    del facts
    model = snap.model
    if model is None or not model.model_type:
        return
    engine = engines.get(record.engine)
    asked = str(record.number("dtype") or "auto").lower()
    gpus = snap.gpu.visible_gpus() if snap.gpu is not None else []
    without_bf16 = [g for g in gpus if g.cc is not None and g.cc < (8, 0)]
    if asked == "auto" and model.torch_dtype == "float16":
        return  # the checkpoint's own dtype: not the family's bfloat16
    gpu = without_bf16[0].name if without_bf16 else ""
    served, fallback = engine.dtype_on_gpu(
        dtype=asked, bf16_supported=not without_bf16, gpu=gpu, version=record.flags.version
    )
    family = engines.float16_broken(model.model_type)
    if served != "float16" or not family:
        return
    if asked in ("float16", "half"):
        message = (
            f"--dtype {asked} serves {model.model_type} (GLM-4 family) in float16, which overflows: the model answers "
            f"'!!!!!!!!' or garbage ({family})"
        )
        fix = "--dtype bfloat16 (on an Ampere or newer GPU)" if not without_bf16 else "use an Ampere or newer GPU"
    else:
        message = (
            f"{gpu} (compute capability {without_bf16[0].compute_capability}) has no bfloat16, so "
            f"{engine.title} falls back to float16 ({fallback}), and {model.model_type} (GLM-4 family) in float16 "
            f"answers '!!!!!!!!' or garbage ({family})"
        )
        fix = "use an Ampere or newer GPU (A10, A100, L4, L40, RTX 30xx/40xx, H100): bfloat16 is what the model needs"
    yield error(
        "config.launch-float16-family",
        message,
        location=location,
        observed=f"{model.model_type} at float16{' on ' + gpu if gpu else ''}",
        expected="bfloat16",
        fix=fix,
    )


def _image_limit(facts: ConfigFacts, record: LaunchRecord) -> Iterator[Finding]:
    """An image model served by vLLM: --limit-mm-per-prompt must let a screenshot through."""
    found = record.setting("limit-mm-per-prompt")
    if found is None:
        if any(p.key.replace("_", "-") == "limit-mm-per-prompt" for p in record.problems):
            return  # its value was rejected above
        yield warning(
            "config.launch-image-limit",
            "the model takes images but the launch command has no --limit-mm-per-prompt: how many images a "
            "request may carry is then vLLM's default, which has changed between releases; the agent sends a "
            "screenshot with every step",
            location=_start(facts),
            observed="--limit-mm-per-prompt absent",
            expected="--limit-mm-per-prompt '{\"image\":10}'",
            fix="add --limit-mm-per-prompt '{\"image\":10}' (as Open-AutoGLM's guide does)",
        )
        return
    limits = found.value if isinstance(found.value, dict) else {}
    images = limits.get("image")
    location = Location(facts.path, found.line, found.column) if found.line else _where(facts, found.key)
    if images is not None and (not isinstance(images, int) or isinstance(images, bool)):
        yield error(
            "config.launch-image-limit",
            f"--limit-mm-per-prompt gives image {show(images)}, not a count: vLLM refuses the argument",
            location=location,
            observed=f"--limit-mm-per-prompt {show(found.value)}",
            expected='{"image":10}',
            fix="--limit-mm-per-prompt '{\"image\":10}'",
        )
    elif images is not None and images < 1:
        yield error(
            "config.launch-image-limit",
            f"--limit-mm-per-prompt allows {images} images: vLLM answers every screenshot the agent sends with "
            f"HTTP 400 'At most {images} image(s) may be provided in one request.'",
            location=location,
            observed=f"--limit-mm-per-prompt {show(found.value)}",
            expected='{"image": >= 1}',
            fix="--limit-mm-per-prompt '{\"image\":10}'",
        )


def _vllm_pins(snap: Snapshot, vllm: str) -> Iterator[Finding]:
    """The torch, transformers and Python an installed vLLM asks for in its own metadata (else its release's)."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    dist = snap.effective().get("vllm")
    requires = list(dist.requires) if dist is not None else []
    found, python_range, source = engines.pins("vllm", vllm, requires, dist.requires_python if dist else "")
    try:
        torch_spec = SpecifierSet(found.get("torch", ""))
        transformers_spec = SpecifierSet(found.get("transformers", ""))
        python_spec = SpecifierSet(python_range)
    except InvalidSpecifier:
        return
    note = f" (read from {source})" if source else ""
    torch = installed_version(snap, "torch")
    if torch is not None and str(torch_spec) and not torch_spec.contains(torch, True):
        yield error(
            "config.vllm-torch-pin",
            f"vllm {vllm} is built against torch{torch_spec}, but torch {torch} is installed: vllm's compiled ops "
            f"fail to import (undefined symbol){note}",
            observed=f"vllm=={vllm}, torch=={torch}",
            expected=f"torch{torch_spec}",
            fix=pip_install(snap, f"torch{torch_spec}"),
        )
    transformers = installed_version(snap, "transformers")
    if transformers is not None and str(transformers_spec) and not transformers_spec.contains(transformers, True):
        yield error(
            "config.vllm-transformers-pin",
            f"vllm {vllm} requires transformers{transformers_spec}, but transformers {transformers} is installed{note}",
            observed=f"vllm=={vllm}, transformers=={transformers}",
            expected=f"transformers{transformers_spec}",
            fix=pip_install(snap, f"transformers{transformers_spec}"),
        )
    if snap.python.version and str(python_spec) and not python_spec.contains(snap.python.version, True):
        yield error(
            "config.vllm-python",
            f"vllm {vllm} supports Python {python_spec}, but the target runs Python {snap.python.version}{note}",
            observed=f"Python {snap.python.version}",
            expected=f"Python {python_spec}",
            fix="create the environment with a supported Python (e.g. `uv venv --python 3.11`)",
        )


# --------------------------------------------------------------------------- config.request


@check(
    "config.request",
    title="Sample request is valid",
    why="The service rejects a whole batch for one bad item: too many items, a repeated id, inconsistent data "
    "shapes or base64 that does not decode. Linting a sample request finds it before it reaches the service.",
    fix="Edit the items at the indexes and lines shown.",
)
def config_request(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """A sample batch request (--request FILE) is a JSON array of {id, data} items the service accepts."""
    path = ctx.options.request
    if path is None:
        raise Skip("no sample request (pass --request FILE)")
    roles = ctx.pack.names or (ctx.pack.name,)
    if set(roles) <= _NOT_IN_PROCESS:  # run because the user named the file, on a role that does not own it
        yield info(
            "config.request-role",
            "linted as the in-process service's batch request because it was named "
            f"({' + '.join(roles)} does not read this format: the vLLM/SGLang server and the phone-agent "
            "client speak the OpenAI chat API)",
            location=Location(str(path)),
        )
    yield from lint_request(path, ctx.pack.rules.request)


_NOT_IN_PROCESS = frozenset({"open-autoglm-server", "open-autoglm-phone"})
"""The built-in roles whose services do not take the in-process batch format."""


def lint_request(path: Path, policy: RequestPolicy) -> Iterator[Finding]:
    """Findings for the request file at ``path`` under ``policy``."""
    shown = str(path)
    try:
        size = path.stat().st_size
        if size > REQUEST_MAX_BYTES:
            yield warning(
                "config.request-too-large",
                f"{shown} is {size / 2**20:.0f} MiB; a sample above {REQUEST_MAX_BYTES // 2**20} MiB is not read",
                location=Location(shown),
                fix="pass a smaller sample with --request",
            )
            return
        raw = read_bytes(path, "request", REQUEST_MAX_BYTES)
    except OSError as exc:
        yield error(
            "config.request-missing",
            f"cannot read the sample request {shown}: {exc.strerror or exc}",
            location=Location(shown),
            fix="pass an existing JSON file with --request",
        )
        return
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        yield error("config.request-syntax", f"{shown} is not UTF-8 (byte {exc.start})", location=Location(shown))
        return
    from autoglm_doctor.configfile.parse import parse  # only --request needs the parser here

    parsed = parse(text, "json")
    problems = [d for d in parsed.diagnostics if d.severity == "error"]
    for d in problems[:20]:
        yield Finding(
            Severity.ERROR,
            "config.request-syntax",
            d.message,
            fix=d.fix or None,
            location=Location(shown, d.line, d.column),
            observed=d.excerpt or None,
        )
    if parsed.data is None:
        if not problems:
            yield error("config.request-syntax", f"{shown} is empty", location=Location(shown, 1, 1))
        return
    yield from _request_items(shown, parsed.data, parsed.positions, policy)


def _shape(value: Any) -> tuple[Any, ...] | None:
    """Nested-list dimensions of ``value`` (None when ragged); mappings give per-key shapes."""
    if isinstance(value, list):
        if not value:
            return (0,)
        inner = [_shape(v) for v in value]
        if any(s is None for s in inner) or len({repr(s) for s in inner}) > 1:
            return None
        return (len(value), *(inner[0] or ()))
    if isinstance(value, dict):
        return tuple((str(k), _shape(v)) for k, v in sorted(value.items(), key=lambda kv: str(kv[0])))
    return ()


def _describe_shape(shape: tuple[Any, ...] | None) -> str:
    if shape is None:
        return "ragged (rows of different lengths)"
    if shape and isinstance(shape[0], tuple):
        return "{" + ", ".join(f"{k}: {_describe_shape(s)}" for k, s in shape) + "}"
    return "x".join(map(str, shape)) if shape else "scalar"


_DATA_URL = re.compile(r"data:[\w/+.\-]+;base64,(.*)\Z", re.S)


def _bad_base64(data: Any, keys: tuple[str, ...], path: str = "") -> Iterator[tuple[str, str]]:
    """(key path, problem) for every base64 field that does not decode."""
    if isinstance(data, dict):
        for k, v in data.items():
            sub = f"{path}.{k}" if path else str(k)
            if isinstance(v, str) and (str(k) in keys or _DATA_URL.match(v)):
                payload = _DATA_URL.match(v)
                text = payload.group(1) if payload else v
                try:
                    base64.b64decode(text.strip(), validate=True)
                except (binascii.Error, ValueError) as exc:
                    yield sub, str(exc).rstrip(".")
            else:
                yield from _bad_base64(v, keys, sub)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _bad_base64(v, keys, f"{path}[{i}]")


def _request_items(shown: str, data: Any, positions: dict[str, list[int]], policy: RequestPolicy) -> Iterator[Finding]:
    def loc(index: int | None = None) -> Location:
        pos = positions.get(str(index)) if index is not None else None
        return Location(shown, pos[0], pos[1]) if pos else Location(shown, 1, 1)

    if not isinstance(data, list):
        yield error(
            "config.request-not-array",
            f"the request is a JSON {'object' if isinstance(data, dict) else type(data).__name__}; "
            f'the batch format is an array of {{"{policy.id_key}": ..., "{policy.data_key}": ...}} items',
            location=loc(),
            expected=f'[{{"{policy.id_key}": "1", "{policy.data_key}": ...}}]',
            fix=f"wrap the item(s) in [ ... ] and give each an {policy.id_key!r} and {policy.data_key!r}",
        )
        return
    if len(data) > policy.max_items:
        yield error(
            "config.request-too-many",
            f"the batch holds {len(data)} items; the service accepts at most {policy.max_items}",
            location=loc(policy.max_items),
            observed=f"{len(data)} items",
            expected=f"<= {policy.max_items} items",
            fix=f"split the request into batches of {policy.max_items}",
        )
    seen: dict[str, int] = {}
    shapes: dict[str, int] = {}
    reference: tuple[Any, ...] | None = None
    reference_index = -1
    for index, item in enumerate(data):
        where = loc(index)
        label = f"item {index} (line {where.line})"
        if not isinstance(item, dict):
            yield error(
                "config.request-item",
                f"{label} is a {type(item).__name__}, not an object with {policy.id_key!r} and {policy.data_key!r}",
                location=where,
                fix=f'write it as {{"{policy.id_key}": ..., "{policy.data_key}": ...}}',
            )
            continue
        for key in (policy.id_key, policy.data_key):
            if key not in item:
                yield error(
                    "config.request-item",
                    f"{label} has no {key!r}",
                    location=where,
                    expected=f"{policy.id_key!r} and {policy.data_key!r}",
                    fix=f"add {key!r} to the item",
                )
        if policy.id_key in item:
            ident = item[policy.id_key]
            marker = repr(ident) if not isinstance(ident, str) else ident
            if marker in seen:
                first = seen[marker]
                yield error(
                    "config.request-duplicate-id",
                    f"{label} repeats id {marker!r} of item {first} (line {loc(first).line}): "
                    "results are matched to requests by id",
                    location=where,
                    observed=f"id {marker!r} twice",
                    expected="unique ids",
                    fix=f"give item {index} another id",
                )
            else:
                seen[marker] = index
        if policy.data_key in item:
            shape = _shape(item[policy.data_key])
            shapes[repr(shape)] = shapes.get(repr(shape), 0) + 1
            if reference_index < 0:
                reference, reference_index = shape, index
            elif shape is None or repr(shape) != repr(reference):
                yield error(
                    "config.request-shape",
                    f"{label}: its {policy.data_key!r} is {_describe_shape(shape)}, but item {reference_index} "
                    f"has {_describe_shape(reference)}: every item of a batch must have the same dimensions",
                    location=where,
                    observed=_describe_shape(shape),
                    expected=_describe_shape(reference),
                    fix=f"resize item {index}'s data, or send it in another batch",
                )
            if reference_index == index and shape is None:
                yield error(
                    "config.request-shape",
                    f"{label}: its {policy.data_key!r} is ragged (rows of different lengths)",
                    location=where,
                    observed="ragged",
                    expected="rows of equal length",
                    fix=f"pad item {index}'s rows to the same length",
                )
        for key, problem in _bad_base64(item, policy.base64_keys):
            yield error(
                "config.request-base64",
                f"{label}: {key} is not valid base64 ({problem})",
                location=where,
                observed=f"{key}: invalid base64",
                expected="standard base64 (A-Z a-z 0-9 + /, padded with =)",
                fix=f"re-encode it: base64 -w0 FILE   (item {index}, {key})",
            )
    if not data:
        yield info("config.request-empty", "the batch is empty", location=loc())


def __getattr__(name: str) -> Any:
    """``POSITION_DEPTH``, re-exported from the parser without importing it for every run."""
    if name == "POSITION_DEPTH":
        from autoglm_doctor.configfile.parse import POSITION_DEPTH

        return POSITION_DEPTH
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["POSITION_DEPTH", "lint_request", "lookup"]  # noqa: F822 - POSITION_DEPTH comes from __getattr__
