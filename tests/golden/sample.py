"""A fixed synthetic report: every status and every finding shape, nothing machine-dependent."""

from __future__ import annotations

from autoglm_doctor.model import CheckResult, Location, Report, Status, error, info, warning

CREATED = "2026-01-02T03:04:05+00:00"
VERSION = "0.1.0"

TRACEBACK = """Traceback (most recent call last):
  File "/opt/doctor/runner.py", line 80, in run_check
    findings = tuple(spec.func(snap, ctx))
ZeroDivisionError: division by zero
"""


def sample_results() -> tuple[CheckResult, ...]:
    """One result per status, findings of every shape (location, evidence, fix present or not)."""
    return (
        CheckResult(
            id="python.version",
            title="Python version",
            category="python",
            status=Status.PASS,
            duration_ms=1.25,
            findings=(
                info(
                    "python.not-recommended",
                    "Python 3.12 is supported; the guide is tested with 3.11",
                    observed="3.12.1",
                    expected="3.11",
                ),
            ),
        ),
        CheckResult(
            id="python.venv",
            title="Isolated environment",
            category="python",
            status=Status.WARN,
            duration_ms=0.5,
            findings=(
                warning(
                    "python.system-interpreter",
                    "/usr/bin/python3 is the system interpreter, not an isolated environment",
                    observed="system interpreter at /usr",
                    expected="a venv, uv or conda environment",
                    fix="/usr/bin/python3 -m venv .venv && .venv/bin/python -m pip install -r requirements.txt",
                ),
            ),
        ),
        CheckResult(
            id="packages.required",
            title="Required packages installed",
            category="packages",
            status=Status.FAIL,
            duration_ms=2.0,
            findings=(
                error(
                    "packages.missing",
                    "accelerate is not installed (the config sets device_map is set): "
                    "transformers needs accelerate for device_map",
                    observed="not installed",
                    expected="accelerate>=0.26.0",
                    fix="/srv/app/.venv/bin/python -m pip install 'accelerate>=0.26.0'",
                    location=Location("deploy.yaml"),
                ),
                warning(
                    "packages.not-recommended",
                    "transformers 4.31.0 is older than the recommended 4.35 (`pip install -U` fixes it)",
                    observed="4.31.0",
                    fix="/srv/app/.venv/bin/python -m pip install 'transformers>=4.35'",
                ),
                info("packages.note", "__init__.py of *torch* was read as text | not imported <never>"),
            ),
        ),
        CheckResult(
            id="config.syntax",
            title="Config file parses",
            category="config",
            status=Status.FAIL,
            duration_ms=0.75,
            findings=(
                error(
                    "config.tab-indent",
                    "line 5 is indented with a tab\nYAML allows spaces only",
                    expected="spaces",
                    fix="sed -i 's/\\t/  /g' deploy.yaml",
                    location=Location("deploy.yaml", 5, 1),
                ),
                error(
                    "config.duplicate-key",
                    "key 'port' appears twice, 100% of the time the second one wins, a,b: c",
                    location=Location("configs/deploy, prod.yaml", 12),
                ),
            ),
        ),
        CheckResult(
            id="cuda.driver",
            title="NVIDIA driver and GPUs",
            category="cuda",
            status=Status.SKIP,
            duration_ms=0.0,
            findings=(info("cuda.driver.skipped", "GPU facts were not gathered"),),
        ),
        CheckResult(
            id="cuda.memory",
            title="GPU memory for the model",
            category="cuda",
            status=Status.ERROR,
            duration_ms=3.5,
            findings=(
                error(
                    "check.crashed",
                    "the check itself crashed: ZeroDivisionError: division by zero",
                    fix="run with -v for the traceback and report it (include `autoglm-doctor snapshot` output)",
                ),
            ),
            traceback=TRACEBACK,
        ),
    )


def sample_report() -> Report:
    """The synthetic report the golden files are rendered from."""
    return Report(
        results=sample_results(),
        environment={
            "python": "3.11.7",
            "executable": "/srv/app/.venv/bin/python",
            "platform": "Linux-6.1.0-x86_64-with-glibc2.36",
        },
        created=CREATED,
        tool_version=VERSION,
        pack="open-autoglm",
    )
