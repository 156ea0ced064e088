"""The adapter interface, and the run facts every family reads the same way."""

from __future__ import annotations

import math

import torch

from ..schedule import NoiseAxis, Run


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


def noise_axis(scheduler) -> NoiseAxis:
    """The scheduler's training noise axis, for ComfyUI's percents: the training sigmas of its ``alphas_cumprod``
    (discrete models), or the static shift of a flow-matching scheduler. A ``ValueError`` naming
    ``start_percent`` / ``stop_percent`` for a scheduler that has neither."""
    name = type(scheduler).__name__
    config = getattr(scheduler, "config", {})
    acp = getattr(scheduler, "alphas_cumprod", None)
    flow = "FlowMatch" in name or bool(config.get("use_flow_sigmas", False))
    if acp is not None and not flow:
        values = [float(a) for a in acp.tolist()]
        return NoiseAxis("discrete", tuple(math.sqrt((1 - a) / a) for a in values))
    if flow:
        if config.get("use_dynamic_shifting", False):
            raise ValueError(
                f"start_percent / stop_percent: {name} uses dynamic shifting (its shift depends on each call's image "
                "size and is not kept), so a percent has no fixed noise level; give start_sigma / stop_sigma instead"
            )
        shift = getattr(scheduler, "shift", None)
        shift = config.get("flow_shift", 1.0) if config.get("use_flow_sigmas", False) else (
            shift if shift is not None else config.get("shift", 1.0))
        return NoiseAxis("flow", shift=float(shift))
    raise ValueError(
        f"start_percent / stop_percent: {name} has no training noise schedule (alphas_cumprod) and is not a "
        "flow-matching scheduler, so a percent cannot be converted to a noise level; give start_sigma / stop_sigma"
    )


def run_facts(pipeline, need_sigmas: bool, begin: int | None = None, need_axis: bool = False) -> Run:
    """Read the facts of the running call from the pipeline and its scheduler (call it at the first step).

    The loop's timesteps are always a suffix of ``scheduler.timesteps`` (img2img drops the first
    ``t_start * order``), so the steps that run are ``num_inference_steps - begin // order``. ``begin`` is the
    index of the loop's first timestep where the caller knows it (the scheduler's step index at the first
    denoiser call); else the pipeline's ``_num_timesteps`` tells it.
    """
    sched = pipeline.scheduler
    all_t = sched.timesteps
    order = int(getattr(sched, "order", 1))  # DDPMWuerstchenScheduler has none: one call per step
    if begin is None:
        n_iter = getattr(pipeline, "_num_timesteps", None) or len(all_t)
        begin = len(all_t) - n_iter
    n_iter = len(all_t) - begin
    n_inference = getattr(sched, "num_inference_steps", None)
    if n_inference is None or getattr(sched, "custom_timesteps", False):
        # timesteps= given to the pipeline: DDPM keeps a stale num_inference_steps; the pipeline counts them all
        n_inference = len(all_t) if order == 1 else n_inference
    if n_inference is None:
        raise ValueError(f"{type(sched).__name__} did not record how many steps it runs; use a standard scheduler")
    n_steps = int(n_inference) - begin // order
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
    axis = noise_axis(sched) if need_axis else None
    return Run(n_iterations=n_iter, n_steps=n_steps, order=order, sigmas=sigmas, axis=axis)
