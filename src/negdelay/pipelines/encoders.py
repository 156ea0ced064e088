"""Encoding a negative exactly as the stock pipeline encodes its ``negative_prompt`` in the running call.

Most pipelines encode a negative with the same ``encode_prompt`` path as a prompt: ``prompt_encoder`` calls the
pipeline's own ``encode_prompt`` with the arguments of this call (``max_sequence_length``, ``clean_caption``,
device, LoRA scale, ... as the pipeline passed them) and the negative texts as the prompt. Families whose negative
path differs (SD 1.x, SDXL, SD3: padded to the prompt's length) use their family adapter.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import torch

#: encode_prompt arguments that must not carry the pipeline's own prompt into the negative's encoding
_CLEARED = ("embeds", "attention_mask", "embeds_mask")


def positive_args(call, texts: list[tuple[str, ...]], text_args: Sequence[str]) -> dict:
    """The pipeline's own ``encode_prompt`` arguments of this call, with ``texts`` as the prompt(s): one per
    encoder argument in ``text_args``; no negative, no precomputed embeddings, one row per text, no CFG half."""
    params = inspect.signature(call.original(call.started_by)).parameters
    args = dict(call.encode_args)
    for name in params:
        if name.startswith("negative_") or any(part in name for part in _CLEARED):
            args[name] = None if params[name].default is inspect.Parameter.empty else params[name].default
    for j, name in enumerate(text_args):
        args[name] = [t[min(j, len(t) - 1)] for t in texts]
    for name in params:
        if name.startswith("num_") and name.endswith("_per_prompt"):  # num_images_per_prompt, num_videos_per_prompt
            args[name] = 1
    if "batch_size" in params:
        args["batch_size"] = len(texts)
    if "do_classifier_free_guidance" in params:
        args["do_classifier_free_guidance"] = False
    return args


def _like(tensor, current):
    """``tensor`` on ``current``'s device and dtype (lists of row tensors: each like the first current row)."""
    if tensor is None or current is None:
        return tensor
    if isinstance(tensor, list):
        return [_like(t, current[0] if isinstance(current, list) and current else current) for t in tensor]
    if isinstance(current, list):
        return tensor
    return tensor.to(device=current.device, dtype=current.dtype)


def prompt_encoder(outputs: dict[str, int], text_args: Sequence[str] = ("prompt",), post: Callable | None = None):
    """An ``encode`` for a declaration: ``encode_prompt(prompt=texts, <this call's other arguments>)``, whose
    returned tuple's item ``outputs[input]`` becomes the denoiser input ``input`` (cast like this call's input).
    ``post(got, current, call)`` finishes pipeline-specific work (masks, ids)."""

    def encode(pipeline, texts, current, call):
        result = call.original(call.started_by)(**positive_args(call, texts, text_args))
        result = result if isinstance(result, tuple) else (result,)
        got = {name: _like(result[i], current.get(name)) for name, i in outputs.items()}
        return post(got, current, call) if post is not None else got

    return encode


def family_encoder(family, names: dict[str, str], arity: int = 1):
    """An ``encode`` through a step-end callback family adapter (SD, SDXL, SD3): ``names`` maps the family's
    callback tensor names to the denoiser's argument names; texts are padded to ``arity`` encoders."""

    def encode(pipeline, texts, current, call):
        wide = [t if len(t) == arity else t + (t[0],) * (arity - len(t)) for t in texts]
        wide = [w[0] if arity == 1 else w for w in wide]
        given = {ours: current[theirs] for ours, theirs in names.items()}
        got = family.encode(pipeline, wide, given)
        return {names[ours]: got[ours] for ours in names if ours in got}

    return encode


def ones_mask_if_none(tokens: str, mask: str):
    """post: a pipeline that returns no mask when every token counts (QwenImage) gets an all-ones one."""

    def post(got, current, call):
        if got.get(mask) is None:
            got[mask] = torch.ones(got[tokens].shape[:2], dtype=torch.long, device=got[tokens].device)
        return got

    return post
