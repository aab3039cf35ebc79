"""Model-folder facts, read from file headers only.

Locating the model: ``--model`` (relative to the working directory), else the config's
``model_path`` (top level or one section down; relative to the config file's folder), else
``MODEL_WEIGHT_PATH``. A hub id (``owner/name`` that is not an existing path) resolves offline in
the Hugging Face cache. Then every safetensors header is read and validated, the shard index is
cross-checked against the headers, and the small JSON files (config.json, tokenizer_config.json,
preprocessor_config.json) are parsed. Nothing reads a weight file past its header unless
``--verify-hashes`` asks for the sha256 of every weight file, and nothing writes anywhere.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoglm_doctor.probe import hubcache
from autoglm_doctor.probe.safetensors import LFS_POINTER_MAX_BYTES, LFS_PREFIX, SafetensorsHeader, read_header
from autoglm_doctor.safeio import folder_state, loads_json, read_head, read_text

if TYPE_CHECKING:
    from autoglm_doctor.configfile.facts import ConfigFacts
    from autoglm_doctor.gather_options import GatherOptions

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
"""Weight files stored with pickle (loading them can run code)."""
NOT_WEIGHTS = frozenset({"training_args.bin", "optimizer.pt", "scheduler.pt", "trainer_state.pt"})
"""Pickle files a training run leaves next to the weights that are not weights."""
HEADER_THREADS = 8
"""Threads reading headers (I/O latency overlaps; parsing holds the GIL)."""
HEADER_THREADS_FROM = 8
"""Fewer safetensors files than this are read one after the other."""
FOLDER_LISTING_MAX = 400
"""Names kept in the snapshot's folder listing (the count is always exact)."""
EXAMPLES_KEPT = 3
"""Example names kept per summarised problem."""
TOKENIZER_FILES = frozenset(
    {
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.json",
        "vocab.txt",
        "merges.txt",
        "special_tokens_map.json",
        "added_tokens.json",
    }
)
"""Tokenizer file names (besides ``*.model``, ``*.tiktoken`` and ``*.spm`` vocabularies)."""
INDEX_NAME = "model.safetensors.index.json"
PICKLE_INDEX_NAME = "pytorch_model.bin.index.json"
_ENV_REF = re.compile(
    r"\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<default>:?-?[^}]*)?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


@dataclass(frozen=True, slots=True)
class WeightFile:
    """One weight file (safetensors or pickle) in the model folder."""

    name: str
    """File name relative to the model folder."""
    size: int
    """Size in bytes (of the link's target for HF-cache symlinks)."""
    format: str
    """``safetensors`` or ``pickle``."""
    header_ok: bool = False
    """The safetensors header parsed and is consistent with the file (always False for pickle)."""
    read_error: str = ""
    """Why the file could not be opened or read."""
    lfs_pointer: bool = False
    """The file is a Git LFS pointer, not the weights."""
    lfs_size: int | None = None
    """The real size an LFS pointer declares."""
    blob: str = ""
    """Name of the HF-cache blob the file links to (the sha256 for LFS files)."""
    header_bytes: int | None = None
    """Length of the JSON header (safetensors)."""
    header_error: str = ""
    """Why the header does not parse."""
    expected_size: int | None = None
    """``8 + header + data`` as the header declares it."""
    tensor_count: int = 0
    """Tensors in the header."""
    parameter_count: int = 0
    """Elements over the file's tensors."""
    layout_problems: list[str] = field(default_factory=list)
    """First few inconsistent tensor offsets (gaps, overlaps, wrong spans)."""
    layout_problem_count: int = 0
    """Number of inconsistent tensor offsets."""
    out_of_range: list[str] = field(default_factory=list)
    """First few tensors whose offsets reach past the data the file holds."""
    out_of_range_count: int = 0
    """Number of tensors whose offsets reach past the data the file holds."""
    unknown_dtypes: list[str] = field(default_factory=list)
    """Dtypes not in the safetensors format as known here."""
    problems: list[str] = field(default_factory=list)
    """Every problem with this file in one line each (for people reading the snapshot)."""


@dataclass(frozen=True, slots=True)
class ShardGap:
    """Tensors the index assigns to a shard whose header does not have them."""

    shard: str
    """The shard file."""
    count: int
    """How many indexed tensors are absent from its header."""
    examples: list[str] = field(default_factory=list)
    """The first few of their names."""


@dataclass(frozen=True, slots=True)
class ShardIndex:
    """A shard index (``model.safetensors.index.json`` or ``pytorch_model.bin.index.json``)."""

    name: str
    """The index file's name."""
    error: str = ""
    """Why it does not parse or has no weight_map."""
    line: int | None = None
    """Line of the parse error."""
    column: int | None = None
    """Column of the parse error."""
    shards: list[str] = field(default_factory=list)
    """Shard files it names, sorted."""
    tensor_count: int = 0
    """Tensors in its weight_map."""
    total_size: int | None = None
    """metadata.total_size, when given."""
    missing_shards: list[str] = field(default_factory=list)
    """Named shards that are not in the folder."""
    gaps: list[ShardGap] = field(default_factory=list)
    """Shards whose header lacks tensors the index assigns to them."""


@dataclass(frozen=True, slots=True)
class JsonProblem:
    """A small JSON file of the model folder that does not parse."""

    file: str
    """File name."""
    message: str
    """The parser's complaint."""
    line: int | None = None
    """1-based line."""
    column: int | None = None
    """1-based column."""


@dataclass(frozen=True, slots=True)
class Reference:
    """A file one of the folder's JSON files names (auto_map code, processor files)."""

    file: str
    """The file that must exist, relative to the model folder."""
    named_by: str
    """Which JSON file and key names it (``config.json auto_map.AutoModel``)."""
    present: bool
    """Whether it exists."""


@dataclass(frozen=True, slots=True)
class IncompleteFile:
    """A ``*.incomplete`` file: a download that never finished."""

    path: str
    """Relative to the cache repo folder (``blobs/<hash>.incomplete``) or the model folder."""
    size: int
    """Bytes it got before stopping."""


@dataclass(frozen=True, slots=True)
class HashCheck:
    """One file's sha256 against its reference (``--verify-hashes``)."""

    file: str
    """File name relative to the model folder."""
    sha256: str = ""
    """What the file hashes to; empty when it could not be read."""
    expected: str = ""
    """The reference sha256; empty when nothing names one."""
    reference: str = ""
    """Where ``expected`` comes from: ``hf-cache-blob``, ``hf-local-dir``, ``manifest:<name>``."""
    error: str = ""
    """Why it could not be hashed."""


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """The located model and what its headers say.

    Other areas read these: cuda.memory (parameter bytes, attention shape for the KV cache),
    config.values (max_position_embeddings, auto_map), smoke.load-infer (path).
    """

    path: str = ""
    """Where the model folder is (resolved, absolute); empty when nothing was located.

    A location that was given but does not exist is kept here (``exists`` is then False).
    """
    source: str = ""
    """How it was located: ``--model``, ``config``, ``MODEL_WEIGHT_PATH`` or ``hub-cache``."""
    hub_id: str = ""
    """The hub id the user gave (``zai-org/AutoGLM-Phone-9B``), when it came from the HF cache."""
    exists: bool = False
    """The path exists and is a readable folder."""
    parameter_count: int | None = None
    """Total number of parameters from the safetensors headers."""
    parameter_bytes: int | None = None
    """Total bytes of the tensors as stored."""
    bytes_by_dtype: dict[str, int] = field(default_factory=dict)
    """Stored bytes per safetensors dtype (``BF16``, ``F16``, ``F32``...)."""
    torch_dtype: str = ""
    """``torch_dtype`` (or ``dtype``) from config.json."""
    max_position_embeddings: int | None = None
    """From config.json (or its text_config for vision-language models); ``seq_length`` or
    ``n_positions`` when the model names its context length that way (ChatGLM, GPT-2)."""
    auto_map: dict[str, Any] = field(default_factory=dict)
    """config.json's auto_map: non-empty means the model needs trust_remote_code."""
    architectures: list[str] = field(default_factory=list)
    """config.json's architectures."""
    model_type: str = ""
    """config.json's model_type."""
    num_hidden_layers: int | None = None
    """Transformer layers (for the KV-cache estimate)."""
    hidden_size: int | None = None
    """Hidden size (for the KV-cache estimate)."""
    num_attention_heads: int | None = None
    """Attention heads."""
    num_key_value_heads: int | None = None
    """KV heads (grouped-query attention); defaults to num_attention_heads."""
    head_dim: int | None = None
    """Per-head dimension when config.json gives it."""
    name_or_path: str = ""
    """config.json's ``_name_or_path`` (often the hub id the model was saved from)."""
    intermediate_size: int | None = None
    """The MLP width of the language model (for the activation estimate of a served model)."""
    vocab_size: int | None = None
    """The vocabulary size (logits of the sampler in a served model's memory profile)."""
    vision_shape: dict[str, int] = field(default_factory=dict)
    """Integers of config.json's vision_config (depth, hidden_size, out_hidden_size, intermediate_size,
    patch_size, spatial_merge_size, temporal_patch_size...) and the image processor's max_pixels."""

    # -- where it came from ------------------------------------------------------------------
    given: str = ""
    """The location exactly as written (``--model`` value, config value, MODEL_WEIGHT_PATH)."""
    named_by: str = ""
    """Who named it: ``--model``, ``config`` or ``MODEL_WEIGHT_PATH`` (also for hub ids)."""
    config_file: str = ""
    """The config file that named it (when ``named_by`` is ``config``)."""
    config_key: str = ""
    """The key there (``model_path`` or ``model.model_path``)."""
    config_line: int | None = None
    """Line of that key's value in the config file, when found."""
    config_column: int | None = None
    """Column of that value, when the config parser knows it."""
    config_candidate: str = ""
    """A relative config path resolved against the config file's folder."""
    cwd_candidate: str = ""
    """The same relative path resolved against the working directory, when that differs."""
    unset_vars: list[str] = field(default_factory=list)
    """Environment variables the location references that are not set."""
    home: str = ""
    """Home folder of the user the doctor ran as."""
    user: str = ""
    """That user's name."""
    host_platform: str = ""
    """``sys.platform`` of the machine the facts were gathered on."""
    is_file: bool = False
    """The path is a file, not a folder."""
    access_error: str = ""
    """Why the folder cannot be read (permissions); empty when it can."""
    hub_cache: str = ""
    """The Hugging Face cache folder searched for a hub id."""
    hub_repo_dir: str = ""
    """``models--owner--name`` folder in the cache holding the model (also for paths into the cache)."""
    revision: str = ""
    """The cache snapshot's commit."""
    hub_problem: str = ""
    """Why a hub id did not resolve, or what was odd about the snapshot chosen."""
    git_checkout: bool = False
    """The folder is a git clone (has ``.git``)."""

    # -- what the folder holds ----------------------------------------------------------------
    folder_files: list[str] = field(default_factory=list)
    """Top-level file names, sorted (the first FOLDER_LISTING_MAX)."""
    folder_file_count: int = 0
    """How many top-level files there are."""
    files: list[WeightFile] = field(default_factory=list)
    """Every weight file (safetensors and pickle), sorted by name."""
    index: ShardIndex | None = None
    """The safetensors shard index, when there is one."""
    pickle_index: ShardIndex | None = None
    """The pickle shard index (``pytorch_model.bin.index.json``), when there is one."""
    has_config: bool = False
    """config.json exists."""
    json_problems: list[JsonProblem] = field(default_factory=list)
    """config.json, index and processor/tokenizer JSON files that do not parse."""
    tokenizer_class: str = ""
    """tokenizer_config.json's tokenizer_class."""
    tokenizer_files: list[str] = field(default_factory=list)
    """Tokenizer files present (tokenizer.json, tokenizer_config.json, *.model, vocab.*, merges.txt...)."""
    vision: bool = False
    """A vision-language model (config.json has vision_config, or processor files are present)."""
    references: list[Reference] = field(default_factory=list)
    """Files the JSON files name (auto_map code, processor files) and whether they exist."""
    is_adapter: bool = False
    """The folder holds a PEFT adapter (adapter_config.json), not a full model."""
    adapter_base: str = ""
    """The adapter's base_model_name_or_path: the model it needs."""
    lfs_pointers: list[str] = field(default_factory=list)
    """Files that are Git LFS pointers instead of content."""
    dangling_links: list[str] = field(default_factory=list)
    """Symlinks whose target is gone (an HF-cache snapshot entry without its blob)."""
    incomplete: list[IncompleteFile] = field(default_factory=list)
    """``*.incomplete`` files of interrupted downloads."""

    # -- --verify-hashes ------------------------------------------------------------------------
    hashes_verified: bool = False
    """``--verify-hashes`` ran."""
    hash_checks: list[HashCheck] = field(default_factory=list)
    """One entry per hashed file."""
    manifest: str = ""
    """The sha256 manifest used, when there was one."""
    manifest_missing: list[str] = field(default_factory=list)
    """Files the manifest names that are not in the folder."""
    manifest_bad_lines: list[int] = field(default_factory=list)
    """Manifest lines that are not ``sha256sum`` lines."""


@dataclass(frozen=True, slots=True)
class _Location:
    """Where the model was named, as written, and the folder a relative path resolves against."""

    given: str
    named_by: str
    base: Path
    config_file: str = ""
    config_key: str = ""


def gather(options: GatherOptions, config: ConfigFacts | None = None) -> ModelFacts | None:
    """Locate the model and read what its folder holds (None: no model was named anywhere)."""
    env = dict(os.environ)
    where = _locate(options, config, env)
    if where is None:
        return None
    common: dict[str, Any] = {
        "given": where.given,
        "named_by": where.named_by,
        "source": where.named_by,
        "config_file": where.config_file,
        "config_key": where.config_key,
        "config_line": None,
        "home": str(Path.home()),
        "user": _user(),
        "host_platform": sys.platform,
    }
    if where.config_file and config is not None:
        line, column = config.position(where.config_key) if hasattr(config, "position") else (None, None)
        common["config_line"] = line or _key_line(where.config_file, options.cwd, where.config_key)
        common["config_column"] = column
    text, unset = _expand_env(where.given, env)
    if unset:
        return ModelFacts(unset_vars=unset, **common)
    if _foreign_layout(text):
        return ModelFacts(path=text, **common)
    expanded = os.path.expanduser(text)
    primary = Path(os.path.abspath(where.base / expanded))
    if where.named_by == "config" and not Path(expanded).is_absolute():
        from_cwd = Path(os.path.abspath(options.cwd / expanded))
        common["config_candidate"] = str(primary)
        if from_cwd != primary:
            common["cwd_candidate"] = str(from_cwd)
            if not _lexists(primary) and _lexists(from_cwd):
                primary = from_cwd
    # owner/name that is no path here is a hub id, unless its first part is a local folder (models/glm)
    owner_dirs = [Path(common.get(k) or primary).parent for k in ("config_candidate", "cwd_candidate")]
    if not _lexists(primary) and hubcache.looks_like_hub_id(text) and not any(folder_state(d)[0] for d in owner_dirs):
        lookup = hubcache.resolve(text, env)
        common.update(
            hub_id=text,
            hub_cache=lookup.cache,
            hub_repo_dir=lookup.repo_dir,
            revision=lookup.revision,
            hub_problem=lookup.problem,
        )
        if not lookup.snapshot:  # keep the local path: it may be a folder name with a typo
            partial = (
                hubcache.incomplete_downloads(Path(lookup.repo_dir), Path(lookup.repo_dir)) if lookup.repo_dir else []
            )
            return ModelFacts(path=str(primary), incomplete=[IncompleteFile(p, s) for p, s in partial], **common)
        common["source"] = "hub-cache"
        primary = Path(lookup.snapshot)
    return _inspect(primary, common, options.verify_hashes, env)


def _locate(options: GatherOptions, config: ConfigFacts | None, env: dict[str, str]) -> _Location | None:
    cwd = Path(options.cwd)
    if options.model:
        return _Location(options.model, "--model", cwd)
    if config is not None and config.path:
        key, value = _config_model_path(config.data, config.engine)
        config_path = Path(config.path)
        if key and not (isinstance(value, str) and value.strip()):
            # an unset ${VAR} may have been interpolated to nothing: the raw text still names the variable
            raw = _raw_value(config_path if config_path.is_absolute() else cwd / config_path, key)
            value = raw if _ENV_REF.search(raw) else value
        if isinstance(value, str) and value.strip():
            folder = (config_path if config_path.is_absolute() else cwd / config_path).parent
            return _Location(value.strip(), "config", folder, config_file=config.path, config_key=key)
    if env.get("MODEL_WEIGHT_PATH", "").strip():
        return _Location(env["MODEL_WEIGHT_PATH"].strip(), "MODEL_WEIGHT_PATH", cwd)
    return None


def _config_model_path(data: dict[str, Any], engine: str = "") -> tuple[str, Any]:
    if engine:  # a launch command: --model / --model-path / vllm serve's positional
        from autoglm_doctor.configfile.launch import setting

        found = setting(data, engine, "model")
        return found if found is not None else ("", None)
    if "model_path" in data:
        return "model_path", data["model_path"]
    for section, value in data.items():
        if isinstance(value, dict) and "model_path" in value:
            return f"{section}.model_path", value["model_path"]
    return "", None


def _raw_value(path: Path, key: str) -> str:
    """The text after ``key:`` on its line in the config file, unquoted; empty when not found."""
    leaf = re.escape(key.rsplit(".", 1)[-1])
    pattern = re.compile(rf"^\s*[\"']?{leaf}[\"']?\s*:(?P<value>.*)$")  # linear: stripped below
    try:
        lines = read_text(path, "config", errors="replace").splitlines()
    except OSError:
        return ""
    for line in lines:
        found = pattern.match(line)
        if found:
            return found["value"].strip().rstrip(",").strip().split(" #", 1)[0].strip().strip("\"'")
    return ""


def _key_line(config_file: str, cwd: Path, key: str) -> int | None:
    """Line of ``key``'s last part in the config file (a plain text scan of the bounded read)."""
    path = Path(config_file)
    path = path if path.is_absolute() else cwd / path
    leaf = re.escape(key.rsplit(".", 1)[-1])
    pattern = re.compile(rf"^\s*[\"']?{leaf}[\"']?\s*:")
    try:
        lines = read_text(path, "config", errors="replace").splitlines()
    except OSError:
        return None
    for number, line in enumerate(lines, 1):
        if pattern.match(line):
            return number
    return None


def _user() -> str:
    import getpass  # rarely needed; it pulls in termios

    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return ""


def _expand_env(text: str, env: dict[str, str]) -> tuple[str, list[str]]:
    """Substitute ``${VAR}``/``$VAR`` left in the value; the names referenced but unset."""
    unset: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        default = match.group("default") or ""
        if name in env and (env[name] or not default.startswith(":")):
            return env[name]
        if default:
            return default.lstrip(":").removeprefix("-")
        if name not in unset:
            unset.append(name)
        return match.group(0)

    return _ENV_REF.sub(substitute, text), unset


def _foreign_layout(text: str) -> bool:
    """A path written for another operating system's layout (a Windows path on Linux or macOS)."""
    if sys.platform == "win32":
        return False
    return bool(re.match(r"^[A-Za-z]:[\\/]", text) or text.startswith("\\\\"))


def _lexists(path: Path) -> bool:
    return os.path.lexists(path)


def _inspect(path: Path, common: dict[str, Any], verify_hashes: bool, env: dict[str, str]) -> ModelFacts:
    """Stat the location, then read the folder's headers when it is a readable folder."""
    repo_dir = Path(common["hub_repo_dir"]) if common.get("hub_repo_dir") else hubcache.repo_dir_containing(path)
    if repo_dir is not None and not common.get("hub_repo_dir"):
        common["hub_repo_dir"] = str(repo_dir)
    try:
        path.stat()
    except PermissionError as exc:  # a parent folder that may not be entered: it exists, we cannot tell more
        return ModelFacts(path=str(path), access_error=exc.strerror or str(exc), **common)
    except (OSError, ValueError):
        return ModelFacts(path=str(path), **common)
    if not path.is_dir():
        return ModelFacts(path=str(path), is_file=True, **common)
    try:
        entries = list(os.scandir(path))
    except OSError as exc:
        return ModelFacts(path=str(path), access_error=exc.strerror or str(exc), **common)
    return _FolderReader(path, entries, repo_dir).facts(common, verify_hashes, env)


class _FolderReader:
    """Reads one model folder: headers, shard index, the small JSON files."""

    def __init__(self, folder: Path, entries: list[os.DirEntry[str]], repo_dir: Path | None) -> None:
        self.folder = folder
        self.repo_dir = repo_dir
        self.sizes: dict[str, int] = {}
        self.links: dict[str, str] = {}
        self.dangling: list[str] = []
        self.git = False
        for entry in entries:
            if entry.name == ".git":
                self.git = True
            if entry.name.startswith("."):
                continue
            try:
                if not entry.is_file():
                    if entry.is_symlink() and not os.path.exists(entry.path):
                        self.dangling.append(entry.name)
                    continue
                self.sizes[entry.name] = entry.stat().st_size
            except OSError:
                continue
            if entry.is_symlink():
                try:
                    self.links[entry.name] = os.path.basename(os.readlink(entry.path))
                except OSError:
                    pass
        self.json_problems: list[JsonProblem] = []
        self.lfs: list[str] = []
        self.headers: dict[str, SafetensorsHeader] = {}
        self.read: dict[str, SafetensorsHeader | OSError] = {}

    def facts(self, common: dict[str, Any], verify_hashes: bool, env: dict[str, str]) -> ModelFacts:
        names = sorted(self.sizes)
        self._read_headers([n for n in names if n.endswith(".safetensors")])
        files = [self._weight_file(name) for name in names if _is_weight(name)]
        self.lfs.extend(name for name in names if not _is_weight(name) and self._is_lfs_pointer(name))
        index = self._index(INDEX_NAME, check_headers=True)
        pickle_index = self._index(PICKLE_INDEX_NAME, check_headers=False)
        counted = set(index.shards) if index is not None and not index.error else set(self.headers)
        params = bytes_total = 0
        by_dtype: dict[str, int] = {}
        for name in counted:
            header = self.headers.get(name)
            if header is None or header.error:
                continue
            params += header.parameter_count
            for dtype, count in header.bytes_by_dtype.items():
                by_dtype[dtype] = by_dtype.get(dtype, 0) + count
                bytes_total += count
        model_config = self._json("config.json") or {}
        tokenizer_config = self._json("tokenizer_config.json") or {}
        preprocessor = self._json("preprocessor_config.json") or {}
        processor = self._json("processor_config.json") or {}
        adapter = self._json("adapter_config.json") or {}
        vision = bool(
            "vision_config" in model_config
            or {"preprocessor_config.json", "processor_config.json", "video_preprocessor_config.json"} & set(names)
        )
        hashes: dict[str, Any] = {}
        if verify_hashes:
            hashes = self._verify_hashes(files, env)
        incomplete = [IncompleteFile(p, s) for p, s in hubcache.incomplete_downloads(self.folder, self.repo_dir)]
        incomplete += [IncompleteFile(n, self.sizes[n]) for n in names if n.endswith(".incomplete")]
        shape = _config_facts(model_config)
        pixels = _max_pixels(preprocessor)
        if pixels and shape["vision_shape"]:
            shape["vision_shape"]["max_pixels"] = pixels
        return ModelFacts(
            path=str(self.folder),
            exists=True,
            parameter_count=params if counted and by_dtype else None,
            parameter_bytes=bytes_total if counted and by_dtype else None,
            bytes_by_dtype=dict(sorted(by_dtype.items())),
            git_checkout=self.git,
            folder_files=names[:FOLDER_LISTING_MAX],
            folder_file_count=len(names),
            files=files,
            index=index,
            pickle_index=pickle_index,
            has_config="config.json" in self.sizes,
            json_problems=self.json_problems,
            tokenizer_class=str(tokenizer_config.get("tokenizer_class") or ""),
            tokenizer_files=[n for n in names if _is_tokenizer_file(n)],
            vision=vision,
            references=self._references(model_config, tokenizer_config, preprocessor, processor, vision),
            adapter_base=str(adapter.get("base_model_name_or_path") or "")
            if "adapter_config.json" in self.sizes
            else "",
            is_adapter="adapter_config.json" in self.sizes,
            lfs_pointers=sorted(self.lfs),
            dangling_links=sorted(self.dangling),
            incomplete=incomplete,
            **shape,
            **hashes,
            **common,
        )

    def _read_headers(self, names: list[str]) -> None:
        """Read every header; threads overlap the open/read latency of network and spinning disks."""

        def one(name: str) -> SafetensorsHeader | OSError:
            try:
                return read_header(self.folder / name)
            except OSError as exc:
                return exc

        if len(names) < HEADER_THREADS_FROM:
            self.read = {name: one(name) for name in names}
            return
        from concurrent.futures import ThreadPoolExecutor  # pulls in logging: only for many shards

        with ThreadPoolExecutor(max_workers=HEADER_THREADS) as pool:
            self.read = dict(zip(names, pool.map(one, names), strict=True))

    def _weight_file(self, name: str) -> WeightFile:
        size = self.sizes[name]
        blob = self.links.get(name, "")
        if name.endswith(".safetensors"):
            header = self.read[name]
            if isinstance(header, OSError):
                return WeightFile(name, size, "safetensors", read_error=header.strerror or str(header), blob=blob)
            self.headers[name] = header
            if header.lfs is not None:
                self.lfs.append(name)
            return _safetensors_file(name, header, blob)
        pointer = self._is_lfs_pointer(name)
        if pointer:
            self.lfs.append(name)
        return WeightFile(
            name,
            size,
            "pickle",
            lfs_pointer=pointer,
            blob=blob,
            problems=["a Git LFS pointer, not the weights"] if pointer else [],
        )

    def _is_lfs_pointer(self, name: str) -> bool:
        if self.sizes[name] > LFS_POINTER_MAX_BYTES:
            return False
        try:
            return read_head(self.folder / name, len(LFS_PREFIX)) == LFS_PREFIX  # a FIFO is never opened blocking
        except OSError:
            return False

    def _json(self, name: str) -> dict[str, Any] | None:
        if name not in self.sizes:
            return None
        try:
            text = read_text(self.folder / name, "model metadata")
        except (OSError, UnicodeDecodeError) as exc:
            self.json_problems.append(JsonProblem(name, f"cannot read it: {exc}"))
            return None
        if text.startswith(LFS_PREFIX.decode()):
            return None  # reported as an LFS pointer
        try:
            data = loads_json(text)
        except json.JSONDecodeError as exc:
            self.json_problems.append(JsonProblem(name, exc.msg, exc.lineno, exc.colno))
            return None
        except ValueError as exc:  # nested too deeply, a number too long to read
            self.json_problems.append(JsonProblem(name, str(exc), 1, 1))
            return None
        if not isinstance(data, dict):
            self.json_problems.append(JsonProblem(name, f"holds a JSON {type(data).__name__}, not an object", 1, 1))
            return None
        return data

    def _index(self, name: str, *, check_headers: bool) -> ShardIndex | None:
        if name not in self.sizes:
            return None
        problems_before = len(self.json_problems)
        data = self._json(name)
        if data is None:
            if name in self.lfs:
                return ShardIndex(name, error="a Git LFS pointer")
            problem = self.json_problems[problems_before] if len(self.json_problems) > problems_before else None
            return ShardIndex(
                name,
                error=problem.message if problem else "unreadable",
                line=problem.line if problem else None,
                column=problem.column if problem else None,
            )
        weight_map = data.get("weight_map")
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            return ShardIndex(name, error="it has no weight_map of tensor name -> shard file")
        metadata = data.get("metadata")
        total = metadata.get("total_size") if isinstance(metadata, dict) else None
        shards = sorted(set(weight_map.values()))
        missing = [s for s in shards if s not in self.sizes and s not in self.dangling]
        missing += [s for s in shards if s in self.dangling]
        gaps: list[ShardGap] = []
        if check_headers:
            absent: dict[str, list[str]] = {}
            for tensor, shard in weight_map.items():
                header = self.headers.get(shard)
                if header is not None and not header.error and tensor not in header.tensors:
                    absent.setdefault(shard, []).append(tensor)
            gaps = [ShardGap(s, len(t), sorted(t)[:EXAMPLES_KEPT]) for s, t in sorted(absent.items())]
        return ShardIndex(
            name,
            shards=shards,
            tensor_count=len(weight_map),
            total_size=total if isinstance(total, int) and not isinstance(total, bool) else None,
            missing_shards=sorted(missing),
            gaps=gaps,
        )

    def _references(
        self,
        model_config: dict[str, Any],
        tokenizer_config: dict[str, Any],
        preprocessor: dict[str, Any],
        processor: dict[str, Any],
        vision: bool,
    ) -> list[Reference]:
        named: dict[str, str] = {}
        for doc_name, doc in (
            ("config.json", model_config),
            ("tokenizer_config.json", tokenizer_config),
            ("preprocessor_config.json", preprocessor),
            ("processor_config.json", processor),
        ):
            auto_map = doc.get("auto_map")
            if not isinstance(auto_map, dict):
                continue
            for auto_class, target in auto_map.items():
                for item in target if isinstance(target, list) else [target]:
                    if isinstance(item, str) and "." in item and "--" not in item:
                        module = item.rsplit(".", 1)[0].replace(".", "/") + ".py"
                        named.setdefault(module, f"{doc_name} auto_map.{auto_class}")
        if vision and "processor_config.json" not in self.sizes:
            named.setdefault("preprocessor_config.json", "the vision model (its image processor's settings)")
        return [Reference(file, by, (self.folder / file).is_file()) for file, by in sorted(named.items())]

    def _verify_hashes(self, files: list[WeightFile], env: dict[str, str]) -> dict[str, Any]:
        from autoglm_doctor.probe import hashing  # only --verify-hashes needs hashlib and the hashers

        manifest = hashing.read_manifest(self.folder)
        local_etags = hubcache.local_dir_etags(self.folder)
        expected: dict[str, tuple[str, str]] = {}
        for weight in files:
            if hashing.SHA256_HEX.match(weight.blob):
                expected[weight.name] = (weight.blob, "hf-cache-blob")
            elif weight.name in local_etags:
                expected[weight.name] = (local_etags[weight.name], "hf-local-dir")
        missing: list[str] = []
        outside: list[str] = []
        if manifest is not None:
            for name, digest in manifest.hashes.items():
                if not hashing.inside_folder(name):
                    outside.append(name)  # never opened: a manifest must not make the doctor read /etc/shadow
                elif (self.folder / name).is_file():
                    expected.setdefault(name, (digest, f"manifest:{manifest.name}"))
                else:
                    missing.append(name)
        to_hash = sorted({w.name for w in files if not w.lfs_pointer and not w.read_error} | set(expected))
        outcomes = hashing.hash_files([self.folder / n for n in to_hash], progress=sys.stderr.isatty())
        checks = []
        for name, outcome in zip(to_hash, outcomes, strict=True):
            digest, reference = expected.get(name, ("", ""))
            checks.append(HashCheck(name, outcome.sha256, digest, reference, outcome.error))
        if manifest is not None:
            checks += [HashCheck(name, "", "", f"manifest:{manifest.name}", hashing.OUTSIDE) for name in outside]
        return {
            "hashes_verified": True,
            "hash_checks": checks,
            "manifest": manifest.name if manifest else "",
            "manifest_missing": sorted(missing),
            "manifest_bad_lines": manifest.bad_lines if manifest else [],
        }


def _is_tokenizer_file(name: str) -> bool:
    return name in TOKENIZER_FILES or name.endswith((".model", ".tiktoken", ".spm"))


def _is_weight(name: str) -> bool:
    return name.endswith(".safetensors") or (name.endswith(PICKLE_SUFFIXES) and name not in NOT_WEIGHTS)


def _safetensors_file(name: str, header: SafetensorsHeader, blob: str) -> WeightFile:
    problems = []
    if header.error:
        problems.append(header.error)
    problems += header.layout_problems + header.out_of_range
    expected = header.expected_size
    if expected is not None and expected != header.size:
        problems.append(f"{header.size} bytes on disk, the header describes {expected}")
    ok = not header.error and not header.layout_problem_count and expected == header.size
    return WeightFile(
        name=name,
        size=header.size,
        format="safetensors",
        header_ok=ok,
        lfs_pointer=header.lfs is not None,
        lfs_size=header.lfs.size if header.lfs else None,
        blob=blob,
        header_bytes=header.header_bytes,
        header_error="" if header.lfs else header.error,
        expected_size=expected,
        tensor_count=len(header.tensors),
        parameter_count=header.parameter_count,
        layout_problems=header.layout_problems,
        layout_problem_count=header.layout_problem_count,
        out_of_range=header.out_of_range,
        out_of_range_count=header.out_of_range_count,
        unknown_dtypes=header.unknown_dtypes,
        problems=problems,
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _config_facts(config: dict[str, Any]) -> dict[str, Any]:
    """The fields of config.json other checks read; text_config fills in for vision-language models."""
    text: dict[str, Any] = next(
        (config[k] for k in ("text_config", "llm_config", "language_config") if isinstance(config.get(k), dict)),
        {},
    )

    def pick(*keys: str) -> Any:
        for source in (config, text):
            for key in keys:
                if source.get(key) is not None:
                    return source[key]
        return None

    dtype = pick("torch_dtype", "dtype")
    architectures = config.get("architectures")
    auto_map = config.get("auto_map")
    return {
        "torch_dtype": dtype if isinstance(dtype, str) else "",
        "max_position_embeddings": _int(pick("max_position_embeddings", "seq_length", "n_positions")),
        "auto_map": auto_map if isinstance(auto_map, dict) else {},
        "architectures": [a for a in architectures if isinstance(a, str)] if isinstance(architectures, list) else [],
        "model_type": str(config.get("model_type") or ""),
        "name_or_path": str(config.get("_name_or_path") or ""),
        "num_hidden_layers": _int(pick("num_hidden_layers", "num_layers", "n_layer")),
        "hidden_size": _int(pick("hidden_size", "n_embd", "d_model")),
        "num_attention_heads": _int(pick("num_attention_heads", "n_head")),
        "num_key_value_heads": _int(pick("num_key_value_heads", "multi_query_group_num")),
        "head_dim": _int(pick("head_dim", "kv_channels")),
        "intermediate_size": _int(pick("intermediate_size", "ffn_hidden_size", "n_inner")),
        "vocab_size": _int(pick("vocab_size", "padded_vocab_size")),
        "vision_shape": _vision_shape(config),
    }


def _max_pixels(preprocessor: dict[str, Any]) -> int | None:
    """The largest image the processor keeps (``max_pixels``, or ``size.longest_edge`` as Qwen2-VL/GLM-4.1V name it)."""
    size = preprocessor.get("size")
    value = preprocessor.get("max_pixels")
    if value is None and isinstance(size, dict):
        value = size.get("max_pixels", size.get("longest_edge"))
    return _int(value)


def _vision_shape(config: dict[str, Any]) -> dict[str, int]:
    vision = config.get("vision_config")
    if not isinstance(vision, dict):
        return {}
    return {str(k): v for k, v in vision.items() if isinstance(v, int) and not isinstance(v, bool)}
