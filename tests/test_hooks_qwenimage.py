"""``negdelay.apply`` on QwenImage (true CFG: a second transformer call in ``cache_context("uncond")``).

QwenImage's text inputs have a per-prompt length: ``encoder_hidden_states`` is zero-padded to the longest prompt
of the batch and ``encoder_hidden_states_mask`` marks the real tokens (``None`` when all are real). The reference
(no hooks) wraps ``transformer.forward`` and gives the unconditional call of the chosen progress-bar steps the
inputs a stock call made for the same negative texts — including mixed rows, whose reference is the stock
encoding of the mixed list of texts, not negdelay's padding.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from tiny_families import no_change, reference
from tiny_qwen import tiny_qwenimage

import negdelay
from negdelay.pipelines import declaration_for

PROMPTS = ["a girl eating pizza", "a photo of a cat"]
NEGS = ["glasses", "a very blurry dog with glasses"]  # 6 and 11 tokens after the template
SAME = ["glasses", "blurry"]  # one token each: equal lengths, so the stock mask is None
STEPS = 5
INPUTS = ("encoder_hidden_states", "encoder_hidden_states_mask")


def run(pipe, negative_prompt=("", ""), prompt=PROMPTS, **kw):
    args = {"num_inference_steps": STEPS, "height": 32, "width": 32, "true_cfg_scale": 3.0, "output_type": "np", **kw}
    return pipe(list(prompt), negative_prompt=list(negative_prompt), generator=torch.Generator().manual_seed(0), **args).images


def captured(pipe, negative_prompt, **kw):
    """The stock unconditional pass's text inputs (the second call of step 0)."""
    with reference(pipe, "transformer", no_change) as calls:
        run(pipe, negative_prompt, output_type="latent", num_inference_steps=1, **kw)
    assert len(calls) == 2
    return {name: None if calls[1][1][name] is None else calls[1][1][name].clone() for name in INPUTS}


def swap(neg, steps):
    def change(step, index, kwargs):
        if index % 2 == 1 and steps(step):
            kwargs.update(neg)

    return change


def ref(pipe, change, **kw):
    with reference(pipe, "transformer", change) as calls:
        out = run(pipe, **kw)
    assert len(calls) == 2 * STEPS
    return out


@pytest.mark.parametrize("sched", ["flow_euler", "flow_euler_shift3"])
@pytest.mark.parametrize("k", [1, 3])
def test_equals_reference_negatives_of_different_lengths(sched, k):
    pipe = tiny_qwenimage(FlowMatchEulerDiscreteScheduler() if sched == "flow_euler" else FlowMatchEulerDiscreteScheduler(shift=3.0))
    assert declaration_for(pipe).mode == "context"
    neg = captured(pipe, NEGS)
    assert neg["encoder_hidden_states_mask"] is not None  # different lengths: padded and masked
    with negdelay.apply(pipe, NEGS, start_step=k):
        got = run(pipe)
    want = ref(pipe, swap(neg, lambda s: s >= k))
    assert np.array_equal(got, want)
    assert not np.array_equal(got, run(pipe)) and not np.array_equal(got, run(pipe, NEGS))


def test_num_images_per_prompt_2_equal_lengths_equals_stock_encoding():
    pipe = tiny_qwenimage()
    neg = captured(pipe, SAME, num_images_per_prompt=2)
    assert neg["encoder_hidden_states_mask"] is None
    with negdelay.apply(pipe, SAME, start_step=2):
        got = run(pipe, num_images_per_prompt=2)
    assert got.shape == (4, 32, 32, 3)
    assert np.array_equal(got, ref(pipe, swap(neg, lambda s: s >= 2), num_images_per_prompt=2))


def test_num_images_per_prompt_2_pairs_each_mask_with_its_row():
    """diffusers 0.42.1 interleaves the mask rows when num_images_per_prompt > 1 (tests/test_tiny_qwen.py);
    negdelay gives each image row its own negative's mask, as the stock pipeline does with one image per prompt."""
    pipe = tiny_qwenimage()
    one = captured(pipe, NEGS)
    neg = {name: t.repeat_interleave(2, 0) for name, t in one.items()}
    with negdelay.apply(pipe, NEGS, start_step=2):
        got = run(pipe, num_images_per_prompt=2)
    assert np.array_equal(got, ref(pipe, swap(neg, lambda s: s >= 2), num_images_per_prompt=2))
    stock_pairing = captured(pipe, NEGS, num_images_per_prompt=2)["encoder_hidden_states_mask"]
    assert not torch.equal(stock_pairing, neg["encoder_hidden_states_mask"])  # what negdelay does not copy


def test_per_row_starts_mix_rows_as_the_stock_encoding_of_the_mixed_texts():
    pipe = tiny_qwenimage()
    prompts = [PROMPTS[0]] * 3
    base = ["", "", ""]
    negative = "a very blurry dog with glasses"
    starts = [1, 3, 9]  # row 2 never switches
    mixed = {s: captured(pipe, [negative if s >= k else "" for k in starts], prompt=prompts) for s in range(STEPS)}

    def change(step, index, kwargs):
        if index % 2 == 1:
            kwargs.update(mixed[step])

    with negdelay.apply(pipe, negative, start_step=starts):
        got = run(pipe, base, prompt=prompts)
    assert np.array_equal(got, ref(pipe, change, negative_prompt=base, prompt=prompts))


def test_options_and_errors():
    pipe = tiny_qwenimage()
    with pytest.raises(TypeError, match=r"unknown arguments \['negative_prompt_2'\].*allowed extra negatives: \[\]"):
        negdelay.apply(pipe, "glasses", start_step=1, negative_prompt_2="x")
    neg = captured(pipe, ["glasses"] * 2, max_sequence_length=3)  # the call's truncation applies to the negative too
    assert neg["encoder_hidden_states"].shape[1] == 3
    with negdelay.apply(pipe, "glasses", start_step=2):  # the call's max_sequence_length, read from the call
        got = run(pipe, max_sequence_length=3)
    assert np.array_equal(got, ref(pipe, swap(neg, lambda s: s >= 2), max_sequence_length=3))
    with negdelay.apply(pipe, "glasses", start_step=2):
        with pytest.warns(UserWarning, match="ran no unconditional pass"):
            out = pipe(PROMPTS, generator=torch.Generator().manual_seed(0), num_inference_steps=STEPS, height=32, width=32, output_type="np").images
    assert out.shape == (2, 32, 32, 3)


def test_negative_shorter_than_the_pipelines_own_unconditional_text():
    """The pipeline's own negative_prompt is longer than the delayed one: from the switch the inputs are exactly the
    stock encoding of the delayed negative (no leftover padding columns, mask None)."""
    pipe = tiny_qwenimage()
    own = ["a very blurry dog with glasses"] * 2
    neg = captured(pipe, ["glasses"] * 2)
    assert neg["encoder_hidden_states"].shape[1] == 6 and neg["encoder_hidden_states_mask"] is None
    with negdelay.apply(pipe, "glasses", start_step=2):
        got = run(pipe, own)
    assert np.array_equal(got, ref(pipe, swap(neg, lambda s: s >= 2), negative_prompt=own))


def test_for_pipeline_points_to_apply():
    from negdelay import DelayedNegative

    with pytest.raises(TypeError, match=r"QwenImagePipeline is not supported by a delayed-negative callback.*negdelay\.apply"):
        DelayedNegative.for_pipeline(tiny_qwenimage(), "glasses", start_step=2)
