"""Tiny JoyImage Edit and Edit Plus pipelines of the real diffusers classes, built in code, offline: a real
``Qwen2Tokenizer`` (tests/tiny_qwen.py) in a ``Qwen3VLProcessor`` without video processor, whose every template word is
one token; the Qwen3-VL text encoder of width 32 of the Qwen-Image 2.1 builder (2 layers; the pipeline takes the last
layer's pre-norm output); a 1-layer ``JoyImageEditTransformer3DModel`` of width 32; the 8x ``AutoencoderKLWan`` of
diffusers' own tests (16 channels). 32x32 pixels -> 4x4 latents -> 4 tokens.

The pipeline resizes to the nearest of its 1024-px buckets whatever the caller asks; the builder's image processor takes
the caller's height and width as they are (diffusers' own tests patch the bucket lookup to 32x32 instead). Text to image
goes through ``encode_prompt``; editing (a reference image) through ``encode_prompt_multiple_images``. The unconditional
pass is the second transformer call of each step.

Edit Plus takes one list of reference images per prompt (here one 32x32 image each, kept at its size by the builder's
image processor; the pipeline would take the nearest 1024-px bucket), and pads the prompt and negative blocks to each
other: besides the contract's case, a delayed negative longer than the prompts."""

from __future__ import annotations

import PIL.Image
import torch
from diffusers import (
    AutoencoderKLWan,
    FlowMatchEulerDiscreteScheduler,
    JoyImageEditPipeline,
    JoyImageEditPlusPipeline,
    JoyImageEditPlusTransformer3DModel,
    JoyImageEditTransformer3DModel,
)
from diffusers.pipelines.joyimage.image_processor import JoyImageEditImageProcessor
from transformers import Qwen2VLImageProcessorPil

from builders.qwenimage import QWEN3VL_CHAT, _ImageOnlyQwen3VLProcessor, _qwen3vl
from contract_case import Case
from tiny_qwen import HIDDEN, WORDS, make_qwen_tokenizer

SIZE = 32
CALL = dict(height=SIZE, width=SIZE, guidance_scale=4.0, output_type="latent", max_sequence_length=64)
SCHEDULERS = ((lambda p: p.scheduler), (lambda p: FlowMatchEulerDiscreteScheduler(shift=3.0)))


class _AsAsked(JoyImageEditImageProcessor):
    """The caller's height and width (else the image's own) as they are (the pipeline's buckets are 512 px and
    more)."""

    def get_default_height_width(self, image, height=None, width=None):
        if height is not None and width is not None:
            return height, width
        if image is not None and not isinstance(image, list):
            return image.size[1], image.size[0]
        return super().get_default_height_width(image, height, width)


def _processor(tokenizer):
    images = Qwen2VLImageProcessorPil(min_pixels=32 * 32, max_pixels=64 * 64, patch_size=16, merge_size=2,
                                      temporal_patch_size=2)
    return _ImageOnlyQwen3VLProcessor(image_processor=images, tokenizer=tokenizer, chat_template=QWEN3VL_CHAT)


def _pipe(cls=JoyImageEditPipeline, transformer_cls=JoyImageEditTransformer3DModel):
    template = ("<|im_start|>system\n \\nDescribe the image by detailing the color, shape, size, texture, quantity, "
                "text, spatial relationships of the objects and background:<|im_end|>\n<|im_start|>user\n{}<|im_end|>"
                "\n<|im_start|>assistant\n")
    tokenizer = make_qwen_tokenizer(WORDS, template=template)
    torch.manual_seed(0)
    transformer = transformer_cls(
        patch_size=[1, 2, 2], in_channels=16, hidden_size=32, num_attention_heads=2, text_dim=HIDDEN, num_layers=1,
        rope_dim_list=[4, 6, 6], theta=256).eval()
    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True]).eval()
    pipe = cls(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=_qwen3vl(tokenizer),
                                tokenizer=tokenizer, transformer=transformer, processor=_processor(tokenizer))
    processor = _AsAsked(vae_scale_factor=pipe.vae_scale_factor_spatial)
    if cls is JoyImageEditPipeline:
        pipe.vae_image_processor = processor
    else:
        pipe.image_processor = processor
    pipe.set_progress_bar_config(disable=True)
    return pipe


def joyimage_edit() -> Case:
    """Text to image (``encode_prompt``)."""
    return Case(_pipe(), call=dict(CALL), schedulers=SCHEDULERS)


def joyimage_edit_image() -> Case:
    """Editing a reference image (``encode_prompt_multiple_images``). Each prompt is bound to the reference image:
    one image per prompt."""
    image = PIL.Image.new("RGB", (SIZE, SIZE), (200, 40, 90))
    return Case(_pipe(), call=dict(CALL, image=image), schedulers=SCHEDULERS, images_arg=None, full_grid=False)


LONG = ("ugly blurry photo of the dog with extra fingers", "bad hands and blurry photo of the cat with extra fingers")


def joyimage_edit_plus() -> Case:
    image = PIL.Image.new("RGB", (SIZE, SIZE), (200, 40, 90))
    pipe = _pipe(JoyImageEditPlusPipeline, JoyImageEditPlusTransformer3DModel)
    return Case(pipe, call=dict(CALL, images=[[image], [image]]), schedulers=SCHEDULERS, images_arg=None)


def joyimage_edit_plus_longer_negative() -> Case:
    """Delayed negatives longer than the prompts: the prompt block is padded wider."""
    case = joyimage_edit_plus()
    case.full_grid = False
    case.negatives = lambda: list(LONG)
    return case


CASES = {"JoyImageEditPipeline": joyimage_edit, "JoyImageEditPipeline[edit]": joyimage_edit_image,
         "JoyImageEditPlusPipeline": joyimage_edit_plus,
         "JoyImageEditPlusPipeline[longer negative]": joyimage_edit_plus_longer_negative}
