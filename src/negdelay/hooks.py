"""``negdelay.apply`` / ``negdelay.remove``: delayed negatives for pipelines a step-end callback cannot reach.

Some pipelines run the unconditional pass on local variables that ``callback_on_step_end`` never sees
(Flux and QwenImage with true CFG: a second transformer call with ``negative_prompt_embeds``), have no step-end
callback (PixArt), or do not hand a callback every tensor the negative lives in (SD3 img2img/inpaint and SDXL
ControlNet inpaint take the token embeddings back but not the pooled ones). For those, negdelay puts one diffusers ``ModelHook`` on the denoiser (``HookRegistry``, the
official hook system) that, before the start step, leaves the unconditional pass as the pipeline made it,
and from the start step on replaces its text inputs with the negative's, encoded by the pipeline's own
``encode_prompt`` exactly as the stock pipeline encodes its ``negative_prompt``.

Three ways to find the unconditional pass:

- ``"context"``: the pipeline wraps it in ``transformer.cache_context("uncond")`` (Flux, QwenImage); the hook
  is stateful, so diffusers hands it the cache context, and it changes only calls made in the ``"uncond"`` context.
- ``"ordered"``: the pipeline makes two calls per step, conditional first, unconditional second, with no cache
  context (Flux img2img, inpaint, ControlNet, Kontext); the hook changes the second call of each step.
- ``"batched"``: one call with ``[unconditional, conditional]`` rows (SD3 img2img/inpaint, PixArt); the hook
  changes the first half. Guidance is recognised by the pipeline's ``do_classifier_free_guidance`` property, or
  (PixArt keeps it in a local of ``__call__``) by that local, read from the pipeline's running frame.

Steps follow ``negdelay.schedule`` (the same semantics as the callbacks): the loop iteration is the
scheduler's ``step_index`` (``begin_index`` before the first step of a call). A new call is recognised by a
new ``scheduler.timesteps`` tensor at iteration 0.

Usage::

    negdelay.apply(pipe, "glasses", start_step=5)       # tomesd style; idempotent (replaces an earlier apply)
    pipe(prompt, negative_prompt="", true_cfg_scale=4.0) # Flux: true CFG needs a negative_prompt ("" is fine)
    negdelay.remove(pipe)                                # back to stock, bit for bit

    with negdelay.apply(pipe, "glasses", start_step=5):  # or as a context manager
        pipe(...)
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from diffusers.hooks import HookRegistry, ModelHook
from diffusers.hooks.hooks import BaseState, StateManager

from . import schedule as sch
from .families.base import lora_scale, run_facts
from .families.sd3 import SD3

HOOK_NAME = "negdelay_delayed_negative"


# -- how each pipeline is reached ---------------------------------------------------------------------------


def _encode_flux(pipeline, texts: list[tuple[str, ...]], current: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Flux's own negative path: ``encode_prompt(prompt=negative_prompt, prompt_2=negative_prompt_2, ...)``."""
    like = current["encoder_hidden_states"]
    embeds, pooled, _ = pipeline.encode_prompt(
        prompt=[t[0] for t in texts],
        prompt_2=[t[1] for t in texts],
        device=like.device,
        num_images_per_prompt=1,
        max_sequence_length=like.shape[1],
        lora_scale=lora_scale(pipeline),
    )
    return {"encoder_hidden_states": embeds.to(like.dtype), "pooled_projections": pooled.to(current["pooled_projections"].dtype)}


def _encode_sd3(pipeline, texts, current):
    """SD3's negative path (the SD3 family adapter), mapped to the transformer's argument names."""
    got = SD3().encode(
        pipeline, [t if len(t) == 3 else (t[0], t[1], t[0]) for t in texts],
        {"prompt_embeds": current["encoder_hidden_states"], "pooled_prompt_embeds": current["pooled_projections"]},
    )
    return {"encoder_hidden_states": got["prompt_embeds"], "pooled_projections": got["pooled_prompt_embeds"]}


def _encode_pixart(pipeline, texts, current, clean_caption=True):
    """PixArt's negative path: T5 tokens padded to the prompt's length, and their attention mask."""
    like = current["encoder_hidden_states"]
    embeds, mask, _, _ = pipeline.encode_prompt(
        [t[0] for t in texts], do_classifier_free_guidance=False, num_images_per_prompt=1, device=like.device,
        clean_caption=clean_caption, max_sequence_length=like.shape[1],
    )
    return {"encoder_hidden_states": embeds.to(like.dtype), "encoder_attention_mask": mask.to(current["encoder_attention_mask"].dtype)}


def _encode_qwen(pipeline, texts, current, max_sequence_length=512):
    """QwenImage's negative path (``encode_prompt(prompt=negative_prompt)``): variable length, mask or None."""
    like = current["encoder_hidden_states"]
    embeds, mask = pipeline.encode_prompt(
        prompt=[t[0] for t in texts], device=like.device, num_images_per_prompt=1, max_sequence_length=max_sequence_length,
    )
    if mask is None:
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
    return {"encoder_hidden_states": embeds.to(like.dtype), "encoder_hidden_states_mask": mask}


def _encode_sdxl(pipeline, texts, current):
    """SDXL's negative path (the SDXL family adapter), mapped to the UNet's argument names."""
    from .families.sdxl import SDXL

    got = SDXL().encode(
        pipeline, [t if len(t) == 2 else (t[0], t[0]) for t in texts],
        {"prompt_embeds": current["encoder_hidden_states"], "add_text_embeds": current["added_cond_kwargs.text_embeds"]},
    )
    return {"encoder_hidden_states": got["prompt_embeds"], "added_cond_kwargs.text_embeds": got["add_text_embeds"]}


def _concat_rows(own: dict, negative: dict, keys) -> dict:
    """Row ``r`` from the pipeline's own unconditional pass (key None) or from the negative's row ``key``."""
    return {
        name: torch.cat([own[name][r : r + 1] if k is None else negative[name][k : k + 1] for r, k in enumerate(keys)])
        for name in own
    }


def _concat_padded(own: dict, negative: dict, keys) -> dict:
    """QwenImage: rows of different token lengths, zero-padded and masked as the pipeline pads a batch of prompts;
    columns no row uses are dropped, and an all-ones mask is ``None``, so that when every row takes the negative
    the inputs are exactly what the stock pipeline passes for that ``negative_prompt``."""
    tokens, mask = own["encoder_hidden_states"], own["encoder_hidden_states_mask"]
    if mask is None:
        mask = torch.ones(tokens.shape[:2], dtype=torch.long, device=tokens.device)
    rows, masks = [], []
    for r, k in enumerate(keys):
        t, m = (tokens[r], mask[r]) if k is None else (negative["encoder_hidden_states"][k], negative["encoder_hidden_states_mask"][k])
        rows.append(t)
        masks.append(m)
    used = max(int(m.nonzero().max()) + 1 if m.any() else 0 for m in masks)
    width = max(used, 1)
    out_t = torch.stack([torch.cat([t[:width], t.new_zeros(max(0, width - t.shape[0]), t.shape[1])]) for t in rows])
    out_m = torch.stack([torch.cat([m[:width], m.new_zeros(max(0, width - m.shape[0]))]) for m in masks])
    return {"encoder_hidden_states": out_t, "encoder_hidden_states_mask": None if bool(out_m.all()) else out_m}


def _cfg_property(pipeline, hidden, n_total) -> bool:
    return bool(getattr(pipeline, "do_classifier_free_guidance", True))


def _pipeline_frames():
    """``(frame, pipeline)`` for every running ``DiffusionPipeline.__call__`` on the stack, innermost first."""
    from diffusers import DiffusionPipeline

    frame = sys._getframe(1)
    for _ in range(32):
        if frame is None:
            return
        if frame.f_code.co_name == "__call__":
            owner = frame.f_locals.get("self")
            if isinstance(owner, DiffusionPipeline):
                yield frame, owner
        frame = frame.f_back


def _call_local(pipeline, name: str):
    """A local variable of ``pipeline``'s running ``__call__`` (None where there is no such frame or name)."""
    return next((frame.f_locals.get(name) for frame, owner in _pipeline_frames() if owner is pipeline), None)


def _running_pipeline():
    """The pipeline whose ``__call__`` is running innermost (None where no pipeline's ``__call__`` is on the stack)."""
    return next((owner for _, owner in _pipeline_frames()), None)


def _cfg_controlnet(pipeline, hidden, n_total) -> bool:
    """The ControlNet sees the unconditional rows unless ``guess_mode`` (then it runs on the conditional rows only)."""
    return _cfg_property(pipeline, hidden, n_total) and _call_local(pipeline, "guess_mode") is not True


def _cfg_local(pipeline, hidden, n_total) -> bool:
    """PixArt decides guidance in a local variable of its ``__call__`` (``do_classifier_free_guidance``, no
    property): read it from the pipeline's running frame. Where that frame cannot be found, fall back to the
    latent input's two halves being equal, as ``torch.cat([latents] * 2)`` makes them under guidance."""
    local = _call_local(pipeline, "do_classifier_free_guidance")
    if isinstance(local, bool):
        return local
    if hidden is None or n_total % 2:
        return False
    half = n_total // 2
    return bool(torch.equal(hidden[:half], hidden[half:]))


@dataclass(frozen=True)
class Target:
    """Where a pipeline's unconditional pass is and how to encode a negative for it."""

    name: str
    pipelines: tuple[str, ...]
    model: str  # the pipeline attribute of the denoiser
    mode: str  # "context" (cache_context("uncond")), "ordered" (2nd call of a step) or "batched" (first half)
    inputs: tuple[str, ...]  # keyword arguments of the denoiser that carry the text
    encode: Callable  # (pipeline, texts, current inputs, **options) -> {input name: one row per text}
    prompts: tuple[str, ...]  # per-encoder negative arguments apply() accepts besides negative_prompt
    needs: str  # what the user passes to the pipeline so that the unconditional pass runs
    options: tuple[tuple[str, object], ...] = ()  # encoding options apply() accepts, with their defaults
    merge: Callable = _concat_rows  # builds the unconditional inputs row by row
    cfg: Callable = _cfg_property  # batched mode: whether this call holds unconditional rows
    also: tuple[tuple[str, Callable], ...] = ()  # more models that see the same rows: (pipeline attribute, cfg)

    def serves(self, pipeline) -> bool:
        return any(cls.__name__ in self.pipelines for cls in type(pipeline).__mro__)


_TRUE_CFG_NEEDS = "true_cfg_scale > 1 and a negative_prompt (\"\" is fine) in the pipeline call"

TARGETS: list[Target] = [
    Target(
        name="flux-true-cfg", pipelines=("FluxPipeline",), model="transformer", mode="context",
        inputs=("encoder_hidden_states", "pooled_projections"), encode=_encode_flux, prompts=("negative_prompt_2",),
        needs=_TRUE_CFG_NEEDS,
    ),
    Target(
        name="flux-true-cfg-ordered",
        pipelines=("FluxImg2ImgPipeline", "FluxInpaintPipeline", "FluxControlNetPipeline", "FluxKontextPipeline",
                   "FluxKontextInpaintPipeline"),
        model="transformer", mode="ordered", inputs=("encoder_hidden_states", "pooled_projections"),
        encode=_encode_flux, prompts=("negative_prompt_2",), needs=_TRUE_CFG_NEEDS,
    ),
    Target(
        name="qwenimage-true-cfg",
        pipelines=("QwenImagePipeline", "QwenImageImg2ImgPipeline", "QwenImageInpaintPipeline"),
        model="transformer", mode="context", inputs=("encoder_hidden_states", "encoder_hidden_states_mask"),
        encode=_encode_qwen, prompts=(), options=(("max_sequence_length", 512),), merge=_concat_padded,
        needs=_TRUE_CFG_NEEDS,
    ),
    Target(
        name="sdxl-controlnet-inpaint", pipelines=("StableDiffusionXLControlNetInpaintPipeline",), model="unet",
        mode="batched", inputs=("encoder_hidden_states", "added_cond_kwargs.text_embeds"), encode=_encode_sdxl,
        prompts=("negative_prompt_2",), needs="guidance_scale > 1", also=(("controlnet", _cfg_controlnet),),
    ),
    Target(
        name="pixart-batched", pipelines=("PixArtAlphaPipeline", "PixArtSigmaPipeline"), model="transformer",
        mode="batched", inputs=("encoder_hidden_states", "encoder_attention_mask"), encode=_encode_pixart, prompts=(),
        options=(("clean_caption", True),), cfg=_cfg_local, needs="guidance_scale > 1",
    ),
    Target(
        name="sd3-batched", pipelines=("StableDiffusion3Img2ImgPipeline", "StableDiffusion3InpaintPipeline"),
        model="transformer", mode="batched", inputs=("encoder_hidden_states", "pooled_projections"), encode=_encode_sd3,
        prompts=("negative_prompt_2", "negative_prompt_3"), needs="guidance_scale > 1",
    ),
]


def target_for(pipeline) -> Target | None:
    for target in TARGETS:
        if target.serves(pipeline):
            return target
    return None


def supports(pipeline) -> bool:
    """Whether ``negdelay.apply`` serves this pipeline."""
    return target_for(pipeline) is not None


# -- the schedule -----------------------------------------------------------------------------------------


def _rows(negative_prompt, more: dict, start, stop, segments) -> tuple[list[list[tuple[sch.Point, int]]], list[tuple]]:
    """Per-entry schedules with keys = index into the list of texts to encode, and that list (tuples per encoder)."""
    if segments is not None:
        if negative_prompt is not None or start or stop or any(v is not None for v in more.values()):
            raise ValueError("segments carry their own texts and points: give no negative_prompt, start_*, stop_*")
        texts = list(dict.fromkeys(t for seg in segments for _, t in seg if t is not None))
        for t in texts:
            if not isinstance(t, str):
                raise TypeError(f"segments: texts must be str or None, got {t!r}")
        index = {t: j for j, t in enumerate(texts)}
        rows = [[(p, None if t is None else index[t]) for p, t in seg] for seg in segments]
        if not rows:
            raise ValueError("segments must hold at least one row")
        return rows, [(t,) * (1 + len(more)) for t in texts]
    if negative_prompt is None:
        raise ValueError("give negative_prompt (a str or a list of str, one per prompt or per image row)")
    first = [negative_prompt] if isinstance(negative_prompt, str) else negative_prompt
    if not isinstance(first, (list, tuple)) or not first or not all(isinstance(t, str) for t in first):
        raise TypeError(f"negative_prompt must be a str or a non-empty list of str, got {negative_prompt!r}")
    columns = [list(first)]
    for name, value in more.items():
        if value is None:
            columns.append(list(first))
            continue
        texts = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
        if not texts or not all(isinstance(t, str) for t in texts):
            raise TypeError(f"{name} must be a str or a non-empty list of str, got {value!r}")
        if len(texts) not in (1, len(first)):
            raise ValueError(f"{name} has {len(texts)} entries but negative_prompt has {len(first)}; give 1 or {len(first)}")
        columns.append(texts * len(first) if len(texts) == 1 else texts)
    texts = [tuple(row) for row in zip(*columns)]
    if any(p.kind == "step" and p.value == 0 for p in start):
        raise ValueError("start_step=0: to use the negative from the first step, pass it to the pipeline as negative_prompt=")
    lists = {"negative_prompt": len(texts), "start_*": len(start), "stop_*": len(stop or [None])}
    n = math.lcm(*lists.values())
    if any(v not in (1, n) for v in lists.values()):
        raise ValueError(f"list lengths differ ({', '.join(f'{k} has {v}' for k, v in lists.items())} entries)")
    keys = sch.expand(list(range(len(texts))), n, "negative_prompt")
    starts = sch.expand(start, n, "start_*")
    stops = sch.expand(stop, n, "stop_*") if stop else [None] * n
    for a, b in zip(starts, stops):
        if b is not None and a.kind == b.kind == "step" and b.value <= a.value:
            raise ValueError(f"stop_step must be after start_step; got start {a.value}, stop {b.value}")
    return [sch.window(a, k, b) for k, a, b in zip(keys, starts, stops)], texts


_MISSING = object()


def _get(kwargs: dict, name: str, default=None):
    """``kwargs[name]``; a dotted name reads a nested dict (``added_cond_kwargs.text_embeds``)."""
    head, _, rest = name.partition(".")
    value = kwargs.get(head, default if not rest else None)
    if rest:
        return value.get(rest, default) if isinstance(value, dict) else default
    return value


def _put(kwargs: dict, name: str, value) -> None:
    """Set ``kwargs[name]`` in place; a nested dict is copied first (the pipeline may share it between models)."""
    head, _, rest = name.partition(".")
    if rest:
        kwargs[head] = {**kwargs[head], rest: value}
    else:
        kwargs[head] = value


class _NoState(BaseState):
    def reset(self, *args, **kwargs) -> None:
        pass


class DelayedNegativeHook(ModelHook):
    """The hook ``apply`` registers on the denoiser. Stateful, so that diffusers hands it the cache context."""

    _is_stateful = True

    def __init__(self, pipeline, target: Target, rows, texts, options: dict | None = None, cfg: Callable | None = None,
                 shared: dict | None = None):
        super().__init__()
        self.pipeline = pipeline
        self.target = target
        self.cfg = cfg or target.cfg
        self.rows = rows
        self.texts = texts
        self.options = dict(options or {})
        self.context = StateManager(_NoState)  # diffusers sets .set_context() around cache_context blocks
        self._shared = shared if shared is not None else {}  # the encoded negative, shared by the hooks of one apply()
        self._new_call()
        self._timesteps = None
        self._count = 0
        self.last_plan: list[tuple] | None = None

    def _new_call(self) -> None:
        self._plan: list[tuple] | None = None
        self._built: dict[tuple, dict[str, torch.Tensor]] = {}
        self._uncond_seen = False
        self._warned = False
        self._step_calls = (None, 0)  # ordered mode: (iteration, calls made in it so far)
        self._guided: bool | None = None  # batched mode: the pipeline's guidance decision, fixed for a call

    def reset_state(self, module):
        self._new_call()
        self._timesteps = None
        return module

    # -- per call ---------------------------------------------------------------------------------------------

    def _iteration(self) -> tuple[int, bool]:
        """(loop iteration, whether this is the first denoiser call of a new pipeline call)."""
        sched = self.pipeline.scheduler
        timesteps = sched.timesteps
        fresh = timesteps is not self._timesteps
        if not hasattr(sched, "step_index"):
            if self.target.mode != "batched":
                raise ValueError(
                    f"negdelay.apply: {type(sched).__name__} has no step_index, so the hook cannot tell the step; "
                    "use a scheduler with step_index (e.g. FlowMatchEulerDiscreteScheduler)"
                )
            # one denoiser call per loop iteration (batched guidance): count the calls of this pipeline call
            it = 0 if fresh else self._count + 1
        else:
            index = sched.step_index
            if index is None:
                index = sched.begin_index or 0
            begin = len(timesteps) - (getattr(self.pipeline, "_num_timesteps", None) or len(timesteps))
            it = int(index) - begin
        self._count = it
        return it, fresh and it == 0

    def _begin(self, n_rows: int) -> None:
        rows = sch.expand(self.rows, n_rows, "negative_prompt / start_* / stop_* lists")
        need_sigmas = any(p.kind == "sigma" for seg in rows for p, _ in seg)
        self._plan = sch.plan(rows, run_facts(self.pipeline, need_sigmas))
        self.last_plan = self._plan

    def _negative(self, current: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The negative's rows, encoded once per pipeline call and shared by the hooks of one apply() (they see the
        same ``scheduler.timesteps``), as the stock pipeline encodes its ``negative_prompt``: LoRA loading,
        ``set_adapters``, ``fuse_lora`` or textual inversion change the text encoders in place between calls."""
        cached = self._shared.get("negative")
        if cached is None or cached[0] is not self._timesteps:
            with torch.no_grad():
                encoded = self.target.encode(self.pipeline, self.texts, current, **self.options)
            cached = self._shared["negative"] = (self._timesteps, encoded)
        return cached[1]

    def _unconditional(self, args, kwargs, it: int):
        """Rows of this call that are the unconditional pass: None (none of them) or (row count, in first half)."""
        mode = self.target.mode
        if mode == "batched":
            total = _get(kwargs, self.target.inputs[0]).shape[0]
            if self._guided is None:
                hidden = args[0] if args else kwargs.get("hidden_states", kwargs.get("sample"))
                self._guided = bool(self.cfg(self.pipeline, hidden, total))
            return (total // 2, True) if self._guided else None
        if mode == "context":
            context = self.context._context
            uncond = context is not None and context.name == "uncond"
        else:  # ordered: the second call of each step
            last, count = self._step_calls
            count = count + 1 if last == it else 0
            self._step_calls = (it, count)
            uncond = count == 1
        if not uncond:
            if it >= 1 and not self._uncond_seen and not self._warned:
                self._warned = True
                warnings.warn(
                    f"negdelay.apply: {type(self.pipeline).__name__} ran no unconditional pass, so the delayed "
                    f"negative does nothing; it needs {self.target.needs}",
                    stacklevel=3,
                )
            return None
        self._uncond_seen = True
        return _get(kwargs, self.target.inputs[0]).shape[0], False

    # -- the hook ---------------------------------------------------------------------------------------------

    def pre_forward(self, module, *args, **kwargs):
        running = _running_pipeline()
        if running is not None and running is not self.pipeline:
            # another pipeline shares this model (from_pipe, **components): this hook's steps, mode and guidance
            # decision are read from the pipeline it was applied to, so it would change that call silently
            raise RuntimeError(
                f"negdelay.apply was applied to a {type(self.pipeline).__name__}, but a {type(running).__name__} that "
                f"shares its {type(module).__name__} is calling it. Apply to the pipeline you call "
                f"(negdelay.apply(pipe, ...) replaces the earlier one), or negdelay.remove() the first pipeline first."
            )
        it, new_call = self._iteration()
        if new_call:
            self._timesteps = self.pipeline.scheduler.timesteps
            self._new_call()
        missing = [name for name in self.target.inputs if _get(kwargs, name, _MISSING) is _MISSING]
        if missing:
            raise TypeError(
                f"negdelay.apply: {type(module).__name__} was called without the keyword arguments {missing}; "
                f"negdelay expects {type(self.pipeline).__name__} to pass {list(self.target.inputs)} by keyword"
            )
        found = self._unconditional(args, kwargs, it)
        if found is None:
            return args, kwargs
        n_rows, half = found
        if self._plan is None:
            self._begin(n_rows)
        keys = self._plan[min(it, len(self._plan) - 1)]
        if all(k is None for k in keys):
            return args, kwargs
        # the unconditional rows for these keys, made once per call -- unless some rows keep the pipeline's own
        # ones, which a step-end callback may replace mid-call (prompt_embeds): those are merged at every call
        mixed = any(k is None for k in keys)
        built = None if mixed else self._built.get(keys)
        if built is None:
            current = {name: _get(kwargs, name) for name in self.target.inputs}
            own = {name: None if t is None else t[:n_rows] for name, t in current.items()}
            built = self.target.merge(own, self._negative(current), keys)
            if not mixed:
                self._built[keys] = built
        if half:  # [unconditional, conditional]: the conditional half is taken as the pipeline passes it
            built = {name: torch.cat([t, _get(kwargs, name)[n_rows:]]) for name, t in built.items()}
        out = dict(kwargs)
        for name, t in built.items():
            _put(out, name, t)
        return args, out


# -- public API -------------------------------------------------------------------------------------------


class Applied:
    """What ``apply`` returns: a handle whose ``with`` block ends with ``remove(pipe)``."""

    def __init__(self, pipeline, hook: DelayedNegativeHook):
        self.pipeline = pipeline
        self.hook = hook

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        remove(self.pipeline)
        return False

    @property
    def last_plan(self):
        return self.hook.last_plan


def apply(
    pipeline,
    negative_prompt: str | Sequence[str] | None = None,
    *,
    start_step: int | Sequence[int] | None = None,
    start_fraction: float | Sequence[float] | None = None,
    start_sigma: float | Sequence[float] | None = None,
    stop_step: int | Sequence[int] | None = None,
    stop_fraction: float | Sequence[float] | None = None,
    stop_sigma: float | Sequence[float] | None = None,
    segments=None,
    **more_prompts,
) -> Applied:
    """Delay ``negative_prompt`` on ``pipeline`` (one a step-end callback cannot serve) until the start step.

    Same schedule arguments and step semantics as ``DelayedNegative``; per-encoder negatives
    (``negative_prompt_2``, ...) as the pipeline takes them; encoding options where the pipeline's call has them
    (PixArt ``clean_caption=True``, QwenImage ``max_sequence_length=512``: give the values of your pipeline call).
    Applying again replaces the earlier schedule (idempotent); ``remove(pipeline)`` restores the stock pipeline.
    Returns a context manager.
    """
    target = target_for(pipeline)
    if target is None:
        from .families import family_for

        family = family_for(pipeline)
        hint = (
            " It is served by a step-end callback: pipe(..., callback_on_step_end="
            "DelayedNegative.for_pipeline(pipe, negative_prompt, start_step=...))."
            if family is not None
            else ""
        )
        served = sorted(p for t in TARGETS for p in t.pipelines)
        raise TypeError(
            f"negdelay.apply does not serve {type(pipeline).__name__}. It serves: {', '.join(served)}.{hint}"
        )
    defaults = dict(target.options)
    unknown = sorted(set(more_prompts) - set(target.prompts) - set(defaults))
    if unknown:
        raise TypeError(
            f"apply() got unknown arguments {unknown} for {type(pipeline).__name__}; allowed extra negatives: "
            f"{list(target.prompts)}, encoding options: {list(defaults)}"
        )
    options = {name: more_prompts.pop(name, value) for name, value in defaults.items()}
    start = sch.point_from("start", start_step, start_fraction, start_sigma, required=segments is None)
    stop = sch.point_from("stop", stop_step, stop_fraction, stop_sigma, required=False)
    more = {name: more_prompts.get(name) for name in target.prompts}
    rows, texts = _rows(negative_prompt, more, start, stop, segments)
    models = _models(pipeline, target)
    if models[0][0] is None:
        raise ValueError(f"{type(pipeline).__name__} has no {target.model}: nothing to hook")
    remove(pipeline)
    shared: dict = {}
    hooks = []
    for model, cfg in models:
        if model is None:
            continue
        hook = DelayedNegativeHook(pipeline, target, rows, texts, options, cfg=cfg, shared=shared)
        HookRegistry.check_if_exists_or_initialize(model).register_hook(hook, HOOK_NAME)
        hooks.append(hook)
    return Applied(pipeline, hooks[0])


def _models(pipeline, target: Target | None) -> list[tuple[object, Callable | None]]:
    """(model, its guidance test) for every model the target hooks, the main one first (any denoiser without one)."""
    pairs = [(target.model, target.cfg), *target.also] if target else [(n, None) for n in ("transformer", "unet", "controlnet")]
    return [(getattr(pipeline, name, None), cfg) for name, cfg in pairs]


def _registry_with_our_hook(model):
    registry = getattr(model, "_diffusers_hook", None)
    return registry if registry is not None and registry.get_hook(HOOK_NAME) is not None else None


def remove(pipeline) -> None:
    """Remove negdelay's hooks from ``pipeline`` (nothing happens when there are none)."""
    for model, _ in _models(pipeline, target_for(pipeline)):
        registry = _registry_with_our_hook(model)
        if registry is not None:
            registry.remove_hook(HOOK_NAME, recurse=False)


def is_applied(pipeline) -> bool:
    target = target_for(pipeline)
    return target is not None and _registry_with_our_hook(getattr(pipeline, target.model, None)) is not None
