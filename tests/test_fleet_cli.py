"""`autoglm-doctor fleet`: drift across many snapshots/reports, through the real CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor import cli, fleet
from tests.helpers.fleet import BASE_DRIVER, base_snapshot, drifting, gpu_facts, node_name, write_fleet


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["fleet", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def big_fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fleet") / "nodes"
    write_fleet(folder, 1000)
    return folder


def report(status: str, failing: tuple[str, ...] = (), python: str = "3.11.7") -> dict[str, Any]:
    results = [{"id": "python.version", "title": "Python", "status": "pass", "duration_ms": 1.0, "findings": []}]
    results += [{"id": i, "title": i, "status": "fail", "duration_ms": 1.0, "findings": []} for i in failing]
    return {
        "schema": "autoglm-doctor/report@1",
        "tool_version": "0.1.0",
        "created": "2026-01-01T00:00:00+00:00",
        "status": status,
        "counts": {"pass": 1, "warn": 0, "fail": len(failing), "skip": 0, "error": 0},
        "environment": {"python": python, "executable": "/usr/bin/python3", "platform": "linux"},
        "results": results,
    }


def write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_json_names_exactly_the_planted_drifting_nodes(big_fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--format", "json", str(big_fleet))
    data = json.loads(out)
    assert code == 1
    assert data["schema"] == "autoglm-doctor/fleet@1"
    assert data["status"] == "drift"
    assert data["nodes"] == 1000
    assert data["drifting_nodes"] == drifting()
    assert data["failing_nodes"] == []
    attrs = data["attributes"]
    assert attrs["driver"]["majority"] == BASE_DRIVER
    assert attrs["driver"]["deviating"] == {"535.104.05": [node_name(12), node_name(450), node_name(999)]}
    assert attrs["torch"]["deviating"] == {"2.1.2+cu118": [node_name(100), node_name(200)]}
    assert list(attrs["transformers"]["deviating"].values()) == [[node_name(777)]]
    assert attrs["gpu_count"] == {
        "label": "GPU count",
        "majority": "8",
        "counts": {"8": 999, "7": 1},
        "deviating": {"7": [node_name(321)]},
        "unknown": [],
    }
    assert attrs["python"]["deviating"] == {}
    assert attrs["cuda"]["counts"] == {"12.4": 1000}
    assert attrs["gpu_name"]["counts"] == {"NVIDIA H100 80GB HBM3": 1000}
    # identical configurations are grouped: the majority plus one group per distinct drift
    assert [g["count"] for g in data["groups"]] == [993, 3, 2, 1, 1]
    assert data["exit_code"] == 1


def test_rich_view_of_1000_nodes_fits_one_screen(big_fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(big_fleet))
    lines = out.splitlines()
    assert code == 1
    assert len(lines) <= 40
    assert all(len(line) <= 100 for line in lines)
    assert "1000 nodes from 1000 files" in lines[0]
    assert "    535.104.05 on 3: node-0012, node-0450, node-0999" in lines
    assert any(line.startswith("✗ NVIDIA driver") and "550.54.15 on 997/1000" in line for line in lines)
    assert any(line.startswith("✓ Python") for line in lines)
    assert (
        lines[-1]
        == "Result: 7 drifting nodes: node-0012, node-0100, node-0200, node-0321, node-0450, node-0777 +1 more"
    )
    assert "+987 more" in out  # the majority group lists a few names, then a count


def test_no_drift_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = write_fleet(tmp_path / "nodes", 5, planted={})
    code, out, _ = run(capsys, *map(str, paths))
    assert code == 0
    assert "Result: no drift — all 5 nodes agree" in out
    assert "Configurations: 1 distinct" in out


def test_many_deviators_are_truncated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    planted = dict.fromkeys(range(10, 30), ("driver", "535.104.05"))
    write_fleet(tmp_path / "nodes", 60, planted=planted)
    code, out, _ = run(capsys, str(tmp_path / "nodes"))
    assert code == 1
    assert "    535.104.05 on 20: node-0010, node-0011, node-0012, node-0013, node-0014, node-0015 +14 more" in out


def test_unreadable_files_are_reported_per_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_fleet(tmp_path / "nodes", 2, planted={})
    bad_json = tmp_path / "broken.json"
    bad_json.write_text('{"schema": "autoglm-doctor/snapshot@1", ', encoding="utf-8")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    other = write(tmp_path / "other.json", {"schema": "something/else@9"})
    array = write(tmp_path / "array.json", [1, 2, 3])
    no_python = write(tmp_path / "nopython.json", {"schema": "autoglm-doctor/snapshot@1"})
    missing = tmp_path / "missing.json"
    files = [*good, bad_json, binary, other, array, no_python, missing]
    code, out, _ = run(capsys, "--format", "json", *map(str, files))
    data = json.loads(out)
    assert code == 1
    assert data["nodes"] == 2
    problems = {Path(p["file"]).name: p["error"] for p in data["unreadable"]}
    assert set(problems) == {"broken.json", "binary.json", "other.json", "array.json", "nopython.json", "missing.json"}
    assert problems["broken.json"].startswith("not JSON (line 1 column")
    assert problems["other.json"].startswith("unknown schema 'something/else@9'")
    assert problems["array.json"] == "a JSON list, not a snapshot or report object"
    assert problems["missing.json"].startswith("cannot read")


def test_exit_2_when_no_file_is_readable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("nope", encoding="utf-8")
    code, out, err = run(capsys, str(bad), str(tmp_path / "absent.json"))
    assert code == 2
    assert out == ""
    assert f"error: {bad}: not JSON" in err
    assert "no snapshot or report could be read" in err


def test_no_files_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys)
    assert code == 2
    assert "FILES" in err


def test_reports_show_failing_nodes_and_check_status_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [write(tmp_path / f"gpu-{i}.json", report("pass")) for i in range(4)]
    files.append(write(tmp_path / "gpu-4.json", report("fail", ("cuda.driver", "weights.files"))))
    code, out, _ = run(capsys, "--format", "json", *map(str, files))
    data = json.loads(out)
    assert code == 1
    assert data["failing_nodes"] == ["gpu-4"]
    assert data["drifting_nodes"] == ["gpu-4"]
    assert data["attributes"]["failing_checks"]["deviating"] == {"cuda.driver, weights.files": ["gpu-4"]}
    assert data["attributes"]["driver"]["unknown"] == [f"gpu-{i}" for i in range(5)]  # reports do not tell
    code, out, _ = run(capsys, *map(str, files))
    assert "1 failing node: gpu-4" in out
    assert "failing: cuda.driver, weights.files" in out


def test_a_node_failing_everywhere_alike_still_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [write(tmp_path / f"n{i}.json", report("fail", ("cuda.driver",))) for i in range(3)]
    code, out, _ = run(capsys, *map(str, files))
    assert code == 1
    assert "3 failing nodes: n0, n1, n2" in out


def test_snapshot_and_report_of_one_node_are_merged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snap = base_snapshot()
    files = [
        write(tmp_path / "snapshots" / "a.json", snap),
        write(tmp_path / "snapshots" / "b.json", snap),
        write(tmp_path / "reports" / "a.report.json", report("pass")),
        write(tmp_path / "reports" / "b.report.json", report("warn")),
    ]
    code, out, _ = run(capsys, "--format", "json", *map(str, files))
    data = json.loads(out)
    assert data["nodes"] == 2
    assert data["attributes"]["status"]["counts"] == {"pass": 1, "warn": 1}
    assert data["attributes"]["driver"]["counts"] == {BASE_DRIVER: 2}
    assert code == 1  # check status differs: drift


def test_hostname_field_names_the_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one, two = base_snapshot(), base_snapshot()
    one["hostname"] = "gpu-a17"
    two["host"] = {"hostname": "gpu-b03"}
    two["gpu"] = gpu_facts(count=4)
    files = [write(tmp_path / "x" / "snapshot.json", one), write(tmp_path / "y" / "snapshot.json", two)]
    code, out, _ = run(capsys, "--format", "json", *map(str, files))
    data = json.loads(out)
    assert code == 1
    assert data["attributes"]["gpu_count"]["counts"] == {"4": 1, "8": 1}
    assert {n for g in data["groups"] for n in g["nodes"]} == {"gpu-a17", "gpu-b03"}


def test_same_stem_in_two_folders_stays_two_nodes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snap = base_snapshot()
    files = [write(tmp_path / "a" / "node.json", snap), write(tmp_path / "b" / "node.json", snap)]
    code, out, _ = run(capsys, "--format", "json", *map(str, files))
    data = json.loads(out)
    assert code == 0
    assert data["nodes"] == 2
    assert data["groups"][0]["nodes"] == sorted(["node", str(files[1])])


def test_missing_facts_are_unknown_not_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with_gpu = base_snapshot()
    without = copy.deepcopy(with_gpu)
    without["gpu"] = None  # the GPU area was not gathered on that node
    no_driver = copy.deepcopy(with_gpu)
    no_driver["gpu"] = {"nvml_error": "NVML Shared Library Not Found"}
    files = [write(tmp_path / "a.json", with_gpu), write(tmp_path / "a2.json", with_gpu)]
    files.append(write(tmp_path / "b.json", without))
    code, out, _ = run(capsys, "--format", "json", *map(str, files))
    data = json.loads(out)
    assert code == 0
    assert data["attributes"]["driver"]["unknown"] == ["b"]
    files.append(write(tmp_path / "c.json", no_driver))
    code, out, _ = run(capsys, "--format", "json", *map(str, files))
    data = json.loads(out)
    assert code == 1
    assert data["attributes"]["driver"]["deviating"] == {fleet.NO_GPU: ["c"]}
    assert data["attributes"]["gpu_count"]["deviating"] == {"0": ["c"]}


def test_torch_not_installed_is_a_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with_torch = base_snapshot()
    without = copy.deepcopy(with_torch)
    without["torch"] = None
    without["distributions"] = [d for d in without["distributions"] if d["name"].lower() != "torch"]
    files = [write(tmp_path / f"n{i}.json", with_torch) for i in range(3)] + [write(tmp_path / "n3.json", without)]
    code, out, _ = run(capsys, "--format", "json", *map(str, files))
    data = json.loads(out)
    assert code == 1
    assert data["attributes"]["torch"]["deviating"] == {fleet.ABSENT: ["n3"]}


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["fleet", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Exit 0: every node agrees and none fails." in out
    assert "Exit 1: drift, a failing node or an unreadable file." in out
    assert "Exit 2: no file could be read at all." in out


def test_reads_the_gpu_facts_the_gather_step_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from autoglm_doctor.probe.gpu import GpuDevice, GpuFacts
    from autoglm_doctor.serde import to_data

    def node(driver: str, count: int) -> dict[str, Any]:
        data = base_snapshot()
        gpus = [GpuDevice(index=i, name="NVIDIA A100-SXM4-80GB") for i in range(count)]
        data["gpu"] = to_data(GpuFacts(driver_version=driver, cuda_driver_version=12020, gpus=gpus))
        return data

    files = [write(tmp_path / f"n{i}.json", node("535.129.03", 4)) for i in range(3)]
    files.append(write(tmp_path / "n3.json", node("525.60.13", 2)))
    code, out, _ = run(capsys, "--format", "json", *map(str, files))
    attrs = json.loads(out)["attributes"]
    assert code == 1
    assert attrs["driver"]["counts"] == {"535.129.03": 3, "525.60.13": 1}
    assert attrs["cuda"]["counts"] == {"12.2": 4}
    assert attrs["gpu_count"]["deviating"] == {"2": ["n3"]}
    assert attrs["gpu_name"]["majority"] == "NVIDIA A100-SXM4-80GB"


def test_reads_real_reports_and_snapshots_from_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "autoglm.yaml").write_text("model:\n  device: cpu\n", encoding="utf-8")
    only = ["--only", "python.*,config.*", "--no-smoke", "--config", "autoglm.yaml"]
    assert cli.main(["check", *only, "--format", "json", "--output", "gpu-1.report.json"]) in (0, 1)
    assert cli.main(["snapshot", "--config", "autoglm.yaml", "-o", "gpu-1.json"]) == 0
    capsys.readouterr()
    code, out, _ = run(capsys, "--format", "json", "gpu-1.report.json", "gpu-1.json")
    data = json.loads(out)
    assert data["nodes"] == 1
    assert data["unreadable"] == []
    attrs = data["attributes"]
    assert attrs["python"]["majority"] and attrs["torch"]["majority"] and attrs["status"]["majority"]
    assert code == (1 if data["failing_nodes"] else 0)
