"""Motif-Video (text- and image-to-video): guidance through the pipeline's guider, one denoiser call per guider
batch; the unconditional pass runs in ``cache_context("pred_uncond")`` with the text tokens and their mask
(prompt and negative share one encoding path)."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

register(Declaration(family="Motif-Video", mode="context", context="pred_uncond",
                     inputs=("encoder_hidden_states", "encoder_attention_mask"),
                     encode=prompt_encoder({"encoder_hidden_states": 0, "encoder_attention_mask": 2}),
                     needs="the pipeline's guider guidance_scale > 1"),
         "MotifVideoPipeline", "MotifVideoImage2VideoPipeline")
