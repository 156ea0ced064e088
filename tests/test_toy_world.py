"""The shapes world: deterministic, masks agree with the image and attributes, accessory rates as designed."""

import numpy as np
import pytest

from negdelay.toy import world
from negdelay.toy.tokenizer import make_tokenizer


@pytest.fixture(scope="module")
def data():
    return world.make_dataset(6000, seed=7)


def test_deterministic_from_seed():
    a, b, c = world.make_scene(3), world.make_scene(3), world.make_scene(4)
    assert np.array_equal(a.image, b.image) and a.caption == b.caption
    assert np.array_equal(a.object_mask, b.object_mask) and np.array_equal(a.accessory_mask, b.accessory_mask)
    assert not np.array_equal(a.image, c.image)
    d1, d2 = world.make_dataset(50, seed=1), world.make_dataset(20, seed=1)
    assert np.array_equal(d1["images"][:20], d2["images"]) and d1["captions"][:20] == d2["captions"]


def test_masks_agree_with_image_and_attributes():
    for i in range(300):
        s = world.make_scene(np.random.default_rng([99, i]))
        img = s.image.astype(int)
        assert s.image.shape == (32, 32, 3) and s.image.dtype == np.uint8
        assert not (s.accessory_mask & ~s.object_mask).any(), "dot outside the object"
        assert s.accessory_mask.any() == s.has_dot
        if s.has_dot:
            assert s.accessory_mask.sum() >= 15  # a radius-3 disc, not a speck
            assert np.abs(img[s.accessory_mask] - world.DOT_RGB).max() <= 1
        body = s.object_mask & ~s.accessory_mask
        nominal = np.array(world.COLOUR_RGB[s.colour])
        assert np.abs(img[body] - nominal).max() <= 0.05 * 255 + 1
        assert (img[body] == img[body][0]).all(), "object is one flat colour"
        bg = img[~s.object_mask] / 255.0
        assert bg.max(-1).min() > 0.7, "background is light"
        sat = (bg.max(-1) - bg.min(-1)) / bg.max(-1)
        assert sat.max() < 0.25, "background is unsaturated"
        ys, xs = np.nonzero(s.object_mask)
        fill = s.object_mask.sum() / ((np.ptp(ys) + 1) * (np.ptp(xs) + 1))
        lo, hi = {"circle": (0.65, 0.85), "square": (0.85, 1.01), "triangle": (0.4, 0.65)}[s.shape]
        assert lo <= fill <= hi, (s.shape, fill)


def test_captions_name_the_object_and_mentioned_dots_are_shown(data):
    tok = make_tokenizer(world.VOCAB, world.MAX_TOKENS)
    for w in world.VOCAB:
        assert len(tok.tokenize(w)) == 1, w
    for i, cap in enumerate(data["captions"][:2000]):
        words = cap.replace(",", " , ").split()
        assert set(words) <= set(world.VOCAB), cap
        assert world.COLOURS[data["colour"][i]] in words and world.SHAPES[data["shape"][i]] in words
        assert ("dot" in words) == bool(data["mentions_dot"][i])
        assert len(tok(cap).input_ids) <= world.MAX_TOKENS
    assert data["has_dot"][data["mentions_dot"]].all()
    assert len(set(data["captions"])) > 100, "the grammar varies"
    assert abs(data["mentions_dot"].mean() - world.P_MENTION) < 0.03


def test_unmentioned_dot_rate_depends_on_shape_as_designed(data):
    plain = ~data["mentions_dot"]
    rates = {}
    for k, shape in enumerate(world.SHAPES):
        sel = plain & (data["shape"] == k)
        rates[shape] = data["has_dot"][sel].mean()
        assert abs(rates[shape] - world.DOT_RATE[shape]) < 0.05, (shape, rates[shape])
    assert rates["circle"] < rates["square"] < rates["triangle"]
    assert abs(data["has_dot"][plain].mean() - 0.40) < 0.03


def test_caption_dropout_keeps_the_plain_dot_rate(data):
    rng = np.random.default_rng(0)
    drop = np.concatenate([world.dropout_mask(data["mentions_dot"], rng) for _ in range(3)])
    has = np.concatenate([data["has_dot"]] * 3)
    mentions = np.concatenate([data["mentions_dot"]] * 3)
    assert abs(drop.mean() - world.CAPTION_DROPOUT) < 0.01
    assert not (drop & mentions).any()
    plain_rate = has[~mentions].mean()
    assert abs(has[drop].mean() - plain_rate) < 0.03
    # The pitfall this avoids: dropping captions uniformly would give the dropped images the higher overall rate.
    assert has.mean() - plain_rate > 0.1


def test_prompts():
    assert world.plain_prompt("red", "circle") == "a red circle"
    assert "dot" in world.accessory_prompt("blue", "square")
    assert set(world.NEGATIVE_PROMPT.split()) <= set(world.VOCAB)
    with pytest.raises(ValueError):
        world.plain_prompt("purple", "circle")
