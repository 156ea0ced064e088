"""The tiny QwenImage pipeline built in code: offline tokenizer, determinism, true CFG's separate uncond pass."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from tiny_qwen import TEMPLATE, TEMPLATE_PREFIX_TOKENS, WORDS, make_qwen_tokenizer, tiny_qwenimage

PROMPTS = ["a girl eating pizza", "a photo of a cat"]


def _kw(**over):
    kw = dict(
        negative_prompt=["", ""], true_cfg_scale=3.0, num_inference_steps=4, height=32, width=32,
        generator=torch.Generator().manual_seed(0), output_type="np", num_images_per_prompt=2,
    )
    kw.update(over)
    return kw


@pytest.fixture(scope="module")
def pipe():
    return tiny_qwenimage()


@contextlib.contextmanager
def recorded_calls(pipe):
    """Record each transformer call: the cache context it ran in (from the pipeline's own cache_context)."""
    transformer = pipe.transformer
    state = {"context": None}
    calls = []
    cache_context, forward = transformer.cache_context, transformer.forward

    @contextlib.contextmanager
    def tracking(name, **kw):
        outer, state["context"] = state["context"], name
        try:
            with cache_context(name, **kw):
                yield
        finally:
            state["context"] = outer

    def recording(*args, **kw):
        calls.append({"context": state["context"], "ehs": kw["encoder_hidden_states"],
                      "mask": kw.get("encoder_hidden_states_mask")})
        return forward(*args, **kw)

    transformer.cache_context, transformer.forward = tracking, recording
    try:
        yield calls
    finally:
        del transformer.cache_context, transformer.forward


def test_tokenizer_matches_the_template_the_pipeline_drops(pipe):
    tok = pipe.tokenizer
    assert pipe.prompt_template_encode == TEMPLATE
    prefix = TEMPLATE.split("{}")[0]
    assert len(tok(prefix).input_ids) == TEMPLATE_PREFIX_TOKENS == pipe.prompt_template_encode_start_idx
    ids = tok(TEMPLATE.format("a very blurry dog with glasses")).input_ids
    tokens = tok.convert_ids_to_tokens(ids[TEMPLATE_PREFIX_TOKENS:])
    assert tokens == ["a", "Ġvery", "Ġblurry", "Ġdog", "Ġwith", "Ġglasses",
                      "<|im_end|>", "Ċ", "<|im_start|>", "assistant", "Ċ"]
    for word in WORDS:  # each known word is one token, with or without the leading space
        assert len(tok(word).input_ids) == 1 and len(tok(" " + word).input_ids) == 1, word
    assert tok.decode(tok("Zebra, 42!").input_ids) == "Zebra, 42!"  # unknown text falls back to bytes
    assert make_qwen_tokenizer().get_vocab() == tok.get_vocab()  # built the same way every time


def test_encoded_prompts_keep_their_tokens_and_the_template_tail(pipe):
    assert all(not m.training for m in (pipe.text_encoder, pipe.transformer, pipe.vae))
    with torch.no_grad():
        embeds, mask = pipe.encode_prompt(["", "glasses", "a very blurry dog with glasses"], device="cpu")
    assert embeds.shape == (3, 11, 32)  # 5 template tokens after the prompt, + 0 / 1 / 6 prompt tokens
    assert mask.sum(1).tolist() == [5, 6, 11]
    assert torch.isfinite(embeds).all() and not torch.equal(embeds[0, :5], embeds[1, :5])


def test_runs_and_is_deterministic(pipe):
    first = pipe(PROMPTS, **_kw()).images
    second = pipe(PROMPTS, **_kw()).images
    assert first.shape == (4, 32, 32, 3) and first.dtype == np.float32
    assert np.isfinite(first).all() and first.std() > 0
    assert np.array_equal(first, second)
    assert not np.array_equal(first[0], first[1])  # two images per prompt from different noise


def test_negative_prompt_changes_the_image(pipe):
    empty = pipe(PROMPTS, **_kw()).images
    glasses = pipe(PROMPTS, **_kw(negative_prompt=["glasses", "glasses"])).images
    assert not np.array_equal(empty, glasses)
    assert np.abs(empty - glasses).max() > 1e-3


def test_true_cfg_runs_a_separate_uncond_pass_in_its_cache_context(pipe):
    with recorded_calls(pipe) as calls:
        pipe(PROMPTS, **_kw())
    assert [c["context"] for c in calls] == ["cond", "uncond"] * 4
    assert all(c["ehs"].shape[0] == 4 for c in calls)
    with recorded_calls(pipe) as calls:
        pipe(PROMPTS, **_kw(true_cfg_scale=1.0))  # no CFG: one call per step
    assert [c["context"] for c in calls] == ["cond"] * 4


def test_negative_prompts_of_different_token_lengths(pipe):
    negatives = ["glasses", "a very blurry dog with glasses"]
    with recorded_calls(pipe) as calls:
        images = pipe(PROMPTS, **_kw(negative_prompt=negatives)).images
    assert images.shape == (4, 32, 32, 3) and np.isfinite(images).all()
    uncond = calls[1]
    assert uncond["context"] == "uncond"
    assert uncond["ehs"].shape == (4, 11, 32)  # rows repeat per image: glasses, glasses, long, long
    assert (uncond["ehs"].abs().sum(-1) > 0).sum(1).tolist() == [6, 6, 11, 11]
    with torch.no_grad():  # as inside a pipeline call
        expected, _ = pipe.encode_prompt(negatives, device="cpu", num_images_per_prompt=2)
    assert torch.equal(uncond["ehs"], expected)


def test_diffusers_0_42_pairs_masks_with_the_wrong_rows_when_num_images_per_prompt_gt_1(pipe):
    """A fact of diffusers 0.42.1 that a QwenImage adapter reproducing the stock encoding must know.

    ``encode_prompt`` expands the embeddings per prompt ([p0, p0, p1, p1]) but the mask with
    ``repeat(1, n, 1)`` on a 2-D tensor, i.e. interleaved ([p0, p1, p0, p1]); the positive and the negative
    prompt alike. Upstream fix proposed in huggingface/diffusers PR #14147. If this test fails, diffusers
    changed the pairing: update the adapter's encoding (and this test) to match the new stock behaviour.
    """
    negatives = ["glasses", "a very blurry dog with glasses"]
    with torch.no_grad():
        embeds, mask = pipe.encode_prompt(negatives, device="cpu", num_images_per_prompt=2)
    assert (embeds.abs().sum(-1) > 0).sum(1).tolist() == [6, 6, 11, 11]
    assert mask.sum(1).tolist() == [6, 11, 6, 11], "diffusers now pairs masks with their rows"
