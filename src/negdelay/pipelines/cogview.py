"""CogView3-Plus and CogView4: text as ``encoder_hidden_states`` only (no mask reaches the transformer).

CogView3-Plus: one batched call per step, ``[unconditional, conditional]`` rows of T5 tokens padded to
``max_sequence_length`` (no negative: all-zero rows). CogView4: a separate unconditional call, in
``cache_context("uncond")`` (text-to-image) or as the second call of each step (Control). Its GLM tokens are padded
to the longest text of the batch, then left-padded to a multiple of 16, and encoded without an attention mask: a
row's embedding depends on its batch's width. negdelay encodes the negatives as one batch, as the stock pipeline
encodes a ``negative_prompt`` list; a step whose rows mix the pipeline's own negative and negdelay's (per-row
schedules) needs both of the same width.
"""

from __future__ import annotations

import torch

from .declaration import Declaration, register
from .encoders import prompt_encoder

TOKENS = "encoder_hidden_states"


def concat_same_width(own: dict, negative: dict, keys) -> dict:
    """Rows from the pipeline's own unconditional pass (key None) or from the negative's row ``key``; rows of
    unmasked text of another width cannot be padded without changing them."""
    mine, theirs = own[TOKENS], negative[TOKENS]
    if any(k is None for k in keys) and mine.shape[1] != theirs.shape[1]:
        raise ValueError(
            f"negdelay: this step mixes rows of the pipeline's own negative ({mine.shape[1]} tokens) and of "
            f"negative_prompt ({theirs.shape[1]} tokens); CogView4 encodes text without a mask, padded to the "
            "longest text of a batch, so rows of different widths cannot share a call. Give every row the same "
            "start/stop, or negatives of the same width (texts under 16 tokens all have 16)."
        )
    return {TOKENS: torch.cat([mine[r : r + 1] if k is None else theirs[k : k + 1] for r, k in enumerate(keys)])}


register(Declaration(family="CogView", mode="batched", inputs=(TOKENS,), encode=prompt_encoder({TOKENS: 0})),
         "CogView3PlusPipeline")
_COGVIEW4 = dict(family="CogView", mode="context", inputs=(TOKENS,), encode=prompt_encoder({TOKENS: 0}),
                 merge=concat_same_width)
register(Declaration(**_COGVIEW4), "CogView4Pipeline")
register(Declaration(**{**_COGVIEW4, "mode": "ordered"}), "CogView4ControlPipeline")
