"""Sana-Video (text- and image-to-video): Sana's loop on video latents, one batched call per step with
``[unconditional, conditional]`` rows and the Gemma attention mask; the prompt behind the
``complex_human_instruction``, the negative without it (encoded as Sana's, ``sana.encode_without_instruction``)."""

from __future__ import annotations

from .declaration import Declaration, register
from .sana import MASK, TOKENS, encode_without_instruction

register(Declaration(family="Sana-Video", mode="batched", inputs=(TOKENS, MASK), encode=encode_without_instruction),
         "SanaVideoPipeline", "SanaImageToVideoPipeline")
