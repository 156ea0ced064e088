"""Tiny Z-Image pipelines (text-to-image, img2img, inpaint, ControlNet, ControlNet inpaint, Omni), built in code,
offline.

One Qwen3 text encoder (2 layers, hidden 32; the pipelines read ``hidden_states[-2]``) with a real
``Qwen2Tokenizer`` made here (tests/tiny_qwen.py) that carries a chat template of its own (Qwen3's user/assistant
layout), one ``ZImageTransformer2DModel`` (dim 32, 1 refiner + 1 main layer) and one 2-level ``AutoencoderKL``
(4 latent channels) serve every variant: 16x16 pixels -> 8x8 latents -> 16 image tokens (the transformer pads
each sequence to a multiple of 32).

Guidance: ``do_classifier_free_guidance`` is ``guidance_scale > 0`` (not > 1): ``guidance_scale=0`` switches
the unconditional rows off; the negative defaults to ``""``. ``ZImagePipeline``'s case also sets
``cfg_truncation``: steps whose normalised time ``(1000 - t) / 1000`` exceeds it run without the unconditional
rows; with 5 steps here only the last step is past it (see ``TRUNCATION``).

The pipelines write the chat-templated text back into the caller's ``prompt``/``negative_prompt`` list
(``_encode_prompt`` assigns ``prompt[i]``): pass a fresh list to every call.
"""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKL,
    FlowMatchEulerDiscreteScheduler,
    ZImageControlNetInpaintPipeline,
    ZImageControlNetModel,
    ZImageControlNetPipeline,
    ZImageImg2ImgPipeline,
    ZImageInpaintPipeline,
    ZImageOmniPipeline,
    ZImagePipeline,
    ZImageTransformer2DModel,
)
from PIL import Image
from transformers import Qwen3Config, Qwen3Model, Siglip2ImageProcessorPil, Siglip2VisionConfig, Siglip2VisionModel

from contract_case import Case
from tiny_qwen import make_qwen_tokenizer

SIZE = 16  # pixels; the VAE's 2x compression gives 8x8 latents, 2x2 patches -> 16 image tokens
LATENT = 4  # latent channels
HIDDEN = 32  # text encoder hidden size = the transformer's cap_feat_dim
DIM = 32  # transformer width (2 heads of 16 = sum(axes_dims))
SIGLIP = 16  # SigLIP2 vision width (Omni)
TEXT_LEN = 16  # tokenizer max_length (every text is padded to it, then only its real tokens are kept)
TRUNCATION = 0.7  # ZImagePipeline's cfg_truncation: t_norm of the 5 steps is 0, 0.2, 0.4, 0.6, 0.8 (shift 1)
CALL = {"height": SIZE, "width": SIZE, "max_sequence_length": TEXT_LEN, "guidance_scale": 4.0, "output_type": "latent"}
NO_CFG = {"guidance_scale": 0.0}

# Qwen3's chat layout for one user turn and the generation prompt (enable_thinking=True adds nothing).
TEMPLATE = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)


def _tokenizer():
    tokenizer = make_qwen_tokenizer(template=TEMPLATE)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _text_encoder(tokenizer) -> Qwen3Model:
    torch.manual_seed(0)
    config = Qwen3Config(
        hidden_size=HIDDEN, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        head_dim=16, vocab_size=len(tokenizer), max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id,
    )
    return Qwen3Model(config).eval()


def _transformer(siglip_feat_dim: int | None = None) -> ZImageTransformer2DModel:
    torch.manual_seed(0)
    return ZImageTransformer2DModel(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=LATENT, dim=DIM, n_layers=1, n_refiner_layers=1,
        n_heads=2, n_kv_heads=2, cap_feat_dim=HIDDEN, siglip_feat_dim=siglip_feat_dim, axes_dims=[8, 4, 4],
        axes_lens=[256, 32, 32],
    ).eval()


def _vae(levels: int = 2) -> AutoencoderKL:
    """``levels`` down blocks: 2x compression per level after the first."""
    torch.manual_seed(0)
    return AutoencoderKL(
        block_out_channels=(8,) + (16,) * (levels - 1), in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * levels, up_block_types=("UpDecoderBlock2D",) * levels,
        latent_channels=LATENT, norm_num_groups=4, scaling_factor=0.3611, shift_factor=0.1159,
    ).eval()


def _siglip() -> tuple[Siglip2VisionModel, Siglip2ImageProcessorPil]:
    """A 1-layer SigLIP2 vision tower (width SIGLIP, 4x4-pixel patches, at most 16 patches per image)."""
    torch.manual_seed(0)
    config = Siglip2VisionConfig(
        hidden_size=SIGLIP, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, patch_size=4,
        num_patches=16,
    )
    return Siglip2VisionModel(config).eval(), Siglip2ImageProcessorPil(patch_size=4, max_num_patches=16)


def _controlnet(control_in_dim: int) -> ZImageControlNetModel:
    """One control layer (hint added after main layer 0). Its fresh ``before_proj`` and ``after_proj`` are zero (the
    control image would not count, and nothing of the ControlNet, its text input included, would reach the output):
    they get seeded non-zero weights."""
    torch.manual_seed(0)
    controlnet = ZImageControlNetModel(
        control_layers_places=[0], control_in_dim=control_in_dim, dim=DIM, n_refiner_layers=1, n_heads=2,
        n_kv_heads=2,
    ).eval()
    torch.manual_seed(1)
    for layer in controlnet.control_layers:
        for proj in (getattr(layer, "before_proj", None), layer.after_proj):
            if proj is not None:
                torch.nn.init.normal_(proj.weight, std=0.2)
    return controlnet


def _pipe(cls, **extra):
    tokenizer = _tokenizer()
    pipe = cls(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=extra.pop("vae", None) or _vae(),
        text_encoder=_text_encoder(tokenizer), tokenizer=tokenizer,
        transformer=extra.pop("transformer", None) or _transformer(), **extra,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _same(pipe):
    return pipe.scheduler


def _shift3(pipe):
    """Z-Image's released scheduler setting (static shift 3). UniPC cannot serve: the pipelines pass ``sigmas`` as a
    Python list, which ``UniPCMultistepScheduler.set_timesteps`` multiplies by a float (TypeError)."""
    return FlowMatchEulerDiscreteScheduler(shift=3.0)


def _image(seed: int, size: int = SIZE) -> Image.Image:
    """A size x size RGB image of seeded noise (a plain colour would make the image latents nearly constant)."""
    g = torch.Generator().manual_seed(seed)
    return Image.fromarray(torch.randint(0, 256, (size, size, 3), generator=g, dtype=torch.uint8).numpy())


def _mask() -> Image.Image:
    """White (repaint) right half, black (keep) left half."""
    mask = torch.zeros(SIZE, SIZE, dtype=torch.uint8)
    mask[:, SIZE // 2 :] = 255
    return Image.fromarray(mask.numpy(), mode="L")


def z_image() -> Case:
    call = {**CALL, "cfg_truncation": TRUNCATION}
    return Case(_pipe(ZImagePipeline), call=call, no_cfg=dict(NO_CFG), schedulers=(_same, _shift3), steps=5)


def z_image_img2img() -> Case:
    call = {**CALL, "image": _image(1), "strength": 0.8}
    return Case(_pipe(ZImageImg2ImgPipeline), call=call, no_cfg=dict(NO_CFG), schedulers=(_same,), steps=5,
                full_grid=False)


def z_image_inpaint() -> Case:
    call = {**CALL, "image": _image(1), "mask_image": _mask(), "strength": 0.8}
    return Case(_pipe(ZImageInpaintPipeline), call=call, no_cfg=dict(NO_CFG), schedulers=(_same,), steps=5,
                full_grid=False)


def z_image_controlnet() -> Case:
    call = {**CALL, "control_image": _image(2), "controlnet_conditioning_scale": 1.0}
    return Case(_pipe(ZImageControlNetPipeline, controlnet=_controlnet(LATENT)), call=call, no_cfg=dict(NO_CFG),
                schedulers=(_same,), full_grid=False)


ROWS = 4  # the contract's batch: 2 prompts x 2 images per prompt


def z_image_controlnet_inpaint() -> Case:
    """``mask_image`` is a list of ROWS masks: 0.42.1 repeats the control and init images to the batch but not the
    mask (``torch.cat`` of batch ROWS with batch 1 fails), so the mask must come with the batch size."""
    call = {**CALL, "image": _image(1), "mask_image": [_mask()] * ROWS, "control_image": _image(2),
            "controlnet_conditioning_scale": 1.0}
    controlnet = _controlnet(2 * LATENT + 1)  # control latents, mask, masked-image latents
    return Case(_pipe(ZImageControlNetInpaintPipeline, controlnet=controlnet), call=call, no_cfg=dict(NO_CFG),
                schedulers=(_same,), full_grid=False)


def z_image_omni() -> Case:
    """Omni with one condition image (it must be >= 64 px): its VAE latents and SigLIP features ride with every
    row, and each caption is a list of 3 segments (template, text, template). The VAE has 3 levels (4x: 64 px ->
    16x16 latents, 64 tokens) and is bfloat16: ``prepare_image_latents`` casts the image to bfloat16 before
    ``vae.encode`` (a float32 VAE raises). Output 16 px -> 4x4 latents."""
    siglip, processor = _siglip()
    pipe = _pipe(
        ZImageOmniPipeline, vae=_vae(levels=3).to(torch.bfloat16), transformer=_transformer(siglip_feat_dim=SIGLIP),
        siglip=siglip, siglip_processor=processor,
    )
    call = {**CALL, "image": [_image(3, size=64)]}
    return Case(pipe, call=call, no_cfg=dict(NO_CFG), schedulers=(_same,), full_grid=False)


CASES = {
    "ZImagePipeline": z_image,
    "ZImageImg2ImgPipeline": z_image_img2img,
    "ZImageInpaintPipeline": z_image_inpaint,
    "ZImageControlNetPipeline": z_image_controlnet,
    "ZImageControlNetInpaintPipeline": z_image_controlnet_inpaint,
    "ZImageOmniPipeline": z_image_omni,
}
