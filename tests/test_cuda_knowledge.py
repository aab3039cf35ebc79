"""The GPU knowledge base: cuda.yaml and gpu_arch.yaml are complete, sourced and read correctly."""

from __future__ import annotations

import pytest

from autoglm_doctor.knowledge import gpu as kb
from autoglm_doctor.knowledge import load_table


def test_tables_name_their_sources() -> None:
    for name in ("cuda", "gpu_arch"):
        assert load_table(name).data["sources"]


def test_every_cuda_from_10_2_to_13_has_linux_and_windows_minimums() -> None:
    cudas = {row.cuda for row in kb.toolkit_drivers()}
    wanted = {(10, 2), (11, 0), (11, 8), (12, 0), (12, 1), (12, 4), (12, 8), (12, 9), (13, 0), (13, 2)}
    assert wanted <= cudas
    for row in kb.toolkit_drivers():
        assert row.linux is not None
        if row.cuda < (13, 0):
            assert row.windows is not None, row
    floors = kb.family_floors()
    assert kb.driver_text(floors[12].linux) == "525.60.13" and kb.driver_text(floors[12].windows) == "527.41"
    assert kb.driver_text(floors[11].linux) == "450.80.02" and kb.driver_text(floors[13].linux) == "580.65.06"
    assert 10 not in floors  # CUDA 10 has no minor-version compatibility


def test_low_confidence_rows_are_marked() -> None:
    row = kb.toolkit_driver((13, 3))
    assert row is not None and row.confidence == "low"


@pytest.mark.parametrize(
    ("driver", "cuda"),
    [("470.182.03", (11, 4)), ("535.104.05", (12, 2)), ("550.54.15", (12, 4)), ("580.65.06", (13, 0)), ("400.1", None)],
)
def test_max_cuda_for_driver(driver: str, cuda: tuple[int, int] | None) -> None:
    parsed = kb.parse_driver(driver)
    assert parsed is not None
    row = kb.max_cuda_for_driver(parsed)
    assert (row.cuda if row else None) == cuda


def test_every_torch_variant_has_an_arch_list() -> None:
    for release in kb.torch_cuda_releases():
        assert release.pypi_default in release.variants
        for variant in release.variants:
            assert kb.arch_list(release.line, variant) is not None, (release.line, variant)


@pytest.mark.parametrize(
    ("line", "variant", "cc", "covered"),
    [
        ("1.13", "cu117", (8, 9), True),  # sm_86 cubin runs on 8.9
        ("1.13", "cu117", (9, 0), False),
        ("1.13", "cu117", (12, 0), False),
        ("2.7", "cu128", (12, 0), True),
        ("2.7", "cu128", (7, 0), False),  # Volta left out of 2.7 cu128
        ("2.8", "cu128", (7, 0), True),
        ("2.11", "cu128", (7, 0), False),  # ...and dropped again in 2.11
        ("2.14", "cu126", (12, 0), False),
        ("2.14", "cu130", (12, 1), True),
        ("2.14", "cu130", (13, 0), True),  # PTX JIT for newer GPUs
        ("2.1", "cu121", (3, 7), False),
    ],
)
def test_arch_coverage(line: str, variant: str, cc: tuple[int, int], covered: bool) -> None:
    archs = kb.arch_list(line, variant)
    assert archs is not None
    assert archs.covers(cc) is covered


def test_arch_names_and_bf16() -> None:
    assert kb.architecture_name((9, 0)) == "Hopper"
    assert kb.architecture_name((8, 9)) == "Ada Lovelace"
    assert kb.architecture_name((5, 3)) == "Maxwell"  # nearest lower of the same major
    assert kb.supports_bf16((8, 0)) and not kb.supports_bf16((7, 5))


def test_parsers_and_index_url() -> None:
    assert kb.parse_cuda("cu121") == (12, 1) and kb.parse_cuda("cu118") == (11, 8)
    assert kb.parse_cuda("12040") == (12, 4) and kb.parse_cuda("12.1.105") == (12, 1)
    assert kb.parse_cuda("") is None and kb.parse_cuda("rocm6.2") is None
    assert kb.driver_text(kb.parse_driver("570.124.06")) == "570.124.06"
    assert kb.index_url("cu126") == "https://download.pytorch.org/whl/cu126"
