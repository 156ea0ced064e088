"""Stable Diffusion 1.x/2.x, SDXL and SD3: batched [unconditional, conditional] rows. The step-end callbacks
(``DelayedNegative``, ``DelayedNegativeXL``, ``DelayedNegativeSD3``) serve the classes that hand them every tensor
the negative lives in; ``apply`` serves them all through the denoiser. The negative is encoded by the family
adapters (their negative path pads to the prompt's length, unlike a prompt's)."""

from __future__ import annotations

from ..families.sd import SD
from ..families.sd3 import SD3
from ..families.sdxl import SDXL
from .declaration import Declaration, register
from .encoders import family_encoder
from .guidance import controlnet_rows

_SD = dict(family="Stable Diffusion", mode="batched", inputs=("encoder_hidden_states",), denoisers=("unet",),
           encode=family_encoder(SD(), {"prompt_embeds": "encoder_hidden_states"}), callback="DelayedNegative")
register(Declaration(**_SD), "StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline",
         "StableDiffusionInpaintPipeline")
register(Declaration(**{**_SD, "denoisers": ("unet", "controlnet"), "guided": controlnet_rows}),
         "StableDiffusionControlNetPipeline", "StableDiffusionControlNetImg2ImgPipeline",
         "StableDiffusionControlNetInpaintPipeline")

_XL = dict(
    family="Stable Diffusion XL", mode="batched", inputs=("encoder_hidden_states", "added_cond_kwargs.text_embeds"),
    denoisers=("unet",), prompts=("negative_prompt_2",), callback="DelayedNegativeXL",
    encode=family_encoder(SDXL(), {"prompt_embeds": "encoder_hidden_states",
                                   "add_text_embeds": "added_cond_kwargs.text_embeds"}, arity=2),
)
register(Declaration(**_XL), "StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline",
         "StableDiffusionXLInpaintPipeline")
register(Declaration(**{**_XL, "denoisers": ("unet", "controlnet"), "guided": controlnet_rows}),
         "StableDiffusionXLControlNetPipeline", "StableDiffusionXLControlNetImg2ImgPipeline")
register(Declaration(**{**_XL, "denoisers": ("unet", "controlnet"), "guided": controlnet_rows, "callback": None,
                        "note": "does not take add_text_embeds back from a step-end callback"}),
         "StableDiffusionXLControlNetInpaintPipeline")

_SD3 = dict(
    family="Stable Diffusion 3", mode="batched", inputs=("encoder_hidden_states", "pooled_projections"),
    prompts=("negative_prompt_2", "negative_prompt_3"), callback="DelayedNegativeSD3",
    encode=family_encoder(SD3(), {"prompt_embeds": "encoder_hidden_states",
                                  "pooled_prompt_embeds": "pooled_projections"}, arity=3),
)
register(Declaration(**_SD3), "StableDiffusion3Pipeline")
register(Declaration(**{**_SD3, "callback": None, "note": "does not take pooled_prompt_embeds back from a callback"}),
         "StableDiffusion3Img2ImgPipeline", "StableDiffusion3InpaintPipeline")
