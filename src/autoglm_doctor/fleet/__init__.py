"""Compare many nodes: read their snapshots or JSON reports and show where they drift apart.

A fleet run is ordinary: each node writes ``autoglm-doctor snapshot -o NODE.json`` (or
``check --format json --output NODE.json``), launched by whatever the site already has
(Kubernetes, Slurm, Ansible; see docs/fleet.md). ``autoglm-doctor fleet FILES...`` then reads
them all (:mod:`.read`), takes the majority value of each attribute (driver, CUDA, torch,
transformers, GPU count, check status...) and names only the nodes that deviate
(:mod:`.compare`), so 1,000 nodes fit on a screen (:mod:`.render`).
"""

from __future__ import annotations

from autoglm_doctor.fleet.compare import FleetResult, analyse, compare
from autoglm_doctor.fleet.read import ABSENT, ATTRIBUTES, NO_GPU, FileProblem, load_json, read_file, snapshot_values
from autoglm_doctor.fleet.render import render_json, render_text, to_dict

__all__ = [
    "ABSENT",
    "ATTRIBUTES",
    "NO_GPU",
    "FileProblem",
    "FleetResult",
    "analyse",
    "compare",
    "load_json",
    "read_file",
    "render_json",
    "render_text",
    "snapshot_values",
    "to_dict",
]
