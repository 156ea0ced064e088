"""AnyFlow: one batched ``[unconditional, conditional]`` call per step with T5 tokens only (Wan's encoder path, the
same for prompt and negative). Its released checkpoints fold CFG into the weights: guidance runs only with
``guidance_scale > 1``."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

register(Declaration(family="AnyFlow", mode="batched", inputs=("encoder_hidden_states",),
                     encode=prompt_encoder({"encoder_hidden_states": 0})),
         "AnyFlowPipeline")
