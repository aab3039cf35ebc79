"""Real virtual environments with hand-written distribution metadata.

``python -m venv --without-pip`` makes a real interpreter layout in milliseconds; the
distributions are ``*.dist-info`` folders written by hand, exactly as pip would leave them
(METADATA, INSTALLER, optional top_level.txt), plus an importable package folder.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Venv:
    """A real venv made for a test."""

    root: Path
    python: Path
    site_packages: Path

    def add(
        self,
        name: str,
        version: str,
        requires: Iterable[str] = (),
        *,
        requires_python: str | None = None,
        package: str | None = None,
        site: Path | None = None,
        metadata: bool = True,
        files: dict[str, str] | None = None,
    ) -> Path:
        """Install a fake distribution: its dist-info and an importable top-level package."""
        target = site or self.site_packages
        dist_info = target / f"{name.replace('-', '_')}-{version}.dist-info"
        dist_info.mkdir(parents=True)
        if metadata:
            lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
            if requires_python:
                lines.append(f"Requires-Python: {requires_python}")
            lines += [f"Requires-Dist: {r}" for r in requires]
            (dist_info / "METADATA").write_text("\n".join(lines) + "\n\nA test distribution.\n", encoding="utf-8")
        (dist_info / "INSTALLER").write_text("pip\n", encoding="utf-8")
        top = package if package is not None else name.replace("-", "_").lower()
        if top:
            (dist_info / "top_level.txt").write_text(top + "\n", encoding="utf-8")
            pkg = target / top
            pkg.mkdir(exist_ok=True)
            (pkg / "__init__.py").write_text(f"__version__ = {version!r}\n", encoding="utf-8")
        for rel, text in (files or {}).items():
            path = target / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return dist_info

    def add_torch(self, version: str, cuda: str | None = None, *, marker: Path | None = None) -> None:
        """A fake torch whose version.py reads like the real one; importing it writes ``marker``."""
        init = "raise RuntimeError('the doctor must never import torch')\n"
        if marker is not None:
            init = f"open({str(marker)!r}, 'w').write('imported')\n" + init
        self.add(
            "torch",
            version,
            ["filelock", "typing-extensions>=4.8.0"],
            files={
                "torch/version.py": (
                    "from typing import Optional\n\n"
                    "__all__ = ['__version__', 'debug', 'cuda', 'git_version', 'hip']\n"
                    f"__version__ = {version!r}\n"
                    "debug = False\n"
                    f"cuda: Optional[str] = {cuda!r}\n"
                    "git_version = 'abc123'\n"
                    "hip: Optional[str] = None\n"
                ),
                "torch/__init__.py": init,
            },
        )
        if not list(self.site_packages.glob("filelock-*.dist-info")):
            self.add("filelock", "3.13.1")
        if not list(self.site_packages.glob("typing_extensions-*.dist-info")):
            self.add("typing-extensions", "4.9.0", package="typing_extensions")


def find_python(version: str) -> str | None:
    """A working interpreter for ``version`` (``3.8``), or None; pyenv shims that fail are skipped."""
    import glob
    import shutil

    candidates = [
        shutil.which(f"python{version}"),
        *sorted(glob.glob(f"/root/.pyenv/versions/{version}.*/bin/python{version}")),
    ]
    for candidate in candidates:
        if candidate is None:
            continue
        try:
            subprocess.run([candidate, "-c", "pass"], check=True, capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        return candidate
    return None


def make_venv(path: Path, python: str | None = None) -> Venv:
    """Create a real venv (without pip) at ``path`` with ``python`` (default: this interpreter)."""
    exe = python or sys.executable
    subprocess.run([exe, "-m", "venv", "--without-pip", str(path)], check=True, timeout=60)
    bin_python = path / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    out = subprocess.run(
        [str(bin_python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Venv(root=path, python=bin_python, site_packages=Path(out.stdout.strip()))


def healthy(venv: Venv) -> Venv:
    """Fill a venv with a complete, consistent in-process deployment stack."""
    venv.add_torch("2.1.2", cuda=None)
    venv.add("numpy", "1.26.4")
    venv.add(
        "transformers",
        "4.35.2",
        [
            "tokenizers<0.19,>=0.14",
            "numpy>=1.17",
            "huggingface-hub<1.0,>=0.16.4",
            "accelerate>=0.20.3 ; extra == 'torch'",
        ],
    )
    venv.add("tokenizers", "0.15.0", ["huggingface_hub>=0.16.4,<1.0"])
    venv.add("huggingface-hub", "0.20.3", package="huggingface_hub")
    venv.add("fastapi", "0.110.0", ["starlette<0.37,>=0.36.3"])
    venv.add("starlette", "0.36.3")
    venv.add("uvicorn", "0.27.1", ["click>=7.0", "h11>=0.8", "colorama>=0.4 ; sys_platform == 'win32'"])
    venv.add("click", "8.1.7")
    venv.add("h11", "0.14.0")
    return venv


__all__ = ["Venv", "find_python", "healthy", "make_venv", "sysconfig"]


def install_wheel_offline(venv: Venv, wheel: Path) -> None:
    """Install ``wheel`` alone into ``venv``; its runtime dependencies come from the test environment.

    Offline: a path entry (``zz_test_deps.pth``) adds this environment's site-packages after the
    venv's own, so the package itself is the wheel's while typer, rich... are the test env's.
    """
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv.python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    deps = next(Path(p) for p in sys.path if p.endswith("site-packages") and Path(p, "typer").is_dir())
    (venv.site_packages / "zz_test_deps.pth").write_text(str(deps) + "\n", encoding="utf-8")
