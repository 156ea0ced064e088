"""PRXPixel (pixel-space PRX, x-prediction): one batched transformer call per step, ``[unconditional,
conditional]`` rows of text tokens and their boolean ``attention_mask`` (``do_classifier_free_guidance``
property), as PRX. The stock pipeline encodes negatives and prompts in one batch, cleaned alike and padded to
``prompt_max_tokens``: negative path = prompt path."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

register(Declaration(family="PRX", mode="batched", inputs=("encoder_hidden_states", "attention_mask"),
                     encode=prompt_encoder({"encoder_hidden_states": 0, "attention_mask": 1})),
         "PRXPixelPipeline")
