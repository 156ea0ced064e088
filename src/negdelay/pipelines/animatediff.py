"""AnimateDiff (SD 1.5 motion UNet): batched rows ``[unconditional, conditional]`` of per-frame text rows (the
pipeline repeats each video's embedding once per frame, so one negative per prompt covers its videos' frames).

Served: text-to-video and video-to-video. FreeNoise (``enable_free_noise``) encodes per-frame prompt and negative
schedules of its own: refused with a clear error.

The ControlNet variants (ControlNet, SparseControlNet, video-to-video ControlNet) run the ControlNet on both halves,
except in guess mode (``guess_mode=True`` or a ControlNet with ``global_pool_conditions``), where it gets the
conditional rows only; its row count cannot tell (``2 * B * F`` rows or ``B * 2F``), but the pipeline passes
``guess_mode`` to the ControlNet itself, which the ControlNet's ``guided`` reads from the call. (In diffusers 0.42.1
guess mode with CFG fails in all three: the conditional rows' residuals are added to the UNet's two halves; the
guard keeps a fixed release from having its conditional rows swapped.)

AnimateDiff SDXL: the tokens are repeated per frame (``2 * B * F`` rows), the pooled text per video (``2 * B``; the
motion UNet repeats it per frame inside): a ``grouped`` input, the rows of one video take one negative.
"""

from __future__ import annotations

from .declaration import Declaration, register
from .guidance import by_property
from .own_negative import negative_path


def refuse_free_noise(pipeline, call, denoiser, rows) -> bool:
    """``do_classifier_free_guidance``; FreeNoise is refused with a clear error."""
    if getattr(pipeline, "free_noise_enabled", False):
        raise NotImplementedError(
            f"negdelay.apply: {type(pipeline).__name__} runs FreeNoise (enable_free_noise), which interpolates "
            "per-frame prompts and negatives of its own; disable it (pipe.disable_free_noise()) or pass the "
            "negative to the pipeline"
        )
    return by_property(pipeline, call, denoiser, rows)


register(Declaration(
    family="AnimateDiff", mode="batched", inputs=("encoder_hidden_states",), denoisers=("unet",),
    encode=negative_path({"encoder_hidden_states": 1}, {"prompt_embeds": "encoder_hidden_states"}),
    guided=refuse_free_noise, note="one text row per frame; FreeNoise refused",
), "AnimateDiffPipeline", "AnimateDiffVideoToVideoPipeline")


def controlnet_unless_guessing(pipeline, call, denoiser, rows) -> bool:
    """The UNet as ``refuse_free_noise``; the ControlNet sees unconditional rows unless it runs in guess mode (the
    ``guess_mode`` argument the pipeline passes it)."""
    guided = refuse_free_noise(pipeline, call, denoiser, rows)
    if denoiser == "controlnet":
        return guided and not call.denoiser_kwargs.get("guess_mode", False)
    return guided


register(Declaration(
    family="AnimateDiff", mode="batched", inputs=("encoder_hidden_states",), denoisers=("unet", "controlnet"),
    encode=negative_path({"encoder_hidden_states": 1}, {"prompt_embeds": "encoder_hidden_states"}),
    guided=controlnet_unless_guessing, note="one text row per frame; ControlNet guess mode followed; FreeNoise refused",
), "AnimateDiffControlNetPipeline", "AnimateDiffSparseControlNetPipeline", "AnimateDiffVideoToVideoControlNetPipeline")

register(Declaration(
    family="AnimateDiff", mode="batched", inputs=("encoder_hidden_states", "added_cond_kwargs.text_embeds"),
    denoisers=("unet",), prompts=("negative_prompt_2",), grouped=("added_cond_kwargs.text_embeds",),
    encode=negative_path({"encoder_hidden_states": 1, "added_cond_kwargs.text_embeds": 3},
                         {"prompt_embeds": "encoder_hidden_states",
                          "pooled_prompt_embeds": "added_cond_kwargs.text_embeds"},
                         negatives=("negative_prompt", "negative_prompt_2")),
    guided=refuse_free_noise, note="tokens one row per frame, pooled text one per video; FreeNoise refused",
), "AnimateDiffSDXLPipeline")
