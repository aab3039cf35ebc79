"""Keep secrets out of every output: values of secret-looking env vars and URL credentials."""

from __future__ import annotations

import dataclasses
import enum
import os
import re
from typing import Any, TypeVar

SECRET_NAME = re.compile(r"token|key|secret|passw|credential|auth", re.IGNORECASE)
URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/\s:@]*):(?P<password>[^/\s@]+)@")
MASK = "***"
T = TypeVar("T")

# Names that match the secret pattern but whose values are not secret.
NOT_SECRET = {"PHONE_AGENT_DEVICE_ID", "CUDA_VISIBLE_DEVICES"}


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    """Values of environment variables whose names look secret (longest first)."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if SECRET_NAME.search(k) and k not in NOT_SECRET and len(v) >= 4}
    return sorted(values, key=len, reverse=True)


def redact_text(text: str, secrets: list[str]) -> str:
    """``text`` with URL passwords and known secret values masked."""
    text = URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    for value in secrets:
        if value in text:
            text = text.replace(value, MASK)
    return text


def _walk(obj: Any, secrets: list[str]) -> Any:
    if isinstance(obj, enum.Enum):
        return obj
    if isinstance(obj, str):
        return redact_text(obj, secrets)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: _walk(getattr(obj, f.name), secrets) for f in dataclasses.fields(obj)}
        return dataclasses.replace(obj, **changes)
    if isinstance(obj, tuple):
        return tuple(_walk(v, secrets) for v in obj)
    if isinstance(obj, list):
        return [_walk(v, secrets) for v in obj]
    if isinstance(obj, dict):
        return {k: _walk(v, secrets) for k, v in obj.items()}
    return obj


def redact_report(report: T, environ: dict[str, str] | None = None) -> T:
    """A copy of a report (or any dataclass tree) with every string redacted."""
    return _walk(report, secret_values(environ))  # type: ignore[no-any-return]
