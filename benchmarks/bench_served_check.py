"""Time the server side, `check --no-smoke` on a launch command, against `pip check` on the same venv.

The venv holds vLLM 0.34.0 installed from its released files (the argument files the doctor reads,
verbatim from tools/knowledge_sources/vllm.tar.xz, and its real metadata: `pip install --no-deps`
as far as the doctor can tell), so the doctor reads the engine's own flag definitions with `ast`;
the launch command is Open-AutoGLM's README command against AutoGLM-Phone-9B's folder (headers
only). Target: the doctor's median at most 1.2x pip check's on that venv.

    .venv/bin/python benchmarks/bench_served_check.py [--runs N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_check import timed  # noqa: E402

from tests.helpers.engines import install_release  # noqa: E402
from tests.helpers.served import build_autoglm_phone, write_launch  # noqa: E402
from tests.helpers.venvs import make_venv  # noqa: E402

TARGET = 1.2
"""The doctor's median over pip check's on the server venv."""


def main() -> int:
    """Build the venv and the launch file, time both commands interleaved, print medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="interleaved runs of each command (default 5)")
    args = parser.parse_args()
    doctor = shutil.which("autoglm-doctor", path=str(Path(sys.executable).parent)) or "autoglm-doctor"
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        venv = make_venv(root / "venv")
        subprocess.run([str(venv.python), "-m", "ensurepip"], capture_output=True, check=True, timeout=300)
        install_release(venv, "vllm", "0.34.0")
        model = build_autoglm_phone(root / "AutoGLM-Phone-9B")
        launch = write_launch(root, model)
        commands = {
            "autoglm-doctor check --no-smoke (server)": [
                doctor,
                "check",
                "--no-smoke",
                "--pack",
                "open-autoglm-server",
                "--python",
                str(venv.python),
                "--config",
                str(launch),
            ],
            "pip check (same venv)": [str(venv.python), "-m", "pip", "check"],
        }
        for cmd in commands.values():
            timed(cmd, scratch)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, cmd in commands.items():
                samples[name].append(timed(cmd, scratch))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    for name, median in medians.items():
        print(f"  {name:<44} median {median * 1000:8.1f} ms   (min {min(samples[name]) * 1000:.1f} ms)")
    ratio = medians["autoglm-doctor check --no-smoke (server)"] / medians["pip check (same venv)"]
    print(f"ratio doctor / pip check: {ratio:.2f}; target <= {TARGET}: {'met' if ratio <= TARGET else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
