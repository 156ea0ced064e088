"""Lumina-Next and Lumina-Image 2.0: Gemma tokens with their attention mask; negatives go through the pipelines'
own negative path (it differs from the prompt's).

Lumina-Next (``LuminaPipeline``): one batched call per step with rows ``[conditional, unconditional]`` (the
unconditional block is the SECOND); guidance is a local of ``__call__`` passed to ``encode_prompt``. A negative is
padded to the prompt's width (longest prompt, a multiple of 8) and cut to it; it is not cleaned (``clean_caption``
cleans prompts only).
Lumina-Image 2.0 (``Lumina2Pipeline``): a separate unconditional call, the second of each step (none in the steps
``cfg_trunc_ratio`` truncates); the prompt gets the system prompt, a negative does not.
"""

from __future__ import annotations

from .declaration import Declaration, register
from .guidance import by_encode_argument
from .own_negative import negative_path

TOKENS = "encoder_hidden_states"

register(
    Declaration(family="Lumina", mode="batched", inputs=(TOKENS, "encoder_mask"), guided=by_encode_argument,
                layout=lambda pipeline, call: (2, (1,)),
                encode=negative_path({TOKENS: 2, "encoder_mask": 3},
                                     {"prompt_embeds": TOKENS, "prompt_attention_mask": "encoder_mask"}),
                note="rows [conditional, unconditional]; a negative longer than the prompt is cut to its length"),
    "LuminaPipeline",
)
register(
    Declaration(family="Lumina", mode="ordered", inputs=(TOKENS, "encoder_attention_mask"),
                encode=negative_path({TOKENS: 2, "encoder_attention_mask": 3},
                                     {"prompt_embeds": TOKENS, "prompt_attention_mask": "encoder_attention_mask"})),
    "Lumina2Pipeline",
)
