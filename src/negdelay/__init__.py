"""negdelay: delayed negative prompts for Hugging Face diffusers (Ban et al., arXiv:2406.02965).

``pipe(prompt, callback_on_step_end=DelayedNegative("glasses", start_step=5))``
"""

from .auto import AutoDelayedNegative
from .callback import DelayedNegative, DelayedNegativeBase
from .families.callbacks import DelayedNegativeSD3, DelayedNegativeXL
from .hooks import apply, is_applied, remove
from .schedule import Point

__all__ = ["AutoDelayedNegative", "DelayedNegative", "DelayedNegativeBase", "DelayedNegativeSD3", "DelayedNegativeXL", "Point", "apply", "is_applied", "remove"]
__version__ = "0.1.0"
