"""Real model folders for the weights tests: safetensors written by hand, HF-cache layouts, shards."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

ITEMSIZE = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "U8": 1}

LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    "size 4976698672\n"
)


def safetensors_header(
    tensors: dict[str, tuple[str, list[int]]],
    *,
    offsets: dict[str, tuple[int, int]] | None = None,
    metadata: dict[str, str] | None = None,
) -> tuple[bytes, int]:
    """(8-byte length + JSON header, data section length) for ``tensors`` laid out back to back."""
    header: dict[str, Any] = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    position = 0
    for name, (dtype, shape) in tensors.items():
        count = 1
        for dim in shape:
            count *= dim
        nbytes = count * ITEMSIZE[dtype]
        begin, end = (offsets or {}).get(name, (position, position + nbytes))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}
        position = max(position, end)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # safetensors pads the header to 8 bytes
    return struct.pack("<Q", len(raw)) + raw, position


def write_safetensors(
    path: Path,
    tensors: dict[str, tuple[str, list[int]]],
    *,
    offsets: dict[str, tuple[int, int]] | None = None,
    size: int | None = None,
    sparse: bool = False,
) -> Path:
    """Write a safetensors file; ``size`` truncates or extends it; ``sparse`` leaves the data as a hole."""
    head, data_length = safetensors_header(tensors, offsets=offsets, metadata={"format": "pt"})
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(head)
        if not sparse:
            handle.write(bytes(range(256)) * (data_length // 256) + b"\x01" * (data_length % 256))
    if sparse:
        os.truncate(path, len(head) + data_length)
    if size is not None:
        os.truncate(path, size)
    return path


CONFIG: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 8,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 4096,
    "torch_dtype": "bfloat16",
    "vocab_size": 16,
}


def layer_tensors(layers: range, dtype: str = "BF16") -> dict[str, tuple[str, list[int]]]:
    """A few tensors per layer."""
    out: dict[str, tuple[str, list[int]]] = {}
    for n in layers:
        out[f"model.layers.{n}.self_attn.q_proj.weight"] = (dtype, [8, 8])
        out[f"model.layers.{n}.mlp.down_proj.weight"] = (dtype, [8, 4])
    return out


def build_model(
    folder: Path,
    *,
    shards: int = 1,
    layers: int = 2,
    config: dict[str, Any] | None = None,
    tokenizer: bool = True,
    vision: bool = False,
) -> Path:
    """A healthy model folder: config.json, tokenizer, weights (sharded with an index when shards > 1)."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = dict(config or CONFIG)
    if vision:
        cfg = {
            "architectures": ["Glm4vForConditionalGeneration"],
            "model_type": "glm4v",
            "text_config": dict(CONFIG),
            "vision_config": {"hidden_size": 8, "depth": 1},
        }
        (folder / "preprocessor_config.json").write_text(
            json.dumps({"image_processor_type": "Glm4vImageProcessor", "processor_class": "Glm4vProcessor"})
        )
    (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    if tokenizer:
        (folder / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "WordLevel"}}))
        (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast"}))
    embed = {"model.embed_tokens.weight": ("BF16", [16, 8])}
    if shards == 1:
        write_safetensors(folder / "model.safetensors", {**embed, **layer_tensors(range(layers))})
        return folder
    weight_map: dict[str, str] = {}
    per = max(1, layers // shards)
    for index in range(shards):
        name = f"model-{index + 1:05d}-of-{shards:05d}.safetensors"
        tensors = dict(embed) if index == 0 else {}
        last = layers if index == shards - 1 else (index + 1) * per
        tensors.update(layer_tensors(range(index * per, last)))
        write_safetensors(folder / name, tensors)
        weight_map.update(dict.fromkeys(tensors, name))
    index_doc = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index_doc, indent=2))
    return folder


def build_hf_cache(cache: Path, hub_id: str, source: Path, *, revision: str = "a" * 40) -> Path:
    """Move ``source``'s files into an HF-cache layout; returns the snapshot folder.

    Weight files become blobs named by their sha256 (as LFS files are), the others by a
    git-style sha1; the snapshot holds relative symlinks into ``blobs/``, and refs/main names
    the revision.
    """
    repo = cache / ("models--" + hub_id.replace("/", "--"))
    blobs, snapshot = repo / "blobs", repo / "snapshots" / revision
    blobs.mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    for path in sorted(source.iterdir()):
        content = path.read_bytes()
        if path.suffix in {".safetensors", ".bin"}:
            blob = hashlib.sha256(content).hexdigest()
        else:
            blob = hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()  # noqa: S324 - git's object id
        (blobs / blob).write_bytes(content)
        (snapshot / path.name).symlink_to(Path("..", "..", "blobs", blob))
    return snapshot
