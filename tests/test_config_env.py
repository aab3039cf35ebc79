"""Env-var interpolation: the accepted forms, their positions, typed results and secrets never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoglm_doctor.configfile.envvars import expand, references
from autoglm_doctor.configfile.load import is_secret_key, parse_config
from autoglm_doctor.model import Report
from autoglm_doctor.probe.snapshot import Snapshot
from autoglm_doctor.redact import is_placeholder
from tests.helpers.config_lint import run_checks, snapshot


def _facts(text: str, environ: dict[str, str], name: str = "deploy.yaml"):  # type: ignore[no-untyped-def]
    return parse_config(text.encode(), shown=name, folder=Path("/srv/app"), cwd=Path("/srv"), environ=environ)


@pytest.mark.parametrize(
    ("text", "environ", "result"),
    [
        ("${A}", {"A": "x"}, "x"),
        ("${A:-d}", {}, "d"),
        ("${A:-d}", {"A": ""}, "d"),
        ("${A:-d}", {"A": "set"}, "set"),
        ("${A:d}", {}, "d"),
        ("${A:d}", {"A": "set"}, "set"),
        ("${A:-}", {}, ""),
        ("${A-d}", {}, "d"),
        ("${A-d}", {"A": ""}, ""),
        ("${A-d}", {"A": "set"}, "set"),
        ("pre-${A}-${B:-b}/post", {"A": "a"}, "pre-a-b/post"),
        ("${PORT}", {"PORT": "8000"}, 8000),
        ("${FLAG:-true}", {}, True),
        ("${R:-0.5}", {}, 0.5),
        ("costs $${PRICE}", {}, "costs ${PRICE}"),
        ("${MISSING}", {}, "${MISSING}"),
        ("$HOME", {"HOME": "/root"}, "$HOME"),
    ],
)
def test_expand_forms(text: str, environ: dict[str, str], result: object) -> None:
    assert expand(text, environ)[0] == result


def test_references_find_problems_with_offsets() -> None:
    refs = list(references("a ${OK} ${1BAD} ${X-y} ${MY-VAR.x} ${OPEN"))
    assert [(r.start, r.name, r.problem) for r in refs] == [
        (2, "OK", ""),
        (8, "1BAD", "invalid-name"),
        (16, "X", ""),
        (23, "MY", ""),
        (35, "OPEN", "unclosed"),
    ]


def test_diagnostics_point_at_each_reference() -> None:
    text = "model_path: ${WEIGHTS}/glm  # ${IN_A_COMMENT}\nport: ${PORT:-8000}\nhost: ${HOST}\nx: ${X-DEFAULT}\n"
    facts = _facts(text, {"HOST": ""})
    got = [(d.check, d.code, d.line, d.column) for d in facts.diagnostics]
    assert got == [
        ("config.env", "config.env-unset", 1, 13),
        ("config.env", "config.env-empty", 3, 7),
        ("config.env", "config.env-dash", 4, 4),
    ]
    assert facts.diagnostics[2].fix == "write ${X_DEFAULT}   (or ${X:-DEFAULT} if a default was meant)"
    assert facts.data["port"] == 8000
    assert facts.env_refs == {"model_path": ["WEIGHTS"], "port": ["PORT"], "host": ["HOST"], "x": ["X"]}


def test_json_references_are_located_too() -> None:
    facts = _facts('{\n  "model": {"model_path": "${NOPE_UNSET}"}\n}\n', {}, "c.json")
    assert [(d.code, d.line, d.column) for d in facts.diagnostics] == [("config.env-unset", 2, 28)]


def test_secret_values_are_masked_and_never_printed() -> None:
    secret = "planted-Secret-Value-0123456789abcdef"
    facts = _facts(
        "auth:\n  secret_key: ${SIGNING}\napi_key: ${OPENAI_API_KEY}\nmax_new_tokens: 64\nlabel: ${OPENAI_API_KEY}\n",
        {"SIGNING": secret, "OPENAI_API_KEY": "sk-planted-123456"},
    )
    assert facts.data["auth"]["secret_key"] == "<redacted>"
    assert facts.data["api_key"] == "<redacted>"
    assert facts.data["label"] == "<redacted>"  # a secret variable stays secret under any key
    assert facts.data["max_new_tokens"] == 64
    assert facts.secrets["auth.secret_key"].source == "env"
    assert facts.secrets["auth.secret_key"].length == len(secret)
    snap = snapshot(facts)
    text = snap.to_json()
    results = run_checks(snap)
    report = json.dumps(Report(results=tuple(results.values())).to_dict())
    for planted in (secret, "sk-planted-123456"):
        assert planted not in text and planted not in report
    assert Snapshot.from_dict(json.loads(text)).config == facts


def test_short_secret_from_env_fails_without_showing_it() -> None:
    facts = _facts("auth:\n  secret_key: ${SIGNING}\n", {"SIGNING": "hunter2"})
    results = run_checks(snapshot(facts))
    (finding,) = results["config.values"].findings
    assert finding.code == "config.weak-secret"
    assert "hunter2" not in json.dumps(finding.to_dict())
    assert finding.fix == "export SIGNING=$(openssl rand -hex 32)"


def test_hardcoded_secret_fix_reads_it_from_the_environment() -> None:
    facts = _facts("auth:\n  secret_key: changeme\n", {})
    (finding,) = run_checks(snapshot(facts))["config.values"].findings
    assert finding.code == "config.weak-secret" and finding.location is not None and finding.location.line == 2
    assert "${AUTOGLM_SECRET_KEY}" in (finding.fix or "")
    assert "changeme" not in finding.message


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("secret_key", True),
        ("api_key", True),
        ("password", True),
        ("hf_token", True),
        ("max_new_tokens", False),
        ("require_token", True),
        ("device_map", False),
        ("key", False),
        ("cache_key", False),
    ],
)
def test_secret_key_names(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


def test_placeholders() -> None:
    assert is_placeholder("secret-key") and is_placeholder("CHANGEME") and is_placeholder("your-secret-here")
    assert is_placeholder("xxxxxxxx") and not is_placeholder("q8Zr3xVt0pLk5mNw2bYc7dHf9sJg4aEu")


def test_bool_under_a_secret_looking_key_is_kept() -> None:
    facts = _facts("auth:\n  require_token: true\n", {})
    assert facts.data == {"auth": {"require_token": True}} and facts.secrets == {}
