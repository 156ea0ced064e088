"""AnimateDiff ControlNet's guard for guess mode: the ControlNet call that gets the conditional rows only (its
``guess_mode`` argument) is left alone, the UNet's call of the same step is not. Stock guess mode with CFG fails in
diffusers 0.42.1, so this checks the declaration's decision on the call record rather than a run."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from negdelay.pipelines.animatediff import controlnet_unless_guessing


@pytest.mark.parametrize("guess", [False, True])
def test_controlnet_in_guess_mode_holds_no_unconditional_rows(guess):
    pipe = SimpleNamespace(do_classifier_free_guidance=True, free_noise_enabled=False)
    call = SimpleNamespace(denoiser_kwargs={"guess_mode": guess})
    assert controlnet_unless_guessing(pipe, call, "controlnet", 8) is (not guess)
    assert controlnet_unless_guessing(pipe, call, "unet", 16) is True


def test_no_guidance_no_rows():
    pipe = SimpleNamespace(do_classifier_free_guidance=False, free_noise_enabled=False)
    call = SimpleNamespace(denoiser_kwargs={"guess_mode": False})
    assert controlnet_unless_guessing(pipe, call, "controlnet", 8) is False
