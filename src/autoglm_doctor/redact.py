"""Keep secrets out of every output: the rule is documented in docs/security.md.

Three layers, applied in one place each:

- **Snapshots** (``autoglm-doctor snapshot``, any other snapshot writer): :func:`redact_snapshot_data`
  replaces the values of secret-named env vars and config keys by :data:`REDACTED`, and masks
  credentials inside URLs in every string.
- **Reports** (every format, ``-v`` tracebacks included): :func:`redact_report` masks, in every
  string, URL credentials, the values of secret-named env vars of this process, config secret
  values seen while gathering (:func:`register_secret_values`), and ``NAME=value`` /
  ``name: value`` assignments whose name looks secret.
- **Names**: :func:`is_secret_name` decides, word by word, whether a name looks secret.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import os
import re
from collections.abc import Iterable
from typing import Any, TypeVar

PLACEHOLDERS = frozenset(
    {
        "secret-key",
        "secret_key",
        "secretkey",
        "secret",
        "changeme",
        "change-me",
        "change_me",
        "changeit",
        "your-secret-key",
        "your_secret_key",
        "yoursecretkey",
        "your-secret",
        "mysecret",
        "my-secret",
        "my-secret-key",
        "password",
        "passw0rd",
        "123456",
        "12345678",
        "default",
        "test",
        "example",
        "placeholder",
        "xxx",
        "todo",
        "key",
        "token",
        "api-key",
        "sk-xxx",
        "insecure",
        "dev",
        "development",
    }
)
"""Well-known placeholder secrets (compared case-insensitively); the guide's example uses ``secret-key``."""

_PLACEHOLDER_HINT = re.compile(r"change[-_ ]?me|your[-_ ]|replace[-_ ]?me|example|placeholder|x{4,}|<[^<>]*>", re.I)


def is_placeholder(value: str) -> bool:
    """A value that is obviously not a real secret."""
    lower = value.strip().lower()
    return lower in PLACEHOLDERS or bool(_PLACEHOLDER_HINT.search(lower)) or (len(set(lower)) == 1 and len(lower) > 1)


# Kept for compatibility: a quick "might be secret" test. The precise rule is is_secret_name().
SECRET_NAME = re.compile(r"token|key|secret|passw|credential|auth", re.IGNORECASE)
MASK = "***"
"""What a secret inside a longer text becomes."""
REDACTED = "<redacted>"
"""What the value of a secret-named env var or config key becomes in a snapshot."""
T = TypeVar("T")

NOT_SECRET = frozenset(
    {
        "PHONE_AGENT_DEVICE_ID",
        "CUDA_VISIBLE_DEVICES",
        "NVIDIA_VISIBLE_DEVICES",
        "NVIDIA_DRIVER_CAPABILITIES",
        "TOKENIZERS_PARALLELISM",
        "HF_HUB_DISABLE_IMPLICIT_TOKEN",
        "SSH_AUTH_SOCK",
        "XAUTHORITY",
        "PWD",
        "OLDPWD",
    }
)
"""Names that look secret but whose values are not: the doctor shows them in full."""

# Words that make a name secret. A name is split into words at _ - . and camelCase humps.
_SECRET_WORDS = frozenset(
    {
        "token",
        "key",
        "keys",
        "apikey",
        "secret",
        "secrets",
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "pass",
        "credential",
        "credentials",
        "creds",
        "auth",
        "authorization",
        "bearer",
        "cookie",
        "signature",
    }
)
# Fragments that make a name secret wherever they appear (``mypassword``, ``HUGGINGFACEHUB_APITOKEN``).
_SECRET_FRAGMENTS = ("passw", "secret", "credential", "apikey", "apitoken", "accesstoken", "authtoken", "privatekey")
# Words that, next to a secret word, make a name a count, a setting or a pointer to a secret
# (its file, its env var, its name) rather than the secret itself.
_SETTING_WORDS = frozenset(
    {
        "max",
        "min",
        "num",
        "count",
        "length",
        "len",
        "limit",
        "size",
        "id",
        "ids",
        "type",
        "mode",
        "method",
        "scheme",
        "provider",
        "header",
        "name",
        "file",
        "path",
        "dir",
        "url",
        "uri",
        "host",
        "endpoint",
        "env",
        "var",
        "variable",
        "enabled",
        "required",
        "require",
    }
)
MIN_SECRET_LENGTH = 8
"""Shorter values are never masked as substrings of other text (they would garble it)."""
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")

# Every pattern here is linear in the text: a match may only start where the previous character
# cannot continue the run it begins with (the lookbehinds), so no run is rescanned from each of
# its characters (a 100 KB alphanumeric line took 21 s with the old URL pattern), and no two
# adjacent repeats can share characters. tests/test_security.py times each on hostile lines.
URL_CREDENTIALS = re.compile(
    r"(?<![a-zA-Z0-9+.-])(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/\s:@?#]*):(?P<password>[^/\s?#]*)@"
)
"""``scheme://user:password@``; the password runs to the authority's last ``@`` (``p@ss`` included)."""
_URL_QUERY_SECRET = re.compile(r"(?P<head>[?&](?P<name>[A-Za-z0-9_.-]+)=)(?P<value>[^&#\s'\"]+)")
_ASSIGNMENT = re.compile(r"(?<![A-Za-z0-9_.-])-{0,2}(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)=(?P<value>[^\s'\",;&]+)")
# A config line as an excerpt shows it: indentation (tabs shown as →), an optional list dash,
# ``name: value`` or ``name = value``, an optional trailing comma or comment.
_LINE_ASSIGNMENT = re.compile(
    r"^(?P<head>[ \t→…]*(?:-[ \t]*)?[\"']?(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)[\"']?[ \t]*[:=][ \t]*)"
    r"(?P<quote>[\"']?)(?P<value>[^\s\"',{}\[\]#]+)(?P<tail>[\"']?[ \t]*,?[ \t]*(?:#.*)?)$",
    re.MULTILINE,
)
# A JSON pair anywhere in a line: "name": "value".
_JSON_PAIR = re.compile(r"(?P<head>\"(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)\"[ \t]*:[ \t]*\")(?P<value>[^\"\n]+)\"")
_BEARER = re.compile(r"\b(?P<head>(?:Bearer|Basic|Token)\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})")
_HARMLESS_VALUES = frozenset({"true", "false", "yes", "no", "on", "off", "null", "none", "~", "", MASK, REDACTED})

_registered: set[str] = set()


def name_words(name: str) -> list[str]:
    """A name split into lower-case words (``OPENAI_API_KEY`` -> openai, api, key; ``apiKey`` -> api, key)."""
    return [w.lower() for w in _WORD_SPLIT.split(name) if w]


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Whether a variable or config key named ``name`` holds a secret.

    Secret: a word token, key, secret, password, credential, auth (and their spellings) or a
    fragment such as ``passw``/``apikey`` anywhere. Not secret: allowlisted names
    (:data:`NOT_SECRET`) and counts/settings such as ``max_new_tokens``, ``num_key_value_heads``,
    ``tokenizer`` or ``keyboard`` (secret words only count as whole words).
    """
    if name in NOT_SECRET or is_setting_name(name):  # exact case: a config key `pwd` is a password
        return False
    if name[:1].isupper() and name.endswith(("Error", "Exception", "Warning")):
        return False  # "KeyError: 'torch'" in a traceback is an exception, not a key
    flat = name.lower().replace("_", "").replace("-", "").replace(".", "")
    if any(fragment in flat for fragment in _SECRET_FRAGMENTS):
        return True
    return any(word in _SECRET_WORDS for word in name_words(name))


def may_be_secret_variable(name: str) -> bool:
    """The quick test the config area applies to ``${VAR}`` names: a secret-looking word, not allowlisted."""
    return bool(SECRET_NAME.search(name)) and name not in NOT_SECRET


def is_setting_name(name: str) -> bool:
    """A name with a count/setting word (``max_new_tokens``, ``auth_mode``, ``api_key_file``)."""
    return any(word in _SETTING_WORDS for word in name_words(name))


def _harmless(value: str) -> bool:
    """Values that cannot be secrets: booleans, nulls, short numbers, ``$VAR`` references, ``<placeholders>``."""
    stripped = value.strip().strip("\"'")
    return stripped.lower() in _HARMLESS_VALUES or stripped.startswith(("$", "<", "***")) or _is_number(stripped)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return len(text) < 6  # short numbers are settings; a long numeric PIN/secret is still masked


def register_secret_values(values: Iterable[str]) -> None:
    """Remember secret values seen while gathering (config keys), so reports mask them too.

    Placeholders (``changeme``) and very short values are not worth hiding and would mask
    ordinary words in every later report of the process.
    """
    _registered.update(
        v
        for v in values
        if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH and not _harmless(v) and not is_placeholder(v)
    )


def secret_values_in(data: Any, inherited: bool = False) -> list[str]:
    """String values stored under secret-named keys anywhere in ``data`` (a parsed config)."""
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            found.extend(secret_values_in(value, _secret_child(str(key), inherited)))
    elif isinstance(data, list):
        for item in data:
            found.extend(secret_values_in(item, inherited))
    elif inherited and _could_be_secret(data):
        found.append(str(data))
    return found


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    """Values to mask in reports: secret-named env vars plus registered config secrets (longest first)."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if is_secret_name(k) and len(v) >= MIN_SECRET_LENGTH and not _harmless(v)}
    values.update(_registered)
    return sorted(values, key=len, reverse=True)


def redact_url(text: str) -> str:
    """``text`` with passwords inside URLs and secret-named query parameters masked."""
    text = URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    if "?" in text or "&" in text:
        text = _URL_QUERY_SECRET.sub(
            lambda m: f"{m['head']}{MASK}" if is_secret_name(m["name"]) else m.group(0),
            text,
        )
    return text


def _mask_assignment(match: re.Match[str]) -> str:
    if is_secret_name(match["name"]) and not _harmless(match["value"]):
        return match.group(0)[: match.start("value") - match.start()] + MASK
    return match.group(0)


def _mask_line(match: re.Match[str]) -> str:
    if is_secret_name(match["name"]) and not _harmless(match["value"]):
        return f"{match['head']}{match['quote']}{MASK}{match['tail']}"
    return match.group(0)


def _mask_json_pair(match: re.Match[str]) -> str:
    if is_secret_name(match["name"]) and not _harmless(match["value"]):
        return f'{match["head"]}{MASK}"'
    return match.group(0)


_SECRET_KEY_START = re.compile(r"(?<![A-Za-z0-9_.-])-{0,2}[\"']?(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)[\"']?[ \t]*[:=]")


def mask_after_secret_keys(text: str) -> str:
    """Each line of ``text`` cut after the first secret-named ``key:`` / ``key=`` it holds (linear).

    For raw lines of a file that may not parse (a syntax finding's excerpt): the value of
    ``password: my secret`` (spaces), ``{password: x, host: [y}`` (flow style) or an unclosed
    quote cannot be found by parsing, so everything after the key is masked.
    """
    if ":" not in text and "=" not in text:
        return text
    lines = text.split("\n")
    for number, line in enumerate(lines):
        for match in _SECRET_KEY_START.finditer(line):
            if is_secret_name(match["name"]):
                rest = line[match.end() :].strip()
                if rest and not _harmless(rest):
                    lines[number] = f"{line[: match.end()]} {MASK}"
                break
    return "\n".join(lines)


def redact_text(text: str, secrets: list[str]) -> str:
    """``text`` with URL credentials, known secret values and secret-named assignments masked."""
    text = redact_url(text)
    for value in secrets:
        if value in text:
            text = text.replace(value, MASK)
    if "=" in text:
        text = _ASSIGNMENT.sub(_mask_assignment, text)
    if ":" in text or "=" in text:
        text = _LINE_ASSIGNMENT.sub(_mask_line, text)
    if '"' in text:
        text = _JSON_PAIR.sub(_mask_json_pair, text)
    if "Bearer" in text or "Basic" in text or "Token" in text:
        text = _BEARER.sub(lambda m: f"{m['head']}{MASK}", text)
    return text


def _walk(obj: Any, secrets: list[str]) -> Any:
    if isinstance(obj, enum.Enum):
        return obj
    if isinstance(obj, str):
        return redact_text(obj, secrets)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: _walk(getattr(obj, f.name), secrets) for f in dataclasses.fields(obj) if f.init}
        return dataclasses.replace(obj, **changes)
    if isinstance(obj, tuple):
        return tuple(_walk(v, secrets) for v in obj)
    if isinstance(obj, list):
        return [_walk(v, secrets) for v in obj]
    if isinstance(obj, dict):
        return {k: _walk(v, secrets) for k, v in obj.items()}
    return obj


def redact_report(report: T, environ: dict[str, str] | None = None, *, secrets: list[str] | None = None) -> T:
    """A copy of a report (or any dataclass tree) with every string redacted (``secrets``: when already known)."""
    return _walk(report, secret_values(environ) if secrets is None else secrets)  # type: ignore[no-any-return]


def redact_env_value(name: str, value: str) -> str:
    """The value of env var ``name`` as a snapshot stores it."""
    if is_secret_name(name) and value:
        return REDACTED
    return redact_url(value)


def _secret_child(key: str, inherited: bool) -> bool:
    """Whether the value under ``key`` is secret: its own name, or a secret parent (``auth.secret``)."""
    return is_secret_name(key) or (inherited and not is_setting_name(key))


# Top-level snapshot fields that are structure, never content: left exactly as they are.
_SNAPSHOT_STRUCTURE = frozenset({"env", "schema", "tool_version", "created"})


def _redact_config(data: Any, inherited: bool) -> Any:
    if isinstance(data, dict):
        return {k: _redact_config(v, _secret_child(str(k), inherited)) for k, v in data.items()}
    if isinstance(data, list):
        return [_redact_config(v, inherited) for v in data]
    if inherited and _could_be_secret(data):
        return REDACTED
    if isinstance(data, str):
        return redact_url(data)
    return data


def _could_be_secret(value: Any) -> bool:
    """A scalar stored under a secret name that is worth hiding (not true/null/$VAR/<placeholder>/5)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return False
    return not _harmless(str(value))


def _redact_strings(data: Any, secrets: list[str]) -> Any:
    if isinstance(data, dict):
        return {k: _redact_strings(v, secrets) for k, v in data.items()}
    if isinstance(data, list):
        return [_redact_strings(v, secrets) for v in data]
    if isinstance(data, str):
        return redact_text(data, secrets)
    return data


def redact_snapshot_data(data: dict[str, Any], environ: dict[str, str] | None = None) -> dict[str, Any]:
    """A snapshot's JSON data (``to_data(snapshot)``) safe to write to a file or share.

    - ``env``: values of secret-named variables become ``<redacted>``; URL credentials masked.
    - ``config.data``: values under secret-named keys (recursively: everything under ``auth:``
      except booleans and nulls) become ``<redacted>``; URL credentials masked in every string.
    - every other string: URL credentials, secret values of this process's environment and of
      the config, and secret-named ``NAME=value`` assignments are masked.

    Booleans, nulls and the data's shape are kept, so ``check --snapshot`` still re-evaluates it.
    """
    out = dict(data)
    config = out.get("config")
    secrets = list(secret_values(environ))
    if isinstance(config, dict) and isinstance(config.get("data"), dict):
        secrets = sorted(set(secrets) | set(secret_values_in(config["data"])), key=len, reverse=True)
        secrets = [s for s in secrets if len(s) >= MIN_SECRET_LENGTH and not _harmless(s)]
        config = dict(config)
        config["data"] = _redact_config(config["data"], False)
        out["config"] = config
    env = out.get("env")
    if isinstance(env, dict):
        out["env"] = {k: redact_env_value(k, v) if isinstance(v, str) else v for k, v in env.items()}
    return {k: v if k in _SNAPSHOT_STRUCTURE else _redact_strings(v, secrets) for k, v in out.items()}


def snapshot_json(snapshot: Any) -> str:
    """A Snapshot as the indented, redacted JSON every snapshot writer must use (``Snapshot.to_json``)."""
    return str(snapshot.to_json())
