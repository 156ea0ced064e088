"""PixArt-Alpha/Sigma on the tiny components of tests/tiny_families.py."""

from __future__ import annotations

from diffusers import EulerDiscreteScheduler, PixArtSigmaPipeline

from contract_case import Case
from tiny_families import tiny_pixart

CALL = dict(height=16, width=16, max_sequence_length=8, clean_caption=False, use_resolution_binning=False,
            output_type="latent")


def pixart(cls=None, full=False):
    def build():
        return Case(tiny_pixart(None, cls=cls), call=dict(CALL), full_grid=full, schedulers=(
            (lambda p: p.scheduler), (lambda p: EulerDiscreteScheduler.from_config(p.scheduler.config))))
    return build


CASES = {"PixArtAlphaPipeline": pixart(full=True), "PixArtSigmaPipeline": pixart(PixArtSigmaPipeline)}
