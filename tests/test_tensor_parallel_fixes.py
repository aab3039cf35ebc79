"""Every fix the doctor offers for a served launch works when applied (QA P1.4, P2.12, P3.19).

Real: a vLLM 0.12.0 venv from its release files, an AutoGLM-Phone-9B folder (real safetensors headers,
sparse data; 32 attention heads, 2 KV heads, 12 vision heads), the README's launch file. Faked: only
NVML (the cards' fixtures; a host of eight cards is the 4090 fixture's device written eight times).
Each fix is written into the launch file and the CLI runs again: the doctor's own checks must accept it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor.probe.gpu import NVML_FIXTURE_ENV
from tests.conftest import result
from tests.helpers.gpu import fixture
from tests.helpers.served import build_autoglm_phone, server_venv, write_launch
from tests.helpers.venvs import Venv

RunJson = Callable[..., tuple[int, dict[str, Any]]]

TP_CODES = ("config.launch-tensor-parallel", "config.launch-vision-tensor-parallel")
"""The findings that judge a tensor-parallel size: heads, KV heads, vision heads, visible GPUs."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """vLLM 0.12.0 with the torch it pins."""
    from tests.helpers.venvs import make_venv

    return server_venv(make_venv(tmp_path_factory.mktemp("server") / "venv"))


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """AutoGLM-Phone-9B's folder (headers only)."""
    return build_autoglm_phone(tmp_path_factory.mktemp("models") / "AutoGLM-Phone-9B")


def cards(name: str, count: int, folder: Path) -> Path:
    """An NVML fixture of ``count`` copies of a card's fixture (each its own UUID)."""
    data = json.loads(fixture(name).read_text())
    device = data["devices"][0]
    data["devices"] = [{**device, "uuid": device["uuid"][:-1] + str(i)} for i in range(count)]
    path = folder / f"{count}-{name}.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def show(server: Venv, capsys: pytest.CaptureFixture[str]) -> Callable[..., str]:
    """Run ``check`` on a launch file for cuda.memory in the given format; what it printed."""
    from autoglm_doctor.cli import main

    def run(launch: str, *extra: str) -> str:
        args = ["check", "--no-smoke", "--python", str(server.python), "--config", launch, "--only", "cuda.memory"]
        main([*args, "--pack", "open-autoglm-server", *extra])
        return capsys.readouterr().out

    return run


def check(run_json: RunJson, server: Venv, launch: Path) -> dict[str, Any]:
    """The server role's report on a launch file."""
    _, report = run_json("--python", str(server.python), "--config", str(launch), "--pack", "open-autoglm-server")
    return report


def tp_problems(report: dict[str, Any]) -> list[dict[str, Any]]:
    """config.values' tensor-parallel findings (errors: the size is refused)."""
    return [f for f in result(report, "config.values")["findings"] if f["code"] in TP_CODES]


def offered_tp_fixes(report: dict[str, Any]) -> list[str]:
    """Every fix alternative, of config.values' TP findings and of cuda.memory, that names a TP flag."""
    findings = tp_problems(report) + [
        f for f in result(report, "cuda.memory")["findings"] if f["severity"] != "info" and f.get("fix")
    ]
    fixes = [alternative for f in findings for alternative in f["fix"].split("; or ")]
    return [fix for fix in fixes if "--tensor-parallel-size" in fix or "--mm-encoder-tp-mode" in fix]


def apply(fix: str, folder: Path, model: Path, name: str, base: dict[str, str], data_mode: bool) -> Path:
    """The launch file with the fix's flags written in (``add --mm-encoder-tp-mode data (...)`` included)."""
    flags = dict(base)
    words = fix.split()
    for index, word in enumerate(words):
        if word.startswith("--"):
            value = words[index + 1] if index + 1 < len(words) and not words[index + 1].startswith("--") else ""
            flags[word[2:].replace("-", "_")] = value
    launch = write_launch(folder, model, name=name, **flags)
    if not data_mode and flags.get("mm_encoder_tp_mode") != "data":
        launch.write_text(launch.read_text().replace(" --mm-encoder-tp-mode data \\\n", ""))
    return launch


@pytest.mark.parametrize(
    ("card", "tp", "data_mode"),
    [
        ("rtx4090-headless", "8", False),  # QA: "or --tensor-parallel-size 6", which breaks the 32 heads
        ("rtx4090-headless", "4", True),  # QA: cuda.memory said 8, config.values 1
        ("eight", "8", False),  # 8 GPUs: TP 8 needs data mode for the 12 vision heads
        ("eight", "6", False),  # 6 divides neither 32 heads nor 8 cards' worth of choices
    ],
)
def test_every_offered_tensor_parallel_fix_passes_the_doctors_own_checks(
    card: str,
    tp: str,
    data_mode: bool,
    server: Venv,
    model: Path,
    tmp_path: Path,
    run_json: RunJson,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nvml = cards("rtx4090-headless", 8, tmp_path) if card == "eight" else fixture(card)
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(nvml))
    launch = apply("", tmp_path, model, "serve.sh", {"tensor_parallel_size": tp}, data_mode)
    report = check(run_json, server, launch)
    assert tp_problems(report), "the launch's TP size is refused: that is the premise"
    fixes = offered_tp_fixes(report)
    assert fixes
    for number, fix in enumerate(fixes):
        fixed = apply(fix, tmp_path, model, f"fix{number}.sh", {"tensor_parallel_size": tp}, data_mode)
        after = check(run_json, server, fixed)
        assert tp_problems(after) == [], (fix, tp_problems(after))
    # config.values and cuda.memory draw from the same sizes: on one card, never a size above 1
    sizes = {int(m) for fix in fixes for m in re.findall(r"--tensor-parallel-size (\d+)", fix)}
    if card != "eight":
        assert sizes == {1}
    else:
        assert sizes and all(32 % size == 0 and size <= 8 for size in sizes)


def test_tp_8_on_eight_cards_is_offered_with_data_mode(
    server: Venv, model: Path, tmp_path: Path, run_json: RunJson, monkeypatch: pytest.MonkeyPatch
) -> None:
    """12 vision heads do not split 8 ways: the fix keeps TP 8 with --mm-encoder-tp-mode data, or drops to 4."""
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(cards("rtx4090-headless", 8, tmp_path)))
    launch = apply("", tmp_path, model, "serve.sh", {"tensor_parallel_size": "8"}, data_mode=False)
    (vision,) = [f for f in tp_problems(check(run_json, server, launch)) if "vision" in f["code"]]
    assert vision["fix"] == (
        "add --mm-encoder-tp-mode data (each GPU keeps the whole vision tower); or --tensor-parallel-size 4"
    )
    # TP 16 on eight cards: 16 GPUs are not there, so data mode alone is no fix; 4 is the largest plain size,
    # 8 with data mode the largest of all
    launch = apply("", tmp_path, model, "tp16.sh", {"tensor_parallel_size": "16"}, data_mode=False)
    fixes = {f["fix"] for f in tp_problems(check(run_json, server, launch))}
    assert fixes == {"--tensor-parallel-size 4; or --tensor-parallel-size 8 --mm-encoder-tp-mode data"}


@pytest.mark.parametrize("card", ["t4", "rtx4060ti-16gb", "a100-40gb-mig"])
def test_weights_that_do_not_fit_get_no_length_or_utilization_fix(
    card: str, server: Venv, model: Path, tmp_path: Path, run_json: RunJson, monkeypatch: pytest.MonkeyPatch
) -> None:
    """19.17 GiB of weights on a 15, 16 or 19.5 GiB device: no --max-model-len or utilization can help."""
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture(card)))
    report = check(run_json, server, write_launch(tmp_path, model))
    (finding,) = [f for f in result(report, "cuda.memory")["findings"] if f["severity"] == "error"]
    assert finding["code"] == "cuda.memory-weights"
    assert "the weights alone (19.17 GiB at bfloat16) exceed the" in finding["message"]
    fix = finding["fix"]
    assert "--max-model-len" not in fix and "--gpu-memory-utilization 0" not in fix and "smaller" not in fix
    assert "quantized checkpoint" in fix and "with at least" in fix
    assert "--tensor-parallel-size" not in fix  # one card, or one MIG instance
    if card == "a100-40gb-mig":
        assert "a CUDA process enumerates a single MIG instance" in finding["message"]
        assert "the whole NVIDIA A100-SXM4-40GB with MIG off (sudo nvidia-smi -i 0 -mig 0)" in fix
        # the bigger device the fix names holds what the bar shows: a 40 GB A100 does
        assert "MIG instance or GPU with at least 23.6" in fix


def test_tp_2_on_a_mig_instance_is_refused_with_the_reason(
    server: Venv, model: Path, tmp_path: Path, run_json: RunJson, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture("a100-40gb-mig")))
    report = check(run_json, server, write_launch(tmp_path, model, tensor_parallel_size="2"))
    (gpus,) = [f for f in tp_problems(report) if "needs 2 GPUs" in f["message"]]
    assert "one MIG instance" in gpus["message"] and gpus["fix"] == "--tensor-parallel-size 1"
    assert "--tensor-parallel-size" not in (result(report, "cuda.memory")["findings"][0].get("fix") or "")


def test_the_memory_bar_says_which_side_is_short_in_plain_figures(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, show: Callable[..., str]
) -> None:
    """rtx4090 (3.47 GiB held by others): the budget has room, what lies beyond it does not."""
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture("rtx4090")))
    monkeypatch.setenv("COLUMNS", "400")
    launch = str(write_launch(tmp_path, model))
    out = show(launch)
    assert (
        "short by 1.97 GiB: the budget has 0.39 GiB to spare, but beyond it 2.37 GiB more is needed than the GPU "
        "has free; estimate error ±0.75 GiB"
    ) in out
    legend = next(line for line in out.splitlines() if "in use by others" in line)
    assert not re.search(r"-\d", legend)  # no negative figure
    assert "short by 1.97 GiB: the budget has 0.39 GiB to spare" in show(launch, "--format", "markdown")


def test_range_bounds_print_as_whole_numbers(
    server: Venv, model: Path, tmp_path: Path, run_json: RunJson, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture("rtx4090-headless")))
    report = check(run_json, server, write_launch(tmp_path, model, max_model_len="99999999999"))
    (found,) = [f for f in result(report, "config.values")["findings"] if f["code"] == "config.launch-range"]
    assert "accepted values are 1 to 2,147,483,647 tokens" in found["message"]
    assert "e+" not in json.dumps(found)


def test_the_readme_bar_is_what_the_cli_prints(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, show: Callable[..., str]
) -> None:
    """README's A10 run: the bar, its legend and the fix, line for line, at the README's 112 columns."""
    readme = (Path(__file__).parents[1] / "README.md").read_text().splitlines()
    start = readme.index("              GPU 0 (NVIDIA A10): 22.49 GiB")
    end = next(i for i in range(start, len(readme)) if readme[i].strip().startswith("fix:"))
    quoted = [line.strip() for line in readme[start : end + 1]]
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture("a10-24gb")))
    monkeypatch.setenv("COLUMNS", "112")
    monkeypatch.chdir(tmp_path)
    write_launch(tmp_path, model)
    printed = [line.strip() for line in show("serve.sh").splitlines()]
    assert "short by 0.33 GiB: the budget is 0.96 GiB short, but 0.62 GiB is spare" in " ".join(quoted)
    for line in quoted:
        assert line in printed, line


def test_weights_too_big_for_one_card_are_spread_over_the_cards_there_are(
    server: Venv, model: Path, tmp_path: Path, run_json: RunJson, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two T4s: the weights need both; the fix says so, and applied it passes the weights (a margin warning at most)."""
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(cards("t4", 2, tmp_path)))
    report = check(run_json, server, write_launch(tmp_path, model))
    (finding,) = [f for f in result(report, "cuda.memory")["findings"] if f["severity"] == "error"]
    assert finding["code"] == "cuda.memory-weights"
    first = finding["fix"].split("; or ")[0]
    assert first == "--tensor-parallel-size 2 --enforce-eager"  # the CUDA graphs and NCCL do not fit beside them
    fixed = apply(first, tmp_path, model, "fixed.sh", {}, data_mode=True)
    after = check(run_json, server, fixed)
    (verdict,) = result(after, "cuda.memory")["findings"]
    assert verdict["code"] == "cuda.memory-within-error" and tp_problems(after) == []
    # 0.08 GiB free beyond the budget: the warning moves memory there, and that fix passes as well
    assert verdict["fix"] == "--gpu-memory-utilization 0.85"
    again = apply(
        verdict["fix"], tmp_path, model, "again.sh", {"tensor_parallel_size": "2", "enforce_eager": ""}, data_mode=True
    )
    assert [f["code"] for f in result(check(run_json, server, again), "cuda.memory")["findings"]] == [
        "cuda.memory-fits"
    ]
