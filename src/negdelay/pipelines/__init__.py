"""The registry of served pipelines: one declaration per class (``declaration.py``), written per family in the
modules of this package (each registers its declarations when imported; every module here is imported);
``coverage.py`` lists every installed pipeline that takes a negative prompt, served or not."""

import importlib
import pkgutil

from .declaration import MODES, REGISTRY, Declaration, declaration_for, register

_MACHINERY = {"declaration", "encoders", "guidance", "rows", "coverage", "docs", "__main__"}
for _info in pkgutil.iter_modules(__path__):
    if _info.name not in _MACHINERY:
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["MODES", "REGISTRY", "Declaration", "declaration_for", "register"]
