"""Bria Fibo: one batched ``[negative, prompt]`` transformer call per step. ``encode_prompt`` encodes the prompts and
the negatives in two batches (each padded within itself, its padded positions holding the text encoder's states of the
pad tokens) and zero-pads both to the wider; the transformer takes ``encoder_hidden_states`` (the last two layers),
``text_encoder_layers`` (a list of per-layer states, the last ones, one per transformer block), the text part of the
joint ``[text, image]`` key mask in ``joint_attention_kwargs`` (left out when no position is padded) and ``txt_ids``,
zeros of the text width. A delayed negative of another width re-pads every block (``PAD``) and follows the width with
``txt_ids``. Fibo Edit is the same with reference-image tokens after the image's in the joint mask."""

from __future__ import annotations

import torch

from .declaration import Declaration, register
from .encoders import positive_args
from .padding import _real_width, _widen

TOKENS, LAYERS, MASK = "encoder_hidden_states", "text_encoder_layers", "joint_attention_kwargs.attention_mask"
IDS = "txt_ids"  # (tokens, 3) zeros: no rows, only the width


def _text_mask(part: dict) -> torch.Tensor:
    """A part's text key mask ``(rows, 1, 1, tokens)``, bool: the text columns of the joint mask (all set if None)."""
    tokens, mask = part[TOKENS], part[MASK]
    if mask is None:
        return torch.ones(tokens.shape[0], 1, 1, tokens.shape[1], dtype=torch.bool, device=tokens.device)
    return mask[..., : tokens.shape[1]].bool()


def _fit(part: dict, width: int, mask: torch.Tensor, real: int | None = None) -> dict:
    """A part cut to ``real`` tokens (its own width) and zero-padded to ``width``, text mask likewise."""
    real = part[TOKENS].shape[1] if real is None else real
    return {TOKENS: _widen(part[TOKENS][:, :real], width), LAYERS: _widen(part[LAYERS][:, :real], width),
            MASK: torch.cat([mask[..., :real], mask.new_zeros(*mask.shape[:-1], max(0, width - real))], dim=-1)}


def merge(own: dict, negative: dict, keys) -> dict:
    """Row ``r`` from the pipeline's own pass (key None) or negative ``key``, with text masks: rows of one source as
    that source padded them, rows of both zero-padded to the wider source."""
    picked = [(own, r) if k is None else (negative, k) for r, k in enumerate(keys)]
    width = max(source[TOKENS].shape[1] for source, _ in picked)
    rows = [_fit({n: source[n][i : i + 1] if source[n] is not None else None for n in (TOKENS, LAYERS, MASK)},
                 width, _text_mask({TOKENS: source[TOKENS][i : i + 1],
                                    MASK: None if source[MASK] is None else source[MASK][i : i + 1]}))
            for source, i in picked]
    return {n: torch.cat([row[n] for row in rows]) for n in (TOKENS, LAYERS, MASK)}


def PAD(parts, call=None, keys=None) -> dict:
    """Each block cut to its own width (its longest real row) and zero-padded to the widest; the image columns of the
    joint mask appended (all set); no mask when every position is real; ``txt_ids`` of the new width."""
    masks = [_text_mask(part) for part in parts]
    widths = [_real_width(m.reshape(m.shape[0], -1)) for m in masks]
    width = max(widths)
    fitted = [_fit(part, width, m, w) for part, m, w in zip(parts, masks, widths)]
    out = {n: torch.cat([f[n] for f in fitted]) for n in (TOKENS, LAYERS)}
    text = torch.cat([f[MASK] for f in fitted])
    kwargs = call.denoiser_kwargs  # the denoiser call being re-padded
    image = kwargs["hidden_states"].shape[1]
    joint = torch.cat([text, text.new_ones(*text.shape[:-1], image)], dim=-1)
    out[MASK] = None if bool(joint.all()) else joint
    ids = kwargs[IDS]
    if ids.shape[-2] != width:
        out[IDS] = ids.new_zeros(*ids.shape[:-2], width, ids.shape[-1])
    return out


PAD.optional, PAD.follows = (MASK,), (IDS,)


def encode(pipeline, texts, current, call):
    """The texts through the pipeline's ``encode_prompt`` as prompts (no guidance: no negative batch), the layers
    trimmed to the transformer's blocks as ``__call__`` does, stacked on dim 2."""
    args = positive_args(call, texts, ("prompt",))
    args["guidance_scale"] = 1
    embeds, _, _, mask, _, layers, _ = call.original(call.started_by)(**args)
    blocks = len(pipeline.transformer.transformer_blocks) + len(pipeline.transformer.single_transformer_blocks)
    layers = list(layers)
    layers = layers[len(layers) - blocks :] if len(layers) >= blocks else layers + [layers[-1]] * (blocks - len(layers))
    like = current[TOKENS]
    return {TOKENS: embeds.to(like.dtype), LAYERS: torch.stack(layers, dim=2).to(like.dtype),
            MASK: mask.bool()[:, None, None, :]}


register(Declaration(family="Bria Fibo", mode="batched", inputs=(TOKENS, LAYERS, MASK, IDS), encode=encode, pad=PAD,
                     merge=merge, guided=lambda pipeline, call, denoiser, total: pipeline.guidance_scale > 1,
                     note="prompt and negative blocks zero-padded to each other: every block re-padded, txt_ids "
                          "follow the width"),
         "BriaFiboPipeline", "BriaFiboEditPipeline")
