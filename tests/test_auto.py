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
