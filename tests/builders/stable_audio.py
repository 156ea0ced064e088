"""A tiny Stable Audio Open pipeline, built in code, offline: a 2-layer T5 (width 32) on the toy CLIP tokenizer
(padded to 16 tokens), a ``StableAudioProjectionModel``, a 2-layer ``StableAudioDiTModel``, a small
``AutoencoderOobleck`` (2x, stereo) at 4 samples per second: 2 s of audio (the DiT's most) -> 4 latent frames. The pipeline's own
``CosineDPMSolverMultistepScheduler`` needs torchsde (not installed here): its EDM DPM-Solver++ sibling (same
configuration) and an EDM Euler scheduler run instead."""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderOobleck,
    EDMDPMSolverMultistepScheduler,
    EDMEulerScheduler,
    StableAudioDiTModel,
    StableAudioPipeline,
    StableAudioProjectionModel,
)

from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS
from tiny_families import HIDDEN, t5

CALL = dict(guidance_scale=6.0, audio_end_in_s=2.0, output_type="latent")


def stable_audio() -> Case:
    tokenizer = make_tokenizer(WORDS, model_max_length=16)
    torch.manual_seed(0)
    transformer = StableAudioDiTModel(
        sample_size=4, in_channels=3, num_layers=2, attention_head_dim=4, num_key_value_attention_heads=2,
        out_channels=3, cross_attention_dim=4, time_proj_dim=8, global_states_input_dim=8, cross_attention_input_dim=4,
    ).eval()
    torch.manual_seed(0)
    vae = AutoencoderOobleck(encoder_hidden_size=6, downsampling_ratios=[1, 2], decoder_channels=3,
                             decoder_input_channels=3, audio_channels=2, channel_multiples=[2, 4], sampling_rate=4).eval()
    torch.manual_seed(1)
    projection = StableAudioProjectionModel(text_encoder_dim=HIDDEN, conditioning_dim=4, min_value=0, max_value=32).eval()
    scheduler = EDMDPMSolverMultistepScheduler(solver_order=2, prediction_type="v_prediction", sigma_data=1.0,
                                               sigma_schedule="exponential")
    pipe = StableAudioPipeline(transformer=transformer, scheduler=scheduler, vae=vae, text_encoder=t5(tokenizer, 2),
                               tokenizer=tokenizer, projection_model=projection)
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call=dict(CALL), images_arg="num_waveforms_per_prompt", schedulers=(
        (lambda p: p.scheduler), (lambda p: EDMEulerScheduler(prediction_type="v_prediction", sigma_data=1.0,
                                                             sigma_schedule="exponential"))))


CASES = {"StableAudioPipeline": stable_audio}
