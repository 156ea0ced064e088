"""PixArt-Alpha/Sigma: batched rows with the T5 attention mask; guidance is a local of ``__call__``, passed to the
pipeline's own ``encode_prompt`` (``do_classifier_free_guidance``)."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder
from .guidance import by_encode_argument

register(
    Declaration(
        family="PixArt", mode="batched", inputs=("encoder_hidden_states", "encoder_attention_mask"),
        encode=prompt_encoder({"encoder_hidden_states": 0, "encoder_attention_mask": 1}), guided=by_encode_argument,
    ),
    "PixArtAlphaPipeline", "PixArtSigmaPipeline",
)
