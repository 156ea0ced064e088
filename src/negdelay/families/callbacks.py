"""The named callback classes of the SDXL and SD3 families: ``DelayedNegativeXL``, ``DelayedNegativeSD3``.

They live apart from the family adapters because ``negdelay.callback`` imports ``negdelay.families``; importing this
module registers the classes, and ``negdelay.callback.callback_class`` imports it before it looks one up, so
``DelayedNegative.for_pipeline`` returns them (``import negdelay`` loads its names lazily).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..callback import DelayedNegativeBase, register
from .sd3 import SD3
from .sdxl import SDXL, time_ids


class _MorePrompts(DelayedNegativeBase):
    """Per-encoder negatives (``negative_prompt_2``, ...): each entry of the negative becomes a tuple of texts,
    one per encoder, encoded in one batch; an encoder whose text is not given gets ``negative_prompt``'s, as in
    the stock pipelines."""

    _more: tuple[str, ...] = ()

    def __init__(self, negative_prompt=None, **kwargs):
        given = {name: kwargs.pop(name, None) for name in self._more}
        present = [name for name, v in given.items() if v is not None]
        if present and negative_prompt is None:
            raise ValueError(f"{', '.join(present)} needs negative_prompt (the text for the first encoder) as well")
        super().__init__(negative_prompt, **kwargs)
        self.register_to_config(**given)
        if not present:
            return
        first = list(self._texts)
        columns = [first]
        for name in self._more:
            value = given[name]
            if value is None:
                columns.append(first)
                continue
            texts = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
            if not texts or not all(isinstance(t, str) for t in texts):
                raise TypeError(f"{name} must be a str or a non-empty list of str, got {value!r}")
            if len(texts) not in (1, len(first)):
                raise ValueError(
                    f"{name} has {len(texts)} entries but negative_prompt has {len(first)}; give 1 or {len(first)}"
                )
            columns.append(texts * len(first) if len(texts) == 1 else texts)
        # the family's encode takes an entry as a str or as a tuple of per-encoder texts
        self._texts = [tuple(row) for row in zip(*columns)]


class DelayedNegativeXL(_MorePrompts):
    """Delay the negative prompt on Stable Diffusion XL pipelines.

    Replaces the unconditional rows of ``prompt_embeds`` *and* of the pooled ``add_text_embeds`` from the
    start step on; before it (and after a stop), the rows are exactly what the stock pipeline uses, including
    the all-zero rows of ``negative_prompt=None`` with ``force_zeros_for_empty_prompt``.

    Args (besides those of ``negdelay.DelayedNegative``):
        negative_prompt_2: the negative for ``tokenizer_2``/``text_encoder_2`` (default: ``negative_prompt``).
        negative_original_size, negative_crops_coords_top_left, negative_target_size: optional size/crop
            conditioning for the negative (text-to-image SDXL only). Without them the unconditional rows of
            ``add_time_ids`` stay what the pipeline made for the whole call.
        negative_prompt_embeds: a dict with ``prompt_embeds`` and ``add_text_embeds`` (and optionally
            ``add_time_ids``) rows of the negative.
    """

    family = SDXL()
    _more = ("negative_prompt_2",)

    def __init__(
        self,
        negative_prompt: str | Sequence[str] | None = None,
        *,
        negative_prompt_2: str | Sequence[str] | None = None,
        negative_original_size: tuple[int, int] | None = None,
        negative_crops_coords_top_left: tuple[int, int] = (0, 0),
        negative_target_size: tuple[int, int] | None = None,
        **schedule,
    ):
        given = {
            "negative_original_size": negative_original_size,
            "negative_crops_coords_top_left": negative_crops_coords_top_left,
            "negative_target_size": negative_target_size,
        }
        for name, value in given.items():
            if value is not None and (
                not isinstance(value, (tuple, list)) or len(value) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            ):
                raise TypeError(f"{name} must be a pair of ints (height, width) or (top, left), got {value!r}")
        if (negative_original_size is None) != (negative_target_size is None):
            raise ValueError("give both negative_original_size and negative_target_size, or neither")
        self._sizes = None if negative_original_size is None else (
            tuple(negative_original_size), tuple(negative_crops_coords_top_left), tuple(negative_target_size)
        )
        super().__init__(negative_prompt, negative_prompt_2=negative_prompt_2, **schedule)
        if self._sizes is not None:
            self.register_to_config(**{k: tuple(v) for k, v in given.items()})

    def _encode(self, pipeline, texts, current) -> dict[str, torch.Tensor]:
        encoded = super()._encode(pipeline, texts, current)
        if self._sizes is None or "add_time_ids" in encoded:
            return encoded
        row = time_ids(pipeline, *self._sizes, like=current["add_time_ids"])
        rows = next(iter(encoded.values())).shape[0]
        return {**encoded, "add_time_ids": row.expand(rows, -1)}


class DelayedNegativeSD3(_MorePrompts):
    """Delay the negative prompt on ``StableDiffusion3Pipeline``.

    Replaces the unconditional rows of ``prompt_embeds`` and ``pooled_prompt_embeds`` from the start step on.
    ``start_sigma`` follows the flow-matching scheduler's sigmas (1 = pure noise).

    Args (besides those of ``negdelay.DelayedNegative``):
        negative_prompt_2, negative_prompt_3: the negatives for CLIP-G and T5 (default: ``negative_prompt``).
        negative_prompt_embeds: a dict with ``prompt_embeds`` and ``pooled_prompt_embeds`` rows of the negative.
    """

    family = SD3()
    _more = ("negative_prompt_2", "negative_prompt_3")

    def __init__(
        self,
        negative_prompt: str | Sequence[str] | None = None,
        *,
        negative_prompt_2: str | Sequence[str] | None = None,
        negative_prompt_3: str | Sequence[str] | None = None,
        **schedule,
    ):
        super().__init__(negative_prompt, negative_prompt_2=negative_prompt_2, negative_prompt_3=negative_prompt_3, **schedule)


register(DelayedNegativeXL.family, DelayedNegativeXL)
register(DelayedNegativeSD3.family, DelayedNegativeSD3)
