"""Wan 2.1/2.2: a separate unconditional pass in ``cache_context("uncond")`` (video-to-video: the second call of each
step, no cache context); Wan 2.2's low-noise expert ``transformer_2`` gets the same delayed negative. T5 tokens
only (zero-padded, no mask). Wan Animate re-runs the schedule per video segment: steps count within a segment."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

_WAN = dict(family="Wan", mode="context", inputs=("encoder_hidden_states",), denoisers=("transformer", "transformer_2"),
            encode=prompt_encoder({"encoder_hidden_states": 0}))
register(Declaration(**_WAN), "WanPipeline", "WanImageToVideoPipeline", "WanVACEPipeline")
register(Declaration(**{**_WAN, "denoisers": ("transformer",), "note": "steps count within each video segment"}),
         "WanAnimatePipeline")
register(Declaration(**{**_WAN, "mode": "ordered", "denoisers": ("transformer",)}), "WanVideoToVideoPipeline")
