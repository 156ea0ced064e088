"""Helios: video in chunks, each with its own schedule (steps count within each chunk); a separate unconditional
pass in ``cache_context("uncond")`` with T5 tokens only (zero-padded).

The pyramid variant runs its stages (each with its own ``set_timesteps``) inside one progress bar per chunk whose
total is the stages' steps summed: steps are counted by that bar (``steps="progress"``), so step ``k`` of a
``[2, 2]`` pyramid is the second stage's step ``k - 2`` from ``k = 2`` on."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

register(Declaration(family="Helios", mode="context", inputs=("encoder_hidden_states",),
                     encode=prompt_encoder({"encoder_hidden_states": 0}), note="steps count within each chunk"),
         "HeliosPipeline")
register(Declaration(family="Helios", mode="context", inputs=("encoder_hidden_states",), steps="progress",
                     encode=prompt_encoder({"encoder_hidden_states": 0}),
                     note="steps summed over the pyramid's stages (its progress bar), within each chunk"),
         "HeliosPyramidPipeline")
