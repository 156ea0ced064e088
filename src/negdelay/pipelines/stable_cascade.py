"""Stable Cascade prior (stage C) and decoder (stage B): one batched ``StableCascadeUNet`` call per step, rows
``[conditional, unconditional]`` (the unconditional block is the SECOND), ``do_classifier_free_guidance`` property.

The prior's unconditional rows carry the negative's CLIP tokens (``clip_text``) and pooled projection
(``clip_text_pooled``); the image rows there (``clip_img``) are zeros either way. The decoder's unconditional pass is
a text pass too: the negative's pooled projection (``clip_text_pooled``) next to zeroed image embeddings
(``effnet``, not text). Prompt and negative are both padded to the tokenizer's length and encoded alike, so a
negative is encoded as a prompt by the pipeline's ``encode_prompt``.

Its own ``DDPMWuerstchenScheduler`` has no ``order`` attribute: ``run_facts`` takes 1 (one call per step); the loop
drops the LAST timestep, which the ``_num_timesteps`` path counts right."""

from __future__ import annotations

from .declaration import Declaration, register
from .encoders import prompt_encoder

TOKENS, POOLED = "clip_text", "clip_text_pooled"


def second_block_unconditional(pipeline, call):
    """``[conditional, unconditional]``."""
    return 2, (1,)


_CASCADE = dict(family="Stable Cascade", mode="batched", layout=second_block_unconditional)
PRIOR = Declaration(**_CASCADE, inputs=(POOLED, TOKENS), denoisers=("prior",),
                    encode=prompt_encoder({TOKENS: 0, POOLED: 1}))
DECODER = Declaration(**_CASCADE, inputs=(POOLED,), denoisers=("decoder",), encode=prompt_encoder({POOLED: 1}),
                      note="the image embeddings of the unconditional rows are zeros (not text): kept")


register(PRIOR, "StableCascadePriorPipeline")
register(DECODER, "StableCascadeDecoderPipeline")
