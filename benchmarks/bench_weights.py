"""Time weights.path + weights.files on a 1 TB, 100-shard model made of sparse files (target: < 0.2 s).

Each shard gets a real safetensors header (40 BF16 tensors of 8192 x 16384, 10 GiB of data) and is
then extended to its full size with truncate, so the 1 TiB takes no disk space. Prints the gather
time (locating + reading every header + the index cross-check) and the check time, best and median
of several runs.

    python benchmarks/bench_weights.py [--shards 100] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from autoglm_doctor import packs, registry  # noqa: E402
from autoglm_doctor.context import CheckContext, Options  # noqa: E402
from autoglm_doctor.gather_options import GatherOptions  # noqa: E402
from autoglm_doctor.model import Status  # noqa: E402
from autoglm_doctor.probe.snapshot import PythonFacts, Snapshot  # noqa: E402
from autoglm_doctor.probe.weights import gather  # noqa: E402
from autoglm_doctor.runner import run_check  # noqa: E402

TARGET_S = 0.2
SHARD_BYTES = 10 << 30  # 100 shards: 1 TiB (1.07 TB)


def build(folder: Path, shards: int, per_shard: int) -> int:
    """Write the sparse model (``per_shard`` BF16 tensors of equal size per shard); returns its apparent size."""
    elements = SHARD_BYTES // 2 // per_shard
    shape = [elements // 1024, 1024]
    tensor_bytes = shape[0] * shape[1] * 2
    weight_map: dict[str, str] = {}
    total = 0
    for shard in range(shards):
        name = f"model-{shard + 1:05d}-of-{shards:05d}.safetensors"
        header: dict[str, object] = {"__metadata__": {"format": "pt"}}
        for t in range(per_shard):
            tensor = f"model.layers.{shard}.block.{t}.weight"
            header[tensor] = {
                "dtype": "BF16",
                "shape": shape,
                "data_offsets": [t * tensor_bytes, (t + 1) * tensor_bytes],
            }
            weight_map[tensor] = name
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
        path = folder / name
        with open(path, "wb") as handle:
            handle.write(struct.pack("<Q", len(raw)) + raw)
        size = 8 + len(raw) + per_shard * tensor_bytes
        os.truncate(path, size)
        total += size
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map})
    )
    (folder / "config.json").write_text(
        json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"], "max_position_embeddings": 32768})
    )
    (folder / "tokenizer.json").write_text("{}")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast"}))
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=100)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--tensors-per-shard",
        type=int,
        default=40,
        help="40: a dense model with large matrices; ~1400: a mixture-of-experts checkpoint (140k tensors)",
    )
    args = parser.parse_args()
    checks = registry.load(plugins=False).checks
    ctx = CheckContext(pack=packs.load(None), options=Options())
    python = PythonFacts(
        version="3.11", implementation="cpython", executable="python", prefix="/", base_prefix="/", env_kind="venv"
    )
    with tempfile.TemporaryDirectory(prefix="bench-weights-") as tmp:
        folder = Path(tmp) / "model"
        folder.mkdir()
        apparent = build(folder, args.shards, args.tensors_per_shard)
        on_disk = sum(p.stat().st_blocks * 512 for p in folder.iterdir())
        tensors = args.shards * args.tensors_per_shard
        print(
            f"model: {args.shards} shards, {tensors} tensors, {apparent / 1e12:.2f} TB apparent, "
            f"{on_disk / 1e6:.1f} MB on disk"
        )
        gathers, totals = [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            facts = gather(GatherOptions(model=str(folder), cwd=Path(tmp)))
            gathered = time.perf_counter()
            snap = Snapshot(python=python, model=facts)
            results = [run_check(checks[i], snap, ctx) for i in ("weights.path", "weights.files")]
            done = time.perf_counter()
            gathers.append(gathered - start)
            totals.append(done - start)
            assert all(r.status is Status.PASS for r in results), [(r.id, r.findings) for r in results]
        assert facts is not None and facts.parameter_bytes is not None and facts.parameter_count is not None
        print(
            f"parameters: {facts.parameter_count / 1e9:.1f}B, {facts.parameter_bytes / 1e12:.2f} TB BF16 (from headers)"
        )
        gather_best, gather_median = min(gathers) * 1000, statistics.median(gathers) * 1000
        print(
            f"gather (locate + {args.shards} headers + index): best {gather_best:.1f} ms, median {gather_median:.1f} ms"
        )
        best, median = min(totals), statistics.median(totals)
        print(f"gather + weights.path + weights.files:  best {best * 1000:.1f} ms, median {median * 1000:.1f} ms")
        verdict = "OK" if median < TARGET_S else "SLOWER THAN TARGET"
        print(f"target < {TARGET_S * 1000:.0f} ms: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
