"""PRX: one batched transformer call per step, ``[unconditional, conditional]`` rows of T5Gemma tokens and their
boolean ``attention_mask`` (``do_classifier_free_guidance`` property). The stock pipeline encodes the negatives and
the prompts in one batch (padded to the tokenizer's max length, both cleaned alike): negative path = prompt path."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

register(Declaration(family="PRX", mode="batched", inputs=("encoder_hidden_states", "attention_mask"),
                     encode=prompt_encoder({"encoder_hidden_states": 0, "attention_mask": 1})),
         "PRXPipeline")
