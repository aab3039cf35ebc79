"""The weights fix names the real model id when the launch file names it, never OWNER/NAME."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import result
from tests.helpers.served import build_autoglm_phone, write_launch


def test_missing_shard_of_a_local_folder_names_the_hub_id_of_the_launch_file(workdir: Path, run_json) -> None:  # type: ignore[no-untyped-def]
    model = build_autoglm_phone(workdir / "AutoGLM-Phone-9B")
    (model / "model-00002-of-00004.safetensors").unlink()
    launch = write_launch(workdir, "./AutoGLM-Phone-9B", tokenizer="zai-org/AutoGLM-Phone-9B")
    code, report = run_json("--pack", "open-autoglm-server", "--config", str(launch), "--only", "weights.files")
    (missing,) = [f for f in result(report, "weights.files")["findings"] if f["code"] == "weights.shard-missing"]
    assert missing["fix"].startswith(
        f"hf download zai-org/AutoGLM-Phone-9B model-00002-of-00004.safetensors --local-dir {model}"
    )
    assert "OWNER/NAME" not in str(report)
