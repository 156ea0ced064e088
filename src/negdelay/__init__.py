"""negdelay: delayed negative prompts for Hugging Face diffusers (Ban et al., arXiv:2406.02965).

``pipe(prompt, callback_on_step_end=DelayedNegative("glasses", start_step=5))``

The names below load on first use (PEP 562), so ``import negdelay`` does not import torch and diffusers up front:
the ``negdelay`` command line answers Ctrl-C with one line from its first moment (docs/lab.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_NAMES = {
    "AutoDelayedNegative": ".auto",
    "DelayedNegative": ".callback",
    "DelayedNegativeBase": ".callback",
    "DelayedNegativeSD3": ".families.callbacks",
    "DelayedNegativeXL": ".families.callbacks",
    "Point": ".schedule",
    "apply": ".hooks",
    "is_applied": ".hooks",
    "remove": ".hooks",
}

__all__ = ["AutoDelayedNegative", "DelayedNegative", "DelayedNegativeBase", "DelayedNegativeSD3", "DelayedNegativeXL", "Point", "apply", "is_applied", "remove"]
__version__ = "0.1.0"


def __getattr__(name: str):
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'negdelay' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))


if TYPE_CHECKING:
    from .auto import AutoDelayedNegative
    from .callback import DelayedNegative, DelayedNegativeBase
    from .families.callbacks import DelayedNegativeSD3, DelayedNegativeXL
    from .hooks import apply, is_applied, remove
    from .schedule import Point
