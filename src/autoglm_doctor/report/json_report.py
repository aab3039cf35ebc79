"""The JSON report: exactly the contract in DESIGN.md (schema autoglm-doctor/report@1)."""

from __future__ import annotations

import json

from autoglm_doctor.model import Report
from autoglm_doctor.report import RenderOptions


def render(report: Report, options: RenderOptions) -> str:
    """The report as indented JSON, nothing else."""
    return json.dumps(report.to_dict(strict=options.strict), indent=2, ensure_ascii=False) + "\n"
