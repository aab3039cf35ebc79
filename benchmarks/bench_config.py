"""Lint a 100 KB config (JSON and YAML): parse with positions, interpolate, run the config checks.

Real deployment configs are a few KB; 100 KB is a generous one. Target: under 0.2 s.
Each line also prints the bare parse (json.loads / yaml.compose with libyaml) of the same file
as the peer. Run: .venv/bin/python benchmarks/bench_config.py [--kb 100]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autoglm_doctor.configfile.load import load_config  # noqa: E402
from tests.helpers.config_lint import ENVIRON, model_facts, run_checks, snapshot  # noqa: E402

TARGET_S = 0.2


def make_config(target_bytes: int) -> dict[str, object]:
    """A config whose indented JSON is about ``target_bytes`` long."""
    sample = len(json.dumps(_config(200), indent=2)) / 200
    return _config(int(target_bytes / sample))


def _config(items: int) -> dict[str, object]:
    """A realistic deployment config padded with an explicit device map and prompt templates."""
    config: dict[str, object] = {
        "model": {
            "model_path": "${MODEL_WEIGHT_PATH}",
            "torch_dtype": "bfloat16",
            "model_max_length": 4096,
            "trust_remote_code": True,
        },
        "server": {"host": "0.0.0.0", "port": 8000, "max_batch_size": 64, "request_timeout": 120},
        "auth": {"require_token": True, "secret_key": "${AUTOGLM_SECRET_KEY}"},
    }
    device_map: dict[str, object] = {}
    templates: list[object] = []
    for i in range(items):
        device_map[f"transformer.encoder.layers.{i}"] = i % 4
        templates.append(
            {
                "name": f"task-{i}",
                "prompt": f"Open the app number {i}, find the settings screen and report what it shows.",
                "max_new_tokens": 256 + i % 7,
                "tags": ["phone", "android", f"group-{i % 13}"],
                "weights": [0.25, 0.5, 0.125, float(i % 9)],
            }
        )
    config["model"]["device_map"] = device_map  # type: ignore[index]
    config["templates"] = templates
    return config


def lint(path: Path) -> tuple[float, float, int]:
    """Seconds to gather the facts, seconds for the checks, number of findings."""
    start = time.perf_counter()
    facts = load_config(path, shown=path.name, source="--config", cwd=path.parent, environ=ENVIRON)
    gathered = time.perf_counter()
    results = run_checks(snapshot(facts, model=model_facts(max_position_embeddings=32768, auto_map={"A": "m.A"})))
    done = time.perf_counter()
    assert facts.parsed, facts.diagnostics[:3]
    return gathered - start, done - gathered, sum(len(r.findings) for r in results.values())


def main() -> None:
    """Generate the files, lint each, print the times."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--kb", type=float, default=100.0)
    args = parser.parse_args()
    target = int(args.kb * 1024)
    config = make_config(target)
    run_checks(snapshot(None))  # import and register the checks outside the timing
    with tempfile.TemporaryDirectory() as tmp:
        files = {
            "json": Path(tmp) / "big.json",
            "yaml": Path(tmp) / "big.yaml",
        }
        files["json"].write_text(json.dumps(config, indent=2))
        yaml_text = yaml.safe_dump(config, sort_keys=False, width=200)
        scale = target / len(yaml_text)  # the same settings take fewer bytes in YAML
        files["yaml"].write_text(yaml.safe_dump(make_config(int(target * scale)), sort_keys=False, width=200))
        for kind, path in files.items():
            size = path.stat().st_size / 1024
            text = path.read_text()
            start = time.perf_counter()
            if kind == "json":
                json.loads(text)
            else:
                yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            floor = time.perf_counter() - start
            parse_s, checks_s, count = lint(path)
            total = parse_s + checks_s
            verdict = "OK" if total < TARGET_S else f"over the {TARGET_S} s target"
            what = "json.loads" if kind == "json" else "yaml.compose (libyaml)"
            print(
                f"{kind:4} {size:6.1f} KiB: gather {parse_s:6.3f} s + checks {checks_s:6.3f} s = {total:6.3f} s "
                f"({count} findings) {verdict}; bare {what}: {floor:.3f} s (x{total / floor:.1f})"
            )


if __name__ == "__main__":
    main()
