"""A tiny ``QwenImagePipeline`` of the real diffusers/transformers classes, built in code, offline (no hub).

The tokenizer is a real ``Qwen2Tokenizer`` (byte-level BPE, Qwen's own pre-tokenizer regex) over a vocabulary
made here: the 256 byte symbols, merges that make every word of the pipeline's prompt template and of
``WORDS`` a single token (with and without its leading space), and Qwen's special tokens. Any other text
still tokenizes, byte by byte.

Because every word of the template is one token, as in the real Qwen tokenizer, the template's system
part plus ``<|im_start|>user\\n`` is exactly 34 tokens: the pipeline's own
``prompt_template_encode_start_idx = 34`` drops exactly that prefix, and no attribute of the pipeline is
changed. Each prompt keeps its own tokens plus the 5 template tokens after it
(``<|im_end|>``, ``\\n``, ``<|im_start|>``, ``assistant``, ``\\n``), so even ``""`` gives a non-empty embedding.
"""

from __future__ import annotations

import re

import torch
from diffusers import (
    AutoencoderKLQwenImage,
    FlowMatchEulerDiscreteScheduler,
    QwenImagePipeline,
    QwenImageTransformer2DModel,
)
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2Tokenizer

from negdelay.toy.tokenizer import bpe

HIDDEN = 32  # text encoder hidden size = transformer's joint_attention_dim
TEMPLATE_PREFIX_TOKENS = 34  # tokens of the template before the prompt (what the pipeline drops)

WORDS = (
    "a girl eating pizza wearing glasses hat red blue green cat dog photo of the with extra fingers blurry "
    "ugly bad hands easy negative dot circle square very an in on and quality low"
).split()

SPECIAL = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",
    "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>",
)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable unicode map, as byte-level BPE uses it (Ġ is a space, Ċ a newline)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def _pretokens(text: str) -> list[str]:
    """Qwen2's pre-tokens of ``text`` (regex split, then byte-level symbols), from a tokenizer with no merges."""
    bare = Qwen2Tokenizer(vocab={s: i for i, s in enumerate(_bytes_to_unicode().values())}, merges=[])
    return [piece for piece, _ in bare._tokenizer.pre_tokenizer.pre_tokenize_str(text)]


def vocab_and_merges(texts: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte vocabulary plus merges making each pre-token of ``texts`` one token; special tokens last.

    Merges are appended until BPE (best-ranked pair first, across the whole pre-token) turns every
    pre-token into one token: a merge made for one word must not split another one differently.
    """
    tokens = list(_bytes_to_unicode().values())
    seen = set(tokens)
    pieces = []
    for text in texts:
        for piece in _pretokens(text):
            if piece not in pieces:
                pieces.append(piece)
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    changed = True
    while changed:  # merges are only appended, each pre-token's encoding only gets shorter: this ends
        changed = False
        for piece in pieces:
            parts = bpe(piece, ranks)
            while len(parts) > 1:
                pair = (parts[0], parts[1])
                ranks[pair] = len(merges)
                merges.append(pair)
                if pair[0] + pair[1] not in seen:
                    seen.add(pair[0] + pair[1])
                    tokens.append(pair[0] + pair[1])
                parts = bpe(piece, ranks)
                changed = True
    tokens += [s for s in SPECIAL if s not in seen]
    return {t: i for i, t in enumerate(tokens)}, merges


def make_qwen_tokenizer(words=WORDS, template: str | None = None) -> Qwen2Tokenizer:
    """A ``Qwen2Tokenizer`` built in memory: every word of ``words`` and of ``template`` is one token."""
    template = TEMPLATE if template is None else template
    # The special tokens are added tokens, split off before BPE: the pieces between them are what BPE sees.
    pieces = re.split("|".join(map(re.escape, SPECIAL)), template.replace("{}", " "))
    texts = pieces + [" ".join(words)] + list(words)
    vocab, merges = vocab_and_merges(texts)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges)
    tokenizer.add_special_tokens({"additional_special_tokens": list(SPECIAL[1:])})
    return tokenizer


# QwenImagePipeline.__init__ sets this template; tiny_qwenimage checks that it still matches.
TEMPLATE = (
    "<|im_start|>system\nDescribe the image by detailing the color, shape, size, texture, quantity, text, spatial "
    "relationships of the objects and background:<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
)


def tiny_text_encoder(tokenizer, hidden=HIDDEN, seed=0) -> Qwen2_5_VLForConditionalGeneration:
    """Qwen2.5-VL with 2 text layers of width ``hidden`` and a 1-block vision tower; vocab = the tokenizer's."""
    ids = tokenizer.convert_tokens_to_ids
    torch.manual_seed(seed)
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": hidden, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 2,
            "num_key_value_heads": 2, "vocab_size": len(tokenizer), "max_position_embeddings": 2048,
            "rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 1000000.0},
            "bos_token_id": ids("<|endoftext|>"), "eos_token_id": ids("<|im_end|>"),
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "depth": 1, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": hidden,
            "fullatt_block_indexes": [0],
        },
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
    )
    return Qwen2_5_VLForConditionalGeneration(config).eval()


def tiny_qwenimage(scheduler=None) -> QwenImagePipeline:
    """A tiny QwenImagePipeline; use height=width=32 (latents 8x8, 16 packed tokens). Deterministic weights."""
    tokenizer = make_qwen_tokenizer()
    text_encoder = tiny_text_encoder(tokenizer)
    torch.manual_seed(0)
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=3,
        joint_attention_dim=HIDDEN, guidance_embeds=False, axes_dims_rope=(8, 4, 4),
    ).eval()
    torch.manual_seed(0)
    vae = AutoencoderKLQwenImage(
        base_dim=24, z_dim=4, dim_mult=[1, 2, 4], num_res_blocks=1, temperal_downsample=[False, True],
        latents_mean=[0.0] * 4, latents_std=[1.0] * 4,
    ).eval()
    pipe = QwenImagePipeline(
        scheduler=scheduler or FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder,
        tokenizer=tokenizer, transformer=transformer,
    )
    if pipe.prompt_template_encode != TEMPLATE:
        raise RuntimeError("QwenImagePipeline's prompt template changed; rebuild the tiny tokenizer for it")
    pipe.set_progress_bar_config(disable=True)
    return pipe
