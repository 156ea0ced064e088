"""LongCat-Image: a separate unconditional transformer call per step in ``cache_context("uncond")``
(``guidance_scale > 1``). ``__call__`` calls ``encode_prompt`` once for the prompt and once for the negative (both
before the loop; negative path = prompt path: each text's tokens padded to 512 inside the Qwen2.5-VL chat
template, the template dropped). The text ids depend on the width only. The prompt rewriter
(``enable_prompt_rewrite``) rewrites prompts only.

LongCat-Image-Edit encodes ONE text per call with the prompt image (``_encode_prompt`` reads ``prompt[0]``):
negatives are encoded one by one, with the image the pipeline passes its own negative ``encode_prompt``."""

from __future__ import annotations

import torch

from .declaration import Declaration, register
from .encoders import prompt_encoder

_ONE = prompt_encoder({"encoder_hidden_states": 0})


def encode_one_by_one(pipeline, texts, current, call):
    """Each negative alone, as the edit pipeline encodes a (one-text) negative_prompt with its prompt image."""
    rows = [_ONE(pipeline, [text], current, call) for text in texts]
    return {name: torch.cat([row[name] for row in rows]) for name in rows[0]}


register(Declaration(family="LongCat-Image", mode="context", inputs=("encoder_hidden_states",),
                     encode=prompt_encoder({"encoder_hidden_states": 0})),
         "LongCatImagePipeline")
register(Declaration(family="LongCat-Image", mode="context", inputs=("encoder_hidden_states",),
                     encode=encode_one_by_one, note="one prompt per call"),
         "LongCatImageEditPipeline")
