"""Read what the dynamic linker reads from a shared object: its dynamic section, nothing else.

The ELF reader is pyelftools (pure Python, a 200 KB wheel, about 30 ms to import, paid only when
a file that links torch is read) rather than
LIEF (a 3.7 MB compiled wheel per platform and Python, which the doctor would then need on every
interpreter it runs under): the doctor only needs the ELF header, the program headers and the
dynamic tags, which pyelftools parses and validates (identification, class, byte order, the tag
names). The file is memory-mapped, so a 400 MB ``libtorch_cpu.so`` costs only the pages touched.

Two tables are read with ``struct`` instead of pyelftools' objects, each for a measured delay
(``benchmarks/bench_abi.py``):

- symbol entries: pyelftools parses one ``Elf_Sym`` in about 16 µs, 45 ms for torchvision's
  2,853 dynamic symbols; ``struct.iter_unpack`` over the mapped table takes about 1 ms;
- the GNU hash table (``DT_GNU_HASH``): pyelftools' ``GNUHashTable`` parses the whole bloom filter
  and bucket array when it is made, 46 ms for ``libtorch_cpu.so``'s 65,537 buckets, before its
  first lookup; :meth:`SharedObject.exports` reads only the bloom word, the bucket and the chain
  entries a lookup touches (a few µs per symbol), which is what the dynamic linker does.

The ``DT_NEEDED`` names of every shared object in site-packages, which pick those that link torch,
are read by the probe (``probe/_script.py``, ``needed_names``) with ``struct`` and ``pread``, about
0.02 ms a file: pyelftools' ``ELFFile`` builds its parsing structures anew for each file it opens,
1.4 ms a file, 390 ms for the 279 shared objects of the test environment, none of which links torch.

Every offset comes from the file and is checked against its size: a truncated or corrupt file
raises :class:`ElfError`, which the caller turns into a finding.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
from dataclasses import dataclass, field
from typing import IO, cast

MAX_DYNAMIC_TAGS = 4096
"""More dynamic tags than this is not a real shared object (real ones have 30 to 60)."""
MAX_SYMBOLS = 4_000_000
"""A dynamic symbol table larger than this is refused (libtorch_cpu.so has about 260,000)."""
MAGIC = b"\x7fELF"


class ElfError(ValueError):
    """The file is not a readable ELF shared object; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Undefined:
    """A symbol the object needs from another library."""

    name: str
    """Mangled name, as in the file."""
    version: str = ""
    """The symbol version it needs (``GLIBCXX_3.4.30``), empty when unversioned."""
    version_file: str = ""
    """The library that version must come from (``libstdc++.so.6``), per ``DT_VERNEED``."""
    weak: bool = False
    """A weak reference: the loader accepts it missing."""


@dataclass(slots=True)
class SharedObject:
    """One mapped shared object; use as a context manager (the mapping is closed on exit)."""

    path: str
    needed: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)
    rpath: list[str] = field(default_factory=list)
    soname: str = ""
    _map: mmap.mmap | None = None
    _little: bool = True
    _wide: bool = True
    _tags: dict[int, int] = field(default_factory=dict)
    _loads: list[tuple[int, int, int]] = field(default_factory=list)
    _versions: dict[int, str] | None = None

    def __enter__(self) -> SharedObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Unmap the file."""
        if self._map is not None:
            self._map.close()
            self._map = None

    # --- reading -----------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str, max_bytes: int) -> SharedObject:
        """Map ``path`` and read its dynamic section; raises :class:`ElfError` or ``OSError``."""
        fd = _open_regular(path, max_bytes)
        try:
            mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        # pyelftools is imported only once a file that links torch is read (~30 ms, see above).
        from elftools.common.exceptions import ELFError
        from elftools.construct import ConstructError

        obj = cls(path=path, _map=mapped)
        try:
            obj._read()
        except ElfError:
            obj.close()
            raise
        except (ELFError, ConstructError, struct.error, IndexError, ValueError, OverflowError) as exc:
            obj.close()
            raise ElfError(f"malformed ELF: {exc}") from exc
        return obj

    @property
    def data(self) -> mmap.mmap:
        """The mapped file."""
        if self._map is None:
            raise ElfError("closed")
        return self._map

    def _read(self) -> None:
        from elftools.common.utils import struct_parse
        from elftools.elf.elffile import ELFFile

        data = self.data
        if data[:4] != MAGIC:
            raise ElfError("not an ELF file")
        stream = cast("IO[bytes]", data)  # an mmap is a readable, seekable byte stream
        elf = ELFFile(stream)
        if elf["e_type"] != "ET_DYN":
            raise ElfError(f"not a shared object ({elf['e_type']})")
        self._little = elf.little_endian
        self._wide = elf.elfclass == 64
        dynamic: tuple[int, int] | None = None
        phnum, phoff, phentsize = elf["e_phnum"], elf["e_phoff"], elf["e_phentsize"]
        if phnum > 4096 or phoff + phnum * phentsize > len(data):
            raise ElfError("program headers lie outside the file")
        for n in range(phnum):
            header = struct_parse(elf.structs.Elf_Phdr, stream, phoff + n * phentsize)
            if header["p_type"] == "PT_LOAD":
                self._loads.append((header["p_vaddr"], header["p_offset"], header["p_filesz"]))
            elif header["p_type"] == "PT_DYNAMIC":
                dynamic = (header["p_offset"], header["p_filesz"])
        if dynamic is None:
            raise ElfError("no dynamic section (a static object)")
        size = elf.structs.Elf_Dyn.sizeof()
        strings: list[tuple[str, int]] = []
        for n in range(min(dynamic[1] // size, MAX_DYNAMIC_TAGS)):
            tag = struct_parse(elf.structs.Elf_Dyn, stream, dynamic[0] + n * size)
            name, value = tag["d_tag"], tag["d_val"]
            if name == "DT_NULL":
                break
            if name in ("DT_NEEDED", "DT_RUNPATH", "DT_RPATH", "DT_SONAME"):
                strings.append((name, value))
            elif isinstance(name, str) and name in _KEPT:
                self._tags[_KEPT[name]] = value
        for name, offset in strings:
            text = self.string(offset)
            if name == "DT_NEEDED":
                self.needed.append(text)
            elif name == "DT_SONAME":
                self.soname = text
            elif name == "DT_RUNPATH":
                self.runpath.extend(p for p in text.split(":") if p)
            else:
                self.rpath.extend(p for p in text.split(":") if p)

    def offset(self, address: int) -> int:
        """File offset of a virtual address (through the loadable segments)."""
        for vaddr, off, filesz in self._loads:
            if vaddr <= address < vaddr + filesz:
                return address - vaddr + off
        raise ElfError(f"address {address:#x} lies in no loadable segment")

    def _table(self, tag: int) -> int:
        if tag not in self._tags:
            raise ElfError(f"no {_NAMES[tag]} in the dynamic section")
        return self.offset(self._tags[tag])

    def string(self, offset: int) -> str:
        """A NUL-terminated string of the dynamic string table."""
        data = self.data
        start = self._table(_STRTAB) + offset
        if start >= len(data):
            raise ElfError("a string lies outside the file")
        end = data.find(b"\0", start, min(len(data), start + 65536))
        if end < 0:
            raise ElfError("an unterminated string")
        return data[start:end].decode("utf-8", "replace")

    def _u32(self, offset: int) -> int:
        return int(struct.unpack_from("<I" if self._little else ">I", self.data, offset)[0])

    # --- symbols -----------------------------------------------------------------------------

    def _symbol(self, index: int) -> tuple[int, int, int]:
        """(st_name, st_info, st_shndx) of dynamic symbol ``index``."""
        base = self._table(_SYMTAB)
        order = "<" if self._little else ">"
        if self._wide:
            name, info, _other, shndx = struct.unpack_from(order + "IBBH", self.data, base + 24 * index)
        else:
            name, _value, _size, info, _other, shndx = struct.unpack_from(
                order + "IIIBBH", self.data, base + 16 * index
            )
        return name, info, shndx

    def _gnu_hash(self) -> tuple[int, int, int, int, int]:
        """(table offset, nbuckets, symoffset, bloom_size, bloom_shift) of ``DT_GNU_HASH``."""
        at = self._table(_GNU_HASH)
        nbuckets, symoffset, bloom_size, bloom_shift = struct.unpack_from(
            "<4I" if self._little else ">4I", self.data, at
        )
        if nbuckets == 0 or bloom_size == 0 or symoffset > MAX_SYMBOLS:
            raise ElfError("an empty or malformed GNU hash table")
        return at, nbuckets, symoffset, bloom_size, bloom_shift

    def undefined(self) -> list[Undefined]:
        """The symbols this object needs from others; raises only :class:`ElfError` on a malformed file."""
        try:
            return self._undefined()
        except (struct.error, IndexError, OverflowError, ValueError) as exc:
            raise ElfError(f"malformed symbol tables: {exc}") from exc

    def _undefined(self) -> list[Undefined]:
        """The symbols this object needs from others (global and weak references), with versions.

        The GNU hash table covers only defined symbols and the link editor puts every other
        symbol before its first entry (``symoffset``): the undefined ones are exactly there.
        Without ``DT_GNU_HASH`` the classic ``DT_HASH`` gives the table's length.
        """
        if _GNU_HASH in self._tags:
            count = self._gnu_hash()[2]
        elif _HASH in self._tags:
            count = self._u32(self._table(_HASH) + 4)
        else:
            raise ElfError("no symbol hash table (DT_GNU_HASH or DT_HASH)")
        count = min(count, MAX_SYMBOLS)
        if count <= 1:
            return []
        width = 24 if self._wide else 16
        base = self._table(_SYMTAB)
        data = self.data
        if base + width * count > len(data):
            raise ElfError("the symbol table runs past the end of the file")
        order = "<" if self._little else ">"
        layout = struct.Struct(order + ("IBBHQQ" if self._wide else "IIIBBH"))
        needs = self._needed_versions()
        versym = self._table(_VERSYM) if needs and _VERSYM in self._tags else None
        out = []
        for index, entry in enumerate(layout.iter_unpack(data[base : base + width * count])):
            if self._wide:
                name_at, info, _other, shndx = entry[:4]
            else:
                name_at, info, shndx = entry[0], entry[3], entry[5]
            binding = info >> 4
            if index == 0 or shndx != 0 or binding not in (1, 2):  # SHN_UNDEF; STB_GLOBAL or STB_WEAK
                continue
            version, file = "", ""
            if versym is not None:
                ndx = struct.unpack_from(order + "H", data, versym + 2 * index)[0] & 0x7FFF
                version, file = needs.get(ndx, ("", ""))
            out.append(Undefined(self.string(name_at), version, file, weak=binding == 2))
        return out

    def _needed_versions(self) -> dict[int, tuple[str, str]]:
        """Version index -> (version name, library) from ``DT_VERNEED``."""
        if _VERNEED not in self._tags:
            return {}
        order = "<" if self._little else ">"
        at = self._table(_VERNEED)
        out: dict[int, tuple[str, str]] = {}
        for _ in range(min(self._tags.get(_VERNEEDNUM, 0), 1024)):
            _version, count, file_at, aux, following = struct.unpack_from(order + "HHIII", self.data, at)
            file = self.string(file_at)
            entry = at + aux
            for _ in range(min(count, 1024)):
                _hash, _flags, other, name_at, step = struct.unpack_from(order + "IHHII", self.data, entry)
                out[other & 0x7FFF] = (self.string(name_at), file)
                if not step:
                    break
                entry += step
            if not following:
                break
            at += following
        return out

    def _defined_versions(self) -> dict[int, str]:
        """Version index -> version name from ``DT_VERDEF`` (empty when the library versions nothing)."""
        if self._versions is not None:
            return self._versions
        out: dict[int, str] = {}
        if _VERDEF in self._tags:
            order = "<" if self._little else ">"
            at = self._table(_VERDEF)
            for _ in range(min(self._tags.get(_VERDEFNUM, 0), 1024)):
                _version, _flags, ndx, _count, _hash, aux, following = struct.unpack_from(
                    order + "HHHHIII", self.data, at
                )
                out[ndx & 0x7FFF] = self.string(self._u32(at + aux))
                if not following:
                    break
                at += following
        self._versions = out
        return out

    def defines_version(self, version: str) -> bool | None:
        """Whether ``DT_VERDEF`` names ``version``; None when the library defines no versions at all.

        The loader refuses an object whose ``DT_VERNEED`` asks a library for a version that the
        library's ``DT_VERDEF`` lacks ("version `X' not found"); a library without versions only
        draws a warning.
        """
        try:
            defined = self._defined_versions()
        except (struct.error, IndexError, OverflowError, ValueError) as exc:
            raise ElfError(f"malformed version definitions: {exc}") from exc
        return None if not defined else version in defined.values()

    def exports(self, name: str, version: str = "") -> bool:
        """Whether this library defines ``name`` (at ``version``); raises only :class:`ElfError` on a malformed file."""
        try:
            return self._exports(name, version)
        except (struct.error, IndexError, OverflowError, ValueError) as exc:
            raise ElfError(f"malformed GNU hash table: {exc}") from exc

    def _exports(self, name: str, version: str = "") -> bool:
        """Whether this library defines ``name`` (at ``version`` when given), by its GNU hash table.

        The lookup the dynamic linker does: the bloom filter first, then one bucket's chain,
        comparing hashes before names; only the words a lookup touches are read.
        """
        if _GNU_HASH not in self._tags and _HASH in self._tags:
            return self._sysv_exports(name, version)
        at, nbuckets, symoffset, bloom_size, bloom_shift = self._gnu_hash()
        bits = 64 if self._wide else 32
        order = "<" if self._little else ">"
        wanted = _gnu_hash(name)
        bloom_at = at + 16
        word = struct.unpack_from(
            order + ("Q" if self._wide else "I"), self.data, bloom_at + (bits // 8) * ((wanted // bits) % bloom_size)
        )[0]
        mask = (1 << (wanted % bits)) | (1 << ((wanted >> bloom_shift) % bits))
        if word & mask != mask:
            return False
        buckets_at = bloom_at + (bits // 8) * bloom_size
        chain_at = buckets_at + 4 * nbuckets
        index = self._u32(buckets_at + 4 * (wanted % nbuckets))
        if index < symoffset:
            return False
        encoded = name.encode("utf-8")
        for _ in range(MAX_SYMBOLS):
            entry = self._u32(chain_at + 4 * (index - symoffset))
            if (entry | 1) == (wanted | 1) and self._matches(index, encoded, version):
                return True
            if entry & 1:
                return False
            index += 1
        return False

    def _matches(self, index: int, encoded: bytes, version: str) -> bool:
        """Symbol ``index`` is a definition of ``encoded`` that satisfies ``version`` (as glibc's check_match)."""
        name_at, _info, shndx = self._symbol(index)
        if shndx == 0 or self.string(name_at).encode("utf-8") != encoded:
            return False
        if not version or _VERSYM not in self._tags:
            return True
        raw = struct.unpack_from("<H" if self._little else ">H", self.data, self._table(_VERSYM) + 2 * index)[0]
        ndx, hidden = raw & 0x7FFF, bool(raw & 0x8000)
        return self._defined_versions().get(ndx) == version or (ndx <= 1 and not hidden)

    def _sysv_exports(self, name: str, version: str) -> bool:
        """The classic ``DT_HASH`` lookup, for a library linked without a GNU hash table."""
        at = self._table(_HASH)
        nbucket, nchain = struct.unpack_from("<2I" if self._little else ">2I", self.data, at)
        if nbucket == 0 or nchain > MAX_SYMBOLS:
            raise ElfError("an empty or malformed SysV hash table")
        from elftools.elf.hash import ELFHashTable

        index = self._u32(at + 8 + 4 * (ELFHashTable.elf_hash(name) % nbucket))
        encoded = name.encode("utf-8")
        for _ in range(nchain):
            if index == 0 or index >= nchain:
                return False
            if self._matches(index, encoded, version):
                return True
            index = self._u32(at + 8 + 4 * nbucket + 4 * index)
        return False


def _gnu_hash(name: str) -> int:
    """The GNU symbol hash (``dl_new_hash``), as pyelftools' ``GNUHashTable.gnu_hash`` computes it."""
    from elftools.elf.hash import GNUHashTable

    return GNUHashTable.gnu_hash(name)


def _open_regular(path: str, max_bytes: int) -> int:
    """A descriptor of ``path`` when it is a regular file of 64 bytes to ``max_bytes``; else ElfError.

    Opened without blocking, so a FIFO named ``*.so`` is refused, never waited on.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ElfError("not a regular file")
        if info.st_size > max_bytes:
            raise ElfError(f"{info.st_size / (1 << 20):.0f} MiB, over the {max_bytes >> 20} MiB limit")
        if info.st_size < 64:
            raise ElfError(f"{info.st_size} bytes: too short for an ELF header")
    except BaseException:
        os.close(fd)
        raise
    return fd


# Dynamic tags kept by number (the d_val of each), under pyelftools' names.
_STRTAB, _SYMTAB, _HASH, _GNU_HASH, _VERSYM, _VERNEED, _VERNEEDNUM, _VERDEF, _VERDEFNUM = range(9)
_KEPT = {
    "DT_STRTAB": _STRTAB,
    "DT_SYMTAB": _SYMTAB,
    "DT_HASH": _HASH,
    "DT_GNU_HASH": _GNU_HASH,
    "DT_VERSYM": _VERSYM,
    "DT_VERNEED": _VERNEED,
    "DT_VERNEEDNUM": _VERNEEDNUM,
    "DT_VERDEF": _VERDEF,
    "DT_VERDEFNUM": _VERDEFNUM,
}
_NAMES = {number: name for name, number in _KEPT.items()}
