"""The stdlib-only probe, run for real by target interpreters, and the snapshot round trip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoglm_doctor.cli import main
from autoglm_doctor.gather_options import GatherOptions
from autoglm_doctor.probe.collect import ProbeError, gather, run_probe
from autoglm_doctor.probe.snapshot import Snapshot
from tests.helpers.venvs import Venv, find_python, healthy, make_venv

REPO = Path(__file__).resolve().parents[1]


def test_probe_reports_the_target_not_the_doctor(healthy_venv: Venv, workdir: Path) -> None:
    snap = gather(GatherOptions(python=str(healthy_venv.python), cwd=workdir))
    assert snap.python.executable.startswith(str(healthy_venv.root))
    assert snap.python.prefix == str(healthy_venv.root)
    assert snap.python.env_kind == "venv"
    assert snap.python.sys_path[0] == str(workdir)
    names = {d.key: d.version for d in snap.distributions}
    assert names["transformers"] == "4.35.2"
    assert names["torch"] == "2.1.2"
    # the doctor's own packages (typer, rich) are not in the target venv
    assert "typer" not in names
    assert snap.torch is not None and snap.torch.version == "2.1.2" and snap.torch.cuda is None
    transformers = next(d for d in snap.distributions if d.key == "transformers")
    assert "tokenizers<0.19,>=0.14" in transformers.requires
    assert transformers.installer == "pip"
    assert transformers.top_level == ["transformers"]


def test_probe_never_imports_torch(venv: Venv, workdir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "torch-was-imported"
    venv.add_torch("2.3.1+cu121", cuda="12.1", marker=marker)
    snap = gather(GatherOptions(python=str(venv.python), cwd=workdir))
    assert not marker.exists()
    assert snap.torch is not None
    assert (snap.torch.version, snap.torch.cuda, snap.torch.local_tag) == ("2.3.1+cu121", "12.1", "cu121")


def test_doctor_process_imports_neither_torch_nor_transformers(healthy_venv: Venv, workdir: Path) -> None:
    code = (
        "import sys\n"
        "from autoglm_doctor.cli import main\n"
        f"rc = main(['check', '--no-smoke', '--format', 'json', '--python', {str(healthy_venv.python)!r}])\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers'))\n"
        "sys.stderr.write('IMPORTED=' + ','.join(bad))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, timeout=120, check=False
    )
    assert "IMPORTED=" in proc.stderr, proc.stderr
    assert proc.stderr.rsplit("IMPORTED=", 1)[1].strip() == ""
    json.loads(proc.stdout)  # stdout carried the JSON report only


@pytest.mark.skipif(find_python("3.8") is None, reason="needs a Python 3.8 interpreter")
def test_probe_runs_under_python_38(tmp_path: Path, workdir: Path) -> None:
    venv = healthy(make_venv(tmp_path / "v38", find_python("3.8")))
    venv.add("broken", "1.0", metadata=False)
    snap = gather(GatherOptions(python=str(venv.python), cwd=workdir))
    assert snap.python.version.startswith("3.8.")
    assert snap.python.env_kind == "venv"
    broken = next(d for d in snap.distributions if d.key == "broken")
    assert "METADATA is missing" in broken.problem


@pytest.mark.skipif(find_python("3.8") is None, reason="needs a Python 3.8 interpreter")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shared objects are read as ELF on Linux")
def test_probe_lists_shared_objects_under_python_38(tmp_path: Path, workdir: Path) -> None:
    """The walk and the DT_NEEDED pre-read (packages.abi) run in the probe, on the oldest Python it supports."""
    python38 = find_python("3.8")
    assert python38 is not None
    venv = make_venv(tmp_path / "v38", python38)
    venv.add_torch("2.13.0")  # torch's files as the probe finds them: it reads, never imports
    venv.add("plugin", "1.0")
    plugin = venv.site_packages / "plugin"
    real = subprocess.run(
        [python38, "-c", "import _json; print(_json.__file__)"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    shutil.copyfile(real, plugin / "_json.so")  # a real ELF extension that links no torch: pre-read, not sent
    os.mkfifo(plugin / "pipe.so")  # not pre-read: sent, and the doctor's full read says what it is
    snap = gather(GatherOptions(python=str(venv.python), cwd=workdir))
    assert snap.python.version.startswith("3.8.") and snap.probe_errors == []
    assert snap.abi is not None and snap.abi.scanned == 2 and snap.abi.problems == []
    [ext] = snap.abi.extensions
    assert ext.path == str(plugin / "pipe.so") and ext.problem == "cannot be read: not a regular file"


@pytest.mark.parametrize(
    ("marker", "kind"),
    [("conda-meta", "conda"), ("uv", "uv"), ("virtualenv", "virtualenv"), (None, "venv")],
)
def test_environment_kind(venv: Venv, workdir: Path, marker: str | None, kind: str) -> None:
    if marker == "conda-meta":
        (venv.root / "conda-meta").mkdir()
    elif marker is not None:
        cfg = venv.root / "pyvenv.cfg"
        cfg.write_text(cfg.read_text(encoding="utf-8") + f"{marker} = 0.4.0\n", encoding="utf-8")
    snap = gather(GatherOptions(python=str(venv.python), cwd=workdir))
    assert snap.python.env_kind == kind


def test_system_site_packages_flag(venv: Venv, workdir: Path) -> None:
    cfg = venv.root / "pyvenv.cfg"
    cfg.write_text(
        cfg.read_text(encoding="utf-8").replace(
            "include-system-site-packages = false", "include-system-site-packages = true"
        ),
        encoding="utf-8",
    )
    snap = gather(GatherOptions(python=str(venv.python), cwd=workdir))
    assert snap.python.system_site_packages is True


def test_probe_survives_broken_metadata(venv: Venv, workdir: Path) -> None:
    (venv.site_packages / "weird-1.0.dist-info" / "METADATA").mkdir(parents=True)  # a folder, not a file
    (venv.site_packages / "noversion-1.0.dist-info").mkdir()
    (venv.site_packages / "noversion-1.0.dist-info" / "METADATA").write_text("Name: noversion\n", encoding="utf-8")
    egg = venv.site_packages / "legacy-0.1-py3.11.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: legacy\nVersion: 0.1\n", encoding="utf-8")
    (egg / "requires.txt").write_text("six\n\n[socks]\nPySocks\n\n[:sys_platform == 'win32']\nwin-inet\n")
    snap = gather(GatherOptions(python=str(venv.python), cwd=workdir))
    by_key = {d.key: d for d in snap.distributions}
    assert "unreadable" in by_key["weird"].problem
    assert by_key["noversion"].problem == "METADATA has no Version"
    assert by_key["legacy"].requires == [
        "six",
        'PySocks ; extra == "socks"',
        "win-inet ; (sys_platform == 'win32')",
    ]


def test_probe_timeout(tmp_path: Path) -> None:
    hanging = tmp_path / "python"
    hanging.write_text("#!/bin/sh\nsleep 60\n", encoding="utf-8")
    hanging.chmod(0o755)
    start = time.monotonic()
    with pytest.raises(ProbeError, match="did not answer the probe within 1 s"):
        run_probe(str(hanging), tmp_path, timeout=1)
    assert time.monotonic() - start < 10


def test_interpreter_crashing_at_startup(tmp_path: Path) -> None:
    crashing = tmp_path / "python"
    crashing.write_text("#!/bin/sh\necho 'Fatal Python error: init_fs_encoding' >&2\nexit 1\n", encoding="utf-8")
    crashing.chmod(0o755)
    with pytest.raises(ProbeError, match="init_fs_encoding"):
        run_probe(str(crashing), tmp_path, timeout=10)


def test_snapshot_round_trip(healthy_venv: Venv, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "torch.py").write_text("", encoding="utf-8")
    target = workdir / "node.json"
    assert main(["snapshot", "--python", str(healthy_venv.python), "-o", str(target)]) == 0
    data = json.loads(target.read_text(encoding="utf-8"))
    assert data["schema"] == "autoglm-doctor/snapshot@1"
    assert Snapshot.from_dict(data) == Snapshot.load(target)

    live = main(["check", "--no-smoke", "--format", "json", "--python", str(healthy_venv.python)])
    live_report = json.loads(capsys.readouterr().out)
    # Re-evaluated from the file, without probing: move the venv away to prove nothing is probed.
    os.rename(healthy_venv.root, healthy_venv.root.with_name("gone"))
    saved = main(["check", "--no-smoke", "--format", "json", "--snapshot", str(target)])
    saved_report = json.loads(capsys.readouterr().out)
    assert (live, saved) == (1, 1)

    def essence(report: dict[str, object]) -> list[tuple[str, str, list[str]]]:
        return [(r["id"], r["status"], [f["code"] for f in r["findings"]]) for r in report["results"]]  # type: ignore[index, union-attr, attr-defined]

    assert essence(saved_report) == essence(live_report)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ('{"schema": "autoglm-doctor/report@1", "results": []}', "is a report, not a snapshot"),
        ('{"schema": "autoglm-doctor/snapshot@1", "python": {"version": 3}}', "$.python"),
        ('{"schema": "something-else"}', "unsupported snapshot schema"),
    ],
)
def test_unreadable_snapshot_is_a_usage_error(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "snap.json"
    path.write_text(content, encoding="utf-8")
    assert main(["check", "--snapshot", str(path), "--format", "json"]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_missing_snapshot_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--snapshot", str(tmp_path / "absent.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def _email_headers(text: str) -> dict[str, list[str]]:
    """The headers as pip and importlib.metadata read them (the stdlib email parser), unfolded."""
    import email.parser
    import email.policy
    import re

    message = email.parser.HeaderParser(policy=email.policy.compat32).parsestr(text)
    out: dict[str, list[str]] = {}
    for name, value in message.items():
        out.setdefault(name.lower(), []).append(re.sub(r"(\r\n|\r|\n)(?=[ \t])", "", str(value)).strip())
    return out


def test_metadata_headers_split_as_the_email_parser_splits_them() -> None:
    """Every released engine METADATA kept for the tables, and the edge cases of the format, read as pip reads them."""
    import lzma
    import tarfile

    from autoglm_doctor.probe import _script as probe

    sources = Path(__file__).resolve().parent.parent / "tools" / "knowledge_sources"
    texts: dict[str, str] = {}
    for archive in ("sglang.tar.xz", "vllm.tar.xz"):
        with tarfile.open(sources / archive, mode="r:xz") as tar:
            for member in tar.getmembers():
                if member.name.endswith(("/METADATA", "/PKG-INFO")):
                    handle = tar.extractfile(member)
                    assert handle is not None
                    texts[member.name] = handle.read().decode("utf-8")
    for path in (sources / "vllm-metadata").glob("*.xz"):
        texts[path.name] = lzma.decompress(path.read_bytes()).decode("utf-8")
    assert sum(name.startswith("sglang-") for name in texts) >= 18
    texts.update(
        {
            "crlf": "Name: a\r\nVersion: 1\r\nRequires-Dist: b\r\n\r\nRequires-Dist: body\r\n",
            "leading continuation": " stray\nName: a\nVersion: 1\n",
            "folded with blank-looking lines": "Name: a\nLicense: x\n   \n\t\n y\nRequires-Dist: b\n\nbody: c\n",
            "a line that is no header starts the body": "Name: a\nnot a header\nRequires-Dist: b\n",
            "a name with a space starts the body": "Name: a\nRequires Dist: b\nRequires-Dist: c\n",
            "no name": "Name: a\n: x\n  more\nRequires-Dist: b\n",
            "folded value": "Name: a\nRequires-Dist: b\n  >=1\n",
        }
    )
    sglang = probe.parse_metadata(texts["sglang-0.5.6.post2/METADATA"])
    assert len(sglang["requires-dist"]) == 76  # before: 0, the License: header's blank-looking lines ended it
    for name, text in texts.items():
        assert probe.parse_metadata(text) == _email_headers(text), name
