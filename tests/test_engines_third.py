"""Issue 20: a third serving engine is one module (plus its table and tests); nothing else is edited.

The module below is written into a folder added to the engines package's search path, as a new file
in ``src/autoglm_doctor/engines/`` would be. Discovery finds it, and every place that asks engines
questions asks it: the launch classifier, role detection, the memory accounting, and
weights.architecture through the CLI. The interface is enumerated from ``engines/base.py``: an
engine module that misses a method or an attribute fails at discovery, loudly.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor import engines
from autoglm_doctor.engines.base import REQUIRED_ATTRIBUTES, Engine
from autoglm_doctor.probe.gpu import GpuDevice
from tests.conftest import codes, result
from tests.helpers.gpu import nine_b_model
from tests.helpers.model_folders import build_model
from tests.helpers.venvs import Venv

RunJson = Callable[..., tuple[int, dict[str, Any]]]
GiB = 1024**3

THIRD = """
from pathlib import Path

from autoglm_doctor.engines.base import Engine, FlagSpec
from autoglm_doctor.engines.memory import Allowance, MemoryModel, ProfileShape
from autoglm_doctor.probe.libraries import ServedArchitectures


class Tiny(Engine):
    name = "tinyserve"
    title = "TinyServe"
    settings = {"max-model-len": ("ctx",), "gpu-memory-utilization": ("vram-share",), "limit-mm-per-prompt": ()}
    default_port = 9999
    memory = MemoryModel(default_share=0.5, kv_block_tokens=64, activations_in_budget=True)
    only_flags = frozenset({"vram-share"})

    def read_flags(self, files):
        return [FlagSpec(["--ctx"], "int"), FlagSpec(["--vram-share"], "float")], []

    def flag_files(self, listing):
        return [p for p in listing if p == "tinyserve/args.py"]

    def read_registry(self, root):
        path = root / "tinyserve" / "MODELS.txt"
        return ServedArchitectures(str(path), sorted(path.read_text().split()), [])

    def profile_peak(self, shape):
        return 3 * 1024**3, "TinyServe profiles 3 GiB"

    def outside_budget(self, shape):
        return [Allowance("TinyServe's arena", 1024**3)]
"""


def _add_engine(folder: Path, monkeypatch: pytest.MonkeyPatch, source: str, module: str = "tiny") -> dict[str, Engine]:
    """Write ``source`` as a new engine module beside vllm.py and sglang.py; discover the engines again."""
    folder.mkdir(exist_ok=True)
    (folder / f"{module}.py").write_text(source)
    monkeypatch.setattr(engines, "__path__", [*engines.__path__, str(folder)])
    return engines._discover()


@pytest.fixture
def third(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The third engine, discovered and in ``engines.ENGINES`` for the test's duration."""
    found = _add_engine(tmp_path / "more_engines", monkeypatch, THIRD + "\nENGINE = Tiny()\n")
    monkeypatch.setattr(engines, "ENGINES", found)
    yield found["tinyserve"]
    sys.modules.pop("autoglm_doctor.engines.tiny", None)


def test_the_third_engine_is_discovered_and_asked(third: Engine) -> None:
    from autoglm_doctor.checks._served import Launch, served_memory

    assert sorted(engines.ENGINES) == ["sglang", "tinyserve", "vllm"]
    assert engines.get("tinyserve") is third
    # the one classifier: a launch command, and a file of flags only this engine has
    assert engines.detect("CUDA_VISIBLE_DEVICES=0 tinyserve --ctx 8192", "flags") == "tinyserve"
    assert engines.detect("", "yaml", {"vram-share": 0.5}) == "tinyserve"
    assert engines.detect("", "yaml", {"vram-share": 0.5, "model_path": "/m"}) == ""  # the doctor's config
    # the memory accounting asks it every engine fact
    launch = Launch("tinyserve", 8192, 1, third.model.default_share, False, "auto", "auto", None, None, None, False)
    assert launch.flag("max-model-len") == "--ctx"
    device = GpuDevice(index=0, name="NVIDIA L4", memory_total=24 * GiB, memory_free=24 * GiB)
    memory = served_memory(launch, nine_b_model(), device)
    assert memory is not None
    assert memory.budget == 12 * GiB and memory.block == 64
    assert memory.activation == 3 * GiB and memory.activation_formula == "TinyServe profiles 3 GiB"
    assert memory.outside == GiB and memory.outside_formula == "TinyServe's arena 1.00 GiB"
    assert memory.eager_frees == 0  # nothing of it marked as freed by turning CUDA graphs off


def test_weights_architecture_asks_the_third_engine_through_the_cli(
    third: Engine, workdir: Path, run_json: RunJson, venv: Venv, tmp_path: Path
) -> None:
    venv.add("tinyserve", "1.0.0", files={"tinyserve/MODELS.txt": "Qwen2VLForConditionalGeneration\n"})
    model = build_model(tmp_path / "llama")  # config.json: LlamaForCausalLM
    code, report = run_json("--python", str(venv.python), "--model", str(model), "--only", "weights.architecture")
    assert "tinyserve 1.0.0 is installed in the target environment" in report["role"]["evidence"]
    found = [
        f for f in result(report, "weights.architecture")["findings"] if f["code"] == "weights.architecture-unserved"
    ]
    assert len(found) == 1 and "TinyServe 1.0.0 does not serve LlamaForCausalLM" in found[0]["message"]
    assert "tinyserve/MODELS.txt" in found[0]["message"] and code == 1
    (venv.site_packages / "tinyserve" / "MODELS.txt").write_text("LlamaForCausalLM\n")
    code, report = run_json("--python", str(venv.python), "--model", str(model), "--only", "weights.architecture")
    assert "weights.architecture-served" in codes(report, "weights.architecture")


ABSTRACT = sorted(Engine.__abstractmethods__)


def test_the_interface_is_what_contributing_lists() -> None:
    """Every abstract method and required attribute of engines/base.py is named in CONTRIBUTING.md's engine section."""
    assert ABSTRACT == ["flag_files", "profile_peak", "read_flags", "read_registry"]
    text = (Path(__file__).resolve().parents[1] / "CONTRIBUTING.md").read_text(encoding="utf-8")
    section = text[text.index("### Adding a serving engine") :]
    for name in [*ABSTRACT, *REQUIRED_ATTRIBUTES]:
        assert f"`{name}`" in section, name


@pytest.mark.parametrize("missing", ABSTRACT)
def test_an_engine_missing_a_method_fails_discovery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    source = THIRD.replace(f"    def {missing}(", f"    def _not_{missing}(") + "\nENGINE = Tiny()\n"
    module = f"tiny_without_{missing}"
    try:
        with pytest.raises(TypeError, match=missing):
            _add_engine(tmp_path / "more_engines", monkeypatch, source, module)
    finally:
        sys.modules.pop(f"autoglm_doctor.engines.{module}", None)


@pytest.mark.parametrize("missing", REQUIRED_ATTRIBUTES)
def test_an_engine_missing_an_attribute_fails_discovery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    lines = [line for line in THIRD.splitlines() if not line.startswith(f"    {missing} =")]
    assert len(lines) == len(THIRD.splitlines()) - 1
    module = f"tiny_without_{missing}"
    try:
        with pytest.raises(TypeError, match=f"does not set {missing}"):
            _add_engine(tmp_path / "more_engines", monkeypatch, "\n".join(lines) + "\nENGINE = Tiny()\n", module)
    finally:
        sys.modules.pop(f"autoglm_doctor.engines.{module}", None)


def test_every_engine_answers_with_its_own_facts() -> None:
    """The shipped engines override every question, each method documented."""
    for engine in engines.ENGINES.values():
        for name in ABSTRACT:
            method = getattr(type(engine), name)
            assert method is not getattr(Engine, name) and inspect.getdoc(method), (engine.name, name)
        assert engine.model.sources, engine.name
