"""LongCat-AudioDiT: the unconditional pass is the second transformer call of each step (``guidance_scale > 1``),
with UMT5 text tokens (``encoder_hidden_states``, the last hidden state plus the first, each layer-normed) and a
boolean mask of each text's real tokens (``encoder_attention_mask``). Without a negative the pipeline's own
unconditional tokens are zeros under the prompt's mask. A negative goes through the same ``encode_prompt`` as the
prompt (padded to the longest text of its batch; the prompt is normalised in ``__call__`` first, the negative is
not) and ``encode_prompt`` returns lengths, from which the mask is made as the pipeline makes it."""

from __future__ import annotations

import torch

from .declaration import Declaration, register
from .encoders import prompt_encoder

TOKENS, MASK = "encoder_hidden_states", "encoder_attention_mask"


def lengths_to_mask(got, current, call):
    """``encode_prompt``'s second output is each text's length: the mask over the padded width."""
    lengths = got.pop("lengths")
    width = got[TOKENS].shape[1]
    got[MASK] = torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]
    return got


def padded_rows(own: dict, negative: dict, keys) -> dict:
    """Row ``r`` from the pipeline's own pass (key None) or negative ``key``: each row's real tokens (by its mask),
    zero-padded to the longest of them under a boolean mask, as the pipeline pads a batch of negatives."""
    rows = [(own, r) if k is None else (negative, k) for r, k in enumerate(keys)]
    lengths = [int(source[MASK][i].sum()) for source, i in rows]
    width = max(max(lengths), 1)
    tokens = torch.stack([
        torch.cat([source[TOKENS][i, :n], source[TOKENS].new_zeros(width - n, source[TOKENS].shape[-1])])
        for (source, i), n in zip(rows, lengths)
    ])
    mask = torch.arange(width, device=tokens.device)[None, :] < torch.tensor(lengths, device=tokens.device)[:, None]
    return {TOKENS: tokens, MASK: mask}


register(Declaration(family="LongCat-AudioDiT", mode="ordered", inputs=(TOKENS, MASK),
                     encode=prompt_encoder({TOKENS: 0, "lengths": 1}, post=lengths_to_mask), merge=padded_rows,
                     note="unconditional pass: the second transformer call of each step"),
         "LongCatAudioDiTPipeline")
