# The interpreter probe. It is sent on stdin to the *target* interpreter, so it must:
#   - import nothing outside the standard library and run on Python 3.8+;
#   - never import torch, transformers or any installed distribution (files are read as text);
#   - survive broken metadata: every file read is guarded, and problems become facts.
# It prints one JSON object on stdout. Keep it free of f-string features newer than 3.8.
import sys

# An interpreter older than the probe supports (Python 2.7, 3.7) says only its version, in
# syntax every Python parses; the doctor turns it into a finding that names the minimum.
if sys.version_info[:2] < (3, 8):
    sys.stdout.write('{"too_old": "%d.%d.%d"}' % tuple(sys.version_info[:3]))
    sys.stdout.flush()
    sys.exit(0)

# `python -` puts '' (the working directory) first on sys.path; drop it so that a ./json.py
# in the user's folder cannot hijack the probe's own stdlib imports.
if sys.path and sys.path[0] == "" and not getattr(sys.flags, "safe_path", False):
    del sys.path[0]

import errno  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import stat  # noqa: E402
import struct  # noqa: E402
import sysconfig  # noqa: E402
import time  # noqa: E402

SECRET_HINT = re.compile(r"token|key|secret|passw|credential|auth", re.IGNORECASE)
NORMALIZE = re.compile(r"[-_.]+")
MODULE_SUFFIXES = (".py", ".pyc", ".pyd", ".so")
# `name = 'text'`, `name: Optional[str] = None`, `debug = False` lines of torch/version.py
ASSIGNMENT = re.compile(
    r"^(\w+)\s*(?::[^=\n]*)?=\s*(?:'([^'\n]*)'|\"([^\"\n]*)\"|(None|True|False))\s*(?:#.*)?$", re.MULTILINE
)
errors = []


READ_LIMIT = 4 << 20  # the most read of any one file (a requires.txt linked to /dev/zero read 7 GB)


def open_regular(path):
    """Open a regular file for reading without blocking: a FIFO or device raises OSError(EINVAL)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_text(path, limit=READ_LIMIT):
    """Read a file (at most ``limit`` bytes) as UTF-8, replacing undecodable bytes; None when unreadable."""
    try:
        with open_regular(path) as handle:
            raw = handle.read(limit)
    except OSError:
        return None
    return raw.decode("utf-8", "replace")


def listdir(path):
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def pyvenv_cfg():
    cfg = read_text(os.path.join(sys.prefix, "pyvenv.cfg"), 65536)
    if cfg is None:
        return None
    values = {}
    for line in cfg.splitlines():
        key, _, value = line.partition("=")
        if key.strip():
            values[key.strip().lower()] = value.strip()
    return values


def env_kind():
    prefix = sys.prefix
    if os.path.isdir(os.path.join(prefix, "conda-meta")):
        return "conda"
    keys = pyvenv_cfg()
    if keys is not None:
        if "uv" in keys:
            return "uv"
        if "virtualenv" in keys:
            return "virtualenv"
        return "venv"
    if hasattr(sys, "real_prefix"):
        return "virtualenv"
    if getattr(sys, "base_prefix", prefix) != prefix:
        return "venv"
    return "system"


HEADER_NAME = re.compile(r"[\041-\071\073-\176]*\Z")
"""A header's name: printable ASCII but space and colon (the email parser's ``headerRE``)."""
LINE_BREAK = re.compile(r"\r\n|\r|\n")


def parse_metadata(text):
    """Headers of a METADATA / PKG-INFO file, split where the stdlib ``email`` parser splits them.

    As pip and ``importlib.metadata`` read it (``email.message_from_string``): a line starting with
    a space or tab continues the previous header, even when it holds only whitespace (SGLang's
    folded License: header has such lines before its 76 Requires-Dist); only an empty line ends the
    headers, or a line that is neither a header nor a continuation (the body then begins). A folded
    value is unfolded (RFC 822: the line break before the whitespace is dropped).

    Hand-written rather than ``email.parser.HeaderParser`` for speed: importing ``email`` and
    parsing with it made the whole probe 57 -> 83 ms (median of 45 runs on an 88-distribution
    venv, 2 cores), +46% on every check; this one measured no slower than the line splitter it
    replaced. tests/test_probe.py checks that both give the same headers on every released
    METADATA kept in tools/knowledge_sources.
    """
    headers = {}
    last = None
    for line in LINE_BREAK.split(text):
        if not line:
            break
        if line[0] in " \t":
            if last is not None:
                last[-1] += line
            continue  # a continuation before any header: the email parser drops it too
        name, sep, value = line.partition(":")
        if not sep or not HEADER_NAME.match(name):
            break
        if not name:
            last = None  # ":value": no name; the email parser skips it
            continue
        last = headers.setdefault(name.lower(), [])
        last.append(value.lstrip(" \t"))
    return {name: [value.strip() for value in values] for name, values in headers.items()}


def egg_info_requires(text):
    """requires.txt of an .egg-info: sections [extra:marker] become markers."""
    out = []
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if not section:
            out.append(line)
            continue
        extra, _, marker = section.partition(":")
        conds = []
        if extra:
            conds.append('extra == "%s"' % extra)
        if marker:
            conds.append("(%s)" % marker)
        out.append("%s ; %s" % (line, " and ".join(conds)))
    return out


def read_distribution(location, folder, index):
    path = os.path.join(location, folder)
    stem = folder.rsplit(".", 1)[0]
    guess_name, _, guess_version = stem.partition("-")
    dist = {
        "name": guess_name,
        "version": guess_version.partition("-")[0] if guess_version else "",
        "location": location,
        "path": path,
        "requires": [],
        "requires_python": "",
        "installer": "",
        "top_level": [],
        "direct_url": "",
        "problem": "",
        "path_index": index,
    }
    is_egg = folder.endswith(".egg-info")
    if is_egg and os.path.isfile(path):
        meta_file = path  # a bare PKG-INFO file named *.egg-info
    else:
        meta_file = os.path.join(path, "PKG-INFO" if is_egg else "METADATA")
    raw = None
    try:
        with open_regular(meta_file) as handle:
            raw = handle.read(65536)
            # The headers end at the first blank line; the long description after it is not needed.
            while b"\n\n" not in raw and len(raw) < (1 << 20):
                chunk = handle.read(65536)
                if not chunk:
                    break
                raw += chunk
            end = raw.find(b"\n\n")
            if end >= 0:
                raw = raw[: end + 1]
    except OSError as exc:
        dist["problem"] = "%s is missing or unreadable (%s)" % (
            os.path.basename(meta_file),
            exc.strerror or exc.__class__.__name__,
        )
    if raw is not None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            text = raw.decode("utf-8", "replace")
            dist["problem"] = "%s is not valid UTF-8 (byte %d)" % (os.path.basename(meta_file), exc.start)
        headers = parse_metadata(text)
        if headers.get("name"):
            dist["name"] = headers["name"][0]
        if headers.get("version"):
            dist["version"] = headers["version"][0]
        elif not dist["problem"]:
            dist["problem"] = "%s has no Version" % os.path.basename(meta_file)
        dist["requires"] = headers.get("requires-dist", [])
        dist["requires_python"] = (headers.get("requires-python") or [""])[0]
    if is_egg and os.path.isdir(path):
        req = read_text(os.path.join(path, "requires.txt"))
        if req:
            dist["requires"] = egg_info_requires(req)
    if os.path.isdir(path):
        installer = read_text(os.path.join(path, "INSTALLER"), 4096)
        if installer:
            dist["installer"] = installer.strip()
        # PEP 610: present when it was installed from a URL, a local folder or VCS, or editable.
        direct = read_text(os.path.join(path, "direct_url.json"), 65536)
        if direct:
            dist["direct_url"] = direct.strip()
        top = read_text(os.path.join(path, "top_level.txt"), 65536)
        if top:
            dist["top_level"] = [t.strip() for t in top.splitlines() if t.strip()]
    return dist


def module_name(folder, entry):
    """The import name an entry of a path folder provides, or None."""
    full = os.path.join(folder, entry)
    if entry.startswith(".") or "-" in entry.split(".")[0]:
        return None
    for suffix in MODULE_SUFFIXES:
        if entry.endswith(suffix):
            base = entry[: -len(suffix)]
            return base.split(".")[0] if base.split(".")[0].isidentifier() else None
    if entry.isidentifier() and os.path.isfile(os.path.join(full, "__init__.py")):
        return entry
    return None


def torch_build(search_path):
    for folder in search_path:
        version_py = os.path.join(folder, "torch", "version.py")
        if not os.path.isfile(version_py):
            if os.path.isfile(os.path.join(folder, "torch", "__init__.py")):
                errors.append("torch in %s has no version.py" % folder)
                return None
            continue
        text = read_text(version_py, 1 << 20)
        facts = {"version": "", "cuda": None, "hip": None, "git_version": "", "debug": False, "path": version_py}
        for match in ASSIGNMENT.finditer(text or ""):
            name, single, double, keyword = match.groups()
            key = {"__version__": "version"}.get(name, name)
            if key not in facts or key == "path":
                continue
            if keyword is not None:
                facts[key] = {"None": None, "True": True, "False": False}[keyword]
            else:
                facts[key] = single if single is not None else double
        return facts
    return None


# --- library files read as text (transformers' registries and floors, vLLM's and SGLang's
# architectures). The same functions parse released wheels' files in tools/knowledge_tables.py.
TOKEN = re.compile(
    r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|#[^\n]*|[()\[\]{},:]|[^\s()\[\]{},:"\'#]+'
)
MAPPING_FAMILIES = ("CONFIG", "PROCESSOR", "IMAGE_PROCESSOR", "VIDEO_PROCESSOR", "FEATURE_EXTRACTOR")
MIN_VERSION = re.compile(r'^([A-Z][A-Z0-9_]*)_MIN_VERSION\s*=\s*["\']([^"\']+)["\']', re.MULTILINE)
DEPENDENCY = re.compile(r'^\s*"([^"]+)"\s*:\s*"([^"]*)"\s*,?\s*$', re.MULTILINE)
CLOSING = {"(": ")", "[": "]", "{": "}"}
REQUIRES_CLASS = re.compile(r"^@requires\(backends=\(([^)]*)\)\)[ \t]*\n(?:@[^\n]*\n)*class[ \t]+(\w+)", re.MULTILINE)


def _token_stream(text, start):
    """Tokens of ``text`` from ``start`` on, comments dropped; read lazily, up to where parsing stops."""
    for match in TOKEN.finditer(text, start):
        token = match.group(0)
        if not token.startswith("#"):
            yield token


NESTING_LIMIT = 100
"""Brackets nested deeper than this in a registry file: not a registry (transformers' nest 4 deep)."""


class Unreadable(ValueError):
    """A library file whose shape the probe will not follow (brackets nested past NESTING_LIMIT)."""


def _container(tokens, kind):
    """Parse a bracketed group whose opening ``kind`` was just read: (kind, elements).

    An element is a list of atoms: ("s", text) for a string, ("w", word), (":",) or a
    nested (kind, elements) group. Iterative, with a depth limit: a file of 20,000 nested
    brackets raises :class:`Unreadable` rather than exhausting the interpreter's stack.
    """
    stack = [(kind, [], [])]  # (kind, elements, current element) of each open group
    for tok in tokens:
        kind, elements, current = stack[-1]
        if tok == CLOSING[kind]:
            if current:
                elements.append(current)
            stack.pop()
            if not stack:
                return (kind, elements)
            stack[-1][2].append((kind, elements))
        elif tok in CLOSING:
            if len(stack) >= NESTING_LIMIT:
                raise Unreadable("brackets nested deeper than %d" % NESTING_LIMIT)
            stack.append((tok, [], []))
        elif tok in (")", "]", "}"):
            continue  # unbalanced: ignore
        elif tok == ",":
            elements.append(current)
            stack[-1] = (kind, elements, [])
        elif tok == ":":
            current.append((":",))
        elif tok[0] in "\"'":
            current.append(("s", tok[1:-1]))
        else:
            current.append(("w", tok))
    # the text ended inside the group: close what is open, as the recursive reader did
    while True:
        kind, elements, current = stack.pop()
        if current:
            elements.append(current)
        if not stack:
            return (kind, elements)
        stack[-1][2].append((kind, elements))


def _strings(atoms):
    """The class names a mapping value holds: the first string of each alternative."""
    out = []
    for atom in atoms:
        if atom[0] == "s":
            out.append(atom[1])
            break
        if atom[0] in ("(", "["):
            for element in atom[1]:
                out.extend(_strings(element))
            break
        if atom[0] == "{":
            for element in atom[1]:
                if len(element) >= 3 and element[0][0] == "s" and element[1] == (":",):
                    out.extend("%s:%s" % (element[0][1], name) for name in _strings(element[2:]))
            break
    return out


def _entries(group, found):
    kind, elements = group
    for element in elements:
        if kind == "[" and len(element) == 1 and element[0][0] == "(":
            parts = element[0][1]
            if len(parts) >= 2 and len(parts[0]) == 1 and parts[0][0][0] == "s":
                found[parts[0][0][1]] = _strings(parts[1])
        elif kind == "{" and len(element) >= 3 and element[0][0] == "s" and element[1] == (":",):
            found[element[0][1]] = _strings(element[2:])
        elif kind == "(":
            for atom in element:
                if atom[0] in ("[", "{"):
                    _entries(atom, found)


ASSIGNED = re.compile(r"(?:[ \t]*:[^=\n]*)?[ \t]*(?:=|\.update\()")


def _assignments(text, name):
    """Matches of ``name = ...`` / ``name: T = ...`` / ``name.update(`` at a line's start (``MISSING_`` allowed).

    ``str.find`` for the name, then a regex at that place: scanning 80 KB files line by line with
    one ``^``-anchored regex per registry cost the probe about 30 ms (measured on the test VM).
    """
    position = text.find(name)
    while position >= 0:
        line_start = text.rfind("\n", 0, position) + 1
        if text[line_start:position].strip() in ("", "MISSING_"):
            match = ASSIGNED.match(text, position + len(name))
            if match is not None:
                yield match
        position = text.find(name, position + len(name))


ENTRY_LINE = re.compile(r'^\s*\(\s*"([^"]+)"\s*,\s*(.*?)\s*\),?\s*(?:#.*)?$')
DICT_LINE = re.compile(r'^\s*"([^"]+)"\s*:\s*(.*?)\s*,?\s*(?:#.*)?$')
PAIR = re.compile(r'"([^"]+)"\s*:\s*"([^"]+)"')
STRING = re.compile(r'"([^"]*)"')


def _one_line_entries(text, start):
    """The entries of a registry block whose entries each sit on one line; None for any other shape.

    A regex per line instead of a token per word: the registries of transformers 5.x hold about
    2,000 entries, and this reads them in a few milliseconds where the general parser takes
    about 40 ms of the probe's time (measured on the 2-core test VM). Anything unexpected (an
    entry over several lines, a block on one line) gives None, and the general parser reads it.
    """
    end = text.find("\n", start)
    if end < 0 or text[start:end].strip()[-1:] not in ("(", "[", "{"):
        return None
    found = {}
    while True:
        begin, end = end + 1, text.find("\n", end + 1)
        if end < 0:
            return None
        line = text[begin:end]
        stripped = line.strip()
        if not stripped or stripped[0] == "#" or stripped in ("[", "{", "(["):
            continue
        if stripped[0] in ")]}":
            return found
        if stripped == "(":  # an entry over several lines: join them up to its closing parenthesis
            parts, depth = [stripped], 1
            while depth > 0:
                begin, end = end + 1, text.find("\n", end + 1)
                if end < 0:
                    return None
                part = text[begin:end].strip()
                depth += part.count("(") - part.count(")")
                parts.append(part)
            line = " ".join(parts)
        match = ENTRY_LINE.match(line) or DICT_LINE.match(line)
        if match is None:
            return None
        value = match.group(2).rstrip(", ")
        if value.startswith("{"):
            found[match.group(1)] = ["%s:%s" % pair for pair in PAIR.findall(value)]
        elif value.startswith("("):
            found[match.group(1)] = [STRING.findall(part)[0] for part in value[1:-1].split(",") if '"' in part]
        else:
            found[match.group(1)] = STRING.findall(value)[:1]


def mapping_names(text, family):
    """model_type -> class names of one ``<FAMILY>_MAPPING_NAMES`` registry in a transformers file.

    Reads every assignment to, and ``.update(...)`` of, ``FAMILY_MAPPING_NAMES`` and
    ``MISSING_FAMILY_MAPPING_NAMES``, in the shapes transformers 4.30 to 5.x use: a list of
    ``("type", value)`` pairs, a dict, values that are a name, a (slow, fast) pair, a
    ``{"pil": ..., "torchvision": ...}`` dict (kept as ``backend:Class``) or ``"X" if ... else None``.

    Why not :mod:`ast`: an ast-based reader (tried; it gave the same registries for all 368 auto
    files of the 52 releases in tools/knowledge_sources) took ~25 ms where this takes ~3 ms, and the
    whole ``check --no-smoke`` went from 0.84x to 1.21x of ``pip check``, past DESIGN.md's 1.0x
    start-up budget (benchmarks/bench_check.py, same machine, same session).
    """
    name = family + "_MAPPING_NAMES"
    found = {}
    for match in _assignments(text, name):
        quick = _one_line_entries(text, match.end())
        if quick is not None:
            found.update(quick)
            continue
        tokens = _token_stream(text, match.end())
        group = None
        for _, tok in zip(range(8), tokens):
            if tok in CLOSING:
                group = _container(tokens, tok)
                break
        if group is None:
            continue
        # OrderedDict[str, str](...): the subscript is a type, the call holds the data
        if group[0] == "[" and next(tokens, None) == "(":
            group = _container(tokens, "(")
        if match.group(0).rstrip().endswith("("):
            group = ("(", [[group]])
        _entries(group, found)
    return found


def min_versions(text):
    """``ACCELERATE_MIN_VERSION = "0.26.0"`` lines of transformers/utils/import_utils.py."""
    return dict((name.lower(), version) for name, version in MIN_VERSION.findall(text or ""))


def dependency_table(text):
    """transformers/dependency_versions_table.py's ``deps`` dict: name -> requirement."""
    return dict(DEPENDENCY.findall(text or ""))


def declared_backends(root, feature_extractors):
    """Feature-extractor class -> the backends its ``@requires(backends=(...))`` decorator names.

    Reads models/<type>/feature_extraction_<type>.py of each model type the feature-extractor
    registry names (transformers 5.x declares torchaudio, librosa... this way; older releases
    declare nothing, and nothing is reported for them).
    """
    out = {}
    seen = set()
    for model_type in feature_extractors:
        module = model_type.replace("-", "_")
        if module in seen:
            continue
        seen.add(module)
        text = read_text(os.path.join(root, "models", module, "feature_extraction_%s.py" % module), 1 << 20)
        for names, cls in REQUIRES_CLASS.findall(text or ""):
            out[cls] = re.findall(r"[\"']([\w\-]+)[\"']", names)
    return out


def transformers_files(search_path):
    """What the installed transformers states about itself, read from its files as text."""
    for folder in search_path:
        root = os.path.join(folder, "transformers")
        if not os.path.isfile(os.path.join(root, "__init__.py")):
            continue
        auto = os.path.join(root, "models", "auto")
        facts = {
            "path": root,
            "files": [],
            "problems": [],
            "model_types": [],
            "mappings": {},
            "min_versions": {},
            "dependencies": {},
            "backends": {},
        }
        texts = []
        for name in (
            "auto_mappings.py",
            "configuration_auto.py",
            "processing_auto.py",
            "image_processing_auto.py",
            "video_processing_auto.py",
            "feature_extraction_auto.py",
        ):
            text = read_text(os.path.join(auto, name), 1 << 21)
            if text is not None:
                texts.append(text)
                facts["files"].append(os.path.join(auto, name))
        for family in MAPPING_FAMILIES:
            merged = {}
            for path, text in zip(facts["files"], texts):
                try:
                    merged.update(mapping_names(text, family))
                except Unreadable as exc:
                    problem = "%s could not be read: %s" % (path, exc)
                    if problem not in facts["problems"]:
                        facts["problems"].append(problem)
            if family == "CONFIG":
                facts["model_types"] = sorted(merged)
            else:
                facts["mappings"][family.lower()] = merged
        if not facts["model_types"]:
            facts["problems"].append("no model types found in %s (configuration_auto.py)" % auto)
        facts["backends"] = declared_backends(root, facts["mappings"].get("feature_extractor", {}))
        for relative, key, parse in (
            (("utils", "import_utils.py"), "min_versions", min_versions),
            (("dependency_versions_table.py",), "dependencies", dependency_table),
        ):
            path = os.path.join(root, *relative)
            text = read_text(path, 1 << 22)
            if text is None:
                facts["problems"].append("%s is missing or unreadable" % path)
                continue
            facts["files"].append(path)
            facts[key] = parse(text)
        return facts
    return None


def libraries(search_path):
    """Facts the installed transformers states about itself (files as text).

    The serving engines' registries are read on the host side, by each engine's module.
    """
    out = {}
    transformers = transformers_files(search_path)
    if transformers is not None:
        out["transformers"] = transformers
    return out


# --- compiled extensions (packages.abi). The target's site-packages is walked here, in the probe's
# own process, so that the walk and the DT_NEEDED pre-read run beside the doctor instead of holding
# its interpreter (they were 50 ms of its start-up in the test environment's 279 shared objects).
# The doctor names the libraries that matter (`--links PATTERN`, a regular expression over sonames);
# only the shared objects that need one of them, or that cannot be pre-read, are sent back: the
# doctor reads those in full.
SCAN_MAX_ENTRIES = 400000  # folder entries walked per folder scanned (a full CUDA stack has ~60,000)
SCAN_MAX_SHARED_OBJECTS = 5000  # shared objects pre-read per run
SCAN_DEADLINE_S = 10.0  # the whole walk stops (and says so) after this long: the probe's own deadline is 30 s
ELF_MAX_DYNAMIC_TAGS = 4096  # dynamic tags read, as probe/elf.py's MAX_DYNAMIC_TAGS for the full read
# Folders that hold no importable extension (`build` and `dist` of a source tree hold stale copies).
SCAN_PRUNED = {"__pycache__", "include", "nvidia", "tests", "test", ".git", "node_modules", "build", "dist", ".tox"}
# Names that are files, not folders, in site-packages (most of its entries): never stat'ed.
SCAN_FILES = (".py", ".pyi", ".pyc", ".json", ".txt", ".md", ".h", ".hpp", ".cuh", ".cu", ".cpp", ".c", ".js", ".typed")


def needed_names(fd):
    """The DT_NEEDED names of an ELF shared object, read with struct and pread (a few reads a file).

    Raises ValueError (or struct.error, IndexError) when it is not a well-formed ELF shared object.
    """
    header = os.pread(fd, 64, 0)
    if header[:4] != b"\x7fELF" or len(header) < 64 or header[4] not in (1, 2) or header[5] not in (1, 2):
        raise ValueError("not an ELF file")
    wide, order = header[4] == 2, "<" if header[5] == 1 else ">"
    if wide:
        phoff = struct.unpack_from(order + "Q", header, 32)[0]
        phentsize, phnum = struct.unpack_from(order + "HH", header, 54)
        phdr, dyn = order + "IIQQQQ", order + "qQ"
    else:
        phoff = struct.unpack_from(order + "I", header, 28)[0]
        phentsize, phnum = struct.unpack_from(order + "HH", header, 42)
        phdr, dyn = order + "IIIII", order + "iI"
    if phentsize < struct.calcsize(phdr) or phnum > 4096:
        raise ValueError("malformed program headers")
    table = os.pread(fd, phnum * phentsize, phoff)
    loads = []
    dynamic = None
    for n in range(phnum):
        fields = struct.unpack_from(phdr, table, n * phentsize)
        if wide:
            kind, offset, vaddr, filesz = fields[0], fields[2], fields[3], fields[5]
        else:
            kind, offset, vaddr, filesz = fields[0], fields[1], fields[2], fields[4]
        if kind == 1:  # PT_LOAD
            loads.append((vaddr, offset, filesz))
        elif kind == 2:  # PT_DYNAMIC
            dynamic = (offset, filesz)
    if dynamic is None:
        raise ValueError("no dynamic section")
    step = struct.calcsize(dyn)
    tags = os.pread(fd, min(dynamic[1], ELF_MAX_DYNAMIC_TAGS * step), dynamic[0])
    needed = []
    strtab = None
    for tag, value in struct.iter_unpack(dyn, tags[: len(tags) - len(tags) % step]):
        if tag == 0:  # DT_NULL
            break
        if tag == 1:  # DT_NEEDED
            needed.append(value)
        elif tag == 5:  # DT_STRTAB: an address, turned into a file offset through the PT_LOAD it falls in
            strtab = next((value - v + o for v, o, size in loads if v <= value < v + size), None)
    if strtab is None:
        raise ValueError("no dynamic string table")
    names = []
    for at in needed:
        raw = os.pread(fd, 4096, strtab + at)
        end = raw.find(b"\0")
        if end < 0:
            raise ValueError("an unterminated string")
        names.append(raw[:end].decode("utf-8", "replace"))
    return names


def needed_of(path):
    """The DT_NEEDED names of the file at ``path``; None when it cannot be read this way.

    None sends the file to the doctor's full reader, which says what is wrong with it (or that it
    is not an ELF file at all). Opened without blocking: a FIFO named *.so is refused, never waited on.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return needed_names(fd)
    except (OSError, struct.error, IndexError, ValueError, OverflowError):
        return None
    finally:
        os.close(fd)


def editable_root(direct_url):
    """The source folder of an editable install (PEP 610 direct_url.json); "" for any other install."""
    try:
        data = json.loads(direct_url) if direct_url else None
    except ValueError:
        return ""
    if not isinstance(data, dict) or not isinstance(data.get("dir_info"), dict) or not data["dir_info"].get("editable"):
        return ""
    from urllib.parse import unquote, urlparse

    url = urlparse(str(data.get("url", "")))
    path = unquote(url.path)
    return path if url.scheme == "file" and os.path.isdir(path) else ""


def scan_folder(location, links, budget):
    """The shared objects under ``location`` that need a library ``links`` matches (or cannot be pre-read).

    Torch itself, vendored library folders, metadata and other environments inside a source tree are
    not walked. ``budget`` is shared by every folder of the run: {"deadline", "objects"}.
    """
    listing = {"location": location, "shared_objects": [], "scanned": 0, "problems": []}
    stack = [location]
    root = os.path.realpath(location)
    seen = set()
    entries = 0
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as found:
                items = list(found)
        except OSError:
            continue
        entries += len(items)
        if entries > SCAN_MAX_ENTRIES:
            listing["problems"].append("%s: stopped after %d entries" % (location, SCAN_MAX_ENTRIES))
            break
        if time.monotonic() > budget["deadline"]:
            listing["problems"].append("%s: the scan stopped after %g s (a slow disk?)" % (location, SCAN_DEADLINE_S))
            break
        for item in items:
            name = item.name
            if name.endswith(SCAN_FILES):
                continue  # a source or data file: asking the file system what it is costs more than the rest
            try:
                is_dir = item.is_dir()
                linked = is_dir and item.is_symlink()
            except OSError:
                continue
            if is_dir:
                if name in SCAN_PRUNED or name.endswith((".dist-info", ".egg-info", ".libs", ".data")):
                    continue
                if (name.startswith(".") or "env" in name) and os.path.isfile(os.path.join(item.path, "pyvenv.cfg")):
                    continue  # another environment inside a source tree: not what this one imports
                if name == "torch" and os.path.isfile(os.path.join(item.path, "version.py")):
                    continue  # torch itself: its libraries are what the others are proven against
                if linked:  # read once, and not when it leads back inside the folder walked (a loop ends here)
                    real = os.path.realpath(item.path)
                    if real in seen or real == root or real.startswith(root + os.sep):
                        continue
                    seen.add(real)
                stack.append(item.path)
            elif name.endswith(".so"):
                if budget["objects"] >= SCAN_MAX_SHARED_OBJECTS:
                    listing["problems"].append("%s: stopped after %d shared objects" % (location, SCAN_MAX_SHARED_OBJECTS))
                    return listing
                budget["objects"] += 1
                listing["scanned"] += 1
                needed = needed_of(item.path)
                if needed is None or any(links.match(n) for n in needed):
                    listing["shared_objects"].append({"path": item.path, "needed": needed})
    return listing


def shared_objects(distributions, links):
    """Every folder the target imports compiled extensions from, scanned: site-packages and editable sources."""
    folders = set(d["location"] for d in distributions if d["location"] and os.path.isdir(d["location"]))
    for dist in distributions:  # `pip install -e` builds its extensions inside the source tree
        if NORMALIZE.sub("-", dist["name"]).lower() != "autoglm-doctor":
            root = editable_root(dist["direct_url"])
            if root:
                folders.add(root)
    budget = {"deadline": time.monotonic() + SCAN_DEADLINE_S, "objects": 0}
    return [scan_folder(folder, links, budget) for folder in sorted(folders)]


def links_pattern(argv):
    """The sonames that make a shared object worth reading (``--links PATTERN``); None when not asked."""
    if len(argv) >= 2 and argv[0] == "--links":
        try:
            return re.compile(argv[1])
        except re.error as exc:
            errors.append("--links: %s" % exc)
    return None


def main(argv):
    cwd = os.getcwd()
    # A program started in cwd sees cwd first (python app.py from there, uvicorn app:app).
    search_path = [cwd] + [p for p in sys.path if p and os.path.abspath(p) != cwd]
    stdlib_dirs = set()
    base_vars = {
        "base": getattr(sys, "base_prefix", sys.prefix),
        "installed_base": getattr(sys, "base_prefix", sys.prefix),
        "platbase": getattr(sys, "base_exec_prefix", sys.exec_prefix),
        "installed_platbase": getattr(sys, "base_exec_prefix", sys.exec_prefix),
    }
    for key in ("stdlib", "platstdlib"):
        try:
            stdlib_dirs.add(os.path.normcase(os.path.abspath(sysconfig.get_path(key, vars=base_vars))))
        except (KeyError, TypeError):
            pass

    def is_stdlib(folder):
        if folder == "<builtin>":
            return True
        norm = os.path.normcase(os.path.abspath(folder))
        return norm in stdlib_dirs or os.path.basename(norm) == "lib-dynload" or norm.endswith(".zip")

    distributions = []
    providers = {}  # module name -> list of folders that provide it
    for index, folder in enumerate(search_path):
        if not os.path.isdir(folder):
            continue
        entries = listdir(folder)
        for entry in entries:
            if entry.endswith(".dist-info") or entry.endswith(".egg-info"):
                distributions.append(read_distribution(folder, entry, index))
                continue
            name = module_name(folder, entry)
            if name is None:
                continue
            seen = providers.setdefault(name, [])
            full = os.path.join(folder, entry)
            if not seen or seen[-1][0] != folder:
                seen.append((folder, full))
    for name in sys.builtin_module_names:
        providers.setdefault(name, []).append(("<builtin>", "<builtin>"))

    # Local folders: the working directory and any path entry that is neither stdlib nor a
    # site directory. A module there that also exists further down the path shadows it.
    site_like = re.compile(r"[/\\](site|dist)-packages$")
    local = {cwd}
    for folder in search_path:
        if is_stdlib(folder) or site_like.search(folder):
            continue
        local.add(folder)
    top_level_owner = {}
    for dist in distributions:
        for top in dist["top_level"]:
            top_level_owner.setdefault(top, dist["name"])
    shadows = []
    for name, found in sorted(providers.items()):
        if len(found) < 2 or found[0][0] not in local:
            continue
        real_folder, real_path = found[1]
        if real_folder == "<builtin>":
            real = "stdlib (built-in)"
        elif is_stdlib(real_folder):
            real = "stdlib (%s)" % real_path
        else:
            real = real_path
        owner = top_level_owner.get(name, "")
        if not owner:
            for dist in distributions:
                if NORMALIZE.sub("_", dist["name"]).lower() == name.lower():
                    owner = dist["name"]
                    break
        shadows.append({"module": name, "path": found[0][1], "shadowed": real, "distribution": owner})

    libc = ""
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""  # "glibc 2.36", instant (no scan of the binary)
    except (AttributeError, OSError, ValueError):
        pass
    uname = platform.uname()
    platform_full = "%s-%s-%s" % (uname.system, uname.release, uname.machine)
    if libc:
        platform_full += "-with-" + libc.replace(" ", "")
    base = getattr(sys, "base_prefix", sys.prefix)
    stdlib = sysconfig.get_path("stdlib") or ""
    conda_name = ""
    if os.path.isdir(os.path.join(sys.prefix, "conda-meta")):
        conda_name = os.environ.get("CONDA_DEFAULT_ENV", "") or os.path.basename(sys.prefix)
    cfg = pyvenv_cfg() or {}
    user_site = ""
    try:
        import site

        candidate = site.getusersitepackages()
        if isinstance(candidate, str) and candidate in sys.path:
            user_site = candidate
    except (AttributeError, OSError):
        pass
    facts = {
        "python": {
            "version": platform.python_version(),
            "implementation": sys.implementation.name,
            "executable": sys.executable,
            "prefix": sys.prefix,
            "base_prefix": base,
            "env_kind": env_kind(),
            "sys_path": search_path,
            "cwd": cwd,
            "platform": sys.platform,
            "platform_full": platform_full,
            "machine": platform.machine(),
            "libc": libc,
            "env_name": conda_name,
            "externally_managed": bool(stdlib) and os.path.isfile(os.path.join(stdlib, "EXTERNALLY-MANAGED")),
            "system_site_packages": cfg.get("include-system-site-packages", "").lower() == "true",
            "user_site": user_site,
        },
        "distributions": distributions,
        "torch": torch_build(search_path[1:] if search_path[0] == cwd else search_path),
        "shadows": shadows,
        "libraries": libraries(search_path[1:] if search_path[0] == cwd else search_path),
        "probe_errors": errors,
    }
    links = links_pattern(argv)
    if links is not None and facts["torch"] is not None and sys.platform.startswith("linux"):
        facts["shared_objects"] = shared_objects(distributions, links)
    sys.stdout.write(json.dumps(facts))
    sys.stdout.flush()


# Run as `python -` (stdin), __name__ is "__main__"; tests import the functions without running it.
if __name__ == "__main__":
    main(sys.argv[1:])
