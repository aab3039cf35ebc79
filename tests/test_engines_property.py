"""Any launch command text reads into a typed record or findings: never an exception, a hang or a huge loop."""

from __future__ import annotations

import math
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoglm_doctor import engines
from autoglm_doctor.configfile.load import parse_config
from autoglm_doctor.engines.launch import RANGES, read_config

FLAGS = [
    "--max-model-len",
    "--tensor-parallel-size",
    "-tp",
    "--gpu-memory-utilization",
    "--port",
    "--max-num-seqs",
    "--mm-processor-kwargs",
    "--limit-mm-per-prompt",
    "--dtype",
    "--max_model_len",
    "--compilation-config.level",
]
WORDS = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(10**60), max_value=10**60).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["1" + "0" * 30, "9" * 400, "nan", "inf", "-1", "1e30", "²", "{", "{}", '{"max_pixels": "²"}']),
)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(FLAGS), WORDS), min_size=1, max_size=6))
def test_any_values_read_into_findings_or_ranged_values(pairs: list[tuple[str, str]]) -> None:
    text = "vllm serve /m " + " ".join(f"{flag} '{value.replace(chr(39), '')}'" for flag, value in pairs) + "\n"
    facts = parse_config(text.encode("utf-8", "replace"), shown="serve.sh", folder=Path("/"), cwd=Path("/"), environ={})
    flags = engines.EngineFlags(
        engine="vllm",
        version="0.34.0",
        source="table",
        why="test",
        flags=[engines._spec(d) for d in engines.load_table("vllm", "0.34")["flags"]],
    )
    started = time.monotonic()
    record = read_config(facts, flags)
    assert time.monotonic() - started < 2
    engine = engines.get("vllm")
    for meaning, (low, high, _unit) in RANGES.items():
        value = record.number(meaning)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if meaning == "max-model-len" and value == -1:
                continue
            assert math.isfinite(value) and low <= value <= high, (engine.flag(meaning), value)
