"""Stable Diffusion 3 ControlNet (text-to-image, inpainting): batched rows for the transformer and the ControlNet.

The ControlNet's ``pooled_projections`` are zeros whatever the negative (``force_zeros_for_pooled_projection``,
the default, and always in the inpainting pipeline unless ``controlnet_pooled_projections`` is given): rows the
pipeline passes as zeros stay zeros. A ControlNet without text tokens (``joint_attention_dim=None``, SD 3.5's own)
gets ``encoder_hidden_states=None``, kept as is. The negative goes through SD3's own negative path.
"""

from __future__ import annotations

import torch

from .declaration import Declaration, register
from .own_negative import negative_path
from .rows import concat_rows


def _keep_zero_rows(own: dict, negative: dict, keys) -> dict:
    """Rows as ``concat_rows``; an input the pipeline passes as None stays None, an all-zero row of the pipeline's
    own ``pooled_projections`` stays zero (it carries no text)."""
    present = {n: t for n, t in own.items() if t is not None}
    out = concat_rows(present, negative, keys)
    pooled = own.get("pooled_projections")
    if pooled is not None:
        zero = ~pooled.reshape(pooled.shape[0], -1).any(dim=1)
        out["pooled_projections"] = torch.where(zero[:, None], pooled, out["pooled_projections"])
    return {**{n: None for n, t in own.items() if t is None}, **out}


register(Declaration(
    family="Stable Diffusion 3", mode="batched", inputs=("pooled_projections", "encoder_hidden_states"),
    denoisers=("transformer", "controlnet"), prompts=("negative_prompt_2", "negative_prompt_3"),
    encode=negative_path({"encoder_hidden_states": 1, "pooled_projections": 3},
                         {"prompt_embeds": "encoder_hidden_states", "pooled_prompt_embeds": "pooled_projections"},
                         negatives=("negative_prompt", "negative_prompt_2", "negative_prompt_3")),
    merge=_keep_zero_rows,
    note="the ControlNet's zero pooled projections are kept; pooled_projections first: always a tensor",
), "StableDiffusion3ControlNetPipeline", "StableDiffusion3ControlNetInpaintingPipeline")
