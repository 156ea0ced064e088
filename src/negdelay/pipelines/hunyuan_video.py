"""HunyuanVideo (1.0 family): a separate unconditional pass in ``cache_context("uncond")`` (txt2video) or as the
second call of each step (image-to-video, SkyReels, Framepack); Llama tokens, their mask and the CLIP pooled
embedding. The image-to-video negative is encoded with the black image the pipeline itself uses (the arguments of
its own negative ``encode_prompt`` call). HunyuanVideo 1.5 guides through a guider: the unconditional pass runs in
``cache_context("pred_uncond")`` with Qwen tokens, ByT5 glyph tokens and their masks."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

_HV = dict(
    family="HunyuanVideo", mode="context", inputs=("encoder_hidden_states", "encoder_attention_mask", "pooled_projections"),
    encode=prompt_encoder({"encoder_hidden_states": 0, "pooled_projections": 1, "encoder_attention_mask": 2},
                          text_args=("prompt", "prompt_2")),
    needs="guidance_scale > 1 (HunyuanVideo: true_cfg_scale > 1 and a negative_prompt)",
)
register(Declaration(**_HV), "HunyuanVideoPipeline")
register(Declaration(**{**_HV, "mode": "ordered", "note": "Framepack: steps count within each section"}),
         "HunyuanVideoImageToVideoPipeline", "HunyuanSkyreelsImageToVideoPipeline", "HunyuanVideoFramepackPipeline")

_HV15_INPUTS = ("encoder_hidden_states", "encoder_attention_mask", "encoder_hidden_states_2", "encoder_attention_mask_2")
register(
    Declaration(family="HunyuanVideo 1.5", mode="context", context="pred_uncond", inputs=_HV15_INPUTS,
                encode=prompt_encoder(dict(zip(_HV15_INPUTS, range(4)))), needs="the pipeline's guider guidance_scale > 1"),
    "HunyuanVideo15Pipeline", "HunyuanVideo15ImageToVideoPipeline",
)
