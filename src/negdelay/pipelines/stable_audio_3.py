"""Stable Audio 3: one batched transformer call per step, ``[unconditional, conditional]`` rows
(``do_classifier_free_guidance`` property: ``guidance_scale > 1``; the distilled checkpoint runs without CFG).

A row's cross-attention context is ``[T5Gemma text tokens | duration token]`` with the mask ``[text mask | 1]``:
``prepare_cross_attention`` appends the duration embedding (the same ``global_hidden_states`` row both halves get)
after the text of prompt and negative alike. The text part is encoded through the pipeline's ``encode_prompt`` as a
prompt (the negative path is the same call); a negative's row is its text followed by the row's own duration token."""

from __future__ import annotations

import torch

from .declaration import Declaration, register
from .encoders import prompt_encoder

TOKENS, MASK = "encoder_hidden_states", "encoder_attention_mask"


def text_then_duration(own: dict, negative: dict, keys) -> dict:
    """Row ``r``: the pipeline's own row (key None); negative ``key``'s text tokens and mask followed by row ``r``'s
    duration token; rows that already carry one (the conditional pass's, as wide as the pipeline's) as they are."""
    whole = negative[TOKENS].shape[1] == own[TOKENS].shape[1]
    tokens, masks = [], []
    for r, k in enumerate(keys):
        if k is None or whole:
            source = own if k is None else negative
            row = r if k is None else k
            tokens.append(source[TOKENS][row])
            masks.append(source[MASK][row])
            continue
        tokens.append(torch.cat([negative[TOKENS][k], own[TOKENS][r, -1:]]))
        masks.append(torch.cat([negative[MASK][k], own[MASK][r, -1:]]))
    return {TOKENS: torch.stack(tokens), MASK: torch.stack(masks)}


register(Declaration(family="Stable Audio 3", mode="batched", inputs=(TOKENS, MASK),
                     encode=prompt_encoder({TOKENS: 0, MASK: 1}), merge=text_then_duration,
                     note="the unconditional rows keep their own duration token"),
         "StableAudio3Pipeline")
