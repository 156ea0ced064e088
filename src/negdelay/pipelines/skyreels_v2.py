"""SkyReels-V2 (text- and image-to-video): Wan's loop, a separate unconditional pass in ``cache_context("uncond")``
with the T5 tokens only (zero-padded, no mask); the image embedding is the same in both passes. The diffusion
forcing variants are not served (src/negdelay/pipelines/coverage.py says why)."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

register(Declaration(family="SkyReels-V2", mode="context", inputs=("encoder_hidden_states",),
                     encode=prompt_encoder({"encoder_hidden_states": 0})),
         "SkyReelsV2Pipeline", "SkyReelsV2ImageToVideoPipeline")
