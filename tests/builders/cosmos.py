"""Tiny Cosmos pipelines of the real diffusers classes, built in code, offline: Cosmos 1 text/video-to-world
(EDM Euler, ``AutoencoderKLCosmos``) and Cosmos 2 text-to-image / video-to-world (flow matching, Wan's VAE).

Shared: Wan's tiny text parts (tests/builders/wan.py: a word-level tokenizer used as T5's, T5 of width 32) and a
2-layer ``CosmosTransformer3DModel`` (2 heads of 16, patch 1x2x2). The pipelines refuse to run without a safety
checker and build NVIDIA's guardrail model when given none: they get ``PassThroughSafetyChecker``, which lets every
text and video pass (no guardrail model offline).
"""

from __future__ import annotations

import PIL.Image
import torch
from diffusers import (
    AutoencoderKLCosmos,
    Cosmos2_5_PredictBasePipeline,
    Cosmos2TextToImagePipeline,
    Cosmos2VideoToWorldPipeline,
    CosmosTextToWorldPipeline,
    CosmosTransformer3DModel,
    CosmosVideoToWorldPipeline,
    EDMEulerScheduler,
    FlowMatchEulerDiscreteScheduler,
    UniPCMultistepScheduler,
)
from diffusers.configuration_utils import ConfigMixin
from diffusers.models.modeling_utils import ModelMixin

import tiny_qwen
from builders.easyanimate import CHAT_TEMPLATE
from builders.wan import MAX_LEN, TEXT_DIM, Z_DIM, image, text_parts
from builders.wan import vae as wan_vae
from contract_case import Case


class PassThroughSafetyChecker(ModelMixin, ConfigMixin):
    """Stands in for ``cosmos_guardrail.CosmosSafetyChecker``: every text is safe, every video passes unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("anchor", torch.zeros(1), persistent=False)  # gives the module a device and dtype

    def check_text_safety(self, prompt: str) -> bool:
        return True

    def check_video_safety(self, frames):
        return frames


def transformer(in_channels: int, out_channels: int) -> CosmosTransformer3DModel:
    return _text_transformer(in_channels, out_channels, TEXT_DIM)


def _text_transformer(in_channels: int, out_channels: int, text_dim: int) -> CosmosTransformer3DModel:
    torch.manual_seed(0)
    return CosmosTransformer3DModel(
        in_channels=in_channels, out_channels=out_channels, num_attention_heads=2, attention_head_dim=16, num_layers=2,
        mlp_ratio=2, text_embed_dim=text_dim, adaln_lora_dim=4, max_size=(4, 32, 32), patch_size=(1, 2, 2),
        rope_scale=(2.0, 1.0, 1.0), concat_padding_mask=False, extra_pos_embed_type="learnable",
    ).eval()


def cosmos_vae() -> AutoencoderKLCosmos:
    torch.manual_seed(0)
    return AutoencoderKLCosmos(
        latent_channels=4, encoder_block_out_channels=(8, 8, 8, 8), decode_block_out_channels=(8, 8, 8, 8),
        attention_resolutions=(8,), resolution=64, num_layers=2, patch_size=4, patch_type="haar", scaling_factor=1.0,
        spatial_compression_ratio=4, temporal_compression_ratio=4,
    ).eval()


def edm(pipe=None) -> EDMEulerScheduler:
    return EDMEulerScheduler(sigma_min=0.002, sigma_max=80, sigma_data=0.5, sigma_schedule="karras",
                             num_train_timesteps=1000, prediction_type="epsilon", rho=7.0,
                             final_sigmas_type="sigma_min")


def edm_exponential(pipe=None) -> EDMEulerScheduler:
    """A second EDM schedule (exponential sigmas)."""
    return EDMEulerScheduler(sigma_min=0.002, sigma_max=80, sigma_data=0.5, sigma_schedule="exponential",
                             num_train_timesteps=1000, prediction_type="epsilon", final_sigmas_type="sigma_min")


def flow(pipe=None) -> FlowMatchEulerDiscreteScheduler:
    return FlowMatchEulerDiscreteScheduler(use_karras_sigmas=True)


def flow_exponential(pipe) -> FlowMatchEulerDiscreteScheduler:
    """A second flow schedule (exponential sigmas), given the sigma range the Cosmos 2 pipelines register on their
    own scheduler in ``__init__``."""
    scheduler = FlowMatchEulerDiscreteScheduler(use_exponential_sigmas=True)
    scheduler.register_to_config(sigma_max=pipe.sigma_max, sigma_min=pipe.sigma_min, sigma_data=pipe.sigma_data,
                                 final_sigmas_type=pipe.final_sigmas_type)
    return scheduler


def _pipe(cls, vae, model, scheduler):
    pipe = cls(**text_parts(), vae=vae, transformer=model, scheduler=scheduler,
               safety_checker=PassThroughSafetyChecker())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def picture(seed=0, size=32) -> PIL.Image.Image:
    return image(seed, size)


WORLD = dict(height=32, width=32, num_frames=9, guidance_scale=3.0, max_sequence_length=MAX_LEN, output_type="latent")


def text2world() -> Case:
    """Cosmos 1 text-to-world: conditional call, then unconditional call each step (no cache context)."""
    pipe = _pipe(CosmosTextToWorldPipeline, cosmos_vae(), transformer(4, 4), edm())
    return Case(pipe, call=dict(WORLD), schedulers=(lambda p: edm(), edm_exponential),
                images_arg="num_videos_per_prompt")


def video2world() -> Case:
    """Cosmos 1 video-to-world from one image (the first frame); the conditioning mask is an extra input channel."""
    pipe = _pipe(CosmosVideoToWorldPipeline, cosmos_vae(), transformer(4 + 1, 4), edm())
    return Case(pipe, call=dict(WORLD, image=picture()), schedulers=(lambda p: edm(),), images_arg=None,
                full_grid=False)


def cosmos2_text2image() -> Case:
    """Cosmos 2 text-to-image: flow matching on Wan's VAE latents, conditional then unconditional call."""
    pipe = _pipe(Cosmos2TextToImagePipeline, wan_vae(), transformer(Z_DIM, Z_DIM), flow())
    call = dict(height=32, width=32, guidance_scale=3.0, max_sequence_length=MAX_LEN, output_type="latent")
    return Case(pipe, call=call, schedulers=(lambda p: p.scheduler, flow_exponential))


def cosmos2_video2world() -> Case:
    pipe = _pipe(Cosmos2VideoToWorldPipeline, wan_vae(), transformer(Z_DIM + 1, Z_DIM), flow())
    return Case(pipe, call=dict(WORLD, image=picture()), schedulers=(lambda p: p.scheduler,), images_arg=None,
                full_grid=False)


# Cosmos 2.5 wraps each text in a chat with this system message, then pads the chat to max_sequence_length
SYSTEM_25 = "You are a helpful assistant who will provide prompts to an image generator."
QWEN_25 = 32  # Qwen2.5-VL width; the text embedding concatenates the normalised states of its 2 layers: 64


def qwen_chat_tokenizer(system: str):
    template = f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{{}}<|im_end|>\n"
    tokenizer = tiny_qwen.make_qwen_tokenizer(template=template)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def predict25() -> Case:
    """Cosmos 2.5 predict, text-to-world (no image or video): Qwen2.5-VL text features (every layer's states,
    normalised and concatenated), conditional then unconditional call. One video per prompt: ``sigma_t`` is
    expanded to ``batch_size`` rows only."""
    tokenizer = qwen_chat_tokenizer(SYSTEM_25)
    pipe = Cosmos2_5_PredictBasePipeline(
        text_encoder=tiny_qwen.tiny_text_encoder(tokenizer, hidden=QWEN_25), tokenizer=tokenizer,
        transformer=_text_transformer(Z_DIM + 1, Z_DIM, 2 * QWEN_25), vae=wan_vae(),
        scheduler=UniPCMultistepScheduler(), safety_checker=PassThroughSafetyChecker(),
    )
    pipe.set_progress_bar_config(disable=True)
    call = dict(height=32, width=32, num_frames=5, guidance_scale=3.0, max_sequence_length=40, output_type="latent")
    return Case(pipe, call=call, schedulers=(lambda p: p.scheduler, lambda p: UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)), images_arg=None)


CASES = {"CosmosTextToWorldPipeline": text2world, "CosmosVideoToWorldPipeline": video2world,
         "Cosmos2TextToImagePipeline": cosmos2_text2image, "Cosmos2VideoToWorldPipeline": cosmos2_video2world,
         "Cosmos2_5_PredictBasePipeline": predict25}
