"""Stable Diffusion XL descendants: ControlNet Union (text-to-image, img2img, inpaint) and T2I-Adapter XL. Batched
rows; the negative (tokens and pooled) through the pipeline's own negative path with this call's arguments. The
ControlNet sees the unconditional rows unless it runs in guess mode."""

from __future__ import annotations

from .declaration import Declaration, register
from .guidance import controlnet_rows
from .own_negative import negative_path

_XL = dict(
    family="Stable Diffusion XL", mode="batched", inputs=("encoder_hidden_states", "added_cond_kwargs.text_embeds"),
    denoisers=("unet",), prompts=("negative_prompt_2",),
    encode=negative_path({"encoder_hidden_states": 1, "added_cond_kwargs.text_embeds": 3},
                         {"prompt_embeds": "encoder_hidden_states",
                          "pooled_prompt_embeds": "added_cond_kwargs.text_embeds"},
                         negatives=("negative_prompt", "negative_prompt_2")),
)

register(Declaration(**{**_XL, "denoisers": ("unet", "controlnet"), "guided": controlnet_rows}),
         "StableDiffusionXLControlNetUnionPipeline", "StableDiffusionXLControlNetUnionImg2ImgPipeline",
         "StableDiffusionXLControlNetUnionInpaintPipeline")

#: class -> declaration, registered once the contract's reference can record it (coverage.NOT_SERVED says why):
#: the adapter runs once per call, outside the loop
register(Declaration(**_XL), "StableDiffusionXLAdapterPipeline")
