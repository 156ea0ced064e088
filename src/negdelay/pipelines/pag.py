"""Perturbed-attention guidance (PAG) variants of SD 1.x, SDXL, SD3, Kolors and AnimateDiff (and their ControlNet,
img2img and inpaint forms), PixArt-Sigma, Sana and HunyuanDiT (their families' encoders). Batched: with CFG and PAG
one denoiser call holds ``[unconditional, conditional, perturbed]`` blocks (the perturbed block is a conditional
copy: kept); CFG alone ``[unconditional, conditional]``; PAG alone has no unconditional rows (not guided). A
ControlNet gets every block (guess mode only zeroes its unconditional residuals). The SD-descended ones encode the
negative through their own negative path."""

from __future__ import annotations

from .animatediff import refuse_free_noise
from .declaration import Declaration, register
from .encoders import prompt_encoder
from .guidance import by_encode_argument
from .hunyuandit import STREAMS, encode_streams
from .own_negative import negative_path
from .sana import MASK, TOKENS, encode_without_instruction


def pag_layout(pipeline, call):
    """Three blocks with CFG and PAG, two with CFG alone; the unconditional rows are the first block."""
    return (3, (0,)) if getattr(pipeline, "do_perturbed_attention_guidance", False) else (2, (0,))


_TOKENS = {"prompt_embeds": "encoder_hidden_states"}
_XL_STAND_INS = {**_TOKENS, "pooled_prompt_embeds": "added_cond_kwargs.text_embeds"}
_XL_INPUTS = ("encoder_hidden_states", "added_cond_kwargs.text_embeds")
_XL_OUTPUTS = {"encoder_hidden_states": 1, "added_cond_kwargs.text_embeds": 3}
_PAG = dict(mode="batched", layout=pag_layout, note="PAG's perturbed block keeps the pipeline's conditional text")

_SD = dict(_PAG, family="Stable Diffusion", inputs=("encoder_hidden_states",), denoisers=("unet",),
           encode=negative_path({"encoder_hidden_states": 1}, _TOKENS))
register(Declaration(**_SD), "StableDiffusionPAGPipeline", "StableDiffusionPAGImg2ImgPipeline",
         "StableDiffusionPAGInpaintPipeline")
register(Declaration(**{**_SD, "denoisers": ("unet", "controlnet")}),
         "StableDiffusionControlNetPAGPipeline", "StableDiffusionControlNetPAGInpaintPipeline")
register(Declaration(**{**_SD, "family": "AnimateDiff", "guided": refuse_free_noise}), "AnimateDiffPAGPipeline")

_XL = dict(_PAG, family="Stable Diffusion XL", inputs=_XL_INPUTS, denoisers=("unet",), prompts=("negative_prompt_2",),
           encode=negative_path(_XL_OUTPUTS, _XL_STAND_INS, negatives=("negative_prompt", "negative_prompt_2")))
register(Declaration(**_XL), "StableDiffusionXLPAGPipeline", "StableDiffusionXLPAGImg2ImgPipeline",
         "StableDiffusionXLPAGInpaintPipeline")
register(Declaration(**{**_XL, "denoisers": ("unet", "controlnet")}),
         "StableDiffusionXLControlNetPAGPipeline", "StableDiffusionXLControlNetPAGImg2ImgPipeline")

register(Declaration(**_PAG, family="Kolors", inputs=_XL_INPUTS, denoisers=("unet",),
                     encode=negative_path(_XL_OUTPUTS, _XL_STAND_INS)), "KolorsPAGPipeline")

register(Declaration(
    **_PAG, family="Stable Diffusion 3", inputs=("encoder_hidden_states", "pooled_projections"),
    prompts=("negative_prompt_2", "negative_prompt_3"),
    encode=negative_path({"encoder_hidden_states": 1, "pooled_projections": 3},
                         {**_TOKENS, "pooled_prompt_embeds": "pooled_projections"},
                         negatives=("negative_prompt", "negative_prompt_2", "negative_prompt_3")),
), "StableDiffusion3PAGPipeline", "StableDiffusion3PAGImg2ImgPipeline")

register(Declaration(**_PAG, family="PixArt", inputs=("encoder_hidden_states", "encoder_attention_mask"),
                     encode=prompt_encoder({"encoder_hidden_states": 0, "encoder_attention_mask": 1}),
                     guided=by_encode_argument), "PixArtSigmaPAGPipeline")
register(Declaration(**_PAG, family="Sana", inputs=(TOKENS, MASK), encode=encode_without_instruction),
         "SanaPAGPipeline")
register(Declaration(**_PAG, family="HunyuanDiT", inputs=tuple(n for stream in STREAMS for n in stream),
                     encode=encode_streams), "HunyuanDiTPAGPipeline")
