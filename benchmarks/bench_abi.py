"""What packages.abi adds to `autoglm-doctor check --no-smoke`, against `pip check` in the same run.

Two real venvs beside the CPU torch of this environment (linked in, with its dist-info):

- *stack*: torch, the real torchvision 0.28.0 ``_C.so`` (PyPI's CUDA build, kept verbatim in
  tools/knowledge_sources) and one extension compiled here with g++ against the installed torch;
- *wide*: torch and 200 distributions, each with such an extension.

For each it times, in fresh interpreters, interleaved: the whole ``check --no-smoke``, ``pip
check`` (the peer: dependency consistency only), and what packages.abi adds to the check: the ELF
gathering (``probe.abi.gather``, pyelftools' import included, run after the probe answers) plus
the check itself (its ``duration_ms`` in the JSON report). The probe lists the shared objects in
its own process (their walk and ``DT_NEEDED`` pre-read run beside the doctor, not in it): the
gathering timed here reads in full only those that link torch.

Targets: the stack's addition at most 0.15 s; the wide venv's at most 1 s.

    .venv/bin/python benchmarks/bench_abi.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers.extensions import (  # noqa: E402  (the repository root is put on the path above)
    add_extension,
    add_torchvision_wheel_files,
    build_extensions,
    venv_with_torch,
)
from tests.helpers.venvs import Venv  # noqa: E402

STACK_TARGET_S = 0.15
WIDE_TARGET_S = 1.0
WIDE_COUNT = 200


def _run(cmd: list[str], cwd: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603
    return time.perf_counter() - start, done.stdout


_COLD = """
import sys, pathlib, time
from autoglm_doctor.probe import collect
data = collect.run_probe(sys.argv[1], pathlib.Path.cwd())
snap = collect.snapshot_from_probe(data, {})
assert "elftools" not in sys.modules
start = time.perf_counter()
facts = collect._abi_facts(snap, data.get("shared_objects"))  # imports probe.elf and pyelftools, as a run does
print(time.perf_counter() - start, len(facts.extensions) if facts else -1)
"""


def _gather_s(python: str, target: Venv, cwd: str) -> tuple[float, int]:
    """Seconds the ELF gathering takes in a fresh interpreter (imports of probe.abi and pyelftools included)."""
    _, out = _run([python, "-c", _COLD, str(target.python)], cwd)
    seconds, count = out.split()
    return float(seconds), int(count)


def _check_ms(doctor: str, target: Venv, cwd: str) -> tuple[float, float]:
    """(wall seconds of the whole check, packages.abi's own duration in ms)."""
    seconds, out = _run([doctor, "check", "--no-smoke", "--python", str(target.python), "--format", "json"], cwd)
    report = json.loads(out)
    own = next(r["duration_ms"] for r in report["results"] if r["id"] == "packages.abi")
    return seconds, float(own)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="interleaved runs of each measurement (default 7)")
    args = parser.parse_args()
    if shutil.which("g++") is None:
        print("needs g++ to build the extensions", file=sys.stderr)
        return 2
    python = sys.executable
    doctor = shutil.which("autoglm-doctor", path=str(Path(python).parent)) or "autoglm-doctor"
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        built = build_extensions(root / "build")
        stack = venv_with_torch(root / "stack")
        add_torchvision_wheel_files(stack)
        add_extension(stack, built["matching"])
        wide = venv_with_torch(root / "wide")
        for n in range(WIDE_COUNT):
            add_extension(wide, built["matching"], name=f"abiext{n}")
        cwd = str(root)
        for name, target, goal in (
            ("stack", stack, STACK_TARGET_S),
            (f"wide ({WIDE_COUNT} ext.)", wide, WIDE_TARGET_S),
        ):
            pip = [python, "-m", "pip", "--python", str(target.python), "check"]
            _check_ms(doctor, target, cwd)  # warm the page cache once
            _run(pip, cwd)
            walls, owns, gathers, pips = [], [], [], []
            count = 0
            for _ in range(args.runs):
                wall, own = _check_ms(doctor, target, cwd)
                walls.append(wall)
                owns.append(own)
                seconds, count = _gather_s(python, target, cwd)
                gathers.append(seconds)
                pips.append(_run(pip, cwd)[0])
            added = statistics.median(gathers) + statistics.median(owns) / 1000
            check_s, pip_s = statistics.median(walls), statistics.median(pips)
            met = added <= goal
            ok = ok and met
            print(f"{name}: {count} extensions read")
            print(f"  check --no-smoke     median {check_s * 1000:7.1f} ms")
            print(
                f"  pip check            median {pip_s * 1000:7.1f} ms   ratio check / pip check: {check_s / pip_s:.2f}"
            )
            gathering = statistics.median(gathers) * 1000
            print(
                f"  packages.abi adds    median {added * 1000:7.1f} ms   (gathering {gathering:.1f} ms + check "
                f"{statistics.median(owns):.1f} ms); target <= {goal * 1000:.0f} ms: {'met' if met else 'NOT met'}"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
