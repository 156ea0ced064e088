"""A tiny Bria Fibo 2.0 pipeline (text to image), built in code, offline: a real ``Qwen2Tokenizer``
(tests/tiny_qwen.py; the words of the pipeline's chat turn single tokens) in a ``Qwen3VLProcessor`` without video
processor (as the Qwen-Image builders), a 3-layer ``Qwen3VLForConditionalGeneration`` of width 16, a
``BriaFibo2Transformer2DModel`` with 2 blocks (both injection blocks) and a small Perceiver (2-4 gist tokens), a
2-level ``AutoencoderKLFlux2`` that only sets the latent scale (latents out): 16x16 pixels -> 8x8 latents, 2x2 patches.

The pipeline's text bundles (``text_encoder_out_layers``: six bundles of three Qwen3-VL layers, 36 deep) are a plain
attribute set in ``__init__``: the builder points them at the tiny encoder's layers, one bundle for the Perceiver
and one per injection block. The contract's prompts are short descriptions (not JSON captions): encoded as given,
no images of text. The unconditional pass is the second transformer call of each step."""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKLFlux2,
    BriaFibo2Pipeline,
    BriaFibo2Transformer2DModel,
    FlowMatchEulerDiscreteScheduler,
)
from diffusers.pipelines.bria_fibo2.pipeline_bria_fibo2 import PROMPT_TEMPLATE
from transformers import Qwen2VLImageProcessorPil, Qwen3VLConfig, Qwen3VLForConditionalGeneration

from builders.qwenimage import QWEN3VL_CHAT, _ImageOnlyQwen3VLProcessor
from contract_case import Case
from tiny_qwen import make_qwen_tokenizer

TEXT = 16
LAYERS = ((1, 2, 3), (0, 1, 2), (2, 3, 3))  # the Perceiver's bundle, then one per injection block
CALL = dict(height=16, width=16, guidance_scale=4.0, output_type="latent")
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler(shift=3.0)))


def _seeded(seed, build):
    torch.manual_seed(seed)
    return build().eval()


def _encoder(tokenizer) -> Qwen3VLForConditionalGeneration:
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen3VLConfig(
        text_config={"hidden_size": TEXT, "intermediate_size": 16, "num_hidden_layers": 3, "num_attention_heads": 2,
                     "num_key_value_heads": 2, "head_dim": 8, "vocab_size": len(tokenizer),
                     "rope_parameters": {"rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 1000000.0},
                     "pad_token_id": tokenizer.pad_token_id},
        vision_config={"depth": 1, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": TEXT,
                       "patch_size": 16, "num_position_embeddings": 16, "deepstack_visual_indexes": []},
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
    )
    return _seeded(2, lambda: Qwen3VLForConditionalGeneration(config))


def bria_fibo2() -> Case:
    tokenizer = make_qwen_tokenizer(template=PROMPT_TEMPLATE)
    images = Qwen2VLImageProcessorPil(min_pixels=32 * 32, max_pixels=64 * 64, patch_size=16, merge_size=2,
                                      temporal_patch_size=2)
    processor = _ImageOnlyQwen3VLProcessor(image_processor=images, tokenizer=tokenizer, chat_template=QWEN3VL_CHAT)
    transformer = _seeded(0, lambda: BriaFibo2Transformer2DModel(
        in_channels=4, patch_size=2, dim=32, n_layers=2, n_refiner_layers=1, n_heads=2, cap_feat_dim=3 * TEXT,
        injection_layer_ids=(0, 1), perceiver_num_layers=1, min_num_gist_tokens=2, max_num_gist_tokens=4, gist_step=1,
        gist_min_text_len=2, gist_max_text_len=16, axes_dims=(4, 6, 6), axes_lens=(64, 16, 16)))
    vae = _seeded(0, lambda: AutoencoderKLFlux2(
        block_out_channels=(16, 16), down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1, latent_channels=4, norm_num_groups=4))
    pipe = BriaFibo2Pipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae,
                             text_encoder=_encoder(tokenizer), processor=processor)
    pipe.text_encoder_out_layers = LAYERS
    pipe.set_progress_bar_config(disable=True)
    return Case(pipe, call=dict(CALL), schedulers=SCHEDULERS)


CASES = {"BriaFibo2Pipeline": bria_fibo2}
