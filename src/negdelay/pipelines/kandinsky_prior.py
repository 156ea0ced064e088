"""Kandinsky 2.1 / 2.2 priors (text-to-image-embedding, and 2.2's embedding-to-embedding): one batched
``PriorTransformer`` call per step, ``[unconditional, conditional]`` rows, whose unconditional rows carry the negative
text three ways: the CLIP projection (``proj_embedding``), the CLIP tokens (``encoder_hidden_states``) and their mask
(``attention_mask``). Prompt and negative are both padded to the tokenizer's length and encoded alike by
``_encode_prompt``, so a negative is encoded as a prompt.

With a ``negative_prompt`` the stock pipeline also diffuses the negative's OWN image embedding (its second output,
``negative_image_embeds``): the prompts become ``prompts + negatives`` and the negatives ``2 * negatives``, so the call
has four equal blocks ``[unconditional of the prompts, unconditional of the negatives, prompts, negatives]`` and the
negative text is in three of them. A delayed negative takes all three (as if it had been ``negative_prompt`` from its
start on): ``image_embeds`` is guided by it, ``negative_image_embeds`` is the embedding diffused with the call's own
negative before the start and with the delayed one from it on. Without a ``negative_prompt`` the call has the two
blocks, only the prompts' unconditional rows change and ``negative_image_embeds`` stays the zero-image embedding;
``before="no_cfg"`` is served there only (with a negative_prompt it is refused).

``UnCLIPScheduler`` has no step index: steps are counted by calls (one per step). The 2.2 embedding-to-embedding prior
runs a suffix of the schedule (``strength``) without recording its length, so it counts its steps by its progress bar
(``steps="progress"``: a fraction is of the steps that run; sigma and percent points are refused)."""

from __future__ import annotations

from dataclasses import replace

from .declaration import Declaration, register
from .encoders import prompt_encoder
from .guidance import by_encode_argument

PROJECTION, TOKENS, MASK = "proj_embedding", "encoder_hidden_states", "attention_mask"


def negative_blocks(pipeline, call):
    """``[uncond(prompts), uncond(negatives), prompts, negatives]`` when the call was given a negative_prompt (its
    ``_encode_prompt`` got one), else ``[unconditional, conditional]``. ``before="no_cfg"`` is refused with a
    negative_prompt: the negatives' rows would take the prompts' text (the first conditional block), not their own."""
    from ..hooks.api import session_of

    if call.encode_args.get("negative_prompt") is None:
        return 2, (0,)
    if session_of(pipeline).no_cfg:
        raise ValueError(
            f"negdelay.apply(before='no_cfg'): {type(pipeline).__name__} given a negative_prompt also diffuses the "
            "negative's own image embedding, whose rows have no conditional pass of their own to take; call it "
            "without negative_prompt, or use before='unconditional'"
        )
    return 4, (0, 1, 3)


PRIOR = Declaration(family="Kandinsky prior", mode="batched", inputs=(PROJECTION, TOKENS, MASK), denoisers=("prior",),
                    encode=prompt_encoder({PROJECTION: 0, TOKENS: 1, MASK: 2}), guided=by_encode_argument,
                    layout=negative_blocks, starts="_encode_prompt",
                    note="with a negative_prompt the negative's own image embedding (second output) follows the "
                         "delayed negative too")

register(PRIOR, "KandinskyPriorPipeline", "KandinskyV22PriorPipeline")
register(replace(PRIOR, steps="progress"), "KandinskyV22PriorEmb2EmbPipeline")
