"""EasyAnimate (text-to-video, inpaint): one batched ``[unconditional, conditional]`` call per step with the
Qwen2-VL hidden states only (the attention mask is computed but not passed to the transformer). Prompt and
negative share one encoding path (a chat template, padded to ``max_sequence_length``)."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

register(Declaration(family="EasyAnimate", mode="batched", inputs=("encoder_hidden_states",),
                     encode=prompt_encoder({"encoder_hidden_states": 0})),
         "EasyAnimatePipeline", "EasyAnimateInpaintPipeline")
