"""Encoding a negative through the stock pipeline's own *negative* path, with this call's arguments.

For the Stable Diffusion descendants (depth, upscalers, adapters, InstructPix2Pix, AnimateDiff, Kolors, ControlNet
variants, ...) whose ``encode_prompt`` pads a negative to the prompt's length: the pipeline's own method is called
with the arguments of this call (device, LoRA scale, clip skip, ``max_sequence_length`` as the pipeline passed
them), a stand-in prompt embedding of this call's shape (so no prompt is encoded and the negative is padded to the
length the stock negative gets), the texts as ``negative_prompt`` (``_2``, ``_3``), one row per text; several
encode methods (``_encode_prompt``), several stand-ins (SDXL's pooled) and results that hold the negative elsewhere
(InstructPix2Pix's ``[pos, neg, neg]``). This module registers nothing: the family modules use it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence

#: prompt arguments that get an empty stand-in text of the negative's type (some pipelines compare the types)
_PROMPTS = ("prompt", "prompt_2", "prompt_3")


def _rows(source, n: int):
    row = source[-1:]
    return row.expand(n, *row.shape[1:])


def negative_args(call, method: str, texts: list[tuple[str, ...]], stand_ins: Mapping, negatives: Sequence[str],
                  current: Mapping) -> dict:
    """The pipeline's own ``method`` arguments of this call, with ``texts`` as the negative(s)."""
    params = inspect.signature(call.original(method)).parameters
    n = len(texts)
    args = dict(call.encode_args)
    for name in params:
        if name.startswith("negative_") and "embeds" in name:
            args[name] = None
        elif name in _PROMPTS:
            args[name] = [""] * n
        elif name.startswith("num_") and name.endswith("_per_prompt"):
            args[name] = 1
    if "do_classifier_free_guidance" in params:
        args["do_classifier_free_guidance"] = True
    for name, source in stand_ins.items():  # a denoiser without that input (None): the stand-in prompt is encoded
        if current.get(source) is not None:
            args[name] = _rows(current[source], n)
    for j, name in enumerate(negatives):
        args[name] = [t[min(j, len(t) - 1)] for t in texts]
    return args


def negative_path(outputs: Mapping[str, int | Callable], stand_ins: Mapping[str, str],
                  negatives: Sequence[str] = ("negative_prompt",), method: str = "encode_prompt",
                  post: Callable | None = None):
    """An ``encode`` for a declaration. ``outputs``: denoiser input -> index of the negative in ``method``'s
    returned tuple, or ``pick(result, n)`` for a result that holds the negative's ``n`` rows elsewhere;
    ``stand_ins``: ``method`` argument -> denoiser input whose rows give the stand-in's shape; ``negatives``: the
    arguments that take the texts, one per encoder. ``post(got, current, call)`` finishes derived inputs."""

    def encode(pipeline, texts, current, call):
        result = call.original(method)(**negative_args(call, method, texts, stand_ins, negatives, current))
        got = {}
        for name, where in outputs.items():
            tensor = where(result, len(texts)) if callable(where) else result[where]
            like = current.get(name)
            got[name] = tensor if like is None else tensor.to(device=like.device, dtype=like.dtype)
        return post(got, current, call) if post is not None else got

    return encode
