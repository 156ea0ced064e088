"""Lucy Edit: Wan 2.2's loop on the noisy latents ++ the source video's latents; a separate unconditional pass in
``cache_context("uncond")`` with T5 tokens only, on ``transformer`` or (past ``boundary_ratio``) ``transformer_2``."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

register(Declaration(family="Lucy Edit", mode="context", inputs=("encoder_hidden_states",),
                     denoisers=("transformer", "transformer_2"), encode=prompt_encoder({"encoder_hidden_states": 0})),
         "LucyEditPipeline")
