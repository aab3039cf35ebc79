"""Time the GPU and host gatherers in-process, as `check` runs them.

Measures, each in a fresh interpreter (modules imported before the clock starts):
  - gpu.gather() with the real NVML (target: < 50 ms when no driver is present),
  - the same without nvcc on PATH (NVML only),
  - gpu.gather() replaying a fixture (the fake backend),
  - host.gather().
Prints the median of N runs in milliseconds.

    .venv/bin/python benchmarks/bench_gpu_gather.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FIXTURE = str(ROOT / "tests/fixtures/gpu/h100-80gb.json")
NO_NVCC = "{'PATH': '', 'CUDA_HOME': '/nonexistent'}"

# (name, setup, timed): the setup (imports) runs before the clock starts, as a real run has
# imported the doctor's modules already; what is timed is the gathering itself.
SNIPPETS = [
    (
        "gpu.gather (real NVML + nvcc)",
        "from autoglm_doctor.probe import gpu",
        "f = gpu.gather(); info = (f.nvml_error or f'{len(f.gpus)} GPU(s)') + f' | nvcc {f.nvcc_version or None}'",
    ),
    (
        "gpu.gather (real NVML, no nvcc)",
        "from autoglm_doctor.probe import gpu",
        f"f = gpu.gather(environ={NO_NVCC}); info = f.nvml_error or f'{{len(f.gpus)}} GPU(s)'",
    ),
    (
        "gpu.gather (fixture h100-80gb)",
        "from pathlib import Path; from autoglm_doctor.probe import gpu",
        f"f = gpu.gather(backend=gpu.FixtureBackend.from_file(Path({FIXTURE!r})), environ={{'PATH': ''}}); "
        "info = f'{len(f.gpus)} GPU(s)'",
    ),
    (
        "host.gather",
        "from autoglm_doctor.probe import host",
        "h = host.gather(); info = f'container={h.in_container}'",
    ),
]

TEMPLATE = """
import time
{setup}
t0 = time.perf_counter()
{timed}
print(f"{{(time.perf_counter() - t0) * 1000:.2f}} {{info}}")
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "AUTOGLM_DOCTOR_NVML_FIXTURE"}
    for name, setup, timed in SNIPPETS:
        times = []
        info = ""
        for _ in range(args.runs):
            out = subprocess.run(
                [sys.executable, "-c", TEMPLATE.format(setup=setup, timed=timed)],
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
                check=True,
            ).stdout.strip()
            ms, _, info = out.partition(" ")
            times.append(float(ms))
        print(f"{name:<36} median {statistics.median(times):7.2f} ms  (min {min(times):.2f})  [{info}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
