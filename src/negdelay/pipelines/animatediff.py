"""AnimateDiff (SD 1.5 motion UNet): batched rows ``[unconditional, conditional]`` of per-frame text rows (the
pipeline repeats each video's embedding once per frame, so one negative per prompt covers its videos' frames).

Served: text-to-video and video-to-video. FreeNoise (``enable_free_noise``) encodes per-frame prompt and negative
schedules of its own: refused with a clear error. Not yet served (coverage.NOT_SERVED): the ControlNet variants (in
guess mode the ControlNet gets the conditional rows only, and its per-frame row count does not tell the mode) and
AnimateDiff SDXL (per-frame token rows but per-video pooled rows in one call).
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
