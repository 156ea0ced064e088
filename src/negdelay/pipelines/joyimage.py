"""JoyImage Edit: the unconditional pass is the second transformer call of each step (``guidance_scale > 1``), its
only text input ``encoder_hidden_states`` (no mask: padded positions are zeros on the text-only path, the pad
tokens' hidden states on the image path). Two prompt encoders, one per path: ``encode_prompt`` (text to image) and
``encode_prompt_multiple_images`` (editing: the negative is encoded with the reference image); both start a call,
and the negative is encoded through the one the call used (``call.started_by``)."""

from __future__ import annotations

import torch

from .declaration import Declaration, register
from .encoders import prompt_encoder

TOKENS = "encoder_hidden_states"


def zero_padded_rows(own: dict, negative: dict, keys) -> dict:
    """Row ``r`` from the pipeline's own pass (key None) or negative ``key``; rows of different widths (per-row
    schedules mixing the two) are right-padded with zeros to the widest, as the text-only path pads a batch."""
    rows = [own[TOKENS][r] if k is None else negative[TOKENS][k] for r, k in enumerate(keys)]
    width = max(row.shape[0] for row in rows)
    return {TOKENS: torch.stack([torch.cat([row, row.new_zeros(width - row.shape[0], row.shape[1])]) for row in rows])}


JOYIMAGE_EDIT = Declaration(
    family="JoyImage", mode="ordered", inputs=(TOKENS,), encode=prompt_encoder({TOKENS: 0}), merge=zero_padded_rows,
    starts=("encode_prompt", "encode_prompt_multiple_images"),
    note="unconditional pass: the second transformer call of each step; the negative is encoded by the path the "
         "call took (with the reference image when editing)",
)
register(JOYIMAGE_EDIT, "JoyImageEditPipeline")
