"""A tiny LLaVA-shaped vision-language model, built offline, that answers like the phone agent.

Why LLaVA and not GLM-4.1V (AutoGLM-Phone-9B's architecture): GLM-4.1V's processor needs
torchvision, which has no CPU build on this machine's package index; LLaVA's processor
(CLIPImageProcessor + a tokenizer) loads on the CPU with Pillow and numpy alone.

The weights are random except for the language model's output path, which is set so greedy
decoding walks a fixed chain of tokens: every decoder layer's output projections are zero (the
residual stream carries the last token's embedding unchanged), the embeddings are one-hot,
and ``lm_head`` maps each token to its successor. After the prompt's last token
(``ASSISTANT:``) the model says ``<think>…</think><answer>do(action="Tap", element=[500,500])</answer>``
and stops. Everything else is real: the vision tower runs on the screenshot's pixels, the
processor expands ``<image>`` into image tokens, and the server streams what ``generate`` makes.
Pass ``reply=`` to make it say something else (prose, a bad action).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ACTION_REPLY = (
    "<think>",
    "The screen shows a test pattern; tapping its centre is a safe first step.",
    "</think>",
    "<answer>",
    'do(action="Tap", element=[500,500])',
    "</answer>",
)
"""The reply the model gives, token by token."""

SPECIALS = ("[PAD]", "[UNK]", "</s>", "<s>", "<image>")
WORDS = ("SYSTEM:", "USER:", "ASSISTANT:")
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | upper }}: "
    "{% if message['content'] is string %}{{ message['content'] }} {% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image> "
    "{% elif part['type'] == 'text' %}{{ part['text'] }} {% endif %}{% endfor %}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def make_tiny_vlm(folder: Path, *, reply: tuple[str, ...] = ACTION_REPLY) -> Path:
    """Build the tiny VLM into ``folder`` in a child process (the test process never imports torch)."""
    subprocess.run(
        [sys.executable, __file__, str(folder), json.dumps(list(reply))],
        check=True,
        capture_output=True,
        timeout=300,
        env=dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"),
    )
    return folder


def build_tiny_vlm(folder: Path, *, reply: tuple[str, ...] = ACTION_REPLY) -> Path:
    """Write config, weights, tokenizer and processor of the tiny VLM into ``folder`` (imports torch)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    vocab_list = [*SPECIALS, *WORDS, *dict.fromkeys(reply)]
    vocab = {token: index for index, token in enumerate(vocab_list)}
    size = 64
    assert len(vocab) <= size  # noqa: S101 - one-hot embeddings need hidden_size >= vocab

    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        eos_token="</s>",
        bos_token="<s>",
        extra_special_tokens={"image_token": "<image>"},
    )
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": 28},
        crop_size={"height": 28, "width": 28},
        do_center_crop=True,
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )

    text = LlamaConfig(
        vocab_size=size,
        hidden_size=size,
        intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=16384,
        tie_word_embeddings=False,
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["</s>"],
        pad_token_id=vocab["[PAD]"],
    )
    vision = CLIPVisionConfig(
        hidden_size=16, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=28, patch_size=14
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=vocab["<image>"],
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config).eval()
    chain = [vocab["ASSISTANT:"], *(vocab[t] for t in reply), vocab["</s>"]]
    successor = dict(zip(chain, chain[1:], strict=False))
    lm = model.get_decoder()
    with torch.no_grad():
        lm.embed_tokens.weight.copy_(torch.eye(size))
        for layer in lm.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        lm.norm.weight.fill_(1.0)
        head = torch.zeros(size, size)
        for token in range(size):
            head[successor.get(token, vocab["</s>"]), token] = 1.0
        model.lm_head.weight.copy_(head)
    model.generation_config.eos_token_id = vocab["</s>"]
    model.generation_config.pad_token_id = vocab["[PAD]"]
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    (folder / "README.md").write_text("tiny random LLaVA for autoglm-doctor's tests (see tests/helpers/tiny_vlm.py)\n")
    json.loads((folder / "config.json").read_text())  # written and readable
    return folder


if __name__ == "__main__":
    build_tiny_vlm(Path(sys.argv[1]), reply=tuple(json.loads(sys.argv[2])) if len(sys.argv) > 2 else ACTION_REPLY)
