"""Cosmos 1 (text/video-to-world) and Cosmos 2 (text-to-image, video-to-world): two transformer calls per step,
conditional then unconditional (no cache context), with T5 tokens zeroed past each text's length (prompt and
negative share ``_get_t5_prompt_embeds``). The video-to-world conditioning (latents, masks) is the pipeline's own in
both calls."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

_T5 = dict(family="Cosmos", mode="ordered", inputs=("encoder_hidden_states",),
           encode=prompt_encoder({"encoder_hidden_states": 0}))
register(Declaration(**_T5), "CosmosTextToWorldPipeline", "CosmosVideoToWorldPipeline", "Cosmos2TextToImagePipeline",
         "Cosmos2VideoToWorldPipeline")

# Cosmos 2.5 predict: Qwen2.5-VL features (every layer's states normalised and concatenated) of a chat-templated
# text, the same path for prompt and negative; the same two calls per step.
register(Declaration(**{**_T5, "family": "Cosmos 2.5"}), "Cosmos2_5_PredictBasePipeline")
