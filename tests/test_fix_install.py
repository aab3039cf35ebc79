"""Acceptance: `check --fix` writes a lock (exact pins with hashes, chosen by a real resolver) for each
broken environment of the packages tests; the lock installs into a fresh venv from a local wheelhouse
(`pip install --require-hashes`, or uv for pylock.toml) and every packages.* check passes there.

Offline: the resolver and the installers look only in a wheelhouse the tests build
(`--no-index --find-links`); pip reads no configuration (PIP_CONFIG_FILE=/dev/null).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socketserver
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from autoglm_doctor.cli import main
from autoglm_doctor.probe.gpu import NVML_FIXTURE_ENV
from tests.conftest import result
from tests.helpers.gpu import fixture
from tests.helpers.venvs import Venv, healthy, make_venv
from tests.helpers.wheels import Wheel, build_wheel, build_wheelhouse, pip_install

PACKAGES_CHECKS = ("packages.required", "packages.versions", "packages.conflicts", "packages.shadowing")
UV_DIR = str(Path(sys.executable).parent)  # uv comes from the test environment (requirements-dev.txt)
PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[^\s=]+( --hash=sha256:[0-9a-f]{64})+$")


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheelhouse(tmp_path_factory.mktemp("wheelhouse"))


def _path_without_uv() -> str:
    return os.pathsep.join(
        part for part in os.environ.get("PATH", "").split(os.pathsep) if part and not (Path(part) / "uv").exists()
    )


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No GPU (the wheelhouse holds CPU builds), no pip configuration, and no uv on PATH: pip resolves."""
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture("no-driver")))
    for key in [k for k in os.environ if k.startswith(("PIP_", "UV_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    monkeypatch.setenv("PATH", _path_without_uv())
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))  # uv, when a test runs it, caches here


@pytest.fixture
def with_uv(offline: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """uv on PATH: the resolver the fix prefers."""
    monkeypatch.setenv("PATH", UV_DIR + os.pathsep + os.environ["PATH"])
    uv = shutil.which("uv")
    assert uv is not None, "uv is in requirements-dev.txt"
    return uv


def _missing_fastapi(venv: Venv) -> None:
    for folder in venv.site_packages.glob("fastapi*"):
        shutil.rmtree(folder)


def _old_transformers(venv: Venv) -> None:
    for folder in venv.site_packages.glob("transformers*"):
        shutil.rmtree(folder)
    venv.add("transformers", "4.29.2", ["tokenizers<0.14,>=0.11.1", "numpy>=1.17"])
    for folder in venv.site_packages.glob("tokenizers*"):
        shutil.rmtree(folder)
    venv.add("tokenizers", "0.13.3")


def _tokenizers_outside_pin(venv: Venv) -> None:
    for folder in venv.site_packages.glob("tokenizers*"):
        shutil.rmtree(folder)
    venv.add("tokenizers", "0.19.1", ["huggingface_hub>=0.16.4,<1.0"])


def _numpy2_with_torch21(venv: Venv) -> None:
    for folder in venv.site_packages.glob("numpy*"):
        shutil.rmtree(folder)
    venv.add("numpy", "2.0.1")


def _torch113(venv: Venv) -> None:
    for folder in venv.site_packages.glob("torch*"):
        shutil.rmtree(folder)
    venv.add_torch("1.13.1")


def _duplicate_numpy(venv: Venv) -> None:
    stale = venv.site_packages / "numpy-1.24.0.dist-info"
    stale.mkdir()
    (stale / "METADATA").write_text("Metadata-Version: 2.1\nName: numpy\nVersion: 1.24.0\n", encoding="utf-8")


BROKEN: dict[str, tuple[Callable[[Venv], None], str]] = {
    "missing-required": (_missing_fastapi, "packages.missing"),
    "too-old-transformers": (_old_transformers, "packages.out-of-range"),
    "tokenizers-outside-pin": (_tokenizers_outside_pin, "packages.dependency-conflict"),
    "numpy2-torch21": (_numpy2_with_torch21, "packages.known-bad.numpy2-old-torch"),
    "torch113-python311": (_torch113, "python.torch-unsupported"),
    "duplicate": (_duplicate_numpy, "packages.duplicate"),
}


def _check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = main(["check", "--no-smoke", "--format", "json", *args])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def requirement_entries(text: str) -> list[str]:
    """The file's requirement lines, continuation lines joined, comments and blank lines dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line and not pending:
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        logical.append((pending + line).strip())
        pending = ""
    return [entry for entry in logical if entry]


def assert_every_line_is_a_hashed_pin(text: str, *, index_line: str) -> dict[str, str]:
    """Each requirement is ``name==version --hash=sha256:...``; the only other line is torch's index."""
    pins: dict[str, str] = {}
    for entry in requirement_entries(text):
        if entry.startswith("--"):
            assert entry == index_line
            continue
        assert PINNED.match(entry), entry
        name, _, rest = entry.partition("==")
        pins[name.lower()] = rest.split()[0]
    return pins


def _packages_pass(capsys: pytest.CaptureFixture[str], python: Path) -> None:
    code, report, _ = _check(capsys, "--python", str(python), "--only", "packages.*")
    statuses = {check_id: result(report, check_id)["status"] for check_id in PACKAGES_CHECKS}
    problems = {r["id"]: r["findings"] for r in report["results"] if r["status"] != "pass"}
    assert statuses == dict.fromkeys(PACKAGES_CHECKS, "pass"), problems
    assert code == 0


def _broken(tmp_path: Path, case: str) -> Venv:
    breaks, _ = BROKEN[case]
    venv = healthy(make_venv(tmp_path / "broken"))
    breaks(venv)
    return venv


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_lock_installs_with_require_hashes_into_a_passing_environment(
    case: str, tmp_path: Path, workdir: Path, wheelhouse: Path, offline: None, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = _broken(tmp_path, case)
    code, report, err = _check(
        capsys, "--python", str(broken.python), "--fix", "--no-index", "--find-links", str(wheelhouse)
    )
    assert code == 1, "the broken environment fails (the report's exit code is not changed by --fix)"
    assert BROKEN[case][1] in [f["code"] for r in report["results"] for f in r["findings"]]
    assert "--fix: wrote requirements-autoglm.txt (a lock of" in err
    text = (workdir / "requirements-autoglm.txt").read_text(encoding="utf-8")
    assert text.startswith("# Locked requirements for the open-autoglm deployment")
    assert "# Resolver: pip " in text
    assert f"--require-hashes --no-index --find-links {wheelhouse} -r requirements-autoglm.txt" in text
    assert BROKEN[case][1] in text  # the changed line (or the header) names the finding it resolves
    pins = assert_every_line_is_a_hashed_pin(text, index_line="--extra-index-url https://download.pytorch.org/whl/cpu")
    assert pins["torch"].endswith("+cpu")

    fresh = make_venv(tmp_path / "fresh")
    installed = pip_install(
        fresh.python, wheelhouse, "--require-hashes", "-r", str(workdir / "requirements-autoglm.txt")
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "Looking in indexes" not in installed.stdout  # --no-index overrides the file's --extra-index-url
    on_disk = {p.name.removesuffix(".dist-info").lower() for p in fresh.site_packages.glob("*.dist-info")}
    assert on_disk == {f"{name.replace('-', '_')}-{version}" for name, version in pins.items()}
    _packages_pass(capsys, fresh.python)


def _uv_install(uv: str, python: Path, lock: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)  # UV_CACHE_DIR: the test's own
    cmd = [uv, "pip", "install", "--offline", "--no-index", "--python", str(python), "-r", str(lock)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_pylock_installs_with_uv_into_a_passing_environment(
    case: str, tmp_path: Path, workdir: Path, wheelhouse: Path, with_uv: str, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = _broken(tmp_path, case)
    code, _, err = _check(
        capsys,
        "--python",
        str(broken.python),
        "--fix",
        "--fix-format",
        "pylock",
        "--no-index",
        "--find-links",
        str(wheelhouse),
    )
    assert code == 1
    lock = workdir / "pylock.autoglm.toml"
    assert "--fix: wrote pylock.autoglm.toml (a lock of" in err
    text = lock.read_text(encoding="utf-8")
    assert "# Resolver: uv " in text
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+; uv resolves only there
    data = tomllib.loads(text)
    assert data["lock-version"] == "1.0"
    assert data["created-by"].startswith("autoglm-doctor")
    assert data["requires-python"] == "==3.11.*" if sys.version_info[:2] == (3, 11) else data["requires-python"]
    names = set()
    for package in data["packages"]:
        names.add(package["name"])
        assert package["version"]
        assert package["wheels"], package
        for wheel in package["wheels"]:
            assert wheel["name"].endswith(".whl")
            assert unquote(wheel["url"]) == (wheelhouse / wheel["name"]).as_uri().replace("%2B", "+")
            assert re.fullmatch(r"[0-9a-f]{64}", wheel["hashes"]["sha256"])
    assert {"torch", "transformers", "fastapi", "uvicorn"} <= names

    fresh = make_venv(tmp_path / "fresh")
    installed = _uv_install(with_uv, fresh.python, lock)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    _packages_pass(capsys, fresh.python)


@pytest.mark.slow
def test_pylock_from_pips_report_installs_with_uv_and_verify_says_it_needs_uv(
    tmp_path: Path, workdir: Path, wheelhouse: Path, offline: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # uv is off PATH: pip resolves, and its --report (URLs and hashes of find-links files too) becomes the pylock.
    broken = _broken(tmp_path, "numpy2-torch21")
    code, _, err = _check(
        capsys,
        "--python",
        str(broken.python),
        "--fix",
        "--fix-format",
        "pylock",
        "--verify",
        "--no-index",
        "--find-links",
        str(wheelhouse),
    )
    assert code == 1
    lock = workdir / "pylock.autoglm.toml"
    text = lock.read_text(encoding="utf-8")
    assert "# Resolver: pip " in text
    assert "--verify: cannot verify pylock.autoglm.toml: installing a pylock.toml needs uv on PATH" in err
    tomllib = pytest.importorskip("tomllib")
    versions = {p["name"]: p["version"] for p in tomllib.loads(text)["packages"]}
    assert versions["numpy"] == "1.26.4"  # numpy<2 stated, the newest NumPy 1 chosen
    uv = shutil.which("uv", path=UV_DIR)
    assert uv is not None
    fresh = make_venv(tmp_path / "fresh")
    installed = _uv_install(uv, fresh.python, lock)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    _packages_pass(capsys, fresh.python)


@pytest.mark.slow
@pytest.mark.parametrize("resolver", ["pip", "uv"])
def test_the_resolver_steps_back_from_the_conflict_to_its_one_way_out(
    resolver: str,
    tmp_path: Path,
    workdir: Path,
    wheelhouse: Path,
    offline: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The file states transformers==4.35.* and a free tokenizers, and keeps NumPy 1.26.4. The wheelhouse's
    # newest 4.35 (4.35.9) needs NumPy 2 and the newest tokenizers (0.19.1) is beyond transformers' cap:
    # only transformers 4.35.2 with tokenizers 0.15.0 fits.
    if resolver == "uv":
        monkeypatch.setenv("PATH", UV_DIR + os.pathsep + os.environ["PATH"])
    broken = _broken(tmp_path, "too-old-transformers")
    _check(capsys, "--python", str(broken.python), "--fix", "--no-index", "--find-links", str(wheelhouse))
    text = (workdir / "requirements-autoglm.txt").read_text(encoding="utf-8")
    assert f"# Resolver: {resolver} " in text
    pins = assert_every_line_is_a_hashed_pin(text, index_line="--extra-index-url https://download.pytorch.org/whl/cpu")
    assert pins["transformers"] == "4.35.2"
    assert pins["tokenizers"] == "0.15.0"
    assert pins["numpy"] == "1.26.4"
    assert "    # was 4.29.2: outside the pack's range" in text  # the plan's reason stays beside the pin


@pytest.mark.slow
def test_uv_follows_the_targets_pip_configuration_when_no_index_option_is_given(
    tmp_path: Path,
    workdir: Path,
    wheelhouse: Path,
    with_uv: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # uv reads no pip.conf: the fix reads the target's pip configuration (`pip config list`) and passes it on.
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheelhouse))
    broken = _broken(tmp_path, "missing-required")
    _check(capsys, "--python", str(broken.python), "--fix")
    text = (workdir / "requirements-autoglm.txt").read_text(encoding="utf-8")
    assert "# Resolver: uv " in text
    pins = assert_every_line_is_a_hashed_pin(text, index_line="--extra-index-url https://download.pytorch.org/whl/cpu")
    assert pins["fastapi"] == "0.110.0"


@pytest.mark.slow
def test_the_driver_aware_torch_build_is_locked_with_its_index_line(
    tmp_path: Path,
    workdir: Path,
    wheelhouse: Path,
    offline: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An RTX 4090 on driver 535 with a CPU-only torch: the fix pins torch 2.5.1+cu121 (knowledge/cuda.yaml).
    # A small fake CUDA wheel stands in for PyTorch's index, which the resolver never reaches (--no-index).
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture("rtx4090")))
    house = tmp_path / "house"
    shutil.copytree(wheelhouse, house)
    build_wheel(
        house,
        Wheel(
            "torch",
            "2.5.1+cu121",
            ("filelock", "typing-extensions>=4.8.0"),
            files={"torch/version.py": "__version__ = '2.5.1+cu121'\ncuda = '12.1'\nhip = None\n"},
        ),
    )
    venv = healthy(make_venv(tmp_path / "venv"))
    _check(capsys, "--python", str(venv.python), "--fix", "--no-index", "--find-links", str(house))
    text = (workdir / "requirements-autoglm.txt").read_text(encoding="utf-8")
    pins = assert_every_line_is_a_hashed_pin(
        text, index_line="--extra-index-url https://download.pytorch.org/whl/cu121"
    )
    assert pins["torch"] == "2.5.1+cu121"
    assert "    # was 2.1.2: a CPU-only build on a host with an NVIDIA GPU" in text
    fresh = make_venv(tmp_path / "fresh")
    installed = pip_install(fresh.python, house, "--require-hashes", "-r", str(workdir / "requirements-autoglm.txt"))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (fresh.site_packages / "torch-2.5.1+cu121.dist-info").is_dir()


DOCTOR_DEPENDENCIES = (("nvidia-ml-py", "12.560.30"), ("packaging", "24.1"), ("pyyaml", "6.0.2"))
DOCTOR_DEPENDENCIES += (("pyelftools", "0.33"), ("rich", "13.7.1"), ("typer", "0.12.5"))


def _doctor_editable(venv: Venv) -> str:
    """The doctor as ``pip install -e .`` installed it for this test run: its real dist-info and .pth file,
    copied into the deployment's venv (as docs/ci's workflow installs it); returns the source folder."""
    from importlib import metadata

    installed = metadata.distribution("autoglm-doctor")
    direct = json.loads(installed.read_text("direct_url.json") or "{}")
    assert direct.get("dir_info", {}).get("editable"), "the test environment installs the doctor with -e"
    dist_info = Path(str(installed.locate_file(""))) / f"autoglm_doctor-{installed.version}.dist-info"
    shutil.copytree(dist_info, venv.site_packages / dist_info.name)
    for pth in dist_info.parent.glob("*autoglm_doctor*.pth"):
        shutil.copy(pth, venv.site_packages / pth.name)
    for name, version in DOCTOR_DEPENDENCIES:  # its own requirements, installed beside it
        venv.add(name, version, package=name.replace("-", "_"))
    return str(direct["url"])


@pytest.mark.slow
def test_an_editable_doctor_beside_the_deployment_is_not_pinned_and_verify_passes(
    tmp_path: Path, workdir: Path, wheelhouse: Path, offline: None, capsys: pytest.CaptureFixture[str]
) -> None:
    venv = healthy(make_venv(tmp_path / "deploy"))
    source = _doctor_editable(venv)
    app = venv.add("serve-glm", "0.3.0", ["fastapi"], package="serve_glm")
    (app / "direct_url.json").write_text(
        json.dumps({"url": "https://github.com/acme/serve-glm", "vcs_info": {"vcs": "git", "commit_id": "a" * 40}}),
        encoding="utf-8",
    )
    # The doctor's own requirements stay installed, so they are kept and pinned like the deployment's.
    house = tmp_path / "house"
    shutil.copytree(wheelhouse, house)
    for name, version in DOCTOR_DEPENDENCIES:
        build_wheel(house, Wheel(name, version))
    code, _, err = _check(
        capsys, "--python", str(venv.python), "--fix", "--verify", "--no-index", "--find-links", str(house)
    )
    text = (workdir / "requirements-autoglm.txt").read_text(encoding="utf-8")
    assert code == 0, err
    pins = assert_every_line_is_a_hashed_pin(text, index_line="--extra-index-url https://download.pytorch.org/whl/cpu")
    assert "autoglm-doctor" not in pins and "serve-glm" not in pins
    assert (
        f"#   autoglm-doctor 0.1.0: the doctor itself, installed editable from {source}; "
        f"install with: pip install -e {source.removeprefix('file://')}"
    ) in text
    assert {name for name, _ in DOCTOR_DEPENDENCIES} <= set(pins)
    assert (
        "#   serve-glm 0.3.0: installed from git https://github.com/acme/serve-glm; install with: pip install "
        f"serve-glm @ git+https://github.com/acme/serve-glm@{'a' * 40}"
    ) in text
    assert "--verify:" in err and "pip resolves requirements-autoglm.txt" in err
    assert "2 not pinned (editable, local or the doctor itself)" in err


@pytest.mark.slow
def test_no_index_at_all_gives_ranges_and_a_header_that_says_it_is_not_a_lock(
    tmp_path: Path, workdir: Path, offline: None, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = _broken(tmp_path, "too-old-transformers")
    code, _, err = _check(capsys, "--python", str(broken.python), "--fix", "--no-index")
    assert code == 1  # the report fails; the file is still written
    text = (workdir / "requirements-autoglm.txt").read_text(encoding="utf-8")
    assert "# NOT A LOCK: no index to look in (--no-index without --find-links)" in text
    assert "\ntransformers==4.35.*  # was 4.29.2" in text  # the plan's range, not a resolver's choice
    assert "--hash=" not in text
    assert "--fix: NOT A LOCK" in err and "--find-links WHEELHOUSE" in err


@pytest.mark.slow
def test_unreachable_index_gives_ranges_and_says_how_to_get_a_lock(
    tmp_path: Path, workdir: Path, offline: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every index (PyPI, PyTorch's) is reached through a proxy on loopback that refuses every tunnel
    # (502): nothing answers, and nothing leaves the machine. The proxy records what it was asked.
    asked: list[str] = []

    class RefusingProxy(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            asked.append(self.rfile.readline(4096).decode("latin-1").strip())
            self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), RefusingProxy)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = f"http://127.0.0.1:{server.server_address[1]}"
    for key in ("https_proxy", "http_proxy", "HTTPS_PROXY", "HTTP_PROXY"):
        monkeypatch.setenv(key, proxy)
    for key in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PIP_RETRIES", "0")
    broken = _broken(tmp_path, "too-old-transformers")
    code, _, err = _check(capsys, "--python", str(broken.python), "--fix")
    assert code == 1
    text = (workdir / "requirements-autoglm.txt").read_text(encoding="utf-8")
    assert "# NOT A LOCK: pip found no index or file to resolve from" in text
    assert "\ntransformers==4.35.*  # was 4.29.2" in text
    assert "--fix: NOT A LOCK" in err
    server.shutdown()
    server.server_close()
    assert any(line.startswith("CONNECT pypi.org:443") for line in asked), asked  # it went nowhere else


@pytest.mark.slow
def test_a_password_in_an_index_url_never_reaches_the_file(
    tmp_path: Path, workdir: Path, wheelhouse: Path, offline: None, capsys: pytest.CaptureFixture[str]
) -> None:
    venv = healthy(make_venv(tmp_path / "venv"))
    index = "https://deployer:s3cret-t0ken-value@127.0.0.1:1/simple"  # never asked: --no-index is in force
    code, _, err = _check(
        capsys,
        "--python",
        str(venv.python),
        "--fix",
        "--no-index",
        "--find-links",
        str(wheelhouse),
        "--extra-index-url",
        index,
    )
    assert code == 0, err
    text = (workdir / "requirements-autoglm.txt").read_text(encoding="utf-8")
    assert text.startswith("# Locked requirements")
    assert "s3cret-t0ken-value" not in text
    assert "--extra-index-url https://deployer:" in text  # the index stays named, its password masked


def test_pylock_without_a_resolver_is_refused_and_nothing_is_written(
    tmp_path: Path, workdir: Path, offline: None, capsys: pytest.CaptureFixture[str]
) -> None:
    venv = healthy(make_venv(tmp_path / "venv"))
    code, _, err = _check(capsys, "--python", str(venv.python), "--fix", "--fix-format", "pylock", "--no-index")
    assert code == 1
    assert "--fix: no pylock.toml written: no index to look in" in err
    assert list(workdir.iterdir()) == []
