"""The registry of served pipelines: one declaration per class (``declaration.py``), written per family in the
modules of this package; ``coverage.py`` lists every installed pipeline that takes a negative prompt, served or not."""

from . import cogvideox, flux, ltx, pixart, qwenimage, sd  # noqa: F401  (each registers its declarations)
from .declaration import MODES, REGISTRY, Declaration, declaration_for, register

__all__ = ["MODES", "REGISTRY", "Declaration", "declaration_for", "register"]
