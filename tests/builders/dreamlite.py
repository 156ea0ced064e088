"""A tiny DreamLite pipeline of the real diffusers class, built in code, offline: a real ``Qwen2Tokenizer``
(tests/tiny_qwen.py) whose every word of the pipeline's two templates is one token, in a ``Qwen3VLProcessor`` without
video processor; the Qwen3-VL text encoder of width 32 of the Qwen-Image 2.1 builder; a 2-level ``DreamLiteUNetModel``
(cross-attention width 32) and an ``AutoencoderTiny`` (2x), both as in diffusers' own tests. 16x16 pixels -> 8x8
latents (the image latents sit beside them on the width axis).

The pipeline takes one str prompt and encodes ``[negative, "[Generate]: " + prompt]`` in one batch, padded to the
longer with ``text_pad_embedding`` (given here, so the padded positions are not zeros). Guidance is always on in the
stock loop; ``guidance_scale=1`` gives the negative no weight. Cases: text to image; editing (three blocks, the first
two with the negative; one image per prompt: with more, 0.42.1 does not repeat the image latents and fails); a delayed
negative longer than the prompt."""

from __future__ import annotations

import PIL.Image
import torch
from diffusers import AutoencoderTiny, DreamLitePipeline, DreamLiteUNetModel, FlowMatchEulerDiscreteScheduler
from transformers import Qwen2VLImageProcessorPil

from builders.qwenimage import QWEN3VL_CHAT, _ImageOnlyQwen3VLProcessor, _qwen3vl
from contract_case import Case
from tiny_qwen import HIDDEN, WORDS, make_qwen_tokenizer

ONE_PROMPT = frozenset({"DreamLitePipeline"})
CALL = dict(height=16, width=16, guidance_scale=4.0, output_type="latent", max_sequence_length=32)
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler(shift=3.0)))
LONG = "ugly blurry photo of the dog with extra fingers and bad hands"


def _pipe() -> DreamLitePipeline:
    generate = ("<|im_start|>system\nDescribe the image by detailing the color, shape, size, texture, quantity, text, "
                "spatial relationships of the objects and background:<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n"
                "<|im_start|>assistant\n")
    tokenizer = make_qwen_tokenizer((*WORDS, "[Generate]:", "[Edit]:"), template=generate)
    images = Qwen2VLImageProcessorPil(min_pixels=32 * 32, max_pixels=64 * 64, patch_size=16, merge_size=2,
                                      temporal_patch_size=2)
    processor = _ImageOnlyQwen3VLProcessor(image_processor=images, tokenizer=tokenizer, chat_template=QWEN3VL_CHAT)
    torch.manual_seed(0)
    unet = DreamLiteUNetModel(
        sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DreamLiteCrossAttnNoSelfAttnDownBlock2D", "DreamLiteCrossAttnDownBlock2D"),
        up_block_types=("DreamLiteCrossAttnUpBlock2D", "DreamLiteUpBlock2D"), block_out_channels=(32, 64),
        cross_attention_dim=HIDDEN, attention_head_dim=8, layers_per_block=1, norm_num_groups=8,
        transformer_layers_per_block=1).eval()
    torch.manual_seed(0)
    vae = AutoencoderTiny(in_channels=3, out_channels=3, encoder_block_out_channels=(32, 32),
                          decoder_block_out_channels=(32, 32), num_encoder_blocks=(1, 1), num_decoder_blocks=(1, 1),
                          latent_channels=4).eval()
    pipe = DreamLitePipeline(text_encoder=_qwen3vl(tokenizer), tokenizer=tokenizer, processor=processor, vae=vae,
                             unet=unet, scheduler=FlowMatchEulerDiscreteScheduler())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _call(**extra) -> dict:
    return dict(CALL, text_pad_embedding=torch.randn(HIDDEN, generator=torch.Generator().manual_seed(3)), **extra)


def dreamlite() -> Case:
    return Case(_pipe(), call=_call(), schedulers=SCHEDULERS)


def dreamlite_edit() -> Case:
    image = PIL.Image.new("RGB", (16, 16), (200, 40, 90))
    return Case(_pipe(), call=_call(image=image), no_cfg={"guidance_scale": 1.0, "image_guidance_scale": 1.0},
                schedulers=SCHEDULERS, full_grid=False, prompts="a red cat", images_arg=None)


def dreamlite_longer_negative() -> Case:
    case = Case(_pipe(), call=_call(), schedulers=SCHEDULERS, full_grid=False, prompts="a red cat")
    case.negatives = lambda: LONG
    return case


CASES = {"DreamLitePipeline": dreamlite, "DreamLitePipeline[edit]": dreamlite_edit,
         "DreamLitePipeline[longer negative]": dreamlite_longer_negative}
