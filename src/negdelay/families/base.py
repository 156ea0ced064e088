"""The adapter interface, and the run facts every family reads the same way."""

from __future__ import annotations

import math

import torch

from ..schedule import Run


class Family:
    """One pipeline family. Subclasses set ``name``, ``tensor_inputs``, ``pipelines`` and implement ``encode``."""

    name = "base"
    #: callback tensors whose first half holds the unconditional rows, first one is the text embedding
    tensor_inputs: tuple[str, ...] = ("prompt_embeds",)
    #: class names of the pipelines this family serves (names, so that optional pipelines need no import)
    pipelines: tuple[str, ...] = ()

    def serves(self, pipeline) -> bool:
        return any(cls.__name__ in self.pipelines for cls in type(pipeline).__mro__)

    def cfg_active(self, pipeline) -> bool:
        """Whether the pipeline runs classifier-free guidance now (False after a CFG cutoff)."""
        return bool(getattr(pipeline, "do_classifier_free_guidance", True))

    def encode(self, pipeline, texts: list[str], current: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Encode ``texts`` exactly as the pipeline encodes its own negative prompt: one row per text for each
        tensor in ``tensor_inputs`` that differs between negatives. ``current`` are this step's tensors."""
        raise NotImplementedError

    def check_embeds(self, embeds: dict[str, torch.Tensor], current: dict[str, torch.Tensor]) -> None:
        """Raise when precomputed negative tensors cannot stand in for the pipeline's rows."""
        for name, tensor in embeds.items():
            want = current[name].shape[1:]
            if tensor.shape[1:] != want:
                raise ValueError(
                    f"negative {name} has shape {tuple(tensor.shape)}; this pipeline's {name} rows have shape "
                    f"{tuple(want)} (encode the negative with the same text encoder and max length)"
                )


def lora_scale(pipeline):
    """The text-encoder LoRA scale the stock pipeline uses for this call."""
    kwargs = getattr(pipeline, "cross_attention_kwargs", None) or getattr(pipeline, "joint_attention_kwargs", None)
    return kwargs.get("scale", None) if kwargs else None


def run_facts(pipeline, need_sigmas: bool, begin: int | None = None) -> Run:
    """Read the facts of the running call from the pipeline and its scheduler (call it at the first step).

    The loop's timesteps are always a suffix of ``scheduler.timesteps`` (img2img drops the first
    ``t_start * order``), so the steps that run are ``num_inference_steps - begin // order``. ``begin`` is the
    index of the loop's first timestep where the caller knows it (the scheduler's step index at the first
    denoiser call); else the pipeline's ``_num_timesteps`` tells it.
    """
    sched = pipeline.scheduler
    all_t = sched.timesteps
    if begin is None:
        n_iter = getattr(pipeline, "_num_timesteps", None) or len(all_t)
        begin = len(all_t) - n_iter
    n_iter = len(all_t) - begin
    n_inference = getattr(sched, "num_inference_steps", None)
    if n_inference is None or getattr(sched, "custom_timesteps", False):
        # timesteps= given to the pipeline: DDPM keeps a stale num_inference_steps; the pipeline counts them all
        n_inference = len(all_t) if sched.order == 1 else n_inference
    if n_inference is None:
        raise ValueError(f"{type(sched).__name__} did not record how many steps it runs; use a standard scheduler")
    n_steps = int(n_inference) - begin // sched.order
    sigmas = None
    if need_sigmas:
        own = getattr(sched, "sigmas", None)
        if own is not None and len(own) >= len(all_t) + 1:
            sigmas = tuple(float(s) for s in own[begin : begin + n_iter].tolist())
        elif getattr(sched, "alphas_cumprod", None) is not None:
            acp = sched.alphas_cumprod
            ts = [int(round(float(t))) for t in all_t[begin:].tolist()]
            sigmas = tuple(math.sqrt((1 - float(acp[t])) / float(acp[t])) for t in ts)
        else:
            raise ValueError(
                f"{type(sched).__name__} has neither sigmas nor alphas_cumprod: use start_step or start_fraction"
            )
    return Run(n_iterations=n_iter, n_steps=n_steps, order=int(sched.order), sigmas=sigmas)
