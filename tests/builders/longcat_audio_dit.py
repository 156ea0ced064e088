"""A tiny LongCat-AudioDiT pipeline, built in code, offline: the toy CLIP tokenizer (any tokenizer serves: the
pipeline pads to the longest text) and a 1-layer ``UMT5EncoderModel`` (width 32), a 1-block
``LongCatAudioDiTTransformer``, a small VAE (never run: latents out) at 16 Hz with downsampling 2: 1 s of audio is 8
latent frames. The unconditional pass is a second transformer call per step (``guidance_scale > 1``); without a
negative the pipeline's own unconditional text is zeros under the prompt's mask. One waveform per prompt (no such
keyword). The prompts are as many tokens as the contract's negatives, so that the stock unconditional inputs and a
negative's have one width (the contract's per-input check keeps one input of the stock run next to the other's)."""

from __future__ import annotations

import torch
from diffusers import (
    FlowMatchEulerDiscreteScheduler,
    LongCatAudioDiTPipeline,
    LongCatAudioDiTTransformer,
    LongCatAudioDiTVae,
)
from transformers import UMT5Config, UMT5EncoderModel

from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS

SCHEDULERS = ((lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler(shift=3.0, invert_sigmas=True)))


def _seeded(seed, build):
    torch.manual_seed(seed)
    return build().eval()


def _redraw_zero_weights(model):
    """The transformer zero-initialises its adaLN and output projections: as built it predicts zeros whatever the
    text. Draw those weights."""
    with torch.no_grad():
        for param in model.parameters():
            if param.ndim >= 2 and not param.any():
                param.normal_(0, 0.3)
    return model


def longcat_audio_dit() -> Case:
    tokenizer = make_tokenizer(WORDS, model_max_length=16)
    text_encoder = _seeded(2, lambda: UMT5EncoderModel(UMT5Config(
        d_model=32, num_layers=1, num_heads=4, d_kv=8, d_ff=64, vocab_size=len(tokenizer), dropout_rate=0.0,
        relative_attention_num_buckets=8, pad_token_id=tokenizer.pad_token_id)))
    transformer = _seeded(0, lambda: _redraw_zero_weights(LongCatAudioDiTTransformer(
        dit_dim=32, dit_depth=1, dit_heads=4, dit_text_dim=32, latent_dim=8, text_conv=False)))
    vae = _seeded(0, lambda: LongCatAudioDiTVae(in_channels=1, channels=8, c_mults=[1, 2], strides=[2], latent_dim=8,
                                                encoder_latent_dim=16, downsampling_ratio=2, sample_rate=16))
    pipe = LongCatAudioDiTPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer,
                                   scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0, invert_sigmas=True))
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call=dict(audio_duration_s=1.0, guidance_scale=4.0, output_type="latent"), schedulers=SCHEDULERS,
                images_arg=None, prompts=("red cat", "blue dog"))


CASES = {"LongCatAudioDiTPipeline": longcat_audio_dit}
