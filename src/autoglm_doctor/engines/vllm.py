"""vLLM as the doctor asks it questions, answered from vLLM's own files.

Flags: every ``add_argument`` call of ``EngineArgs.add_cli_args`` (``vllm/engine/arg_utils.py``),
of the OpenAI frontend (``vllm/entrypoints/openai/cli_args.py``; ``vllm/entrypoints/common/cli_args.py``
since 0.34) and of ``vllm serve`` (``vllm/entrypoints/cli/serve.py``). Where a call spreads
``**model_kwargs["max_model_len"]``, the kind comes from the config dataclass field the way
``arg_utils._compute_kwargs`` derives it: a ``bool`` is ``--X/--no-X``, a ``Literal[...]`` gives the
choices, a ``dict`` (or a dict subclass such as ``MultiModalDummyOptions``) is read with
``json.loads`` through ``parse_type``, a dataclass with pydantic, ``max_model_len`` as a human-readable
integer, and pydantic ``Field(gt=0, le=1)`` bounds are the range.

Models: the keys of the ``_..._MODELS`` dicts of ``vllm/model_executor/models/registry.py``, read
with ``ast`` from the installed file (never imported).

Memory (``vllm/v1/worker/gpu_worker.py``, ``Worker.determine_available_memory``): the share
``--gpu-memory-utilization`` of the GPU holds the weights, the activation peak of one dummy
forward pass (``profile_run``) and the KV cache in blocks of 16 tokens; the CUDA context, NCCL and
the CUDA graphs (captured after the KV cache is allocated) live beyond it. See :data:`MEMORY`.

dtype: ``vllm/config/model.py`` falls back from bfloat16 to float16 on a GPU without bfloat16
("Your device ... doesn't support torch.bfloat16. Falling back to torch.float16 for compatibility.")
and lists the model types that float16 breaks in ``_FLOAT16_NOT_SUPPORTED_MODELS``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import autoglm_doctor.engines._reader as _reader
from autoglm_doctor.engines.base import Engine, FlagSpec
from autoglm_doctor.engines.memory import Allowance, GiB, MemoryModel, ProfileShape, gib, shared_allowances
from autoglm_doctor.probe.libraries import ServedArchitectures

ARG_FILES = (
    "vllm/engine/arg_utils.py",
    "vllm/entrypoints/openai/cli_args.py",
    "vllm/entrypoints/common/cli_args.py",
    "vllm/entrypoints/cli/serve.py",
)
"""The files whose ``add_argument`` calls define ``vllm serve``'s flags."""
CONFIG_FOLDER = "vllm/config/"
"""The config dataclasses whose field types give the flags' kinds."""
MODEL_CONFIG = "vllm/config/model.py"
"""Where vLLM states its dtype fallback and the model types float16 breaks."""
REGISTRY = "vllm/model_executor/models/registry.py"
"""vLLM's model registry: the architectures it serves are the keys of its ``_..._MODELS`` dicts."""
REGISTRY_LIMIT = 4 << 20
"""The largest registry.py read (vLLM 0.12's is about 40 KB)."""

MEMORY = MemoryModel(
    default_share=0.9,
    kv_block_tokens=16,
    activations_in_budget=True,
    refuses_below_budget="Free memory on device ... on startup is less than desired GPU memory utilization",
    no_room="No available memory for the cache blocks",
    too_long="To serve at least one request with the model's max seq len ({length}) ... the estimated maximum "
    "model length is ...",
    sources=(
        "vllm/config/cache.py (gpu_memory_utilization = 0.9, block_size 16)",
        "vllm/v1/worker/gpu_worker.py (Worker.determine_available_memory, the start-up free-memory check)",
    ),
)
"""vLLM's --gpu-memory-utilization default (0.9), its KV block of 16 tokens, its profile run inside the budget, its
refusal to start when less than ``total x utilization`` is free, and its words when the KV cache has no room
(``vllm/v1/core/kv_cache_utils.py``: "No available memory for the cache blocks", "To serve at least one request
with the model's max seq len ...")."""
HIGH_MEMORY_GIB = 70
"""vLLM's OpenAI server batches 8192 tokens (and 1024 sequences) on GPUs of this size or more, except the A100;
2048 tokens and 256 sequences below (vllm/engine/arg_utils.py, EngineArgs.get_batch_defaults)."""
NON_TORCH_BYTES = int(0.25 * GiB)
"""Memory allocated outside torch during the profile run (cuBLAS workspaces, the allocator's slack)."""
CUDA_GRAPH_BYTES_MEASURED = int(0.95 * GiB)
"""What capturing CUDA graphs took for GLM-4.1V-9B at vLLM's defaults: "Graph capturing finished in 7 secs, took
0.95 GiB" for 67 piecewise and 35 full graphs (vLLM 0.11.0, https://github.com/zai-org/GLM-V/issues/204)."""
CUDA_GRAPHS_MEASURED = 67 + 35
"""How many graphs that log captured: per graph, the measured cost is about 9.5 MiB."""


def cuda_graph_sizes(max_seqs: int, batched_tokens: int) -> tuple[int, ...]:
    """The batch sizes vLLM 0.12 captures CUDA graphs for by default (``VllmConfig._set_cudagraph_sizes``).

    The largest is ``min(2 x --max-num-seqs, 512, --max-num-batched-tokens)``; the sizes are 1, 2, 4, then
    multiples of 8 below 256, then multiples of 16 from 256 up to the largest.
    """
    largest = min(max_seqs * 2, 512, batched_tokens)
    sizes = [size for size in (1, 2, 4) if size <= largest]
    if largest >= 8:
        sizes += range(8, min(largest + 1, 256), 8)
    if largest >= 256:
        sizes += range(256, largest + 1, 16)
    return tuple(sizes)


def registry_architectures(text: str, name: str = REGISTRY) -> tuple[list[str], list[str]]:
    """(architecture names, problems) of vLLM's model registry: the string keys of its ``_..._MODELS`` dicts.

    ``ast.parse`` bounds the nesting itself (CPython refuses brackets nested past 200 levels with a
    SyntaxError), and only the module's top-level statements are looked at: a file of 20,000 nested
    brackets is named as unreadable, never a crash.
    """
    try:
        tree = ast.parse(text, filename=name)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        reason = exc.msg if isinstance(exc, SyntaxError) else type(exc).__name__
        return [], [f"{name} could not be read: {reason}"]
    found: set[str] = set()
    for stmt in tree.body:
        value: ast.expr | None = None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign):
            target, value = stmt.target, stmt.value
        else:
            continue
        if isinstance(target, ast.Name) and re.fullmatch(r"_[A-Z_]*MODELS", target.id) and isinstance(value, ast.Dict):
            found.update(k.value for k in value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str))
    return sorted(found), []


_BUILTIN_HEADS = {"bool", "int", "float", "str", "None", "dict", "Dict", "list", "List", "tuple", "Tuple", "set"}
_COLLECTIONS = {"list", "List", "tuple", "Tuple", "set", "Set", "Sequence"}
_DICTS = {"dict", "Dict", "Mapping"}
_AUTO_LENGTH = "@max_model_len accepts auto"


class _Types:
    """The classes and type aliases of vLLM's config modules, for reading field annotations."""

    def __init__(self) -> None:
        self.classes: dict[str, ast.ClassDef] = {}
        self.aliases: dict[str, ast.AST] = {}
        self.dataclasses: set[str] = set()
        self.dict_subclasses: set[str] = set()

    def add(self, tree: ast.Module) -> None:
        self.aliases.update(_reader.type_aliases(tree))
        for stmt in tree.body:
            if not isinstance(stmt, ast.ClassDef):
                continue
            self.classes.setdefault(stmt.name, stmt)
            decorators = {_reader.dotted_name(d.func if isinstance(d, ast.Call) else d) for d in stmt.decorator_list}
            if any(d.rsplit(".", 1)[-1] in ("dataclass", "config") for d in decorators):
                self.dataclasses.add(stmt.name)
            if any(_reader.head_of(b) in _DICTS for b in stmt.bases):
                self.dict_subclasses.add(stmt.name)

    def field(self, class_name: str, name: str, depth: int = 0) -> ast.AnnAssign | None:
        cls = self.classes.get(class_name)
        if cls is None or depth > 6:
            return None
        found = _reader.class_fields(cls).get(name)
        if found is not None:
            return found
        for base in cls.bases:
            inherited = self.field(_reader.head_of(base), name, depth + 1)
            if inherited is not None:
                return inherited
        return None

    def members(self, annotation: ast.AST | None, depth: int = 0) -> list[ast.AST]:
        out: list[ast.AST] = []
        for member in _reader.union_members(annotation):
            head = _reader.head_of(member)
            if depth < 6 and isinstance(member, ast.Name) and head in self.aliases and head not in self.classes:
                if _reader.literal_values(member, self.aliases) is None:
                    out.extend(self.members(self.aliases[head], depth + 1))
                    continue
            out.append(member)
        return out


def _kind_from_annotation(types: _Types, annotation: ast.AST | None, name: str, human: set[str]) -> dict[str, Any]:
    """Argparse kwargs, as ``_compute_kwargs`` derives them, from one dataclass field's annotation."""
    members = types.members(annotation)
    heads = [_reader.head_of(m) for m in members]
    literals: list[Any] = []
    has_literal = False
    for member in members:
        values = _reader.literal_values(member, types.aliases)
        if values is not None:
            has_literal = True
            literals.extend(values)
    heads = ["dict" if h in types.dict_subclasses else h for h in heads]
    out: dict[str, Any] = {}
    if any(h in types.dataclasses for h in heads):
        out["kind"] = "dataclass-json"
    elif set(heads) == {"bool", "str", "None"}:
        out.update(kind="optional-str", nargs="?")
    elif "bool" in heads:
        out["kind"] = "bool-optional"
    elif has_literal:
        out.update(kind="str", choices=[str(v) for v in literals])
    elif any(h in _COLLECTIONS for h in heads):
        element = next(m for m in members if _reader.head_of(m) in _COLLECTIONS)
        inner = element.slice if isinstance(element, ast.Subscript) else None
        first = inner.elts[0] if isinstance(inner, ast.Tuple) and inner.elts else inner
        sub = _kind_from_annotation(types, first, "", set()) if first is not None else {"kind": "str"}
        out.update(kind=sub.get("kind", "str") if sub.get("kind") in ("int", "float") else "str", nargs="+")
        if sub.get("choices"):
            out["choices"] = sub["choices"]
    elif "int" in heads:
        auto = name == "max_model_len" and _AUTO_LENGTH in human
        out["kind"] = "token-count-or-auto" if auto else "token-count" if name in human else "int"
    elif "float" in heads:
        out["kind"] = "float"
    elif any(h in _DICTS for h in heads):
        builtin = all(h in _BUILTIN_HEADS for h in heads)
        out["kind"] = "json" if builtin and "str" not in heads else "json-or-str"
    else:
        out["kind"] = "str"
    if "None" in heads and out["kind"] != "bool-optional":
        out["optional"] = True
    return out


def _explicit_type(node: ast.AST) -> str:
    text = ast.dump(node)[:400]
    name = _reader.dotted_name(node)
    if name in ("int", "float", "str"):
        return name
    if name.endswith("loads"):
        return "json-plain"
    if "loads" in text and ("parse_type" in text or "optional_type" in text):
        return "json"
    if name.endswith("human_readable_int_or_auto"):
        return "token-count-or-auto"
    if name.endswith("human_readable_int"):
        return "token-count"
    if isinstance(node, ast.Call) and _reader.dotted_name(node.func).endswith("optional_type") and node.args:
        inner = _reader.dotted_name(node.args[0])
        return inner if inner in ("int", "float", "str") else "any"
    return "any"


def apply_keywords(spec: dict[str, Any], kws: dict[str, ast.AST], constants: dict[str, Any]) -> None:
    """Explicit ``type=``, ``choices=``, ``action=``, ``nargs=``, ``deprecated=`` of an add_argument call."""
    if "type" in kws:
        spec["kind"] = _explicit_type(kws["type"])
    if "choices" in kws:
        choices = _reader.literal(kws["choices"], constants)
        spec["choices"] = [str(c) for c in choices] if isinstance(choices, list) else []
        if not isinstance(choices, list):  # computed at start-up (plugins): any value may be right
            spec["kind"] = "any"
    if "nargs" in kws:
        nargs = _reader.literal(kws["nargs"])
        spec["nargs"] = str(nargs) if nargs is not None else "+"
        if nargs == 0:
            spec["kind"] = "store-true"
    if "action" in kws:
        action = _reader.literal(kws["action"])
        name = action if isinstance(action, str) else _reader.dotted_name(kws["action"])
        simple = {"store_true": "store-true", "store_false": "store-false", "count": "count"}
        if name in simple:
            spec["kind"] = simple[name]
        elif name.endswith("BooleanOptionalAction"):
            spec["kind"] = "bool-optional"
        elif name in ("append", "store", "extend"):
            pass
        elif "StoreTrue" in name:
            spec["kind"] = "store-true"
        elif spec.get("nargs") != "0":
            spec["kind"] = spec.get("kind") if "type" in kws else "any"
        if "Deprecated" in name:
            spec["deprecated"] = _help_text(kws) or f"{name}: the engine calls this flag deprecated"
    if "deprecated" in kws and _reader.literal(kws["deprecated"]) is True:
        spec["deprecated"] = "argument '{dest}' is deprecated"


def _help_text(kws: dict[str, ast.AST]) -> str:
    node = kws.get("help")
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
    return ""


def to_spec(names: list[str], raw: dict[str, Any], dest: str = "") -> FlagSpec:
    """A :class:`FlagSpec` from the collected kwargs."""
    dest = dest or names[0].lstrip("-").replace("-", "_")
    deprecated = str(raw.get("deprecated", "")).replace("{dest}", dest)
    return FlagSpec(
        names=names,
        kind=str(raw.get("kind", "str")),
        choices=list(raw.get("choices", [])),
        nargs=str(raw.get("nargs", "")),
        deprecated=deprecated,
        optional=bool(raw.get("optional", False)),
        bounds=dict(raw.get("bounds", {})),
        dest=dest,
    )


def read_vllm_flags(files: dict[str, str]) -> tuple[list[FlagSpec], list[str]]:
    """``vllm serve``'s flags from vLLM's source files (relative path -> text)."""
    problems: list[str] = []
    types = _Types()
    trees: dict[str, ast.Module] = {}
    for path in sorted(files):
        if path.startswith(CONFIG_FOLDER) or path in ARG_FILES:
            tree = _reader.parse(files[path], path, problems)
            if tree is not None:
                trees[path] = tree
                types.add(tree)
    arg_utils = trees.get(ARG_FILES[0])
    if arg_utils is None:
        problems.append(f"{ARG_FILES[0]}: missing, so vLLM's engine flags are unknown")
        return [], problems
    human = set()
    for node in ast.walk(arg_utils):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id.startswith("human_readable_int") for t in node.targets
        ):
            value = _reader.literal(node.value)
            human = {str(v) for v in value} if isinstance(value, list) else set()
    if "human_readable_int_or_auto" in files.get(ARG_FILES[0], ""):
        human.add(_AUTO_LENGTH)
    kwargs_of: dict[str, str] = {}
    for tree in (trees[p] for p in ARG_FILES if p in trees):
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Call)
                and _reader.dotted_name(node.value.func).endswith("get_kwargs")
                and node.value.args
            ):
                kwargs_of[node.targets[0].id] = _reader.head_of(node.value.args[0])
    specs: dict[str, FlagSpec] = {}

    def derived(class_name: str, field_name: str) -> dict[str, Any]:
        stmt = types.field(class_name, field_name)
        if stmt is None:
            return {"kind": "any"}
        raw = _kind_from_annotation(types, stmt.annotation, field_name, human)
        bounds = _reader.field_bounds(stmt)
        if bounds:
            raw["bounds"] = bounds
        return raw

    for path in ARG_FILES:
        tree = trees.get(path)
        if tree is None:
            continue
        constants = _reader.module_constants(tree)
        for call in _reader.add_argument_calls(tree):
            names = _reader.option_strings(call)
            if not names:
                continue
            kws = _reader.keywords(call)
            raw: dict[str, Any] = {"kind": "str"}
            dest = ""
            spread = kws.get("**")
            if isinstance(spread, ast.Dict):  # **{**model_kwargs["x"], "default": None}
                for key_node, value_node in zip(spread.keys, spread.values, strict=False):
                    if key_node is None:
                        spread = value_node
                    elif isinstance(key_node, ast.Constant) and isinstance(key_node.value, str):
                        kws.setdefault(key_node.value, value_node)
            if isinstance(spread, ast.Subscript) and isinstance(spread.value, ast.Name):
                key = _reader.literal(spread.slice)
                owner = kwargs_of.get(spread.value.id, "")
                if isinstance(key, str) and owner:
                    raw = derived(owner, key)
                    dest = key
            elif spread is not None:
                raw = {"kind": "any"}
            apply_keywords(raw, kws, constants)
            spec = to_spec(names, raw, dest)
            for name in names:
                specs.setdefault(name, spec)
        if path.endswith("cli_args.py"):
            for spec in _frontend_flags(tree, types, human):
                for name in spec.names:
                    specs.setdefault(name, spec)
    unique: dict[int, FlagSpec] = {}
    for spec in specs.values():
        unique.setdefault(id(spec), spec)
    return sorted(unique.values(), key=lambda s: s.names[0]), problems


def _frontend_flags(tree: ast.Module, types: _Types, human: set[str]) -> list[FlagSpec]:
    """``FrontendArgs``' fields: each is ``--field-name`` (``add_cli_args`` loops over ``get_kwargs``)."""
    overrides: dict[str, dict[str, ast.AST]] = {}
    for node in ast.walk(tree):
        # frontend_kwargs["allowed_origins"]["type"] = json.loads
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Subscript):
                field_name = _reader.literal(target.value.slice)
                key = _reader.literal(target.slice)
                if isinstance(field_name, str) and isinstance(key, str):
                    overrides.setdefault(field_name, {})[key] = node.value
    out: list[FlagSpec] = []
    frontend = types.classes.get("FrontendArgs")
    if frontend is None:
        return out
    chain = [frontend]
    while chain[-1].bases and len(chain) < 6:
        base = types.classes.get(_reader.head_of(chain[-1].bases[0]))
        if base is None:
            break
        chain.append(base)
    seen: set[str] = set()
    for cls in chain:
        for field_name, stmt in _reader.class_fields(cls).items():
            if field_name in seen or field_name.startswith("_"):
                continue
            seen.add(field_name)
            raw = _kind_from_annotation(types, stmt.annotation, field_name, human)
            extra = overrides.get(field_name, {})
            if "type" in extra:
                raw["kind"] = _explicit_type(extra["type"])
                raw.pop("nargs", None)
            if "action" in extra:
                apply_keywords(raw, {"action": extra["action"]}, {})
            extra_names = _reader.literal(extra.get("flags")) if "flags" in extra else None
            names = [f"--{field_name.replace('_', '-')}"]
            if isinstance(extra_names, list):
                names += [str(n) for n in extra_names]
            out.append(to_spec(names, raw, field_name))
    return out


def float16_unsupported(files: dict[str, str]) -> tuple[list[str], str]:
    """(``_FLOAT16_NOT_SUPPORTED_MODELS``' model types, the fallback message), as vllm/config/model.py states them."""
    text = files.get(MODEL_CONFIG, "")
    types: list[str] = []
    found = re.search(r"^_FLOAT16_NOT_SUPPORTED_MODELS\s*=\s*\{(.*?)\}", text, re.MULTILINE | re.DOTALL)
    if found:
        types = re.findall(r"""["']([A-Za-z0-9_]+)["']\s*:""", found.group(1))
    message = re.search(r'"(Your device %s doesn\'t support %s\. Falling back to %s[^"]*)"', text)
    return sorted(set(types)), message.group(1) if message else ""


class Vllm(Engine):
    """vLLM."""

    name = "vllm"
    title = "vLLM"
    settings = {  # noqa: RUF012
        "model": ("model",),
        "served-model-name": ("served-model-name",),
        "max-model-len": ("max-model-len",),
        "tensor-parallel-size": ("tensor-parallel-size", "tp"),
        "gpu-memory-utilization": ("gpu-memory-utilization",),
        "dtype": ("dtype",),
        "kv-cache-dtype": ("kv-cache-dtype",),
        "max-num-batched-tokens": ("max-num-batched-tokens",),
        "max-num-seqs": ("max-num-seqs",),
        "limit-mm-per-prompt": ("limit-mm-per-prompt",),
        "mm-processor-kwargs": ("mm-processor-kwargs",),
        "mm-encoder-tp-mode": ("mm-encoder-tp-mode",),
        "port": ("port",),
        "host": ("host",),
        "enforce-eager": ("enforce-eager",),
    }
    default_port = 8000
    memory = MEMORY
    underscore_flags = True
    """vLLM's ``FlexibleArgumentParser`` turns ``--max_model_len`` into ``--max-model-len``."""
    joined_short = {"-O": "--optimization-level"}  # noqa: RUF012
    """``-O3`` is ``--optimization-level 3`` (``FlexibleArgumentParser.parse_args``)."""
    first_release = "0.12"
    release_line_parts = 2
    pip_download = ("--no-binary", ":all:", "--no-build-isolation", "--no-clean")
    """The source distribution (its wheels are ~500 MB; a release without one, 0.15.x, is read from the wheel);
    pip cannot build its metadata without CUDA, so
    ``--no-clean`` keeps the unpacked tree it downloaded."""
    json_message = "Value {value} cannot be converted to <function loads>."
    positional_model = True
    only_flags = frozenset(
        {
            "max-model-len",
            "tensor-parallel-size",
            "gpu-memory-utilization",
            "limit-mm-per-prompt",
            "mm-encoder-tp-mode",
            "max-num-batched-tokens",
        }
    )

    def read_registry(self, root: Path) -> ServedArchitectures:
        """``model_executor/models/registry.py`` of the vLLM under ``root``, read as text (bounded) and parsed."""
        from autoglm_doctor.safeio import read_text

        path = root / REGISTRY
        try:
            text = read_text(path, "metadata", REGISTRY_LIMIT, errors="replace")
        except OSError as exc:
            return ServedArchitectures(str(path), [], [f"{path} is missing or unreadable: {exc.strerror or exc}"])
        architectures, problems = registry_architectures(text, str(path))
        return ServedArchitectures(str(path), architectures, problems)

    def profile_batch(self, gpu_total: int, gpu_name: str) -> tuple[int, int]:
        """(tokens, sequences) it profiles and sizes CUDA graphs for when the launch names neither.

        8192 and 1024 on a GPU of :data:`HIGH_MEMORY_GIB` or more that is not an A100; else 2048 and 256.
        """
        high = gpu_total >= HIGH_MEMORY_GIB * GiB and "a100" not in gpu_name.lower()
        return (8192, 1024) if high else (2048, 256)

    def profile_peak(self, shape: ProfileShape) -> tuple[int, str]:
        """Peak of vLLM's profile run on one GPU, plus what is allocated outside torch (an estimate).

        The language model on ``--max-num-batched-tokens`` tokens and the sampler on ``--max-num-seqs`` rows
        of logits, or the vision encoder on the largest image the processor keeps, whichever is larger.
        """
        tokens, seqs = self.profile_batch(shape.gpu_total, shape.gpu_name)
        tokens, seqs = shape.batched_tokens or tokens, shape.max_seqs or seqs
        tp, per, hidden = shape.tensor_parallel, shape.dtype_bytes, shape.hidden_size
        inter = shape.intermediate_size or 4 * hidden
        text = tokens * (3 * inter // tp + 4 * hidden) * per
        logits = seqs * shape.vocab_size * 4 * 2
        language = text + logits
        parts = [f"{tokens} tokens x (3 x {inter}{'/' + str(tp) if tp > 1 else ''} + 4 x {hidden}) x {per} B"]
        if logits:
            parts.append(f"{seqs} x {shape.vocab_size} logits x 4 B x 2")
        vision = 0
        if shape.vision_hidden and shape.max_pixels:
            patches = shape.max_pixels // (shape.vision_patch * shape.vision_patch)
            vision = patches * (3 * shape.vision_hidden + 3 * shape.vision_mlp) * per
            parts.append(f"vision {patches} patches x (3 x {shape.vision_hidden} + 3 x {shape.vision_mlp}) x {per} B")
        peak = max(language, vision)
        formula = f"max of language {gib(language)} and vision {gib(vision)}: " if vision else ""
        extra = f" + {gib(NON_TORCH_BYTES)} outside torch"
        return peak + NON_TORCH_BYTES, formula + "; ".join(parts) + extra

    def outside_budget(self, shape: ProfileShape) -> list[Allowance]:
        """The CUDA context, the CUDA graphs (unless --enforce-eager), NCCL with tensor parallelism.

        vLLM takes its start-up snapshot after the context and NCCL exist (``Worker.init_device``) and
        captures the graphs after the KV cache is allocated (``GPUModelRunner.capture_model``); 0.12 says
        "memory_profiling does not consider CUDAGraph memory size".
        """
        context, nccl = shared_allowances(shape.tensor_parallel)
        items = [context]
        if not shape.eager:
            tokens, seqs = self.profile_batch(shape.gpu_total, shape.gpu_name)
            tokens, seqs = shape.batched_tokens or tokens, shape.max_seqs or seqs
            sizes = cuda_graph_sizes(seqs, tokens)
            # FULL_AND_PIECEWISE (0.12's default): a piecewise graph per size, a full decode graph per size up to
            # --max-num-seqs.
            graphs = len(sizes) + sum(1 for size in sizes if size <= seqs)
            graph_bytes = CUDA_GRAPH_BYTES_MEASURED * graphs // CUDA_GRAPHS_MEASURED
            label = f"{graphs} CUDA graphs (sizes 1..{sizes[-1] if sizes else 0})"
            items.append(Allowance(label, graph_bytes, "zai-org/GLM-V#204", eager_frees=True))
        else:
            items.append(Allowance("no CUDA graphs (--enforce-eager)", 0))
        return items + ([nccl] if nccl is not None else [])

    def table_extras(self, files: dict[str, str]) -> dict[str, Any]:
        """``_FLOAT16_NOT_SUPPORTED_MODELS`` and the bfloat16 fallback message of ``vllm/config/model.py``."""
        unsupported, fallback = float16_unsupported(files)
        return {"float16_unsupported": unsupported, "fallback_message": fallback}

    def flag_files(self, listing: list[str]) -> list[str]:
        """arg_utils.py, the frontend's cli_args.py, serve.py and every config module."""
        wanted = set(ARG_FILES)
        return sorted(p for p in listing if p in wanted or (p.startswith(CONFIG_FOLDER) and p.endswith(".py")))

    def registry_files(self, listing: list[str]) -> list[str]:
        """model_executor/models/registry.py."""
        return [REGISTRY] if REGISTRY in listing else []

    def registry_from_files(self, files: dict[str, str]) -> tuple[list[str], list[str]]:
        """The keys of registry.py's ``_..._MODELS`` dicts (:func:`registry_architectures`)."""
        if REGISTRY not in files:
            return [], [f"{REGISTRY}: missing"]
        return registry_architectures(files[REGISTRY])

    def read_flags(self, files: dict[str, str]) -> tuple[list[FlagSpec], list[str]]:
        """See :func:`read_vllm_flags`."""
        return read_vllm_flags(files)

    def dtype_on_gpu(self, *, dtype: str, bf16_supported: bool, gpu: str, version: str) -> tuple[str, str]:
        """VLLM's fallback, in the words ``vllm/config/model.py`` of that release logs it."""
        served, said = Engine.dtype_on_gpu(self, dtype=dtype, bf16_supported=bf16_supported, gpu=gpu, version=version)
        if not said:
            return served, said
        from autoglm_doctor.engines import table_facts

        logged = str(table_facts(self.name, version).get("fallback_message", ""))
        if logged.count("%s") == 3:
            said = "vLLM logs '" + logged % (gpu or "...", "torch.bfloat16", "torch.float16") + "'"
        return served, said


ENGINE = Vllm()
"""The engine this module describes."""
