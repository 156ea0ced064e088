"""Kandinsky 6 (text/image-to-video and audio): a separate unconditional pass in ``cache_context("uncond")`` with the
Qwen2.5-VL tokens, their padding mask (None when no row is padded) and the CLIP pooled embedding; prompt and
negative share one encoding path (``_get_prompt_embeds``)."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

_INPUTS = ("encoder_hidden_states", "pooled_projections", "encoder_attention_mask")
register(Declaration(family="Kandinsky 6", mode="context", inputs=_INPUTS,
                     encode=prompt_encoder(dict(zip(_INPUTS, range(3))), text_args=("prompt",))),
         "Kandinsky6TI2VAPipeline")
