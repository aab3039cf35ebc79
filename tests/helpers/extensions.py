"""Real compiled torch extensions, built with the compiler here, in real venvs the doctor targets.

Torch is the CPU build installed in the test environment: each venv links its ``torch`` package and
dist-info in (symlinks, so the venv costs milliseconds), which is what the doctor sees as
installed. Every extension is compiled from one source, :data:`SOURCE`, that calls into libc10
through ``TORCH_CHECK``:

- against the installed torch's headers and ``libc10.so`` (it loads: the check passes);
- against a stand-in ``libc10.so`` whose header declares ``torchCheckFail`` with another signature,
  as another torch release would (``undefined symbol`` with the installed torch);
- against the installed torch with the other C++ ABI (``-D_GLIBCXX_USE_CXX11_ABI=0``);
- against the installed torch and a library of its own, ``libabidep.so`` (in ``dep/``), found through
  its ``RUNPATH`` ``$ORIGIN/../abiext.libs``.

The real torchvision wheel's ``_C.so`` (PyPI's CUDA 13.0 build of 0.28.0, the release paired with
torch 2.13.0) is kept verbatim, with its dist-info, in ``tools/knowledge_sources`` (1.2 MB as xz,
against 7.7 MB for the wheel); :func:`add_torchvision_wheel_files` checks it against the wheel's own
RECORD hashes before use.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sysconfig
import tarfile
from pathlib import Path

from tests.helpers.venvs import Venv, make_venv

REPO = Path(__file__).resolve().parents[2]
TORCHVISION_ARCHIVE = REPO / "tools" / "knowledge_sources" / "torchvision-0.28.0-cp311-manylinux_2_28_x86_64.abi.tar.xz"
EXT_SUFFIX = sysconfig.get_config_var("EXT_SUFFIX") or ".so"

SOURCE = """\
#include <c10/util/Exception.h>

extern "C" int autoglm_abi_probe(int x) {
  TORCH_CHECK(x >= 0, "x must be non-negative, got ", x);
  return x + 1;
}

extern "C" void* PyInit__C(void) { return nullptr; }
"""

STANDIN_HEADER = """\
#pragma once
#include <string>
// Another torch release's c10: torchCheckFail gained a parameter.
namespace c10 { namespace detail {
[[noreturn]] void torchCheckFail(const char* func, const char* file, unsigned line, const std::string& msg, bool fatal);
} }
#define TORCH_CHECK(cond, ...) \\
  if (!(cond)) ::c10::detail::torchCheckFail(__func__, __FILE__, __LINE__, "check failed", true)
"""

STANDIN_LIBRARY = """\
#include <c10/util/Exception.h>
#include <stdexcept>
namespace c10 { namespace detail {
void torchCheckFail(const char*, const char*, unsigned, const std::string& msg, bool) { throw std::runtime_error(msg); }
} }
"""


def torch_package() -> Path:
    """The installed (CPU) torch package of the test environment."""
    import importlib.util

    spec = importlib.util.find_spec("torch")
    assert spec is not None and spec.origin is not None, "the test environment has torch"
    return Path(spec.origin).parent


def _gxx(*args: str | Path) -> None:
    subprocess.run(
        ["g++", "-std=c++17", "-O0", "-fPIC", "-shared", "-Wl,--no-as-needed", *map(str, args)], check=True, timeout=120
    )


def build_extensions(folder: Path) -> dict[str, Path]:
    """Compile :data:`SOURCE` three ways (matching, stand-in torch, other ABI); name -> .so file."""
    torch = torch_package()
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "ext.cpp"
    source.write_text(SOURCE, encoding="utf-8")
    standin = folder / "standin"
    (standin / "include" / "c10" / "util").mkdir(parents=True)
    (standin / "include" / "c10" / "util" / "Exception.h").write_text(STANDIN_HEADER, encoding="utf-8")
    (standin / "libc10.cpp").write_text(STANDIN_LIBRARY, encoding="utf-8")
    _gxx("-I", standin / "include", standin / "libc10.cpp", "-Wl,-soname,libc10.so", "-o", standin / "libc10.so")
    dep = folder / "dep"
    dep.mkdir()
    (dep / "abidep.cpp").write_text('extern "C" int abidep(void) { return 1; }\n', encoding="utf-8")
    _gxx(dep / "abidep.cpp", "-Wl,-soname,libabidep.so", "-o", dep / "libabidep.so")
    out = {name: folder / f"{name}.so" for name in ("matching", "standin", "old_abi", "with_dep")}
    include, lib = torch / "include", torch / "lib"
    _gxx("-I", include, source, "-L", lib, "-lc10", "-o", out["matching"])
    _gxx("-I", standin / "include", source, "-L", standin, "-lc10", "-o", out["standin"])
    _gxx("-D_GLIBCXX_USE_CXX11_ABI=0", "-I", include, source, "-L", lib, "-lc10", "-o", out["old_abi"])
    # A versioned libc10 (C10_1), and another release of it that defines only C10_2.
    for node in ("C10_1", "C10_2"):
        (standin / f"{node}.map").write_text(f"{node} {{ global: *; }};\n", encoding="utf-8")
        (standin / node).mkdir()
        _gxx(
            "-I",
            standin / "include",
            standin / "libc10.cpp",
            "-Wl,-soname,libc10.so",
            f"-Wl,--version-script={standin / f'{node}.map'}",
            "-o",
            standin / node / "libc10.so",
        )
    # The stand-in libc10 linked with only the classic SysV hash table (DT_HASH, no DT_GNU_HASH).
    (standin / "sysv").mkdir()
    _gxx(
        "-I",
        standin / "include",
        standin / "libc10.cpp",
        "-Wl,-soname,libc10.so",
        "-Wl,--hash-style=sysv",
        "-o",
        standin / "sysv" / "libc10.so",
    )
    out["versioned"] = folder / "versioned.so"
    _gxx("-I", standin / "include", source, "-L", standin / "C10_1", "-lc10", "-o", out["versioned"])
    # Needs a library of its own, found through its RUNPATH ($ORIGIN/../abiext.libs) when it is there.
    _gxx(
        "-I",
        include,
        source,
        "-L",
        lib,
        "-lc10",
        "-L",
        dep,
        "-labidep",
        "-Wl,-rpath,$ORIGIN/../abiext.libs",
        "-o",
        out["with_dep"],
    )
    return out


def venv_with_torch(path: Path) -> Venv:
    """A real venv whose site-packages holds the test environment's torch (linked in, with its dist-info)."""
    venv = make_venv(path)
    torch = torch_package()
    venv.site_packages.joinpath("torch").symlink_to(torch, target_is_directory=True)
    for dist_info in torch.parent.glob("torch-*.dist-info"):
        venv.site_packages.joinpath(dist_info.name).symlink_to(dist_info, target_is_directory=True)
    return venv


def add_extension(
    venv: Venv,
    built: Path,
    name: str = "abiext",
    version: str = "1.0",
    requires: tuple[str, ...] = ("torch==2.13.0",),
    filename: str = f"_C{EXT_SUFFIX}",
) -> Path:
    """Install ``built`` as ``NAME/FILENAME`` of a distribution with real dist-info; returns the file."""
    venv.add(name, version, list(requires))
    target = venv.site_packages / name / filename
    shutil.copyfile(built, target)
    return target


def add_torchvision_wheel_files(venv: Venv) -> Path:
    """Unpack the real torchvision 0.28.0 (CUDA 13.0) ``_C.so`` and dist-info; verified against its RECORD."""
    with tarfile.open(TORCHVISION_ARCHIVE, mode="r:xz") as tar:
        tar.extractall(venv.site_packages, filter="data")
    so = venv.site_packages / "torchvision" / "_C.so"
    record = (venv.site_packages / "torchvision-0.28.0.dist-info" / "RECORD").read_text(encoding="utf-8")
    line = next(r for r in record.splitlines() if r.startswith("torchvision/_C.so,"))
    digest = base64.urlsafe_b64encode(hashlib.sha256(so.read_bytes()).digest()).rstrip(b"=").decode()
    assert line.split(",")[1] == f"sha256={digest}", "the kept _C.so is the wheel's own file"
    (venv.site_packages / "torchvision" / "__init__.py").write_text("", encoding="utf-8")
    (venv.site_packages / "torchvision-0.28.0.dist-info" / "INSTALLER").write_text("pip\n", encoding="utf-8")
    return so
