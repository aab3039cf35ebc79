"""The smoke test's failure classifier, fed outcomes in the shape the child script reports them.

Failures that need hardware this machine lacks (CUDA OOM, missing kernels, cuDNN) are fed the
exact messages torch and transformers print; the CPU-reproducible ones run for real in
test_smoke_load_infer.py.
"""

from __future__ import annotations

import signal

import pytest

from autoglm_doctor.model import Severity
from autoglm_doctor.smoke.classify import classify
from autoglm_doctor.smoke.protocol import SmokeRequest, SmokeRun, parse_line

REQUEST = SmokeRequest(model_path="/models/autoglm", device="cuda:0")
PIP = "/venv/bin/python -m pip install"


def failed(phase: str, type_: str, message: str, *, output: str = "", returncode: int | None = 1) -> SmokeRun:
    events = [
        {"event": "phase", "phase": "import", "module": "torch"},
        {"event": "phase", "phase": phase},
        {"event": "error", "phase": phase, "type": type_, "message": message, "traceback": f"{type_}: {message}\n"},
    ]
    return SmokeRun(
        events=events,
        returncode=returncode,
        timed_out=False,
        elapsed_s=3.0,
        output=output,
        interpreter="/venv/bin/python",
    )


def one(run: SmokeRun):  # noqa: ANN201
    findings = list(classify(run, REQUEST, PIP, 600))
    assert len(findings) == 1, findings
    assert findings[0].severity is Severity.ERROR
    return findings[0]


@pytest.mark.parametrize(
    ("type_", "message", "code", "in_fix"),
    [
        (
            "OutOfMemoryError",
            "CUDA out of memory. Tried to allocate 2.00 GiB. "
            "GPU 0 has a total capacity of 23.65 GiB of which 1.12 GiB is free.",
            "smoke.out-of-memory",
            "bfloat16",
        ),
        (
            "AcceleratorError",
            "CUDA error: no kernel image is available for execution on the device",
            "smoke.no-kernel-image",
            "--index-url https://download.pytorch.org/whl/cu128",
        ),
        (
            "OSError",
            "libcudnn_cnn.so.9: cannot open shared object file: No such file or directory",
            "smoke.cuda-library",
            "LD_LIBRARY_PATH",
        ),
        (
            "ValueError",
            "Using a `device_map`, `tp_plan`, `torch.device` context manager or setting "
            "`torch.set_default_device(device)` requires `accelerate`. "
            "You can install it with `pip install accelerate`",
            "smoke.needs-accelerate",
            f"{PIP} 'accelerate>=1.1.0'",
        ),
        (
            "RuntimeError",
            "[enforce fail at alloc_cpu.cpp:117] err == 0. "
            "DefaultCPUAllocator: can't allocate memory: you tried to allocate 18874368000 bytes.",
            "smoke.out-of-memory",
            "add RAM or swap",
        ),
    ],
)
def test_known_failures_get_their_fix(type_: str, message: str, code: str, in_fix: str) -> None:
    finding = one(failed("weights", type_, message))
    assert finding.code == code
    assert in_fix in (finding.fix or "")
    assert "/venv/bin/python" in finding.message


def test_sigkill_is_the_oom_killer() -> None:
    run = SmokeRun(
        events=[{"event": "phase", "phase": "weights", "done": 3, "total": 8}],
        returncode=-signal.SIGKILL,
        timed_out=False,
        elapsed_s=40,
        output="",
        interpreter="py",
    )
    finding = one(run)
    assert finding.code == "smoke.out-of-memory"
    assert "OOM killer" in finding.message and "weights 3/8" in finding.message
    assert "dmesg" in (finding.fix or "")


def test_segfault_is_a_crash_with_its_phase() -> None:
    output = (
        "Fatal Python error: Segmentation fault\n\nCurrent thread 0x00007f (most recent call first):\n"
        '  File "flash_attn/__init__.py", line 3\n'
    )
    run = SmokeRun(
        events=[{"event": "phase", "phase": "generate"}],
        returncode=-signal.SIGSEGV,
        timed_out=False,
        elapsed_s=9,
        output=output,
        interpreter="py",
    )
    finding = one(run)
    assert finding.code == "smoke.crashed"
    assert "SIGSEGV" in finding.message and "'generate'" in finding.message


def test_native_out_of_memory_beats_the_abort_it_ends_with() -> None:
    run = SmokeRun(
        events=[{"event": "phase", "phase": "tokenizer"}],
        returncode=-signal.SIGABRT,
        timed_out=False,
        elapsed_s=2,
        output="memory allocation of 1073741824 bytes failed\n",
        interpreter="py",
    )
    assert one(run).code == "smoke.out-of-memory"


def test_exit_without_a_report() -> None:
    run = SmokeRun(
        events=[],
        returncode=1,
        timed_out=False,
        elapsed_s=0.1,
        output="Fatal Python error: init_import_site: Failed to import the site module\n",
        interpreter="py",
    )
    finding = one(run)
    assert finding.code == "smoke.process-failed"
    assert "init_import_site" in finding.message


def test_timeout_names_the_phase_it_was_stuck_in() -> None:
    run = SmokeRun(
        events=[{"event": "phase", "phase": "weights", "done": 1, "total": 4}],
        returncode=None,
        timed_out=True,
        elapsed_s=600,
        output="",
        interpreter="py",
    )
    finding = one(run)
    assert finding.code == "smoke.timeout"
    assert "'weights 1/4'" in finding.message and "--smoke-timeout 1200" in (finding.fix or "")


def _result(**fields: object) -> SmokeRun:
    result = {
        "event": "result",
        "load_s": 1.5,
        "ttft_s": 0.05,
        "tokens": 8,
        "tokens_per_s": 40.0,
        "device": "cuda:0",
        "devices": ["cuda:0"],
        "dtype": "bfloat16",
        "logits_finite": True,
        "text_chars": 20,
        "peak_rss_bytes": 900 * 2**20,
        "cuda_peak_bytes": {"cuda:0": 19 * 2**30},
    }
    result.update(fields)
    return SmokeRun(events=[result], returncode=0, timed_out=False, elapsed_s=12, output="", interpreter="py")


def test_pass_reports_the_measurements() -> None:
    findings = list(classify(_result(), REQUEST, PIP, 600))
    assert [f.severity for f in findings] == [Severity.INFO]
    assert "cuda:0 peak 19,456 MiB" in findings[0].message and "40 tok/s" in findings[0].message


def test_nan_logits_and_empty_text_fail() -> None:
    codes = [
        f.code
        for f in classify(_result(logits_finite=False, text_chars=0), REQUEST, PIP, 600)
        if f.severity is Severity.ERROR
    ]
    assert codes == ["smoke.nonfinite-logits", "smoke.empty-output"]


def test_protocol_lines_and_ordinary_output_are_told_apart() -> None:
    assert parse_line('@autoglm-doctor-smoke@ {"event": "phase", "phase": "generate"}') == {
        "event": "phase",
        "phase": "generate",
    }
    assert parse_line("Loading weights: 100%") is None
    assert parse_line("@autoglm-doctor-smoke@ not json") is None


def test_a_missing_module_is_installed_not_reinstalled() -> None:
    run = SmokeRun(
        events=[
            {"event": "phase", "phase": "import", "module": "transformers"},
            {
                "event": "error",
                "phase": "import",
                "type": "ModuleNotFoundError",
                "message": "No module named 'regex'",  # a dependency of transformers
            },
        ],
        returncode=1,
        timed_out=False,
        elapsed_s=1,
        output="",
        interpreter="py",
    )
    finding = one(run)
    assert finding.code == "smoke.import-failed"
    assert finding.message.startswith("transformers fails to import in the target environment")
    assert finding.fix == f"{PIP} regex"
