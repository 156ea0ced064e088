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
