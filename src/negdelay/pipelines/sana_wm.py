"""SANA-WM (camera-controlled image-to-video world model): one batched transformer call per step with
``[unconditional, conditional]`` rows; the text goes in positionally (``encoder_hidden_states``, Gemma-2 states
``[rows, 1, tokens, dim]``) with its padding mask as ``mask``.

``encode_prompt`` takes one prompt and one negative: the prompt behind the chi prompt (then its first token and
last ``max_sequence_length - 1`` tokens kept), the negative on its own, right-padded to ``max_sequence_length``.
A negative is encoded through that negative path, one text at a time, with the call's own arguments; the prompt's
rows are handed back in as ``prompt_embeds`` so that only the negative runs through the text encoder.
"""

from __future__ import annotations

import torch

from .declaration import Declaration, register

TOKENS, MASK = "encoder_hidden_states", "mask"


def encode_negative(pipeline, texts, current, call):
    """Each negative text as ``encode_prompt`` encodes its ``negative_prompt`` in this call."""
    encode = call.original(call.started_by)
    args = dict(call.encode_args, negative_prompt_embeds=None, negative_prompt_attention_mask=None,
                prompt_embeds=current[TOKENS][:1], prompt_attention_mask=current[MASK][:1])
    rows = [encode(**dict(args, negative_prompt=text[0]))[2:4] for text in texts]
    embeds = torch.cat([r[0] for r in rows]).to(current[TOKENS].device, current[TOKENS].dtype)
    mask = torch.cat([r[1] for r in rows]).to(current[MASK].device, current[MASK].dtype)
    return {TOKENS: embeds, MASK: mask}


register(Declaration(family="SANA-WM", mode="batched", inputs=(TOKENS, MASK), encode=encode_negative,
                     note="image-to-video with a camera path; one prompt per call"),
         "SanaWMPipeline")
