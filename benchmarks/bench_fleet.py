"""How long `autoglm-doctor fleet` takes over 1,000 node snapshots with a few planted drifts.

Target: under 2 s (issue 8). Run: .venv/bin/python benchmarks/bench_fleet.py [NODES]
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autoglm_doctor import cli, fleet  # noqa: E402
from tests.helpers.fleet import drifting, write_fleet  # noqa: E402


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "fleet"
        paths = write_fleet(folder, count)
        size = sum(p.stat().st_size for p in paths)
        timings, cpu = [], []
        for _ in range(5):
            out = io.StringIO()
            start, start_cpu = time.perf_counter(), time.process_time()
            with contextlib.redirect_stdout(out):
                code = cli.main(["fleet", *map(str, paths)])
            timings.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        result = fleet.analyse(paths)
        named = result.drifting_nodes
    best, worst = min(timings), max(timings)
    exact = named == drifting()
    print(f"fleet over {count} snapshots ({size / 1e6:.1f} MB): best {best:.3f} s, worst {worst:.3f} s (target < 2 s)")
    print(
        f"CPU time: best {min(cpu):.3f} s, worst {max(cpu):.3f} s (wall time above includes waiting on a busy machine)"
    )
    print(f"exit code {code}; named {len(named)} drifting nodes; exactly the planted ones: {exact}")
    return 0 if exact and best < 2.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
