"""Every builder's cases, by class name (the contract test and the coverage test read this)."""

from __future__ import annotations

import functools
import importlib
import pkgutil
import warnings

import torch

import builders
from contract_reference import staged_text_inputs, watch


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


CASES = all_cases()


@functools.lru_cache(maxsize=None)
def case(name):
    """The built case of ``name`` (one pipeline per class, shared by the tests that use it)."""
    return CASES[name]()


def call(c, negative=None, **overrides):
    """One call of the case's pipeline: its prompts (2 images each where it takes them), steps and seed; the
    case's own negative unless ``negative`` is given. Returns the output to compare."""
    kwargs = {"prompt": c.prompts if isinstance(c.prompts, str) else list(c.prompts), "num_inference_steps": c.steps,
              "generator": torch.Generator().manual_seed(0), **c.call}
    if c.images_arg:
        kwargs[c.images_arg] = 2
    if negative is not None:
        kwargs[c.negative_arg] = negative
    kwargs.update(overrides)
    torch.manual_seed(0)  # pipelines that draw from the global generator too (Qwen ControlNet inpaint's VAE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return c.output(c.pipe(**kwargs))


@functools.lru_cache(maxsize=None)
def recorded(name):
    """Stock output with the pipeline's own negative, and the reference's text inputs (runs A and B)."""
    c = case(name)
    with watch(c.pipe) as calls_a:
        stock = call(c)
    with watch(c.pipe) as calls_b:
        call(c, negative=c.negatives())

    def run_b(change):
        with watch(c.pipe, change) as calls:
            call(c, negative=c.negatives())
        return calls

    return stock, staged_text_inputs(calls_a, calls_b, run_b)
