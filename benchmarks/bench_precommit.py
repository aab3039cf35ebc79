"""Time the pre-commit form (`check --only config --no-smoke --no-env FILE...`) on 1,000 and 10,000 configs.

The hook passes every matching file to one run; the target is probed once per run and the pack
and checks are loaded once, so the time grows with the files' own work only (reading and linting
each, one report each). Target: 10,000 files well under a minute (issue 23: 164 s for 1,000 before).

    .venv/bin/python benchmarks/bench_precommit.py [--files 1000 10000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = "model_path: /models/glm\nport: 8000\nmax_batch_size: 4\n"
TARGET_S = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    worst = 0.0
    for count in args.files:
        with tempfile.TemporaryDirectory() as tmp:
            names = []
            for i in range(count):
                name = f"autoglm{i}.yaml"
                (Path(tmp) / name).write_text(CONFIG)
                names.append(name)
            cmd = [sys.executable, "-m", "autoglm_doctor", "check", "--only", "config", "--no-smoke", "--no-env"]
            start = time.perf_counter()
            done = subprocess.run([*cmd, *names], cwd=tmp, stdout=subprocess.DEVNULL, timeout=600, check=False)  # noqa: S603
            took = time.perf_counter() - start
        per_file = took / count * 1000
        print(f"{count:>6} files: {took:6.1f} s ({per_file:.2f} ms per file), exit {done.returncode}")
        if count >= 10_000:
            worst = max(worst, took)
    if worst:
        print(f"10,000 files: {worst:.1f} s (target: under {TARGET_S:.0f} s)")
    return 0 if worst < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
