"""Tiny modular pipelines of the real diffusers classes, built in code (no hub), for the guider contract.

``CASES``: modular pipeline class name -> zero-argument factory of a ``ModularCase``. Each builder makes the
pipeline from its default blocks (``<Blocks>().init_pipeline()``) and fills it with tiny components (the
classic tiny builders' text encoders and tokenizers where they fit), seeded, in eval mode.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch
from diffusers.guiders import ClassifierFreeGuidance

from tiny import WORDS
from tiny_families import t5

PROMPTS = ["a red cat", "a blue dog"]
NEGATIVES = ["blurry hat", "ugly dog"]


@dataclass
class ModularCase:
    """One modular pipeline class on tiny components.

    call: keyword arguments for every call besides prompt/negative_prompt/generator/steps/images per prompt.
    denoisers: the pipeline attributes whose forward the reference wraps.
    images_arg: the "images per prompt" keyword (None: the pipeline has none).
    prompts: the prompts of every call; images: images per prompt (2 prompts x 2 images where the pipeline
        takes them; fewer where the stock pipeline refuses a batch).
    output: the state value compared byte for byte.
    """

    pipe: object
    call: dict = field(default_factory=dict)
    denoisers: tuple[str, ...] = ("transformer",)
    images_arg: str | None = "num_images_per_prompt"
    prompts: str | list = field(default_factory=lambda: list(PROMPTS))
    images: int = 2
    output: str = "latents"
    steps: int = 4

    @property
    def negative(self):
        """A delayed negative of the call's shape: one per prompt."""
        return NEGATIVES[0] if isinstance(self.prompts, str) else NEGATIVES[: len(self.prompts)]

    def run(self, generator_seed: int = 0, **kw):
        args = {"prompt": self.prompts, "num_inference_steps": self.steps, **self.call, **kw}
        if self.images_arg:
            args.setdefault(self.images_arg, self.images)
        return self.pipe(**args, generator=torch.Generator().manual_seed(generator_seed), output=self.output)


def quiet(pipe):
    """Disable the progress bars of every denoise loop (ModularPipeline.set_progress_bar_config only reaches the
    top-level blocks)."""
    from diffusers.modular_pipelines.modular_pipeline import LoopSequentialPipelineBlocks

    def walk(block):
        if isinstance(block, LoopSequentialPipelineBlocks):
            block.set_progress_bar_config(disable=True)
        for sub in getattr(block, "sub_blocks", {}).values():
            walk(sub)

    walk(pipe._blocks)
    return pipe


def modular(blocks_name: str, **components):
    """``<blocks_name>().init_pipeline()`` filled with ``components`` (the guider defaults to CFG at scale 5)."""
    import diffusers.modular_pipelines as mp

    pipe = getattr(mp, blocks_name)().init_pipeline()
    components.setdefault("guider", ClassifierFreeGuidance(guidance_scale=5.0))
    pipe.update_components(**components)
    return quiet(pipe)


def seeded(factory, seed=0):
    torch.manual_seed(seed)
    module = factory()
    return module.eval() if isinstance(module, torch.nn.Module) else module


# ---------------------------------------------------------------------------------------------------------
# Wan 2.1 / 2.2
# ---------------------------------------------------------------------------------------------------------


@functools.cache
def _t5_tokenizer(max_length=16):
    from negdelay.toy.tokenizer import make_tokenizer

    return make_tokenizer(WORDS, model_max_length=max_length)


def _wan_vae():
    from diffusers import AutoencoderKLWan

    return seeded(lambda: AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]))


def _wan_transformer(seed=0, cls=None, **kw):
    from diffusers import WanTransformer3DModel

    args = dict(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    args.update(kw)
    return seeded(lambda: (cls or WanTransformer3DModel)(**args), seed)


def _wan_text():
    tok = _t5_tokenizer()
    return {"text_encoder": t5(tok, 2), "tokenizer": tok}


def _flow_match(**kw):
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(**kw)


WAN_CALL = {"height": 16, "width": 16, "num_frames": 5, "max_sequence_length": 16}


def wan():
    pipe = modular("WanBlocks", **_wan_text(), transformer=_wan_transformer(), vae=_wan_vae(),
                   scheduler=_flow_match(shift=7.0))
    return ModularCase(pipe, dict(WAN_CALL), images_arg="num_videos_per_prompt")


def wan22():
    pipe = modular("Wan22Blocks", **_wan_text(), transformer=_wan_transformer(0), transformer_2=_wan_transformer(1),
                   vae=_wan_vae(), scheduler=_flow_match(shift=7.0), guider_2=ClassifierFreeGuidance(guidance_scale=3.0))
    pipe.update_components(boundary_ratio=0.95)
    return ModularCase(pipe, dict(WAN_CALL), denoisers=("transformer", "transformer_2"), images_arg="num_videos_per_prompt")


def _image(size=16, seed=0, mode="RGB"):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    if mode == "L":
        return Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8), "L")
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def wan_i2v():
    from diffusers.utils import is_torchvision_available  # noqa: F401
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    encoder = seeded(lambda: CLIPVisionModel(CLIPVisionConfig(
        hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2, image_size=32,
        intermediate_size=16, patch_size=1)))
    pipe = modular("WanImage2VideoAutoBlocks", **_wan_text(), transformer=_wan_transformer(in_channels=36, image_dim=4),
                   vae=_wan_vae(), scheduler=_flow_match(shift=7.0), image_encoder=encoder,
                   image_processor=CLIPImageProcessor(crop_size=32, size=32))
    # the stock pipeline encodes one image for the whole batch and fails on more than one row
    return ModularCase(pipe, {**WAN_CALL, "image": _image()}, images_arg=None, prompts=PROMPTS[0])


def wan22_i2v():
    pipe = modular("Wan22Image2VideoBlocks", **_wan_text(), transformer=_wan_transformer(0, in_channels=36),
                   transformer_2=_wan_transformer(1, in_channels=36), vae=_wan_vae(), scheduler=_flow_match(shift=7.0),
                   guider_2=ClassifierFreeGuidance(guidance_scale=3.0))
    pipe.update_components(boundary_ratio=0.95)
    return ModularCase(pipe, {**WAN_CALL, "image": _image()}, denoisers=("transformer", "transformer_2"),
                       images_arg="num_videos_per_prompt")


def wan22_vace():
    from diffusers import WanVACETransformer3DModel

    vace = dict(num_layers=3, vace_layers=[0, 2], vace_in_channels=96)
    pipe = modular("Wan22VaceBlocks", **_wan_text(), transformer=_wan_transformer(0, cls=WanVACETransformer3DModel, **vace),
                   transformer_2=_wan_transformer(1, cls=WanVACETransformer3DModel, **vace), vae=_wan_vae(),
                   scheduler=_flow_match(shift=7.0), guider_2=ClassifierFreeGuidance(guidance_scale=3.0))
    pipe.update_components(boundary_ratio=0.95)
    frames = WAN_CALL["num_frames"]
    video = [_image(seed=i) for i in range(frames)]
    mask = [_image(mode="L", seed=10 + i) for i in range(frames)]
    # VACE refuses a list of prompts and more than one video per prompt
    return ModularCase(pipe, {**WAN_CALL, "video": video, "mask": mask}, denoisers=("transformer", "transformer_2"),
                       images_arg=None, prompts=PROMPTS[0])


# ---------------------------------------------------------------------------------------------------------
# SDXL, SD3, QwenImage: the classic tiny pipelines' components
# ---------------------------------------------------------------------------------------------------------


def _parts(pipe, *names):
    return {n: getattr(pipe, n) for n in names}


def sdxl():
    from tiny_families import tiny_sdxl

    base = tiny_sdxl()
    parts = _parts(base, "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "unet", "scheduler")
    pipe = modular("StableDiffusionXLAutoBlocks", **parts)
    return ModularCase(pipe, {"height": 16, "width": 16}, denoisers=("unet",))


def sd3():
    from tiny_families import tiny_sd3

    base = tiny_sd3()
    parts = _parts(base, "vae", "text_encoder", "text_encoder_2", "text_encoder_3", "tokenizer", "tokenizer_2",
                   "tokenizer_3", "transformer", "scheduler")
    pipe = modular("StableDiffusion3AutoBlocks", **parts)
    # without a negative_prompt the stock step makes no negative embeddings: its unconditional pass sees the prompt
    return ModularCase(pipe, {"height": 16, "width": 16, "max_sequence_length": 8, "negative_prompt": ""})


def qwenimage():
    from tiny_qwen import tiny_qwenimage

    base = tiny_qwenimage()
    pipe = modular("QwenImageAutoBlocks", **_parts(base, "vae", "text_encoder", "tokenizer", "transformer", "scheduler"))
    # the stock text step encodes a single negative once, for a batch of one: one negative per prompt
    return ModularCase(pipe, {"height": 32, "width": 32, "negative_prompt": ["", ""]})


CASES = {
    "WanModularPipeline": wan,
    "Wan22ModularPipeline": wan22,
    "WanImage2VideoModularPipeline": wan_i2v,
    "Wan22Image2VideoModularPipeline": wan22_i2v,
    "Wan22VaceModularPipeline": wan22_vace,
    "StableDiffusionXLModularPipeline": sdxl,
    "StableDiffusion3ModularPipeline": sd3,
    "QwenImageModularPipeline": qwenimage,
}
