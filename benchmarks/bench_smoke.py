"""The doctor's smoke test vs a bare script doing the same from_pretrained + generate.

Both run on the tiny model (built here with examples/make_tiny_model.py unless --model is
given), in the same interpreter, interleaved, a few times each. Prints the median wall
times and the ratio doctor / bare; the target is at most 0.8 (the doctor spares itself
torch's interpreter teardown by leaving with os._exit once it has reported).

Then the same for a vision-language model (the tests' tiny LLaVA, tests/helpers/tiny_vlm.py,
unless --vlm is given): the doctor's smoke test against a bare AutoProcessor + chat template
with a screenshot + AutoModelForImageTextToText + generate script; same target.

    .venv/bin/python benchmarks/bench_smoke.py [--runs 5] [--model DIR] [--vlm DIR] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autoglm_doctor import packs, registry, runner
from autoglm_doctor.context import CheckContext, Options
from autoglm_doctor.model import Status
from autoglm_doctor.probe.snapshot import PythonFacts, Snapshot, TorchBuild
from autoglm_doctor.probe.weights import ModelFacts

ROOT = Path(__file__).resolve().parents[1]

BARE = """
import sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
path, device = sys.argv[1], sys.argv[2]
tok = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path).to(device).eval()
inputs = tok("The capital of France is", return_tensors="pt").to(device)
with torch.no_grad():
    out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
print(tok.decode(out[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True))
"""


BARE_VLM = """
import sys, torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor
path, device = sys.argv[1], sys.argv[2]
processor = AutoProcessor.from_pretrained(path)
model = AutoModelForImageTextToText.from_pretrained(path).to(device).eval()
image = Image.new("RGB", (1080, 2400), (242, 244, 247))
messages = [{"role": "user", "content": [{"type": "image", "image": image},
            {"type": "text", "text": "Open the Settings app. Answer with one action."}]}]
inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                       return_tensors="pt").to(device)
with torch.no_grad():
    out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
print(processor.decode(out[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True))
"""


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bare(python: str, model: Path, device: str, script: str = BARE) -> tuple[float, float]:
    cpu, started = children_cpu(), time.perf_counter()
    subprocess.run([python, "-c", script, str(model), device], check=True, capture_output=True, timeout=600)
    return time.perf_counter() - started, children_cpu() - cpu


def doctor(python: str, model: Path, device: str, vision: bool = False) -> tuple[float, float]:
    snap = Snapshot(
        python=PythonFacts(
            version="3", implementation="cpython", executable=python, prefix="", base_prefix="", env_kind="venv"
        ),
        torch=TorchBuild(version="unknown"),
        model=ModelFacts(path=str(model), exists=True, vision=vision),
    )
    spec = registry.load(plugins=False).checks["smoke.load-infer"]
    ctx = CheckContext(pack=packs.load(), options=Options(device=device, python=python))
    cpu, started = children_cpu(), time.perf_counter()
    result = runner.run_check(spec, snap, ctx)
    took = time.perf_counter() - started
    if result.status is not Status.PASS:
        raise SystemExit(f"the doctor's smoke test did not pass: {result.findings}")
    return took, children_cpu() - cpu


def compare(label: str, python: str, model: Path, device: str, runs: int, *, vision: bool = False) -> None:
    """Interleaved runs of the doctor's smoke test and the bare script; prints medians and ratios."""
    script = BARE_VLM if vision else BARE
    bare(python, model, device, script)  # warm the page cache and .pyc files for both
    doctor_times, bare_times = [], []
    for _ in range(runs):
        doctor_times.append(doctor(python, model, device, vision))
        bare_times.append(bare(python, model, device, script))
    d = statistics.median(t for t, _ in doctor_times)
    b = statistics.median(t for t, _ in bare_times)
    dc = statistics.median(c for _, c in doctor_times)
    bc = statistics.median(c for _, c in bare_times)
    print(f"== {label}")
    print(f"doctor smoke:  median {d:.2f} s wall, {dc:.2f} s CPU  ({', '.join(f'{t:.2f}' for t, _ in doctor_times)})")
    print(f"bare script:   median {b:.2f} s wall, {bc:.2f} s CPU  ({', '.join(f'{t:.2f}' for t, _ in bare_times)})")
    print(f"ratio doctor/bare: {d / b:.2f} wall (target <= 0.80); {dc / bc:.2f} CPU time (steadier on a busy machine)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", type=Path, help="model folder (default: build the tiny model)")
    parser.add_argument("--vlm", type=Path, help="vision-language model folder (default: build the tiny LLaVA)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--only-vlm", action="store_true", help="skip the text model")
    args = parser.parse_args()
    print(f"device:        {args.device}   load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None and not args.only_vlm:
            model = Path(tmp) / "tiny"
            subprocess.run(
                [args.python, str(ROOT / "examples" / "make_tiny_model.py"), str(model)],
                check=True,
                capture_output=True,
            )
        if model is not None:
            compare("text model (AutoTokenizer + AutoModelForCausalLM)", args.python, model, args.device, args.runs)
        vlm = args.vlm
        if vlm is None:
            vlm = Path(tmp) / "tiny-vlm"
            subprocess.run(
                [args.python, str(ROOT / "tests" / "helpers" / "tiny_vlm.py"), str(vlm)],
                check=True,
                capture_output=True,
            )
        compare(
            "vision-language model (AutoProcessor + screenshot + AutoModelForImageTextToText)",
            args.python,
            vlm,
            args.device,
            args.runs,
            vision=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
