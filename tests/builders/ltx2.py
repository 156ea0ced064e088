"""Tiny LTX-2 pipelines (text-to-video, image-to-video, condition, HDR IC-LoRA, in-context IC-LoRA), built in code.

Shared parts: a real ``GemmaTokenizer`` and a 2-layer ``Gemma3ForConditionalGeneration`` (width 32) from
tests/tiny_gemma.py; ``LTX2TextConnectors`` (LTX-2.0 layout: one shared projection of the 3 stacked hidden states,
then a 1-layer video connector and a 1-layer audio connector, each with 8 learnable registers that replace the
padding, as the released checkpoints do with 128); a 1-layer ``LTX2VideoTransformer3DModel`` (video + audio
streams); ``AutoencoderKLLTX2Video`` (1 level), ``AutoencoderKLLTX2Audio`` and a tiny ``LTX2Vocoder`` (never run:
``output_type="latent"``). 32x32 pixels, 5 frames -> 3 latent frames of 4x4 tokens; 16 text tokens.

Guidance is called as the released LTX-2.3 defaults run it: CFG on both streams, spatio-temporal guidance
(``stg_scale``, perturbing the one block) and modality-isolation guidance on, so every step makes three
transformer calls: ``cond_uncond`` (batched, negative rows first), ``uncond_stg`` and ``uncond_modality`` (both
positive text only). ``output`` is the video latents and the audio latents, flattened and concatenated.
"""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKLLTX2Audio,
    AutoencoderKLLTX2Video,
    FlowMatchEulerDiscreteScheduler,
    LTX2ConditionPipeline,
    LTX2HDRPipeline,
    LTX2ImageToVideoPipeline,
    LTX2InContextPipeline,
    LTX2Pipeline,
    LTX2VideoTransformer3DModel,
)
from diffusers.pipelines.ltx2 import LTX2TextConnectors
from diffusers.pipelines.ltx2.pipeline_ltx2_hdr_lora import LTX2HDRReferenceCondition
from diffusers.pipelines.ltx2.pipeline_ltx2_ic_lora import LTX2ReferenceCondition
from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition
from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

from contract_case import Case
from tiny_gemma import HIDDEN, make_gemma_tokenizer, tiny_gemma3

SIZE = 32  # pixels (multiples of 32)
FRAMES = 5
TEXT_LEN = 16  # tokens; a multiple of the connectors' 8 registers
TEXT_LAYERS = 2  # Gemma layers: 3 stacked hidden states reach the connectors
LATENT = 4
CALL = {
    "height": SIZE, "width": SIZE, "num_frames": FRAMES, "frame_rate": 25.0, "max_sequence_length": TEXT_LEN,
    "output_type": "latent",
    "guidance_scale": 3.0, "audio_guidance_scale": 7.0, "stg_scale": 1.0, "audio_stg_scale": 1.0,
    "modality_scale": 3.0, "audio_modality_scale": 3.0, "spatio_temporal_guidance_blocks": [0],
}
# The pipelines replace a falsy audio scale by the video one (`audio_guidance_scale or guidance_scale`): both must
# be 1 to switch CFG off (CFG runs when either is > 1).
NO_CFG = {"guidance_scale": 1.0, "audio_guidance_scale": 1.0}


def _transformer() -> LTX2VideoTransformer3DModel:
    torch.manual_seed(0)
    return LTX2VideoTransformer3DModel(
        in_channels=LATENT, out_channels=LATENT, patch_size=1, patch_size_t=1, num_attention_heads=2,
        attention_head_dim=8, cross_attention_dim=16, audio_in_channels=4, audio_out_channels=4,
        audio_num_attention_heads=2, audio_attention_head_dim=4, audio_cross_attention_dim=8, num_layers=1,
        qk_norm="rms_norm_across_heads", caption_channels=HIDDEN, rope_double_precision=False, rope_type="split",
    ).eval()


def _connectors() -> LTX2TextConnectors:
    torch.manual_seed(0)
    return LTX2TextConnectors(
        caption_channels=HIDDEN, text_proj_in_factor=TEXT_LAYERS + 1, video_connector_num_attention_heads=2,
        video_connector_attention_head_dim=16, video_connector_num_layers=1, video_connector_num_learnable_registers=8,
        audio_connector_num_attention_heads=2, audio_connector_attention_head_dim=16, audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=8, connector_rope_base_seq_len=32, rope_theta=10000.0,
        rope_double_precision=False, causal_temporal_positioning=False, rope_type="split",
    ).eval()


def _vae() -> AutoencoderKLLTX2Video:
    torch.manual_seed(0)
    # Patch 4 and one space-time level: 8x spatial, 2x temporal compression.
    vae = AutoencoderKLLTX2Video(
        in_channels=3, out_channels=3, latent_channels=LATENT, block_out_channels=(8,), decoder_block_out_channels=(8,),
        layers_per_block=(1,), decoder_layers_per_block=(1, 1), spatio_temporal_scaling=(True,),
        decoder_spatio_temporal_scaling=(True,), decoder_inject_noise=(False, False),
        downsample_type=("spatiotemporal",), upsample_type=("spatiotemporal",), upsample_residual=(False,),
        upsample_factor=(1,), timestep_conditioning=False, patch_size=4, patch_size_t=1, encoder_causal=True,
        decoder_causal=False,
    ).eval()
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    return vae


def _audio_vae() -> AutoencoderKLLTX2Audio:
    torch.manual_seed(0)
    return AutoencoderKLLTX2Audio(
        base_channels=4, output_channels=2, ch_mult=(1,), num_res_blocks=1, attn_resolutions=None, in_channels=2,
        resolution=32, latent_channels=2, norm_type="pixel", causality_axis="height", dropout=0.0,
        mid_block_add_attention=False, sample_rate=16000, mel_hop_length=160, is_causal=True, mel_bins=8,
    ).eval()


def _vocoder(audio_vae) -> LTX2Vocoder:
    torch.manual_seed(0)
    return LTX2Vocoder(
        in_channels=audio_vae.config.output_channels * audio_vae.config.mel_bins, hidden_channels=32, out_channels=2,
        upsample_kernel_sizes=[4, 4], upsample_factors=[2, 2], resnet_kernel_sizes=[3], resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1, output_sampling_rate=16000,
    ).eval()


def _pipe(cls, **extra):
    tokenizer = make_gemma_tokenizer(model_max_length=TEXT_LEN)
    audio_vae = _audio_vae()
    pipe = cls(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=_vae(), audio_vae=audio_vae,
        text_encoder=tiny_gemma3(tokenizer, layers=TEXT_LAYERS), tokenizer=tokenizer, connectors=_connectors(),
        transformer=_transformer(), vocoder=_vocoder(audio_vae), **extra,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def video_and_audio(result) -> torch.Tensor:
    """Video latents and audio latents (None for the video-only HDR pipeline), flattened into one tensor."""
    parts = [out for out in (result.frames, result.audio) if out is not None]
    return torch.cat([torch.as_tensor(p).detach().cpu().flatten() for p in parts])


def _image(seed: int) -> torch.Tensor:
    """A (1, 3, SIZE, SIZE) image in [0, 1] (a tensor: the pipelines skip H.264 re-compression only for crf=0)."""
    return torch.rand((1, 3, SIZE, SIZE), generator=torch.Generator().manual_seed(seed))


def _same(pipe):
    return pipe.scheduler


def _case(pipe, call=CALL, no_cfg=NO_CFG, **extra) -> Case:
    # Only FlowMatchEulerDiscreteScheduler takes the `mu` and `sigmas` these pipelines pass: one scheduler.
    return Case(
        pipe, call={**call, **extra}, no_cfg=no_cfg, schedulers=(_same,), images_arg="num_videos_per_prompt",
        output=video_and_audio,
    )


def ltx2() -> Case:
    return _case(_pipe(LTX2Pipeline))


def ltx2_i2v() -> Case:
    return _case(_pipe(LTX2ImageToVideoPipeline), image=_image(1), image_crf=0)


def ltx2_condition() -> Case:
    condition = LTX2VideoCondition(frames=_image(1), index=0, strength=1.0, crf=0)
    return _case(_pipe(LTX2ConditionPipeline), conditions=condition)


def ltx2_hdr() -> Case:
    # Video-only: CFG on the video stream only (no audio scales), defaults are the distilled model's (CFG off).
    call = {k: v for k, v in CALL.items() if not k.startswith("audio_")}
    reference = LTX2HDRReferenceCondition(frames=_image(1), strength=1.0)
    return _case(_pipe(LTX2HDRPipeline), call=call, no_cfg={"guidance_scale": 1.0}, reference_conditions=reference)


def ltx2_in_context() -> Case:
    reference = LTX2ReferenceCondition(frames=_image(2), strength=1.0)
    condition = LTX2VideoCondition(frames=_image(1), index=0, strength=1.0, crf=0)
    return _case(_pipe(LTX2InContextPipeline), conditions=condition, reference_conditions=reference)


CASES = {
    "LTX2Pipeline": ltx2,
    "LTX2ImageToVideoPipeline": ltx2_i2v,
    "LTX2ConditionPipeline": ltx2_condition,
    "LTX2HDRPipeline": ltx2_hdr,
    "LTX2InContextPipeline": ltx2_in_context,
}
