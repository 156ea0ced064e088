"""Chroma: a separate unconditional pass, the second transformer call of each step (no cache context), with its own
T5 tokens and an attention mask over text and image tokens (the pipeline's ``_prepare_attention_mask``: the text
mask, then ones for the image tokens); ``txt_ids`` are zeros for every text."""

from __future__ import annotations

import torch

from .declaration import Declaration, register
from .encoders import positive_args


def _encode_chroma(pipeline, texts, current, call):
    embeds, _, mask = call.original("encode_prompt")(**positive_args(call, texts, ("prompt",)))[:3]
    own = current["attention_mask"]
    image_part = own[: 1, embeds.shape[1]:].expand(len(texts), -1)
    like = current["encoder_hidden_states"]
    return {"encoder_hidden_states": embeds.to(like.device, like.dtype),
            "attention_mask": torch.cat([mask.to(own.device, own.dtype), image_part], dim=1)}


register(
    Declaration(family="Chroma", mode="ordered", inputs=("encoder_hidden_states", "attention_mask"), encode=_encode_chroma),
    "ChromaPipeline", "ChromaImg2ImgPipeline", "ChromaInpaintPipeline",
)
