"""Bria 3.2: one batched call per step, ``[unconditional, conditional]`` rows of T5 tokens (each text encoded
alone, then zero-padded to ``max_sequence_length``; the text ids are zeros shared by all rows). Guidance:
``do_classifier_free_guidance`` property. An empty negative (``None``, ``""``) gives all-zero rows, not an encoded
"": negdelay gives a ``""`` negative zero rows too."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

TOKENS = "encoder_hidden_states"
_ENCODE = prompt_encoder({TOKENS: 0})


def encode_empty_as_zeros(pipeline, texts, current, call):
    """Each negative as the prompt path encodes it; a ``""`` negative as zeros, as the negative path gives it."""
    got = _ENCODE(pipeline, texts, current, call)
    for row, text in enumerate(texts):
        if text[0] == "":
            got[TOKENS][row] = 0
    return got


register(Declaration(family="Bria", mode="batched", inputs=(TOKENS,), encode=encode_empty_as_zeros), "BriaPipeline")
