"""The shipped toy model: a diffusers folder in the package, loaded offline by load_pipeline()."""

import json
import os

import numpy as np
import pytest
import torch

from negdelay.toy import MODEL_DIR, load_pipeline, world


@pytest.fixture(scope="module")
def pipe():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    return load_pipeline()


def test_shipped_folder_is_a_small_sd_pipeline():
    index = json.loads((MODEL_DIR / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert index["unet"] == ["diffusers", "UNet2DConditionModel"]
    assert index["vae"] == ["diffusers", "AutoencoderKL"]
    assert index["text_encoder"] == ["transformers", "CLIPTextModel"]
    assert index["tokenizer"] == ["transformers", "CLIPTokenizer"]
    files = [p for p in MODEL_DIR.rglob("*") if p.is_file()]
    assert any(p.suffix == ".safetensors" for p in files)
    assert sum(p.stat().st_size for p in files) <= 30 * 2**20


def test_loads_offline_in_eval_mode(pipe):
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    assert not pipe.unet.training and not pipe.vae.training and not pipe.text_encoder.training
    assert pipe.unet.dtype == torch.float32
    sched = pipe.scheduler.config
    assert (sched.beta_start, sched.beta_end, sched.beta_schedule, sched.num_train_timesteps) == (
        0.00085, 0.012, "scaled_linear", 1000)
    # every world word is one token, so the text encoder sees the words it was trained on
    for w in world.VOCAB:
        assert len(pipe.tokenizer.tokenize(w)) == 1


def test_images_have_the_right_shape_and_are_deterministic(pipe):
    def run(seed):
        g = torch.Generator().manual_seed(seed)
        return pipe(["a red circle", "a blue square with a dot"], num_inference_steps=4, guidance_scale=7.5,
                    generator=g, output_type="np", negative_prompt=[world.NEGATIVE_PROMPT, ""]).images

    a, b, c = run(0), run(0), run(1)
    assert a.shape == (2, 32, 32, 3)
    assert np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.std() > 0.05  # not a blank image


def test_schedulers_built_from_the_shipped_config_do_not_clip_latents():
    """SD's scheduler config says clip_sample=false; without it DDIM built from the config clips latents."""
    from diffusers import DDIMScheduler

    from negdelay.toy import load_pipeline

    pipe = load_pipeline()
    assert DDIMScheduler.from_config(pipe.scheduler.config).config.clip_sample is False
