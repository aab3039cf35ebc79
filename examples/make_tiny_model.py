"""Create a tiny random Llama-style model and its tokenizer in a folder, offline.

Nothing is downloaded: the tokenizer is a WordLevel tokenizer trained on a few sentences
(``tokenizers``) and wrapped in ``PreTrainedTokenizerFast``; the model is a
``LlamaForCausalLM`` with random weights (hidden size 32, 2 layers, vocabulary 200).
The tests use it for a real smoke test on the CPU, and ``make check`` builds the bundled
example deployment's model with it::

    python examples/make_tiny_model.py examples/deployment/model
    python examples/make_tiny_model.py /tmp/tiny --shards 3     # a checkpoint in about 3 shards
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SENTENCES = [
    "open the settings app and turn on wifi",
    "tap the search box and type the name of the song",
    "send a message to alice saying i will be late",
    "scroll down to find the battery page and read the level",
    "go back to the home screen and open the camera",
    "take a photo and share it with bob in the chat",
    "set an alarm for seven in the morning on weekdays",
    "find the nearest coffee shop on the map and start navigation",
    "the quick brown fox jumps over the lazy dog",
    "what is the weather like today in beijing and shanghai",
    "play the next episode of the podcast at double speed",
    "order a taxi to the airport for three people",
]
SPECIAL = ["<unk>", "<pad>", "<s>", "</s>"]
VOCAB_SIZE = 200


def build_tokenizer(out: Path) -> int:
    """Train a WordLevel tokenizer on SENTENCES and save it; returns its vocabulary size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tok.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIAL))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        model_max_length=4096,
    )
    fast.save_pretrained(out)
    return int(tok.get_vocab_size())


def build_model(out: Path, *, seed: int = 0, shards: int = 1) -> None:
    """Create the random Llama model and save it as safetensors (about ``shards`` files when > 1)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,  # rotary: no weights, and room for the example config's 2048
        tie_word_embeddings=False,
        bos_token_id=2,
        eos_token_id=3,
        pad_token_id=1,
    )
    model = LlamaForCausalLM(config).to(torch.float32)
    model.generation_config.eos_token_id = None  # random weights: never stop early, always emit text
    model.generation_config.pad_token_id = 1
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    shard_kb = max(1, size // 1024 // shards + 1) if shards > 1 else None
    if shard_kb is None:
        model.save_pretrained(out, safe_serialization=True)
    else:
        model.save_pretrained(out, safe_serialization=True, max_shard_size=f"{shard_kb}KB")


def make(out: Path, *, seed: int = 0, shards: int = 1) -> Path:
    """Write tokenizer and model into ``out`` (created when missing)."""
    out.mkdir(parents=True, exist_ok=True)
    build_tokenizer(out)
    build_model(out, seed=seed, shards=shards)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: ``make_tiny_model.py OUT [--seed N] [--shards N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write the model into")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the weights")
    parser.add_argument("--shards", type=int, default=1, help="about this many safetensors shards (1: a single file)")
    args = parser.parse_args(argv)
    path = make(args.out, seed=args.seed, shards=args.shards)
    print(f"tiny model written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
