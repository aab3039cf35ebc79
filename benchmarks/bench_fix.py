"""Time `autoglm-doctor check --no-smoke --fix` against a plain locker on the same input, in the same run.

The environment is a broken deployment venv (transformers 4.29.2 below the pack's range, its old
tokenizers) built here; the wheelhouse is the tests' (tests/helpers/wheels.py: several releases of
numpy, transformers, tokenizers, torch, with a conflict that has one way out). Everything resolves
offline: `--no-index --find-links WHEELHOUSE`, no pip configuration, no GPU.

The same input: the constraints the doctor states (its file written with no index reachable, the
plan's pins and ranges), handed to `uv pip compile --generate-hashes`, and to pip's own resolver
(`pip install --dry-run --ignore-installed --report`, the step the doctor runs for the target).
The doctor is timed twice: with pip as its resolver (uv off PATH) and with uv on PATH. Its time
includes the whole check (probe, every check but the smoke test) besides resolving, so the same
check without --fix is timed too, and what --fix adds to it is printed.
Prints medians and ratios; there is no target.

    .venv/bin/python benchmarks/bench_fix.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.gpu import fixture  # noqa: E402 - the tests' helpers, from the repository root
from tests.helpers.venvs import healthy, make_venv  # noqa: E402
from tests.helpers.wheels import build_wheelhouse  # noqa: E402


def timed(cmd: list[str], cwd: str, env: dict[str, str]) -> float:
    """Wall time of ``cmd`` (a blocking wait, exact; a timer kills it after 600 s); it must succeed."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
    watchdog = threading.Timer(600, proc.kill)
    watchdog.start()
    try:
        _, err = proc.communicate()
    finally:
        watchdog.cancel()
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):  # the doctor exits 1: the broken environment's report fails
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode(errors='replace')}")
    return elapsed


def _broken_venv(path: Path) -> Path:
    venv = healthy(make_venv(path))
    for folder in [*venv.site_packages.glob("transformers*"), *venv.site_packages.glob("tokenizers*")]:
        shutil.rmtree(folder)
    venv.add("transformers", "4.29.2", ["tokenizers<0.14,>=0.11.1", "numpy>=1.17"])
    venv.add("tokenizers", "0.13.3")
    return venv.python


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="interleaved runs of each command (default 7)")
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    doctor = shutil.which("autoglm-doctor", path=str(bin_dir))
    uv = shutil.which("uv", path=str(bin_dir)) or shutil.which("uv")
    if doctor is None or uv is None:
        print("needs autoglm-doctor and uv beside this interpreter: run it with .venv/bin/python", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-fix-") as tmp:
        work = Path(tmp)
        house = build_wheelhouse(work / "wheelhouse")
        target = str(_broken_venv(work / "venv"))
        no_uv_path = os.pathsep.join(
            p for p in os.environ.get("PATH", "").split(os.pathsep) if p and not (Path(p) / "uv").exists()
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
        env |= {
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "AUTOGLM_DOCTOR_NVML_FIXTURE": str(fixture("no-driver")),
            "UV_CACHE_DIR": str(work / "uv-cache"),
            "PATH": no_uv_path,
        }
        with_uv = env | {"PATH": str(Path(uv).parent) + os.pathsep + no_uv_path}
        links = ["--no-index", "--find-links", str(house)]
        fix = [doctor, "check", "--no-smoke", "--python", target, "--fix", "--force", "--format", "json"]
        # The stated constraints: the doctor's file when no index is reachable (its plan, before any resolver).
        stated = work / "stated.txt"
        timed([*fix, "--no-index", "--fix-output", str(stated)], tmp, env)
        assert "NOT A LOCK" in stated.read_text(encoding="utf-8")
        commands = {
            "doctor check --fix (pip resolves)": ([*fix, *links, "--fix-output", str(work / "a.txt")], env),
            "doctor check --fix (uv resolves)": ([*fix, *links, "--fix-output", str(work / "b.txt")], with_uv),
            "doctor check, no --fix (reference)": (fix[: fix.index("--fix")] + ["--format", "json"], env),
            "uv pip compile --generate-hashes": (
                [uv, "pip", "compile", "--generate-hashes", "--python", target, *links, "-q", str(stated)],
                env,
            ),
            "pip install --dry-run --report": (
                [sys.executable, "-m", "pip", "--python", target, "install", "--dry-run", "--ignore-installed"]
                + ["--report", str(work / "report.json"), "-q", *links, "-r", str(stated)],
                env,
            ),
        }
        for cmd, cmd_env in commands.values():  # warm caches once for everyone
            timed(cmd, tmp, cmd_env)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, (cmd, cmd_env) in commands.items():  # interleaved, so drift hits all alike
                samples[name].append(timed(cmd, tmp, cmd_env))
        assert "# Resolver: pip " in (work / "a.txt").read_text(encoding="utf-8")
        assert "# Resolver: uv " in (work / "b.txt").read_text(encoding="utf-8")
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"environment: {sys.executable}; {os.cpu_count()} CPUs; {args.runs} runs each, interleaved")
    for name, median in medians.items():
        print(f"  {name:<36} median {median * 1000:8.1f} ms   (min {min(samples[name]) * 1000:.1f} ms)")
    peer = medians["uv pip compile --generate-hashes"]
    for name in ("doctor check --fix (pip resolves)", "doctor check --fix (uv resolves)"):
        print(f"ratio {name} / uv pip compile --generate-hashes: {medians[name] / peer:.2f}")
    check_only = medians["doctor check, no --fix (reference)"]
    for name in ("doctor check --fix (pip resolves)", "doctor check --fix (uv resolves)"):
        print(f"{name}: --fix adds {(medians[name] - check_only) * 1000:.0f} ms to the check")
    pip_peer = medians["pip install --dry-run --report"]
    print(
        f"ratio doctor check --fix (pip resolves) / pip's resolver alone: {medians[next(iter(medians))] / pip_peer:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
