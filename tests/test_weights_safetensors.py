"""The safetensors header reader, cross-checked with the safetensors package, and the read budget."""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path

import pytest
from safetensors import SafetensorError, safe_open

from autoglm_doctor.gather_options import GatherOptions
from autoglm_doctor.probe.safetensors import read_header
from autoglm_doctor.probe.weights import gather
from tests.helpers.model_folders import LFS_POINTER, build_model, layer_tensors, write_safetensors

TENSORS = {"a": ("F32", [2, 3]), "b": ("BF16", [4]), "c": ("I64", [1])}


def loads_with_safetensors(path: Path) -> bool:
    try:
        with safe_open(str(path), "np") as handle:
            list(handle.keys())
    except (SafetensorError, OSError):
        return False
    return True


def test_valid_file_agrees_with_safetensors(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "m.safetensors", TENSORS)
    header = read_header(path)
    assert not header.error and not header.layout_problem_count and not header.out_of_range_count
    assert header.expected_size == path.stat().st_size
    assert header.parameter_count == 6 + 4 + 1
    assert header.bytes_by_dtype == {"F32": 24, "BF16": 8, "I64": 8}
    assert set(header.tensors) == {"a", "b", "c"}
    assert loads_with_safetensors(path)


def test_truncated_file_is_consistent_but_short(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "m.safetensors", TENSORS)
    full = path.stat().st_size
    os.truncate(path, full - 10)
    header = read_header(path)
    assert not header.error and header.layout_problem_count == 0
    assert header.expected_size == full
    assert header.out_of_range_count == 2  # "c" (the last 8 bytes) and the end of "b" are gone
    assert not loads_with_safetensors(path)


def test_offsets_past_the_file_and_wrong_spans(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "m.safetensors", TENSORS, offsets={"c": (32, 4096)})
    os.truncate(path, path.stat().st_size - (4096 - 40))  # the file holds the 40 bytes the shapes need
    header = read_header(path)
    assert header.layout_problem_count == 1
    assert "span 4064 bytes" in header.layout_problems[0]
    assert header.out_of_range_count == 1 and "'c'" in header.out_of_range[0]
    assert not loads_with_safetensors(path)


def test_gap_and_overlap_are_layout_problems(tmp_path: Path) -> None:
    gap = write_safetensors(tmp_path / "gap.safetensors", TENSORS, offsets={"b": (28, 36), "c": (36, 44)})
    assert "a gap" in read_header(gap).layout_problems[0]
    assert not loads_with_safetensors(gap)
    overlap = write_safetensors(tmp_path / "overlap.safetensors", TENSORS, offsets={"b": (20, 28), "c": (28, 36)})
    assert "an overlap" in read_header(overlap).layout_problems[0]
    assert not loads_with_safetensors(overlap)


def test_trailing_bytes_are_refused_like_safetensors(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "m.safetensors", TENSORS)
    full = path.stat().st_size
    os.truncate(path, full + 16)
    header = read_header(path)
    assert not header.error and header.expected_size == full
    assert not loads_with_safetensors(path)


def _header(header: dict[str, object]) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + bytes(4)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"\x01\x02", "too short"),
        (struct.pack("<Q", 10**12), "not safetensors"),
        (struct.pack("<Q", 4096) + b"{}", "cut off"),
        (struct.pack("<Q", 8) + b"[1,2,3] ", "does not start with '{'"),
        (struct.pack("<Q", 8) + b"{oops}  ", "not valid JSON"),
        (struct.pack("<Q", 4) + b"{\xff\xfe}", "not UTF-8"),
        (struct.pack("<Q", 40) + json.dumps({"x": {"dtype": "F32", "shape": [1]}}).encode().ljust(40), "data_offsets"),
        # a text dimension after large ones: multiplied out, it would build a 25 GB string (MemoryError)
        (_header({"x": {"dtype": "F32", "shape": [16, 1585706835, "0"], "data_offsets": [0, 4]}}), "shape"),
    ],
)
def test_broken_headers(tmp_path: Path, raw: bytes, fragment: str) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(raw)
    header = read_header(path)
    assert fragment in header.error
    assert not loads_with_safetensors(path)


def test_lfs_pointer_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_text(LFS_POINTER)
    header = read_header(path)
    assert header.lfs is not None
    assert header.lfs.size == 4976698672 and header.lfs.oid.startswith("4d7a2146")


def test_unknown_dtype_is_noted_not_fatal(tmp_path: Path) -> None:
    raw = json.dumps({"x": {"dtype": "F2_NEW", "shape": [4], "data_offsets": [0, 1]}}).encode()
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0")
    header = read_header(path)
    assert header.unknown_dtypes == ["F2_NEW"] and not header.layout_problem_count


def _rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io (read-syscall byte counter)")
def test_weights_are_never_read_past_their_headers(tmp_path: Path) -> None:
    """Kernel-counted bytes read stay within the headers; no weight file is mmapped or opened for writing.

    Sixteen shards of 4 GiB each (sparse: no disk space) — reading their data would move 64 GiB
    through read() and show up in rchar, which counts every byte any read syscall returns.
    """
    folder = build_model(tmp_path / "model", shards=16, layers=16)
    header_bytes = sum(8 + struct.unpack("<Q", p.read_bytes()[:8])[0] for p in folder.glob("*.safetensors"))
    for shard in sorted(folder.glob("*.safetensors")):
        os.truncate(shard, 4 << 30)  # the data sections are now 4 GiB holes (and inconsistent with the headers)
    small_files = sum(p.stat().st_size for p in folder.iterdir() if p.suffix != ".safetensors")
    events: list[tuple[str, tuple[object, ...]]] = []
    recording = [True]

    def hook(event: str, args: tuple[object, ...]) -> None:
        if recording and recording[0] and event in {"open", "mmap.__new__", "os.truncate", "os.remove", "os.rename"}:
            events.append((event, args))

    gather(GatherOptions(model=str(folder), cwd=tmp_path))  # first imports (thread pool, logging) read .pyc files
    sys.addaudithook(hook)
    before_mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    try:
        before = _rchar()
        facts = gather(GatherOptions(model=str(folder), cwd=tmp_path))
        read = _rchar() - before
    finally:
        recording[0] = False
    assert facts is not None and facts.exists
    assert len(facts.files) == 16 and all(f.size == 4 << 30 for f in facts.files)
    # the few hundred bytes of slack cover reading /proc/self/io itself
    assert read <= header_bytes + small_files + 4096, f"read {read} bytes; the headers hold {header_bytes}"
    assert not [e for e in events if e[0] == "mmap.__new__"]
    assert not [e for e in events if e[0] in {"os.truncate", "os.remove", "os.rename"}]
    for _event, args in events:
        if _event != "open" or not str(args[0]).startswith(str(folder)):
            continue
        mode, flags = args[1], args[2]
        assert mode in (None, "r", "rb"), args
        assert not (int(flags or 0) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC)), args
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before_mtimes
    # control: the counter does see data reads here (so the bound above is meaningful)
    before = _rchar()
    with open(next(folder.glob("*.safetensors")), "rb") as handle:
        handle.read(1 << 20)
    assert _rchar() - before >= 1 << 20


def test_sharded_tensors_cross_checked_against_headers(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "model", shards=2, layers=4)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    index["weight_map"]["model.layers.9.mlp.down_proj.weight"] = "model-00002-of-00002.safetensors"
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    facts = gather(GatherOptions(model=str(folder), cwd=tmp_path))
    assert facts is not None and facts.index is not None
    (gap,) = facts.index.gaps
    assert gap.shard == "model-00002-of-00002.safetensors" and gap.count == 1
    assert gap.examples == ["model.layers.9.mlp.down_proj.weight"]
    assert facts.parameter_count == 16 * 8 + 4 * (64 + 32)
    assert len(layer_tensors(range(4))) == 8
