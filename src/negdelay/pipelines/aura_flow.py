"""AuraFlow: one batched call per step, ``[unconditional, conditional]`` rows of UMT5 tokens (padding zeroed by
the mask inside ``encode_prompt``; no mask reaches the transformer). Guidance is a local of ``__call__``
(``guidance_scale > 1``), passed to the pipeline's own ``encode_prompt``."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder
from .guidance import by_encode_argument

register(
    Declaration(family="AuraFlow", mode="batched", inputs=("encoder_hidden_states",), guided=by_encode_argument,
                encode=prompt_encoder({"encoder_hidden_states": 0})),
    "AuraFlowPipeline",
)
