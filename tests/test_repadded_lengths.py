"""Pipelines that pad prompt and negative token rows to one width (a declaration's ``pad``: Ernie-Image, DreamLite,
JoyImage Edit Plus, Bria Fibo and Fibo Edit). The contract proves them against its reference, with cases where the
delayed negative is longer than the prompts and (Ernie-Image) shorter than the pipeline's own negative
(tests/builders/ernie_image.py, dreamlite.py, joyimage.py, bria_fibo.py). Here: the pad rules on small tensors, a
stock call that passes no mask at all (Bria Fibo leaves it out when nothing is padded), and per-row schedules that
put rows of different widths into one unconditional block."""

from __future__ import annotations

import pytest
import torch

import negdelay
from contract_cases import call, case
from contract_reference import watch
from negdelay.pipelines.padding import blocks_by_mask, merge_blocks, merge_rows, rows_by_length, rows_by_mask


def test_rows_by_length_pads_every_row_to_the_longest_real_row():
    pad = rows_by_length("t", "n")
    a = {"t": torch.arange(1.0, 13.0).reshape(2, 3, 2), "n": torch.tensor([3, 1])}
    b = {"t": torch.ones(1, 5, 2), "n": torch.tensor([2])}  # padded wider than its real length
    out = pad([a, b])
    assert out["t"].shape == (3, 3, 2) and out["n"].tolist() == [3, 1, 2]
    assert torch.equal(out["t"][0], a["t"][0]) and torch.equal(out["t"][1, :1], a["t"][1, :1])
    assert not out["t"][1, 1:].any() and not out["t"][2, 2:].any()  # zeros past each row's length
    assert torch.equal(out["t"][2, :2], torch.ones(2, 2))


def test_rows_by_mask_fills_with_the_pad_vector_and_the_merge_keeps_per_row_sources():
    fill = torch.tensor([7.0, 8.0])
    pad = rows_by_mask("t", "m", fill=lambda call: fill)
    own = {"t": torch.randn(2, 4, 2), "m": torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])}
    negative = {"t": torch.randn(1, 2, 2), "m": torch.tensor([[1, 1]])}
    out = pad([own, negative], call=object())
    assert out["t"].shape == (3, 4, 2) and out["m"].sum(1).tolist() == [4, 2, 2]
    assert torch.equal(out["t"][1, 2:], fill.expand(2, 2)) and torch.equal(out["t"][2, :2], negative["t"][0])
    merged = merge_rows(pad)(own, negative, (None, 0))  # row 0 own (4 tokens), row 1 the negative (2)
    assert torch.equal(merged["t"][0], own["t"][0]) and torch.equal(merged["t"][1, :2], negative["t"][0])
    assert merged["m"].sum(1).tolist() == [4, 2]


def test_blocks_by_mask_keeps_each_block_as_encoded_and_zero_pads_the_blocks():
    pad = blocks_by_mask("t", "m")
    # block 0 encoded 3 wide (its second row padded within the block: states kept), then zero-padded to 5
    neg = {"t": torch.randn(2, 5, 2), "m": torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])}
    prompt = {"t": torch.randn(2, 4, 2), "m": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 1]])}
    out = pad([neg, prompt])
    assert out["t"].shape == (4, 4, 2)  # the widest block's own width, not the 5 the pipeline had padded to
    assert torch.equal(out["t"][:2, :3], neg["t"][:, :3]) and not out["t"][:2, 3:].any()
    assert torch.equal(out["t"][2:], prompt["t"]) and out["m"][:2].sum(1).tolist() == [3, 1]
    merged = merge_blocks("t", "m")(neg, prompt, (0, None))  # rows of two sources: zero-padded to the wider
    assert merged["t"].shape == (2, 5, 2) and torch.equal(merged["t"][1, :4], neg["t"][1, :4])


def test_bria_fibo_call_without_mask_gets_the_mask_stock_passes_for_the_negative():
    """Prompts and the pipeline's own negatives of one length: the stock call passes no joint mask; a delayed
    negative of another length needs one (and other txt_ids): from the start step the transformer gets exactly the
    inputs of a stock run with that negative."""
    c = case("BriaFiboPipeline")
    own = ["a blue dog", "a red cat"]
    names = ("encoder_hidden_states", "text_encoder_layers", "txt_ids")
    for negative in (["blurry hat", "ugly dog"], ["ugly blurry photo of the dog with extra fingers", "bad hands"]):
        stock_b = {}

        def grab(step, model, slot, kwargs):
            if step == 0:
                stock_b.update({n: kwargs[n] for n in names}, joint=dict(kwargs["joint_attention_kwargs"] or {}))

        with watch(c.pipe) as calls:
            call(c, negative=own)
        assert "joint_attention_kwargs.attention_mask" not in calls[0][3]
        with watch(c.pipe, grab):
            call(c, negative=negative)
        assert "attention_mask" in stock_b["joint"]

        def stock_inputs_from_step_1(step, model, slot, kwargs):
            if step >= 1:
                kwargs.update({n: stock_b[n] for n in names}, joint_attention_kwargs=stock_b["joint"])

        with watch(c.pipe, stock_inputs_from_step_1):
            want = call(c, negative=own)
        with negdelay.apply(c.pipe, negative, start_step=1):
            assert torch.equal(call(c, negative=own), want)


@pytest.mark.parametrize("name", ["ErnieImagePipeline[longer negative]", "JoyImageEditPlusPipeline[longer negative]",
                                  "BriaFiboPipeline[longer negative]", "DreamLitePipeline[longer negative]"])
def test_rows_of_different_widths_in_one_unconditional_block(name):
    """Per-row starts put the pipeline's own negative and the (longer) delayed one side by side in one block."""
    c = case(name)
    negatives = c.negatives()
    # one start per prompt (per image row where the pipeline takes one prompt): the first early, the second never
    starts = [1, c.steps] if isinstance(negatives, list) or c.images_arg else None
    assert starts is not None, f"{name}: one row per call, nothing to mix"
    stock = call(c)
    with negdelay.apply(c.pipe, negatives, start_step=starts):
        mixed = call(c)
    with negdelay.apply(c.pipe, negatives, start_step=1):
        early = call(c)
    assert not torch.equal(mixed, stock) and not torch.equal(mixed, early)
    rows = mixed.shape[0] // 2  # the first prompt's rows (or image row) took the negative from step 1: as in early
    assert not torch.equal(mixed[:rows], stock[:rows])


@pytest.mark.parametrize("name", ["ErnieImagePipeline[shorter negative]", "BriaFiboPipeline[shorter negative]"])
def test_no_cfg_throughout_is_the_stock_call_without_guidance(name):
    """``before="no_cfg"`` and no start: every unconditional row takes the conditional text, and the call is re-padded
    to the prompts' own width (the pipeline's own negative, longer, no longer widens it): the output is the stock
    pipeline's without guidance, bit for bit."""
    c = case(name)
    with negdelay.apply(c.pipe, c.negatives(), start_step=c.steps, before="no_cfg"):
        got = call(c)
    assert torch.equal(got, call(c, guidance_scale=1.0))
