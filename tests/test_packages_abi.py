"""packages.abi through the CLI: real extensions built here, the real torchvision CUDA wheel, real venvs."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoglm_doctor.cli import main
from tests.conftest import codes, result
from tests.helpers.extensions import (
    add_extension,
    add_torchvision_wheel_files,
    build_extensions,
    venv_with_torch,
)
from tests.helpers.venvs import Venv, make_venv

Run = Callable[..., tuple[int, dict[str, Any]]]

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ to build the extensions")


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three builds of one extension source (compiled once per session)."""
    return build_extensions(tmp_path_factory.mktemp("abi-builds"))


@pytest.fixture(scope="session")
def venvs(built: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Venv]:
    """One venv per build, plus one with the real torchvision CUDA wheel, each beside the CPU torch."""
    root = tmp_path_factory.mktemp("abi-venvs")
    out = {}
    for name, so in built.items():
        venv = venv_with_torch(root / name)
        add_extension(venv, so)
        out[name] = venv
    out["torchvision"] = venv_with_torch(root / "torchvision")
    add_torchvision_wheel_files(out["torchvision"])
    return out


def _abi(run_json: Run, venv: Venv, *extra: str) -> tuple[int, dict[str, Any]]:
    return run_json("--python", str(venv.python), "--only", "packages.abi", *extra)


def test_extension_built_against_the_installed_torch_passes(
    venvs: dict[str, Venv], workdir: Path, run_json: Run
) -> None:
    code, report = _abi(run_json, venvs["matching"])
    assert code == 0
    assert result(report, "packages.abi")["status"] == "pass"
    assert result(report, "packages.abi")["findings"] == []
    # It was examined, not overlooked: the snapshot holds its proof.
    assert main(["snapshot", "--python", str(venvs["matching"].python), "-o", str(workdir / "snap.json")]) == 0
    facts = json.loads((workdir / "snap.json").read_text(encoding="utf-8"))["abi"]
    [ext] = facts["extensions"]
    assert ext["distribution"] == "abiext" and ext["checked_symbols"] >= 1
    assert ext["missing_libraries"] == [] and ext["missing_count"] == 0
    assert any(p.endswith("libc10.so") for p in ext["torch_libraries"])
    assert ext["cxx11_abi"] is True  # read from the std::string it names (std::__cxx11::basic_string)


def test_extension_built_for_another_torch_names_the_demangled_symbol(
    venvs: dict[str, Venv], workdir: Path, run_json: Run
) -> None:
    code, report = _abi(run_json, venvs["standin"])
    assert code == 1
    [finding] = result(report, "packages.abi")["findings"]
    assert finding["code"] == "packages.abi-missing-symbol"
    message = finding["message"]
    assert "abiext 1.0" in message
    assert "c10::detail::torchCheckFail(char const*, char const*, unsigned int, " in message
    assert ", bool)" in message  # the changed signature, demangled
    assert "built for another torch version" in message
    assert "libc10.so" in finding["evidence"]["expected"]
    assert "--no-build-isolation" in finding["fix"] and "--no-cache-dir" in finding["fix"]
    assert "abiext==1.0" in finding["fix"]


def test_extension_built_with_the_other_cxx_abi_names_the_abi(
    venvs: dict[str, Venv], workdir: Path, run_json: Run
) -> None:
    code, report = _abi(run_json, venvs["old_abi"])
    assert code == 1
    [finding] = result(report, "packages.abi")["findings"]
    assert finding["code"] == "packages.abi-cxx11"
    assert "_GLIBCXX_USE_CXX11_ABI=0" in finding["message"]
    assert "_GLIBCXX_USE_CXX11_ABI=1" in finding["message"]
    assert (
        "c10::detail::torchCheckFail(char const*, char const*, unsigned int, "
        "std::basic_string<char, std::char_traits<char>, std::allocator<char> > const&)" in finding["message"]
    )


def test_real_torchvision_cuda_wheel_beside_cpu_torch_names_the_missing_cuda_libraries(
    venvs: dict[str, Venv], workdir: Path, run_json: Run
) -> None:
    code, report = run_json("--python", str(venvs["torchvision"].python), "--only", "packages.abi,packages.conflicts")
    assert code == 1
    [finding] = result(report, "packages.abi")["findings"]
    assert finding["code"] == "packages.abi-missing-library"
    assert "libc10_cuda.so" in finding["message"] and "libtorch_cuda.so" in finding["message"]
    assert "CUDA build beside torch 2.13.0+cpu" in finding["message"]
    assert "torchvision::nms does not exist" in finding["message"]
    assert "torchvision/_C.so needs" in finding["evidence"]["observed"]
    assert "torchvision==0.28.0+cpu" in finding["fix"]
    # The table-based pairing finding would say the same: one finding, with the ELF proof.
    assert "packages.torch-family-build" not in codes(report, "packages.conflicts")


def test_table_finding_stays_where_there_is_no_elf_proof(
    venvs: dict[str, Venv], tmp_path: Path, workdir: Path, run_json: Run
) -> None:
    venv = venv_with_torch(tmp_path / "v")
    venv.add("torchvision", "0.28.0", ["torch==2.13.0"])  # metadata only: no extension to read
    code, report = run_json("--python", str(venv.python), "--only", "packages.abi,packages.conflicts")
    assert "packages.torch-family-build" in codes(report, "packages.conflicts")
    # no shared object outside torch's own libraries: packages.abi had nothing to test, and says so
    abi = result(report, "packages.abi")
    assert abi["status"] == "skip" and "no compiled extension" in abi["findings"][0]["message"]


def test_snapshot_re_evaluates_the_elf_verdict(venvs: dict[str, Venv], workdir: Path, run_json: Run) -> None:
    snap = workdir / "snap.json"
    assert main(["snapshot", "--python", str(venvs["standin"].python), "-o", str(snap)]) == 0
    code, report = run_json("--snapshot", str(snap), "--only", "packages.abi")
    assert code == 1
    assert codes(report, "packages.abi") == ["packages.abi-missing-symbol"]


def test_fix_pins_the_paired_torchvision_for_the_abi_finding(
    venvs: dict[str, Venv], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = workdir / "requirements.txt"
    main(
        [
            "check",
            "--no-smoke",
            "--python",
            str(venvs["torchvision"].python),
            "--fix",
            "--fix-output",
            str(out),
            "--no-index",
        ]
    )
    capsys.readouterr()
    text = out.read_text(encoding="utf-8") if out.exists() else ""
    line = next((ln for ln in text.splitlines() if ln.startswith("torchvision==")), "")
    assert line.startswith("torchvision==0.28.0+cpu"), text
    assert "packages.abi-missing-library" in line


def test_corrupt_and_hostile_shared_objects_are_findings(
    venvs: dict[str, Venv], built: dict[str, Path], tmp_path: Path, workdir: Path, run_json: Run
) -> None:
    venv = venv_with_torch(tmp_path / "v")
    target = add_extension(venv, built["matching"])
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 8])  # a truncated download
    os.mkfifo(venv.site_packages / "abiext" / "pipe.so")  # never opened for reading
    code, report = _abi(run_json, venv)
    found = result(report, "packages.abi")["findings"]
    assert result(report, "packages.abi")["status"] == "warn"
    assert {f["code"] for f in found} == {"packages.abi-unreadable"}
    assert any("_C" in f["message"] for f in found)
    assert any("not a regular file" in f["message"] for f in found)


def test_explain_documents_every_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "packages.abi", "--format", "json"]) == 0
    page = capsys.readouterr().out
    for code in (
        "packages.abi-missing-library",
        "packages.abi-missing-symbol",
        "packages.abi-cxx11",
        "packages.abi-unreadable",
        "packages.abi-incomplete",
    ):
        assert code in page


def _mutations() -> st.SearchStrategy[list[tuple[int, int]]]:
    return st.lists(st.tuples(st.integers(0, 1 << 14), st.integers(0, 255)), min_size=1, max_size=24)


@settings(max_examples=int(os.environ.get("AUTOGLM_FUZZ_EXAMPLES", "300")) // 3, deadline=None)
@given(edits=_mutations(), cut=st.integers(0, 1 << 15))
def test_mutated_elf_files_never_crash_the_reader(
    built: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[int, int]], cut: int
) -> None:
    """Corrupt headers, tags and tables (and truncation) give an ElfError or a result, never another exception."""
    from autoglm_doctor.probe._script import needed_of
    from autoglm_doctor.probe.elf import ElfError, SharedObject

    data = bytearray(built["matching"].read_bytes())
    for at, value in edits:
        if at < len(data):
            data[at] = value
    path = tmp_path_factory.mktemp("fuzz") / "x.so"
    path.write_bytes(bytes(data[: max(cut, 64)] if cut < len(data) else data))
    names = needed_of(str(path))  # the probe's pre-read: a list, or None for the full read to explain
    assert names is None or all(isinstance(n, str) for n in names)
    try:
        obj = SharedObject.open(str(path), 1 << 30)
    except ElfError:
        return
    assert obj is not None
    with obj:
        try:
            for symbol in obj.undefined()[:50]:
                obj.exports(symbol.name)
        except ElfError:
            pass


def _vllm_pinned_to_torch_28(so: Path, tmp_path: Path, run_json: Run) -> tuple[int, dict[str, Any]]:
    """packages.abi and packages.conflicts on a vLLM whose metadata pins torch 2.8.0 and whose _C is ``so``."""
    venv = venv_with_torch(tmp_path / "v")
    add_extension(venv, so, name="vllm", version="0.10.1", requires=("torch==2.8.0",), filename="_C.abi3.so")
    return run_json("--python", str(venv.python), "--only", "packages.abi,packages.conflicts")


def test_vllm_built_for_another_torch_is_one_finding_with_the_elf_proof(
    built: dict[str, Path], tmp_path: Path, workdir: Path, run_json: Run
) -> None:
    code, report = _vllm_pinned_to_torch_28(built["standin"], tmp_path, run_json)
    assert code == 1
    [finding] = result(report, "packages.abi")["findings"]
    assert finding["code"] == "packages.abi-missing-symbol"
    assert "vllm 0.10.1" in finding["message"] and "vllm/_C.abi3.so" in finding["message"]
    assert "its metadata says it was built for torch==2.8.0" in finding["message"]
    assert "torch==2.8.0" in finding["fix"]  # or the torch it was built for
    # pip check's view of the same pin stands back: one finding for vllm, with the proof.
    conflicts = result(report, "packages.conflicts")["findings"]
    assert not [f for f in conflicts if f["code"] == "packages.dependency-conflict" and "vllm" in f["message"]]


def test_a_torch_pin_without_elf_proof_stays_a_conflict(
    built: dict[str, Path], tmp_path: Path, workdir: Path, run_json: Run
) -> None:
    code, report = _vllm_pinned_to_torch_28(built["matching"], tmp_path, run_json)
    assert result(report, "packages.abi")["status"] == "pass"
    conflicts = [f for f in result(report, "packages.conflicts")["findings"] if "vllm" in f["message"]]
    assert [f["code"] for f in conflicts] == ["packages.dependency-conflict"]


def test_fix_lists_an_extension_to_rebuild_with_the_checks_own_command(
    venvs: dict[str, Venv], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = workdir / "requirements.txt"
    python = str(venvs["standin"].python)
    main(
        [
            "check",
            "--no-smoke",
            "--python",
            python,
            "--only",
            "packages.abi",
            "--format",
            "json",
            "--fix",
            "--fix-output",
            str(out),
            "--no-index",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    [finding] = result(report, "packages.abi")["findings"]
    text = out.read_text(encoding="utf-8")
    assert f"#   packages.abi-missing-symbol: {finding['message']}" in text
    assert f"#     fix: {finding['fix']}" in text


def test_needed_libraries_resolve_through_runpath_and_ld_library_path(
    built: dict[str, Path], tmp_path: Path, workdir: Path, run_json: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    dep = built["with_dep"].parent / "dep" / "libabidep.so"
    venv = venv_with_torch(tmp_path / "v")
    add_extension(venv, built["with_dep"])
    code, report = _abi(run_json, venv)
    [finding] = result(report, "packages.abi")["findings"]
    assert finding["code"] == "packages.abi-missing-library"
    assert "needs libabidep.so, which the loader cannot find" in finding["message"]
    assert "RUNPATH, LD_LIBRARY_PATH" in finding["message"]
    monkeypatch.setenv("LD_LIBRARY_PATH", str(dep.parent))  # as the deployment would run with it
    code, report = _abi(run_json, venv)
    assert (code, result(report, "packages.abi")["status"]) == (0, "pass")
    monkeypatch.delenv("LD_LIBRARY_PATH")
    (venv.site_packages / "abiext.libs").mkdir()
    shutil.copyfile(dep, venv.site_packages / "abiext.libs" / "libabidep.so")  # where $ORIGIN/../abiext.libs points
    code, report = _abi(run_json, venv)
    assert (code, result(report, "packages.abi")["status"]) == (0, "pass")


def test_a_symbol_version_the_torch_library_does_not_define_is_named(
    built: dict[str, Path], tmp_path: Path, workdir: Path, run_json: Run
) -> None:
    venv = make_venv(tmp_path / "v")
    venv.add_torch("2.13.0")  # a torch whose libc10.so defines version C10_2 only
    (venv.site_packages / "torch" / "lib").mkdir()
    shutil.copyfile(
        built["versioned"].parent / "standin" / "C10_2" / "libc10.so",
        venv.site_packages / "torch" / "lib" / "libc10.so",
    )
    add_extension(venv, built["versioned"])  # linked against the C10_1 release
    code, report = _abi(run_json, venv)
    [finding] = result(report, "packages.abi")["findings"]
    assert finding["code"] == "packages.abi-missing-symbol"
    assert "(version C10_1)" in finding["message"]
    assert "c10::detail::torchCheckFail(" in finding["message"]
    # The release it was linked against satisfies it.
    shutil.copyfile(
        built["versioned"].parent / "standin" / "C10_1" / "libc10.so",
        venv.site_packages / "torch" / "lib" / "libc10.so",
    )
    code, report = _abi(run_json, venv)
    assert (code, result(report, "packages.abi")["status"]) == (0, "pass")


def test_an_editable_install_is_read_in_its_source_tree(
    built: dict[str, Path], tmp_path: Path, workdir: Path, run_json: Run
) -> None:
    venv = venv_with_torch(tmp_path / "v")
    source = tmp_path / "flashy-src"
    (source / "src" / "flashy").mkdir(parents=True)
    shutil.copyfile(built["standin"], source / "src" / "flashy" / "_C.so")  # built in place, for another torch
    (source / "build" / "lib" / "flashy").mkdir(parents=True)
    shutil.copyfile(built["old_abi"], source / "build" / "lib" / "flashy" / "_C.so")  # a stale build copy: not imported
    dist_info = venv.add("flashy", "1.0", ["torch"], package="")
    (dist_info / "direct_url.json").write_text(
        json.dumps({"url": source.as_uri(), "dir_info": {"editable": True}}), encoding="utf-8"
    )
    (venv.site_packages / "__editable__.flashy-1.0.pth").write_text(str(source / "src") + "\n", encoding="utf-8")
    code, report = _abi(run_json, venv)
    [finding] = result(report, "packages.abi")["findings"]
    assert finding["code"] == "packages.abi-missing-symbol"
    assert finding["message"].startswith("flashy 1.0: ") and "flashy/_C.so needs" in finding["message"]
    assert finding["location"]["file"] == str(source / "src" / "flashy" / "_C.so")


def test_without_cxx_filt_symbols_stay_mangled_and_the_verdict_holds(
    venvs: dict[str, Venv], tmp_path: Path, workdir: Path, run_json: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # binutils' c++filt is nowhere on it
    code, report = _abi(run_json, venvs["old_abi"])
    [finding] = result(report, "packages.abi")["findings"]
    assert finding["code"] == "packages.abi-cxx11"
    assert "_ZN3c106detail14torchCheckFailEPKcS2_jRKSs" in finding["message"]
    assert "(mangled: c++filt was not found)" in finding["message"]


def test_a_torch_library_without_a_gnu_hash_table_is_read_through_dt_hash(
    built: dict[str, Path], tmp_path: Path, workdir: Path, run_json: Run
) -> None:
    venv = make_venv(tmp_path / "v")
    venv.add_torch("2.13.0")  # its libc10.so was linked with --hash-style=sysv
    (venv.site_packages / "torch" / "lib").mkdir()
    sysv = built["standin"].parent / "standin" / "sysv" / "libc10.so"
    shutil.copyfile(sysv, venv.site_packages / "torch" / "lib" / "libc10.so")
    add_extension(venv, built["standin"])  # needs the stand-in's signature: exported
    code, report = _abi(run_json, venv)
    assert (code, result(report, "packages.abi")["status"]) == (0, "pass")
    add_extension(venv, built["matching"], name="other")  # needs the real torch's signature: not there
    code, report = _abi(run_json, venv)
    [finding] = result(report, "packages.abi")["findings"]
    assert finding["code"] == "packages.abi-missing-symbol" and finding["message"].startswith("other 1.0: ")


def test_the_probe_sends_back_only_the_shared_objects_the_doctor_must_read(
    built: dict[str, Path], tmp_path: Path
) -> None:
    """The walk and the DT_NEEDED pre-read run in the probe: it answers with what links torch or is unreadable."""
    from autoglm_doctor.probe.collect import run_probe

    venv = venv_with_torch(tmp_path / "v")
    linking = add_extension(venv, built["matching"])
    package = linking.parent
    shutil.copyfile(built["matching"].parent / "dep" / "libabidep.so", package / "plain.so")  # links no torch
    os.mkfifo(package / "pipe.so")  # never opened for reading: the doctor's full read says what it is
    for pruned in ("tests", "build"):  # vendored test data and stale build copies are not what Python imports
        (package / pruned).mkdir()
        shutil.copyfile(built["standin"], package / pruned / "_C.so")
    (package / "again").symlink_to(package, target_is_directory=True)  # a loop back inside: each file once
    elsewhere = tmp_path / "elsewhere"  # a package linked in from outside (a conda or system layout): walked
    elsewhere.mkdir()
    shutil.copyfile(built["matching"], elsewhere / "_ext.so")
    (venv.site_packages / "linked").symlink_to(elsewhere, target_is_directory=True)
    facts = run_probe(str(venv.python), tmp_path)
    [listing] = facts["shared_objects"]  # type: ignore[misc]
    assert listing["location"] == str(venv.site_packages)
    assert listing["scanned"] == 4 and listing["problems"] == []
    sent = {s["path"]: s["needed"] for s in listing["shared_objects"]}
    assert set(sent) == {str(linking), str(package / "pipe.so"), str(venv.site_packages / "linked" / "_ext.so")}
    assert "libc10.so" in sent[str(linking)] and sent[str(package / "pipe.so")] is None


def test_the_probe_walk_stops_at_its_bounds_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re
    import time

    from autoglm_doctor.probe import _script
    from autoglm_doctor.probe.sonames import LINKS

    for n in range(3):
        (tmp_path / f"m{n}.so").write_bytes(b"")
    links = re.compile(LINKS)
    monkeypatch.setattr(_script, "SCAN_MAX_SHARED_OBJECTS", 2)
    listing = _script.scan_folder(str(tmp_path), links, {"deadline": time.monotonic() + 60, "objects": 0})
    assert listing["problems"] == [f"{tmp_path}: stopped after 2 shared objects"]
    assert listing["scanned"] == 2 and all(s["needed"] is None for s in listing["shared_objects"])
    late = _script.scan_folder(str(tmp_path), links, {"deadline": time.monotonic() - 1, "objects": 0})
    assert late["problems"] == [f"{tmp_path}: the scan stopped after {_script.SCAN_DEADLINE_S:g} s (a slow disk?)"]
    monkeypatch.setattr(_script, "errors", [])
    assert _script.links_pattern(["--links", "("]) is None and _script.errors[0].startswith("--links: ")
    assert _script.links_pattern([]) is None


def test_a_malformed_list_of_shared_objects_is_the_probes_error(tmp_path: Path) -> None:
    """The probe's answer is typed where it enters: a wrong shape names its path, and no check reads it."""
    import sys

    from autoglm_doctor.probe.collect import ProbeError, _abi_facts, run_probe, snapshot_from_probe

    snap = snapshot_from_probe(run_probe(sys.executable, tmp_path), {})
    with pytest.raises(ProbeError, match=r"malformed: \$\[0\]\.scanned: expected int, got str"):
        _abi_facts(snap, [{"location": "/x", "scanned": "many"}])
