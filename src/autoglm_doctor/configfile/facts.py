"""Config facts: the deployment config found, parsed with positions and interpolated, as plain data.

Discovery order: ``--config FILE``, else the ``AUTOGLM_CONFIG`` environment variable, else
``autoglm.yaml``, ``autoglm.yml`` or ``autoglm.json`` in the working directory. A path that was
named but does not exist is still returned (``exists=False``) so that config.syntax reports it.
Everything here is JSON-serialisable: a snapshot carries it to another machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autoglm_doctor.gather_options import GatherOptions

DISCOVERED_NAMES = ("autoglm.yaml", "autoglm.yml", "autoglm.json")
"""Files looked for in the working directory when neither --config nor AUTOGLM_CONFIG names one."""


DOCTOR_KEYS = frozenset(
    {
        "model_path",
        "device",
        "device_map",
        "torch_dtype",
        "dtype",
        "model_max_length",
        "max_new_tokens",
        "trust_remote_code",
        "attn_implementation",
        "load_in_8bit",
        "load_in_4bit",
        "max_batch_size",
        "request_timeout",
        "host",
        "port",
        "auth",
        "require_token",
        "secret_key",
        "low_cpu_mem_usage",
    }
)
"""The keys of the in-process deployment config (the doctor's own config), as its service reads them."""
DOCTOR_ONLY_KEYS = frozenset(
    {"model_path", "device", "device_map", "torch_dtype", "model_max_length", "max_new_tokens"}
)
"""Keys that mark a mapping as the doctor's config, not a file of engine flags (no engine spells them so)."""


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found while reading the config (syntax or env interpolation)."""

    check: str
    """The check that reports it: ``config.syntax`` or ``config.env``."""
    code: str
    """Stable finding code, e.g. ``config.tab-indent``."""
    severity: str
    """``error``, ``warning`` or ``info``."""
    message: str
    """What is wrong, one line."""
    line: int | None = None
    """1-based line."""
    column: int | None = None
    """1-based column."""
    excerpt: str = ""
    """The offending line and a caret under the column."""
    fix: str = ""
    """What to write instead."""
    expected: str = ""
    """What would have been valid."""
    key: str = ""
    """Dotted key path it concerns, when known."""


@dataclass(frozen=True, slots=True)
class PathFacts:
    """A relative path found in the config, resolved both ways."""

    value: str
    """The path as written (after interpolation)."""
    config_relative: str
    """Resolved against the config file's folder (what the doctor uses)."""
    cwd_relative: str
    """Resolved against the working directory (what a naive loader would open)."""
    config_exists: bool = False
    """The config-relative path exists."""
    cwd_exists: bool = False
    """The cwd-relative path exists."""


@dataclass(frozen=True, slots=True)
class SecretFacts:
    """What is known about a secret-looking value, without the value itself."""

    source: str
    """``literal`` (hard-coded), ``env`` (came from ``${VAR}``) or ``empty``."""
    length: int = 0
    """Number of characters of the value."""
    placeholder: bool = False
    """A well-known placeholder such as ``secret-key`` or ``changeme``."""
    variables: list[str] = field(default_factory=list)
    """Environment variables it was read from."""


@dataclass(frozen=True, slots=True)
class ConfigFacts:
    """The deployment config as the doctor understood it."""

    path: str = ""
    """The config file, as given."""
    data: dict[str, Any] = field(default_factory=dict)
    """Parsed top-level mapping (env vars interpolated, secret values masked); empty when it did not parse."""
    source: str = ""
    """How it was found: ``--config``, ``AUTOGLM_CONFIG`` or ``discovered``."""
    format: str = ""
    """``yaml``, ``json``, ``toml`` or ``flags`` (a vLLM/SGLang launch command)."""
    exists: bool = True
    """The file exists and could be read."""
    parsed: bool = False
    """The text parsed into a mapping (``data`` is meaningful)."""
    size: int = 0
    """Size of the raw file in bytes."""
    line_count: int = 0
    """Number of lines of the file."""
    folder: str = ""
    """Absolute folder of the config: relative paths inside it resolve against this."""
    cwd: str = ""
    """The working directory the deployment runs from."""
    positions: dict[str, list[int]] = field(default_factory=dict)
    """``"dotted.key"`` -> ``[line, column]`` (1-based), two levels deep (list items as numbers): the
    value's place for scalars, the key's place for mappings and lists."""
    diagnostics: list[Diagnostic] = field(default_factory=list)
    """Syntax and interpolation problems, in file order."""
    env_refs: dict[str, list[str]] = field(default_factory=dict)
    """``"dotted.key"`` -> environment variables its value interpolates."""
    secrets: dict[str, SecretFacts] = field(default_factory=dict)
    """``"dotted.key"`` -> facts about a secret-looking value (whose value ``data`` masks)."""
    paths: dict[str, PathFacts] = field(default_factory=dict)
    """``"dotted.key"`` -> a relative path value resolved against the config folder and the cwd."""
    engine: str = ""
    """``vllm`` or ``sglang`` when the config is a launch command (the program it starts, or flags only
    that engine has); empty for an in-process deployment config."""
    words: list[list[Any]] = field(default_factory=list)
    """A launch command file's words as the shell splits them, each ``[word, line, column]``, and
    ``[None, line, column]`` where a command ends: the engine reads them with its own flag definitions
    (``engines.launch``)."""

    def position(self, key: str) -> tuple[int | None, int | None]:
        """Line and column of ``key`` (or of its nearest parent that has one)."""
        parts = key.split(".")
        while parts:
            pos = self.positions.get(".".join(parts))
            if pos:
                return pos[0], pos[1]
            parts.pop()
        return None, None


def discover(options: GatherOptions) -> tuple[Path, str] | None:
    """The config file to read and how it was found, or None when there is none."""
    if options.config is not None:
        path = options.config if options.config.is_absolute() else options.cwd / options.config
        return path, "--config"
    if not options.discover:
        return None
    named = os.environ.get("AUTOGLM_CONFIG")
    if named:
        path = Path(named).expanduser()
        return (path if path.is_absolute() else options.cwd / path), "AUTOGLM_CONFIG"
    for name in DISCOVERED_NAMES:
        candidate = options.cwd / name
        if candidate.is_file():
            return candidate, "discovered"
    return None
