"""Stable Diffusion 1.x/2.x descendants: depth-to-image, the x4 and latent upscalers, Stable unCLIP, T2I-Adapter and
InstructPix2Pix. Batched rows; the negative is encoded through the pipeline's own negative path with this call's
arguments (``negative_path``). Pipelines that keep the guidance decision in a local variable of ``__call__`` are read
from the ``do_classifier_free_guidance`` argument they pass to their own ``encode_prompt``."""

from __future__ import annotations

import torch

from .declaration import Declaration, register
from .guidance import by_encode_argument
from .own_negative import negative_path

_TOKENS = {"prompt_embeds": "encoder_hidden_states"}
_SD = dict(family="Stable Diffusion", mode="batched", inputs=("encoder_hidden_states",), denoisers=("unet",),
           encode=negative_path({"encoder_hidden_states": 1}, _TOKENS))

register(Declaration(**_SD), "StableDiffusionDepth2ImgPipeline")
register(Declaration(**_SD, guided=by_encode_argument,
                     note="the noise-level class labels are not text: kept as the pipeline made them"),
         "StableDiffusionUpscalePipeline")

#: class -> the declaration that serves it, registered once the contract's reference can record these pipelines
#: (coverage.NOT_SERVED says why not yet): T2I-Adapter calls its adapter once per call, outside the loop; Stable
#: unCLIP iterates over its progress bar. Both run the batched SD rows above (checked against a patched reference).
register(Declaration(**_SD), "StableDiffusionAdapterPipeline")
register(Declaration(**_SD, guided=by_encode_argument), "StableUnCLIPPipeline", "StableUnCLIPImg2ImgPipeline")


def _timestep_cond(got, current, call):
    """The latent upscaler conditions on ``[noise-level embedding, pooled text]``: the negative's pooled row
    follows the pipeline's own noise-level columns."""
    pooled = got.pop("pooled")
    own = current["timestep_cond"]
    prefix = own[-1:, : own.shape[1] - pooled.shape[1]].expand(pooled.shape[0], -1)
    got["timestep_cond"] = torch.cat([prefix, pooled.to(own.dtype)], dim=1)
    return got


register(Declaration(
    family="Stable Diffusion", mode="batched", inputs=("encoder_hidden_states", "timestep_cond"), denoisers=("unet",),
    # no pooled stand-in: this encode_prompt pads the negative to the length of a prompt it encoded itself
    encode=negative_path({"encoder_hidden_states": 1, "pooled": 3}, _TOKENS, post=_timestep_cond),
    guided=by_encode_argument, note="the pooled negative reaches the UNet through timestep_cond",
), "StableDiffusionLatentUpscalePipeline")


def _pix2pix_layout(pipeline, call):
    """``[text, image-only, unconditional]``: the negative text is in the second and third blocks."""
    return 3, (1, 2)


register(Declaration(
    family="InstructPix2Pix", mode="batched", inputs=("encoder_hidden_states",), denoisers=("unet",),
    encode=negative_path({"encoder_hidden_states": lambda result, n: result[n : 2 * n]}, _TOKENS,
                         method="_encode_prompt"),
    starts="_encode_prompt", layout=_pix2pix_layout, needs="guidance_scale > 1 and image_guidance_scale >= 1",
    note="rows [text, image-only, unconditional]: the negative replaces the text of the last two blocks",
), "StableDiffusionInstructPix2PixPipeline")

register(Declaration(
    family="InstructPix2Pix", mode="batched", inputs=("encoder_hidden_states", "added_cond_kwargs.text_embeds"),
    denoisers=("unet",), prompts=("negative_prompt_2",),
    encode=negative_path({"encoder_hidden_states": 1, "added_cond_kwargs.text_embeds": 3},
                         {**_TOKENS, "pooled_prompt_embeds": "added_cond_kwargs.text_embeds"},
                         negatives=("negative_prompt", "negative_prompt_2")),
    guided=by_encode_argument, layout=_pix2pix_layout, needs="guidance_scale > 1 and image_guidance_scale >= 1",
    note="rows [text, image-only, unconditional]: the negative replaces the text of the last two blocks",
), "StableDiffusionXLInstructPix2PixPipeline")
