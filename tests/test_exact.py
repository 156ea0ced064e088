"""Bit-exact proofs for the SD 1.x/2.x callback against a callback-free reference (tests/tiny.py).

The reference wraps ``unet.forward`` and substitutes the unconditional rows of ``encoder_hidden_states``
for every UNet call of the chosen progress-bar steps; the rows are captured from a stock pipeline run
with ``negative_prompt=``. Steps are counted by the pipeline's own progress bar. Nothing of negdelay's
schedule, family or callback code is used by the reference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    PNDMScheduler,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionInpaintPipeline,
    UniPCMultistepScheduler,
)
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback, SDCFGCutoffCallback
from tiny import captured_uncond, reference, substitute, tiny_sd

from negdelay import DelayedNegative

PROMPTS = ["a girl eating pizza", "a photo of a cat"]
NEGS = ["glasses", "blurry dog"]
SIZE = dict(height=16, width=16)
STEPS = 6

SCHEDULERS = {
    "ddim": lambda c: DDIMScheduler.from_config(c),
    "pndm": lambda c: PNDMScheduler.from_config(c, skip_prk_steps=True),
    "euler": lambda c: EulerDiscreteScheduler.from_config(c),
    "euler_a": lambda c: EulerAncestralDiscreteScheduler.from_config(c),
    "dpmpp_2m": lambda c: DPMSolverMultistepScheduler.from_config(c),
    "unipc": lambda c: UniPCMultistepScheduler.from_config(c),
    "heun": lambda c: HeunDiscreteScheduler.from_config(c),
}


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def run(pipe, prompt=PROMPTS, cb=None, seed=0, **kw):
    kw = {"num_inference_steps": STEPS, "output_type": "np", **SIZE, **kw}
    return pipe(prompt, generator=gen(seed), callback_on_step_end=cb, **kw).images


def ref(pipe, uncond, steps, prompt=PROMPTS, seed=0, **kw):
    with reference(pipe, substitute(uncond, steps)):
        return run(pipe, prompt, seed=seed, **kw)


def pipe_with(name):
    pipe = tiny_sd()
    pipe.scheduler = SCHEDULERS[name](pipe.scheduler.config)
    return pipe


@pytest.mark.parametrize("name", list(SCHEDULERS))
@pytest.mark.parametrize("k", [1, 3, 5])
def test_start_step_equals_reference(name, k):
    pipe = pipe_with(name)
    uncond = captured_uncond(pipe, NEGS, rows=4, **SIZE)
    assert uncond.shape[0] == 4
    got = run(pipe, cb=DelayedNegative(NEGS, start_step=k), num_images_per_prompt=2)
    want = ref(pipe, uncond, lambda s: s >= k, num_images_per_prompt=2)
    assert got.shape == (4, 16, 16, 3)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("name", ["ddim", "euler", "heun", "pndm"])
def test_fraction_and_stop(name):
    pipe = pipe_with(name)
    uncond = captured_uncond(pipe, "glasses", rows=2, **SIZE)
    # int(0.34 * 6) = 2 ; int(0.84 * 6) = 5
    got = run(pipe, cb=DelayedNegative("glasses", start_fraction=0.34, stop_fraction=0.84))
    want = ref(pipe, uncond, {2, 3, 4})
    assert np.array_equal(got, want)
    got = run(pipe, cb=DelayedNegative("glasses", start_step=1, stop_step=3))
    assert np.array_equal(got, ref(pipe, uncond, {1, 2}))


def first_call_sigmas(pipe, n):
    """Noise level at the first UNet call of each step, read from the scheduler's own arrays (independently)."""
    s = pipe.scheduler
    s.set_timesteps(n)
    if getattr(s, "sigmas", None) is not None and len(s.sigmas) > len(s.timesteps):
        per_call = s.sigmas.tolist()
    else:
        acp = [float(s.alphas_cumprod[int(t)]) for t in s.timesteps]
        per_call = [((1 - a) / a) ** 0.5 for a in acp]
    stride = s.order
    warm = 1 if isinstance(s, PNDMScheduler) else 0
    return [per_call[0]] + [per_call[warm + stride * k] for k in range(1, n)]


@pytest.mark.parametrize("name", ["ddim", "euler", "heun", "dpmpp_2m", "pndm"])
def test_sigma_threshold(name):
    pipe = pipe_with(name)
    sig = first_call_sigmas(pipe, STEPS)
    assert all(a > b for a, b in zip(sig, sig[1:]))
    threshold = (sig[2] + sig[3]) / 2  # first step with sigma <= threshold is step 3
    uncond = captured_uncond(pipe, "glasses", rows=2, **SIZE)
    got = run(pipe, cb=DelayedNegative("glasses", start_sigma=threshold))
    assert np.array_equal(got, ref(pipe, uncond, lambda s: s >= 3))
    exact = sig[4]  # "<=" includes equality
    got = run(pipe, cb=DelayedNegative("glasses", start_sigma=exact))
    assert np.array_equal(got, ref(pipe, uncond, lambda s: s >= 4))


@pytest.mark.parametrize("name", ["ddim", "euler", "pndm", "heun"])
def test_img2img_counts_only_the_steps_that_run(name):
    pipe = StableDiffusionImg2ImgPipeline(**pipe_with(name).components)
    pipe.set_progress_bar_config(disable=True)
    image = torch.linspace(0, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)
    kw = dict(image=image, strength=0.6, num_inference_steps=10)  # 6 steps run
    uncond = captured_uncond(pipe, "glasses", image=image, strength=0.6)
    got = pipe(PROMPTS[0], generator=gen(), output_type="np", callback_on_step_end=DelayedNegative("glasses", start_step=2), **kw).images
    with reference(pipe, substitute(uncond, lambda s: s >= 2)) as calls:
        want = pipe(PROMPTS[0], generator=gen(), output_type="np", **kw).images
    assert max(s for s, _ in calls) == 5  # the progress bar counted 6 steps
    assert np.array_equal(got, want)
    # fraction of the steps that run: int(0.5 * 6) = 3
    got = pipe(PROMPTS[0], generator=gen(), output_type="np", callback_on_step_end=DelayedNegative("glasses", start_fraction=0.5), **kw).images
    with reference(pipe, substitute(uncond, lambda s: s >= 3)):
        want = pipe(PROMPTS[0], generator=gen(), output_type="np", **kw).images
    assert np.array_equal(got, want)


def test_inpaint_pipeline():
    base = tiny_sd()
    pipe = StableDiffusionInpaintPipeline(**base.components)
    pipe.set_progress_bar_config(disable=True)
    image = torch.linspace(0, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1
    kw = dict(image=image, mask_image=mask, num_inference_steps=5, strength=1.0, **SIZE)
    uncond = captured_uncond(pipe, "glasses", image=image, mask_image=mask, **SIZE)
    got = pipe(PROMPTS[0], generator=gen(), output_type="np", callback_on_step_end=DelayedNegative("glasses", start_step=2), **kw).images
    with reference(pipe, substitute(uncond, lambda s: s >= 2)):
        want = pipe(PROMPTS[0], generator=gen(), output_type="np", **kw).images
    assert np.array_equal(got, want)


def test_never_switching_equals_stock_without_negative():
    pipe = tiny_sd()
    stock = run(pipe, num_images_per_prompt=2)
    for cb in (
        DelayedNegative(NEGS, start_step=STEPS),
        DelayedNegative(NEGS, start_step=100),
        DelayedNegative(NEGS, start_fraction=1.0),
        DelayedNegative(NEGS, start_sigma=1e-6),
    ):
        assert np.array_equal(run(pipe, cb=cb, num_images_per_prompt=2), stock)


def test_delayed_differs_from_both_ends():
    pipe = tiny_sd()
    none = run(pipe)
    full = pipe(PROMPTS, negative_prompt=["glasses"] * 2, generator=gen(), num_inference_steps=STEPS, output_type="np", **SIZE).images
    late = run(pipe, cb=DelayedNegative("glasses", start_step=3))
    assert np.abs(late - none).max() > 1e-3
    assert np.abs(late - full).max() > 1e-3
    # and the reference with the negative from step 0 is the stock negative run: the reference is sound
    uncond = captured_uncond(pipe, ["glasses"] * 2, **SIZE)
    assert np.array_equal(ref(pipe, uncond, lambda s: True), full)


def test_pipeline_negative_is_kept_before_the_switch():
    """With negative_prompt= on the pipeline, that text is the 'unconditional' before the switch and after stop."""
    pipe = tiny_sd()
    before = captured_uncond(pipe, ["blurry"] * 2, **SIZE)
    after = captured_uncond(pipe, "glasses", rows=2, **SIZE)

    def rows(step, ehs):
        n = ehs.shape[0] // 2
        return torch.cat([(after if 2 <= step < 4 else before), ehs[n:]])

    got = run(pipe, cb=DelayedNegative("glasses", start_step=2, stop_step=4), negative_prompt=["blurry"] * 2)
    with reference(pipe, rows):
        want = run(pipe, negative_prompt=["blurry"] * 2)
    assert np.array_equal(got, want)


def test_precomputed_embeds_equal_text():
    pipe = tiny_sd()
    uncond = captured_uncond(pipe, "glasses", **SIZE)
    a = run(pipe, PROMPTS[0], cb=DelayedNegative("glasses", start_step=2))
    b = run(pipe, PROMPTS[0], cb=DelayedNegative(negative_prompt_embeds=uncond, start_step=2))
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="negative prompt_embeds has shape"):
        run(pipe, PROMPTS[0], cb=DelayedNegative(negative_prompt_embeds=uncond[:, :5], start_step=2))


def test_per_row_start_steps_in_one_batched_call():
    pipe = tiny_sd()
    starts = [1, 3, 6]
    prompt = [PROMPTS[0]] * 3
    uncond = captured_uncond(pipe, "glasses", rows=3, **SIZE)

    def rows(step, ehs):
        n = ehs.shape[0] // 2
        mixed = [uncond[r : r + 1] if step >= starts[r] else ehs[r : r + 1] for r in range(n)]
        return torch.cat(mixed + [ehs[n:]])

    gens = [gen(7) for _ in starts]
    got = pipe(prompt, generator=gens, num_inference_steps=STEPS, output_type="np", **SIZE,
               callback_on_step_end=DelayedNegative("glasses", start_step=starts)).images
    with reference(pipe, rows):
        want = pipe(prompt, generator=[gen(7) for _ in starts], num_inference_steps=STEPS, output_type="np", **SIZE).images
    assert np.array_equal(got, want)
    assert not np.array_equal(got[0], got[1])


def test_reuse_across_calls_with_other_batch_shapes():
    pipe = pipe_with("euler")
    cb = DelayedNegative("glasses", start_step=2)
    for prompt, nipp in ((PROMPTS[0], 1), (PROMPTS, 2), (PROMPTS[1], 3), (PROMPTS[0], 1)):
        n_prompts = len(prompt) if isinstance(prompt, list) else 1
        uncond = captured_uncond(pipe, "glasses", rows=n_prompts * nipp, **SIZE)
        got = run(pipe, prompt, cb=cb, num_images_per_prompt=nipp)
        assert np.array_equal(got, ref(pipe, uncond, lambda s: s >= 2, prompt=prompt, num_images_per_prompt=nipp))


def test_textual_inversion_in_the_negative(tmp_path):
    from safetensors.torch import save_file

    pipe = tiny_sd()
    torch.manual_seed(3)
    save_file({"easyneg": torch.randn(2, 32)}, str(tmp_path / "easyneg.safetensors"))
    pipe.load_textual_inversion(str(tmp_path / "easyneg.safetensors"), token="easyneg")
    neg = "easyneg, extra fingers"
    uncond = captured_uncond(pipe, [neg] * 2, **SIZE)
    got = run(pipe, cb=DelayedNegative([neg] * 2, start_step=2))
    assert np.array_equal(got, ref(pipe, uncond, lambda s: s >= 2))
    plain = run(pipe, cb=DelayedNegative("extra fingers", start_step=2))
    assert not np.array_equal(run(pipe, cb=DelayedNegative(neg, start_step=2)), plain)


def test_textual_inversion_loaded_between_calls_is_not_served_from_cache(tmp_path):
    from safetensors.torch import save_file

    pipe = tiny_sd()
    cb = DelayedNegative("easyneg", start_step=2)
    run(pipe, PROMPTS[0], cb=cb)  # "easyneg" is not a token yet: encoded as characters
    save_file({"easyneg": torch.randn(1, 32)}, str(tmp_path / "e.safetensors"))
    pipe.load_textual_inversion(str(tmp_path / "e.safetensors"), token="easyneg")
    uncond = captured_uncond(pipe, "easyneg", **SIZE)
    assert np.array_equal(run(pipe, PROMPTS[0], cb=cb), ref(pipe, uncond, lambda s: s >= 2, prompt=PROMPTS[0]))


def test_negative_is_encoded_once_and_cached_across_calls():
    pipe = tiny_sd()
    calls = []
    encode = pipe.encode_prompt

    def counting(*a, **k):
        calls.append(k.get("negative_prompt"))
        return encode(*a, **k)

    pipe.encode_prompt = counting
    cb = DelayedNegative("glasses", start_step=2)
    run(pipe, cb=cb)
    assert calls.count(["glasses"]) == 1
    run(pipe, cb=cb)
    assert calls.count(["glasses"]) == 1  # second call: from the cache
    run(pipe, cb=DelayedNegative("glasses", start_step=9))  # never switching: nothing encoded
    assert calls.count(["glasses"]) == 1


class Recorder(PipelineCallback):
    tensor_inputs = ["latents", "prompt_embeds"]

    def __init__(self):
        super().__init__()
        self.seen = []

    def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
        self.seen.append((step_index, sorted(callback_kwargs)))
        return callback_kwargs


@pytest.mark.parametrize("cutoff", [1, 2, 4])
@pytest.mark.parametrize("cutoff_first", [True, False])
def test_cfg_cutoff_composition(cutoff, cutoff_first):
    pipe = tiny_sd()
    k = 2
    uncond = captured_uncond(pipe, "glasses", **SIZE)
    cut = SDCFGCutoffCallback(cutoff_step_ratio=None, cutoff_step_index=cutoff)
    ours = DelayedNegative("glasses", start_step=k)
    rec = Recorder()
    order = [cut, ours, rec] if cutoff_first else [ours, cut, rec]
    got = run(pipe, PROMPTS[0], cb=MultiPipelineCallbacks(order))

    def rows(step, ehs):
        if ehs.shape[0] == 1 or step < k:  # after the cutoff there is no negative half
            return None
        return torch.cat([uncond, ehs[1:]])

    with reference(pipe, rows) as calls:
        want = run(pipe, PROMPTS[0], cb=SDCFGCutoffCallback(cutoff_step_ratio=None, cutoff_step_index=cutoff))
    assert [e.shape[0] for _, e in calls] == [2] * (cutoff + 1) + [1] * (STEPS - cutoff - 1)
    assert np.array_equal(got, want)
    # the callback after ours got the full dict on every step
    assert [s for s, _ in rec.seen] == list(range(STEPS))
    assert all(keys == ["latents", "prompt_embeds"] for _, keys in rec.seen)


def test_no_cfg_is_a_noop():
    pipe = tiny_sd()
    stock = run(pipe, guidance_scale=1.0)
    cb = DelayedNegative("glasses", start_step=2)
    assert np.array_equal(run(pipe, cb=cb, guidance_scale=1.0), stock)
    assert cb.last_plan is None


def test_runtime_errors():
    pipe = tiny_sd()
    with pytest.raises(ValueError, match="resolves to step 0"):
        run(pipe, cb=DelayedNegative("glasses", start_fraction=0.1))  # int(0.1 * 6) = 0
    with pytest.raises(ValueError, match=r"negative_prompt / start_\* / stop_\* lists have 3 entries but the batch has 2 image rows"):
        run(pipe, cb=DelayedNegative(["a", "b", "c"], start_step=2))
    with pytest.raises(ValueError, match=r"negative_prompt / start_\* / stop_\* lists have 3 entries but the batch has 4 image rows"):
        run(pipe, cb=DelayedNegative("a", start_step=[1, 2, 3]), num_images_per_prompt=2)


@pytest.mark.parametrize(
    "kwargs, error, text",
    [
        (dict(negative_prompt="x", start_step=0), ValueError, "start_step=0.*negative_prompt="),
        (dict(negative_prompt="x"), ValueError, "exactly one of start_step, start_fraction, start_sigma"),
        (dict(negative_prompt="x", start_step=2, start_fraction=0.5), ValueError, "got start_step, start_fraction"),
        (dict(negative_prompt="x", start_step=-3), ValueError, "start_step must be >= 0"),
        (dict(negative_prompt="x", start_fraction=2.0), ValueError, r"start_fraction must be a fraction in \[0, 1\]"),
        (dict(negative_prompt="x", start_sigma=-1.0), ValueError, "start_sigma must be a noise level > 0"),
        (dict(negative_prompt="x", start_step=4, stop_step=4), ValueError, "stop_step must be after start_step"),
        (dict(start_step=2), ValueError, "exactly one of negative_prompt"),
        (dict(negative_prompt="x", negative_prompt_embeds=torch.zeros(1, 2, 3), start_step=2), ValueError, "exactly one of negative_prompt"),
        (dict(negative_prompt=3, start_step=2), TypeError, "negative_prompt must be a str"),
        (dict(negative_prompt=[], start_step=2), TypeError, "negative_prompt must be a str"),
        (dict(negative_prompt=["a", "b"], start_step=[1, 2, 3]), ValueError, "list lengths differ .negative_prompt has 2, start_step has 3"),
        (dict(negative_prompt_embeds="x", start_step=2), TypeError, "negative_prompt_embeds must be a tensor"),
    ],
)
def test_bad_arguments(kwargs, error, text):
    with pytest.raises(error, match=text):
        DelayedNegative(**kwargs)


def test_works_with_callback_tensor_inputs_check():
    pipe = tiny_sd()
    cb = DelayedNegative("glasses", start_step=2)
    assert set(cb.tensor_inputs) <= set(pipe._callback_tensor_inputs)
    assert cb.config["start"] == {"kind": "step", "value": 2}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_no_host_device_sync_after_the_first_step():
    pipe = tiny_sd().to("cuda")

    class Disarm(PipelineCallback):
        tensor_inputs = ["latents"]

        def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
            torch.cuda.set_sync_debug_mode("default")
            return callback_kwargs

    ours = DelayedNegative("glasses", start_step=2, stop_step=4)
    # ours runs with sync-debug "error" on every step after the first (its per-call setup runs at step 0),
    # so any synchronising operation at its switch steps (2, 4) or quiet steps raises
    cbs = MultiPipelineCallbacks([_ArmAfterFirst(), ours, Disarm()])
    try:
        pipe(PROMPTS, num_inference_steps=STEPS, output_type="latent", callback_on_step_end=cbs, **SIZE)
    finally:
        torch.cuda.set_sync_debug_mode("default")


class _ArmAfterFirst(PipelineCallback):
    tensor_inputs = ["latents"]

    def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
        torch.cuda.set_sync_debug_mode("error" if step_index > 0 else "default")
        return callback_kwargs


def test_ddpm_with_custom_timesteps_after_another_call():
    """DDPM keeps a stale num_inference_steps when given timesteps=: the steps are counted from the loop."""
    from diffusers import DDPMScheduler

    pipe = tiny_sd()
    pipe.scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    run(pipe, num_inference_steps=2)  # leaves num_inference_steps = 2 behind
    timesteps = [900, 700, 500, 300, 100]
    uncond = captured_uncond(pipe, "glasses", rows=2, **SIZE)
    kw = {"timesteps": timesteps, "num_inference_steps": None}
    got = run(pipe, cb=DelayedNegative("glasses", start_step=1), **kw)
    assert np.array_equal(got, ref(pipe, uncond, lambda s: s >= 1, **kw))


@pytest.mark.parametrize("name", ["ddim", "euler", "heun"])
def test_img2img_sigma_threshold_counts_from_the_first_step_that_runs(name):
    pipe = StableDiffusionImg2ImgPipeline(**pipe_with(name).components)
    pipe.set_progress_bar_config(disable=True)
    image = torch.linspace(0, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)
    kw = dict(image=image, strength=0.6, num_inference_steps=10)  # steps 4..9 of 10 run: 6 steps
    sig = first_call_sigmas(pipe, 10)[4:]
    threshold = (sig[1] + sig[2]) / 2  # step 2 of the run
    uncond = captured_uncond(pipe, "glasses", image=image, strength=0.6)
    got = pipe(PROMPTS[0], generator=gen(), output_type="np", callback_on_step_end=DelayedNegative("glasses", start_sigma=threshold), **kw).images
    with reference(pipe, substitute(uncond, lambda s: s >= 2)):
        want = pipe(PROMPTS[0], generator=gen(), output_type="np", **kw).images
    assert np.array_equal(got, want)


def test_pipelines_with_another_row_layout_are_refused():
    from diffusers import StableDiffusionPAGPipeline

    pipe = StableDiffusionPAGPipeline(**tiny_sd().components, pag_applied_layers=["mid"])
    pipe.set_progress_bar_config(disable=True)
    cb = DelayedNegative("glasses", start_step=2)
    # this pipeline does not take a PipelineCallback's tensor_inputs by itself
    with pytest.raises(TypeError, match=r"StableDiffusionPAGPipeline did not pass \['prompt_embeds'\]"):
        run(pipe, cb=cb, pag_scale=3.0)
    # given them, its rows are [uncond, cond, perturbed cond]: refused, not mis-swapped
    with pytest.raises(ValueError, match=r"StableDiffusionPAGPipeline passes 6 prompt_embeds rows for 2 images"):
        run(pipe, cb=cb, pag_scale=3.0, callback_on_step_end_tensor_inputs=cb.tensor_inputs)


def test_the_sd_callback_refuses_another_family():
    from tiny_families import tiny_sdxl

    with pytest.raises(TypeError, match="StableDiffusionXLPipeline belongs to the sdxl family.*for_pipeline"):
        run(tiny_sdxl(), PROMPTS[0], cb=DelayedNegative("glasses", start_step=2))


def test_cache_sees_encoder_weights_changed_in_place_and_replaced():
    pipe = tiny_sd()
    cb = DelayedNegative("glasses", start_step=2)
    run(pipe, PROMPTS[0], cb=cb)
    fc1 = next(m for n, m in pipe.text_encoder.named_modules() if n.endswith("layers.0.mlp.fc1"))
    with torch.no_grad():
        fc1.weight.mul_(1.5)
    uncond = captured_uncond(pipe, "glasses", **SIZE)
    assert np.array_equal(run(pipe, PROMPTS[0], cb=cb), ref(pipe, uncond, lambda s: s >= 2, prompt=PROMPTS[0]))
    emb = pipe.text_encoder.get_input_embeddings()
    emb.weight = torch.nn.Parameter(emb.weight.detach() * 0.5)  # a new Parameter object of the same shape
    uncond = captured_uncond(pipe, "glasses", **SIZE)
    assert np.array_equal(run(pipe, PROMPTS[0], cb=cb), ref(pipe, uncond, lambda s: s >= 2, prompt=PROMPTS[0]))
