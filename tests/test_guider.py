"""negdelay.guider beyond the per-class contract: the wrapper, the guiders it wraps (CFG, APG, CFG-Zero*, TCFG), the
schedule keywords, bad input, apply/remove, the table. Mostly on the tiny modular Wan (the fastest case)."""

from __future__ import annotations

import pytest
import torch
from diffusers.guiders import (
    AdaptiveProjectedGuidance,
    ClassifierFreeGuidance,
    ClassifierFreeZeroStarGuidance,
    TangentialClassifierFreeGuidance,
)

import builders_modular as bm
import modular_reference as ref
from negdelay import guider as G

same = ref._same


@pytest.fixture
def wan():
    return bm.wan()


def delayed(case, negative=None, **schedule):
    with G.apply(case.pipe, case.negative if negative is None else negative, **schedule):
        return case.run()


# -- the wrapper ---------------------------------------------------------------------------------------------


def test_wrapper_is_the_guider_it_wraps():
    plain = ClassifierFreeGuidance(guidance_scale=3.0, start=0.1, stop=0.9)
    state = dict(vars(plain))
    wrapped = G.DelayedNegativeGuidance(plain, "blurry", start_step=2)
    assert isinstance(wrapped, ClassifierFreeGuidance) and isinstance(wrapped, G.DelayedNegativeGuidance)
    assert dict(wrapped.config) == dict(plain.config) and wrapped.guidance_scale == 3.0
    assert vars(plain) == state  # the original is not changed
    assert wrapped.negative_prompt == "blurry"
    other = wrapped.new(guidance_scale=4.0)
    assert isinstance(other, G.DelayedNegativeGuidance) and other.guidance_scale == 4.0 and other.config.stop == 0.9
    with pytest.raises(TypeError, match="DelayedNegativeGuidance\\(guider"):
        type(wrapped).from_config(wrapped.config)


def test_a_copy_of_an_installed_wrapper_shares_the_pipeline(wan):
    import copy

    with G.apply(wan.pipe, "blurry", start_step=1) as handle:
        clone = copy.deepcopy(wan.pipe.guider)
        assert isinstance(clone, ClassifierFreeGuidance) and clone._negdelay.handle is handle
        assert clone.guidance_scale == wan.pipe.guider.guidance_scale


def test_wrapper_refuses_a_guider_without_unconditional_branch():
    class CondOnly(ClassifierFreeGuidance):
        _input_predictions = ["pred_cond"]

    with pytest.raises(TypeError, match="no unconditional branch"):
        G.DelayedNegativeGuidance(CondOnly(), "blurry", start_step=1)
    with pytest.raises(TypeError, match="no unconditional branch"):
        G.DelayedNegativeGuidance(object(), "blurry", start_step=1)
    with pytest.raises(ValueError, match="already delays"):
        G.DelayedNegativeGuidance(G.DelayedNegativeGuidance(ClassifierFreeGuidance(), "a", start_step=1), "b", start_step=1)


@pytest.mark.parametrize("kwargs, error, match", [
    ({}, ValueError, "give exactly one of start_step"),
    ({"start_step": 1, "start_fraction": 0.5}, ValueError, "give exactly one"),
    ({"start_step": [1, 2]}, ValueError, "one schedule to every row"),
    ({"start_step": 3, "stop_step": 2}, ValueError, "stop_step must be after start_step"),
    ({"start_step": -1}, ValueError, ">= 0"),
    ({"start_fraction": 1.5}, ValueError, r"fraction in \[0, 1\]"),
    ({"start": 1}, TypeError, "unknown schedule keyword"),
])
def test_schedule_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        G.DelayedNegativeGuidance(ClassifierFreeGuidance(), "blurry", **kwargs)


@pytest.mark.parametrize("negative", [None, 3, [], ["a", 2]])
def test_negative_must_be_text(negative):
    with pytest.raises(TypeError, match="negative_prompt must be a str"):
        G.DelayedNegativeGuidance(ClassifierFreeGuidance(), negative, start_step=1)


def test_a_wrapper_installed_by_hand_says_to_use_apply(wan):
    wan.pipe.update_components(guider=G.DelayedNegativeGuidance(ClassifierFreeGuidance(5.0), "blurry", start_step=1))
    with pytest.raises(RuntimeError, match="negdelay.guider.apply"):
        wan.run()


# -- apply / remove ------------------------------------------------------------------------------------------


def test_apply_refuses_what_it_cannot_serve(wan):
    from tiny import tiny_sd

    classic = tiny_sd()
    assert not G.supports(classic)
    with pytest.raises(ValueError, match="not a diffusers ModularPipeline"):
        G.apply(classic, "blurry", start_step=1)
    refused = bm.flux2_klein_base().pipe  # without its text step nothing makes unconditional text inputs
    refused._blocks.sub_blocks.pop("text_encoder")
    assert not G.supports(refused)
    with pytest.raises(ValueError, match="takes no negative_prompt"):
        G.apply(refused, "blurry", start_step=1)
    wan.pipe.update_components(guider=None)
    assert not G.supports(wan.pipe)
    with pytest.raises(ValueError, match="has no guider component"):
        G.apply(wan.pipe, "blurry", start_step=1)


def test_apply_twice_context_manager_and_exceptions(wan):
    own = wan.pipe.guider
    with G.apply(wan.pipe, "blurry", start_step=1) as handle:
        assert G.is_applied(wan.pipe) and wan.pipe.guider is handle.guiders["guider"]
        with pytest.raises(ValueError, match="already applied"):
            G.apply(wan.pipe, "blurry", start_step=1)
        assert type(wan.pipe.blocks).__name__ == "WanBlocks"  # a copy of the plain blocks
    assert not G.is_applied(wan.pipe) and wan.pipe.guider is own
    with pytest.raises(ZeroDivisionError):
        with G.apply(wan.pipe, "blurry", start_step=1):
            1 / 0
    assert not G.is_applied(wan.pipe) and wan.pipe.guider is own
    with pytest.raises(ValueError, match="no delayed negative is applied"):
        G.remove(wan.pipe)


def test_one_handle_serves_calls_of_different_shapes(wan):
    """The negative is encoded per call: a second call with one prompt gets a one-row negative."""
    with_negative_2 = wan.run(negative_prompt=wan.negative)
    with_negative_1 = wan.run(prompt=bm.PROMPTS[0], negative_prompt="blurry hat")
    with G.apply(wan.pipe, "blurry hat", start_step=0):
        assert same(wan.run(prompt=bm.PROMPTS[0]), with_negative_1)
    with G.apply(wan.pipe, wan.negative, start_step=0) as handle:
        assert same(wan.run(), with_negative_2)
        assert same(wan.run(), with_negative_2)
        assert handle.delay.negative_prompt == bm.NEGATIVES  # not edited by the pipeline


def test_the_side_run_leaves_the_generator_alone(wan):
    generator = torch.Generator().manual_seed(0)
    wan.pipe(prompt=bm.PROMPTS, num_inference_steps=4, generator=generator, output="latents", **wan.call)
    stock_state = generator.get_state()
    generator = torch.Generator().manual_seed(0)
    with G.apply(wan.pipe, wan.negative, start_step=1):
        wan.pipe(prompt=bm.PROMPTS, num_inference_steps=4, generator=generator, output="latents", **wan.call)
    assert torch.equal(generator.get_state(), stock_state)


def test_lists_given_to_the_pipeline_are_not_edited_by_the_side_run():
    """Z-Image's text step writes the templated prompts into the list it is given: the side run works on copies."""
    case = bm.z_image()
    negative = list(case.negative)
    with G.apply(case.pipe, negative, start_step=1):
        case.run()
    assert negative == case.negative


# -- the guiders it wraps ------------------------------------------------------------------------------------

GUIDERS = {
    "cfg": lambda: ClassifierFreeGuidance(guidance_scale=5.0),
    "cfg_rescale_original": lambda: ClassifierFreeGuidance(guidance_scale=4.0, guidance_rescale=0.5,
                                                           use_original_formulation=True),
    # momentum: the buffer keeps running across the switch, exactly as in the reference (stock APG whose
    # unconditional prediction changes at step k); APG itself resets it at step 0 of each run
    "apg_momentum": lambda: AdaptiveProjectedGuidance(guidance_scale=5.0, adaptive_projected_guidance_momentum=-0.5,
                                                      adaptive_projected_guidance_rescale=10.0),
    # zero-init steps: the output of steps < zero_init_steps is zero whatever the negative (unchanged)
    "cfg_zero_star": lambda: ClassifierFreeZeroStarGuidance(guidance_scale=5.0, zero_init_steps=1),
    "tcfg": lambda: TangentialClassifierFreeGuidance(guidance_scale=5.0),
}


@pytest.mark.parametrize("name", sorted(GUIDERS))
@pytest.mark.parametrize("k", [1, 3])
def test_each_guider_wrapped_equals_the_reference(wan, name, k):
    wan.pipe.update_components(guider=GUIDERS[name]())
    stock, negative, reference = ref.reference_output(wan, k)
    out = delayed(wan, start_step=k)
    assert same(out, reference)
    assert not same(out, stock)
    hidden = getattr(wan.pipe.guider, "zero_init_steps", 0)  # CFG-Zero*: a switch inside the zero-init steps is unseen
    assert same(out, negative) == (k <= hidden)
    assert same(delayed(wan, start_step=4), stock)
    assert type(wan.pipe.guider).__name__ == type(GUIDERS[name]()).__name__  # restored


def test_cfg_zero_star_zero_init_steps_are_untouched(wan):
    """With zero_init_steps=2 the output of steps 0 and 1 is zero whatever the unconditional branch sees: a start at
    step 0, 1 or 2 gives the same image (the reference's, too), and a window inside those steps changes nothing."""
    wan.pipe.update_components(guider=ClassifierFreeZeroStarGuidance(guidance_scale=5.0, zero_init_steps=2))
    stock, negative, reference = ref.reference_output(wan, 1)
    at_2 = delayed(wan, start_step=2)
    assert same(delayed(wan, start_step=1), reference) and same(reference, at_2) and same(at_2, negative)
    assert same(delayed(wan, start_step=0, stop_step=2), stock)
    assert wan.pipe.guider.zero_init_steps == 2


def test_the_wrapped_guiders_own_window_decides_when_there_is_an_unconditional_branch(wan):
    """CFG with start=0.5 runs no unconditional pass at steps 0-1: a negative from step 1 acts from step 2."""
    wan.pipe.update_components(guider=ClassifierFreeGuidance(guidance_scale=5.0, start=0.5))
    stock, negative, reference = ref.reference_output(wan, 1)
    out = delayed(wan, start_step=1)
    assert same(out, reference) and same(out, delayed(wan, start_step=2)) and same(out, negative)
    assert not same(out, stock)


@pytest.mark.parametrize("guider", [ClassifierFreeGuidance(guidance_scale=1.0), ClassifierFreeGuidance(enabled=False)])
def test_guidance_off_is_a_documented_no_op(guider):
    """No unconditional branch (scale 1, disabled): nothing to delay, the stock output. (On Z-Image, whose turbo
    checkpoint runs so: the modular Wan and LTX steps fail without guidance in diffusers 0.42.1.)"""
    case = bm.z_image()
    case.pipe.update_components(guider=guider)
    stock = case.run()
    assert same(delayed(case, start_step=0), stock) and same(delayed(case, start_step=2), stock)


def test_a_call_without_unconditional_text_of_its_own_is_refused():
    """SD3's modular text step makes no negative embeddings without a negative_prompt: its unconditional pass runs on
    the prompt's own inputs, and there is nothing a delayed negative could stand in for."""
    case = bm.sd3()
    case.call.pop("negative_prompt")
    with pytest.raises(RuntimeError, match="no unconditional text inputs of its own"):
        delayed(case, start_step=1)


# -- schedule keywords ---------------------------------------------------------------------------------------


def test_stop_fraction_and_sigma(wan):
    stock, negative, window = ref.reference_output(wan, 1, stop=3)
    assert same(delayed(wan, start_step=1, stop_step=3), window)
    assert same(delayed(wan, start_fraction=0.25, stop_fraction=0.75), window)
    at_2 = delayed(wan, start_step=2)
    assert same(delayed(wan, start_fraction=0.5), at_2) and same(delayed(wan, start_fraction=0.6), at_2)
    wan.pipe.scheduler.set_timesteps(4)
    sigma_2 = float(wan.pipe.scheduler.sigmas[2])
    assert same(delayed(wan, start_sigma=sigma_2), at_2)  # equal noise level: that step
    assert same(delayed(wan, start_sigma=(sigma_2 + float(wan.pipe.scheduler.sigmas[1])) / 2), at_2)
    assert same(delayed(wan, start_sigma=1e-6), stock)  # no step that low: never
    assert same(delayed(wan, start_fraction=0.0), negative)


def test_qwenimage21_refills_its_unconditional_kv_cache_at_start_and_stop():
    """Qwen-Image 2.1 caches the unconditional text's keys/values at step 0: the switch back at the stop step refills
    the cache with the pipeline's own negative, as the switch at the start did with the delayed one. Two calls of
    one handle: each call's loop keeps its own caches."""
    case = bm.qwenimage21()
    stock, negative, window = ref.reference_output(case, 1, stop=3)
    with G.apply(case.pipe, case.negative, start_step=1, stop_step=3):
        first, second = case.run(), case.run()
    assert same(first, window) and same(second, window) and not same(window, stock)
    # with the cache off the loop reads the text at every step: nothing to refill, the same reference
    case.call["use_kv_cache"] = False
    _, _, uncached_window = ref.reference_output(case, 1, stop=3)
    with G.apply(case.pipe, case.negative, start_step=1, stop_step=3):
        assert same(case.run(), uncached_window)


def test_a_run_restarts_with_the_loop(wan):
    """Each pass of a denoising loop is a run: a second call of the same handle starts from step 0 again."""
    with G.apply(wan.pipe, wan.negative, start_step=2):
        first, second = wan.run(), wan.run()
    assert same(first, second)


# -- shapes --------------------------------------------------------------------------------------------------


def test_a_negative_that_cannot_stand_in_names_both_shapes():
    fits = G._check_stands_in
    fits("encoder_hidden_states", "negative_prompt_embeds", torch.zeros(4, 20, 8), torch.zeros(4, 12, 8))  # length: ok
    with pytest.raises(ValueError, match=r"\(2, 12, 8\).*\(4, 12, 8\)"):
        fits("encoder_hidden_states", "negative_prompt_embeds", torch.zeros(2, 12, 8), torch.zeros(4, 12, 8))
    with pytest.raises(ValueError, match=r"\(4, 12\).*\(4, 12, 8\)"):
        fits("encoder_hidden_states", "negative_prompt_embeds", torch.zeros(4, 12), torch.zeros(4, 12, 8))
    with pytest.raises(ValueError, match="cannot stand in"):
        fits("cap_feats", "negative_prompt_embeds", [torch.zeros(3, 8)], [torch.zeros(5, 8), torch.zeros(5, 8)])


# -- the table -----------------------------------------------------------------------------------------------


def test_modular_table_has_one_row_per_class():
    import diffusers.modular_pipelines as mp

    rows = G.modular_table()
    names = [r["class"] for r in rows]
    assert names == sorted(n for n in dir(mp) if n.endswith("ModularPipeline") and n != "ModularPipeline")
    assert len(rows) == 40
    for row in rows:
        assert set(row) == {"class", "entry", "mode", "status", "reason"}
        assert row["entry"] == row["mode"] == "guider"
        served = row["class"] in G.SERVED
        assert row["status"] == ("served" if served else "not served")
        assert (row["reason"] == "") == served and "\n" not in row["reason"]


def test_docs_table_matches_modular_table():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "modular.md").read_text()
    rows = dict(re.findall(r"^\| (\w+ModularPipeline) \| (served|not served) \|", text, flags=re.M))
    assert rows == {r["class"]: r["status"] for r in G.modular_table()}


def test_negdelay_apply_serves_modular_pipelines_through_the_guider(wan):
    """The one entry point: negdelay.apply / is_applied / remove on a modular pipeline are the guider's."""
    import negdelay

    want = delayed(wan, start_step=1)
    stock = wan.run()
    with negdelay.apply(wan.pipe, wan.negative, start_step=1):
        assert negdelay.is_applied(wan.pipe) and negdelay.hooks.supports(wan.pipe)
        got = wan.run()
    assert not negdelay.is_applied(wan.pipe)
    assert torch.equal(got, want) and not torch.equal(got, stock)
    assert torch.equal(wan.run(), stock)


# -- a pipeline without a negative_prompt input (Flux 2 Klein base: its unconditional text is always "") ----------


@pytest.fixture(scope="module")
def klein():
    return bm.flux2_klein_base()


def test_klein_single_negative_is_every_prompts_and_a_wrong_count_is_refused(klein):
    assert "negative_prompt" not in {p.name for p in klein.pipe._blocks.inputs} and G.supports(klein.pipe)
    one = delayed(klein, "blurry hat", start_step=1)
    # the reference: the unconditional calls from step 1 get the conditional inputs of a run prompted by the negative
    with ref.recording(klein) as own:
        stock = klein.run()
    with ref.recording(klein) as neg:
        klein.run(prompt=["blurry hat", "blurry hat"])
    keys = ref.text_keys(own, neg, source_role=0)
    with ref.recording(klein, ref.substituted(neg, keys, 1, source_role=0)):
        reference = klein.run()
    assert same(one, reference) and not same(one, stock)
    with pytest.raises(ValueError, match="3 texts for 2 prompt"):
        delayed(klein, ["a", "b", "c"], start_step=1)


def test_klein_guidance_off_runs_no_unconditional_pass(klein):
    own = klein.pipe.guider
    klein.pipe.update_components(guider=ClassifierFreeGuidance(guidance_scale=1.0))
    try:
        stock = klein.run()
        assert same(delayed(klein, start_step=1), stock)  # a documented no-op: no unconditional pass to change
    finally:
        klein.pipe.update_components(guider=own)
