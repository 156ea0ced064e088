"""SkyReels-V2 (text- and image-to-video): Wan's loop, a separate unconditional pass in ``cache_context("uncond")``
with the T5 tokens only (zero-padded, no mask); the image embedding is the same in both passes.

Diffusion forcing (text-, image- and video-to-video): the same two calls per step, but each step is a row of the
pipeline's step matrix (per-frame timesteps, stepped by per-frame copies of the scheduler, so ``self.scheduler``'s
step index never moves). Steps are counted by the progress bar: step ``k`` is the matrix's row ``k`` (its ``len``
rows, not ``num_inference_steps``, when ``ar_step > 0``), counted anew in each long-video iteration."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

register(Declaration(family="SkyReels-V2", mode="context", inputs=("encoder_hidden_states",),
                     encode=prompt_encoder({"encoder_hidden_states": 0})),
         "SkyReelsV2Pipeline", "SkyReelsV2ImageToVideoPipeline")

register(Declaration(family="SkyReels-V2", mode="context", inputs=("encoder_hidden_states",), steps="progress",
                     encode=prompt_encoder({"encoder_hidden_states": 0}),
                     note="diffusion forcing: steps are the rows of its step matrix (its progress bar)"),
         "SkyReelsV2DiffusionForcingPipeline", "SkyReelsV2DiffusionForcingImageToVideoPipeline",
         "SkyReelsV2DiffusionForcingVideoToVideoPipeline")
