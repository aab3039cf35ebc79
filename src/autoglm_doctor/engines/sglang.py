"""SGLang as the doctor asks it questions, answered from SGLang's own files.

Flags: every ``add_argument`` call in ``sglang/srt/server_args.py`` (``ServerArgs.add_cli_args``,
where up to 0.5.13 every flag is written out), and every ``A[T, Arg(...)]`` field that
``add_cli_args_from_dataclass`` turns into a flag (in ``server_args.py`` from 0.5.14, in
``sglang/srt/arg_groups/fields/*.py`` from 0.5.20): ``--field-name`` or ``Arg(cli_name=...)``, plus
``Arg(aliases=[...])``; a ``bool`` is ``store_true``, a ``Literal`` gives the choices, ``List[X]``
takes ``nargs="+"``; an ``Arg(type_parser=json.loads)`` reads JSON. Flags whose action is one of
SGLang's ``Deprecated*Action`` classes are deprecated, with the help text as the reason.

Models: each ``sglang/srt/models/*.py`` names the classes it serves in ``EntryClass``.

Memory: ``--mem-fraction-static`` (``ServerArgs``; about 0.88 when unset, picked from the GPU's
memory) is the share that holds the weights and the KV pool, one token per page; activations and
CUDA graphs live in the rest. See :data:`MEMORY`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import autoglm_doctor.engines._reader as _reader
from autoglm_doctor.engines.base import Engine, FlagSpec
from autoglm_doctor.engines.memory import MemoryModel, ProfileShape
from autoglm_doctor.engines.vllm import apply_keywords, to_spec
from autoglm_doctor.probe.libraries import ServedArchitectures

SERVER_ARGS = "sglang/srt/server_args.py"
"""``ServerArgs`` and its ``add_cli_args``."""
FIELDS_FOLDER = "sglang/srt/arg_groups/fields/"
"""The namespaces whose annotated fields become flags (0.5.20 on)."""
MODELS_FOLDER = "sglang/srt/models"
"""One file per model family; each names the classes it serves in ``EntryClass``."""
ENTRY_CLASS = re.compile(r"^EntryClass\s*=\s*(\[[^\]]*\]|[A-Za-z_]\w*)", re.MULTILINE)
"""``EntryClass = Qwen2VLForConditionalGeneration`` or ``EntryClass = [A, B]`` at a line's start."""
MODEL_FILE_LIMIT = 1 << 20
"""The largest model file read (SGLang's are under 100 KB): a larger one is named, not read."""
MODEL_FILES_LIMIT = 2000
"""The most model files read (SGLang 0.5 has about 150)."""

MEMORY = MemoryModel(
    default_share=0.88,
    kv_block_tokens=1,
    activations_in_budget=False,
    no_room="Not enough memory. Please try to increase --mem-fraction-static.",
    sources=(
        "sglang/srt/server_args.py (mem_fraction_static, picked from the GPU's memory when unset; page_size 1)",
        "sglang/srt/model_executor/model_runner.py (max_total_num_tokens <= 0: 'Not enough memory. ...')",
    ),
)
"""SGLang's --mem-fraction-static (about 0.88 when unset) holds the weights and the KV pool (pages of one token);
activations and CUDA graphs live outside it, and it does not compare the free memory with the share at start-up.
When the weights leave no token of KV pool it stops with "Not enough memory. Please try to increase
--mem-fraction-static." (``too_long`` is left empty: the doctor quotes no SGLang words for a sequence longer
than the pool)."""


def _annotated(annotation: ast.AST) -> tuple[ast.AST, ast.AST | None] | None:
    """(the type, the Arg(...) call or help string) of ``A[T, Arg(...)]`` / ``Annotated[T, "help"]``."""
    if not isinstance(annotation, ast.Subscript) or _reader.head_of(annotation) not in ("A", "Annotated"):
        return None
    inner = annotation.slice
    if not isinstance(inner, ast.Tuple) or len(inner.elts) < 2:
        return None
    return inner.elts[0], inner.elts[1]


def _field_flag(
    name: str, annotation: ast.AST, constants: dict[str, Any], aliases: dict[str, ast.AST]
) -> FlagSpec | None:
    found = _annotated(annotation)
    if found is None:
        return None
    type_node, meta = found
    kws: dict[str, ast.AST] = {}
    if isinstance(meta, ast.Call):
        kws = _reader.keywords(meta)
        if _reader.literal(kws.get("no_cli")) is True:
            return None
    elif not (isinstance(meta, ast.Constant) and isinstance(meta.value, str)):
        return None
    cli_name = _reader.literal(kws.get("cli_name"))
    names = [cli_name if isinstance(cli_name, str) else "--" + name.replace("_", "-")]
    extra = _reader.literal(kws.get("aliases"))
    if isinstance(extra, list):
        names += [str(a) for a in extra]
    members = _reader.union_members(type_node)
    heads = [_reader.head_of(m) for m in members]
    raw: dict[str, Any] = {"kind": "str"}
    literals: list[Any] = []
    for member in members:
        values = _reader.literal_values(member, aliases)
        if values is not None:
            literals.extend(values)
    non_none = [h for h in heads if h != "None"]
    if literals:
        raw.update(kind="int" if isinstance(literals[0], int) else "str", choices=[str(v) for v in literals])
    elif non_none and non_none[0] in ("List", "list") and "type_parser" not in kws:
        element = next(m for m in members if _reader.head_of(m) in ("List", "list"))
        inner = _reader.head_of(element.slice) if isinstance(element, ast.Subscript) else "str"
        raw.update(kind=inner if inner in ("int", "float") else "str", nargs="+")
    elif non_none == ["bool"] and "action" not in kws:
        raw["kind"] = "store-true"
    elif non_none and non_none[0] in ("int", "float"):
        raw["kind"] = non_none[0]
    if "type_parser" in kws:
        parser = _reader.dotted_name(kws["type_parser"])
        raw["kind"] = {
            "json.loads": "json-plain",
            "int": "int",
            "float": "float",
            "str": "str",
            "human_readable_int": "token-count",
        }.get(parser, "json-plain" if parser.endswith("loads") else "any")
    apply_keywords(raw, {k: v for k, v in kws.items() if k in ("choices", "nargs", "action")}, constants)
    if "choices" in kws and not raw.get("choices"):
        raw["kind"] = "any"
    return to_spec(names, raw, name)


def read_sglang_flags(files: dict[str, str]) -> tuple[list[FlagSpec], list[str]]:
    """``sglang.launch_server``'s flags from SGLang's source files (relative path -> text)."""
    problems: list[str] = []
    specs: dict[str, FlagSpec] = {}
    constants: dict[str, Any] = {}
    aliases: dict[str, ast.AST] = {}
    trees: list[ast.Module] = []
    for path in sorted(files):
        tree = _reader.parse(files[path], path, problems)
        if tree is not None:
            trees.append(tree)
            constants.update(_reader.module_constants(tree))
            aliases.update(_reader.type_aliases(tree))
    if SERVER_ARGS not in files:
        problems.append(f"{SERVER_ARGS}: missing, so SGLang's flags are unknown")
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for name, stmt in _reader.class_fields(node).items():
                    spec = _field_flag(name, stmt.annotation, constants, aliases)
                    if spec is not None:
                        for option in spec.names:
                            specs.setdefault(option, spec)
        for call in _reader.add_argument_calls(tree):
            names = _reader.option_strings(call)
            if not names:
                continue
            kws = _reader.keywords(call)
            raw: dict[str, Any] = {"kind": "str"}
            if "**" in kws:
                raw["kind"] = "any"
            apply_keywords(raw, kws, constants)
            spec = to_spec(names, raw)
            for option in names:
                specs[option] = spec  # a manual add_argument overrides the field-derived one
    unique: dict[int, FlagSpec] = {}
    for spec in specs.values():
        unique.setdefault(id(spec), spec)
    return sorted(unique.values(), key=lambda s: s.names[0]), problems


def entry_classes(text: str) -> set[str]:
    """The class names one model file's ``EntryClass`` assignment names (read as text, never imported)."""
    names: set[str] = set()
    for value in ENTRY_CLASS.findall(text):
        names.update(re.findall(r"[A-Za-z_]\w*", value))
    return names


class Sglang(Engine):
    """SGLang."""

    name = "sglang"
    title = "SGLang"
    settings = {  # noqa: RUF012
        "model": ("model-path", "model"),
        "served-model-name": ("served-model-name",),
        "max-model-len": ("context-length",),
        "tensor-parallel-size": ("tp-size", "tp", "tensor-parallel-size"),
        "gpu-memory-utilization": ("mem-fraction-static",),
        "dtype": ("dtype",),
        "kv-cache-dtype": ("kv-cache-dtype",),
        "max-num-batched-tokens": ("chunked-prefill-size",),
        "max-num-seqs": ("max-running-requests",),
        "limit-mm-per-prompt": (),
        "mm-processor-kwargs": (),
        "mm-encoder-tp-mode": (),
        "port": ("port",),
        "host": ("host",),
        "enforce-eager": ("disable-cuda-graph",),
    }
    default_port = 30000
    memory = MEMORY
    first_release = "0.5.6"
    json_message = "invalid loads value: {value!r}"
    only_flags = frozenset({"model-path", "context-length", "tp-size", "mem-fraction-static", "chunked-prefill-size"})

    def read_registry(self, root: Path) -> ServedArchitectures:
        """The ``EntryClass`` names of every ``sglang/srt/models/*.py`` under ``root``, read as text (bounded)."""
        from autoglm_doctor.safeio import read_text

        folder = root / MODELS_FOLDER
        names: set[str] = set()
        problems: list[str] = []
        try:
            entries = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".py"))
        except OSError as exc:
            return ServedArchitectures(str(folder), [], [f"{folder} could not be read: {exc.strerror or exc}"])
        for entry in entries[:MODEL_FILES_LIMIT]:
            try:
                text = read_text(folder / entry, "metadata", MODEL_FILE_LIMIT, errors="replace")
            except OSError as exc:
                problems.append(f"{folder / entry} could not be read: {exc.strerror or exc}")
                continue
            names.update(entry_classes(text))
        if not names:
            problems.append(f"no EntryClass found in {folder}")
        return ServedArchitectures(str(folder), sorted(names), problems)

    def profile_peak(self, shape: ProfileShape) -> tuple[int, str]:
        """Nothing inside the share: SGLang's static share holds weights and KV only."""
        del shape
        return 0, "SGLang keeps activations outside --mem-fraction-static"

    def flag_files(self, listing: list[str]) -> list[str]:
        """server_args.py and the argument-group field modules."""
        return sorted(p for p in listing if p == SERVER_ARGS or (p.startswith(FIELDS_FOLDER) and p.endswith(".py")))

    def registry_files(self, listing: list[str]) -> list[str]:
        """Every ``sglang/srt/models/*.py`` (not its subfolders: :meth:`read_registry` reads the folder's own files)."""
        prefix = MODELS_FOLDER + "/"
        return sorted(p for p in listing if p.startswith(prefix) and p.endswith(".py") and "/" not in p[len(prefix) :])

    def registry_from_files(self, files: dict[str, str]) -> tuple[list[str], list[str]]:
        """The ``EntryClass`` names of the release's model files (:func:`entry_classes`)."""
        names: set[str] = set()
        for path in self.registry_files(list(files)):
            names.update(entry_classes(files[path]))
        return sorted(names), [] if names else [f"no EntryClass found in {MODELS_FOLDER}"]

    def read_flags(self, files: dict[str, str]) -> tuple[list[FlagSpec], list[str]]:
        """See :func:`read_sglang_flags`."""
        return read_sglang_flags(files)


ENGINE = Sglang()
"""The engine this module describes."""
