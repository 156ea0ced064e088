"""Tiny Chroma pipelines (text-to-image, image-to-image, inpaint), built in code, offline.

One T5 text encoder (d_model 32, the toy CLIP tokenizer: ``max_sequence_length=8`` text tokens, padded to that
length), one ``ChromaTransformer2DModel`` (1 double + 1 single block, 4 packed channels) and one 2-level
``AutoencoderKL`` with 1 latent channel serve every variant: 16x16 pixels -> 8x8x1 latents -> 16 packed tokens.

Chroma's guidance is ``guidance_scale > 1`` (property ``do_classifier_free_guidance``); the negative defaults
to ``""`` when none is given, so the unconditional pass runs with ``guidance_scale`` alone. The img2img and
inpaint variants run ``int(steps * strength)`` steps: ``steps=5, strength=0.8`` gives 4.
"""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKL,
    ChromaImg2ImgPipeline,
    ChromaInpaintPipeline,
    ChromaPipeline,
    ChromaTransformer2DModel,
    FlowMatchEulerDiscreteScheduler,
    UniPCMultistepScheduler,
)
from PIL import Image

from contract_case import Case
from negdelay.toy.tokenizer import make_tokenizer
from tiny import WORDS
from tiny_families import HIDDEN, t5

SIZE = 16  # pixels; the VAE's 2x compression gives 8x8 latents, packed 2x2 -> 16 image tokens
TEXT_LEN = 8  # T5 tokens per text (every text is padded to this length)
CALL = {"height": SIZE, "width": SIZE, "max_sequence_length": TEXT_LEN, "guidance_scale": 5.0, "output_type": "latent"}


def _transformer() -> ChromaTransformer2DModel:
    """``guidance_embeds=False`` joins the config as loading Chroma1-HD's config.json puts it there (an unknown key
    is kept in ``config``): ``ChromaInpaintPipeline.__call__`` reads ``transformer.config.guidance_embeds``, which a
    transformer built in code lacks (AttributeError)."""
    torch.manual_seed(0)
    transformer = ChromaTransformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=HIDDEN, axes_dims_rope=(4, 4, 8), approximator_hidden_dim=32, approximator_layers=1,
        approximator_num_channels=16,
    ).eval()
    transformer.register_to_config(guidance_embeds=False)
    return transformer


def _vae() -> AutoencoderKL:
    torch.manual_seed(0)
    return AutoencoderKL(
        block_out_channels=(8, 16), in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=1, norm_num_groups=4, use_quant_conv=False,
        use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035,
    ).eval()


def _pipe(cls):
    tokenizer = make_tokenizer(WORDS, model_max_length=TEXT_LEN)
    pipe = cls(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=_vae(), text_encoder=t5(tokenizer, 2), tokenizer=tokenizer,
        transformer=_transformer(),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _same(pipe):
    return pipe.scheduler


def _unipc(pipe):
    """A multistep flow scheduler (takes the pipeline's ``sigmas``; keeps earlier model outputs)."""
    return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)


def _image(seed: int, channels: str = "RGB") -> Image.Image:
    """A SIZE x SIZE image of seeded noise (a plain colour would make the image latents nearly constant)."""
    g = torch.Generator().manual_seed(seed)
    depth = 3 if channels == "RGB" else 1
    pixels = torch.randint(0, 256, (SIZE, SIZE, depth), generator=g, dtype=torch.uint8).squeeze(-1)
    return Image.fromarray(pixels.numpy(), mode=channels)


def _mask() -> Image.Image:
    """White (repaint) right half, black (keep) left half."""
    mask = torch.zeros(SIZE, SIZE, dtype=torch.uint8)
    mask[:, SIZE // 2 :] = 255
    return Image.fromarray(mask.numpy(), mode="L")


def chroma() -> Case:
    return Case(_pipe(ChromaPipeline), call=dict(CALL), schedulers=(_same, _unipc))


def chroma_img2img() -> Case:
    call = {**CALL, "image": _image(1), "strength": 0.8}
    return Case(_pipe(ChromaImg2ImgPipeline), call=call, schedulers=(_same,), steps=5, full_grid=False)


def chroma_inpaint() -> Case:
    call = {**CALL, "image": _image(1), "mask_image": _mask(), "strength": 0.8}
    return Case(_pipe(ChromaInpaintPipeline), call=call, schedulers=(_same,), steps=5, full_grid=False)


CASES = {
    "ChromaPipeline": chroma,
    "ChromaImg2ImgPipeline": chroma_img2img,
    "ChromaInpaintPipeline": chroma_inpaint,
}
