"""``start_percent`` / ``stop_percent``: ComfyUI's percents on the model's noise axis.

ComfyUI (``comfy/model_sampling.py``, ``percent_to_sigma``) turns a percent ``p`` into a sigma: for discrete models
the training sigma at timestep ``(1 - p) * 999``, interpolated linearly in log sigma (``ModelSamplingDiscrete``,
float32 tables built from float64 betas); for flow models ``time_snr_shift(shift, 1 - p)``
(``ModelSamplingDiscreteFlow``). A conditioning with a timestep range is used at a model call when
``end_sigma <= sigma <= start_sigma`` (``comfy/samplers.py``, ``get_area_and_mult``).

``comfy_percent_to_sigma`` below transcribes that formula with torch in float32, as ComfyUI computes it, without
negdelay. ``TABLE`` holds the switch steps it gives for Stable Diffusion 1.x's schedule (PNDM, Euler, DPM++ 2M and
DPM++ 2M Karras, 20 and 50 steps) and for a flow-matching scheduler (shift 3.0, SD3's; shift 1.0), at
p = 0.1, 0.25, 0.3, 0.5, 0.7, 0.9. negdelay must switch exactly there: in the pure resolver and in real pipeline
calls (bit-identical to ``start_step=`` the table's step).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import diffusers
import numpy as np
import pytest
import torch
from tiny import tiny_sd
from tiny_families import tiny_sd3

import negdelay
from negdelay import DelayedNegative
from negdelay import schedule as sch
from negdelay.families.base import noise_axis, run_facts
from negdelay.schedule import NoiseAxis, Point, Run

PERCENTS = (0.1, 0.25, 0.3, 0.5, 0.7, 0.9)
SD1 = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
           steps_offset=1, timestep_spacing="leading", set_alpha_to_one=False, skip_prk_steps=True, clip_sample=False)
SCHEDULERS = {
    "pndm": ("PNDMScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "dpm++2m": ("DPMSolverMultistepScheduler", {}),
    "dpm++2m_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
}
#: switch steps (0-based progress-bar steps) for PERCENTS, from ComfyUI's formula (computed with the transcription
#: below; test_table_is_comfyuis_formula re-derives every entry)
TABLE = {
    ("pndm", 20): [2, 5, 6, 10, 14, 18],
    ("pndm", 50): [5, 12, 15, 25, 35, 45],
    ("euler", 20): [2, 5, 6, 10, 14, 18],
    ("euler", 50): [5, 12, 15, 25, 35, 45],
    ("dpm++2m", 20): [1, 5, 6, 10, 14, 18],
    ("dpm++2m", 50): [3, 11, 14, 24, 35, 45],
    ("dpm++2m_karras", 20): [3, 6, 7, 9, 11, 14],  # Karras sigmas: a percent is no longer a fraction of the run
    ("dpm++2m_karras", 50): [7, 14, 16, 23, 28, 35],
    ("flow-3.0", 28): [3, 7, 9, 14, 19, 25],
    ("flow-3.0", 20): [2, 5, 6, 10, 14, 18],
    ("flow-1.0", 20): [2, 5, 6, 10, 14, 18],
}


# ------------------------------------------------------------------------------------ ComfyUI's formula, transcribed
def _comfy_log_sigmas() -> torch.Tensor:
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2  # "linear" in ComfyUI
    alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
    return (((1 - alphas_cumprod) / alphas_cumprod) ** 0.5).log().float()


LOG_SIGMAS = _comfy_log_sigmas()


def comfy_percent_to_sigma(p: float, flow_shift: float | None = None) -> float:
    if p <= 0.0:
        return 1.0 if flow_shift is not None else 999999999.9
    if p >= 1.0:
        return 0.0
    if flow_shift is not None:
        t = 1.0 - p
        return t if flow_shift == 1.0 else flow_shift * t / (1 + (flow_shift - 1) * t)
    t = torch.clamp(torch.tensor((1.0 - p) * 999.0).float(), min=0, max=999)
    low, high, w = t.floor().long(), t.ceil().long(), t.frac()
    return ((1 - w) * LOG_SIGMAS[low] + w * LOG_SIGMAS[high]).exp().item()


def scheduler(key: str):
    if key.startswith("flow-"):
        return diffusers.FlowMatchEulerDiscreteScheduler(shift=float(key[5:]))
    cls, extra = SCHEDULERS[key]
    return getattr(diffusers, cls).from_config({**SD1, **extra})


def step_sigmas(sched, steps: int) -> list[float]:
    """The noise level at the first model call of each step, read from the scheduler without negdelay."""
    sched.set_timesteps(steps)
    if getattr(sched, "sigmas", None) is not None and len(sched.sigmas) > len(sched.timesteps):
        per_call = [float(s) for s in sched.sigmas[: len(sched.timesteps)]]
    else:
        acp = sched.alphas_cumprod
        per_call = [math.sqrt((1 - float(acp[int(t)])) / float(acp[int(t)])) for t in sched.timesteps]
    if type(sched).__name__ == "PNDMScheduler":  # PLMS: the warm-up call and the next belong to step 0
        per_call = per_call[:1] + per_call[2:]
    return per_call


@pytest.mark.parametrize("key,steps", list(TABLE))
def test_table_is_comfyuis_formula(key, steps):
    shift = float(key[5:]) if key.startswith("flow-") else None
    sig = step_sigmas(scheduler(key), steps)
    want = [next((k for k, s in enumerate(sig) if s <= comfy_percent_to_sigma(p, shift)), steps) for p in PERCENTS]
    assert want == TABLE[(key, steps)]


@pytest.mark.parametrize("key,steps", list(TABLE))
def test_negdelay_resolves_to_the_table(key, steps):
    sched = scheduler(key)
    sched.set_timesteps(steps)
    run = run_facts(SimpleNamespace(scheduler=sched, _num_timesteps=len(sched.timesteps)), True, need_axis=True)
    assert [sch.resolve(Point("percent", p), run) for p in PERCENTS] == TABLE[(key, steps)]


def test_noise_axis_is_comfyuis_percent_to_sigma():
    """negdelay computes in float64 from diffusers' float32 ``alphas_cumprod``, ComfyUI in float32 from float64
    betas: the two agree to 1e-5 relative (a step's sigma closer than that to the threshold is a tie)."""
    axis = noise_axis(scheduler("euler"))
    for p in np.linspace(0.001, 0.999, 97):
        assert axis.sigma(float(p)) == pytest.approx(comfy_percent_to_sigma(float(p)), rel=1e-5)
    assert axis.sigma(0.0) == math.inf and axis.sigma(1.0) == 0.0
    flow = noise_axis(scheduler("flow-3.0"))
    assert flow.sigma(0.5) == pytest.approx(comfy_percent_to_sigma(0.5, 3.0)) and flow.sigma(0.5) == 0.75


# ------------------------------------------------------------------------------------------- real pipeline calls
@pytest.mark.parametrize("key", ["pndm", "euler", "dpm++2m", "dpm++2m_karras"])
def test_callback_start_percent_equals_the_tables_step(key):
    steps = 20
    pipe = tiny_sd(scheduler=scheduler(key))
    for p, k in list(zip(PERCENTS, TABLE[(key, steps)]))[1:4]:
        def run(cb):
            out = pipe(["a red cat", "a blue dog"], num_inference_steps=steps, guidance_scale=7.5, output_type="np",
                       generator=torch.Generator().manual_seed(0), callback_on_step_end=cb)
            return out.images

        by_percent = DelayedNegative("glasses", start_percent=p)
        got = run(by_percent)
        assert np.array_equal(got, run(DelayedNegative("glasses", start_step=k))), (key, p, k)
        plan = by_percent.last_plan
        switched = [i for i in range(1, len(plan)) if plan[i] != plan[i - 1]]
        assert len(switched) == 1


def test_apply_start_and_stop_percent_on_a_flow_model():
    pipe = tiny_sd3()  # FlowMatchEulerDiscreteScheduler(shift=3.0), SD3's static shift
    steps = 20
    k, j = TABLE[("flow-3.0", steps)][1], TABLE[("flow-3.0", steps)][4]  # percents 0.25 and 0.7

    def run():
        return pipe("a red cat", num_inference_steps=steps, guidance_scale=5.0, output_type="np",
                    generator=torch.Generator().manual_seed(0)).images

    with negdelay.apply(pipe, "glasses", start_percent=0.25, stop_percent=0.7):
        got = run()
    with negdelay.apply(pipe, "glasses", start_step=k, stop_step=j):
        assert np.array_equal(got, run())
    cb = negdelay.DelayedNegative.for_pipeline(pipe, "glasses", start_percent=0.25, stop_percent=0.7)
    out = pipe("a red cat", num_inference_steps=steps, guidance_scale=5.0, output_type="np",
               generator=torch.Generator().manual_seed(0), callback_on_step_end=cb).images
    assert np.array_equal(out, got)


# ---------------------------------------------------------------------------------------------- the semantics
def test_stop_percent_is_strict_as_comfyui():
    """ComfyUI uses a conditioning while ``end_sigma <= sigma <= start_sigma``: the step whose noise level equals the
    stop's sigma still uses the negative; the same stop given as a sigma ends there (negdelay's sigma rule)."""
    run = Run(5, 5, sigmas=(1.0, 0.875, 0.75, 0.5, 0.25), axis=NoiseAxis("flow", shift=1.0))
    by_percent = sch.plan([sch.window(Point("percent", 0.125), "n", Point("percent", 0.25))], run)
    by_sigma = sch.plan([sch.window(Point("sigma", 0.875), "n", Point("sigma", 0.75))], run)
    assert [k[0] for k in by_percent] == [None, "n", "n", None, None]  # 0.75 >= 0.75: still in the range
    assert [k[0] for k in by_sigma] == [None, "n", None, None, None]


def test_percent_zero_is_step_zero_and_one_is_never():
    run = Run(4, 4, sigmas=(14.6, 5.0, 1.0, 0.2), axis=noise_axis(scheduler("euler")))
    assert sch.resolve(Point("percent", 0.0), run) == 0
    assert sch.resolve(Point("percent", 1.0), run) == 4
    with pytest.raises(ValueError, match="step 0"):
        sch.plan([sch.window(Point("percent", 0.0), "n")], run)


# ---------------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, error, text", [
    (dict(start_percent=1.5), ValueError, r"start_percent must be a percent of the noise axis in \[0, 1\]"),
    (dict(start_percent=-0.1), ValueError, "start_percent"),
    (dict(start_percent="0.3"), TypeError, "start_percent must be a float"),
    (dict(start_step=2, start_percent=0.3), ValueError, "got start_step, start_percent"),
    (dict(start_sigma=2.0, start_percent=0.3), ValueError, "got start_sigma, start_percent"),
    (dict(start_step=2, stop_percent=2.0), ValueError, "stop_percent must be a percent"),
    (dict(start_step=2, stop_fraction=0.8, stop_percent=0.9), ValueError, "got stop_fraction, stop_percent"),
])
def test_bad_percents_name_the_parameter(kwargs, error, text):
    with pytest.raises(error, match=text):
        DelayedNegative("x", **kwargs)
    pipe = tiny_sd()
    with pytest.raises(error, match=text):
        negdelay.apply(pipe, "x", **kwargs)
    assert not negdelay.is_applied(pipe)


def test_a_scheduler_without_a_training_noise_schedule_is_refused():
    with pytest.raises(ValueError, match="start_percent / stop_percent: EDMEulerScheduler has no training noise"):
        noise_axis(diffusers.EDMEulerScheduler())
    with pytest.raises(ValueError, match="start_percent / stop_percent: .*dynamic shifting"):
        noise_axis(diffusers.FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True))
    pipe = tiny_sd(scheduler=diffusers.EDMEulerScheduler())
    cb = DelayedNegative("glasses", start_percent=0.3)
    with pytest.raises(ValueError, match="start_percent"):
        pipe("a red cat", num_inference_steps=4, guidance_scale=7.5, output_type="np", callback_on_step_end=cb)
