"""Serving engines installed from their released files: the verbatim sources the tables come from, real metadata."""

from __future__ import annotations

import lzma
import tarfile
from pathlib import Path

from tests.helpers.venvs import Venv

REPO = Path(__file__).resolve().parents[2]
SOURCES = REPO / "tools" / "knowledge_sources"
VLLM_METADATA = SOURCES / "vllm-metadata" / "vllm-0.12.0.METADATA.xz"
"""vLLM 0.12.0's released METADATA (68 Requires-Dist lines), compressed."""


def install_release(venv: Venv, engine: str, version: str) -> Path:
    """Install ``engine==version`` into the venv from its released files kept in tools/knowledge_sources.

    The package's argument files and model registry land where pip puts them (site-packages/vllm/engine/
    arg_utils.py, vllm/model_executor/models/registry.py, sglang/srt/models/*.py, ...; SGLang's models only
    for 0.5.6.post2 to 0.5.10.post1, see tools/engine_tables.py) and the release's own metadata file (sdist
    PKG-INFO / wheel METADATA) becomes the dist-info's METADATA, as ``pip install --no-deps`` leaves them;
    the compiled parts, which the doctor never reads, are absent.
    """
    prefix = f"{engine}-{version}/"
    dist_info = venv.site_packages / f"{engine}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    with tarfile.open(SOURCES / f"{engine}.tar.xz", mode="r:xz") as tar:
        for member in tar.getmembers():
            if not member.name.startswith(prefix):
                continue
            relative = member.name[len(prefix) :]
            handle = tar.extractfile(member)
            assert handle is not None
            data = handle.read()
            if relative in ("PKG-INFO", "METADATA"):
                (dist_info / "METADATA").write_bytes(data)
                continue
            target = venv.site_packages / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    assert (dist_info / "METADATA").is_file(), f"{engine} {version} is not in {SOURCES}"
    (dist_info / "INSTALLER").write_text("pip\n", encoding="utf-8")
    (dist_info / "top_level.txt").write_text(engine + "\n", encoding="utf-8")
    (venv.site_packages / engine / "__init__.py").write_text(f"__version__ = {version!r}\n", encoding="utf-8")
    return dist_info


def no_deps_vllm(venv: Venv) -> Venv:
    """torch 2.9.0 and transformers, then vLLM 0.12.0 installed with --no-deps: its real METADATA, nothing it needs."""
    # what pip put beside torch 2.9.0 (its own requirements, at versions vLLM accepts)
    venv.add("filelock", "3.16.1")
    venv.add("typing-extensions", "4.12.2", package="typing_extensions")
    venv.add_torch("2.9.0", cuda="12.8")
    venv.add("transformers", "4.57.1")
    dist_info = venv.add("vllm", "0.12.0", metadata=False)
    (dist_info / "METADATA").write_bytes(lzma.decompress(VLLM_METADATA.read_bytes()))
    return venv
