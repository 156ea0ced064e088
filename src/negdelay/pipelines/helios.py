"""Helios: video in chunks, each with its own schedule (steps count within each chunk); a separate unconditional
pass in ``cache_context("uncond")`` with T5 tokens only (zero-padded). The pyramid variant is not served
(src/negdelay/pipelines/coverage.py says why)."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

register(Declaration(family="Helios", mode="context", inputs=("encoder_hidden_states",),
                     encode=prompt_encoder({"encoder_hidden_states": 0}), note="steps count within each chunk"),
         "HeliosPipeline")
