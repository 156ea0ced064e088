"""Pipeline families: what differs between SD 1.x/2.x, SDXL, SD3, ... lives in one small adapter each.

An adapter says which callback tensors carry the unconditional half (``tensor_inputs``) and how to encode
a negative text with the pipeline's own encoder (``encode``). Everything else is shared.
"""

from __future__ import annotations

from .base import Family, run_facts
from .sd import SD
from .sd3 import SD3
from .sdxl import SDXL

FAMILIES: list[Family] = [SD(), SDXL(), SD3()]


def family_for(pipeline) -> Family | None:
    """The adapter that serves ``pipeline``, or ``None``."""
    for family in FAMILIES:
        if family.serves(pipeline):
            return family
    return None


__all__ = ["FAMILIES", "Family", "SD", "SD3", "SDXL", "family_for", "run_facts"]
