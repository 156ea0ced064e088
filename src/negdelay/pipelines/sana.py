"""Sana (and its ControlNet): one batched call per step, ``[unconditional, conditional]`` rows with the Gemma
attention mask (``do_classifier_free_guidance`` property).

The prompt is encoded behind the ``complex_human_instruction`` (then its first token and last
``max_sequence_length - 1`` tokens are kept); the negative is encoded without it. So a negative is encoded with the
pipeline's own ``encode_prompt`` as a prompt with no instruction, which keeps all ``max_sequence_length`` tokens.
"""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import positive_args

TOKENS, MASK = "encoder_hidden_states", "encoder_attention_mask"


def encode_without_instruction(pipeline, texts, current, call):
    """The negatives as ``encode_prompt`` encodes its ``negative_prompt``: the call's arguments, no instruction."""
    args = positive_args(call, texts, ("prompt",))
    args["complex_human_instruction"] = None
    embeds, mask = call.original("encode_prompt")(**args)[:2]
    return {TOKENS: embeds.to(current[TOKENS].device, current[TOKENS].dtype),
            MASK: mask.to(current[MASK].device, current[MASK].dtype)}


_SANA = dict(family="Sana", mode="batched", inputs=(TOKENS, MASK), encode=encode_without_instruction)
register(Declaration(**_SANA), "SanaPipeline")
register(Declaration(**_SANA, denoisers=("transformer", "controlnet")), "SanaControlNetPipeline")
