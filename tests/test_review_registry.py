"""Review of the registry machinery (``negdelay.hooks``, ``negdelay.pipelines``) beyond what the contract proves.

The contract (tests/test_contract.py) runs every served class with one start step for all rows, one negative per
prompt, equal-length negatives, no per-encoder negatives, calls that end normally and prompts given as text. Each
test here covers one of the other ways a user calls a pipeline, against an independent reference (the contract's
own ``watch``/``text_inputs``, written without negdelay), or against the stock pipeline:

- call state: a call that raises mid-loop (KeyboardInterrupt, an exception in a callback) must not leave a call
  "open": a later call of the same pipeline starts afresh; a pipeline sharing the denoiser is refused, not changed;
  a worker thread whose call failed does not lock the other threads out;
- two threads on one applied pipeline: the second is refused and the first is unchanged;
- ``from_pipe``: applying to the new pipeline moves the hook; the first pipeline is stock again;
- per-row starts (``start_step=[1, 3]``, two images per prompt) on the layouts whose unconditional rows are not the
  first block (Lumina ``[cond, uncond]``, Z-Image's caption list, InstructPix2Pix's three blocks), a separate-pass
  pipeline (Flux img2img) and SDXL's nested pooled input;
- sigma and fraction starts on img2img (the loop begins at the scheduler's begin index);
- prompts given as ``prompt_embeds``; per-encoder negatives (``negative_prompt_2``/``_3``) through each encoder kind;
- negatives of different token counts: text inputs that one run passes as ``None`` (Qwen's all-ones mask) are text
  inputs too; with two images per prompt negdelay pairs each mask with its own row (4 prompts x 1 image reference);
- the negative's encoding reused across calls follows an in-place edit of the text encoder;
- one negative for several prompts is encoded as the stock pipeline encodes it (a batch of one per prompt).

Failing when written (each a defect, see the test's docstring): the interrupted-call tests, the live-thread test,
the in-place embedding edit, and the one-negative test for the CLIP families (last-bit differences only).
"""

from __future__ import annotations

import threading
import warnings

import pytest
import torch

import negdelay
from contract_cases import all_cases
from contract_reference import _get, _set, _structure, by_slot, substituting, text_inputs, watch

NEGS = ["blurry hat", "ugly dog"]
UNEQUAL = ["blurry", "ugly bad hands with extra fingers"]  # 1 and 6 words: masks and widths differ


def build(name):
    return all_cases()[name]()


def call(c, negative=None, images=2, prompts=None, **overrides):
    """One call as the contract makes it (same seed, same arguments)."""
    prompts = prompts if prompts is not None else c.prompts
    kwargs = {"prompt": prompts if isinstance(prompts, str) else list(prompts), "num_inference_steps": c.steps,
              "generator": torch.Generator().manual_seed(0), **c.call}
    if c.images_arg and images:
        kwargs[c.images_arg] = images
    if negative is not None:  # a copy: some pipelines (Z-Image) rewrite the prompt lists they get in place
        kwargs[c.negative_arg] = list(negative) if isinstance(negative, list) else negative
    kwargs.update(overrides)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return c.output(c.pipe(**kwargs))


def same(a, b) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)


def recorded(c, negative, **kw):
    """The contract's text inputs: run A (the pipeline's own negative) against run B (``negative``)."""
    with watch(c.pipe) as a:
        call(c, **kw)
    with watch(c.pipe) as b:
        call(c, negative=negative, **kw)
    return text_inputs(a, b), a, b


def reference(c, change, **kw):
    with watch(c.pipe, change):
        return call(c, **kw)


# -- call state: interrupted calls, threads, from_pipe -----------------------------------------------------------

class Interrupt(Exception):
    pass


def interrupt_at(step):
    def callback(pipe, i, t, kwargs):
        if i == step:
            raise Interrupt
        return kwargs
    return callback


def _pair(name):
    """An applied img2img pipeline and a txt2img pipeline made from it with ``from_pipe`` (same denoiser)."""
    from diffusers import FluxPipeline, StableDiffusionPipeline

    applied = build(name)
    other = (StableDiffusionPipeline if name.startswith("StableDiffusion") else FluxPipeline).from_pipe(applied.pipe)
    other.set_progress_bar_config(disable=True)
    return applied, other


def _t2i(other):
    extra = {"true_cfg_scale": 3.0, "negative_prompt": ["", ""], "max_sequence_length": 8} if "Flux" in type(
        other).__name__ else {}
    return other(["a red cat", "a blue dog"], height=16, width=16, num_inference_steps=4, output_type="latent",
                 num_images_per_prompt=2, generator=torch.Generator().manual_seed(0), **extra).images


@pytest.mark.parametrize("name", ["StableDiffusionImg2ImgPipeline", "FluxImg2ImgPipeline"])
def test_an_interrupted_call_leaves_no_call_open_for_a_pipeline_sharing_the_denoiser(name):
    """Applied to img2img, a call interrupted at step 2 (Ctrl-C, an exception in a callback), then the txt2img
    pipeline made by ``from_pipe`` (the shared-denoiser case negdelay refuses): it must be refused or stock. Before a
    fix the hook took the interrupted call's state as running and changed the txt2img image silently."""
    c, other = _pair(name)
    stock = _t2i(other)
    negdelay.apply(c.pipe, NEGS, start_step=1)
    try:
        with pytest.raises(Interrupt):
            call(c, callback_on_step_end=interrupt_at(2))
        try:
            got = _t2i(other)
        except RuntimeError as refused:
            assert "outside a call" in str(refused)
        else:
            assert same(got, stock), f"{type(other).__name__} sharing the denoiser was changed by a stale call"
    finally:
        negdelay.remove(c.pipe)


@pytest.mark.parametrize("name", ["StableDiffusionImg2ImgPipeline", "FluxImg2ImgPipeline"])
def test_after_an_interrupted_call_the_next_call_is_the_uninterrupted_one(name):
    """DDIM (steps counted by calls) and a flow scheduler with a begin index: the next call starts afresh."""
    c = build(name)
    with negdelay.apply(c.pipe, NEGS, start_step=1):
        want = call(c)
        with pytest.raises(Interrupt):
            call(c, callback_on_step_end=interrupt_at(2))
        assert same(call(c), want)


def test_a_call_failing_in_a_live_thread_does_not_lock_other_threads_out():
    """A worker thread (a web server's pool) whose call raised stays alive; the next call, from another thread,
    must run. Before a fix every other thread was refused ("already running a call in another thread") until that
    worker called the pipeline again."""
    c = build("StableDiffusionPipeline")
    failed, done = threading.Event(), threading.Event()

    def worker():
        try:
            call(c, callback_on_step_end=interrupt_at(1))
        except Interrupt:
            failed.set()
        done.wait(60)

    with negdelay.apply(c.pipe, NEGS, start_step=1):
        want = call(c)
        thread = threading.Thread(target=worker)
        thread.start()
        try:
            assert failed.wait(60)
            assert same(call(c), want)
        finally:
            done.set()
            thread.join()


def test_a_second_thread_is_refused_and_the_running_call_is_unchanged():
    c = build("StableDiffusionPipeline")
    inside, release, out = threading.Event(), threading.Event(), {}

    def hold(pipe, i, t, kwargs):
        if i == 1:
            inside.set()
            release.wait(60)
        return kwargs

    def worker():
        out["first"] = call(c, callback_on_step_end=hold)

    with negdelay.apply(c.pipe, NEGS, start_step=1):
        want = call(c)
        thread = threading.Thread(target=worker)
        thread.start()
        try:
            assert inside.wait(60)
            with pytest.raises(RuntimeError, match="already running a call in another thread"):
                call(c)
        finally:
            release.set()
            thread.join()
        assert same(out["first"], want)
        assert same(call(c), want)


def test_apply_to_a_from_pipe_pipeline_moves_the_hook_and_the_first_is_stock_again():
    from diffusers import StableDiffusionImg2ImgPipeline

    i2i = build("StableDiffusionImg2ImgPipeline")  # the reference, on its own components (same seeded weights)
    values, _, _ = recorded(i2i, NEGS)
    want = reference(i2i, substituting(values, 1))
    c = build("StableDiffusionPipeline")
    stock = call(c)
    negdelay.apply(c.pipe, NEGS, start_step=1)
    other = StableDiffusionImg2ImgPipeline.from_pipe(c.pipe)
    other.set_progress_bar_config(disable=True)
    i2i.pipe = other
    with negdelay.apply(other, NEGS, start_step=1):
        assert not negdelay.hooks.is_applied(c.pipe)
        assert "encode_prompt" not in c.pipe.__dict__
        assert same(call(i2i), want)
        with pytest.raises(RuntimeError, match="outside a call"):
            call(c)
    assert same(call(c), stock)


# -- per-row starts ----------------------------------------------------------------------------------------------

def _per_row(values, start_of_image, images):
    """A ``change`` for ``watch``: row ``r`` of a text input (any block, or entry of a list) belongs to image
    ``r % images`` and takes B's value from that image's start step on (rows that differ between A and B only)."""
    def change(step, model, slot, kwargs):
        for name, (mine, theirs) in values.get((model, slot), {}).items():
            current = _get(kwargs, name)
            if _structure(current) != _structure(mine):
                continue
            if isinstance(current, list):  # entries of their own lengths (Z-Image's captions): whole entries
                new = [t if step >= start_of_image[r % images] and not (m.shape == t.shape and torch.equal(m, t)) else m
                       for r, (m, t) in enumerate(zip(current, theirs))]
            else:
                assert mine.shape == theirs.shape, f"{name}: A and B differ in shape; no per-row reference"
                rows = torch.tensor([step >= start_of_image[r % images] for r in range(current.shape[0])])
                differ = (current != theirs).reshape(current.shape[0], -1).any(dim=1)
                new = current.clone()
                new[rows & differ] = theirs[rows & differ]
            _set(kwargs, name, new)
    return change


@pytest.mark.parametrize("name", ["LuminaPipeline", "ZImagePipeline", "StableDiffusionInstructPix2PixPipeline",
                                  "FluxImg2ImgPipeline", "StableDiffusionXLPipeline"])
def test_per_prompt_starts_with_two_images_per_prompt_equal_the_per_row_reference(name):
    """start_step=[1, 3]: prompt 0's two images from step 1, prompt 1's from step 3. Rows that have not started
    keep the pipeline's own unconditional rows, which are not the first block in Lumina, Z-Image and
    InstructPix2Pix."""
    c = build(name)
    values, _, _ = recorded(c, NEGS)
    images = 2 * len(c.prompts)
    want = reference(c, _per_row(values, [1, 1, 3, 3], images))
    with negdelay.apply(c.pipe, NEGS, start_step=[1, 3]):
        got = call(c)
    assert same(got, want)
    assert not same(want, reference(c, substituting(values, 1))) and not same(want, reference(c, substituting(values, 3)))


# -- sigma and fraction starts on img2img ------------------------------------------------------------------------

def _loop_sigmas(calls, model):
    """The noise level of each loop step, from the timestep the flow-matching denoiser gets at its first call."""
    firsts = {}
    for step, m, slot, kw in calls:
        if m == model and slot == 0 and step not in firsts:
            t = float(kw["timestep"].flatten()[0])
            firsts[step] = t / 1000 if t > 1.5 else t
    return [firsts[s] for s in sorted(firsts)]


@pytest.mark.parametrize("name", ["FluxImg2ImgPipeline", "StableDiffusion3Img2ImgPipeline"])
def test_sigma_start_on_img2img_counts_the_loops_own_noise_levels(name):
    """strength 0.8 of 5 steps: 4 run. A sigma between the loop's steps 1 and 2 starts at loop step 2."""
    c = build(name)
    values, a, _ = recorded(c, NEGS)
    sig = _loop_sigmas(a, "transformer")
    assert len(sig) == 4
    want = reference(c, substituting(values, 2))
    with negdelay.apply(c.pipe, NEGS, start_sigma=(sig[1] + sig[2]) / 2):
        assert same(call(c), want)


@pytest.mark.parametrize("name", ["FluxImg2ImgPipeline", "StableDiffusionImg2ImgPipeline",
                                  "StableDiffusionXLImg2ImgPipeline"])
def test_fraction_start_on_img2img_is_a_fraction_of_the_steps_that_run(name):
    """4 of 5 steps run: start_fraction 0.6 -> int(0.6 * 4) = loop step 2 (not int(0.6 * 5) = 3)."""
    c = build(name)
    values, _, _ = recorded(c, NEGS)
    want = reference(c, substituting(values, 2))
    with negdelay.apply(c.pipe, NEGS, start_fraction=0.6):
        assert same(call(c), want)


# -- prompts as embeddings, per-encoder negatives ----------------------------------------------------------------

def _first_call_inputs(c, names, half=False):
    """The conditional text inputs of a stock call with the prompts (one image per prompt): the denoiser's first
    call; ``half``: its second half of rows (batched ``[unconditional, conditional]``)."""
    with watch(c.pipe) as calls:
        call(c, images=1)
    first = calls[0][3]
    out = {}
    for arg, name in names.items():
        value = first[name]
        out[arg] = value[value.shape[0] // 2 :] if half else value
    return out


def _flux_embeds(c):
    return _first_call_inputs(c, {"prompt_embeds": "encoder_hidden_states", "pooled_prompt_embeds": "pooled_projections"})


def _pixart_embeds(c):
    return _first_call_inputs(c, {"prompt_embeds": "encoder_hidden_states",
                                  "prompt_attention_mask": "encoder_attention_mask"}, half=True)


def _wan_embeds(c):
    return _first_call_inputs(c, {"prompt_embeds": "encoder_hidden_states"})


def _sd_embeds(c):
    embeds, _ = c.pipe.encode_prompt(list(c.prompts), "cpu", 1, False)
    return dict(prompt_embeds=embeds)


@pytest.mark.parametrize("name,embeds", [("FluxPipeline", _flux_embeds), ("StableDiffusionPipeline", _sd_embeds),
                                         ("PixArtAlphaPipeline", _pixart_embeds), ("WanPipeline", _wan_embeds)])
def test_prompts_given_as_embeddings_give_the_image_of_the_prompts(name, embeds):
    """negdelay encodes its negative with this call's encode_prompt arguments: a call's own ``prompt_embeds`` (and
    mask) must not be carried into the negative's encoding (PixArt and Wan encode prompt and negative in one
    ``encode_prompt`` call, whose arguments negdelay reuses)."""
    c = build(name)
    given = {"prompt": None, **embeds(c)}
    assert same(call(c, images=1, **given), call(c, images=1))  # the stock pipeline: same image either way
    with negdelay.apply(c.pipe, NEGS, start_step=1):
        assert same(call(c, images=1, **given), call(c, images=1))


@pytest.mark.parametrize("name,more", [
    ("StableDiffusionXLPipeline", {"negative_prompt_2": ["hat", "blurry dog"]}),
    ("StableDiffusion3Pipeline", {"negative_prompt_2": ["hat", "blurry dog"], "negative_prompt_3": ["ugly", "dog"]}),
    ("StableDiffusionXLControlNetUnionPipeline", {"negative_prompt_2": ["hat", "blurry dog"]}),
    ("StableDiffusion3ControlNetPipeline", {"negative_prompt_2": ["hat", "blurry dog"], "negative_prompt_3": ["ugly", "dog"]}),
])
def test_per_encoder_negatives_equal_the_reference(name, more):
    c = build(name)
    with watch(c.pipe) as a:
        call(c)
    with watch(c.pipe) as b:
        call(c, negative=NEGS, **more)
    values = text_inputs(a, b)
    want = reference(c, substituting(values, 1))
    with negdelay.apply(c.pipe, NEGS, start_step=1, **more):
        assert same(call(c), want)


# -- negatives of different lengths ------------------------------------------------------------------------------

def _absent_in_one_run(calls_a, calls_b):
    """``{(model, slot): {name: B's value or None}}`` for the inputs a slot gets in one run only (``None`` or not
    passed in the other), constant over the slot's calls: the contract's ``text_inputs`` does not see them."""
    a, b = by_slot(calls_a), by_slot(calls_b)
    found = {}
    for key in a:
        names_a, names_b = set(a[key][0]), set(b[key][0])
        for name in names_b - names_a:
            if all(torch.equal(kw[name], b[key][0][name]) for kw in b[key] if name in kw):
                found.setdefault(key, {})[name] = b[key][0][name]
        for name in names_a - names_b:
            found.setdefault(key, {})[name] = None
    return found


def _with_absent(values, absent, first_step):
    inner = substituting(values, first_step)

    def change(step, model, slot, kwargs):
        inner(step, model, slot, kwargs)
        if step >= first_step:
            for name, value in absent.get((model, slot), {}).items():
                _set(kwargs, name, value)
    return change


@pytest.mark.parametrize("name", ["QwenImagePipeline", "QwenImageEditPipeline"])
def test_unequal_negatives_with_inputs_one_run_passes_as_none(name):
    """The pipeline's own "" negative gives an all-ones mask, which Qwen passes as None; B's negatives of different
    lengths give a padded mask. The contract's reference keeps A's None mask with B's padded tokens (it only sees
    inputs both runs pass as tensors): with equal-length negatives the contract cannot see a missing mask."""
    c = build(name)
    values, a, b = recorded(c, UNEQUAL, images=1)
    absent = _absent_in_one_run(a, b)
    assert any("encoder_hidden_states_mask" in inputs for inputs in absent.values())
    want = reference(c, _with_absent(values, absent, 1), images=1)
    with negdelay.apply(c.pipe, UNEQUAL, start_step=1):
        assert same(call(c, images=1), want)


@pytest.mark.parametrize("name", ["SanaPipeline", "LuminaPipeline", "Lumina2Pipeline", "Kandinsky3Pipeline",
                                  "HunyuanDiTPipeline", "LTXPipeline", "LTX2Pipeline", "QwenImagePipeline"])
def test_unequal_negatives_two_images_per_prompt_pair_each_mask_with_its_row(name):
    """2 prompts x 2 images = the same 4 rows as 4 prompts (each twice) x 1 image. These pipelines repeat masks in
    another order than embeddings for num_images_per_prompt > 1 (stock pairs them wrongly when lengths differ); the
    delayed negative must pair them as the 4 x 1 run does."""
    c = build(name)
    p = list(c.prompts)
    with negdelay.apply(c.pipe, UNEQUAL, start_step=1):
        got = call(c)
    four = [p[0], p[0], p[1], p[1]]
    own = c.call.get(c.negative_arg)
    if isinstance(own, list):
        c.call[c.negative_arg] = [own[0], own[0], own[1], own[1]]
    values, a, b = recorded(c, [UNEQUAL[0], UNEQUAL[0], UNEQUAL[1], UNEQUAL[1]], images=1, prompts=four)
    want = reference(c, _with_absent(values, _absent_in_one_run(a, b), 1), images=1, prompts=four)
    assert same(got, want)


# -- the negative's encoding across calls -----------------------------------------------------------------------

def test_an_in_place_edit_of_one_token_embedding_between_calls_is_followed():
    """Between two calls of an applied pipeline one token's embedding vector is rewritten in place (as textual-
    inversion code does for a token it already added). The negative "blurry hat" must be encoded with the new
    vector, as the stock pipeline's ``negative_prompt`` is. With a vocabulary of real size (here 4568 rows; CLIP
    has 49408) a fingerprint that samples a few elements per parameter does not see the edit."""
    from diffusers import StableDiffusionPipeline
    from tiny import WORDS, tiny_sd, tiny_text_encoder

    from negdelay.toy.tokenizer import make_tokenizer

    tokenizer = make_tokenizer(WORDS + [f"w{i}" for i in range(4000)], model_max_length=12)
    pipe = StableDiffusionPipeline(**{**tiny_sd().components, "tokenizer": tokenizer,
                                      "text_encoder": tiny_text_encoder(tokenizer)})
    pipe.set_progress_bar_config(disable=True)

    def run():
        return pipe(["a red cat", "a blue dog"], num_inference_steps=4, height=16, width=16, output_type="latent",
                    generator=torch.Generator().manual_seed(0)).images

    with negdelay.apply(pipe, NEGS, start_step=1):
        before = run()
        embeddings = pipe.text_encoder.get_input_embeddings().weight
        with torch.no_grad():
            embeddings[tokenizer.convert_tokens_to_ids(tokenizer.tokenize("blurry"))[0]] += 1.0
        again = run()
    with negdelay.apply(pipe, NEGS, start_step=1):  # a new apply encodes anew
        fresh = run()
    assert not same(fresh, before)
    assert same(again, fresh), "the applied pipeline kept the negative encoded before the edit"


# -- one negative for several prompts ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["StableDiffusionPipeline", "StableDiffusionXLPipeline", "StableDiffusion3Pipeline",
                                  "HunyuanVideo15Pipeline", "FluxPipeline"])
def test_one_negative_for_two_prompts_is_encoded_as_the_stock_pipeline_encodes_it(name):
    """``apply(pipe, "blurry hat")`` with two prompts = stock with ``negative_prompt=["blurry hat"] * 2`` from step 1.
    The stock pipeline encodes a batch of 2 negatives; negdelay encoded 1 text, and CLIP's output depends on the
    batch size in the last bits (SD, SDXL, SD3: ~1e-6 in the latents here). HunyuanVideo 1.5's ``encode_prompt``
    takes a ``batch_size`` that must follow the texts encoded."""
    c = build(name)
    values, _, _ = recorded(c, ["blurry hat"] * 2)
    want = reference(c, substituting(values, 1))
    with negdelay.apply(c.pipe, "blurry hat", start_step=1):
        assert same(call(c), want)
