"""Re-padding the blocks of a batched call (a declaration's ``pad``), for pipelines that pad prompt and negative token
rows to one common width before the denoising loop (Ernie-Image, DreamLite, Bria Fibo, JoyImage Edit Plus).

A delayed negative of another token length than the pipeline's own then changes the width of EVERY block of the call,
the conditional rows too. A pad rule ``pad(parts, call, keys) -> inputs`` joins the call's blocks (``parts``: one dict
``{input: rows}`` per block, in block order, each padded as its source padded it) into the call's inputs padded as the
stock pipeline pads them, so that a call whose unconditional rows all take the negative passes exactly what the stock
pipeline passes with that ``negative_prompt``. ``call`` is the pipeline call's record (None inside a merge: the rows
are re-padded by the join anyway; its ``denoiser_kwargs`` are the keyword arguments of the denoiser call being
re-padded, for inputs that follow the width without being text: Bria Fibo's ``txt_ids``, which the rule may return
too), ``keys`` the step's plan (the text of each unconditional row, None: the pipeline's own). Two kinds:

- ``rows_by_length`` / ``rows_by_mask``: each row's real tokens (its length, or where its mask is set; right-padded),
  every row padded to the longest real row of the call (Ernie-Image pads the whole call; DreamLite encodes the negative
  and the prompt in one batch);
- ``blocks_by_mask``: each block as its source encoded it (padded within itself), trimmed to its longest real row and
  right-padded with zeros, mask 0, to the widest block (JoyImage Edit Plus, Bria Fibo encode prompt and negative
  separately and pad the two batches to each other).

``merge_rows(pad)`` / ``merge_blocks(...)`` are the matching ``merge`` of a declaration: the unconditional block's rows
from the pipeline's own pass or the negative's, which may have different widths."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def _widen(rows: torch.Tensor, width: int, fill=None) -> torch.Tensor:
    """``rows`` (dim 1 = tokens) cut or right-padded to ``width``: zeros, or ``fill`` (one token's vector)."""
    if rows.shape[1] >= width:
        return rows[:, :width]
    shape = (rows.shape[0], width - rows.shape[1], *rows.shape[2:])
    pad = rows.new_zeros(shape) if fill is None else fill.to(rows.dtype).reshape(1, 1, -1).expand(shape)
    return torch.cat([rows, pad], dim=1)


def _real_width(mask: torch.Tensor) -> int:
    """One past the last set column of any row (0 when none is set)."""
    used = mask.reshape(mask.shape[0], mask.shape[1], -1).bool().any(dim=2).any(dim=0).nonzero()
    return int(used.max()) + 1 if used.numel() else 0


def rows_by_length(tokens: str, lengths: str) -> Callable:
    """Rows real up to ``lengths`` (Ernie-Image's ``text_bth`` / ``text_lens``), zero-padded to the longest."""

    def pad(parts: Sequence[dict], call=None, keys=None) -> dict:
        lens = torch.cat([part[lengths] for part in parts])
        width = int(lens.max()) if lens.numel() else 0
        rows = torch.cat([_widen(part[tokens], width) for part in parts])
        real = torch.arange(width, device=rows.device)[None, :] < lens.to(rows.device)[:, None]
        return {tokens: torch.where(real.reshape(*real.shape, *(1,) * (rows.dim() - 2)), rows, 0), lengths: lens}

    return pad


def rows_by_mask(tokens: str, mask: str, fill: Callable | None = None) -> Callable:
    """Rows real where ``mask`` is set (right-padded), padded to the longest with ``fill(call)`` (a token vector, or
    None for zeros) and mask 0 (DreamLite's ``text_pad_embedding``)."""

    def pad(parts: Sequence[dict], call=None, keys=None) -> dict:
        masks = [part[mask] for part in parts]
        width = max(int(m.bool().sum(dim=1).max()) if m.numel() else 0 for m in masks)
        vector = fill(call) if fill is not None and call is not None else None
        rows, row_masks = [], []
        for part, m in zip(parts, masks):
            for i in range(m.shape[0]):
                real = int(m[i].bool().sum())
                rows.append(_widen(part[tokens][i : i + 1, :real], width, vector))
                row_masks.append(_widen(m[i : i + 1, :real], width))
        return {tokens: torch.cat(rows), mask: torch.cat(row_masks)}

    return pad


def blocks_by_mask(tokens: str, mask: str, also: Sequence[str] = ()) -> Callable:
    """Each block trimmed to its longest real row (``mask``), then every block zero-padded (mask 0) to the widest;
    the inputs ``also`` (lists of per-layer token tensors, Bria Fibo's ``text_encoder_layers``) follow the same
    widths."""

    def pad(parts: Sequence[dict], call=None, keys=None) -> dict:
        widths = [_real_width(part[mask]) for part in parts]
        width = max(widths)
        out = {tokens: torch.cat([_widen(_widen(p[tokens], w), width) for p, w in zip(parts, widths)]),
               mask: torch.cat([_widen(_widen(p[mask], w), width) for p, w in zip(parts, widths)])}
        for name in also:
            layers = len(parts[0][name])
            out[name] = [torch.cat([_widen(_widen(p[name][j], w), width) for p, w in zip(parts, widths)])
                         for j in range(layers)]
        return out

    return pad


def merge_rows(pad: Callable) -> Callable:
    """A declaration's ``merge`` for a row-padding rule: row ``r`` from the pipeline's own pass (key None) or the
    negative's row ``key``, joined by ``pad`` (each row its own part)."""

    def merge(own: dict, negative: dict, keys) -> dict:
        parts = [{n: (own if k is None else negative)[n][i : i + 1] for n in own}
                 for i, k in ((r if k is None else k, k) for r, k in enumerate(keys))]
        return pad(parts, None)

    return merge


def merge_blocks(tokens: str, *masks: str) -> Callable:
    """A declaration's ``merge`` for ``blocks_by_mask`` (or for tokens without a mask, zero-padded like a batch):
    rows of one source as that source padded them; rows of both zero-padded (``masks``: 0) to the wider source."""

    def merge(own: dict, negative: dict, keys) -> dict:
        picked = [(own, r) if k is None else (negative, k) for r, k in enumerate(keys)]
        width = max(source[tokens].shape[1] for source, _ in picked)
        return {name: torch.cat([_widen(source[name][i : i + 1], width) for source, i in picked])
                for name in (tokens, *masks)}

    return merge
