"""The served deployment's real parts: AutoGLM-Phone-9B's model folder (headers, sparse data), launch files, venvs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers.model_folders import write_safetensors
from tests.helpers.venvs import Venv

# Open-AutoGLM's README (README_en.md, "Option B: Deploy Model Yourself"), as a user saves it to serve.sh.
README_LAUNCH = r"""#!/bin/sh
python3 -m vllm.entrypoints.openai.api_server \
 --served-model-name autoglm-phone-9b \
 --allowed-local-media-path /   \
 --mm-encoder-tp-mode data \
 --mm_processor_cache_type shm \
 --mm_processor_kwargs "{\"max_pixels\":5000000}" \
 --max-model-len 25480  \
 --chat-template-content-format string \
 --limit-mm-per-prompt "{\"image\":10}" \
 --model zai-org/AutoGLM-Phone-9B \
 --port 8000
"""

# AutoGLM-Phone-9B's config.json (the GLM-4.1V-9B shape: Glm4vForConditionalGeneration).
CONFIG: dict[str, Any] = {
    "architectures": ["Glm4vForConditionalGeneration"],
    "model_type": "glm4v",
    "torch_dtype": "bfloat16",
    "image_token_id": 151343,
    "video_token_id": 151344,
    "text_config": {
        "model_type": "glm4v_text",
        "hidden_size": 4096,
        "intermediate_size": 13696,
        "num_hidden_layers": 40,
        "num_attention_heads": 32,
        "num_key_value_heads": 2,
        "head_dim": 128,
        "max_position_embeddings": 65536,
        "vocab_size": 151552,
        "rms_norm_eps": 1e-05,
        "partial_rotary_factor": 0.5,
        "torch_dtype": "bfloat16",
    },
    "vision_config": {
        "model_type": "glm4v",
        "depth": 24,
        "hidden_size": 1536,
        "num_heads": 12,
        "intermediate_size": 13696,
        "out_hidden_size": 4096,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "in_channels": 3,
        "image_size": 336,
    },
}
PREPROCESSOR = {
    "image_processor_type": "Glm4vImageProcessor",
    "processor_class": "Glm4vProcessor",
    "patch_size": 14,
    "merge_size": 2,
    "temporal_patch_size": 2,
    "size": {"shortest_edge": 12544, "longest_edge": 9633792},
}


def _attention(prefix: str, h: int, kv: int) -> dict[str, tuple[str, list[int]]]:
    """One decoder layer's attention (q/k/v with bias, o) and its two norms, as GLM-4 and Qwen2 name them."""
    return {
        f"{prefix}.self_attn.q_proj.weight": ("BF16", [h, h]),
        f"{prefix}.self_attn.q_proj.bias": ("BF16", [h]),
        f"{prefix}.self_attn.k_proj.weight": ("BF16", [kv, h]),
        f"{prefix}.self_attn.k_proj.bias": ("BF16", [kv]),
        f"{prefix}.self_attn.v_proj.weight": ("BF16", [kv, h]),
        f"{prefix}.self_attn.v_proj.bias": ("BF16", [kv]),
        f"{prefix}.self_attn.o_proj.weight": ("BF16", [h, h]),
        f"{prefix}.input_layernorm.weight": ("BF16", [h]),
        f"{prefix}.post_attention_layernorm.weight": ("BF16", [h]),
    }


def glm4v_tensors() -> dict[str, tuple[str, list[int]]]:
    """Every tensor of GLM-4.1V-9B by name and shape (language model, vision tower, merger): ~10.3 B parameters."""
    h, inter, vocab, kv = 4096, 13696, 151552, 2 * 128
    out: dict[str, tuple[str, list[int]]] = {
        "model.language_model.embed_tokens.weight": ("BF16", [vocab, h]),
        "lm_head.weight": ("BF16", [vocab, h]),
        "model.language_model.norm.weight": ("BF16", [h]),
    }
    for n in range(40):
        p = f"model.language_model.layers.{n}"
        out |= _attention(p, h, kv) | {
            f"{p}.mlp.gate_up_proj.weight": ("BF16", [2 * inter, h]),
            f"{p}.mlp.down_proj.weight": ("BF16", [h, inter]),
            f"{p}.post_self_attn_layernorm.weight": ("BF16", [h]),
            f"{p}.post_mlp_layernorm.weight": ("BF16", [h]),
        }
    vh, vout = 1536, 4096
    out["model.visual.patch_embed.proj.weight"] = ("BF16", [vh, 3, 2, 14, 14])
    for n in range(24):
        p = f"model.visual.blocks.{n}"
        out |= {
            f"{p}.attn.qkv.weight": ("BF16", [3 * vh, vh]),
            f"{p}.attn.proj.weight": ("BF16", [vh, vh]),
            f"{p}.mlp.gate_proj.weight": ("BF16", [vout, vh]),
            f"{p}.mlp.up_proj.weight": ("BF16", [vout, vh]),
            f"{p}.mlp.down_proj.weight": ("BF16", [vh, vout]),
            f"{p}.norm1.weight": ("BF16", [vh]),
            f"{p}.norm2.weight": ("BF16", [vh]),
        }
    out |= {
        "model.visual.downsample.weight": ("BF16", [vout, vh, 2, 2]),
        "model.visual.merger.proj.weight": ("BF16", [vout, vout]),
        "model.visual.merger.gate_proj.weight": ("BF16", [inter, vout]),
        "model.visual.merger.up_proj.weight": ("BF16", [inter, vout]),
        "model.visual.merger.down_proj.weight": ("BF16", [vout, inter]),
    }
    return out


def build_autoglm_phone(folder: Path, *, shards: int = 4, config: dict[str, Any] | None = None) -> Path:
    """AutoGLM-Phone-9B's folder: real headers and index, sparse data (~20.6 GB on paper, a few MB on disk)."""
    return _build_vlm(folder, config or CONFIG, PREPROCESSOR, glm4v_tensors(), shards)


# Qwen2.5-VL-7B-Instruct's config.json and preprocessor_config.json (the fields the doctor reads), as on the Hub.
QWEN25_VL_CONFIG: dict[str, Any] = {
    "architectures": ["Qwen2_5_VLForConditionalGeneration"],
    "model_type": "qwen2_5_vl",
    "torch_dtype": "bfloat16",
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "max_position_embeddings": 128000,
    "vocab_size": 152064,
    "rms_norm_eps": 1e-06,
    "tie_word_embeddings": False,
    "image_token_id": 151655,
    "video_token_id": 151656,
    "vision_config": {
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "in_chans": 3,
        "out_hidden_size": 3584,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
    },
}
QWEN25_VL_PREPROCESSOR = {
    "image_processor_type": "Qwen2VLImageProcessor",
    "processor_class": "Qwen2_5_VLProcessor",
    "min_pixels": 3136,
    "max_pixels": 12845056,
    "patch_size": 14,
    "merge_size": 2,
    "temporal_patch_size": 2,
}


def qwen25_vl_tensors() -> dict[str, tuple[str, list[int]]]:
    """Every tensor of Qwen2.5-VL-7B by name and shape (language model, vision tower, merger): ~8.29 B parameters."""
    h, inter, vocab, kv = 3584, 18944, 152064, 4 * 128
    out: dict[str, tuple[str, list[int]]] = {
        "model.embed_tokens.weight": ("BF16", [vocab, h]),
        "lm_head.weight": ("BF16", [vocab, h]),
        "model.norm.weight": ("BF16", [h]),
    }
    for n in range(28):
        p = f"model.layers.{n}"
        out |= _attention(p, h, kv) | {
            f"{p}.mlp.gate_proj.weight": ("BF16", [inter, h]),
            f"{p}.mlp.up_proj.weight": ("BF16", [inter, h]),
            f"{p}.mlp.down_proj.weight": ("BF16", [h, inter]),
        }
    vh, vmlp = 1280, 3420
    out["visual.patch_embed.proj.weight"] = ("BF16", [vh, 3, 2, 14, 14])
    for n in range(32):
        p = f"visual.blocks.{n}"
        out |= {
            f"{p}.attn.qkv.weight": ("BF16", [3 * vh, vh]),
            f"{p}.attn.qkv.bias": ("BF16", [3 * vh]),
            f"{p}.attn.proj.weight": ("BF16", [vh, vh]),
            f"{p}.attn.proj.bias": ("BF16", [vh]),
            f"{p}.mlp.gate_proj.weight": ("BF16", [vmlp, vh]),
            f"{p}.mlp.gate_proj.bias": ("BF16", [vmlp]),
            f"{p}.mlp.up_proj.weight": ("BF16", [vmlp, vh]),
            f"{p}.mlp.up_proj.bias": ("BF16", [vmlp]),
            f"{p}.mlp.down_proj.weight": ("BF16", [vh, vmlp]),
            f"{p}.mlp.down_proj.bias": ("BF16", [vh]),
            f"{p}.norm1.weight": ("BF16", [vh]),
            f"{p}.norm2.weight": ("BF16", [vh]),
        }
    out |= {
        "visual.merger.ln_q.weight": ("BF16", [vh]),
        "visual.merger.mlp.0.weight": ("BF16", [4 * vh, 4 * vh]),
        "visual.merger.mlp.0.bias": ("BF16", [4 * vh]),
        "visual.merger.mlp.2.weight": ("BF16", [h, 4 * vh]),
        "visual.merger.mlp.2.bias": ("BF16", [h]),
    }
    return out


def build_qwen25_vl(folder: Path, *, shards: int = 5) -> Path:
    """Qwen2.5-VL-7B-Instruct's folder: real headers and index, sparse data (~16.6 GB on paper)."""
    return _build_vlm(folder, QWEN25_VL_CONFIG, QWEN25_VL_PREPROCESSOR, qwen25_vl_tensors(), shards)


def _build_vlm(
    folder: Path,
    config: dict[str, Any],
    preprocessor: dict[str, Any],
    all_tensors: dict[str, tuple[str, list[int]]],
    shards: int,
) -> Path:
    """A VLM's folder: config, processor, tokenizer files, and the tensors in ``shards`` sparse safetensors files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    (folder / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "BPE"}}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast"}))
    (folder / "chat_template.jinja").write_text("{{ messages }}")
    tensors = list(all_tensors.items())
    per = -(-len(tensors) // shards)
    weight_map: dict[str, str] = {}
    for index in range(shards):
        name = f"model-{index + 1:05d}-of-{shards:05d}.safetensors"
        chunk = dict(tensors[index * per : (index + 1) * per])
        write_safetensors(folder / name, chunk, sparse=True)
        weight_map |= dict.fromkeys(chunk, name)
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}, indent=2)
    )
    return folder


def build_autoglm_in_hf_cache(hub: Path, hub_id: str = "zai-org/AutoGLM-Phone-9B") -> Path:
    """AutoGLM-Phone-9B downloaded into an HF cache (``hub`` is HF_HOME/hub): blobs, a snapshot of links, refs/main.

    The files are moved, not copied, so the weights stay sparse (model_folders.build_hf_cache reads
    and rewrites every byte: 20 GB here). Weight blobs are named by the sha256 of their header only;
    the tests that use this never verify hashes.
    """
    import hashlib
    import os

    repo = hub / ("models--" + hub_id.replace("/", "--"))
    revision = "b" * 40
    source = build_autoglm_phone(repo / "download")
    blobs, snapshot = repo / "blobs", repo / "snapshots" / revision
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    for path in sorted(source.iterdir()):
        with open(path, "rb") as handle:
            blob = hashlib.sha256(handle.read(1 << 20)).hexdigest()
        os.rename(path, blobs / blob)
        (snapshot / path.name).symlink_to(Path("..", "..", "blobs", blob))
    source.rmdir()
    return snapshot


def write_launch(
    folder: Path, model: Path | str, *, text: str = README_LAUNCH, name: str = "serve.sh", **flags: str
) -> Path:
    """The README's launch command with ``--model`` pointing at ``model`` and flags replaced or added."""
    text = text.replace("zai-org/AutoGLM-Phone-9B", str(model))
    for flag, value in flags.items():
        spelled = "--" + flag.replace("_", "-")
        lines = text.rstrip("\n").split("\n")
        hit = [i for i, line in enumerate(lines) if line.strip().startswith(spelled + " ")]
        if hit:
            lines[hit[0]] = f" {spelled} {value} \\"
        else:
            lines.insert(len(lines) - 1, f" {spelled} {value} \\")
        text = "\n".join(lines) + "\n"
    path = folder / name
    path.write_text(text)
    return path


# Requires-Dist lines as the releases state them on PyPI (pip install --dry-run --no-deps --report).
ENGINES = {
    ("vllm", "0.12.0"): {
        "torch": "2.9.0",
        "transformers": "4.57.1",
        "requires": [
            "torch==2.9.0",
            "transformers<5,>=4.56.0",
            "pillow",
            "torchaudio==2.9.0",
            "torchvision==0.24.0",
        ],
        # installed beside it, as pip would: the processors of vision models need them (weights.architecture)
        "companions": {
            "pillow": ("11.0.0", []),
            "torchaudio": ("2.9.0", ["torch==2.9.0"]),
            "torchvision": ("0.24.0", ["torch==2.9.0"]),
        },
    },
    ("sglang", "0.5.6.post1"): {
        "torch": "2.9.1",
        "transformers": "5.0.0rc0",
        "requires": ["torch==2.9.1", "transformers==5.0.0rc0"],
    },
}


def server_venv(venv: Venv, *, engine: str = "vllm", version: str = "0.12.0", torch: str | None = None) -> Venv:
    """A server environment: the engine with its real pins, the torch and transformers it pins, no client packages."""
    pins = ENGINES[(engine, version)]
    venv.add_torch(torch or pins["torch"], cuda="12.8")
    venv.add(engine, version, pins["requires"])
    venv.add("transformers", pins["transformers"])
    for name, (companion, requires) in pins.get("companions", {}).items():
        venv.add(name, companion, requires, package="PIL" if name == "pillow" else None)
    return venv
