"""The toy model's training (``negdelay.toy.train``) in pieces: a run stopped after 2 UNet steps and resumed to 4
ends with the same weights, EMA, optimizer and random states, byte for byte, as a run of 4 steps straight."""

from __future__ import annotations

import torch

from negdelay.toy import train

ARGS = ["--n-images", "64", "--vae-steps", "2", "--vae-minutes", "0", "--unet-minutes", "0", "--batch", "4",
        "--vae-batch", "4", "--threads", "1", "--export-minutes", "0", "--log-every", "1"]


def test_resumed_training_equals_training_straight(tmp_path):
    train.main([*ARGS, "--unet-steps", "4", "--ckpt-dir", str(tmp_path / "a"), "--out", str(tmp_path / "ma")])
    train.main([*ARGS, "--unet-steps", "2", "--ckpt-dir", str(tmp_path / "b"), "--out", str(tmp_path / "mb")])
    train.main([*ARGS, "--unet-steps", "4", "--ckpt-dir", str(tmp_path / "b"), "--out", str(tmp_path / "mb")])
    a = torch.load(tmp_path / "a" / "unet.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "unet.pt", weights_only=False)
    assert a["step"] == b["step"] == 4 and a["rng"] == b["rng"] and torch.equal(a["gen"], b["gen"])
    for part in ("unet", "te", "ema_u", "ema_t"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    assert not all(torch.equal(a["unet"][k], a["ema_u"][k]) for k in a["unet"])  # the EMA lags the weights
    assert (tmp_path / "ma" / "unet" / "diffusion_pytorch_model.safetensors").is_file()


def _args(**kw):
    import argparse

    base = dict(lr=1e-3, warmup=10, schedule="cosine", lr_end=0.02, unet_steps=110, decay_start=0, decay_steps=0)
    return argparse.Namespace(**{**base, **kw})


def test_cosine_schedule_warms_up_then_ends_at_lr_end():
    a = _args()
    lrs = [train.learning_rate(a, s) for s in range(0, 111)]
    assert lrs[0] == 1e-4 and abs(lrs[9] - 1e-3) < 1e-12  # linear warm-up over 10 steps
    assert all(x >= y for x, y in zip(lrs[9:], lrs[10:]))  # then never rises
    assert abs(lrs[60] - 1e-3 * (0.02 + 0.98 * 0.5)) < 1e-12  # half-way down the cosine
    assert abs(lrs[110] - 2e-5) < 1e-12 and train.learning_rate(a, 500) == lrs[110]


def test_constant_schedule_keeps_the_first_models_anneal():
    a = _args(schedule="constant", decay_start=50, decay_steps=20)
    assert train.learning_rate(a, 40) == 1e-3 and abs(train.learning_rate(a, 60) - 5e-4) < 1e-12
    assert train.learning_rate(a, 70) == 0.0


def test_recoloured_paints_the_object_but_not_the_dot_or_background():
    import numpy as np

    from negdelay.toy import world

    data = world.make_dataset(16, seed=3)
    idx = np.arange(16)
    out = train.recoloured(data, idx, np.full(16, world.COLOURS.index("blue")), np.random.default_rng(0))
    for k in idx:
        paint = data["object_mask"][k] & ~data["accessory_mask"][k]
        rest = ~paint
        assert np.allclose(out[k][rest], data["images"][k][rest] / 255.0)
        blue = np.array(world.COLOUR_RGB["blue"]) / 255.0
        assert np.abs(out[k][paint] - blue).max() <= 0.05 + 1e-9


def test_an_exported_model_says_no_clipping(tmp_path):
    import json

    train.main([*ARGS, "--unet-steps", "1", "--ckpt-dir", str(tmp_path / "c"), "--out", str(tmp_path / "mc")])
    cfg = json.loads((tmp_path / "mc" / "scheduler" / "scheduler_config.json").read_text())
    assert cfg["clip_sample"] is False
