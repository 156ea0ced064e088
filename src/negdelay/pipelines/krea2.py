"""Krea 2: a separate unconditional transformer call per step, the second of each step, no cache context (ordered
mode); guidance is ``guidance_scale > 0``. Text: stacked Qwen3-VL hidden states ``[batch, tokens, layers, dim]``
with a boolean mask, fixed length; ``__call__`` encodes the negative with its own ``encode_prompt`` call (negative
path = prompt path)."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

register(Declaration(family="Krea 2", mode="ordered", inputs=("encoder_hidden_states", "encoder_attention_mask"),
                     needs="guidance_scale > 0",
                     encode=prompt_encoder({"encoder_hidden_states": 0, "encoder_attention_mask": 1})),
         "Krea2Pipeline")
