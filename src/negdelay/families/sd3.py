"""Stable Diffusion 3: ``prompt_embeds`` (CLIP-L + CLIP-G features padded to T5's width, then T5 tokens) and
``pooled_prompt_embeds`` (CLIP-L + CLIP-G pooled), both ``[negative, positive]``, concatenated before the loop.

Only ``StableDiffusion3Pipeline`` hands ``pooled_prompt_embeds`` to a step-end callback; SD3 img2img and
inpaint do not take it back, so a callback could swap the tokens but not the pooled embedding there: they
are not served (see docs/pipelines.md). Sigma points use the flow-matching scheduler's own ``sigmas``.
"""

from __future__ import annotations

from .base import Family, lora_scale


class SD3(Family):
    name = "sd3"
    tensor_inputs = ("prompt_embeds", "pooled_prompt_embeds")
    pipelines = ("StableDiffusion3Pipeline",)

    def encode(self, pipeline, texts, current):
        """``texts`` are negative prompts (str) or triples ``(negative_prompt, negative_prompt_2, negative_prompt_3)``.

        The stock negative path of ``encode_prompt``: T5 padded to the call's ``max_sequence_length`` (the
        prompt's token count minus CLIP's), CLIP without clip skip (as the stock negative), LoRA scale.
        """
        like = current["prompt_embeds"]
        pooled_like = current["pooled_prompt_embeds"]
        parts = [t if isinstance(t, tuple) else (t, t, t) for t in texts]
        t5_len = like.shape[1] - int(pipeline.tokenizer_max_length)
        if t5_len <= 0:
            raise ValueError(
                f"SD3: prompt_embeds has {like.shape[1]} tokens, not more than CLIP's {pipeline.tokenizer_max_length}: "
                "cannot tell the T5 length (max_sequence_length) of this call"
            )
        _, negative, _, negative_pooled = pipeline.encode_prompt(
            prompt=None,
            prompt_2=None,
            prompt_3=None,
            device=like.device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=True,
            negative_prompt=[p[0] for p in parts],
            negative_prompt_2=[p[1] for p in parts],
            negative_prompt_3=[p[2] for p in parts],
            prompt_embeds=like[-1:].expand(len(texts), -1, -1),
            pooled_prompt_embeds=pooled_like[-1:].expand(len(texts), -1),
            clip_skip=getattr(pipeline, "clip_skip", None),
            max_sequence_length=t5_len,
            lora_scale=lora_scale(pipeline),
        )
        return {
            "prompt_embeds": negative.to(device=like.device, dtype=like.dtype),
            "pooled_prompt_embeds": negative_pooled.to(device=like.device, dtype=pooled_like.dtype),
        }

    def check_embeds(self, embeds, current):
        missing = [n for n in self.tensor_inputs if n not in embeds]
        if missing or set(embeds) - set(self.tensor_inputs):
            raise ValueError(
                "SD3: negative_prompt_embeds must be a dict with exactly 'prompt_embeds' (rows, tokens, dim) and "
                f"'pooled_prompt_embeds' (rows, dim) of the negative; got keys {sorted(embeds)}"
            )
        n = {t.shape[0] for t in embeds.values()}
        if len(n) != 1:
            raise ValueError(f"SD3: negative_prompt_embeds tensors must have the same number of rows, got {sorted(n)}")
        super().check_embeds(embeds, current)
