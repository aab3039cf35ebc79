"""Secrets never reach a report: every format goes through the redaction in report.render."""

from __future__ import annotations

import pytest

from autoglm_doctor.model import CheckResult, Location, Report, Status, error, warning
from autoglm_doctor.report import Format, RenderOptions, render

TOKEN = "hfQz7TokenValue9xK2"
PASSWORD = "s3cretPassw0rd"
URL = f"https://deploy:{PASSWORD}@models.example.com/v1"


def _leaky_report() -> Report:
    leak = f"token {TOKEN} and {URL}"
    return Report(
        results=(
            CheckResult(
                id="service.endpoint",
                title=f"Endpoint {URL}",
                category="service",
                status=Status.FAIL,
                findings=(
                    error(
                        "service.unreachable",
                        f"{URL} refused the request made with {TOKEN}",
                        fix=f"curl -H 'Authorization: Bearer {TOKEN}' {URL}",
                        location=Location(f"/cfg/{TOKEN}.yaml", 3, 1),
                        observed=leak,
                        expected=leak,
                    ),
                ),
            ),
            CheckResult(
                id="service.auth",
                title="Auth",
                category="service",
                status=Status.WARN,
                findings=(warning("service.weak", leak),),
            ),
            CheckResult(
                id="config.env",
                title="Env",
                category="config",
                status=Status.ERROR,
                findings=(error("check.crashed", leak),),
                traceback=f"Traceback (most recent call last):\nRuntimeError: {leak}\n",
            ),
        ),
        environment={"python": "3.11.7", "executable": f"/home/{TOKEN}/bin/python", "platform": URL},
        created="2026-01-02T03:04:05+00:00",
        tool_version="0.1.0",
        pack="open-autoglm",
    )


@pytest.mark.parametrize("fmt", list(Format))
@pytest.mark.parametrize("verbose", [False, True])
def test_secret_env_value_and_url_password_are_hidden(
    fmt: Format, verbose: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    text = render(_leaky_report(), fmt, RenderOptions(verbose=verbose, width=100))
    assert TOKEN not in text
    assert PASSWORD not in text
    # Masked, not dropped: the reader still sees where the secret was.
    assert "***" in text or r"\*\*\*" in text or "%2A" in text
    assert "models.example.com" in text


def test_without_the_env_var_the_token_is_not_known_to_be_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    # Proves the test above exercises the env-var rule: the value alone is not recognisable.
    monkeypatch.delenv("HF_TOKEN", raising=False)
    text = render(_leaky_report(), Format.JSON, RenderOptions())
    assert TOKEN in text
    assert PASSWORD not in text  # URL credentials are always masked
