"""weights.*: locating the model and proving the folder complete from headers only (weights area)."""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

from autoglm_doctor.context import CheckContext
from autoglm_doctor.model import Finding, Location, error, info, warning
from autoglm_doctor.probe.hashing import OUTSIDE
from autoglm_doctor.probe.hubcache import UNREADABLE_CACHE, hub_id_of, looks_like_hub_id
from autoglm_doctor.probe.snapshot import Snapshot
from autoglm_doctor.probe.weights import ModelFacts, WeightFile
from autoglm_doctor.registry import check

_SHARD_NAME = re.compile(r"^(?P<stem>.+)-(?P<n>\d{5})-of-(?P<total>\d{5})\.(?P<ext>safetensors|bin)$")
_MAX_LISTED = 5

# tokenizer_class family (lower case, "Tokenizer"/"Fast" removed) -> files its slow tokenizer reads
_BPE = {"gpt2", "qwen2", "roberta", "bart", "codegen", "clip", "whisper", "longformer", "blenderbot", "led", "deberta"}
_WORDPIECE = {"bert", "distilbert", "electra", "mpnet", "funnel", "layoutlm", "squeezebert"}
_SENTENCEPIECE = {
    "llama",
    "codellama",
    "t5",
    "mt5",
    "gemma",
    "albert",
    "camembert",
    "xlnet",
    "xlmroberta",
    "mbart",
    "mbart50",
    "pegasus",
    "bigbird",
    "chatglm",
    "chatglm4",
    "baichuan",
    "internlm",
    "internlm2",
}


# --------------------------------------------------------------------------------------------
# weights.path
# --------------------------------------------------------------------------------------------


@check(
    "weights.path",
    title="Model location",
    needs=("model-given",),
    why=(
        "A model path copied from another machine, an unset MODEL_WEIGHT_PATH or a relative path that "
        "only works from one folder makes the service die at start-up with an unhelpful hub error."
    ),
    fix="Point --model, the config's model_path or MODEL_WEIGHT_PATH at an absolute path that exists here.",
)
def weights_path(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """The weight location exists here, is a readable folder, is portable, and its env var is set."""
    m = snap.model
    assert m is not None  # guaranteed by the need
    where = _named_where(m)
    location = _config_location(m)
    if m.unset_vars:
        names = ", ".join(m.unset_vars)
        yield error(
            "weights.env-unset",
            f"{where} is {m.given!r}, but {names} {'is' if len(m.unset_vars) == 1 else 'are'} not set",
            fix=f"export {m.unset_vars[0]}=/absolute/path/to/the/model   (in the service's environment too)",
            location=location,
            observed=f"{m.unset_vars[0]} unset",
            expected="the model folder's absolute path",
        )
        return
    if m.hub_id and m.source != "hub-cache":
        yield from _hub_not_found(m, where, location)
        return
    foreign = _foreign_layout(m)
    if foreign:
        yield error(
            "weights.foreign-path",
            f"{where} is {m.given!r}, {foreign}: it cannot exist on this {m.host_platform or 'machine'}",
            fix=_set_path_fix(m),
            location=location,
            observed=m.given,
            expected="a path on this machine",
        )
        return
    other_home = _other_home(m)
    missing = not m.exists and not m.is_file and not m.access_error
    if missing:
        yield _missing(m, where, location, other_home)
        return
    if m.is_file:
        folder = str(Path(m.path).parent)
        yield error(
            "weights.not-a-folder",
            f"{where} names the file {m.path}; transformers loads a model folder",
            fix=f"point it at the folder that holds config.json and the weights, e.g. {folder}",
            location=location,
            observed=m.path,
            expected="a folder",
        )
    elif m.access_error:
        yield error(
            "weights.unreadable",
            f"the model folder {m.path} cannot be read by {m.user or 'this user'}: {m.access_error}",
            fix=f"sudo chmod -R a+rX {shlex.quote(m.path)}   (or run the service as the folder's owner)",
            location=location,
            observed=m.access_error,
            expected="readable",
        )
    if other_home:
        yield warning(
            "weights.foreign-home",
            f"{where} points into {other_home}, another user's home folder: it works here only while "
            f"they keep it there and let {m.user or 'you'} read it",
            fix=_set_path_fix(m),
            location=location,
            observed=m.path,
            expected="a shared location (e.g. /models/...) or a path under your own home",
        )
    if m.cwd_candidate:
        yield _relative_warning(m, location)
    if m.named_by == "config" and m.given.startswith("~"):
        yield warning(
            "weights.path-tilde",
            f"{where} starts with '~': transformers does not expand it, so from_pretrained treats it "
            "as a hub id and fails",
            fix=f"write the absolute path in {m.config_key or 'model_path'}: {m.path}",
            location=location,
            observed=m.given,
            expected=m.path,
        )
    if m.hub_problem and m.exists:  # a snapshot was used despite a problem (the failure is weights.hub-*)
        yield warning("weights.hub-ref", f"{m.hub_id or 'the cache repo'}: {m.hub_problem}", location=location)
    if m.exists:
        via = f"hub cache, {m.hub_id} @ {m.revision[:12]}" if m.source == "hub-cache" else m.named_by
        yield info("weights.located", f"model folder {m.path} (from {via})")


def _named_where(m: ModelFacts) -> str:
    if m.named_by == "config":
        return f"{m.config_key or 'model_path'} in {m.config_file}"
    return m.named_by or "the model location"


def _config_location(m: ModelFacts) -> Location | None:
    if m.named_by != "config" or not m.config_file:
        return None
    return Location(m.config_file, m.config_line, m.config_column if m.config_line else None)


def _set_path_fix(m: ModelFacts) -> str:
    if m.named_by == "config":
        return f"edit {m.config_file}: set {m.config_key or 'model_path'} to the model's absolute path on this machine"
    if m.named_by == "MODEL_WEIGHT_PATH":
        return "export MODEL_WEIGHT_PATH=/absolute/path/to/the/model"
    return "pass --model with the model's absolute path on this machine"


def _hub_not_found(m: ModelFacts, where: str, location: Location | None) -> Iterator[Finding]:
    if m.hub_repo_dir:
        count = len(m.incomplete)
        partial = f"; an interrupted download left {count} *.incomplete file{'s' if count > 1 else ''}" if count else ""
        yield error(
            "weights.hub-snapshot-missing",
            f"{m.hub_id} is in the Hugging Face cache ({m.hub_repo_dir}) but has no usable snapshot: "
            f"{m.hub_problem}{partial}",
            fix=f"hf download {m.hub_id}   (re-creates the snapshot; needs network)",
            location=location,
            observed=m.hub_problem,
            expected="snapshots/<commit>/ named by refs/main",
        )
        return
    if m.hub_problem.startswith(UNREADABLE_CACHE):  # the cache could not be searched: say so, not "not cached"
        yield error(
            "weights.hub-not-cached",
            f"{where} is {m.hub_id!r}: not a folder here ({m.path} does not exist{_cwd_also(m)}), and the Hugging "
            f"Face cache ({m.hub_cache}) cannot be searched for it: {m.hub_problem}",
            fix="let this user read the cache folder (chmod/chown), or run the doctor as the user the service runs as",
            location=location,
            observed=m.hub_problem,
            expected="a readable cache holding a downloaded snapshot",
        )
        return
    yield error(
        "weights.hub-not-cached",
        f"{where} is {m.hub_id!r}: not a folder here ({m.path} does not exist{_cwd_also(m)}) and not a model in the "
        f"Hugging Face cache ({m.hub_cache}); the service would try to download it at start-up",
        fix=(
            f"hf download {m.hub_id}   (or, if it is a local folder, fix the path; set HF_HUB_CACHE if the "
            "cache lives elsewhere)"
        ),
        location=location,
        observed=f"no {m.hub_cache}/models--{m.hub_id.replace('/', '--')}",
        expected="a downloaded snapshot",
    )


def _foreign_layout(m: ModelFacts) -> str:
    """Why the path belongs to another operating system's layout; empty when it does not."""
    text = m.path or m.given
    windows = bool(re.match(r"^[A-Za-z]:[\\/]", text) or text.startswith("\\\\"))
    if windows and m.host_platform != "win32":
        return "a Windows path"
    if m.host_platform.startswith("linux") and text.startswith("/Users/") and not m.exists:
        return "a macOS home path"
    return ""


def _other_home(m: ModelFacts) -> str:
    """The other user's home folder the path points into; empty when it is not one."""
    text = m.path or m.given
    home = m.home.rstrip("/")
    if home and (text == home or text.startswith(home + "/")):
        return ""
    found = re.match(r"^/(home|Users)/([^/]+)(/|$)", text)
    if found:
        return f"/{found.group(1)}/{found.group(2)}"
    if (text == "/root" or text.startswith("/root/")) and home != "/root":
        return "/root"
    return ""


def _missing(m: ModelFacts, where: str, location: Location | None, other_home: str) -> Finding:
    if other_home:
        return error(
            "weights.foreign-home",
            f"{where} is {m.path}, inside another user's home ({other_home}), and it does not exist here: "
            "the path was probably copied from their machine",
            fix=_set_path_fix(m),
            location=location,
            observed=f"{m.path} (missing)",
            expected="the model folder's path on this machine",
        )
    also = f" ({_cwd_also(m).removeprefix('; ')})" if m.cwd_candidate else ""
    return error(
        "weights.path-missing",
        f"{where} is {m.given!r}: {m.path} does not exist{also}",
        fix=_set_path_fix(m),
        location=location,
        observed=f"{m.path} (missing)",
        expected="an existing model folder",
    )


def _cwd_also(m: ModelFacts) -> str:
    if not m.cwd_candidate:
        return ""
    return f"; relative to the config's folder; from the working directory it would be {m.cwd_candidate}, also missing"


def _relative_warning(m: ModelFacts, location: Location | None) -> Finding:
    used_cwd = m.path == m.cwd_candidate
    if used_cwd:
        message = (
            f"{m.config_key or 'model_path'} {m.given!r} is relative: from the config's folder it is "
            f"{m.config_candidate} (missing), from the working directory {m.cwd_candidate} (used here); "
            "the service finds it only when started from this directory"
        )
    else:
        message = (
            f"{m.config_key or 'model_path'} {m.given!r} is relative: from the config's folder it is "
            f"{m.config_candidate} (used here), from the working directory {m.cwd_candidate}; a service "
            "that resolves it against its working directory loads something else or nothing"
        )
    return warning(
        "weights.relative-path",
        message,
        fix=f"write the absolute path in {m.config_file}: {m.config_key or 'model_path'}: {m.path}",
        location=location,
        observed=m.given,
        expected=m.path,
    )


# --------------------------------------------------------------------------------------------
# weights.files
# --------------------------------------------------------------------------------------------


@check(
    "weights.files",
    title="Model folder is complete",
    needs=("model-folder",),
    why=(
        "A git clone without git-lfs, a download that stopped halfway or a missing shard only shows up "
        "minutes into loading, as an obscure safetensors or index error; the headers tell in milliseconds."
    ),
    fix="Download the missing or damaged files again (hf download, or git lfs pull in a clone).",
)
def weights_files(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """The folder holds everything loading needs, sound, judged from file headers only.

    config.json, tokenizer and processor files, every shard of the index with every tensor, no LFS
    pointers, no truncated or inconsistent safetensors, no interrupted downloads (and, with
    --verify-hashes, every sha256).
    """
    m = snap.model
    assert m is not None  # guaranteed by the need
    if not _repo_id(m) and (named := hub_id_in_config(snap, m)):
        # the launch file (or config) names the hub id this folder holds: the download fixes say it, not OWNER/NAME
        m = dataclasses.replace(m, name_or_path=named)
    yield from _incomplete(m)
    yield from _json_files(m)
    yield from _lfs_and_links(m)
    yield from _shards(m)
    for weight in m.files:
        yield from _safetensors(m, weight)
    yield from _pickle(m)
    yield from _tokenizer(m)
    yield from _references(m)
    yield from _hashes(m)
    if m.parameter_count is not None:
        dtypes = ", ".join(f"{d} {_gib(b)}" for d, b in m.bytes_by_dtype.items())
        count = sum(1 for w in m.files if w.format == "safetensors")
        yield info(
            "weights.summary",
            f"{count} safetensors file{'s' if count != 1 else ''}, {_params(m.parameter_count)} parameters, "
            f"{_gib(m.parameter_bytes or 0)} ({dtypes})",
        )


def _file(m: ModelFacts, name: str) -> Location:
    return Location(str(Path(m.path) / name))


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


def _repo_id(m: ModelFacts) -> str:
    if m.hub_id:
        return m.hub_id
    if m.hub_repo_dir:
        return hub_id_of(Path(m.hub_repo_dir))
    return m.name_or_path if looks_like_hub_id(m.name_or_path) else ""


def hub_id_in_config(snap: Snapshot, m: ModelFacts) -> str:
    """A hub id the config names for this model folder; empty when there is none.

    One whose name is the folder's (``zai-org/AutoGLM-Phone-9B`` for ``./AutoGLM-Phone-9B``), else
    one given to a model or tokenizer flag.
    """
    config = snap.config
    if config is None or not isinstance(config.data, dict) or not m.path:
        return ""
    folder = Path(m.path).name.lower()
    named: list[tuple[str, str]] = [
        (str(key).lstrip("-").replace("_", "-"), value.strip())
        for key, value in config.data.items()
        if isinstance(value, str) and looks_like_hub_id(value.strip())
    ]
    for _key, value in named:
        if value.rsplit("/", 1)[-1].lower() == folder:
            return value
    return next((value for key, value in named if key in ("model", "model-path", "tokenizer", "tokenizer-path")), "")


def _redownload(m: ModelFacts, names: list[str], *, force: bool = False) -> str:
    """A command that fetches ``names`` again into this model folder."""
    files = " ".join(shlex.quote(n) for n in names[:20])
    folder = shlex.quote(m.path)
    repo = _repo_id(m)
    flag = " --force-download" if force else ""
    if repo and m.hub_repo_dir:
        return f"hf download {repo} {files}{flag}   (older huggingface_hub: huggingface-cli download ...)"
    if m.git_checkout:
        return f"git -C {folder} lfs pull --include {shlex.quote(','.join(names[:20]))}   (needs git-lfs installed)"
    owner = repo or "OWNER/NAME"
    return (
        f"hf download {owner} {files} --local-dir {folder}{flag}   (or copy them again from where the model came from)"
    )


def _incomplete(m: ModelFacts) -> Iterator[Finding]:
    if not m.incomplete:
        return
    names = [f"{i.path} ({_gib(i.size)})" for i in m.incomplete]
    base = m.hub_repo_dir if m.hub_repo_dir and m.incomplete[0].path.startswith("blobs/") else m.path
    repo = _repo_id(m)
    yield error(
        "weights.download-incomplete",
        f"an interrupted download left {len(names)} *.incomplete file{'s' if len(names) > 1 else ''}: {_listed(names)}",
        fix=(
            f"hf download {repo}   (resumes the partial files)"
            if repo
            else f"run the same download command again (hf download OWNER/NAME --local-dir {shlex.quote(m.path)})"
        ),
        location=Location(str(Path(base) / m.incomplete[0].path)),
        observed=f"{len(names)} partial file(s)",
        expected="no *.incomplete files",
    )


def _json_files(m: ModelFacts) -> Iterator[Finding]:
    if not m.has_config:
        yield error(
            "weights.config-missing",
            f"{m.path} has no config.json: transformers cannot tell which architecture to build",
            fix=_redownload(m, ["config.json"]),
            location=_file(m, "config.json"),
            observed="no config.json",
            expected="config.json",
        )
    index_names = {i.name for i in (m.index, m.pickle_index) if i is not None}
    for problem in m.json_problems:
        if problem.file in index_names:
            continue  # reported with the shards
        code = "weights.config-invalid" if problem.file == "config.json" else "weights.json-invalid"
        yield error(
            code,
            f"{problem.file} does not parse: {problem.message}",
            fix=f"re-download {problem.file} ({_redownload(m, [problem.file], force=True)}), or fix the JSON at the "
            "line shown",
            location=Location(str(Path(m.path) / problem.file), problem.line, problem.column),
            observed=problem.message,
            expected="valid JSON",
        )


def _lfs_and_links(m: ModelFacts) -> Iterator[Finding]:
    if m.lfs_pointers:
        fix = (
            f"git lfs install && git -C {shlex.quote(m.path)} lfs pull"
            if m.git_checkout
            else _redownload(m, m.lfs_pointers, force=True)
        )
        yield error(
            "weights.lfs-pointer",
            f"{len(m.lfs_pointers)} file{'s are' if len(m.lfs_pointers) > 1 else ' is a'} Git LFS pointer"
            f"{'s' if len(m.lfs_pointers) > 1 else ''} (about 130 bytes), not the real content: "
            f"{_listed(m.lfs_pointers)}; the folder was cloned without git-lfs",
            fix=fix,
            location=_file(m, m.lfs_pointers[0]),
            observed="version https://git-lfs.github.com/spec/v1 ...",
            expected="the file's content",
        )
    if m.dangling_links:
        yield error(
            "weights.broken-link",
            f"{len(m.dangling_links)} file{'s' if len(m.dangling_links) > 1 else ''} link to nothing "
            f"(the blob is gone): {_listed(m.dangling_links)}",
            fix=_redownload(m, m.dangling_links, force=True),
            location=_file(m, m.dangling_links[0]),
            observed="dangling symlink",
            expected="a link to an existing blob",
        )


def _shards(m: ModelFacts) -> Iterator[Finding]:
    if not m.files and not m.lfs_pointers:
        yield error(
            "weights.no-weights",
            f"{m.path} holds no weights (no *.safetensors, no pytorch_model*.bin)",
            fix=_redownload(m, ["*.safetensors"]).replace("'*.safetensors'", "--include '*.safetensors'"),
            location=Location(m.path),
            observed="no weight files",
            expected="model.safetensors or model-0000N-of-0000M.safetensors + model.safetensors.index.json",
        )
    yield from _loadable_names(m)
    reported: set[str] = set()
    for index in (m.index, m.pickle_index):
        if index is None:
            continue
        if index.error:
            yield error(
                "weights.index-invalid",
                f"{index.name} is unusable: {index.error}",
                fix=_redownload(m, [index.name], force=True),
                location=Location(str(Path(m.path) / index.name), index.line, index.column),
                observed=index.error,
                expected="a JSON object with a weight_map",
            )
            continue
        for shard in index.missing_shards:
            reported.add(shard)
            yield error(
                "weights.shard-missing",
                f"{shard} is missing (named in {index.name}, {len(index.shards)} shards in all)",
                fix=_redownload(m, [shard]),
                location=_file(m, shard),
                observed="missing",
                expected=shard,
            )
        for gap in index.gaps:
            yield error(
                "weights.tensor-missing",
                f"{gap.count} tensor{'s' if gap.count > 1 else ''} that {index.name} places in {gap.shard} "
                f"{'are' if gap.count > 1 else 'is'} not in its header (e.g. {', '.join(gap.examples)}): the shard "
                "and the index come from different versions of the model",
                fix=_redownload(m, [gap.shard, index.name], force=True),
                location=_file(m, gap.shard),
                observed=f"{gap.count} indexed tensor(s) absent",
                expected="every indexed tensor in its shard",
            )
    names = {w.name for w in m.files} | set(m.lfs_pointers) | set(m.dangling_links)
    groups: dict[tuple[str, str, str], set[int]] = {}
    for name in names:
        found = _SHARD_NAME.match(name)
        if found:
            groups.setdefault((found["stem"], found["total"], found["ext"]), set()).add(int(found["n"]))
    for (stem, total, ext), numbers in sorted(groups.items()):
        index_name = "model.safetensors.index.json" if ext == "safetensors" else "pytorch_model.bin.index.json"
        index = m.index if ext == "safetensors" else m.pickle_index
        if index is None:
            yield error(
                "weights.index-missing",
                f"the folder has sharded weights ({stem}-NNNNN-of-{total}.{ext}) but no {index_name}: "
                "transformers cannot find the shards without it",
                fix=_redownload(m, [index_name]),
                location=_file(m, index_name),
                observed=f"no {index_name}",
                expected=index_name,
            )
        for n in range(1, int(total) + 1):
            shard = f"{stem}-{n:05d}-of-{total}.{ext}"
            if n not in numbers and shard not in reported:
                yield error(
                    "weights.shard-missing",
                    f"{shard} is missing (the shard names say there are {int(total)})",
                    fix=_redownload(m, [shard]),
                    location=_file(m, shard),
                    observed="missing",
                    expected=shard,
                )


_LOADABLE = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def _loadable_names(m: ModelFacts) -> Iterator[Finding]:
    """from_pretrained looks for these names only; other weight files (adapters, exports) are not a model."""
    names = {w.name for w in m.files} | set(m.lfs_pointers) | set(m.dangling_links) | set(m.folder_files)
    if not m.files or any(n in names for n in _LOADABLE) or any(_SHARD_NAME.match(n) for n in names):
        return
    found = sorted(w.name for w in m.files)
    if m.is_adapter:
        base = f" (its base model: {m.adapter_base})" if m.adapter_base else ""
        yield error(
            "weights.adapter-only",
            f"{m.path} is a PEFT/LoRA adapter ({_listed(found)}), not a full model: it loads on top of its base "
            f"model{base}",
            fix=(
                "point the model path at the base model and load the adapter with peft "
                "(PeftModel.from_pretrained(model, ADAPTER)), or merge it into the base model first"
            ),
            location=Location(str(Path(m.path) / "adapter_config.json")),
            observed=", ".join(found[:3]),
            expected="model.safetensors or model.safetensors.index.json",
        )
        return
    yield error(
        "weights.unexpected-names",
        f"{m.path} has weights ({_listed(found)}) but none under the names from_pretrained looks for "
        "(model.safetensors, model.safetensors.index.json, pytorch_model.bin)",
        fix=f"rename a single-file checkpoint to model.safetensors (mv {shlex.quote(found[0])} model.safetensors), "
        "or save the model with save_pretrained",
        location=_file(m, found[0]),
        observed=", ".join(found[:3]),
        expected="model.safetensors",
    )


def _safetensors(m: ModelFacts, weight: WeightFile) -> Iterator[Finding]:
    if weight.format != "safetensors" or weight.lfs_pointer:
        return
    where = _file(m, weight.name)
    if weight.read_error:
        yield error(
            "weights.unreadable-file",
            f"{weight.name} cannot be read: {weight.read_error}",
            fix=f"sudo chmod a+r {shlex.quote(str(Path(m.path) / weight.name))}",
            location=where,
        )
        return
    if weight.header_error:
        yield error(
            "weights.header-invalid",
            f"{weight.name} is not a valid safetensors file: {weight.header_error}",
            fix=_redownload(m, [weight.name], force=True),
            location=where,
            observed=weight.header_error,
            expected="8-byte length + JSON header + data",
        )
        return
    expected = weight.expected_size or 0
    if weight.layout_problem_count:
        examples = weight.out_of_range + weight.layout_problems
        count = weight.layout_problem_count + weight.out_of_range_count
        yield error(
            "weights.bad-offsets",
            f"{weight.name}: the header's tensor offsets are inconsistent ({count} problem"
            f"{'s' if count > 1 else ''}): {'; '.join(examples[:3])}; safetensors refuses to load it",
            fix=_redownload(m, [weight.name], force=True) + "   (if it was written locally: save it again)",
            location=where,
            observed=examples[0],
            expected="tensors back to back from offset 0, inside the file, each as long as shape x dtype",
        )
    elif weight.size < expected:
        share = (
            100
            * max(weight.size - 8 - (weight.header_bytes or 0), 0)
            / max(expected - 8 - (weight.header_bytes or 0), 1)
        )
        yield error(
            "weights.truncated",
            f"{weight.name} is cut off: {weight.size:,} bytes on disk, its header describes {expected:,} "
            f"({expected - weight.size:,} bytes short, {_percent_there(share)} of the data is there; "
            f"{weight.out_of_range_count} tensor"
            f"{'s' if weight.out_of_range_count != 1 else ''} past the end): the download stopped early",
            fix=_redownload(m, [weight.name], force=True),
            location=where,
            observed=f"{weight.size} bytes",
            expected=f"{expected} bytes",
        )
    elif weight.size > expected:
        yield error(
            "weights.trailing-data",
            f"{weight.name} has {weight.size - expected:,} bytes after the last tensor; safetensors refuses "
            "files whose size is not exactly 8 + header + data",
            fix=_redownload(m, [weight.name], force=True),
            location=where,
            observed=f"{weight.size} bytes",
            expected=f"{expected} bytes",
        )
    if weight.unknown_dtypes:
        yield warning(
            "weights.unknown-dtype",
            f"{weight.name} uses dtype{'s' if len(weight.unknown_dtypes) > 1 else ''} "
            f"{', '.join(weight.unknown_dtypes)}, which the doctor does not know; their sizes were not checked",
            fix="make sure the installed safetensors and torch support these dtypes (pip install -U safetensors)",
            location=where,
        )


def _pickle(m: ModelFacts) -> Iterator[Finding]:
    pickles = [w.name for w in m.files if w.format == "pickle" and not w.lfs_pointer]
    if not pickles or any(w.format == "safetensors" for w in m.files):
        return
    yield warning(
        "weights.pickle-only",
        f"the weights are pickle files only ({_listed(pickles)}): loading pickle runs whatever code the file "
        "holds, and torch.load refuses them by default since torch 2.6 (weights_only=True)",
        fix=(
            "use a safetensors copy of the model (most hub repos publish one: "
            f"hf download {_repo_id(m) or 'OWNER/NAME'} --include '*.safetensors'), or convert these once, "
            "in a sandbox, from a source you trust"
        ),
        location=_file(m, pickles[0]),
        observed=", ".join(pickles[:3]),
        expected="*.safetensors",
    )


def _tokenizer_needs(tokenizer_class: str) -> tuple[str, list[str]]:
    """(description, required file patterns) for a tokenizer class; empty patterns when unknown."""
    family = re.sub(r"(tokenizer)?(fast)?$", "", tokenizer_class.lower().replace("_", ""))
    family = re.sub(r"tokenizer$", "", family)
    if tokenizer_class == "PreTrainedTokenizerFast":
        return "a fast tokenizer", ["tokenizer.json"]
    if family in _BPE:
        return "a BPE tokenizer", ["vocab.json", "merges.txt"]
    if family in _WORDPIECE:
        return "a WordPiece tokenizer", ["vocab.txt"]
    if family in _SENTENCEPIECE:
        return "a SentencePiece tokenizer", ["*.model"]
    if family == "qwen":
        return "a tiktoken tokenizer", ["*.tiktoken"]
    return "", []


def _tokenizer(m: ModelFacts) -> Iterator[Finding]:
    present = set(m.tokenizer_files)
    if "tokenizer.json" in present:
        return
    vocabularies = [
        n for n in present if n not in {"tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"}
    ]
    kind, needs = _tokenizer_needs(m.tokenizer_class)
    if needs:
        missing = [
            pattern
            for pattern in needs
            if not (any(n.endswith(pattern[1:]) for n in present) if pattern.startswith("*") else pattern in present)
        ]
        if not missing:
            return
        message = (
            f"tokenizer_config.json says {m.tokenizer_class} ({kind}), which needs {' + '.join(needs)}; "
            f"missing: {', '.join(missing)}, and there is no tokenizer.json"
        )
    elif vocabularies:
        return
    else:
        message = (
            "no tokenizer files: no tokenizer.json, and no vocabulary (tokenizer.model, vocab.json + merges.txt, "
            "vocab.txt)" + (f" for tokenizer_config.json's {m.tokenizer_class}" if m.tokenizer_class else "")
        )
        missing = ["tokenizer.json"]
    wanted = [n for n in missing if not n.startswith("*")] or ["tokenizer.json"]
    yield error(
        "weights.tokenizer-missing",
        message + ": AutoTokenizer.from_pretrained will fail",
        fix=_redownload(m, [*wanted, "tokenizer_config.json"]),
        location=_file(m, wanted[0]),
        observed=", ".join(sorted(present)) or "no tokenizer files",
        expected="tokenizer.json, or the files tokenizer_config.json's class needs",
    )


def _references(m: ModelFacts) -> Iterator[Finding]:
    for ref in m.references:
        if ref.present:
            continue
        if ref.file == "preprocessor_config.json":
            yield error(
                "weights.processor-missing",
                f"{m.model_type or 'this'} is a vision-language model but preprocessor_config.json is missing: "
                "AutoProcessor cannot prepare images (screenshots) for it",
                fix=_redownload(m, ["preprocessor_config.json"]),
                location=_file(m, ref.file),
                observed="no preprocessor_config.json",
                expected="preprocessor_config.json",
            )
        else:
            yield error(
                "weights.code-missing",
                f"{ref.file} is missing; {ref.named_by} names it, so loading with trust_remote_code fails",
                fix=_redownload(m, [ref.file]),
                location=_file(m, ref.file),
                observed=f"no {ref.file}",
                expected=ref.file,
            )


def _hashes(m: ModelFacts) -> Iterator[Finding]:
    if not m.hashes_verified:
        return
    unverified = []
    for item in m.hash_checks:
        if item.error:
            yield error(
                "weights.hash-unreadable",
                f"{item.file} could not be hashed: {item.error}",
                location=_file(m, item.file),
                fix=f"sudo chmod a+r {shlex.quote(str(Path(m.path) / item.file))}"
                if item.error != OUTSIDE
                else f"remove the line naming {item.file} from {m.manifest}",
            )
        elif not item.expected:
            unverified.append(item.file)
        elif item.sha256 != item.expected:
            yield error(
                "weights.hash-mismatch",
                f"{item.file} does not match its sha256 ({item.reference}): the content is damaged or from "
                "another version",
                fix=_redownload(m, [item.file], force=True),
                location=_file(m, item.file),
                observed=item.sha256,
                expected=item.expected,
            )
    for name in m.manifest_missing:
        yield error(
            "weights.manifest-file-missing",
            f"{name} is named in {m.manifest} but is not in the folder",
            fix=_redownload(m, [name]),
            location=_file(m, name),
            observed="missing",
            expected=name,
        )
    if m.manifest_bad_lines:
        yield warning(
            "weights.manifest-invalid",
            f"{m.manifest} has lines that are not sha256sum lines: {', '.join(map(str, m.manifest_bad_lines))}",
            fix="write it with: sha256sum *.safetensors > SHA256SUMS",
            location=Location(str(Path(m.path) / m.manifest), m.manifest_bad_lines[0]),
        )
    if unverified:
        yield warning(
            "weights.hash-unverified",
            f"--verify-hashes found no reference sha256 for {_listed(sorted(unverified))}: hashed, but nothing "
            "to compare with",
            fix=(
                f"add a manifest: cd {shlex.quote(m.path)} && sha256sum *.safetensors > SHA256SUMS "
                "(on a machine with a known-good copy), or use the Hugging Face cache (its blobs are named by sha256)"
            ),
            location=Location(m.path),
        )
    else:
        ok = sum(1 for item in m.hash_checks if item.sha256 and item.sha256 == item.expected)
        yield info("weights.hashes-verified", f"{ok} file{'s' if ok != 1 else ''} match their sha256")


def _gib(count: int) -> str:
    if count >= 1 << 30:
        return f"{count / (1 << 30):.1f} GiB"
    if count >= 1 << 20:
        return f"{count / (1 << 20):.1f} MiB"
    return f"{count} B"


def _params(count: int) -> str:
    for unit, size in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if count >= size:
            return f"{count / size:.2f}{unit}"
    return str(count)


def _percent_there(share: float) -> str:
    """``99.97%``: a file short by a few bytes never reads as 100% there (nor an empty one as 0% when it is not)."""
    if 99 < share < 100:
        return f"{min(share, 99.99):.2f}%"
    if 0 < share < 1:
        return f"{max(share, 0.01):.2f}%"
    return f"{share:.0f}%"
