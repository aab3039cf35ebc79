"""Time `autoglm-doctor check --no-smoke` against its peers on one environment, in the same run.

Peers: `python -m pip check` (dependency consistency only) and `python -m torch.utils.collect_env`
(torch's own environment report). The environment is the one this script runs in (it must hold
torch and transformers: `make test` builds such a .venv). Prints medians and ratios.
Target: the doctor's median wall time at most pip check's (the start-up budget in README: 1.0x).

When the bundled example deployment has its model (`make check` builds it), the doctor is also
timed on it (`--config`, `--request`, the model folder and every config rule: all areas load);
that figure is reported beside the target, not part of it.

    .venv/bin/python benchmarks/bench_check.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TARGET = 1.0
"""The doctor's median over pip check's."""


def timed(cmd: list[str], cwd: str) -> float:
    """Wall time of ``cmd``, read when it exits.

    ``subprocess.run(..., timeout=)`` without pipes waits by polling, and its poll interval grows
    to 50 ms: every time would be rounded up to the next poll (113, 163, 213 ms...). A blocking
    wait is exact; a timer kills a command that runs past 600 s.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    watchdog = threading.Timer(600, proc.kill)
    watchdog.start()
    try:
        proc.wait()
    finally:
        watchdog.cancel()
    return time.perf_counter() - start


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "deployment"


def _deployment_run(doctor: str, python: str) -> dict[str, list[str]]:
    """The doctor on the example deployment (config, request, model), when its model is built."""
    if not (EXAMPLE / "model" / "config.json").is_file():
        return {}
    os.environ.setdefault("AUTOGLM_SECRET_KEY", secrets.token_urlsafe(32))  # the example config asks for it
    config, request = str(EXAMPLE / "autoglm.yaml"), str(EXAMPLE / "request.json")
    return {
        "  ... on examples/deployment": [
            doctor,
            "check",
            "--no-smoke",
            "--python",
            python,
            "--config",
            config,
            "--request",
            request,
        ]
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="interleaved runs of each command (default 15)")
    args = parser.parse_args()
    python = sys.executable
    doctor = shutil.which("autoglm-doctor", path=str(Path(python).parent)) or "autoglm-doctor"
    try:
        import importlib.metadata as md

        versions = f"torch {md.version('torch')}, transformers {md.version('transformers')}"
    except Exception as exc:  # noqa: BLE001
        print(f"this environment lacks torch or transformers ({exc}); run it with .venv/bin/python", file=sys.stderr)
        return 2
    commands = {
        "autoglm-doctor check --no-smoke": [doctor, "check", "--no-smoke", "--python", python],
        **_deployment_run(doctor, python),
        "pip check": [python, "-m", "pip", "check"],
        "torch.utils.collect_env": [python, "-m", "torch.utils.collect_env"],
    }
    # An installed wheel has its bytecode compiled (pip does it at install time), as pip's own
    # modules do; an editable checkout under PYTHONDONTWRITEBYTECODE would recompile every run.
    import autoglm_doctor

    subprocess.run(
        [python, "-m", "compileall", "-q", str(Path(autoglm_doctor.__file__).parent)], check=True, timeout=300
    )
    with tempfile.TemporaryDirectory() as cwd:
        env_note = f"{python} ({versions}); {os.cpu_count()} CPUs"
        for cmd in commands.values():  # warm the page cache once for everyone
            timed(cmd, cwd)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, cmd in commands.items():  # interleaved, so drift hits all alike
                samples[name].append(timed(cmd, cwd))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"environment: {env_note}; {args.runs} runs each, interleaved")
    for name, median in medians.items():
        print(f"  {name:<34} median {median * 1000:8.1f} ms   (min {min(samples[name]) * 1000:.1f} ms)")
    doctor_time = medians["autoglm-doctor check --no-smoke"]
    for peer in ("pip check", "torch.utils.collect_env"):
        print(f"ratio doctor / {peer}: {doctor_time / medians[peer]:.2f}")
    if "  ... on examples/deployment" in medians:
        full = medians["  ... on examples/deployment"] / medians["pip check"]
        print(f"ratio doctor on examples/deployment (all areas) / pip check: {full:.2f} (reported, not the target)")
    ok = doctor_time <= TARGET * medians["pip check"]
    print(f"target (doctor <= {TARGET} x pip check): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
