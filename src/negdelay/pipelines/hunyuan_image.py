"""HunyuanImage 2.1 (text-to-image) and its refiner: guidance by the pipeline's guider
(``AdaptiveProjectedMixGuidance``: CFG, then APG after a start step), one transformer call per guider batch, the
unconditional one inside ``cache_context("pred_uncond")``. Text-to-image: Qwen2.5-VL tokens and mask plus ByT5 glyph tokens and mask (glyph
text is what the prompt quotes; none gives zeros); the refiner: Qwen tokens and mask only. The stock pipelines
encode the negative with the same ``encode_prompt`` as the prompt (``prompt=negative_prompt``): a negative is
encoded as a prompt."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

_TEXT = ("encoder_hidden_states", "encoder_attention_mask")
_GLYPH = ("encoder_hidden_states_2", "encoder_attention_mask_2")
_HI = dict(family="HunyuanImage 2.1", mode="context", context="pred_uncond",
           needs="the pipeline's guider enabled with guidance_scale > 1")

register(Declaration(**_HI, inputs=_TEXT + _GLYPH, encode=prompt_encoder(dict(zip(_TEXT + _GLYPH, range(4))))),
         "HunyuanImagePipeline")
register(Declaration(**_HI, inputs=_TEXT, encode=prompt_encoder(dict(zip(_TEXT, range(2))))),
         "HunyuanImageRefinerPipeline")
