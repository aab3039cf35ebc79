"""Planted secrets appear in no output: five report formats, -v, --output, the snapshot, `check --snapshot`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoglm_doctor import cli, redact
from autoglm_doctor.configfile.facts import ConfigFacts
from autoglm_doctor.model import CheckResult, Location, Report, Status, error, info, warning
from autoglm_doctor.probe.snapshot import PythonFacts, Snapshot
from autoglm_doctor.report import Format, RenderOptions, render

CONFIG_API_KEY = "sk-cfg-PLANTED-4f8a9c2e71"
CONFIG_SIGNING = "signing-PLANTED-0c9d8e11"
CONFIG_URL_PASSWORD = "urlPW-PLANTED-93kd"
ENV_URL_PASSWORD = "envPW-PLANTED-5tq2"
HF_TOKEN = "hf_PLANTEDtokenAbCdEf123456"
OPENAI_API_KEY = "sk-openai-PLANTED-77aa88bb"
PLANTED = (CONFIG_API_KEY, CONFIG_SIGNING, CONFIG_URL_PASSWORD, ENV_URL_PASSWORD, HF_TOKEN, OPENAI_API_KEY)

CONFIG = f"""\
model:
  model_path: ./model
  device: cpu
  torch_dtype: float32
  max_new_tokens: 64
  api_key: {CONFIG_API_KEY}
service:
  base_url: https://bob:{CONFIG_URL_PASSWORD}@models.example.com/v1
auth:
  require_token: true
  secret_key: {CONFIG_SIGNING}
"""


def assert_clean(text: str) -> None:
    leaked = [secret for secret in PLANTED if secret in text]
    assert not leaked, f"secrets leaked: {leaked}"


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    (work / "model").mkdir()
    config = work / "autoglm.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_API_KEY)
    monkeypatch.setenv("PHONE_AGENT_BASE_URL", f"http://agent:{ENV_URL_PASSWORD}@127.0.0.1:9/v1")
    for name in ("AUTOGLM_CONFIG", "MODEL_WEIGHT_PATH"):
        monkeypatch.delenv(name, raising=False)
    return config


@pytest.mark.parametrize("fmt", [f.value for f in Format])
@pytest.mark.parametrize("verbose", [False, True])
def test_check_output_has_no_secret(
    fmt: str, verbose: bool, deployment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["check", "--no-smoke", "--config", str(deployment), "--format", fmt]
    code = cli.main(args + (["-v"] if verbose else []))
    out, err = capsys.readouterr()
    assert code in (0, 1), err
    assert out.strip()
    assert_clean(out)
    assert_clean(err)


def test_check_output_file_has_no_secret(deployment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = deployment.parent / "report.json"
    code = cli.main(["check", "--no-smoke", "--config", str(deployment), "--format", "json", "--output", str(target)])
    assert code in (0, 1)
    text = target.read_text(encoding="utf-8")
    assert json.loads(text)["schema"] == "autoglm-doctor/report@1"
    assert_clean(text)
    assert_clean("".join(capsys.readouterr()))


def test_snapshot_has_no_secret_and_still_reevaluates(deployment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = deployment.parent / "node.json"
    assert cli.main(["snapshot", "--config", str(deployment), "-o", str(target)]) == 0
    text = target.read_text(encoding="utf-8")
    assert_clean(text)
    data = json.loads(text)
    assert data["env"]["HF_TOKEN"] == redact.REDACTED
    assert data["env"]["OPENAI_API_KEY"] == redact.REDACTED
    assert data["env"]["PHONE_AGENT_BASE_URL"] == "http://agent:***@127.0.0.1:9/v1"
    config = data["config"]["data"]
    assert config["auth"]["require_token"] is True  # booleans survive: checks still read them
    assert config["model"]["max_new_tokens"] == 64  # counts are not secrets
    assert "models.example.com" in config["service"]["base_url"]
    Snapshot.from_dict(data)  # still a valid snapshot
    for fmt in ("json", "rich"):
        code = cli.main(["check", "--snapshot", str(target), "--no-smoke", "--format", fmt, "-v"])
        out, err = capsys.readouterr()
        assert code in (0, 1), err
        assert_clean(out + err)


def test_snapshot_to_stdout_has_no_secret(deployment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["snapshot", "--config", str(deployment)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["schema"] == "autoglm-doctor/snapshot@1"
    assert_clean(out + err)


def leaky_report() -> Report:
    """A report whose every text field quotes a secret, as a careless check might."""
    findings = (
        error(
            "config.values.bad",
            f"HF_TOKEN={HF_TOKEN} was rejected by https://bob:{CONFIG_URL_PASSWORD}@models.example.com/v1",
            fix=f"export OPENAI_API_KEY={OPENAI_API_KEY} and retry",
            location=Location(f"https://u:{ENV_URL_PASSWORD}@host/cfg.yaml", 3, 1),
            observed=f"api_key: {CONFIG_API_KEY}",
            expected=f'{{"secret_key": "{CONFIG_SIGNING}"}}',
        ),
        warning("service.auth.weak", f"Authorization: Bearer {OPENAI_API_KEY}"),
        info("env.info", f"the token is {HF_TOKEN}"),
    )
    results = (
        CheckResult("config.values", "Config values", "config", Status.FAIL, 1.0, findings[:1]),
        CheckResult("service.auth", "Auth", "service", Status.WARN, 1.0, findings[1:2]),
        CheckResult(
            "weights.files",
            "Weights",
            "weights",
            Status.ERROR,
            1.0,
            findings[2:],
            traceback=f"Traceback (most recent call last):\nValueError: bad key {OPENAI_API_KEY}\n",
        ),
    )
    return Report(
        results=results,
        environment={"python": "3.11.7", "executable": "/usr/bin/python3", "platform": f"linux {HF_TOKEN}"},
        created="2026-01-01T00:00:00+00:00",
        tool_version="0.1.0",
        pack="open-autoglm",
    )


@pytest.mark.parametrize("fmt", list(Format))
def test_every_format_masks_secrets_quoted_in_findings(fmt: Format, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_API_KEY)
    text = render(leaky_report(), fmt, RenderOptions(verbose=True, width=200))
    assert_clean(text)
    assert "models.example.com" in text  # the rest of the message survives
    assert "config.values" in text


def test_config_secrets_seen_while_gathering_are_masked_in_reports(tmp_path: Path) -> None:
    from autoglm_doctor.gather_options import GatherOptions
    from autoglm_doctor.probe.collect import add_host_facts, unprobed_snapshot

    bearer = "bearer-PLANTED-x9y8z7w6"
    config = tmp_path / "autoglm.yaml"
    config.write_text(f"model:\n  device: cpu\nauth:\n  require_token: true\n  bearer: {bearer}\n", encoding="utf-8")
    # Gathering the config registers the values under secret-named keys (whatever the loader masked).
    add_host_facts(unprobed_snapshot("test"), GatherOptions(config=config, cwd=tmp_path))
    report = Report(
        results=(
            CheckResult(
                "service.auth",
                "Auth",
                "service",
                Status.FAIL,
                findings=(error("service.auth.weak", f"the endpoint accepted {bearer} as a token"),),
            ),
        )
    )
    for fmt in Format:
        text = render(report, fmt, RenderOptions(verbose=True))
        assert bearer not in text
        assert "the endpoint accepted" in text


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("HF_TOKEN", True),
        ("OPENAI_API_KEY", True),
        ("PHONE_AGENT_API_KEY", True),
        ("api_key", True),
        ("apiKey", True),
        ("secret_key", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("db_password", True),
        ("mypassword", True),
        ("credentials", True),
        ("auth", True),
        ("HUGGINGFACEHUB_API_TOKEN", True),
        ("max_new_tokens", False),
        ("num_key_value_heads", False),
        ("tokenizer", False),
        ("token_id", False),
        ("keyboard", False),
        ("author", False),
        ("CUDA_VISIBLE_DEVICES", False),
        ("PWD", False),
        ("SSH_AUTH_SOCK", False),
        ("TOKENIZERS_PARALLELISM", False),
        ("auth_mode", False),
        ("api_key_file", False),
        ("api_key_env", False),
        ("secret_name", False),
        ("password_hash", True),
    ],
)
def test_secret_name_rule(name: str, secret: bool) -> None:
    assert redact.is_secret_name(name) is secret


def test_snapshot_pass_keeps_shape_and_types() -> None:
    data = {
        "schema": "autoglm-doctor/snapshot@1",
        "env": {
            "HF_TOKEN": HF_TOKEN,
            "HF_HOME": "/srv/hf",
            "PHONE_AGENT_BASE_URL": f"http://a:{ENV_URL_PASSWORD}@h/v1",
        },
        "config": {
            "path": "autoglm.yaml",
            "data": {
                "auth": {"require_token": False, "secret_key": CONFIG_SIGNING, "tokens": None},
                "api_keys": [CONFIG_API_KEY, 12345678],
                "max_batch_size": 8,
                "endpoint": f"https://u:{CONFIG_URL_PASSWORD}@x.example/v1?api_key=abcdef&model=glm",
            },
            "diagnostics": [{"excerpt": f"→api_key: {CONFIG_API_KEY}\n^", "message": "tab"}],
        },
        "probe_errors": [f"cannot read /x: HF_TOKEN={HF_TOKEN}"],
    }
    out = redact.redact_snapshot_data(data, environ={})
    assert_clean(json.dumps(out))
    assert out["env"] == {
        "HF_TOKEN": redact.REDACTED,
        "HF_HOME": "/srv/hf",
        "PHONE_AGENT_BASE_URL": "http://a:***@h/v1",
    }
    cfg = out["config"]["data"]
    assert cfg["auth"] == {"require_token": False, "secret_key": redact.REDACTED, "tokens": None}
    assert cfg["api_keys"] == [redact.REDACTED, redact.REDACTED]
    assert cfg["max_batch_size"] == 8
    assert cfg["endpoint"] == "https://u:***@x.example/v1?api_key=***&model=glm"
    assert out["config"]["diagnostics"][0]["excerpt"] == "→api_key: ***\n^"
    assert out["probe_errors"] == ["cannot read /x: HF_TOKEN=***"]
    assert data["env"]["HF_TOKEN"] == HF_TOKEN  # the input is not modified


def test_allowlisted_values_are_shown_in_full() -> None:
    text = "CUDA_VISIBLE_DEVICES=0,1 TOKENIZERS_PARALLELISM=false PWD=/srv/app"
    assert redact.redact_text(text, []) == text
    environ = {"PWD": "/srv/app", "CUDA_VISIBLE_DEVICES": "0,1", "HF_TOKEN": HF_TOKEN}
    assert redact.secret_values(environ)[0] == HF_TOKEN
    assert "/srv/app" not in redact.secret_values(environ)


def test_every_snapshot_writer_redacts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_API_KEY)
    snap = Snapshot(
        python=PythonFacts("3.11.7", "cpython", "/usr/bin/python3", "/usr", "/usr", "system"),
        env={"HF_TOKEN": HF_TOKEN},  # as if a gatherer forgot to redact
        config=ConfigFacts(path="autoglm.yaml", data={"model": {"api_key": CONFIG_API_KEY, "device": "cpu"}}),
        probe_errors=[f"export OPENAI_API_KEY={OPENAI_API_KEY}"],
    )
    text = snap.to_json()
    assert_clean(text)
    again = Snapshot.from_dict(json.loads(text))
    assert again.config is not None and again.config.data["model"]["device"] == "cpu"
    assert redact.snapshot_json(snap) == text


def test_short_config_secrets_do_not_garble_the_snapshot() -> None:
    """Found by fuzzing: `auth: auto` made every "auto" in the snapshot "***" (even its schema)."""
    snap = Snapshot(
        python=PythonFacts("3.11.7", "cpython", "/usr/bin/python3", "/usr", "/usr", "system"),
        config=ConfigFacts(path="autoglm.yaml", data={"auth": "auto", "device_map": "auto"}),
    )
    data = json.loads(snap.to_json())
    assert data["schema"] == "autoglm-doctor/snapshot@1"
    assert data["config"]["data"] == {"auth": redact.REDACTED, "device_map": "auto"}
    assert Snapshot.from_dict(data).config is not None


def test_exception_names_are_not_secret_names() -> None:
    from autoglm_doctor.redact import redact_text

    assert redact_text("KeyError: 'compute_capability'", []) == "KeyError: 'compute_capability'"
    assert redact_text("api_key: sk-abcdefgh1234", []) == "api_key: ***"
