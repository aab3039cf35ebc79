"""--verify-hashes against sha256sum on the same files (target: at least 80% of sha256sum's throughput).

Builds a model folder of 4 safetensors shards of 256 MB of random data each (real headers), warms
the page cache, then times, best of several runs:
  - `sha256sum` over the four files (one process, as a person would run it);
  - the doctor's gather with --verify-hashes (headers + a sha256 of every shard, in threads);
  - for reference, `sha256sum` run as one process per file in parallel (xargs -P).
It checks that both produce the same digests, and prints throughputs and the ratio.

    python benchmarks/bench_hashes.py [--files 4] [--mb 256] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from autoglm_doctor.gather_options import GatherOptions  # noqa: E402
from autoglm_doctor.probe.hashing import default_workers  # noqa: E402
from autoglm_doctor.probe.weights import gather  # noqa: E402

TARGET_RATIO = 0.8


def build(folder: Path, files: int, megabytes: int) -> list[Path]:
    paths = []
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (folder / "tokenizer.json").write_text("{}")
    data_bytes = megabytes * 1_000_000 // 1024 * 1024
    for n in range(files):
        header = {"w": {"dtype": "U8", "shape": [data_bytes], "data_offsets": [0, data_bytes]}}
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
        path = folder / f"model-{n + 1:05d}-of-{files:05d}.safetensors"
        with open(path, "wb") as handle:
            handle.write(struct.pack("<Q", len(raw)) + raw)
            for _ in range(data_bytes // (1 << 20)):
                handle.write(os.urandom(1 << 20))
            handle.write(os.urandom(data_bytes % (1 << 20)))
        paths.append(path)
    index = {"weight_map": {"w": paths[0].name}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return paths


def best_of(runs: int, func) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--mb", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("sha256sum"):
        print("sha256sum is not installed here: nothing to compare with")
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-hashes-") as tmp:
        folder = Path(tmp)
        paths = build(folder, args.files, args.mb)
        total = sum(p.stat().st_size for p in paths)
        names = [p.name for p in paths]
        for path in paths:  # warm the page cache: both sides hash from memory
            with open(path, "rb") as handle:
                while handle.read(16 << 20):
                    pass

        def sha256sum() -> dict[str, str]:
            out = subprocess.run(
                ["sha256sum", *names], cwd=folder, capture_output=True, text=True, check=True, timeout=600
            ).stdout
            return {line.split()[1]: line.split()[0] for line in out.splitlines()}

        def parallel_sha256sum() -> None:
            subprocess.run(
                f"printf '%s\\n' {' '.join(names)} | xargs -P {default_workers()} -n 1 sha256sum",
                shell=True,  # noqa: S602 - fixed command over our own temp files
                cwd=folder,
                capture_output=True,
                check=True,
                timeout=600,
            )

        def verify() -> dict[str, str]:
            facts = gather(GatherOptions(model=str(folder), cwd=folder, verify_hashes=True))
            assert facts is not None
            return {c.file: c.sha256 for c in facts.hash_checks}

        tool_s, tool_digests = best_of(args.runs, sha256sum)
        ours_s, our_digests = best_of(args.runs, verify)
        parallel_s, _ = best_of(args.runs, parallel_sha256sum)
        assert our_digests == tool_digests, "the digests differ"
        mb = total / 1e6
        print(f"{args.files} files, {mb:.0f} MB, page cache warm, {default_workers()} CPUs usable")
        print(f"sha256sum (one process):            {tool_s:6.2f} s  {mb / tool_s:7.0f} MB/s")
        print(f"autoglm-doctor --verify-hashes:     {ours_s:6.2f} s  {mb / ours_s:7.0f} MB/s")
        print(f"sha256sum, one process per file:    {parallel_s:6.2f} s  {mb / parallel_s:7.0f} MB/s (reference)")
        ratio = tool_s / ours_s
        verdict = "OK" if ratio >= TARGET_RATIO else "BELOW TARGET"
        print(f"throughput ratio (doctor / sha256sum): {ratio:.2f}  target >= {TARGET_RATIO:.2f}: {verdict}")
        print(f"vs parallel sha256sum: {parallel_s / ours_s:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
