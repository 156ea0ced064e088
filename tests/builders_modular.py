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


@dataclass
class ModularCase:
    """One modular pipeline class on tiny components.

    call: keyword arguments for every call besides prompt/negative_prompt/generator/steps/images per prompt.
    denoisers: the pipeline attributes whose forward the reference wraps.
    images_arg: the "images per prompt" keyword (None: the pipeline has none).
    output: the state value compared byte for byte.
    """

    pipe: object
    call: dict = field(default_factory=dict)
    denoisers: tuple[str, ...] = ("transformer",)
    images_arg: str | None = "num_images_per_prompt"
    output: str = "latents"
    steps: int = 4

    def run(self, generator_seed: int = 0, **kw):
        args = {"prompt": PROMPTS, "num_inference_steps": self.steps, **self.call, **kw}
        if self.images_arg:
            args.setdefault(self.images_arg, 2)
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


CASES = {
    "WanModularPipeline": wan,
    "Wan22ModularPipeline": wan22,
}
