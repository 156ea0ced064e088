"""A tiny Gemma-3 text encoder and a real ``GemmaTokenizer`` built in code, offline (no hub).

The tokenizer is transformers' own ``GemmaTokenizer`` (BPE with byte fallback, spaces normalised to "▁", left
padding) over a vocabulary made here: Gemma's special tokens at Gemma's ids (pad 0, eos 1, bos 2, unk 3, mask 4),
the 256 byte-fallback tokens, the characters of ``WORDS`` and ``▁``, and merges that make every word of ``WORDS``
one token both at the start of a text and after a space (``▁word``). Any other text still tokenizes, character
by character or byte by byte.

The text encoder is ``Gemma3ForConditionalGeneration`` with 2 text layers of width 32 and a 1-layer SigLIP
vision tower that text-only encoding never runs.
"""

from __future__ import annotations

import torch
from transformers import Gemma3Config, Gemma3ForConditionalGeneration, GemmaTokenizer

from negdelay.toy.tokenizer import bpe

WORDS = (
    "a girl eating pizza wearing glasses hat red blue green cat dog photo of the with extra fingers blurry "
    "ugly bad hands easy negative dot circle square very an in on and quality low"
).split()

SPECIAL = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>")
SPACE = "\u2581"  # ▁
IMAGE_TOKENS = ("<start_of_image>", "<end_of_image>", "<image_soft_token>")
HIDDEN = 32


def vocab_and_merges(words=WORDS) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Specials, byte-fallback tokens, characters, then merges making each ``word`` and ``▁word`` one token.

    Merges are appended until BPE (best-ranked pair first) turns every piece into one token. No merge joins a
    character to a following ``▁``, so a text's pieces never merge across a space.
    """
    tokens = list(SPECIAL) + [f"<0x{b:02X}>" for b in range(256)]
    seen = set(tokens)
    pieces = [p for w in words for p in (w, SPACE + w)]
    for ch in sorted({c for p in pieces for c in p}):
        if ch not in seen:
            seen.add(ch)
            tokens.append(ch)
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    changed = True
    while changed:  # merges are only appended, each piece's encoding only gets shorter: this ends
        changed = False
        for piece in pieces:
            parts = bpe(list(piece), ranks)
            while len(parts) > 1:
                pair = (parts[0], parts[1])
                ranks[pair] = len(merges)
                merges.append(pair)
                if pair[0] + pair[1] not in seen:
                    seen.add(pair[0] + pair[1])
                    tokens.append(pair[0] + pair[1])
                parts = bpe(list(piece), ranks)
                changed = True
    tokens += [t for t in IMAGE_TOKENS if t not in seen]
    return {t: i for i, t in enumerate(tokens)}, merges


def make_gemma_tokenizer(words=WORDS, model_max_length: int = 16) -> GemmaTokenizer:
    """A ``GemmaTokenizer`` built in memory (left padding, ``<bos>`` first): every word of ``words`` is one token."""
    vocab, merges = vocab_and_merges(words)
    tokenizer = GemmaTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length, add_bos_token=True)
    tokenizer.add_special_tokens({"additional_special_tokens": list(IMAGE_TOKENS)})
    return tokenizer


def tiny_gemma3(tokenizer, hidden: int = HIDDEN, layers: int = 2, seed: int = 0) -> Gemma3ForConditionalGeneration:
    """Gemma-3 with ``layers`` text layers of width ``hidden`` (all full attention) and a 1-layer vision tower."""
    ids = tokenizer.convert_tokens_to_ids
    torch.manual_seed(seed)
    config = Gemma3Config(
        text_config={
            "vocab_size": len(tokenizer), "hidden_size": hidden, "intermediate_size": 37, "num_hidden_layers": layers,
            "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16, "query_pre_attn_scalar": 16,
            "max_position_embeddings": 512, "sliding_window": 64, "layer_types": ["full_attention"] * layers,
            "pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id,
            "bos_token_id": tokenizer.bos_token_id,
        },
        vision_config={
            "hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
            "image_size": 8, "patch_size": 4,
        },
        mm_tokens_per_image=4, boi_token_index=ids("<start_of_image>"), eoi_token_index=ids("<end_of_image>"),
        image_token_index=ids("<image_soft_token>"),
    )
    return Gemma3ForConditionalGeneration(config).eval()
