"""Stable Audio Open: one batched transformer call per step, ``[unconditional, conditional]`` rows; guidance is a
local of ``__call__`` (``guidance_scale > 1``) passed to ``encode_prompt``.

A row's ``encoder_hidden_states`` is ``[projected T5 tokens (masked) | seconds_start | seconds_end]``; without a
negative the unconditional rows are all zeros, durations included. The durations of each row are also the row's
``global_hidden_states`` (``[seconds_start, seconds_end]`` on the feature axis, the same in both halves): a
negative's row is its projected text followed by the row's own durations, read there. The text part is encoded
with the pipeline's ``encode_prompt`` as a prompt (the negative path zeroes masked tokens before the projection,
the prompt path after it: the same values)."""

from __future__ import annotations

import torch

from .declaration import Declaration, register
from .encoders import prompt_encoder
from .guidance import by_encode_argument

TOKENS, DURATIONS = "encoder_hidden_states", "global_hidden_states"
_TEXT = prompt_encoder({TOKENS: 0})


def encode_text(pipeline, texts, current, call):
    """The negatives' projected text tokens (no duration tokens)."""
    return _TEXT(pipeline, texts, current, call)


def text_then_durations(own: dict, negative: dict, keys) -> dict:
    """Row ``r``: the pipeline's own row (key None), or negative ``key``'s text with row ``r``'s durations."""
    rows = []
    for r, k in enumerate(keys):
        if k is None:
            rows.append(own[TOKENS][r])
            continue
        start, end = own[DURATIONS][r].chunk(2, dim=-1)  # [1, dim] each
        rows.append(torch.cat([negative[TOKENS][k], start, end]))
    return {TOKENS: torch.stack(rows), DURATIONS: own[DURATIONS]}


register(Declaration(family="Stable Audio", mode="batched", inputs=(TOKENS, DURATIONS), guided=by_encode_argument,
                     encode=encode_text, merge=text_then_durations,
                     note="the unconditional rows keep their own audio_start_in_s / audio_end_in_s"),
         "StableAudioPipeline")
