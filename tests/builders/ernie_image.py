"""A tiny Ernie-Image pipeline of the real diffusers class, built in code, offline: the toy CLIP tokenizer (as the
modular Ernie-Image builder, tests/builders_modular.py), a 2-layer ``Mistral3Model`` of width 16 (the pipeline takes
its second-to-last hidden states), a 1-layer ``ErnieImageTransformer2DModel`` of width 16 whose zero-initialised
layers get small random values, a 1-level ``AutoencoderKLFlux2``: 32x32 pixels -> 16x16 latents (latents out).

The pipeline pads all text rows of a call (negatives and prompts) to the longest. Besides the contract's case
(delayed negatives as long as the prompts), two cases change the width of the whole call: a delayed negative LONGER
than the prompts, and one SHORTER than the pipeline's own negative (tests/test_repadded_lengths.py)."""

from __future__ import annotations

from diffusers import ErnieImagePipeline, FlowMatchEulerDiscreteScheduler

from builders_modular import _flux2_vae, ernie_image_parts
from contract_case import Case

CALL = dict(height=32, width=32, guidance_scale=4.0, output_type="latent")
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler(shift=3.0)))
#: 8 and 9 tokens with BOS/EOS: longer than the prompts (5) and than the contract's delayed negatives (4)
LONG = ("ugly blurry photo with extra fingers", "bad hands blurry photo of the dog")


def _pipe() -> ErnieImagePipeline:
    tokenizer, encoder, transformer = ernie_image_parts()
    pipe = ErnieImagePipeline(transformer=transformer, vae=_flux2_vae(latent_channels=4), text_encoder=encoder,
                              tokenizer=tokenizer, scheduler=FlowMatchEulerDiscreteScheduler())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def ernie_image() -> Case:
    return Case(_pipe(), call=dict(CALL), schedulers=SCHEDULERS)


def ernie_image_longer_negative() -> Case:
    """Delayed negatives longer than the prompts: every row of the call is padded wider."""
    case = Case(_pipe(), call=dict(CALL), schedulers=SCHEDULERS, full_grid=False)
    case.negatives = lambda: list(LONG)
    return case


def ernie_image_shorter_negative() -> Case:
    """The pipeline's own negatives longer than everything else, the delayed ones shorter than the prompts: every row
    of the call is padded narrower once the delayed negative takes over."""
    return Case(_pipe(), call=dict(CALL, negative_prompt=list(LONG)), schedulers=SCHEDULERS, full_grid=False)


CASES = {"ErnieImagePipeline": ernie_image, "ErnieImagePipeline[longer negative]": ernie_image_longer_negative,
         "ErnieImagePipeline[shorter negative]": ernie_image_shorter_negative}
