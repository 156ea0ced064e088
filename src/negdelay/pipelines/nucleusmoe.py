"""Nucleus-MoE Image: a separate unconditional transformer call per step, the second of each step, no cache
context (ordered mode; ``guidance_scale > 1``). Text: Qwen3-VL hidden states (``return_index``) of the
chat-templated text, padded to the batch's longest text (a multiple of 8), with a mask that is ``None`` when every
token counts. ``__call__`` encodes the negative with its own ``encode_prompt`` call (negative path = prompt path).

Rows of the pipeline's own negative and of negdelay's (per-row schedules) may have different widths: they are
zero-padded to the wider one and masked; when every row takes negdelay's negatives, its batch goes in as encoded
(what the stock pipeline passes for that ``negative_prompt``)."""

from __future__ import annotations

import torch

from .declaration import Declaration, register
from .encoders import prompt_encoder

TOKENS, MASK = "encoder_hidden_states", "encoder_hidden_states_mask"


def _ones_if_none(tokens, mask):
    return torch.ones(tokens.shape[:2], dtype=torch.long, device=tokens.device) if mask is None else mask


def concat_to_widest(own: dict, negative: dict, keys) -> dict:
    """Row ``r`` from the pipeline's own pass (key None) or the negative's row ``key``, right-padded with zeros (mask
    0) to the widest source; an all-ones mask is ``None``, as the pipeline passes it."""
    sources = {None: (own[TOKENS], _ones_if_none(own[TOKENS], own[MASK])),
               "neg": (negative[TOKENS], _ones_if_none(negative[TOKENS], negative[MASK]))}
    picked = [(sources[None][0][r], sources[None][1][r]) if k is None else (sources["neg"][0][k], sources["neg"][1][k])
              for r, k in enumerate(keys)]
    width = max(t.shape[0] for t, _ in picked)
    tokens = torch.stack([torch.cat([t, t.new_zeros(width - t.shape[0], t.shape[1])]) for t, _ in picked])
    mask = torch.stack([torch.cat([m, m.new_zeros(width - m.shape[0])]) for _, m in picked])
    return {TOKENS: tokens, MASK: None if bool(mask.all()) else mask}


def _mask_if_none(got, current, call):
    got[MASK] = _ones_if_none(got[TOKENS], got[MASK])
    return got


register(Declaration(family="Nucleus-MoE Image", mode="ordered", inputs=(TOKENS, MASK), merge=concat_to_widest,
                     encode=prompt_encoder({TOKENS: 0, MASK: 1}, post=_mask_if_none)),
         "NucleusMoEImagePipeline")
