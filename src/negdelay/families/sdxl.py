"""Stable Diffusion XL: three callback tensors carry the unconditional half.

- ``prompt_embeds``: ``[negative, positive]`` token embeddings of both text encoders (concatenated features);
- ``add_text_embeds``: ``[negative pooled, positive pooled]`` (the pooled output of ``text_encoder_2``);
- ``add_time_ids``: size/crop conditioning. Its first half is what the UNet uses for the unconditional rows;
  note that ``StableDiffusionXLPipeline`` builds it as ``cat([neg, pos]).repeat(B, 1)``, so with B > 1 the
  first half alternates. negdelay keeps those rows exactly as the stock pipeline made them unless
  ``DelayedNegativeXL`` is given ``negative_original_size``/``negative_target_size`` of its own.

A negative must replace the rows of ``prompt_embeds`` *and* ``add_text_embeds``: replacing only the token
embeddings leaves the pooled embedding of the pipeline's own unconditional prompt in the UNet's added
conditioning (tests/test_sdxl.py shows that this changes the image).

With ``negative_prompt=None`` and ``force_zeros_for_empty_prompt`` (the SDXL default) the stock
unconditional rows are all zeros; the callback keeps whatever the pipeline made (it copies the rows of
step 0), so before the switch the call is the stock call.
"""

from __future__ import annotations

import torch

from .base import Family, lora_scale


class SDXL(Family):
    name = "sdxl"
    tensor_inputs = ("prompt_embeds", "add_text_embeds", "add_time_ids")
    # Pipelines that hand prompt_embeds, add_text_embeds and add_time_ids to a step-end callback and take them back.
    # (StableDiffusionXLControlNetInpaintPipeline does not take add_text_embeds back: not served.)
    pipelines = (
        "StableDiffusionXLPipeline",
        "StableDiffusionXLImg2ImgPipeline",
        "StableDiffusionXLInpaintPipeline",
        "StableDiffusionXLControlNetPipeline",
        "StableDiffusionXLControlNetImg2ImgPipeline",
    )

    def encode(self, pipeline, texts, current):
        """``texts`` are negative prompts (str) or pairs ``(negative_prompt, negative_prompt_2)``.

        The stock negative path of ``encode_prompt`` (both encoders, textual inversion, padding to the
        prompt's length, LoRA scale); a stand-in positive of the right shape keeps the positive from being
        encoded. Like the stock pipeline, an empty text is encoded (not zeroed: zeros are what the pipeline
        uses for ``negative_prompt=None``, and those rows are kept from the pipeline itself).
        """
        like = current["prompt_embeds"]
        pooled_like = current["add_text_embeds"]
        first = [t[0] if isinstance(t, tuple) else t for t in texts]
        second = [t[1] if isinstance(t, tuple) else t for t in texts]
        _, negative, _, negative_pooled = pipeline.encode_prompt(
            prompt=None,
            device=like.device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=True,
            negative_prompt=first,
            negative_prompt_2=second,
            prompt_embeds=like[-1:].expand(len(texts), -1, -1),
            pooled_prompt_embeds=pooled_like[-1:].expand(len(texts), -1),
            lora_scale=lora_scale(pipeline),
            clip_skip=getattr(pipeline, "clip_skip", None),
        )
        return {
            "prompt_embeds": negative.to(dtype=like.dtype),
            "add_text_embeds": negative_pooled.to(device=like.device, dtype=pooled_like.dtype),
        }

    def check_embeds(self, embeds, current):
        missing = [n for n in ("prompt_embeds", "add_text_embeds") if n not in embeds]
        if missing:
            raise ValueError(
                "SDXL: negative_prompt_embeds must be a dict with 'prompt_embeds' (rows, tokens, dim) and "
                "'add_text_embeds' (the pooled embedding, rows, dim) of the negative (optionally 'add_time_ids'); "
                f"missing {missing}. Swapping only the token embeddings would keep the pooled embedding of the "
                "pipeline's own unconditional prompt."
            )
        extra = sorted(set(embeds) - set(self.tensor_inputs))
        if extra:
            raise ValueError(f"SDXL: negative_prompt_embeds has unknown keys {extra}; allowed: {list(self.tensor_inputs)}")
        n = {t.shape[0] for t in embeds.values()}
        if len(n) != 1:
            raise ValueError(f"SDXL: negative_prompt_embeds tensors must have the same number of rows, got {sorted(n)}")
        super().check_embeds(embeds, current)


def time_ids(pipeline, original_size, crops_coords_top_left, target_size, like: torch.Tensor) -> torch.Tensor:
    """One row of size/crop conditioning built by the pipeline's own ``_get_add_time_ids`` (text-to-image form)."""
    te2 = getattr(pipeline, "text_encoder_2", None)
    proj = int(te2.config.projection_dim) if te2 is not None else None
    kwargs = {"dtype": like.dtype, "text_encoder_projection_dim": proj}
    if getattr(pipeline.config, "requires_aesthetics_score", False) or "aesthetic_score" in (
        pipeline._get_add_time_ids.__code__.co_varnames
    ):
        raise ValueError(
            f"{type(pipeline).__name__} builds its size conditioning with an aesthetic score: negative size "
            "conditioning is only supported for text-to-image SDXL pipelines; pass negative_add_time_ids instead"
        )
    row = pipeline._get_add_time_ids(tuple(original_size), tuple(crops_coords_top_left), tuple(target_size), **kwargs)
    return row.to(device=like.device, dtype=like.dtype)
