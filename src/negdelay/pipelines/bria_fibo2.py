"""Bria Fibo 2.0: the unconditional pass is the second transformer call of each step (``guidance_scale > 1``), so
prompt and negative are never padded to each other. Its text is Qwen3-VL features in bundles,
``encoder_hidden_states`` ``(batch, bundles, tokens, features)`` (the token axis is 2), and a boolean
``encoder_attention_mask`` that is ``None`` when no token is padded. ``encode_prompt`` is called for the prompt (with
the images to edit), maybe for the caption without its text images, and last for the negative (no images): the
recorded arguments are the negative's, and a negative is encoded through that same call."""

from __future__ import annotations

import torch

from .declaration import Declaration, register
from .encoders import prompt_encoder

TOKENS, MASK = "encoder_hidden_states", "encoder_attention_mask"


def _row(source: dict, i: int):
    tokens, mask = source[TOKENS][i], source[MASK]
    real = torch.ones(tokens.shape[1], dtype=torch.bool, device=tokens.device) if mask is None else mask[i].bool()
    return tokens[:, real]


def padded_bundles(own: dict, negative: dict, keys) -> dict:
    """Row ``r`` from the pipeline's own pass (key None) or negative ``key``. Rows of one source are taken as that
    source padded them; rows of both keep their real tokens, right-padded with zeros to the longest under a mask.
    An all-true mask is ``None``, as the pipeline passes it."""
    rows = [(own, r) if k is None else (negative, k) for r, k in enumerate(keys)]
    sources = {id(source) for source, _ in rows}
    if len(sources) == 1:
        source = rows[0][0]
        index = torch.tensor([i for _, i in rows], device=source[TOKENS].device)
        mask = None if source[MASK] is None else source[MASK][index]
        return {TOKENS: source[TOKENS][index], MASK: None if mask is None or bool(mask.all()) else mask}
    real = [_row(source, i) for source, i in rows]
    width = max(t.shape[1] for t in real)
    tokens = torch.stack([torch.cat([t, t.new_zeros(t.shape[0], width - t.shape[1], t.shape[2])], dim=1) for t in real])
    lengths = torch.tensor([t.shape[1] for t in real], device=tokens.device)
    mask = torch.arange(width, device=tokens.device)[None, :] < lengths[:, None]
    return {TOKENS: tokens, MASK: None if bool(mask.all()) else mask}


register(Declaration(family="Bria Fibo 2.0", mode="ordered", inputs=(TOKENS, MASK),
                     encode=prompt_encoder({TOKENS: 0, MASK: 1}), merge=padded_bundles,
                     note="unconditional pass: the second transformer call of each step"),
         "BriaFibo2Pipeline")
