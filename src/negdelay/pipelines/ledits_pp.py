"""LEDITS++ (SD 1.x and SDXL): one batched UNet call per step, rows ``[unconditional, edit 1, ..., edit n]`` (one
block per editing prompt, each as many rows as inverted images). The unconditional block is a real text pass: the
``negative_prompt`` (default "", SDXL: zeros when none is given and ``force_zeros_for_empty_prompt``) is the base
every edit direction is taken from and the prediction the image is rebuilt from. Without editing prompts the
pipeline runs that block alone (no edit guidance): left alone.

``invert`` calls ``encode_prompt`` and the UNet too (the source prompt, its own guidance); it passes no
``editing_prompt_embeds``, which ``__call__`` always passes: that tells a call from an inversion. The negative is
encoded through the pipeline's own negative path (``encode_prompt`` with the texts as ``negative_prompt``, no edit
concepts), in chunks of the inverted batch size that path insists on."""

from __future__ import annotations

import torch

from .declaration import Declaration, register
from .own_negative import negative_args

TOKENS, POOLED = "encoder_hidden_states", "added_cond_kwargs.text_embeds"


def edit_guided(pipeline, call, denoiser, rows) -> bool:
    """A call (not an inversion) with edit guidance on."""
    args = call.encode_args
    return "editing_prompt_embeds" in args and bool(args.get("enable_edit_guidance"))


def edit_blocks(pipeline, call):
    """``[unconditional, edit 1, ..., edit n]``."""
    return 1 + int(pipeline.enabled_editing_prompts), (0,)


def negative_encoder(outputs: dict[str, int], negatives: tuple[str, ...]):
    """An ``encode``: ``encode_prompt``'s negative path, ``batch_size`` texts at a time (the last chunk padded with
    its last text), returned item ``outputs[input]`` -> denoiser input."""

    def encode(pipeline, texts, current, call):
        size = int(pipeline.batch_size)
        got: dict[str, list] = {name: [] for name in outputs}
        for start in range(0, len(texts), size):
            chunk = list(texts[start : start + size])
            n = len(chunk)
            chunk += [chunk[-1]] * (size - n)
            args = negative_args(call, "encode_prompt", chunk, {}, negatives, current)
            args.update({name: None for name in args if name.startswith("editing_")})
            args["enable_edit_guidance"] = False
            result = call.original("encode_prompt")(**args)
            for name, index in outputs.items():
                got[name].append(result[index][:n])
        out = {}
        for name, parts in got.items():
            tensor, like = torch.cat(parts), current.get(name)
            out[name] = tensor if like is None else tensor.to(device=like.device, dtype=like.dtype)
        return out

    return encode


_LEDITS = dict(family="LEDITS++", mode="batched", denoisers=("unet",), guided=edit_guided, layout=edit_blocks,
               needs="an editing_prompt (edit guidance)",
               note="rows [unconditional, edits...]: the negative is the base the edits are taken from")
#: SD 1.x counts its steps by its progress bar: its loop runs the last ``num_inversion_steps`` of the scheduler's
#: timesteps (``invert``'s ``skip`` drops the first ones) and, unlike SDXL, sets no ``_num_timesteps``, so the
#: scheduler's step index cannot tell where the loop starts.
SD = register(Declaration(**_LEDITS, inputs=(TOKENS,), steps="progress",
                          encode=negative_encoder({TOKENS: 1}, ("negative_prompt",))),
              "LEditsPPPipelineStableDiffusion")
register(Declaration(**_LEDITS, inputs=(TOKENS, POOLED), prompts=("negative_prompt_2",),
                     encode=negative_encoder({TOKENS: 0, POOLED: 2}, ("negative_prompt", "negative_prompt_2"))),
         "LEditsPPPipelineStableDiffusionXL")
