"""Kolors (ChatGLM3 text encoder, SDXL-style UNet): batched ``[unconditional, conditional]`` rows of the token
embeddings and the pooled embedding (``added_cond_kwargs.text_embeds``); the negative goes through Kolors' own
negative path (padded to this call's ``max_sequence_length``)."""

from __future__ import annotations

from .declaration import Declaration, register
from .own_negative import negative_path

_KOLORS = dict(
    family="Kolors", mode="batched", inputs=("encoder_hidden_states", "added_cond_kwargs.text_embeds"),
    denoisers=("unet",),
    encode=negative_path({"encoder_hidden_states": 1, "added_cond_kwargs.text_embeds": 3},
                         {"prompt_embeds": "encoder_hidden_states",
                          "pooled_prompt_embeds": "added_cond_kwargs.text_embeds"}),
)

register(Declaration(**_KOLORS), "KolorsPipeline", "KolorsImg2ImgPipeline")
