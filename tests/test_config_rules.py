"""Value rules declared in packs: validation at load time, evaluation, env/launch rules, vLLM pins."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoglm_doctor import engines, packs
from autoglm_doctor.configfile.load import parse_config
from autoglm_doctor.configfile.rules import ValueRule, check_value, config_rules, env_rules, launch_rules
from tests.helpers.config_lint import ENVIRON, PHONE_ENV, model_facts, run_checks, snapshot

PACK_HEAD = "pack: t\npython: {range: '>=3.8'}\n"


def _facts(text: str, name: str = "deploy.yaml", folder: Path = Path("/srv/app"), cwd: Path = Path("/srv")):  # type: ignore[no-untyped-def]
    return parse_config(text.encode(), shown=name, folder=folder, cwd=cwd, environ=ENVIRON)


def _codes(results, check_id: str = "config.values") -> list[str]:  # type: ignore[no-untyped-def]
    return [f.code for f in results[check_id].findings if f.severity.value != "info"]


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ("config:\n  keys:\n    port: {type: integer}\n", 5, "unknown type 'integer'"),
        ("config:\n  keys:\n    port: {maximum: 3}\n", 5, "unknown rule key 'maximum'"),
        ("config:\n  keys:\n    port:\n      recommend: {above: 3}\n", 6, "'recommend' is a mapping"),
        ("config:\n  keys:\n    port: {pattern: '('}\n", 5, "bad regular expression"),
        ("config:\n  rules: {}\n", 4, "unknown key 'rules'"),
        ("config:\n  secrets: {min_length: 0}\n", 4, "'config.secrets.min_length' must be a whole number from 1"),
        ("env:\n  BAD-NAME: {required: true}\n", 4, "not an environment variable name"),
        ("launch:\n  memory:\n    - {flag: max-model-len}\n", 5, "a memory row needs"),
        ("request:\n  max_items: -1\n", 4, "'request.max_items' must be a whole number from 1 to 1000000 (got -1)"),
        ("request:\n  max_items: 1e400\n", 4, "'request.max_items' must be a whole number"),
        ("config:\n  keys:\n    port: {min: .nan}\n", 5, "'config.keys.port.min' must be a finite number"),
        ("config:\n  keys:\n    port: {max: .inf}\n", 5, "(got .inf)"),
        ("env:\n  N: {max: 1" + "0" * 400 + "}\n", 4, "(got an integer of more than 60 digits)"),
        ("launch:\n  memory:\n    - {below_gib: .nan, flag: max-model-len, max: 2}\n", 5, "(got .nan)"),
        ("launch:\n  memory:\n    - {below_gib: -1, flag: max-model-len, max: 2}\n", 5, "positive number of GiB"),
    ],
)
def test_malformed_rules_are_pack_errors_with_file_and_line(tmp_path: Path, body: str, line: int, words: str) -> None:
    pack = tmp_path / "p.yaml"
    pack.write_text(PACK_HEAD + body)
    with pytest.raises(packs.PackError) as caught:
        packs.load(str(pack))
    assert str(caught.value).startswith(f"{pack}:{line}: ")
    assert words in str(caught.value)


def test_builtin_packs_declare_the_guides_rules() -> None:
    rules = {r.key: r for r in config_rules(packs.load("open-autoglm").sections)}
    assert rules["model_max_length"].recommend is not None and rules["model_max_length"].recommend.min == 2048
    assert rules["max_batch_size"].max == 1000
    assert rules["port"].max == 65535
    phone = packs.load("open-autoglm-phone").sections
    env = {r.key: r for r in env_rules(phone)}
    assert set(env) >= {"PHONE_AGENT_BASE_URL", "PHONE_AGENT_MODEL", "PHONE_AGENT_DEVICE_TYPE"}
    assert env["PHONE_AGENT_BASE_URL"].default == "http://localhost:8000/v1"  # the client's own default (main.py)
    assert not launch_rules(phone).flags  # the client launches no server
    server = launch_rules(packs.load("open-autoglm-server").sections)
    flags = {r.key: r for r in server.flags}
    assert flags["max-model-len"].min == 1024 and flags["served-model-name"].required
    assert server.memory == ()  # cuda.memory computes what fits instead of a table


def test_check_value_each_rule_kind() -> None:
    rule = ValueRule(key="n", types=("int",), min=1, max=10, recommend=None)
    assert check_value(rule, 5) == []
    assert [v.code for v in check_value(rule, 0)] == ["config.out-of-range"]
    assert [v.code for v in check_value(rule, True)] == ["config.type"]
    (quoted,) = check_value(rule, "7")
    assert quoted.fix == "write n: 7 without quotes"
    choice = ValueRule(key="d", enum=("cpu", "cuda"), pattern=r"cuda:\d+")
    assert check_value(choice, "CUDA") == [] and check_value(choice, "cuda:3") == []
    assert [v.code for v in check_value(choice, "gpu")] == ["config.not-allowed"]
    assert check_value(choice, {"lm_head": 0}) == []


def test_device_map_explicit_mapping_and_cpu_are_accepted() -> None:
    for text in ("device_map: cpu\n", "device_map: cuda:0\n", "device_map: {model.layers: 0, lm_head: cpu}\n"):
        assert _codes(run_checks(snapshot(_facts(text)))) == []
    assert _codes(run_checks(snapshot(_facts("device_map: auto\n")))) == ["config.not-recommended"]


def test_remote_code_unset_with_auto_map_fails_at_file_level() -> None:
    model = model_facts(auto_map={"AutoModel": "modeling.M"})
    results = run_checks(snapshot(_facts("model_path: /m\n"), model=model))
    (finding,) = results["config.values"].findings
    assert finding.code == "config.remote-code-required" and "not set" in finding.message


def test_model_length_within_limit_passes() -> None:
    model = model_facts(max_position_embeddings=8192)
    assert _codes(run_checks(snapshot(_facts("model_max_length: 8192\n"), model=model))) == []


def test_bf16_on_cpu_only_torch_build() -> None:
    snap = snapshot(_facts("torch_dtype: bfloat16\n"), torch_cuda=None)
    (finding,) = run_checks(snap)["config.values"].findings
    assert finding.code == "config.bf16-on-cpu" and "CPU-only build" in finding.message
    assert _codes(run_checks(snapshot(_facts("torch_dtype: bfloat16\n")))) == []


def test_flash_attention_without_flash_attn() -> None:
    (finding,) = run_checks(snapshot(_facts("attn_implementation: flash_attention_2\n")))["config.values"].findings
    assert finding.code == "config.needs-package" and "flash-attn" in finding.message
    assert finding.fix == "/srv/venv/bin/python -m pip install flash-attn"


def test_relative_path_resolution(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    (folder / "weights").mkdir(parents=True)
    cwd = tmp_path / "run"
    (cwd / "weights").mkdir(parents=True)
    facts = _facts("model_path: weights\n", folder=folder, cwd=cwd)
    (finding,) = run_checks(snapshot(facts))["config.values"].findings
    assert finding.code == "config.relative-path"
    assert "both exist, and they are different files" in finding.message
    assert str(folder / "weights") in (finding.fix or "")
    same = _facts("model_path: weights\n", folder=folder, cwd=folder)
    assert _codes(run_checks(snapshot(same))) == []
    hub = _facts("model_path: zai-org/AutoGLM-Phone-9B\n", folder=folder, cwd=cwd)
    assert _codes(run_checks(snapshot(hub))) == []


def test_phone_env_rules() -> None:
    facts = _facts("served-model-name: autoglm-phone-9b\nmax-model-len: 8192\nlimit-mm-per-prompt: '{\"image\":10}'\n")
    ok = run_checks(snapshot(facts, env=PHONE_ENV), "open-autoglm-server,open-autoglm-phone")
    assert _codes(ok, "config.env") == [] and _codes(ok, "config.values") == []
    bad_env = {"PHONE_AGENT_BASE_URL": "localhost:8000", "PHONE_AGENT_DEVICE_TYPE": "usb"}
    results = run_checks(snapshot(facts, env=bad_env), "open-autoglm-server,open-autoglm-phone")
    # PHONE_AGENT_MODEL unset is no error: the client's default applies (an info note)
    assert sorted(_codes(results, "config.env")) == ["config.env-url", "config.env-value"]
    defaults = [f for f in results["config.env"].findings if f.code == "config.env-default"]
    assert [f.message.split(":")[0] for f in defaults] == ["PHONE_AGENT_MODEL is not set"]
    no_config = run_checks(snapshot(None, env=PHONE_ENV), "open-autoglm-phone")
    assert no_config["config.env"].status.value == "pass"


def test_launch_memory_rows_of_a_users_pack_need_gpu_facts(tmp_path: Path) -> None:
    pack = tmp_path / "mine.yaml"
    pack.write_text(
        "pack: mine\nlaunch:\n  flags:\n    max-model-len: {type: int}\n"
        "  memory:\n    - {below_gib: 28, flag: max-model-len, max: 8192, reason: measured on our cards}\n"
    )
    facts = _facts("served-model-name: autoglm-phone-9b\nmax-model-len: 25480\nlimit-mm-per-prompt: '{\"image\":10}'\n")
    assert _codes(run_checks(snapshot(facts, env=PHONE_ENV, gpu_gib=None), str(pack))) == []
    findings = run_checks(snapshot(facts, env=PHONE_ENV, gpu_gib=24), str(pack))["config.values"].findings
    (finding,) = [f for f in findings if f.severity.value != "info"]
    assert finding.code == "config.launch-memory" and finding.fix == "--max-model-len 8192"


def test_vllm_pins_from_its_metadata_else_its_release_table() -> None:
    found, python, source = engines.pins("vllm", "0.12.0", ["torch==2.9.0", "transformers<5,>=4.56.0"], ">=3.10")
    assert found == {"torch": "==2.9.0", "transformers": "<5,>=4.56.0"} and "own metadata" in source
    found, python, source = engines.pins("vllm", "0.12.0", [], "")
    assert found["torch"] == "==2.9.0" and source.startswith("knowledge/engines/vllm-0.12.json")
    assert engines.pins("vllm", "0.0.1", [], "")[0] == {}
    snap = snapshot(
        None,
        installed=["vllm", "torch", "transformers"],
        versions={"vllm": "0.12.0", "torch": "2.8.0", "transformers": "5.1.0"},
    )
    results = run_checks(snap, "open-autoglm-phone")
    assert sorted(_codes(results)) == ["config.vllm-torch-pin", "config.vllm-transformers-pin"]
    matching = snapshot(
        None,
        installed=["vllm", "torch", "transformers"],
        versions={"vllm": "0.12.0", "torch": "2.9.0", "transformers": "4.57.1"},
    )
    # no config and the pins hold: nothing else was compared, so a skip that says so (never a pass of nothing)
    held = run_checks(matching, "open-autoglm-phone")["config.values"]
    assert held.status.value == "skip"
    assert "vllm 0.12.0's torch, transformers and Python pins hold" in held.findings[0].message
