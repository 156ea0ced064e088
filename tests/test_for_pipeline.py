"""``DelayedNegative.for_pipeline``: the family's callback for served pipelines, a clear error for the others
(naming the class, listing what is supported, and saying whether ``negdelay.apply`` covers it)."""

from __future__ import annotations

import pytest
import torch
from diffusers import (
    DDPMPipeline,
    DDPMScheduler,
    StableDiffusion3Img2ImgPipeline,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLInpaintPipeline,
    UNet2DModel,
)
from tiny import tiny_sd
from tiny_families import tiny_flux, tiny_sd3, tiny_sdxl

import negdelay
from negdelay import DelayedNegative, DelayedNegativeBase, DelayedNegativeSD3, DelayedNegativeXL
from negdelay.families import FAMILIES
from negdelay.hooks import supports


def _served():
    sd = tiny_sd()
    xl = tiny_sdxl()
    return {
        "sd": (sd, DelayedNegative),
        "sd_img2img": (StableDiffusionImg2ImgPipeline(**sd.components), DelayedNegative),
        "sdxl": (xl, DelayedNegativeXL),
        "sdxl_img2img": (StableDiffusionXLImg2ImgPipeline(**xl.components), DelayedNegativeXL),
        "sdxl_inpaint": (StableDiffusionXLInpaintPipeline(**xl.components), DelayedNegativeXL),
        "sd3": (tiny_sd3(), DelayedNegativeSD3),
    }


def test_served_pipelines_get_their_family_class():
    for name, (pipe, cls) in _served().items():
        cb = DelayedNegative.for_pipeline(pipe, "glasses", start_step=2)
        assert type(cb) is cls, name
        assert set(cb.tensor_inputs) <= set(pipe._callback_tensor_inputs), name
        # also through the base class
        assert type(DelayedNegativeBase.for_pipeline(pipe, "glasses", start_fraction=0.5)) is cls


def test_schedule_arguments_pass_through_and_are_checked():
    pipe = tiny_sdxl()
    cb = DelayedNegative.for_pipeline(pipe, ["a", "b"], start_step=[2, 3], negative_prompt_2="c")
    assert cb.config["negative_prompt_2"] == "c"
    with pytest.raises(ValueError, match="exactly one of start_step"):
        DelayedNegative.for_pipeline(pipe, "glasses")
    with pytest.raises(TypeError):
        DelayedNegative.for_pipeline(tiny_sd(), "glasses", start_step=2, negative_prompt_2="x")  # SD 1.x has one encoder


def test_flux_names_the_class_and_points_to_apply():
    pipe = tiny_flux()
    assert supports(pipe)
    with pytest.raises(TypeError) as err:
        DelayedNegative.for_pipeline(pipe, "glasses", start_step=2)
    msg = str(err.value)
    assert msg.startswith("FluxPipeline is not supported by a delayed-negative callback")
    assert "StableDiffusionXLPipeline" in msg and "StableDiffusion3Pipeline" in msg
    assert "negdelay.apply" in msg


def test_sd3_img2img_points_to_apply():
    pipe = StableDiffusion3Img2ImgPipeline(**tiny_sd3().components)
    with pytest.raises(TypeError, match=r"StableDiffusion3Img2ImgPipeline is not supported.*negdelay\.apply"):
        DelayedNegative.for_pipeline(pipe, "glasses", start_step=2)


def test_unserved_pipeline_says_neither_entry_point_covers_it():
    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=8, in_channels=3, out_channels=3, block_out_channels=(8, 16), norm_num_groups=4,
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"))
    pipe = DDPMPipeline(unet=unet, scheduler=DDPMScheduler())
    assert not supports(pipe)
    with pytest.raises(TypeError) as err:
        DelayedNegative.for_pipeline(pipe, "glasses", start_step=2)
    msg = str(err.value)
    assert "DDPMPipeline is not supported" in msg and "Supported pipelines:" in msg
    assert "negdelay.apply" not in msg
    with pytest.raises(TypeError, match="negdelay does not serve DDPMPipeline: `negdelay pipelines`"):
        negdelay.apply(pipe, "glasses", start_step=2)


def test_every_supported_name_is_a_diffusers_class_with_the_tensors_the_family_needs():
    """The family tables do not list a pipeline that would not hand the callback its tensors back."""
    import inspect

    import diffusers

    def takes_back(cls, tensors):
        source = inspect.getsource(cls.__call__)
        return set(tensors) <= set(cls._callback_tensor_inputs) and all(
            f'callback_outputs.pop("{t}"' in source for t in tensors
        )

    for family in FAMILIES:
        for name in family.pipelines:
            assert takes_back(getattr(diffusers, name), family.tensor_inputs), (family.name, name)
    # why these are left to negdelay.apply or out: they do not take the pooled embedding back
    for name, tensors in (
        ("StableDiffusionXLControlNetInpaintPipeline", ("prompt_embeds", "add_text_embeds")),
        ("StableDiffusion3Img2ImgPipeline", ("prompt_embeds", "pooled_prompt_embeds")),
        ("StableDiffusion3InpaintPipeline", ("prompt_embeds", "pooled_prompt_embeds")),
    ):
        assert not takes_back(getattr(diffusers, name), tensors), name
