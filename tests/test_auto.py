"""negdelay.auto: when it resolves to step k it is bit-identical to the callback-free reference of "the negative from
step k on" (and to DelayedNegative(start_step=k)); its cost accounting equals the UNet rows actually evaluated; its
per-row decisions follow ``decide``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler, PNDMScheduler
from tiny import captured_uncond, reference, tiny_sd

from negdelay import DelayedNegative
import functools

from negdelay.auto import AutoDelayedNegative as _Auto
from negdelay.auto import decide as _decide
from negdelay.auto import signal

# the tests pin the settings they rely on (the library's defaults are the study's calibration and may change)
AutoDelayedNegative = functools.partial(_Auto, when="first", fallback="max", max_fraction=0.5, signal_kind="align")
decide = functools.partial(_decide, when="first", fallback="max", max_fraction=0.5)

NEG = "glasses"
KW = dict(num_inference_steps=8, guidance_scale=7.5, output_type="np")
SCHED = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1)


def gens(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def per_row_reference(pipe, prompts, seeds, starts):
    """Callback-free: row r's unconditional half is the negative's rows from progress step starts[r] on."""
    neg = captured_uncond(pipe, NEG)  # the stock pipeline's own encoding of the negative

    def rows_for_step(step, ehs):
        n = ehs.shape[0] // 2
        if not any(k is not None and step >= k for k in starts):
            return None
        rows = [neg.to(ehs.dtype) if k is not None and step >= k else ehs[r : r + 1] for r, k in enumerate(starts)]
        return torch.cat(rows + [ehs[n:]])

    with reference(pipe, rows_for_step):
        return pipe(prompts, generator=gens(seeds), **KW).images


def counted(pipe):
    """Count the rows of every UNet call."""
    rows = {"n": 0}
    forward = pipe.unet.forward

    def f(sample, *a, **k):
        rows["n"] += sample.shape[0]
        return forward(sample, *a, **k)

    pipe.unet.forward = f
    return rows


@pytest.mark.parametrize("scheduler", ["ddim", "pndm", "euler"])
def test_always_fires_equals_reference_at_earliest_step(scheduler):
    sched = {"ddim": DDIMScheduler(clip_sample=False, set_alpha_to_one=False, **SCHED),
             "pndm": PNDMScheduler(skip_prk_steps=True, set_alpha_to_one=False, **SCHED),
             "euler": EulerDiscreteScheduler(**SCHED)}[scheduler]
    pipe = tiny_sd(scheduler=sched)
    cb = AutoDelayedNegative(NEG, threshold=-2.0)  # every signal is >= -2: fires at the first boundary it sees
    got = pipe(["a red cat", "a blue dog"], generator=gens([1, 2]), callback_on_step_end=cb, **KW).images
    earliest = 1 if scheduler == "pndm" else 2  # PNDM's step 0 makes two UNet calls; the hook sees the second
    assert cb.last_steps == [earliest, earliest]
    ref = per_row_reference(pipe, ["a red cat", "a blue dog"], [1, 2], [earliest, earliest])
    assert np.array_equal(got, ref)
    dn = pipe(["a red cat", "a blue dog"], generator=gens([1, 2]),
              callback_on_step_end=DelayedNegative(NEG, start_step=earliest), **KW).images
    assert np.array_equal(got, dn)
    # and it is not the stock run (the switch changed something)
    stock = pipe(["a red cat", "a blue dog"], generator=gens([1, 2]), **KW).images
    assert not np.array_equal(got, stock)


def test_never_fires_falls_back_to_max_step_bit_exact():
    pipe = tiny_sd()
    cb = AutoDelayedNegative(NEG, threshold=2.0, max_fraction=0.5)  # a cosine never reaches 2
    got = pipe("a red cat", generator=gens([3]), callback_on_step_end=cb, **KW).images
    assert cb.last_steps == [4]  # int(0.5 * 8)
    assert np.array_equal(got, per_row_reference(pipe, ["a red cat"], [3], [4]))
    cb = AutoDelayedNegative(NEG, threshold=2.0, max_fraction=0.5, fallback="never")
    got = pipe("a red cat", generator=gens([3]), callback_on_step_end=cb, **KW).images
    assert cb.last_steps == [None]
    assert np.array_equal(got, pipe("a red cat", generator=gens([3]), **KW).images)


def test_rows_decide_separately_and_follow_decide():
    pipe = tiny_sd()
    prompts, seeds = ["a red cat", "a blue dog", "a green pizza"], [5, 6, 7]
    probe = AutoDelayedNegative(NEG, threshold=2.0, max_fraction=1.0, fallback="never")
    pipe(prompts, generator=gens(seeds), callback_on_step_end=probe, **KW)
    sig = probe.last_signals
    # a threshold between the rows' signals at the first probed iteration: some rows fire there, some later/never
    first = [s[1] for s in sig]
    assert all(v is not None for v in first) and sig[0][0] is None
    thr = float(np.median(first))
    cb = AutoDelayedNegative(NEG, threshold=thr, max_fraction=0.75)
    got = pipe(prompts, generator=gens(seeds), callback_on_step_end=cb, **KW).images
    steps = list(range(8))
    want = [decide(s, steps, 8, thr, max_fraction=0.75) for s in sig]
    assert cb.last_steps == want
    assert len(set(want)) > 1, want  # the rows really differ
    assert np.array_equal(got, per_row_reference(pipe, prompts, seeds, want))
    # the signals the deciding run saw are those of the no-negative run until each row switched
    for r, k in enumerate(want):
        for i in range(1, k - 1 if k else 7):
            assert cb.last_signals[r][i] == pytest.approx(sig[r][i], abs=1e-5)


def test_cost_accounting_equals_unet_rows():
    pipe = tiny_sd()
    rows = counted(pipe)
    cb = AutoDelayedNegative(NEG, threshold=2.0, max_fraction=0.75)  # never fires: probes until the fallback
    pipe(["a red cat", "a blue dog"], generator=gens([1, 2]), callback_on_step_end=cb, **KW)
    # probes at the ends of steps 1..4 (deciding steps 2..5), fallback at step 6: 4 probes x 2 rows
    assert cb.last_cost["probe_rows"] == 8
    assert cb.last_cost["pipeline_rows"] == 2 * 2 * 8
    assert rows["n"] == cb.last_cost["pipeline_rows"] + cb.last_cost["probe_rows"]
    assert cb.last_cost["extra"] == pytest.approx(8 / 32)
    rows["n"] = 0
    cb = AutoDelayedNegative(NEG, threshold=-2.0)  # fires at the first probe: one probe per row, then stock speed
    pipe(["a red cat", "a blue dog"], generator=gens([1, 2]), callback_on_step_end=cb, **KW)
    assert cb.last_cost["probe_rows"] == 2 and rows["n"] == 32 + 2
    # the hook is gone after the call
    assert not pipe.unet._forward_hooks


def test_reuse_across_calls_and_cfg_off():
    pipe = tiny_sd()
    cb = AutoDelayedNegative(NEG, threshold=-2.0)
    a = pipe("a red cat", generator=gens([1]), callback_on_step_end=cb, **KW).images
    b = pipe("a red cat", generator=gens([1]), callback_on_step_end=cb, **KW).images
    assert np.array_equal(a, b) and cb.last_steps == [2]
    off = pipe("a red cat", generator=gens([1]), callback_on_step_end=cb, **{**KW, "guidance_scale": 1.0}).images
    plain = pipe("a red cat", generator=gens([1]), **{**KW, "guidance_scale": 1.0}).images
    assert np.array_equal(off, plain) and cb.last_steps == [None]
    assert not pipe.unet._forward_hooks


def test_signal_values():
    u = torch.zeros(2, 4, 4, 4)
    c = torch.randn(2, 4, 4, 4)
    assert torch.allclose(signal(u, c, u + 2 * c, "align"), torch.ones(2))
    assert torch.allclose(signal(u, c, u - c, "align"), -torch.ones(2))
    spot = torch.zeros(1, 4, 4, 4)
    spot[0, :, 1, 2] = 1.0
    assert float(signal(u[:1], c[:1], spot, "focus")) == pytest.approx(1.0)
    flat = torch.ones(1, 4, 4, 4)
    assert float(signal(u[:1], c[:1], flat, "focus")) == pytest.approx(1 / 16)
    assert torch.allclose(signal(u, c, c, "cancel"), torch.ones(2))  # the negative predicts what the prompt does
    assert torch.allclose(signal(u, c, u, "cancel"), torch.zeros(2), atol=1e-6)  # as the empty prompt
    with pytest.raises(ValueError, match="signal kind"):
        signal(u, c, c, "nope")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(threshold="x"), "threshold"),
        (dict(max_fraction=0.0), "max_fraction"),
        (dict(min_step=0), "min_step"),
        (dict(fallback="late"), "fallback"),
        (dict(signal_kind="loud"), "signal_kind"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        _Auto(NEG, **kwargs)
    with pytest.raises(TypeError, match="negative_prompt"):
        _Auto(["a", "b"])


def test_decide_rules():
    steps = list(range(10))
    sig = [None, 0.1, 0.2, 0.6, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1]
    assert decide(sig, steps, 10, 0.5) == 4  # iteration 3 reaches 0.5: from step 4
    assert decide(sig, steps, 10, 0.5, min_step=5, max_fraction=0.8) == 5  # iteration 4 (0.9) decides step 5
    assert decide(sig, steps, 10, 0.95) == 5  # never: fallback int(0.5 * 10)
    assert decide(sig, steps, 10, 0.95, fallback="never") is None
    pndm = [0, 0, 1, 2, 3]  # warm-up: iterations 0 and 1 form step 0
    assert decide([0.9, 0.9, 0.1, 0.1, 0.1], pndm, 4, 0.5, max_fraction=1.0) == 1  # iteration 0 is inside step 0


def test_latest_mode_gates_then_switches_at_the_latest_start():
    pipe = tiny_sd()
    prompts, seeds = ["a red cat", "a blue dog", "a green pizza"], [5, 6, 7]
    probe = AutoDelayedNegative(NEG, threshold=2.0, max_fraction=1.0, fallback="never")
    pipe(prompts, generator=gens(seeds), callback_on_step_end=probe, **KW)
    peaks = sorted(max(s[1:5]) for s in probe.last_signals)  # the probes before the latest start (step 6)
    thr = float((peaks[0] + peaks[-1]) / 2)  # the weakest row never fires, the strongest does
    steps = list(range(8))
    want = [decide(s, steps, 8, thr, max_fraction=0.75, when="latest", fallback="never") for s in probe.last_signals]
    assert set(want) == {6, None}, want  # fired rows wait for int(0.75 * 8) = 6, the others never switch
    cb = AutoDelayedNegative(NEG, threshold=thr, max_fraction=0.75, when="latest", fallback="never")
    got = pipe(prompts, generator=gens(seeds), callback_on_step_end=cb, **KW).images
    assert cb.last_steps == want
    assert np.array_equal(got, per_row_reference(pipe, prompts, seeds, want))
    assert not pipe.unet._forward_hooks


def test_decide_latest_mode():
    steps = list(range(10))
    sig = [None, 0.1, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    assert decide(sig, steps, 10, 0.5, max_fraction=0.8, when="latest", fallback="never") == 8
    assert decide(sig, steps, 10, 0.9, max_fraction=0.8, when="latest", fallback="never") is None
    assert decide(sig, steps, 10, 0.9, max_fraction=0.8, when="latest", fallback="max") == 8
    assert decide(sig, steps, 10, 0.5, max_fraction=0.8, when="first") == 3
    with pytest.raises(ValueError, match="when"):
        _Auto(NEG, when="soon")


# ----------------------------------------------------------------------------------------- the detector rule
from negdelay.auto import decide_rise, x0_prediction  # noqa: E402


def test_decide_rise_rules():
    steps = list(range(10))
    sc = [None, 0.5, 0.4, 0.3, 0.45, 0.65, 0.1, 0.1, 0.1, 0.1]
    assert decide_rise(sc, steps, 10, rise=0.3, min_step=2) == 6  # iteration 5 (0.65) is 0.35 above 0.3: step 6
    assert decide_rise(sc, steps, 10, rise=0.1, min_step=2) == 5  # iteration 4 (0.45) is 0.15 above 0.3
    assert decide_rise(sc, steps, 10, rise=0.5, min_step=2) is None
    # min_step: only iterations whose next step is >= min_step count (0.3 at iteration 3 is then not the lowest)
    assert decide_rise(sc, steps, 10, rise=0.3, min_step=5) is None
    assert decide_rise(sc, steps, 10, rise=0.2, min_step=5) == 6  # lowest 0.45 (iteration 4), 0.65 rises 0.2
    # never a switch at the end: the last iteration's boundary would be step n_steps
    assert decide_rise([None] + [0.0] * 8 + [1.0], steps, 10, rise=0.5, min_step=1) is None
    pndm = [0, 0, 1, 2, 3]
    assert decide_rise([0.9, 0.0, 0.0, 0.9, 0.0], pndm, 4, rise=0.5, min_step=1) == 3  # inside-step iteration skipped


def test_x0_prediction_equals_the_schedulers_own():
    """Independent reference: DDIM's own pred_original_sample (epsilon and v-prediction)."""
    for kind in ("epsilon", "v_prediction"):
        sched = DDIMScheduler(clip_sample=False, set_alpha_to_one=False, prediction_type=kind, **SCHED)
        sched.set_timesteps(8)
        g = torch.Generator().manual_seed(0)
        x, eps = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
        for t in sched.timesteps[:3]:
            want = sched.step(eps, t, x).pred_original_sample
            assert torch.allclose(x0_prediction(sched, x, t, eps), want, atol=1e-5)


def test_detector_rule_switches_where_the_score_rises_bit_exact():
    """A constructed score trajectory: the row switches at the step after the iteration where its score rose by
    ``rise``; before that (and for the row that never rises: always) the image is the stock no-negative one."""
    pipe = tiny_sd()  # DDIM, 8 steps: one iteration per step
    rows = counted(pipe)
    prompts, seeds = ["a red cat", "a blue dog"], [5, 6]
    s0 = [None, 0.5, 0.4, 0.3, 0.9, 0.9, 0.9, 0.9]  # rises 0.6 above its lowest at iteration 4: from step 5
    s1 = [None, 0.5, 0.5, 0.6, 0.7, 0.75, 0.79, 0.9]  # never 0.3 above 0.5 before the last step
    seen = []

    def detector(images):  # probes come once per step boundary, over the rows still undecided (row 1 last)
        it = len(seen) + 1
        seen.append(images)
        return [s0[it], s1[it]] if len(images) == 2 else [s1[it]]

    cb = _Auto(NEG, detector=detector, rise=0.3, min_step=2)
    got = pipe(prompts, generator=gens(seeds), callback_on_step_end=cb, **KW).images
    n_rows = rows["n"]
    iters = list(range(8))
    want = [decide_rise(s0, iters, 8, 0.3, 2), decide_rise(s1, iters, 8, 0.3, 2)]
    assert want == [5, None]
    assert cb.last_steps == want
    assert [len(im) for im in seen] == [2, 2, 2, 2, 1, 1]  # iterations 1-4 both rows, 5-6 row 1 alone
    assert seen[0].ndim == 4 and seen[0].shape[-1] == 3 and 0.0 <= seen[0].min() and seen[0].max() <= 1.0
    assert cb.last_cost["probe_rows"] == 10 and cb.last_cost["decodes"] == 10
    assert n_rows == 2 * 2 * 8 + 10  # the pipeline's own rows plus the probes, nothing else
    assert np.array_equal(got, per_row_reference(pipe, prompts, seeds, want))
    stock = pipe(prompts, negative_prompt=["", ""], generator=gens(seeds), **KW).images
    assert np.array_equal(got[1], stock[1])  # the row that never switched is the no-negative image
    assert not np.array_equal(got[0], stock[0])
    assert not pipe.unet._forward_hooks


def test_detector_sees_the_negative_guided_x0_prediction():
    """What the detector is given: the VAE decode of the x0 that eps_n + g (eps_c - eps_n) implies at the state the
    iteration's UNet call saw, computed here independently with a fresh scheduler's own pred_original_sample."""
    pipe = tiny_sd()
    seen = []
    cb = _Auto(NEG, detector=lambda im: (seen.append(im), [0.0] * len(im))[1], min_step=2)
    calls = []
    forward = pipe.unet.forward

    def f(sample, t, *a, **k):
        out = forward(sample, t, *a, **k)
        calls.append((sample.clone(), t, k["encoder_hidden_states"].shape[0], out[0].clone()))
        return out

    pipe.unet.forward = f
    pipe("a red cat", generator=gens([3]), callback_on_step_end=cb, **KW)
    x, t, _, out = calls[1]  # the pipeline's call of iteration 1 (batch: unconditional, prompt)
    xp, tp, n_p, eps_n = calls[2]  # the probe at the end of step 1
    assert torch.equal(x[:1], xp) and n_p == 1 and float(tp) == float(t)
    eps = eps_n + 7.5 * (out[1:] - eps_n)
    fresh = DDIMScheduler.from_config(pipe.scheduler.config)
    fresh.set_timesteps(8)
    x0 = fresh.step(eps, t, x[:1]).pred_original_sample
    with torch.no_grad():
        img = pipe.vae.decode(x0 / pipe.vae.config.scaling_factor, return_dict=False)[0]
    want = (img / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    assert np.allclose(seen[0], want, atol=1e-5)
    assert not np.allclose(seen[0], seen[1], atol=1e-3)  # a new state each step


def test_detector_bad_arguments():
    with pytest.raises(TypeError, match="detector"):
        _Auto(NEG, detector="dots")
    with pytest.raises(ValueError, match="rise"):
        _Auto(NEG, detector=lambda im: [0.0] * len(im), rise=-0.1)
    pipe = tiny_sd()
    cb = _Auto(NEG, detector=lambda im: [0.0])  # wrong number of scores for two rows
    with pytest.raises(ValueError, match="detector returned 1 scores for 2 images"):
        pipe(["a red cat", "a blue dog"], generator=gens([1, 2]), callback_on_step_end=cb, **KW)


def test_dot_score_is_the_judges_rule_made_continuous():
    """The study's detector for the embedded world: score > 0.60 exactly when the judge sees the dot (at least 3
    pixels of value < 0.40 in the object's box), on world images with and without the dot and on degraded ones."""
    from negdelay.study.signals import dot_score
    from negdelay.toy import detect as D
    from negdelay.toy import world

    rng = np.random.default_rng(0)
    scenes = [world.make_scene(s) for s in range(60)]
    images = [sc.image for sc in scenes] + [D.degrade(sc.image, rng) for sc in scenes[:30]]
    images = np.stack([np.asarray(im, dtype=np.uint8) for im in images])
    scores = dot_score(images)
    judged = np.array([D.judge(im).dot for im in images])
    assert judged.any() and (~judged).any()
    assert np.array_equal(scores > 0.60, judged)
    assert np.allclose(dot_score(images.astype(np.float64) / 255.0), scores)  # floats are quantised the same way


def test_decide_rise_lookahead():
    steps = list(range(10))
    sc = [None, 0.5, 0.4, 0.3, 0.45, 0.65, 0.1, 0.1, 0.1, 0.1]
    # iteration i's score is known at the end of step i - 1 and decides step i itself (one step earlier)
    assert decide_rise(sc, steps, 10, rise=0.3, min_step=2, lookahead=True) == 5
    assert decide_rise(sc, steps, 10, rise=0.3, min_step=2) == 6
    assert decide_rise(sc, steps, 10, rise=0.1, min_step=2, lookahead=True) == 4
    assert decide_rise([None] + [0.0] * 8 + [1.0], steps, 10, rise=0.5, min_step=1, lookahead=True) == 9
    pndm = [0, 0, 1, 2, 3]
    # iteration 1 is inside step 0 (skipped); iteration 2 starts step 1 (0.0), iteration 3 starts step 2 (0.9)
    assert decide_rise([None, 0.9, 0.0, 0.9, 0.0], pndm, 4, rise=0.5, min_step=1, lookahead=True) == 2


@pytest.mark.parametrize("scheduler", ["ddim", "euler"])
def test_lookahead_switches_where_the_score_rises_bit_exact(scheduler):
    sched = {"ddim": None, "euler": EulerDiscreteScheduler(**SCHED)}[scheduler]
    pipe = tiny_sd(scheduler=sched)
    rows = counted(pipe)
    prompts, seeds = ["a red cat", "a blue dog"], [5, 6]
    s0 = [None, None, 0.5, 0.4, 0.9, 0.9, 0.9, 0.9]  # iteration 4 rises: known at the end of step 3, from step 4
    s1 = [None, None, 0.5, 0.6, 0.7, 0.75, 0.79, 0.79]
    seen = []

    def detector(images):  # called at the ends of steps 1..6, scoring iterations 2..7
        it = len(seen) + 2
        seen.append(images)
        return [s0[it], s1[it]] if len(images) == 2 else [s1[it]]

    cb = _Auto(NEG, detector=detector, rise=0.3, min_step=2, lookahead=True)
    got = pipe(prompts, generator=gens(seeds), callback_on_step_end=cb, **KW).images
    n_rows = rows["n"]
    iters = list(range(8))
    want = [decide_rise(s0, iters, 8, 0.3, 2, True), decide_rise(s1, iters, 8, 0.3, 2, True)]
    assert want == [4, None] and cb.last_steps == want
    assert [len(im) for im in seen] == [2, 2, 2, 1, 1, 1]
    assert cb.last_cost["probe_rows"] == 2 * 9 and cb.last_cost["decodes"] == 9
    assert n_rows == 2 * 2 * 8 + 18
    assert np.array_equal(got, per_row_reference(pipe, prompts, seeds, want))
    assert not pipe.unet._forward_hooks


def test_lookahead_sees_the_state_the_next_step_will_see():
    """Independent reference: the stock no-negative run's latents after step 1, the negative's and the prompt's
    predictions there at the next timestep, and a fresh DDIM's pred_original_sample."""
    pipe = tiny_sd()
    seen = []
    cb = _Auto(NEG, detector=lambda im: (seen.append(im), [0.0] * len(im))[1], min_step=2, lookahead=True)
    pipe("a red cat", generator=gens([3]), callback_on_step_end=cb, **KW)
    keep = {}

    def grab(p, i, t, kw):
        if i == 1:
            keep["x"] = kw["latents"].clone()
        return kw

    pipe("a red cat", generator=gens([3]), callback_on_step_end=grab, callback_on_step_end_tensor_inputs=["latents"],
         **KW)
    fresh = DDIMScheduler.from_config(pipe.scheduler.config)
    fresh.set_timesteps(8)
    t = fresh.timesteps[2]
    neg = captured_uncond(pipe, NEG)
    pos = captured_uncond(pipe, "a red cat")
    with torch.no_grad():
        eps_n = pipe.unet(keep["x"], t, encoder_hidden_states=neg).sample
        eps_c = pipe.unet(keep["x"], t, encoder_hidden_states=pos).sample
        x0 = fresh.step(eps_n + 7.5 * (eps_c - eps_n), t, keep["x"]).pred_original_sample
        img = pipe.vae.decode(x0 / pipe.vae.config.scaling_factor, return_dict=False)[0]
    want = (img / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    assert np.allclose(seen[0], want, atol=1e-4)


def test_lookahead_needs_a_detector_and_picks_its_own_calibration():
    from negdelay import auto

    with pytest.raises(ValueError, match="lookahead"):
        _Auto(NEG, lookahead=True)
    f = lambda im: [0.0] * len(im)  # noqa: E731
    a, b = _Auto(NEG, detector=f), _Auto(NEG, detector=f, lookahead=True)
    assert (a.rise, a.min_step) == (auto.DEFAULT_RISE, auto.DEFAULT_RISE_MIN_STEP)
    assert (b.rise, b.min_step) == (auto.DEFAULT_LOOKAHEAD_RISE, auto.DEFAULT_LOOKAHEAD_MIN_STEP)
    c = _Auto(NEG)  # no detector: the signal rule and its defaults, as before
    assert c.detector is None and c.min_step == 1 and c.threshold == auto.DEFAULT_THRESHOLD


def test_dot_score_relative_ignores_the_objects_brightness():
    """The relative score separates world images with and without the dot, and dimming the whole image (as a dark
    green object decodes in early x0-predictions) leaves it nearly unchanged while the absolute score moves."""
    from negdelay.study.signals import dot_score, dot_score_relative
    from negdelay.toy import world

    scenes = [world.make_scene(s) for s in range(60)]
    images = np.stack([sc.image for sc in scenes])
    has = np.array([sc.has_dot for sc in scenes])
    rel = dot_score_relative(images)
    assert has.any() and (~has).any()
    assert rel[has].min() > 0.6 > rel[~has].max()
    dim = (images.astype(np.float64) * 0.6).round().astype(np.uint8)
    assert np.abs(dot_score_relative(dim) - rel).max() < 0.02
    assert np.abs(dot_score(dim) - dot_score(images)).max() > 0.2
