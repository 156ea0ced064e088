"""Tiny Qwen-Image pipelines (text-to-image, img2img, inpaint, ControlNet, ControlNet inpaint, Edit, Edit Plus,
Edit inpaint, Layered, 2.1), built in code, offline.

Text-to-image, img2img, inpaint and the ControlNets reuse tests/tiny_qwen.py (Qwen2.5-VL text encoder of width 32,
2-layer ``QwenImageTransformer2DModel``, 4x ``AutoencoderKLQwenImage``): 32x32 pixels -> 8x8 latents -> 16 packed
tokens. The Edit pipelines resize their input image to about 1024x1024 whatever the caller asks (Layered: 640x640),
so they get a 64x VAE (1024 px -> 16x16 latents -> 64 tokens) whose encoder runs tiled (256 px tiles: the same
work in a quarter of the time on CPU), a Qwen2-VL processor whose image processor shrinks the prompt image to 56x56
(4 vision tokens), and a tokenizer whose every template word is one token, so that the pipelines' own
``prompt_template_encode_start_idx`` (64 for Edit) drops exactly the system part.

Guidance is true CFG: the unconditional pass runs only with ``true_cfg_scale > 1`` and a negative prompt, so every
``call`` carries ``negative_prompt`` (one ``""`` per prompt: a single string is not broadcast to a batch of
prompts, 0.42.1 fails on it) and ``true_cfg_scale``; ``no_cfg`` sets ``true_cfg_scale=1``.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch
from diffusers import (
    AutoencoderKLQwenImage,
    AutoencoderKLQwenImage21,
    FlowMatchEulerDiscreteScheduler,
    QwenImage21Pipeline,
    QwenImage21Transformer2DModel,
    QwenImageControlNetInpaintPipeline,
    QwenImageControlNetModel,
    QwenImageControlNetPipeline,
    QwenImageEditInpaintPipeline,
    QwenImageEditPipeline,
    QwenImageEditPlusPipeline,
    QwenImageImg2ImgPipeline,
    QwenImageInpaintPipeline,
    QwenImageLayeredPipeline,
    QwenImagePipeline,
    QwenImageTransformer2DModel,
    UniPCMultistepScheduler,
)
from PIL import Image
from transformers import (
    Qwen2VLImageProcessorPil,
    Qwen2VLProcessor,
    Qwen3VLConfig,
    Qwen3VLForConditionalGeneration,
    Qwen3VLProcessor,
)

from contract_case import Case
from tiny_qwen import HIDDEN, WORDS, make_qwen_tokenizer, tiny_qwenimage, tiny_text_encoder

PROMPTS = 2  # the contract's prompts per call (the negative must be a list of as many texts)
SIZE = 32  # pixels for the tiny_qwen pipelines (4x VAE, 2x2 packing -> 4x4 = 16 tokens)
CFG = {"true_cfg_scale": 4.0, "negative_prompt": [""] * PROMPTS}
CALL = {"height": SIZE, "width": SIZE, "max_sequence_length": 64, "output_type": "latent", **CFG}
NO_CFG = {"true_cfg_scale": 1.0}


def _same(pipe):
    return pipe.scheduler


def _unipc(pipe):
    """A multistep flow scheduler (takes the pipelines' numpy ``sigmas``; keeps earlier model outputs)."""
    return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)


def _image(seed: int, size: int = SIZE) -> Image.Image:
    """A size x size RGB image of seeded noise (a plain colour would make the image latents nearly constant)."""
    g = torch.Generator().manual_seed(seed)
    return Image.fromarray(torch.randint(0, 256, (size, size, 3), generator=g, dtype=torch.uint8).numpy())


def _mask(size: int = SIZE) -> Image.Image:
    """White (repaint) right half, black (keep) left half."""
    mask = torch.zeros(size, size, dtype=torch.uint8)
    mask[:, size // 2 :] = 255
    return Image.fromarray(mask.numpy(), mode="L")


def _case(pipe, call, **kw) -> Case:
    return Case(pipe, call=call, no_cfg=dict(NO_CFG), schedulers=kw.pop("schedulers", (_same,)), **kw)


# -- tests/tiny_qwen.py components -------------------------------------------------------------------------------


def _base(cls, **extra):
    pipe = cls(**tiny_qwenimage().components, **extra)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _controlnet(extra_condition_channels: int = 0) -> QwenImageControlNetModel:
    """One block, the transformer's width. Its fresh output layers are zero; they stay so: the ControlNet sees only
    the conditional text (it runs once per step, on ``prompt_embeds``), so no negative text goes through it."""
    torch.manual_seed(0)
    return QwenImageControlNetModel(
        patch_size=2, in_channels=16, out_channels=4, num_layers=1, attention_head_dim=16, num_attention_heads=3,
        joint_attention_dim=HIDDEN, axes_dims_rope=(8, 4, 4), extra_condition_channels=extra_condition_channels,
    ).eval()


def qwenimage() -> Case:
    return _case(_base(QwenImagePipeline), dict(CALL), schedulers=(_same, _unipc))


def qwenimage_img2img() -> Case:
    """``steps=5, strength=0.8``: 4 denoising steps."""
    call = {**CALL, "image": _image(1), "strength": 0.8}
    return _case(_base(QwenImageImg2ImgPipeline), call, steps=5, full_grid=False)


def qwenimage_inpaint() -> Case:
    call = {**CALL, "image": _image(1), "mask_image": _mask(), "strength": 0.8}
    return _case(_base(QwenImageInpaintPipeline), call, steps=5, full_grid=False)


def qwenimage_controlnet() -> Case:
    call = {**CALL, "control_image": _image(2)}
    return _case(_base(QwenImageControlNetPipeline, controlnet=_controlnet()), call, full_grid=False)


def qwenimage_controlnet_inpaint() -> Case:
    """Control input: masked-image latents (4 channels) and the mask (1 channel), packed: 4 extra channels."""
    call = {**CALL, "control_image": _image(2), "control_mask": _mask()}
    pipe = _base(QwenImageControlNetInpaintPipeline, controlnet=_controlnet(extra_condition_channels=4))
    return _case(pipe, call, full_grid=False)


# -- Edit family: 1024 px inputs ---------------------------------------------------------------------------------

EDIT_SIZE = 256  # output pixels where the pipeline takes height/width (64x VAE: 4x4 latents, 2x2 = 4 tokens)


class _ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
    """``Qwen2VLProcessor`` without a video processor. transformers checks every sub-processor's class, and without
    torchvision the video processor's base class cannot be looked up (AttributeError), even for ``None``."""

    @classmethod
    def get_attributes(cls):
        return [name for name in super().get_attributes() if name != "video_processor"]


def _template(cls) -> str:
    """The pipeline class's own prompt template (set in ``__init__``; every component may be None there)."""
    names = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    return cls(**dict.fromkeys(names)).prompt_template_encode


def _edit_tokenizer():
    """Every word of the three Edit templates and of EditPlus's ``Picture 1: `` is one token: the templates'
    system part plus ``<|im_start|>user\n`` is exactly ``prompt_template_encode_start_idx`` = 64 tokens."""
    templates = [_template(c) for c in (QwenImageEditPipeline, QwenImageEditPlusPipeline, QwenImageEditInpaintPipeline)]
    tokenizer = make_qwen_tokenizer(words=(*WORDS, "Picture", "1:"), template="".join(templates))
    prefix = templates[0].split("<|vision_start|>")[0]
    if len(tokenizer(prefix).input_ids) != 64:
        raise RuntimeError("the Edit template's system part is no longer 64 tokens; rebuild the tokenizer for it")
    return tokenizer


def _processor(tokenizer) -> Qwen2VLProcessor:
    """Qwen2-VL's image processing at 14-px patches merged 2x2, the prompt image shrunk to 56x56: 4 vision tokens."""
    images = Qwen2VLImageProcessorPil(
        min_pixels=28 * 28, max_pixels=56 * 56, patch_size=14, merge_size=2, temporal_patch_size=2
    )
    return _ImageOnlyQwen2VLProcessor(image_processor=images, tokenizer=tokenizer)


def _vae64() -> AutoencoderKLQwenImage:
    """6 spatial halvings (``vae_scale_factor`` = 2 ** len(temperal_downsample) = 64), 8 channels, tiled at 256 px.
    (With 2 channels the decoder barely responds to its latents: Layered's decoded layers then differ by 1e-6.)"""
    torch.manual_seed(0)
    vae = AutoencoderKLQwenImage(
        base_dim=8, z_dim=4, dim_mult=[1] * 7, num_res_blocks=0, temperal_downsample=[False] * 5 + [True],
        latents_mean=[0.0] * 4, latents_std=[1.0] * 4,
    ).eval()
    vae.enable_tiling(
        tile_sample_min_height=256, tile_sample_min_width=256, tile_sample_stride_height=256,
        tile_sample_stride_width=256,
    )
    return vae


def _transformer(**kw) -> QwenImageTransformer2DModel:
    """tests/tiny_qwen.py's transformer configuration; ``kw``: Layered's extra switches."""
    torch.manual_seed(0)
    return QwenImageTransformer2DModel(
        patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=3,
        joint_attention_dim=HIDDEN, guidance_embeds=False, axes_dims_rope=(8, 4, 4), **kw,
    ).eval()


def _edit(cls, transformer=None):
    tokenizer = _edit_tokenizer()
    pipe = cls(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=_vae64(), text_encoder=tiny_text_encoder(tokenizer),
        tokenizer=tokenizer, processor=_processor(tokenizer), transformer=transformer or _transformer(),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def qwenimage_edit() -> Case:
    """``image`` is one image per prompt: the processor (transformers 5) wants as many images as ``<|image_pad|>``
    tokens, and each prompt's template has one."""
    call = {**CALL, "height": EDIT_SIZE, "width": EDIT_SIZE, "image": [_image(1)] * PROMPTS}
    return _case(_edit(QwenImageEditPipeline), call, schedulers=(_same, _unipc))


def qwenimage_edit_plus() -> Case:
    """ONE prompt per call: 0.42.1 raises ValueError for ``batch_size > 1`` (pipeline_qwenimage_edit_plus.py). The
    condition images are a list (here one: "Picture 1: <vision tokens>" before the prompt); the prompt image goes to
    the VL encoder at 384x384 (then the processor's 56x56), the VAE image at 1024x1024."""
    call = {**CALL, "height": EDIT_SIZE, "width": EDIT_SIZE, "image": [_image(1)], "negative_prompt": [""]}
    return _case(_edit(QwenImageEditPlusPipeline), call, full_grid=False, prompts=["a red cat"])


def qwenimage_edit_inpaint() -> Case:
    """Output size is always the input's 1024x1024 (``height``/``width`` are overwritten); ``steps=5,
    strength=0.8``: 4 denoising steps."""
    call = {**CALL, "image": [_image(1)] * PROMPTS, "mask_image": _mask(), "strength": 0.8}
    del call["height"], call["width"]
    return _case(_edit(QwenImageEditInpaintPipeline), call, steps=5, full_grid=False)


def qwenimage_layered() -> Case:
    """Decomposes a 640x640 image (``resolution=640``; sizes are not arguments) into ``layers=1`` layer. The
    transformer takes the extra ``additional_t_cond`` input and 3-D layer RoPE, as Qwen-Image-Layered's does.
    ``output_type="np"``: with ``"latent"`` 0.42.1 returns an unbound ``images`` (UnboundLocalError).
    ``images_arg=None``: its ``additional_t_cond`` has ``batch_size`` rows, not ``batch_size * num_images_per_prompt``,
    so more than one image per prompt fails (RuntimeError in the time embedding)."""
    call = {**CFG, "image": _image(1), "layers": 1, "resolution": 640, "max_sequence_length": 64,
            "output_type": "np"}
    transformer = _transformer(use_additional_t_cond=True, use_layer3d_rope=True)
    pipe = _edit(QwenImageLayeredPipeline, transformer=transformer)
    return _case(pipe, call, images_arg=None, full_grid=False, output=_all_layers)


def _all_layers(result) -> torch.Tensor:
    """Layered's per-prompt arrays, concatenated. 0.42.1 slices the decoded layers per prompt with the frame count
    before it dropped the input frame, so the prompts' arrays differ in length (the last ones come out empty)."""
    return torch.from_numpy(np.concatenate([np.asarray(layers) for layers in result.images]))


# -- Qwen-Image 2.1: Qwen3-VL encoder, 16x VAE, single-stream transformer -----------------------------------------

# A chat template of our own for Qwen3-VL's message layout (the pipeline's __init__ renders its system message with
# ``processor.apply_chat_template`` to count the tokens it drops).
QWEN3VL_CHAT = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LATENT21 = 8  # the 2.1 VAE's z_dim = the transformer's in_channels (latents go in unpatched)


class _ImageOnlyQwen3VLProcessor(Qwen3VLProcessor):
    """``Qwen3VLProcessor`` without a video processor (see ``_ImageOnlyQwen2VLProcessor``)."""

    @classmethod
    def get_attributes(cls):
        return [name for name in super().get_attributes() if name != "video_processor"]


def _qwen3vl(tokenizer) -> Qwen3VLForConditionalGeneration:
    """Qwen3-VL: 2 text layers of width HIDDEN, a 1-block vision tower (16-px patches merged 2x2), no deepstack."""
    ids = tokenizer.convert_tokens_to_ids
    torch.manual_seed(0)
    config = Qwen3VLConfig(
        text_config={
            "hidden_size": HIDDEN, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 2,
            "num_key_value_heads": 2, "head_dim": 16, "vocab_size": len(tokenizer), "max_position_embeddings": 2048,
            "rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 1000000.0,
                                "mrope_interleaved": True},
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "depth": 1, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": HIDDEN,
            "patch_size": 16, "num_position_embeddings": 16, "deepstack_visual_indexes": [],
        },
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
    )
    return Qwen3VLForConditionalGeneration(config).eval()


def _qwenimage21() -> QwenImage21Pipeline:
    tokenizer = make_qwen_tokenizer()
    images = Qwen2VLImageProcessorPil(
        min_pixels=32 * 32, max_pixels=64 * 64, patch_size=16, merge_size=2, temporal_patch_size=2
    )
    processor = _ImageOnlyQwen3VLProcessor(image_processor=images, tokenizer=tokenizer, chat_template=QWEN3VL_CHAT)
    torch.manual_seed(0)
    transformer = QwenImage21Transformer2DModel(
        in_channels=LATENT21, out_channels=LATENT21, num_layers=1, attention_head_dim=16, num_attention_heads=2,
        context_in_dim=HIDDEN, mlp_ratio=2, axes_dims_rope=(4, 6, 6),
    ).eval()
    torch.manual_seed(0)
    vae = AutoencoderKLQwenImage21(  # 4 halvings: the pipeline fixes vae_scale_factor = 16
        base_dim=4, decoder_base_dim=4, z_dim=LATENT21, dim_mult=[1] * 5, num_res_blocks=1,
        temperal_downsample=[False, True, True, True], latents_mean=[0.0] * LATENT21, latents_std=[1.0] * LATENT21,
    ).eval()
    pipe = QwenImage21Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=_qwen3vl(tokenizer), processor=processor,
        transformer=transformer,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def qwenimage21() -> Case:
    """Image-conditioned: one 64x64 condition image (``output_resolution=64``: 4x4 latents, 16 tokens, 4 vision
    slots in the text), 32x32 output (2x2 latents, 4 tokens). ``use_kv_cache`` stays at its default (True): the
    text and condition-image keys/values of each pass are computed at step 0 and reused (see the facts table)."""
    call = {**CALL, "image": _image(1, size=64), "output_resolution": 64}
    del call["max_sequence_length"]  # 2.1 takes none
    return _case(_qwenimage21(), call, schedulers=(_same, _unipc))


CASES = {
    "QwenImagePipeline": qwenimage,
    "QwenImageImg2ImgPipeline": qwenimage_img2img,
    "QwenImageInpaintPipeline": qwenimage_inpaint,
    "QwenImageControlNetPipeline": qwenimage_controlnet,
    "QwenImageControlNetInpaintPipeline": qwenimage_controlnet_inpaint,
    "QwenImageEditPipeline": qwenimage_edit,
    "QwenImageEditPlusPipeline": qwenimage_edit_plus,
    "QwenImageEditInpaintPipeline": qwenimage_edit_inpaint,
    "QwenImageLayeredPipeline": qwenimage_layered,
    "QwenImage21Pipeline": qwenimage21,
}
