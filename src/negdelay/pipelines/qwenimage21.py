"""Qwen-Image 2.1: true CFG in ``cache_context("uncond")`` as Qwen-Image, plus two things of its own.

- ``img_mask``: the negative's vision-slot mask (which text positions hold condition-image tokens), one row per
  prompt (not per image), with one ``True`` slot per 2x2 group of target latents appended by ``__call__``; the
  transformer reads its row 0 as the layout of every row. The negative's mask comes from the same ``encode_prompt``
  call (with the call's condition images) and gets the same target slots.
- A prefix KV cache per pass (``use_kv_cache=True``, the default): the unconditional pass's text keys/values are
  computed at step 0 (``kv_cache_mode="extract"``) and read from the cache afterwards (``"cached"``), so a text
  swapped in later would not be seen. ``refill`` runs the pass where the text changes (start, stop) in
  ``"extract"`` mode: the transformer overwrites the pipeline's own unconditional cache with the new text's
  keys/values, and the later ``"cached"`` steps read them. With ``use_kv_cache=False`` there is no cache to refill.
"""

from __future__ import annotations

import torch

from .declaration import Declaration, register
from .encoders import ones_mask_if_none, prompt_encoder
from .flux import TRUE_CFG
from .rows import concat_padded

TOKENS, MASK, IMG = "encoder_hidden_states", "encoder_hidden_states_mask", "img_mask"

_text = concat_padded(TOKENS, MASK)


def _with_target_slots(got: dict, current: dict, call) -> dict:
    """post: the negative's vision-slot mask (encode_prompt's third output) with the call's target slots appended (the
    positions of ``img_mask`` past the text, as ``__call__`` appended them to the pipeline's own mask)."""
    got = ones_mask_if_none(TOKENS, MASK)(got, current, call)
    own = current[IMG]
    slots = own[:1, current[TOKENS].shape[1]:].expand(got[IMG].shape[0], -1)
    got[IMG] = torch.cat([got[IMG].to(own), slots], dim=1)
    return got


def _slot_mask(source: dict, k: int, width: int) -> torch.Tensor:
    """Row ``k`` (a text row of ``source``) of ``source``'s ``img_mask``: its text part cut or padded (with False, as
    encode_prompt pads) to ``width``, then its target slots."""
    img, length = source[IMG], source[TOKENS].shape[1]
    row = img[k // max(1, source[TOKENS].shape[0] // img.shape[0])]  # mask rows may be per prompt, text rows per image
    text, slots = row[:length][:width], row[length:]
    return torch.cat([text, text.new_zeros(width - text.shape[0]), slots])


def merge(own: dict, negative: dict, keys) -> dict:
    """Text rows as Qwen-Image (zero-padded, masked); ``img_mask`` rows, one per prompt, each from the source of that
    prompt's first image row, its text part at the merged width."""
    out = _text(own, negative, keys)
    width = out[TOKENS].shape[1]
    per = max(1, len(keys) // own[IMG].shape[0])
    rows = []
    for p in range(own[IMG].shape[0]):
        k = keys[p * per]
        rows.append(_slot_mask(own, p * per, width) if k is None else _slot_mask(negative, k, width))
    out[IMG] = torch.stack(rows)
    return out


def refill(kwargs: dict) -> dict:
    """The unconditional call where its text changes: fill the prefix cache again (``kv_cache_mode="extract"``)."""
    if kwargs.get("kv_cache") is not None and kwargs.get("kv_cache_mode") == "cached":
        kwargs["kv_cache_mode"] = "extract"
    return kwargs


QWEN21 = Declaration(
    family="Qwen-Image", mode="context", inputs=(TOKENS, MASK, IMG), needs=TRUE_CFG, merge=merge,
    encode=prompt_encoder({TOKENS: 0, MASK: 1, IMG: 2}, post=_with_target_slots), refill=refill,
    note="its unconditional KV cache is refilled from the new text at the start and stop steps",
)
register(QWEN21, "QwenImage21Pipeline")
