"""The JSON report: exactly the contract in docs/output-formats.md (schema ``autoglm-doctor/report@1``).

The package ships the contract as a JSON Schema (draft 2020-12), ``report.schema.json`` beside
this module; :func:`schema` loads it, so consumers can validate what they receive.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from autoglm_doctor.model import Report
from autoglm_doctor.report.options import RenderOptions

SCHEMA_ID = "autoglm-doctor/report@1"
SCHEMA_FILE = "report.schema.json"


def schema() -> dict[str, Any]:
    """The JSON Schema of the report, as shipped in the package."""
    text = resources.files("autoglm_doctor.report").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def render(report: Report, options: RenderOptions) -> str:
    """The report as indented JSON and nothing else (one trailing newline)."""
    return json.dumps(report.to_dict(strict=options.strict), indent=2, ensure_ascii=False) + "\n"
