"""CogVideoX: one batched call per step ([unconditional, conditional], in ``cache_context("cond_uncond")``); the
guidance decision is a local of ``__call__``, passed to the pipeline's own ``encode_prompt``. No attention mask."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder
from .guidance import by_encode_argument

register(
    Declaration(family="CogVideoX", mode="batched", inputs=("encoder_hidden_states",), guided=by_encode_argument,
                encode=prompt_encoder({"encoder_hidden_states": 0})),
    "CogVideoXPipeline", "CogVideoXImageToVideoPipeline", "CogVideoXVideoToVideoPipeline", "CogVideoXFunControlPipeline",
)
