"""Combined pipelines (Kandinsky 2.1 / 2.2 and Stable Cascade): wrappers whose ``__call__`` runs a prior pipeline and
then a decoder pipeline (``prior_pipe``, ``decoder_pipe``). They are served through the sub-pipelines their
``negative_prompt`` reaches (``Declaration.parts``): ``apply(combined, ...)`` applies the same negative and schedule to
each of them, and each counts its own loop's steps (``prior_num_inference_steps`` and ``num_inference_steps``).

- Kandinsky 2.1 and 2.2: the negative goes to the prior only. The 2.1 decoder is called without it (its text
  unconditional pass is always the empty text) and the 2.2 decoders take no text; both get the prior's
  ``negative_image_embeds``, which with a ``negative_prompt`` follow a delayed negative (``kandinsky_prior``).
- Stable Cascade: the prior encodes the negative (``prior_text_encoder``) and the wrapper hands the prior's text
  embeddings to the decoder (``negative_prompt_embeds_pooled``), which then calls no ``encode_prompt``: its part is
  served with the prior's encoding of the delayed negative, and its calls start at ``check_inputs``. Its
  unconditional pass needs ``decoder_guidance_scale > 1`` (the default 0 runs none)."""

from __future__ import annotations

from dataclasses import replace

from .declaration import register, wrapper
from .kandinsky_prior import PRIOR
from .stable_cascade import DECODER, POOLED
from .stable_cascade import PRIOR as CASCADE_PRIOR


def encoded_by_prior(pipeline, texts, current, call, wrapper=None):
    """The decoder's negative as the wrapper's prior encodes it: its ``prior_pipe``'s own encoding with the arguments
    of the prior's call in this wrapper call (the stock decoder gets the prior's ``negative_prompt_embeds_pooled``)."""
    from ..hooks.api import running_call

    prior = wrapper.prior_pipe
    prior_call = running_call(prior)
    if prior_call is None or not prior_call.encode_args:
        raise RuntimeError(f"negdelay: {type(wrapper).__name__}'s decoder ran before its prior encoded a prompt")
    pooled = CASCADE_PRIOR.encode(prior, texts, {}, prior_call)[POOLED]
    own = current.get(POOLED)
    return {POOLED: pooled if own is None else pooled.to(device=own.device, dtype=own.dtype)}


#: the decoder as the wrapper calls it: with the prior's text embeddings, no encode_prompt
CASCADE_DECODER = replace(DECODER, encode=encoded_by_prior, starts="check_inputs")

KANDINSKY = wrapper("Kandinsky combined", {"prior_pipe": PRIOR}, denoisers=("prior_prior",),
                    needs="prior_guidance_scale > 1",
                    note="applied to prior_pipe, the one sub-pipeline the negative_prompt reaches")
CASCADE = wrapper("Stable Cascade combined", {"prior_pipe": CASCADE_PRIOR, "decoder_pipe": CASCADE_DECODER},
                  denoisers=("prior_prior", "decoder"),
                  needs="prior_guidance_scale > 1 (prior), decoder_guidance_scale > 1 (decoder)",
                  note="applied to prior_pipe and decoder_pipe, each counting its own steps")

register(KANDINSKY, "KandinskyCombinedPipeline", "KandinskyImg2ImgCombinedPipeline",
         "KandinskyInpaintCombinedPipeline", "KandinskyV22CombinedPipeline", "KandinskyV22Img2ImgCombinedPipeline",
         "KandinskyV22InpaintCombinedPipeline")
register(CASCADE, "StableCascadeCombinedPipeline")
