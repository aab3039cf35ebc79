"""--verify-hashes: sha256 of every weight file against the HF cache's blob names or a manifest."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from autoglm_doctor.gather_options import GatherOptions
from autoglm_doctor.model import Status
from autoglm_doctor.probe import hashing
from autoglm_doctor.probe.weights import gather
from tests.helpers.model_folders import build_hf_cache, build_model
from tests.test_weights_files import check_folder, codes, only_error


def flip_last_byte(path: Path) -> None:
    """Damage a file's data without changing its size or header."""
    with open(path, "r+b") as handle:
        handle.seek(-1, 2)
        last = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([last[0] ^ 0xFF]))


def test_hash_files_matches_hashlib_in_parallel(tmp_path: Path) -> None:
    paths = []
    for n in range(5):
        path = tmp_path / f"f{n}"
        path.write_bytes(bytes([n]) * (n * 3_000_001 + 7))
        paths.append(path)
    outcomes = hashing.hash_files([*paths, tmp_path / "missing"], workers=3)
    assert [o.path for o in outcomes] == [*paths, tmp_path / "missing"]
    for path, outcome in zip(paths, outcomes, strict=False):
        assert outcome.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert outcomes[-1].error and not outcomes[-1].sha256


def test_progress_bar_goes_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    (outcome,) = hashing.hash_files([path], progress=True)
    assert outcome.sha256 == hashlib.sha256(b"x" * 100).hexdigest()
    assert capsys.readouterr().out == ""


def test_manifest_formats() -> None:
    digest = "ab" * 32
    manifest = hashing.parse_manifest(
        "SHA256SUMS",
        f"# made by sha256sum\n{digest}  model.safetensors\n{digest.upper()} *./b.bin\n"
        f"SHA256 (c.json) = {digest}\nbogus\n",
    )
    assert manifest.hashes == {"model.safetensors": digest, "b.bin": digest, "c.json": digest}
    assert manifest.bad_lines == [5]


def test_hf_cache_blobs_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    snapshot = build_hf_cache(tmp_path / "hub", "zai-org/AutoGLM-Phone-9B", build_model(tmp_path / "src", shards=2))
    result = check_folder(snapshot, verify_hashes=True)
    assert result.status is Status.PASS, [(f.code, f.message) for f in result.findings]
    assert "weights.hashes-verified" in codes(result)
    facts = gather(GatherOptions(model=str(snapshot), cwd=tmp_path, verify_hashes=True))
    assert facts is not None and {c.reference for c in facts.hash_checks} == {"hf-cache-blob"}

    flip_last_byte((snapshot / "model-00002-of-00002.safetensors").resolve())
    assert check_folder(snapshot).status is Status.PASS  # headers cannot see it
    result = check_folder(snapshot, verify_hashes=True)
    fix = only_error(result, "weights.hash-mismatch")
    assert "--force-download" in fix and "model-00002-of-00002.safetensors" in result.findings[0].message


def test_manifest_verifies_and_catches_damage(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m", shards=2)
    names = sorted(p.name for p in folder.glob("*.safetensors"))
    if shutil.which("sha256sum"):
        text = subprocess.run(
            ["sha256sum", *names], cwd=folder, capture_output=True, text=True, check=True, timeout=30
        ).stdout
    else:
        text = "".join(f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n" for n in names)
    (folder / "SHA256SUMS").write_text(text + f"{'0' * 64}  tokenizer.model\n")
    result = check_folder(folder, verify_hashes=True)
    assert only_error(result, "weights.manifest-file-missing")
    (folder / "SHA256SUMS").write_text(text)
    assert check_folder(folder, verify_hashes=True).status is Status.PASS
    flip_last_byte(folder / names[0])
    result = check_folder(folder, verify_hashes=True)
    only_error(result, "weights.hash-mismatch")
    assert "manifest:SHA256SUMS" in result.findings[0].message


def test_local_dir_metadata_is_a_reference(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m")
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    meta = folder / ".cache" / "huggingface" / "download"
    meta.mkdir(parents=True)
    (meta / "model.safetensors.metadata").write_text(f"{'c' * 40}\n{digest}\n1732550000.0\n")
    facts = gather(GatherOptions(model=str(folder), cwd=tmp_path, verify_hashes=True))
    assert facts is not None
    (check,) = facts.hash_checks
    assert check.reference == "hf-local-dir" and check.expected == check.sha256 == digest


def test_nothing_to_compare_with_warns(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m")
    result = check_folder(folder, verify_hashes=True)
    assert result.status is Status.WARN and codes(result)[0] == "weights.hash-unverified"
    assert "sha256sum" in (result.findings[0].fix or "")


def test_hashes_are_not_computed_by_default(tmp_path: Path) -> None:
    facts = gather(GatherOptions(model=str(build_model(tmp_path / "m")), cwd=tmp_path))
    assert facts is not None and not facts.hashes_verified and not facts.hash_checks
