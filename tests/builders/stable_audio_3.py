"""A tiny Stable Audio 3 pipeline, built in code, offline: a real ``GemmaTokenizer`` (tests/tiny_gemma.py, 16
tokens: the pipeline caps at 256 and pads to the tokenizer's length) and a 1-layer ``T5GemmaEncoderModel`` (width 16),
a 1-block ``StableAudio3DiTModel``, the duration embedder, a small SAME autoencoder (never run: latents out). One
second of audio at 16 Hz: 8 latent frames. CFG only with ``guidance_scale > 1`` (the base checkpoint's path)."""

from __future__ import annotations

import torch
from diffusers import AutoencoderSAME, FlowMatchEulerDiscreteScheduler, StableAudio3DiTModel, StableAudio3Pipeline
from diffusers.pipelines.stable_audio_3.modeling_stable_audio_3 import StableAudio3DurationEmbedder
from transformers import T5GemmaConfig, T5GemmaEncoderModel
from transformers.models.t5gemma.configuration_t5gemma import T5GemmaModuleConfig

from contract_case import Case
from tiny_gemma import make_gemma_tokenizer

COND = 16
SCHEDULERS = ((lambda p: p.scheduler),
              (lambda p: FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0, stochastic_sampling=True)))


def _seeded(seed, build):
    torch.manual_seed(seed)
    return build().eval()


def _text_encoder(tokenizer) -> T5GemmaEncoderModel:
    module = T5GemmaModuleConfig(
        vocab_size=len(tokenizer), hidden_size=COND, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, head_dim=8, max_position_embeddings=64, sliding_window=64,
        layer_types=["full_attention"], attention_dropout=0.0, dropout_rate=0.0, pad_token_id=tokenizer.pad_token_id,
    ).to_dict()
    config = T5GemmaConfig(encoder=module, decoder=module, is_encoder_decoder=False)
    return _seeded(2, lambda: T5GemmaEncoderModel(config))


def stable_audio_3() -> Case:
    tokenizer = make_gemma_tokenizer(model_max_length=16)
    transformer = _seeded(0, lambda: StableAudio3DiTModel(
        io_channels=8, patch_size=1, embed_dim=32, depth=1, num_heads=4, cond_token_dim=COND, global_cond_dim=COND,
        local_add_cond_dim=5, timestep_features_dim=16, ff_mult=2, num_memory_tokens=3,
        use_differential_attention=False))
    vae = _seeded(0, lambda: AutoencoderSAME(
        audio_channels=2, patch_size=2, encoder_channels=8, encoder_c_mults=(2,), encoder_strides=(2,),
        encoder_transformer_depths=(1,), latent_dim=8, use_differential_attention=False, dim_heads=4, ff_mult=2,
        sampling_rate=16))
    pipe = StableAudio3Pipeline(
        vae=vae, text_encoder=_text_encoder(tokenizer), tokenizer=tokenizer, transformer=transformer,
        duration_embedder=_seeded(1, lambda: StableAudio3DurationEmbedder(output_dim=COND, fourier_dim=16)),
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0, stochastic_sampling=False))
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call=dict(duration=1.0, guidance_scale=4.0, output_type="latent"), schedulers=SCHEDULERS,
                images_arg="num_waveforms_per_prompt")


CASES = {"StableAudio3Pipeline": stable_audio_3}
