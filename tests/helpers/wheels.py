"""A local wheelhouse of tiny, valid wheels, for installing what ``check --fix`` writes without a network.

Each wheel is a zip holding ``NAME-VERSION.dist-info/{METADATA,WHEEL,RECORD}`` and an importable
package, with ``Requires-Dist`` lines matching the fake distributions of :mod:`tests.helpers.venvs`.
torch wheels carry a ``torch/version.py`` like the real one (read by the probe, never imported).
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from autoglm_doctor.knowledge.gpu import torch_cuda_releases
from autoglm_doctor.knowledge.packages import torch_release


@dataclass(frozen=True)
class Wheel:
    """One distribution release to build."""

    name: str
    version: str
    requires: tuple[str, ...] = ()
    requires_python: str = ""
    files: Mapping[str, str] = field(default_factory=dict)


def _torch_version_py(version: str, cuda: str | None) -> str:
    return (
        "from typing import Optional\n\n"
        f"__version__ = {version!r}\n"
        "debug = False\n"
        f"cuda: Optional[str] = {cuda!r}\n"
        "git_version = 'abc123'\n"
        "hip: Optional[str] = None\n"
    )


def catalog() -> list[Wheel]:
    """Every release the fix may pick in the tests: the fake stack's, and every torch line's CPU build.

    Several versions of numpy, transformers and tokenizers, with real dependency metadata.
    """
    wheels = [
        Wheel("filelock", "3.13.1"),
        Wheel("typing-extensions", "4.9.0"),
        Wheel("numpy", "1.24.0"),
        Wheel("numpy", "1.26.4"),
        Wheel("numpy", "2.0.1"),
        Wheel("transformers", "4.29.2", ("tokenizers<0.14,>=0.11.1", "numpy>=1.17")),
        Wheel(
            "transformers",
            "4.35.2",
            (
                "tokenizers<0.19,>=0.14",
                "numpy>=1.17",
                "huggingface-hub<1.0,>=0.16.4",
                "accelerate>=0.20.3 ; extra == 'torch'",
            ),
        ),
        # A conflict with one way out: the newest 4.35 wants NumPy 2, which a file that keeps NumPy 1
        # excludes, so a resolver must step back to 4.35.2 (and tokenizers to a release below 0.19).
        Wheel(
            "transformers",
            "4.35.9",
            ("tokenizers<0.19,>=0.14", "numpy>=2", "huggingface-hub<1.0,>=0.16.4"),
        ),
        Wheel("tokenizers", "0.13.3"),
        Wheel("tokenizers", "0.15.0", ("huggingface_hub>=0.16.4,<1.0",)),
        Wheel("tokenizers", "0.19.1", ("huggingface_hub>=0.16.4,<1.0",)),
        Wheel("huggingface-hub", "0.20.3"),
        Wheel("fastapi", "0.110.0", ("starlette<0.37,>=0.36.3",)),
        Wheel("starlette", "0.36.3"),
        Wheel("uvicorn", "0.27.1", ("click>=7.0", "h11>=0.8", "colorama>=0.4 ; sys_platform == 'win32'")),
        Wheel("click", "8.1.7"),
        Wheel("h11", "0.14.0"),
        Wheel("accelerate", "0.26.1", ("torch>=1.10.0", "numpy>=1.17")),
    ]
    for release in torch_cuda_releases():
        row = torch_release(release.latest)
        wheels.extend(
            Wheel(
                "torch",
                version,
                ("filelock", "typing-extensions>=4.8.0"),
                requires_python=str(row.python) if row is not None else "",
                files={
                    "torch/version.py": _torch_version_py(version, None),
                    "torch/__init__.py": "raise RuntimeError('the doctor must never import torch')\n",
                },
            )
            for version in (release.latest, f"{release.latest}+cpu")
        )
    return wheels


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(folder: Path, wheel: Wheel) -> Path:
    """Write one ``py3-none-any`` wheel into ``folder``."""
    stem = wheel.name.replace("-", "_")
    dist_info = f"{stem}-{wheel.version}.dist-info"
    metadata = ["Metadata-Version: 2.1", f"Name: {wheel.name}", f"Version: {wheel.version}"]
    if wheel.requires_python:
        metadata.append(f"Requires-Python: {wheel.requires_python}")
    metadata += [f"Requires-Dist: {r}" for r in wheel.requires]
    package = stem.lower()
    files: dict[str, str] = {f"{package}/__init__.py": f"__version__ = {wheel.version!r}\n"}
    files.update(wheel.files)
    files[f"{dist_info}/METADATA"] = "\n".join(metadata) + "\n\nA test distribution.\n"
    files[f"{dist_info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: autoglm-doctor-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files[f"{dist_info}/top_level.txt"] = package + "\n"
    path = folder / f"{stem}-{wheel.version}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            data = text.encode("utf-8")
            archive.writestr(name, data)
            record.append(_record_line(name, data))
        record.append(f"{dist_info}/RECORD,,")
        archive.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return path


def build_wheelhouse(folder: Path, wheels: Iterable[Wheel] | None = None) -> Path:
    """Build every wheel of the catalog (or ``wheels``) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for wheel in catalog() if wheels is None else wheels:
        build_wheel(folder, wheel)
    return folder


def offline_pip_env(wheelhouse: Path | None = None) -> dict[str, str]:
    """The environment for a pip that reads no config and, with a wheelhouse, no index at all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if wheelhouse is not None:
        env["PIP_NO_INDEX"] = "1"
        env["PIP_FIND_LINKS"] = str(wheelhouse)
    return env


def pip_install(target_python: Path, wheelhouse: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Install into ``target_python`` (a venv without pip) with this interpreter's pip, offline."""
    cmd = [sys.executable, "-m", "pip", "--python", str(target_python), "install", "--no-index", "--find-links"]
    cmd += [str(wheelhouse), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=offline_pip_env())
