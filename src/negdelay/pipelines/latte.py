"""Latte: one batched ``[unconditional, conditional]`` call per step with T5 tokens only (no mask argument).

Latte's ``encode_prompt`` (DeepFloyd-style, ``mask_feature``) treats prompt and negative differently: the prompt's
padding is zeroed (several rows) or cropped to its tokens (one row); the negative is T5 over 120 tokens, unmasked,
cut to the prompt's length. So a negative is encoded on the pipeline's own negative path (empty stand-in prompts,
``mask_feature`` off) and cut to the length of this call's unconditional rows. Guidance is a local of ``__call__``.
"""

from __future__ import annotations

from .declaration import Declaration, register
from .guidance import by_encode_argument
from .own_negative import negative_args

TOKENS = "encoder_hidden_states"


def _encode_latte(pipeline, texts, current, call):
    args = negative_args(call, "encode_prompt", texts, {}, ("negative_prompt",), current)
    args["mask_feature"] = False  # the stock negative is never masked; only its length follows the prompt's
    negative = call.original("encode_prompt")(**args)[1]
    like = current[TOKENS]
    return {TOKENS: negative[:, : like.shape[1]].to(like.device, like.dtype)}


register(Declaration(family="Latte", mode="batched", inputs=(TOKENS,), encode=_encode_latte,
                     guided=by_encode_argument),
         "LattePipeline")
