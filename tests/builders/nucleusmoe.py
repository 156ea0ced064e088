"""A tiny Nucleus-MoE Image pipeline, built in code, offline: a real ``Qwen2Tokenizer`` (tests/tiny_qwen.py; the
words of the pipeline's system prompt single tokens) in a ``Qwen3VLProcessor`` without video processor (as the
Qwen-Image builders), an 8-layer ``Qwen3VLForConditionalGeneration`` of width 16 (the pipeline reads hidden state
-8), a 4-layer ``NucleusMoEImageTransformer2DModel`` whose middle blocks are mixture-of-experts (4 experts, expert choice per row), a 4x
``AutoencoderKLQwenImage``, 2x2 patches: 32x32 pixels -> 4x4 tokens."""

from __future__ import annotations

import torch
from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, NucleusMoEImagePipeline
from diffusers.models.transformers.transformer_nucleusmoe_image import NucleusMoEImageTransformer2DModel
from diffusers.pipelines.nucleusmoe_image.pipeline_nucleusmoe_image import DEFAULT_SYSTEM_PROMPT
from transformers import Qwen2VLImageProcessorPil, Qwen3VLConfig, Qwen3VLForConditionalGeneration

from builders.qwenimage import QWEN3VL_CHAT, _ImageOnlyQwen3VLProcessor
from contract_case import Case
from tiny_qwen import make_qwen_tokenizer

TEXT = 16
CALL = dict(height=32, width=32, guidance_scale=4.0, output_type="latent")
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler(shift=3.0)))


def _encoder(tokenizer) -> Qwen3VLForConditionalGeneration:
    ids = tokenizer.convert_tokens_to_ids
    torch.manual_seed(2)
    config = Qwen3VLConfig(
        text_config={"hidden_size": TEXT, "intermediate_size": 16, "num_hidden_layers": 8, "num_attention_heads": 2,
                     "num_key_value_heads": 2, "head_dim": 8, "vocab_size": len(tokenizer),
                     "rope_parameters": {"rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 1000000.0},
                     "pad_token_id": tokenizer.pad_token_id},
        vision_config={"depth": 1, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": TEXT,
                       "patch_size": 16, "num_position_embeddings": 16, "deepstack_visual_indexes": []},
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
    )
    return Qwen3VLForConditionalGeneration(config).eval()


def nucleusmoe() -> Case:
    template = "<|im_start|>system\n" + DEFAULT_SYSTEM_PROMPT + "<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
    tokenizer = make_qwen_tokenizer(template=template)
    images = Qwen2VLImageProcessorPil(min_pixels=32 * 32, max_pixels=64 * 64, patch_size=16, merge_size=2,
                                      temporal_patch_size=2)
    processor = _ImageOnlyQwen3VLProcessor(image_processor=images, tokenizer=tokenizer, chat_template=QWEN3VL_CHAT)
    torch.manual_seed(0)
    transformer = NucleusMoEImageTransformer2DModel(
        patch_size=2, in_channels=16, out_channels=4, num_layers=5, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=TEXT, axes_dims_rope=(8, 4, 4), moe_enabled=True, num_experts=4, moe_intermediate_dim=16,
        capacity_factors=2.0,  # expert choice: each expert takes capacity_factor / num_experts of a row's tokens
    ).eval()
    with torch.no_grad():  # the experts' weights are torch.empty (uninitialised memory: NaN at random): seed them
        for name, param in transformer.named_parameters():
            if name.endswith(("gate_up_proj", "down_proj")):
                param.normal_(0, 0.3)
    torch.manual_seed(0)
    vae = AutoencoderKLQwenImage(base_dim=24, z_dim=4, dim_mult=[1, 2, 4], num_res_blocks=1,
                                 temperal_downsample=[False, True], latents_mean=[0.0] * 4, latents_std=[1.0] * 4).eval()
    pipe = NucleusMoEImagePipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae,
                                   text_encoder=_encoder(tokenizer), processor=processor)
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call=dict(CALL), schedulers=SCHEDULERS)


CASES = {"NucleusMoEImagePipeline": nucleusmoe}
