"""Mochi: one batched call per step (``[unconditional, conditional]``, ``cache_context("cond_uncond")``) with the
T5 tokens and their attention mask; prompt and negative share one encoding path (``_get_t5_prompt_embeds``)."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

register(Declaration(family="Mochi", mode="batched", inputs=("encoder_hidden_states", "encoder_attention_mask"),
                     encode=prompt_encoder({"encoder_hidden_states": 0, "encoder_attention_mask": 1})),
         "MochiPipeline")
