"""Flux with true CFG (``true_cfg_scale > 1`` and a ``negative_prompt``): a separate unconditional transformer pass,
in ``cache_context("uncond")`` (txt2img) or as the second call of each step (the other loops)."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

TRUE_CFG = "true_cfg_scale > 1 and a negative_prompt (\"\" is fine) in the pipeline call"

_FLUX = dict(
    family="Flux", mode="context", inputs=("encoder_hidden_states", "pooled_projections"),
    prompts=("negative_prompt_2",), needs=TRUE_CFG,
    encode=prompt_encoder({"encoder_hidden_states": 0, "pooled_projections": 1}, text_args=("prompt", "prompt_2")),
)
register(Declaration(**_FLUX), "FluxPipeline")
register(Declaration(**{**_FLUX, "mode": "ordered"}), "FluxImg2ImgPipeline", "FluxInpaintPipeline",
         "FluxControlNetPipeline", "FluxKontextPipeline", "FluxKontextInpaintPipeline")
