"""Read one config file into :class:`ConfigFacts`: decode, parse, interpolate, mask secrets, resolve paths."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from shlex import quote
from typing import Any

from autoglm_doctor.configfile import envvars
from autoglm_doctor.configfile.facts import ConfigFacts, Diagnostic, PathFacts, SecretFacts, discover
from autoglm_doctor.configfile.launch import engine_of
from autoglm_doctor.configfile.parse import POSITION_DEPTH, Parsed, Source, decode, detect_format, diag, dotted, parse
from autoglm_doctor.gather_options import GatherOptions
from autoglm_doctor.redact import REDACTED, is_placeholder, mask_after_secret_keys, may_be_secret_variable
from autoglm_doctor.safeio import RefusedFile, read_bytes

ENV = "config.env"
MAX_ENV_DIAGNOSTICS = 50
"""At most this many config.env findings per file: the first ones say what to fix."""

_SECRET_PARTS = {"secret", "password", "passwd", "pwd", "passphrase", "credential", "credentials", "token", "apikey"}
_KEY_OWNERS = {"api", "secret", "access", "private", "signing", "auth", "hmac", "jwt", "encryption", "client"}
_PATH_KEY = re.compile(r"(^|_)(path|dir|file|folder)$")


@functools.cache
def _is_path_key(name: str) -> bool:
    return bool(_PATH_KEY.search(name.lower()))


@functools.cache
def _interesting_key(name: str) -> bool:
    """A key whose string value is a secret or a path (cached: names repeat across a big config)."""
    return is_secret_key(name) or _is_path_key(name)


@functools.cache
def is_secret_key(name: str) -> bool:
    """A config key whose string value is a secret (``secret_key``, ``api_key``, ``password``...)."""
    parts = [p for p in re.split(r"[_\-.]", name.lower()) if p]
    if any(p in _SECRET_PARTS for p in parts):
        return True
    return len(parts) >= 2 and parts[-1] == "key" and parts[-2] in _KEY_OWNERS


def _code_part(line: str, fmt: str) -> str:
    """The part of a line before a comment (JSON has none)."""
    if fmt == "json" or "#" not in line:
        return line
    quote = ""
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in ("'", '"'):
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


_SHELL_ASSIGNMENT = re.compile(
    r"(?:^|[\s;&|(])(?:(?:export|local|readonly|declare)\s+(?:-\w+\s+)*)?([A-Za-z_][A-Za-z0-9_]*)=|"
    r"\bfor\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\b|\bread\s+(?:-\w+\s+)*([A-Za-z_][A-Za-z0-9_]*)",
    re.MULTILINE,
)


_LITERAL_ASSIGNMENT = re.compile(
    r"^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)="
    r"(?:\"([^\"$`\\]*)\"|'([^']*)'|([^\s\"'$`\\;&|]*))[ \t]*(?:#.*)?$",
    re.MULTILINE,
)


def _shell_assigned(text: str) -> set[str]:
    """Variables a shell launch file sets itself (``MODEL=...``, ``export PORT=...``, ``for X in``, ``read X``).

    Their value comes from the script, not the environment: an unset one there is no finding.
    """
    return {name for match in _SHELL_ASSIGNMENT.finditer(text) for name in match.groups() if name}


def shell_literals(text: str) -> dict[str, str]:
    """``MODEL=/models/glm`` lines of a shell launch file: the literal values the script gives its variables.

    Only a line that is one plain assignment (no ``$``, backquote or escape in the value): its value is
    what the shell substitutes for ``$MODEL`` later in the script, whatever the environment holds.
    """
    return {m.group(1): next(v for v in m.groups()[1:] if v is not None) for m in _LITERAL_ASSIGNMENT.finditer(text)}


def _unquoted_single(code: str) -> str:
    """``code`` with the text inside single quotes blanked (same length): the shell expands nothing there."""
    out, inside, double = [], False, False
    for char in code:
        if char == "'" and not double:
            inside = not inside
            out.append(char)
        else:
            double = double != (char == '"' and not inside)
            out.append(" " if inside else char)
    return "".join(out)


def _env_diagnostics(source: Source, fmt: str, environ: Mapping[str, str]) -> list[Diagnostic]:
    text = source.text
    found: list[Diagnostic] = []
    done_lines: set[int] = set()
    shell = fmt == "flags"  # a shell launch file: the shell expands $NAME too, not inside '...'
    if shell:
        environ = {**dict.fromkeys(_shell_assigned(text), "set by the script"), **environ}
    marker = "$" if shell else "${"
    hit = text.find(marker)
    while hit >= 0:
        line_start = text.rfind("\n", 0, hit) + 1
        line_end = text.find("\n", hit)
        line_end = len(text) if line_end < 0 else line_end
        if line_start not in done_lines:
            done_lines.add(line_start)
            code = _code_part(text[line_start:line_end], fmt)
            code = _unquoted_single(code) if shell else code
            found.extend(_line_env_diagnostics(source, code, line_start, environ, shell=shell))
            if len(found) >= MAX_ENV_DIAGNOSTICS:
                return found[:MAX_ENV_DIAGNOSTICS]
        hit = text.find(marker, line_end)
    return found


def _line_env_diagnostics(
    source: Source, code: str, offset: int, environ: Mapping[str, str], *, shell: bool = False
) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for ref in envvars.references(code, shell=shell):
        if len(found) >= MAX_ENV_DIAGNOSTICS:
            break
        line, column = source.position(offset + ref.start)
        written = code[ref.start : min(ref.end, ref.start + 2 + envvars.UNCLOSED_SHOWN)]
        if ref.problem == "unclosed":
            found.append(
                diag(
                    source,
                    "config.env-unclosed",
                    f"'{written.strip()}' opens an environment reference with '${{' but never closes it with '}}'",
                    line,
                    column,
                    fix=f"write ${{{ref.name.split()[0] if ref.name.split() else 'NAME'}}}",
                    expected="${NAME} or ${NAME:-default}",
                    check=ENV,
                )
            )
        elif ref.problem == "invalid-name":
            base, dash, rest = ref.name.partition("-")
            suggestion = (
                f"${{{base}:-{rest}}}"
                if dash and envvars.NAME.match(base)
                else f"${{{re.sub(r'[^A-Za-z0-9_]', '_', ref.name.strip()) or 'NAME'}}}"
            )
            found.append(
                diag(
                    source,
                    "config.env-invalid-name",
                    f"{written} is not a valid reference: a variable name is letters, digits and '_' "
                    "and does not start with a digit",
                    line,
                    column,
                    fix=f"write {suggestion}",
                    expected="${NAME}, ${NAME:-default}, ${NAME:default} or ${NAME-default}",
                    check=ENV,
                )
            )
        elif ref.unset_only and ref.default and re.fullmatch(r"[A-Z0-9_\-]+", ref.default):
            joined = f"{ref.name}_{ref.default}".replace("-", "_")
            found.append(
                diag(
                    source,
                    "config.env-dash",
                    f"{written} reads as variable {ref.name} with the default '{ref.default}' "
                    f"(the shell's ${{NAME-default}} form): variable names cannot contain '-'",
                    line,
                    column,
                    severity="warning",
                    fix=f"write ${{{joined}}}   (or ${{{ref.name}:-{ref.default}}} if a default was meant)",
                    expected=f"${{{joined}}}",
                    check=ENV,
                )
            )
        elif ref.name not in environ and ref.default is None:
            found.append(
                diag(
                    source,
                    "config.env-unset",
                    f"environment variable {ref.name} is not set and {written} has no default: "
                    + (
                        "the shell expands it to nothing, so the flag gets an empty value or takes the next word"
                        if shell
                        else "the service would read the text literally or fail"
                    ),
                    line,
                    column,
                    fix=f"export {ref.name}=...   (or give a default: ${{{ref.name}:-VALUE}})",
                    expected=f"{ref.name} set",
                    check=ENV,
                )
            )
        elif ref.default is None and not environ.get(ref.name) and not ref.unset_only:
            found.append(
                diag(
                    source,
                    "config.env-empty",
                    f"environment variable {ref.name} is set but empty, so {written} expands to an empty string",
                    line,
                    column,
                    severity="warning",
                    fix=f"export {ref.name}=...   (or give a default: ${{{ref.name}:-VALUE}})",
                    expected=f"{ref.name} not empty",
                    check=ENV,
                )
            )
    return found


class _Walker:
    """Interpolates every string value and records secrets and relative paths."""

    def __init__(
        self, parsed: Parsed, source: Source, environ: Mapping[str, str], folder: Path, cwd: Path, *, shell: bool
    ) -> None:
        self.parsed = parsed
        self.source = source
        self.environ = environ
        self.folder = folder
        self.cwd = cwd
        self.env_refs: dict[str, list[str]] = {}
        self.secrets: dict[str, SecretFacts] = {}
        self.paths: dict[str, PathFacts] = {}
        self.diagnostics: list[Diagnostic] = []
        self.shell = shell
        """A shell launch file: the shell expands ``$NAME`` as it does ``${NAME}``."""

    def walk(self, node: Any, path: tuple[Any, ...]) -> None:
        """Interpolate and inspect every string below ``node`` in place."""
        items = node.items() if type(node) is dict else enumerate(node)
        changes: list[tuple[Any, Any]] = []
        for key, value in items:
            kind = type(value)
            if kind is str:
                if "$" in value or (type(key) is str and _interesting_key(key)):
                    new = self.string(value, (*path, key))
                    if new is not value:
                        changes.append((key, new))
            elif kind is dict or kind is list:
                self.walk(value, (*path, key))
        for key, new in changes:
            node[key] = new

    def string(self, value: str, path: tuple[Any, ...]) -> Any:
        """The interpolated (and, for secrets, masked) value of one string."""
        name = dotted(path)
        result: Any = value
        variables: list[str] = []
        if "$" in value:
            result, variables = envvars.expand(value, self.environ, shell=self.shell)
            if variables:
                self.env_refs[name] = variables
            elif envvars.is_bare_reference(value) and not self.shell:
                line, column = self.parsed_position(name)
                self.diagnostics.append(
                    diag(
                        self.source,
                        "config.env-unbraced",
                        f"{value} is not interpolated: only ${{NAME}} forms are",
                        line,
                        column,
                        severity="warning",
                        fix=f"write ${{{value[1:]}}}",
                        expected=f"${{{value[1:]}}}",
                        key=name,
                        check=ENV,
                    )
                )
        key = path[-1] if path else ""
        secret_var = any(may_be_secret_variable(v) for v in variables)
        if isinstance(result, str) and (secret_var or (isinstance(key, str) and is_secret_key(key))):
            text = result
            unresolved = "${" in text and bool(variables)
            source = "env" if variables else ("empty" if not text else "literal")
            self.secrets[name] = SecretFacts(
                source=source,
                length=0 if unresolved else len(text),
                placeholder=bool(text) and not unresolved and is_placeholder(text),
                variables=variables,
            )
            if text and not unresolved:
                result = REDACTED
        elif isinstance(result, str) and isinstance(key, str) and _is_path_key(key):
            self.path(name, result)
        return result

    def parsed_position(self, name: str) -> tuple[int | None, int | None]:
        pos = self.parsed.positions.get(name)
        return (pos[0], pos[1]) if pos else (None, None)

    def path(self, name: str, value: str) -> None:
        if not value or "$" in value or "://" in value or value.startswith("~"):
            return
        candidate = Path(value)
        if candidate.is_absolute():
            return
        by_config = (self.folder / candidate).resolve()
        by_cwd = (self.cwd / candidate).resolve()
        self.paths[name] = PathFacts(
            value=value,
            config_relative=str(by_config),
            cwd_relative=str(by_cwd),
            config_exists=by_config.exists(),
            cwd_exists=by_cwd.exists(),
        )


def load_config(path: Path, *, shown: str, source: str, cwd: Path, environ: Mapping[str, str]) -> ConfigFacts:
    """Read, parse and interpolate the config at ``path`` (``shown`` is how findings name it)."""
    folder = str(path.parent.resolve())
    base: dict[str, Any] = {"path": shown, "source": source, "folder": folder, "cwd": str(cwd)}
    try:
        raw = read_bytes(path, "config")
    except FileNotFoundError:
        return ConfigFacts(**base, exists=False, diagnostics=[_missing(shown, source)])
    except IsADirectoryError:
        return ConfigFacts(**base, exists=False, diagnostics=[_missing(shown, source, "is a folder, not a file")])
    except OSError as exc:
        message = f"cannot read {shown}: {exc.strerror or exc}"
        refused = isinstance(exc, RefusedFile)
        fix = "point --config at the regular config file" if refused else f"chmod a+r {quote(shown)}"
        return ConfigFacts(
            **base,
            exists=False,
            diagnostics=[Diagnostic("config.syntax", "config.unreadable", "error", message, fix=fix)],
        )
    return parse_config(raw, shown=shown, source=source, folder=Path(folder), cwd=cwd, environ=environ)


def parse_config(
    raw: bytes, *, shown: str, source: str = "--config", folder: Path, cwd: Path, environ: Mapping[str, str]
) -> ConfigFacts:
    """Config facts from the raw bytes of a file named ``shown``."""
    text, diagnostics = decode(raw, shown)
    src = Source(text)
    fmt = detect_format(shown, text)
    base: dict[str, Any] = {
        "path": shown,
        "source": source,
        "format": fmt,
        "size": len(raw),
        "line_count": src.line_count,
        "folder": str(folder),
        "cwd": str(cwd),
    }
    if any(d.code == "config.encoding" and d.line == 1 and not text for d in diagnostics):
        return ConfigFacts(**base, diagnostics=_ordered(diagnostics))
    if not text.strip():
        diagnostics.append(_empty(shown, src))
        return ConfigFacts(**base, diagnostics=_ordered(diagnostics))
    parsed = parse(src, fmt)
    diagnostics.extend(parsed.diagnostics)
    data = parsed.data
    if data is None and not parsed.diagnostics:
        diagnostics.append(_empty(shown, src))
    elif data is not None and not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a single {type(data).__name__} value"
        diagnostics.append(
            diag(
                src,
                "config.not-mapping",
                f"the config is {kind}; it must be a mapping of keys to values (model_path: ..., device: ...)",
                1,
                1,
                fix="write the settings as 'key: value' lines",
                expected="a mapping",
            )
        )
        data = None
    diagnostics.extend(_env_diagnostics(src, fmt, environ))
    if not isinstance(data, dict):
        return ConfigFacts(**base, positions=parsed.positions, diagnostics=_ordered(diagnostics))
    shell = fmt == "flags"  # the script's own plain assignments win over the environment, as in the shell
    walker = _Walker(parsed, src, {**environ, **shell_literals(text)} if shell else environ, folder, cwd, shell=shell)
    walker.walk(data, ())
    diagnostics.extend(walker.diagnostics)
    return ConfigFacts(
        **base,
        data={str(k): v for k, v in data.items()},
        engine=engine_of(text, fmt, data),
        words=parsed.words,
        parsed=True,
        positions=parsed.positions,
        diagnostics=_ordered(diagnostics),
        env_refs=walker.env_refs,
        secrets=walker.secrets,
        paths=walker.paths,
    )


def _ordered(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """In file order, each with the values of secret keys masked in its excerpt and message.

    Masked here, at the source: a file that does not parse gives no values to mask later, and
    its excerpt quotes the raw line (``password: my secret`` with spaces, an unclosed quote).
    """
    masked = [
        dataclasses.replace(d, excerpt=mask_after_secret_keys(d.excerpt), message=mask_after_secret_keys(d.message))
        for d in diagnostics
    ]
    return sorted(masked, key=lambda d: (d.line or 0, d.column or 0))


def _empty(shown: str, src: Source) -> Diagnostic:
    return diag(
        src,
        "config.empty",
        f"{shown} is empty (or holds only comments): the service would start with no settings",
        1,
        1,
        fix="add the settings (model_path, device, ...) or point --config at the right file",
        expected="a mapping of settings",
    )


def _missing(shown: str, source: str, what: str = "does not exist") -> Diagnostic:
    named_by = {"--config": "--config", "AUTOGLM_CONFIG": "the AUTOGLM_CONFIG environment variable"}.get(
        source, "discovery"
    )
    return Diagnostic(
        check="config.syntax",
        code="config.missing",
        severity="error",
        message=f"the config {shown} named by {named_by} {what}",
        fix=f"pass the right file with --config, or create {shown}",
        expected="an existing YAML or JSON file",
    )


LAUNCH, REQUEST, CONFIG = "launch", "request", "config"
"""What a file given to ``check`` is, by its content."""


def file_kind(name: str, text: str) -> str:
    """What a file is, by its content: ``launch``, ``request`` or ``config``.

    ``launch``: a vLLM/SGLang command, or a YAML/JSON mapping of its flags; ``request``: a JSON array
    of request items, as ``--request`` takes; ``config``: the doctor's own deployment config.
    Stable entry point: role detection calls it too (a launch command found means a server).
    """
    fmt = detect_format(name, text)
    if fmt == "json" and text.lstrip().startswith("["):
        return REQUEST
    if fmt == "flags":
        return LAUNCH if engine_of(text, fmt, None) or "--" in text else CONFIG
    parsed = parse(text[: 1 << 20], fmt)
    data = parsed.data if isinstance(parsed.data, dict) else None
    return LAUNCH if data and engine_of(text, fmt, data) else CONFIG


def kind_of_file(path: Path) -> str:
    """:func:`file_kind` of a file on disk (``config`` when it cannot be read: the run reports why)."""
    try:
        raw = read_bytes(path, "config")
    except OSError:
        return CONFIG
    text, _ = decode(raw, str(path))
    return file_kind(str(path), text)


def gather(options: GatherOptions) -> ConfigFacts | None:
    """Find, read and parse the deployment config (None when there is none to find)."""
    found = discover(options)
    if found is None:
        return None
    path, source = found
    shown = str(options.config) if source == "--config" and options.config is not None else str(path)
    return load_config(path, shown=shown, source=source, cwd=options.cwd, environ=dict(os.environ))


__all__ = ["POSITION_DEPTH", "file_kind", "gather", "is_secret_key", "kind_of_file", "load_config", "parse_config"]
