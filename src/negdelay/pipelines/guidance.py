"""Batched mode: whether a denoiser call holds unconditional rows, from what the pipeline exposes (no frames)."""

from __future__ import annotations


def by_property(pipeline, call, denoiser, rows) -> bool:
    """The pipeline's ``do_classifier_free_guidance`` property (read once per call)."""
    return bool(getattr(pipeline, "do_classifier_free_guidance", False))


def by_encode_argument(pipeline, call, denoiser, rows) -> bool:
    """The ``do_classifier_free_guidance`` argument the pipeline passed to its own ``encode_prompt`` (PixArt keeps
    the decision in a local variable of ``__call__``)."""
    return bool(call.encode_args.get("do_classifier_free_guidance", True))


def images_of(call) -> int:
    """Image rows of the running call, from the pipeline's own ``encode_prompt`` arguments."""
    args = call.encode_args
    prompt, embeds = args.get("prompt"), args.get("prompt_embeds")
    n = len(prompt) if isinstance(prompt, (list, tuple)) else 1 if prompt is not None else embeds.shape[0]
    per = next((v for k, v in args.items() if k.startswith("num_") and k.endswith("_per_prompt") and v), 1)
    return n * int(per)


def controlnet_rows(pipeline, call, denoiser, rows) -> bool:
    """A ControlNet sees the unconditional rows only when it gets both halves (not in guess mode, where it runs on
    the conditional rows alone); the main denoiser follows the pipeline's property."""
    if denoiser == "controlnet":
        return by_property(pipeline, call, denoiser, rows) and rows == 2 * images_of(call)
    return by_property(pipeline, call, denoiser, rows)
