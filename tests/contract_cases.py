"""Every builder's cases, by class name (the contract test and the coverage test read this)."""

from __future__ import annotations

import importlib
import pkgutil

import builders


def _one_prompt(factory):
    """A case of a pipeline that takes one str prompt (and one str negative)."""
    def build():
        case = factory()
        case.prompts = "a red cat"
        return case
    return build


def all_cases() -> dict:
    cases = {}
    for info in pkgutil.iter_modules(builders.__path__):
        module = importlib.import_module(f"builders.{info.name}")
        one_prompt = getattr(module, "ONE_PROMPT", frozenset())
        for name, factory in getattr(module, "CASES", {}).items():
            if name in cases:
                raise ValueError(f"{name} is built twice")
            cases[name] = _one_prompt(factory) if name.split("[")[0] in one_prompt else factory
    return cases
