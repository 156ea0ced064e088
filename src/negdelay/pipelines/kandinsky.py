"""Kandinsky 2.1 decoders (text-to-image, image-to-image, inpainting): one batched UNet call per step,
``[unconditional, conditional]`` rows. The unconditional rows carry two things: the prior's negative image
embedding (``negative_image_embeds``, passed by the user: not text, kept as passed) and the ``negative_prompt``'s
text, encoded by the pipeline's ``_encode_prompt`` into M-CLIP tokens (``encoder_hidden_states``) and their pooled
projection (``added_cond_kwargs.text_embeds``). Only the text is delayed.

Guidance is a local of ``__call__`` (``guidance_scale > 1``) passed to ``_encode_prompt``. Prompt and negative are
both padded to 77 tokens and encoded alike, so a negative is encoded as a prompt."""

from __future__ import annotations

from .declaration import Declaration, register
from .guidance import by_encode_argument

TOKENS, POOLED = "encoder_hidden_states", "added_cond_kwargs.text_embeds"


def _like(tensor, current):
    return tensor if current is None else tensor.to(device=current.device, dtype=current.dtype)


def encode_as_prompt(pipeline, texts, current, call):
    """The texts through ``_encode_prompt`` as prompts, with this call's device; one row per text, no CFG half."""
    args = {**call.encode_args, "prompt": [t[0] for t in texts], "num_images_per_prompt": 1,
            "do_classifier_free_guidance": False, "negative_prompt": None}
    pooled, tokens, _ = call.original("_encode_prompt")(**args)
    return {TOKENS: _like(tokens, current.get(TOKENS)), POOLED: _like(pooled, current.get(POOLED))}


register(Declaration(family="Kandinsky 2.1", mode="batched", inputs=(TOKENS, POOLED), denoisers=("unet",),
                     encode=encode_as_prompt, guided=by_encode_argument, starts="_encode_prompt",
                     note="the negative image embedding from the prior is kept as passed: only the text is delayed"),
         "KandinskyPipeline", "KandinskyImg2ImgPipeline", "KandinskyInpaintPipeline")
