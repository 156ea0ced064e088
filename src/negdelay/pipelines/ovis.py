"""Ovis-Image: a separate unconditional transformer call per step in ``cache_context("uncond")`` (``guidance_scale
> 1``, a local of ``__call__``). Text: Qwen3 last hidden states of the chat-templated ``system_prompt + text``,
padded to ``max_sequence_length`` after the template's first 28 tokens (which are dropped); negative path = prompt
path. The text ids depend on the width only, equal for both passes."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

register(Declaration(family="Ovis-Image", mode="context", inputs=("encoder_hidden_states",),
                     encode=prompt_encoder({"encoder_hidden_states": 0})),
         "OvisImagePipeline")
