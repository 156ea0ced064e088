"""Tiny Kandinsky 2.1 / 2.2 priors, built in code, offline: a 2-layer ``CLIPTextModelWithProjection`` (width 32) on the
toy CLIP tokenizer (12 tokens), a one-layer ``PriorTransformer`` (embedding 32, 12 text tokens; its ``clip_std`` set
to ones, else every embedding it returns is zero), a tiny ``CLIPVisionModelWithProjection`` (16x16 pixels: only for
the zero-image embedding) and ``UnCLIPScheduler``.

The contract's own negative is ``["", ""]`` (a list: the pipelines append the negatives to the prompts, so they
must be as many): with a negative the prior also returns the negative's own image embedding, and the contract compares
both outputs (``image_embeds`` then ``negative_image_embeds``)."""

from __future__ import annotations

import torch
from diffusers import (
    KandinskyPriorPipeline,
    KandinskyV22PriorEmb2EmbPipeline,
    KandinskyV22PriorPipeline,
    PriorTransformer,
    UnCLIPScheduler,
)
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS
from tiny_families import HIDDEN, clip

TOKENS = 12
OWN_NEGATIVE = ["", ""]  # one per prompt
# image embeddings for embedding-to-embedding (a 2-D tensor is taken as embeddings): one per prompt
EMBEDDINGS = torch.linspace(-1, 1, 2 * HIDDEN).reshape(2, HIDDEN)


def both_outputs(result) -> torch.Tensor:
    """``image_embeds`` and ``negative_image_embeds``, one after the other."""
    return torch.cat([result[0], result[1]]).detach().cpu()


def prior_model(seed: int = 0) -> PriorTransformer:
    torch.manual_seed(seed)
    prior = PriorTransformer(num_attention_heads=2, attention_head_dim=12, embedding_dim=HIDDEN, num_layers=1,
                             num_embeddings=TOKENS)
    prior.clip_std = torch.nn.Parameter(torch.ones(prior.clip_std.shape))
    return prior.eval()


def image_encoder(seed: int = 0) -> CLIPVisionModelWithProjection:
    torch.manual_seed(seed)
    config = CLIPVisionConfig(hidden_size=HIDDEN, projection_dim=HIDDEN, image_size=16, patch_size=8,
                              intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, num_channels=3)
    return CLIPVisionModelWithProjection(config).eval()


def unclip_scheduler() -> UnCLIPScheduler:
    return UnCLIPScheduler(variance_type="fixed_small_log", prediction_type="sample", num_train_timesteps=1000,
                           clip_sample=True, clip_sample_range=10.0)


def components(seed: int = 0) -> dict:
    """The prior pipelines' components (also the combined pipelines' ``prior_*`` ones)."""
    tokenizer = make_tokenizer(WORDS, model_max_length=TOKENS)
    return dict(prior=prior_model(seed), image_encoder=image_encoder(seed), text_encoder=clip(tokenizer, seed, True),
                tokenizer=tokenizer, scheduler=unclip_scheduler(),
                image_processor=CLIPImageProcessor(crop_size=16, size=16))


def _case(cls, full=False, steps=4, **call):
    def build():
        pipe = cls(**components())
        pipe.set_progress_bar_config(disable=True)
        return Case(pipe, call=dict(guidance_scale=4.0, negative_prompt=OWN_NEGATIVE, **call), steps=steps,
                    output=both_outputs, full_grid=full)
    return build


CASES = {
    "KandinskyPriorPipeline": _case(KandinskyPriorPipeline, full=True),
    "KandinskyV22PriorPipeline": _case(KandinskyV22PriorPipeline),
    "KandinskyV22PriorEmb2EmbPipeline": _case(KandinskyV22PriorEmb2EmbPipeline, steps=5, image=EMBEDDINGS,
                                              strength=0.8),
}
