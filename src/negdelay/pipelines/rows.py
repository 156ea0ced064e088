"""How the unconditional inputs of one denoiser call are assembled, row by row, from the pipeline's own rows and the
negative's encoded rows. ``keys[r]`` is None (keep the pipeline's row ``r``) or the index of a negative text."""

from __future__ import annotations

import torch


def cat(parts: list):
    """Rows joined: tensors along dim 0; list-of-tensors batches (Z-Image's captions) as one list."""
    if isinstance(parts[0], list):
        return [row for part in parts for row in part]
    return torch.cat(parts)


def count(rows) -> int:
    return len(rows) if isinstance(rows, list) else rows.shape[0]


def concat_rows(own: dict, negative: dict, keys) -> dict:
    """Row ``r`` from the pipeline's own unconditional pass (key None) or from the negative's row ``key``."""
    return {
        name: cat([own[name][r : r + 1] if k is None else negative[name][k : k + 1] for r, k in enumerate(keys)])
        for name in own
    }


def concat_padded(tokens_name: str, mask_name: str):
    """A merge for text of per-row length (QwenImage): rows zero-padded and masked as the pipeline pads a batch of
    prompts; columns no row uses are dropped and an all-ones mask is ``None``, so that when every row takes the
    negative the inputs are exactly what the stock pipeline passes for that ``negative_prompt``."""

    def merge(own: dict, negative: dict, keys) -> dict:
        tokens, mask = own[tokens_name], own[mask_name]
        if mask is None:
            mask = torch.ones(tokens.shape[:2], dtype=torch.long, device=tokens.device)
        rows, masks = [], []
        for r, k in enumerate(keys):
            source = (tokens[r], mask[r]) if k is None else (negative[tokens_name][k], negative[mask_name][k])
            rows.append(source[0])
            masks.append(source[1])
        width = max(max(int(m.nonzero().max()) + 1 if m.any() else 0 for m in masks), 1)
        out_t = torch.stack([torch.cat([t[:width], t.new_zeros(max(0, width - t.shape[0]), t.shape[1])]) for t in rows])
        out_m = torch.stack([torch.cat([m[:width], m.new_zeros(max(0, width - m.shape[0]))]) for m in masks])
        return {tokens_name: out_t, mask_name: None if bool(out_m.all()) else out_m}

    return merge
