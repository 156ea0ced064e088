"""The shapes world and the small Stable Diffusion model trained on it.

``load_pipeline()`` returns the shipped model as a real ``diffusers.StableDiffusionPipeline``, loaded offline from the
package folder ``negdelay/toy/model``. See docs/toy-model.md.
"""

from __future__ import annotations

import os
from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent / "model"

__all__ = ["MODEL_DIR", "load_pipeline"]


def load_pipeline(device="cpu", dtype=None, scheduler=None, progress_bar: bool = False, path=None):
    """The shipped toy model as a ``StableDiffusionPipeline`` (eval mode, no safety checker), loaded offline.

    ``dtype`` defaults to float32 (the weights are stored in float16); ``scheduler`` replaces the shipped
    PNDM scheduler (e.g. ``DDIMScheduler.from_config(pipe.scheduler.config)`` built by the caller);
    ``progress_bar`` turns diffusers' per-call progress bar on or off; ``path`` loads another exported folder.
    """
    import torch
    from diffusers import StableDiffusionPipeline

    folder = Path(path) if path is not None else MODEL_DIR
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(f"no exported toy model at {folder} (train one: python -m negdelay.toy.train)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    kwargs = {}
    if scheduler is not None:
        kwargs["scheduler"] = scheduler
    pipe = StableDiffusionPipeline.from_pretrained(
        str(folder),
        dtype=dtype if dtype is not None else torch.float32,
        safety_checker=None,
        requires_safety_checker=False,
        local_files_only=True,
        **kwargs,
    )
    pipe = pipe.to(device)
    for m in (pipe.unet, pipe.vae, pipe.text_encoder):
        m.eval()
    pipe.set_progress_bar_config(disable=not progress_bar)
    return pipe
