"""DeepFloyd IF (stage I and the stage II super-resolution pipelines, each plain, image-to-image and inpainting): one
batched UNet call per step, ``[unconditional, conditional]`` rows of T5 tokens (``encoder_hidden_states``; the UNet
also derives its text-added embedding from them). Guidance is a local of ``__call__`` (``guidance_scale > 1``),
passed to ``encode_prompt``. Prompt and negative are both padded to 77 tokens and encoded with their own attention
mask, so a negative is encoded as a prompt through the pipeline's ``encode_prompt`` (same lowercasing or caption
cleaning as this call). The super-resolution noise level (``class_labels``) is not text: kept as the pipeline made
it."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder
from .guidance import by_encode_argument

TOKENS = "encoder_hidden_states"

register(Declaration(family="DeepFloyd IF", mode="batched", inputs=(TOKENS,), denoisers=("unet",),
                     encode=prompt_encoder({TOKENS: 0}), guided=by_encode_argument),
         "IFPipeline", "IFImg2ImgPipeline", "IFInpaintingPipeline", "IFSuperResolutionPipeline",
         "IFImg2ImgSuperResolutionPipeline", "IFInpaintingSuperResolutionPipeline")
