"""LongCat-Image: a separate unconditional transformer call per step in ``cache_context("uncond")``
(``guidance_scale > 1``). ``__call__`` calls ``encode_prompt`` once for the prompt and once for the negative (both
before the loop; negative path = prompt path: each text's tokens padded to 512 inside the Qwen2.5-VL chat
template, the template dropped). The text ids depend on the width only. The prompt rewriter
(``enable_prompt_rewrite``) rewrites prompts only."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

register(Declaration(family="LongCat-Image", mode="context", inputs=("encoder_hidden_states",),
                     encode=prompt_encoder({"encoder_hidden_states": 0})),
         "LongCatImagePipeline")
