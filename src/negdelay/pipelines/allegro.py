"""Allegro: PixArt's ``encode_prompt`` (T5 tokens and attention mask, negative padded to the prompt's
``max_sequence_length``) and one batched ``[unconditional, conditional]`` call per step; the embeddings reach the
transformer with a singleton axis (``b 1 l d``). Guidance is a local of ``__call__``, passed to ``encode_prompt``."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder
from .guidance import by_encode_argument

TOKENS, MASK = "encoder_hidden_states", "encoder_attention_mask"


def _axis_like_current(got, current, call):
    """The encoded tokens with the singleton axis the pipeline adds before its loop, where the input has it."""
    like = current.get(TOKENS)
    if like is not None and like.ndim == got[TOKENS].ndim + 1:
        got[TOKENS] = got[TOKENS].unsqueeze(1)
    return got


register(Declaration(family="Allegro", mode="batched", inputs=(TOKENS, MASK), guided=by_encode_argument,
                     encode=prompt_encoder({TOKENS: 0, MASK: 1}, post=_axis_like_current)),
         "AllegroPipeline")
