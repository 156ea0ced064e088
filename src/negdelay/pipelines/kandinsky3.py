"""Kandinsky 3 (text-to-image, image-to-image): one batched UNet call per step, ``[unconditional, conditional]``
rows of T5 tokens and a boolean mask (``do_classifier_free_guidance`` property).

The prompt's tokens are cut to the longest prompt's length + 1 (``_cut_context``); a negative is tokenized to 128,
encoded, then cut to the prompt's length (a longer negative loses its end) and masked; no negative gives all-zero
rows and mask. A negative is encoded through the pipeline's own ``encode_prompt`` negative path, with placeholder
prompt rows of the running call's width.
"""

from __future__ import annotations

import torch

from .declaration import Declaration, register

TOKENS, MASK = "encoder_hidden_states", "encoder_attention_mask"


def encode_negative_path(pipeline, texts, current, call):
    """The negatives as ``negative_prompt`` of ``encode_prompt`` (same call arguments), cut to this call's length."""
    tokens = current[TOKENS]
    rows, width = len(texts), tokens.shape[1]
    args = dict(call.encode_args)
    args.update(prompt=None, negative_prompt=[t[0] for t in texts], do_classifier_free_guidance=True,
                num_images_per_prompt=1, negative_prompt_embeds=None, negative_attention_mask=None,
                prompt_embeds=tokens.new_zeros(rows, width, tokens.shape[2]),
                attention_mask=torch.ones(rows, width, dtype=torch.long, device=tokens.device))
    _, embeds, _, mask = call.original("encode_prompt")(**args)
    return {TOKENS: embeds.to(tokens.device, tokens.dtype), MASK: mask.to(current[MASK].device, current[MASK].dtype)}


register(Declaration(family="Kandinsky 3", mode="batched", inputs=(TOKENS, MASK), denoisers=("unet",),
                     encode=encode_negative_path, note="a negative longer than the prompt is cut to its length"),
         "Kandinsky3Pipeline", "Kandinsky3Img2ImgPipeline")
