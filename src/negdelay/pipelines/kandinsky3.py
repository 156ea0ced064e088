"""Kandinsky 3 (text-to-image, image-to-image): one batched UNet call per step, ``[unconditional, conditional]``
rows of T5 tokens and a boolean mask (``do_classifier_free_guidance`` property).

The prompt's tokens are cut to the longest prompt's length + 1 (``_cut_context``); a negative is tokenized to 128,
encoded, then cut to the prompt's length (a longer negative loses its end) and masked; no negative gives all-zero
rows and mask. A negative is encoded through the pipeline's own ``encode_prompt`` negative path, with stand-in
prompt rows of the running call's width.
"""

from __future__ import annotations

from .declaration import Declaration, register
from .own_negative import negative_path

TOKENS, MASK = "encoder_hidden_states", "encoder_attention_mask"


register(Declaration(family="Kandinsky 3", mode="batched", inputs=(TOKENS, MASK), denoisers=("unet",),
                     encode=negative_path({TOKENS: 1, MASK: 3}, {"prompt_embeds": TOKENS, "attention_mask": MASK}),
                     note="a negative longer than the prompt is cut to its length"),
         "Kandinsky3Pipeline", "Kandinsky3Img2ImgPipeline")
