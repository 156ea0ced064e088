"""Wrapper pipelines (a declaration's ``parts``: Kandinsky's and Stable Cascade's combined pipelines) and the
Kandinsky priors beyond the contract: ``apply`` on a wrapper applies to its parts and ``remove`` undoes them; a part
that refuses leaves nothing applied; a part re-applied directly is not the wrapper's to remove; a prior called
without a negative_prompt keeps its zero-image negative embedding."""

from __future__ import annotations

import pytest
import torch

import negdelay
from contract_cases import call, case

KANDINSKY = "KandinskyCombinedPipeline"
CASCADE = "StableCascadeCombinedPipeline"


def test_apply_on_a_wrapper_applies_to_its_parts_and_remove_undoes_them():
    c = case(CASCADE)
    stock = call(c)
    handle = negdelay.apply(c.pipe, c.negatives(), start_step=1)
    try:
        assert set(handle.parts) == {"prior_pipe", "decoder_pipe"}
        assert negdelay.hooks.is_applied(c.pipe.prior_pipe) and negdelay.hooks.is_applied(c.pipe.decoder_pipe)
        delayed = call(c)
        assert not torch.equal(delayed, stock)
        assert set(handle.last_plan) == {"prior_pipe", "decoder_pipe"}
        again = negdelay.apply(c.pipe, c.negatives(), start_step=1)  # idempotent: replaces the first
        assert torch.equal(call(c), delayed) and again is not handle
    finally:
        negdelay.remove(c.pipe)
    assert not negdelay.hooks.is_applied(c.pipe.prior_pipe) and not negdelay.hooks.is_applied(c.pipe.decoder_pipe)
    assert "check_inputs" not in c.pipe.decoder_pipe.__dict__
    assert torch.equal(call(c), stock)


def test_a_part_that_refuses_leaves_nothing_applied():
    c = case(CASCADE)
    parts = (c.pipe, c.pipe.prior_pipe, c.pipe.decoder_pipe)
    with pytest.raises(TypeError, match="negative_prompt_2"):
        negdelay.apply(c.pipe, c.negatives(), start_step=1, negative_prompt_2="hat")
    assert not any(negdelay.hooks.is_applied(p) for p in parts)
    c.pipe.decoder_pipe.check_inputs = None  # the second part cannot be applied: the first is taken back
    try:
        with pytest.raises(TypeError, match="check_inputs"):
            negdelay.apply(c.pipe, c.negatives(), start_step=1)
    finally:
        del c.pipe.decoder_pipe.check_inputs
    assert not any(negdelay.hooks.is_applied(p) for p in parts)
    assert "encode_prompt" not in c.pipe.prior_pipe.__dict__


def test_a_part_applied_directly_is_not_removed_with_the_wrapper():
    c = case(KANDINSKY)
    negdelay.apply(c.pipe, c.negatives(), start_step=1)
    mine = negdelay.apply(c.pipe.prior_pipe, c.negatives(), start_step=2)
    try:
        negdelay.remove(c.pipe)
        assert not negdelay.hooks.is_applied(c.pipe)
        assert c.pipe.prior_pipe.__dict__.get("_negdelay_applied") is mine
    finally:
        negdelay.remove(c.pipe.prior_pipe)


@pytest.mark.parametrize("name", ["KandinskyPriorPipeline", "KandinskyV22PriorPipeline"])
def test_a_prior_without_negative_prompt_keeps_its_zero_image_embedding(name):
    c = case(name)
    rows = 2 * len(c.prompts)  # two images per prompt; the output is image_embeds then negative_image_embeds
    stock = call(c, negative_prompt=None)
    with negdelay.apply(c.pipe, c.negatives(), start_step=1):
        delayed = call(c, negative_prompt=None)
    with negdelay.apply(c.pipe, c.negatives(), start_step=c.steps):
        assert torch.equal(call(c, negative_prompt=None), stock)
    assert not torch.equal(delayed[:rows], stock[:rows])  # the prompts' image embeddings follow the negative
    assert torch.equal(delayed[rows:], stock[rows:])  # the zero-image embedding does not


def test_with_a_negative_prompt_the_negative_image_embedding_follows_the_delayed_negative():
    c = case("KandinskyV22PriorPipeline")
    rows = 2 * len(c.prompts)
    stock = call(c)
    with negdelay.apply(c.pipe, c.negatives(), start_step=1):
        delayed = call(c)
    assert not torch.equal(delayed[:rows], stock[:rows]) and not torch.equal(delayed[rows:], stock[rows:])


def test_a_prior_refuses_no_cfg_with_a_negative_prompt():
    c = case("KandinskyPriorPipeline")
    with negdelay.apply(c.pipe, c.negatives(), start_step=2, before="no_cfg"):
        with pytest.raises(ValueError, match="no_cfg"):
            call(c)


TEXT = ("proj_embedding", "encoder_hidden_states", "attention_mask")


def negative_rows(c) -> dict:
    """The negatives' rows of the prior's text inputs, as its ``_encode_prompt`` makes them: the conditional rows of a
    stock call given the negatives as prompts (the same tokenizer, encoder and batch as a negative_prompt's)."""
    from contract_reference import watch

    seen = {}

    def keep(step, model, slot, kwargs):
        seen.update({name: kwargs[name][kwargs[name].shape[0] // 2 :] for name in TEXT})

    with watch(c.pipe, keep):
        call(c, prompt=c.negatives(), negative_prompt=None)
    return seen


def test_a_prior_without_negative_prompt_runs_no_cfg_before_the_start():
    """The reference: before step k the unconditional rows of the three text inputs take the conditional rows, from
    step k on the negatives' rows."""
    from contract_reference import watch

    c = case("KandinskyPriorPipeline")
    k, negative = 2, negative_rows(c)

    def change(step, model, slot, kwargs):
        for name in TEXT:
            conditional = kwargs[name][kwargs[name].shape[0] // 2 :]
            kwargs[name] = torch.cat([conditional if step < k else negative[name], conditional])

    with watch(c.pipe, change):
        want = call(c, negative_prompt=None)
    with negdelay.apply(c.pipe, c.negatives(), start_step=k, before="no_cfg"):
        got = call(c, negative_prompt=None)
    assert torch.equal(got, want)
    assert not torch.equal(got, call(c, negative_prompt=None))


def test_embedding_to_embedding_fractions_are_of_the_steps_that_run():
    """5 steps at strength 0.8 run 4: a fraction 0.6 is step int(0.6 * 4) = 2 (not int(0.6 * 5) = 3)."""
    c = case("KandinskyV22PriorEmb2EmbPipeline")
    with negdelay.apply(c.pipe, c.negatives(), start_step=2):
        at_two = call(c)
    with negdelay.apply(c.pipe, c.negatives(), start_step=3):
        at_three = call(c)
    with negdelay.apply(c.pipe, c.negatives(), start_fraction=0.6):
        assert torch.equal(call(c), at_two) and not torch.equal(at_two, at_three)
