"""The ground-truth judge: >= 98 % per attribute on fresh world images, and sane on edge cases."""

import numpy as np

from negdelay.toy import detect, world


def test_accuracy_on_fresh_world_images():
    acc = detect.accuracy_on_world(400, seed=2024)  # seeds 0 (training data) and 12345 (the script) not used
    for k in ("colour", "shape", "dot"):
        assert acc[k] >= 0.98, acc


def test_uint8_and_float_inputs_agree():
    d = world.make_dataset(30, seed=5)
    a = detect.judge_batch(d["images"])
    b = detect.judge_batch(d["images"].astype(np.float32) / 255.0)
    assert a["colour"] == b["colour"] and a["shape"] == b["shape"] and (a["dot"] == b["dot"]).all()


def test_blank_image_has_no_object_and_no_dot():
    j = detect.judge(np.full((32, 32, 3), 235, np.uint8))
    assert j.colour is None and j.shape is None and not j.dot


def test_dot_removed_is_not_detected():
    for i in range(50):
        s = world.make_scene(np.random.default_rng([3, i]))
        if not s.has_dot:
            continue
        img = s.image.copy()
        body = s.object_mask & ~s.accessory_mask
        img[s.accessory_mask] = img[body][0]  # paint the dot over with the object's colour
        j0, j1 = detect.judge(s.image), detect.judge(img)
        assert j0.dot and not j1.dot
        assert (j1.colour, j1.shape) == (s.colour, s.shape)


def test_accuracy_on_degraded_world_images():
    # Generated images are blurrier and paler than world images: the judge must hold up on such ground truth too.
    acc = detect.accuracy_on_world(300, seed=2025, degraded=True)
    for k in ("colour", "shape", "dot"):
        assert acc[k] >= 0.97, acc
