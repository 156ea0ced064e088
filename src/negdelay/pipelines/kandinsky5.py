"""Kandinsky 5 (text/image-to-video, text/image-to-image): two transformer calls per step, conditional then
unconditional (no cache context), with the Qwen2.5-VL tokens, the CLIP pooled embedding and ``text_rope_pos``, the
text positions ``arange(tokens)``. The negative is ``encode_prompt`` of the negative texts (one path for both).

Qwen tokens are padded to the longest text of the batch (pad-token states, no mask): rows of another text length
change the positions. The merge rebuilds ``text_rope_pos`` from the merged width; rows of different widths
(the pipeline's own negative next to a delayed one, per-row schedules) are right-padded with zeros.
"""

from __future__ import annotations

import torch

from .declaration import Declaration, register
from .rows import concat_rows

TOKENS, POOLED, POSITIONS = "encoder_hidden_states", "pooled_projections", "text_rope_pos"


def _encode(pipeline, texts, current, call):
    args = dict(call.encode_args)
    args["prompt"] = [t[0] for t in texts]
    if "num_videos_per_prompt" in args or "num_images_per_prompt" in args:
        args = {k: (1 if k.startswith("num_") and k.endswith("_per_prompt") else v) for k, v in args.items()}
    tokens, pooled = call.original("encode_prompt")(**args)[:2]
    like, like_pooled = current[TOKENS], current[POOLED]
    return {TOKENS: tokens.to(like.device, like.dtype), POOLED: pooled.to(like_pooled.device, like_pooled.dtype),
            POSITIONS: _positions(tokens.shape[1], current[POSITIONS])}


def _positions(width: int, like: torch.Tensor) -> torch.Tensor:
    return torch.arange(width, device=like.device, dtype=like.dtype)


def _pad(rows: torch.Tensor, width: int) -> torch.Tensor:
    return torch.cat([rows, rows.new_zeros(rows.shape[0], width - rows.shape[1], rows.shape[2])], dim=1)


def merge(own: dict, negative: dict, keys) -> dict:
    """Rows from the pipeline's own pass (key None) or the negative's; ``text_rope_pos`` follows the merged width."""
    parts = [own[TOKENS][r : r + 1] if k is None else negative[TOKENS][k : k + 1] for r, k in enumerate(keys)]
    width = max(p.shape[1] for p in parts)
    out = concat_rows({POOLED: own[POOLED]}, {POOLED: negative[POOLED]}, keys)
    out[TOKENS] = torch.cat([_pad(p, width) for p in parts])
    out[POSITIONS] = _positions(width, own[POSITIONS])
    return out


_K5 = dict(family="Kandinsky 5", mode="ordered", inputs=(TOKENS, POOLED, POSITIONS), encode=_encode, merge=merge,
           needs="guidance_scale > 1")
register(Declaration(**_K5), "Kandinsky5T2VPipeline", "Kandinsky5I2VPipeline", "Kandinsky5T2IPipeline",
         "Kandinsky5I2IPipeline")
