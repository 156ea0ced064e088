"""Every builder's cases, by class name (the contract test and the coverage test read this)."""

from __future__ import annotations

import importlib
import pkgutil

import builders


def all_cases() -> dict:
    cases = {}
    for info in pkgutil.iter_modules(builders.__path__):
        module = importlib.import_module(f"builders.{info.name}")
        for name, factory in getattr(module, "CASES", {}).items():
            if name in cases:
                raise ValueError(f"{name} is built twice")
            cases[name] = factory
    return cases
