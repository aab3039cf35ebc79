"""The engines' generated flag tables: regenerated offline from the verbatim released files, small, used by name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from autoglm_doctor import engines
from autoglm_doctor.engines import target

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "tools" / "knowledge_sources"


def test_tables_equal_what_the_committed_sources_give() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "tools" / "engine_tables.py"), "generate", "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_the_sources_are_small_and_cover_every_supported_line() -> None:
    assert sum((SOURCES / f"{name}.tar.xz").stat().st_size for name in engines.ENGINES) < 1_500_000
    vllm_lines = engines.table_versions("vllm")
    assert vllm_lines[0] == "0.12" and vllm_lines[-1] == "0.34" and len(vllm_lines) >= 20
    sglang_lines = engines.table_versions("sglang")
    assert sglang_lines[0] == "0.5.6.post2" and sglang_lines[-1] == "0.5.23"


def test_the_table_of_the_named_version_else_the_nearest_older_else_the_newest() -> None:
    assert engines.table_for("vllm", "0.33.0") == ("0.33", "vllm 0.33.0 is named")
    # 0.15 has no source distribution on the index: its table comes from its wheel's files
    assert engines.table_for("vllm", "0.15.1") == ("0.15", "vllm 0.15.1 is named")
    assert engines.table_for("vllm", "0.35.0") == ("0.34", "vllm 0.35.0 is named; the nearest older table is 0.34")
    assert engines.table_for("vllm", "") == ("0.34", "no version is installed or named: the newest table")
    assert engines.table_for("sglang", "0.5.8")[0] == "0.5.8.post1"


def test_engines_are_discovered_one_module_each() -> None:
    """A third engine is a new module defining ENGINE (plus its table and tests): nothing else changes."""
    assert sorted(engines.ENGINES) == ["sglang", "vllm"]
    package = Path(engines.__file__).parent
    modules = {p.stem for p in package.glob("*.py")} - {"__init__", "_reader", "base", "launch", "memory", "target"}
    assert modules == set(engines.ENGINES)
    assert target.flags_for.__module__ == "autoglm_doctor.engines.target"


def test_the_doctors_own_config_is_not_an_engine_flag_file() -> None:
    assert engines.detect("", "yaml", {"model_path": "/m", "device": "cuda:0"}) == ""
    assert engines.detect("", "yaml", {"model-path": "/m", "context-length": 8192}) == "sglang"
    assert engines.detect("", "yaml", {"max-model-len": 8192}) == "vllm"
    assert engines.detect("CUDA_VISIBLE_DEVICES=0 python3 -m sglang.launch_server --port 1", "flags") == "sglang"


def _every_flag_words(flags: list[engines.FlagSpec]) -> list[list[object]]:
    words: list[list[object]] = [["serve", 1, 1], ["/m", 1, 7]]
    for spec in flags:
        if spec.deprecated or spec.names[0] in ("--help", "--version"):
            continue
        words.append([spec.names[0], 2, 1])
        if not spec.takes_value:
            continue
        low = spec.bounds.get("ge", spec.bounds.get("gt", 0))
        if spec.choices:
            value = spec.choices[-1] if spec.choices[-1] != "None" else spec.choices[0]
        elif spec.kind in ("int", "token-count", "token-count-or-auto"):
            value = str(max(int(low) + 1, 1))
        elif spec.kind == "float":
            value = str((low + spec.bounds.get("le", 1.0)) / 2)
        elif spec.kind in ("json", "json-plain", "dataclass-json", "json-or-str"):
            value = "{}"
        else:
            value = "x"
        words.append([value, 2, 20])
    return words


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_every_release_line_reads_every_flag_it_defines(engine: str) -> None:
    """The same parser over every generated table: each release accepts all of its own flags."""
    from autoglm_doctor.configfile.facts import ConfigFacts
    from autoglm_doctor.engines.launch import read_config

    for line in engines.table_versions(engine):
        data = engines.load_table(engine, line)
        assert data["problems"] == [], (line, data["problems"])
        flags = engines.EngineFlags(
            engine, str(data["version"]), "table", "test", [engines._spec(d) for d in data["flags"]]
        )
        assert len(flags.flags) > 150, line
        config = ConfigFacts(
            path="serve.sh", format="flags", parsed=True, engine=engine, words=_every_flag_words(flags.flags)
        )
        record = read_config(config, flags)
        rejected = [p.message for p in record.problems if p.code != "config.launch-deprecated"]
        assert rejected == [], (line, rejected[:3])


def test_a_wheel_gives_only_the_files_the_tables_keep(tmp_path: Path) -> None:
    """A release without an sdist is read from its wheel member by member: flag files, registry, METADATA, no more."""
    import importlib.util
    import zipfile

    spec = importlib.util.spec_from_file_location("engine_tables", REPO / "tools" / "engine_tables.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    wheel = tmp_path / "vllm-0.15.1-cp38-abi3-manylinux_2_31_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("vllm/engine/arg_utils.py", "class EngineArgs: ...\n")
        archive.writestr("vllm/config/cache.py", "x = 1\n")
        archive.writestr("vllm/_C.abi3.so", b"\0" * 4096)
        archive.writestr("vllm/model_executor/models/registry.py", "_MODELS = {}\n")
        archive.writestr("vllm/model_executor/models/llama.py", "class LlamaForCausalLM: ...\n")
        archive.writestr("vllm-0.15.1.dist-info/METADATA", "Name: vllm\nVersion: 0.15.1\n")
        archive.writestr("vllm-0.15.1.dist-info/RECORD", "")
    dest = tmp_path / "vllm-0.15.1"
    copied = tool.from_wheel(wheel, dest, "vllm")
    written = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    kept = ["METADATA", "vllm/config/cache.py", "vllm/engine/arg_utils.py", "vllm/model_executor/models/registry.py"]
    assert written == kept, copied
    assert (dest / "METADATA").read_text() == "Name: vllm\nVersion: 0.15.1\n"


def test_collect_keeps_the_releases_it_could_not_download_and_orders_by_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release the index no longer serves keeps its archived files; a file's releases sit side by side."""
    import importlib.util
    import tarfile

    spec = importlib.util.spec_from_file_location("engine_tables", REPO / "tools" / "engine_tables.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.setattr(tool, "SOURCES", tmp_path / "sources")
    (tmp_path / "sources").mkdir()
    registry = "vllm/model_executor/models/registry.py"
    for version in ("0.12.0", "0.13.0"):  # 0.12.0 downloaded before; 0.13.0 now
        release = tmp_path / ("old" if version == "0.12.0" else "new") / f"vllm-{version}"
        for path, text in (("PKG-INFO", f"Version: {version}\n"), (registry, "_MODELS = {}\n")):
            (release / path).parent.mkdir(parents=True, exist_ok=True)
            (release / path).write_text(text)
    tool.collect(tmp_path / "old")
    tool.collect(tmp_path / "new")
    with tarfile.open(tmp_path / "sources" / "vllm.tar.xz") as tar:
        names = tar.getnames()
    assert names == [
        "vllm-0.12.0/PKG-INFO",
        "vllm-0.13.0/PKG-INFO",
        f"vllm-0.12.0/{registry}",
        f"vllm-0.13.0/{registry}",
    ]
