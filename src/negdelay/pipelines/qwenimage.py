"""Qwen-Image with true CFG: a separate unconditional pass in ``cache_context("uncond")``; text of per-row length
(rows zero-padded and masked as the pipeline pads a batch; no mask when every token counts). The edit pipelines
encode the negative with the input image (the arguments of their own negative ``encode_prompt`` call are reused)."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import ones_mask_if_none, prompt_encoder
from .flux import TRUE_CFG
from .rows import concat_padded

TOKENS, MASK = "encoder_hidden_states", "encoder_hidden_states_mask"

QWEN = Declaration(
    family="Qwen-Image", mode="context", inputs=(TOKENS, MASK), needs=TRUE_CFG, merge=concat_padded(TOKENS, MASK),
    encode=prompt_encoder({TOKENS: 0, MASK: 1}, post=ones_mask_if_none(TOKENS, MASK)),
)
register(QWEN, "QwenImagePipeline", "QwenImageImg2ImgPipeline", "QwenImageInpaintPipeline",
         "QwenImageControlNetPipeline", "QwenImageControlNetInpaintPipeline", "QwenImageEditPipeline",
         "QwenImageEditPlusPipeline", "QwenImageEditInpaintPipeline", "QwenImageLayeredPipeline")
