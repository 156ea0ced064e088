"""Stable Diffusion 1.x / 2.x: ``prompt_embeds`` is ``[negative, positive]``, concatenated before the loop."""

from __future__ import annotations

from .base import Family, lora_scale


class SD(Family):
    name = "sd"
    tensor_inputs = ("prompt_embeds",)
    pipelines = (
        "StableDiffusionPipeline",
        "StableDiffusionImg2ImgPipeline",
        "StableDiffusionInpaintPipeline",
        "StableDiffusionControlNetPipeline",
        "StableDiffusionControlNetImg2ImgPipeline",
        "StableDiffusionControlNetInpaintPipeline",
    )

    def encode(self, pipeline, texts, current):
        # The stock negative path of encode_prompt (textual-inversion conversion, padding to the prompt's length,
        # attention mask, LoRA scale). A stand-in positive of the right shape keeps the positive from being encoded.
        like = current["prompt_embeds"]
        stand_in = like[-1:].expand(len(texts), -1, -1)
        _, negative = pipeline.encode_prompt(
            prompt=None,
            device=like.device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=True,
            negative_prompt=list(texts),
            prompt_embeds=stand_in,
            lora_scale=lora_scale(pipeline),
            clip_skip=getattr(pipeline, "clip_skip", None),
        )
        return {"prompt_embeds": negative.to(dtype=like.dtype)}
