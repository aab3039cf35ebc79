"""service.endpoint's probe vs a bare streaming request with the same screenshot to the same server.

The server is `transformers serve` running the tests' tiny LLaVA (tests/helpers/tiny_vlm.py) on
the CPU, started here on 127.0.0.1 and stopped by its pid. The doctor's probe is the whole check
(GET /v1/models, the model-card context check, the streamed agent step, the reply judged); the
bare request is the agent's step alone: one POST with the same payload (system prompt, the same
PNG as a data URL, stream, temperature 0, max_tokens 3000), the event stream read to its end.
Interleaved runs, alternating which goes first; prints the medians and the ratio doctor / bare
(target <= 1.2).

    .venv/bin/python benchmarks/bench_endpoint.py [--runs 15] [--url http://HOST:PORT/v1 --model NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoglm_doctor import packs, registry, runner  # noqa: E402
from autoglm_doctor.context import CheckContext, Options  # noqa: E402
from autoglm_doctor.model import Status  # noqa: E402
from autoglm_doctor.phone.chat import agent_payload  # noqa: E402
from autoglm_doctor.phone.prompt import DOCTOR_PROMPT  # noqa: E402
from autoglm_doctor.phone.screenshot import synthetic_png  # noqa: E402
from autoglm_doctor.probe.snapshot import PythonFacts, Snapshot  # noqa: E402


def bare(url: str, model: str) -> float:
    """One streamed agent step with urllib, built and read to the end; wall seconds."""
    started = time.perf_counter()  # building the request is part of it, as for the doctor
    body = json.dumps(agent_payload(model, DOCTOR_PROMPT, synthetic_png())).encode()
    request = urllib.request.Request(f"{url}/chat/completions", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback
        for _ in response:
            pass
    return time.perf_counter() - started


def doctor(url: str, model: str) -> float:
    """service.endpoint as the CLI runs it (facts given, not probed); wall seconds."""
    snap = Snapshot(
        python=PythonFacts(
            version="3", implementation="cpython", executable=sys.executable, prefix="", base_prefix="", env_kind="venv"
        ),
        env={"PHONE_AGENT_MODEL": model},
    )
    spec = registry.load(plugins=False).checks["service.endpoint"]
    ctx = CheckContext(pack=packs.load("open-autoglm-phone"), options=Options(endpoint=url))
    started = time.perf_counter()
    result = runner.run_check(spec, snap, ctx)
    took = time.perf_counter() - started
    if result.status is not Status.PASS:
        raise SystemExit(f"service.endpoint did not pass: {result.findings}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--url", help="an OpenAI base URL to use instead of starting transformers serve")
    parser.add_argument("--model", help="the served model name (with --url)")
    args = parser.parse_args()
    server = None
    with tempfile.TemporaryDirectory() as tmp:
        url, model = args.url, args.model
        if url is None:
            from tests.helpers.openai_servers import start_transformers_serve
            from tests.helpers.tiny_vlm import make_tiny_vlm

            folder = make_tiny_vlm(Path(tmp) / "tiny-llava")
            server = start_transformers_serve(folder, Path(tmp) / "serve.log")
            url, model = server.url, server.model
        try:
            doctor(url, model)  # warm: the server's first request, the doctor's imports and screenshot
            bare(url, model)
            doctor_times, bare_times = [], []
            for run in range(args.runs):  # alternate who goes first: the server's state favours neither
                if run % 2:
                    bare_times.append(bare(url, model))
                    doctor_times.append(doctor(url, model))
                else:
                    doctor_times.append(doctor(url, model))
                    bare_times.append(bare(url, model))
        finally:
            if server is not None:
                server.stop()
    d, b = statistics.median(doctor_times), statistics.median(bare_times)
    print(f"server:         {'transformers serve, tiny LLaVA on the CPU' if server else url}")
    print(f"load average:   {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"doctor probe:   median {d * 1000:.1f} ms  ({', '.join(f'{t * 1000:.0f}' for t in doctor_times)})")
    print(f"bare request:   median {b * 1000:.1f} ms  ({', '.join(f'{t * 1000:.0f}' for t in bare_times)})")
    print(f"ratio doctor/bare: {d / b:.2f} (target <= 1.20)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
