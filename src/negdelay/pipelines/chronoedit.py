"""ChronoEdit: Wan 2.1 image-to-video's loop without cache contexts: two transformer calls per step, conditional
then unconditional (T5 tokens only; the CLIP image embedding is the same in both)."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

register(Declaration(family="ChronoEdit", mode="ordered", inputs=("encoder_hidden_states",),
                     encode=prompt_encoder({"encoder_hidden_states": 0})),
         "ChronoEditPipeline")
