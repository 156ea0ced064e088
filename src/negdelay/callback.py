"""``DelayedNegative``: a diffusers ``PipelineCallback`` that starts the negative prompt late.

Before the start step every unconditional row of ``prompt_embeds`` is whatever the pipeline itself uses
(the embedding of ``negative_prompt=`` given to the pipeline, or of the empty prompt); from the start step
on it is the negative's embedding; from an optional stop step on, the pipeline's own again.

At the first step of each call it reads the run's facts, resolves the schedule (``negdelay.schedule``) and
encodes the negative with the pipeline's own encoder (cached across calls). At switch steps it returns new
tensors with the unconditional rows replaced; on every other step it returns the dict it received, unchanged,
and does no work.

What a call resolved is that call's own state, kept per call (keyed by the calling thread and the pipeline), not
per instance: one instance may serve several pipeline calls running at the same time in different threads, and
each gets exactly the images it gets alone (docs/semantics.md, "Concurrency").
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Hashable, Sequence

import torch
from diffusers.callbacks import PipelineCallback

from . import schedule as sch
from .families import SD, Family, family_for, run_facts
from .families.base import lora_scale


class _Entry:
    """Key of entry ``j`` of the user's negative list (or row ``j`` of ``negative_prompt_embeds``).

    Keys are positions, not texts: the text encoder's output for a row can differ in the last bit with the
    row's position in the batch, so row ``j`` of the encoded list is used exactly where the stock pipeline
    would use it.
    """

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index

    def __eq__(self, other):
        return isinstance(other, _Entry) and other.index == self.index

    def __hash__(self):
        return hash(("_Entry", self.index))

    def __repr__(self):
        return f"negative[{self.index}]"


class _Call:
    """What one pipeline call resolved at its step 0: the switch steps, the negative's rows, the pipeline's own
    unconditional rows, which row of the negative serves which key, and the plan."""

    __slots__ = ("switches", "negative", "original", "row_of", "n_rows", "plan", "last_step")

    def __init__(self):
        self.switches: dict[int, tuple] = {}
        self.negative: dict[str, torch.Tensor] = {}
        self.original: dict[str, torch.Tensor] = {}
        self.row_of: dict[Hashable, int] = {}
        self.n_rows = 0
        self.plan: list[tuple] | None = None
        self.last_step = -1


def call_key(pipeline) -> tuple[int, int]:
    """Which call a callback invocation belongs to: the calling thread and the pipeline. A pipeline call runs its
    loop, and so its step-end callbacks, in the thread that called it; one thread runs one call of a pipeline at
    a time."""
    return threading.get_ident(), id(pipeline)


class DelayedNegativeBase(PipelineCallback):
    """Family-independent core. Use ``DelayedNegative`` (SD 1.x/2.x) or ``DelayedNegative.for_pipeline``."""

    family: Family = SD()

    def __init__(
        self,
        negative_prompt: str | Sequence[str] | None = None,
        *,
        negative_prompt_embeds: torch.Tensor | dict[str, torch.Tensor] | None = None,
        start_step: int | Sequence[int] | None = None,
        start_fraction: float | Sequence[float] | None = None,
        start_sigma: float | Sequence[float] | None = None,
        stop_step: int | Sequence[int] | None = None,
        stop_fraction: float | Sequence[float] | None = None,
        stop_sigma: float | Sequence[float] | None = None,
        start_percent: float | Sequence[float] | None = None,
        stop_percent: float | Sequence[float] | None = None,
        before: str = "unconditional",
        segments: Sequence[Sequence[tuple[sch.Point, str | None]]] | None = None,
    ):
        super().__init__()
        sch.check_before(before)
        starts = sch.point_from("start", start_step, start_fraction, start_sigma, start_percent,
                                required=segments is None)
        stops = sch.point_from("stop", stop_step, stop_fraction, stop_sigma, stop_percent, required=False)
        self._keys = self._negative_keys(negative_prompt, negative_prompt_embeds, segments)
        if segments is not None:
            if starts or stops:
                raise ValueError("give either segments or start_*/stop_*, not both")
            if before != "unconditional":
                raise ValueError("before: segments carry their own early behaviour (a (Point, schedule.CONDITIONAL) "
                                 "segment turns CFG off); give before= with start_*/stop_* only")
            self._rows = [list(seg) for seg in segments]
            if not self._rows:
                raise ValueError("segments must hold at least one row")
        else:
            if any(p.kind == "step" and p.value == 0 for p in starts):
                raise ValueError(
                    "start_step=0: a step-end callback cannot change step 0. To use the negative from the first "
                    "step, pass it to the pipeline instead: pipe(..., negative_prompt=...)"
                )
            lists = {"negative_prompt": len(self._keys), f"start_{starts[0].kind}": len(starts)}
            if stops:
                lists[f"stop_{stops[0].kind}"] = len(stops)
            n = max(lists.values())
            if any(v not in (1, n) for v in lists.values()):
                given = ", ".join(f"{k} has {v}" for k, v in lists.items())
                raise ValueError(f"list lengths differ ({given} entries): give lists of one length, or single values")
            keys = sch.expand(self._keys, n, "negative_prompt")
            starts = sch.expand(starts, n, "start_*")
            stops = sch.expand(stops, n, "stop_*") if stops else [None] * n
            for a, b in zip(starts, stops):
                if b is not None and a.kind == b.kind == "step" and b.value <= a.value:
                    raise ValueError(f"stop_step must be after start_step; got start {a.value}, stop {b.value}")
            self._rows = [sch.window(a, k, b, before) for k, a, b in zip(keys, starts, stops)]
        self._embeds = negative_prompt_embeds
        self._texts = [negative_prompt] if isinstance(negative_prompt, str) else negative_prompt
        self._cache: tuple | None = None  # (key, encoded): replaced whole, read once per use (threads share it)
        self._calls: dict[tuple[int, int], _Call] = {}  # the calls running now, by call_key
        self._plans: dict[int, list[tuple] | None] = {}  # per thread: the plan of its last call
        self.register_to_config(
            negative_prompt=negative_prompt,
            start=_describe(starts) if segments is None else None,
            stop=_describe(stops) if segments is None and stops and stops[0] is not None else None,
            before=before,
            family=self.family.name,
        )

    # -- construction helpers -------------------------------------------------------------------------------

    @staticmethod
    def _negative_keys(negative_prompt, negative_prompt_embeds, segments) -> list[Hashable]:
        if segments is not None:
            if negative_prompt is not None or negative_prompt_embeds is not None:
                raise ValueError("segments carry their own texts: do not also pass negative_prompt(_embeds)")
            return [None]
        if (negative_prompt is None) == (negative_prompt_embeds is None):
            raise ValueError("give exactly one of negative_prompt (str or list of str) and negative_prompt_embeds")
        if negative_prompt is not None:
            texts = [negative_prompt] if isinstance(negative_prompt, str) else negative_prompt
            if not isinstance(texts, (list, tuple)) or not texts or not all(isinstance(t, str) for t in texts):
                raise TypeError(f"negative_prompt must be a str or a non-empty list of str, got {negative_prompt!r}")
            return [_Entry(j) for j in range(len(texts))]
        first = negative_prompt_embeds
        if isinstance(first, dict):
            first = next(iter(first.values()), None)
        if not isinstance(first, torch.Tensor) or first.ndim < 2:
            raise TypeError("negative_prompt_embeds must be a tensor (rows, tokens, dim) or a dict of such tensors")
        return [_Entry(j) for j in range(first.shape[0])]

    # -- the diffusers callback interface --------------------------------------------------------------------

    @property
    def tensor_inputs(self) -> list[str]:
        # latents only to check, at the first step, that the rows are [unconditional, conditional] per image
        return list(self.family.tensor_inputs) + ["latents"]

    def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
        key = call_key(pipeline)
        if step_index == 0:
            for other in [k for k in list(self._calls) if k[0] == key[0]]:  # this thread's calls that ended early
                self._calls.pop(other, None)
            call = self._calls[key] = self._begin(pipeline, callback_kwargs)
            self._plans[key[0]] = call.plan
        else:
            call = self._calls.get(key)
            if call is None:  # no step 0 seen (or the call already ended): nothing to do
                return callback_kwargs
        if step_index >= call.last_step:
            self._calls.pop(key, None)  # the call's last step: forget its tensors
        keys = call.switches.get(step_index)
        if keys is None or not self.family.cfg_active(pipeline):
            return callback_kwargs
        n = call.n_rows
        for name, negative in call.negative.items():
            current = callback_kwargs[name]
            if current.shape[0] != 2 * n:  # no negative half left (e.g. after another callback's CFG cutoff)
                return callback_kwargs
            rows = [
                call.original[name][r : r + 1] if key is None
                else current[n + r : n + r + 1] if key is sch.CONDITIONAL  # CFG off: the conditional row
                else negative[call.row_of[key] : call.row_of[key] + 1]
                for r, key in enumerate(keys)
            ]
            callback_kwargs[name] = torch.cat(rows + [current[n:]])
        return callback_kwargs

    @property
    def last_plan(self) -> list[tuple] | None:
        """The plan (per loop iteration, the key of each row) of the last call this thread ran; None before any."""
        return self._plans.get(threading.get_ident())

    # -- per call --------------------------------------------------------------------------------------------

    def _begin(self, pipeline, callback_kwargs) -> _Call:
        """First step of a call: resolve this call's plan, encode what the plan uses."""
        call = _Call()
        if not self.family.cfg_active(pipeline):
            return call  # guidance_scale <= 1: there is no unconditional half; documented no-op
        n = self._check_layout(pipeline, callback_kwargs)
        rows = sch.expand(self._rows, n, "negative_prompt / start_* / stop_* lists")
        need_sigmas, need_axis = sch.needs(sch.row_points(rows))
        iteration_keys = sch.plan(rows, run_facts(pipeline, need_sigmas, need_axis=need_axis))
        self._check_no_cfg_at_step_0(iteration_keys[0], n, callback_kwargs)
        call.plan = iteration_keys
        call.switches = sch.switches(iteration_keys)
        call.last_step = len(iteration_keys) - 1
        if not call.switches:
            return call
        call.n_rows = n
        call.original = {name: callback_kwargs[name][:n] for name in self.family.tensor_inputs}
        if self._texts is None and self._embeds is None:  # segments: encode each text once, in order
            used = list(dict.fromkeys(k for seg in self._rows for _, k in seg if k not in sch.OWN))
            call.negative = self._encode(pipeline, used, callback_kwargs)
            call.row_of = {k: j for j, k in enumerate(used)}
        else:  # the user's list, in its order and batch, as the stock pipeline would encode it
            call.negative = self._encode(pipeline, self._texts, callback_kwargs)
            call.row_of = {k: k.index for k in self._keys}
        return call

    def _check_no_cfg_at_step_0(self, keys: tuple, n: int, callback_kwargs) -> None:
        """Rows that run without CFG from step 0 (``before="no_cfg"``): step 0 has run when a step-end callback first
        sees it, so its unconditional rows must already be the conditional ones; refuse otherwise."""
        for r, key in enumerate(keys):
            if key is not sch.CONDITIONAL:
                continue
            for name in self.family.tensor_inputs:
                rows = callback_kwargs[name]
                if not torch.equal(rows[r], rows[n + r]):
                    raise ValueError(
                        f"before='no_cfg' (image row {r}): step 0 has already run with the pipeline's own unconditional "
                        f"{name}, and a step-end callback cannot change step 0. Give the pipeline the prompt as its "
                        "negative (pipe(prompt, negative_prompt=prompt, ...)) so that step 0 runs without CFG too, or use "
                        "negdelay.apply(pipe, negative, before='no_cfg', ...), which changes step 0 itself"
                    )

    def _check_layout(self, pipeline, callback_kwargs) -> int:
        """Refuse pipelines whose rows are not ``[unconditional, conditional]`` per image; return the image rows."""
        name = type(pipeline).__name__
        other = family_for(pipeline)
        if other is not None and not isinstance(self.family, type(other)):
            raise TypeError(
                f"{type(self).__name__} is for the {self.family.name} family, but {name} belongs to the "
                f"{other.name} family: use DelayedNegative.for_pipeline(pipe, ...)"
            )
        missing = [k for k in self.family.tensor_inputs if k not in callback_kwargs]
        if missing:
            raise TypeError(
                f"{name} did not pass {missing} to this callback (pass callback_on_step_end_tensor_inputs="
                f"{self.tensor_inputs} if the pipeline does not read them from the callback); "
                "see DelayedNegative.for_pipeline for the supported pipelines"
            )
        first = callback_kwargs[self.family.tensor_inputs[0]]
        latents = callback_kwargs.get("latents")
        images = latents.shape[0] if latents is not None else first.shape[0] // 2
        if first.shape[0] != 2 * images:
            raise ValueError(
                f"{name} passes {first.shape[0]} {self.family.tensor_inputs[0]} rows for {images} images, not the "
                "[unconditional, conditional] layout a delayed negative replaces (e.g. PAG adds a third block); "
                "see DelayedNegative.for_pipeline for the supported pipelines"
            )
        return images

    def _encode(self, pipeline, texts: list[str] | None, current) -> dict[str, torch.Tensor]:
        if texts is None:
            given = self._embeds if isinstance(self._embeds, dict) else {self.family.tensor_inputs[0]: self._embeds}
            like = {name: current[name] for name in given}
            self.family.check_embeds(given, like)
            return {name: t.to(device=like[name].device, dtype=like[name].dtype) for name, t in given.items()}
        key = self._cache_key(pipeline, texts, current)
        cached = self._cache  # one read: another thread may replace it meanwhile
        if cached is None or cached[0] != key:
            cached = (key, self.family.encode(pipeline, list(texts), current))
            self._cache = cached
        return cached[1]

    def _cache_key(self, pipeline, used, current) -> tuple:
        """Everything the encoding depends on: texts, encoders (identity, and a content fingerprint of every
        parameter, so in-place edits, LoRA fusing and loaded state dicts are seen), PEFT adapter state,
        tokenizer sizes (textual inversion), device, dtype, token length, clip skip and LoRA scale. Holds no
        tensor (no tensor comparisons, nothing kept alive)."""
        encoders = [getattr(pipeline, n, None) for n in ("text_encoder", "text_encoder_2", "text_encoder_3")]
        encoders = [e for e in encoders if e is not None]
        tokenizers = (getattr(pipeline, n, None) for n in ("tokenizer", "tokenizer_2", "tokenizer_3"))
        first = current[self.family.tensor_inputs[0]]
        return (
            tuple(used), tuple(id(e) for e in encoders), tuple(_fingerprint(e) for e in encoders),
            tuple(len(t) for t in tokenizers if t is not None), str(first.device), str(first.dtype),
            first.shape[1], getattr(pipeline, "clip_skip", None), lora_scale(pipeline),
        )

    # -- picking the family ------------------------------------------------------------------------------------

    @classmethod
    def for_pipeline(cls, pipeline, negative_prompt=None, **schedule) -> "DelayedNegativeBase":
        """The delayed-negative callback for ``pipeline``'s family. Raises ``TypeError`` for pipelines a
        step-end callback cannot serve, naming the class and what is supported."""
        family = family_for(pipeline)
        if family is None:
            from .families import FAMILIES

            supported = sorted(p for f in FAMILIES for p in f.pipelines)
            hint = ""
            try:
                from .hooks import supports as hook_supports

                if hook_supports(pipeline):
                    hint = " This pipeline is covered by negdelay.apply(pipe, negative_prompt, start_step=...)."
            except ImportError:
                pass
            raise TypeError(
                f"{type(pipeline).__name__} is not supported by a delayed-negative callback. Supported pipelines: "
                f"{', '.join(supported)}.{hint}"
            )
        return callback_class(family)(negative_prompt, **schedule)


def _fingerprint(module: torch.nn.Module) -> tuple:
    """A cheap content fingerprint of a module: per parameter a few strided elements summed (read back in one
    transfer, at the first step only), plus PEFT's adapter state (scales, active and disabled adapters)."""
    params = [p.detach() for p in module.parameters()]
    if not params:
        return ()
    sums = torch.stack([p.reshape(-1)[:: max(1, p.numel() // 64)].float().sum() for p in params])
    adapters = tuple(
        (repr(getattr(m, "scaling", None)), repr(getattr(m, "active_adapters", None)), getattr(m, "disable_adapters", None))
        for m in module.modules()
        if hasattr(m, "scaling") and hasattr(m, "active_adapters")
    )
    versions = tuple(p._version for p in module.parameters())  # in-place edits (no_grad, copy_, fuse) bump it
    return (len(params), tuple(sums.tolist()), adapters, versions)


def _describe(points) -> object:
    if points is None or points[0] is None:
        return None
    values = [p.value for p in points]
    return {"kind": points[0].kind, "value": values[0] if len(set(values)) == 1 else values}


class DelayedNegative(DelayedNegativeBase):
    """Delay the negative prompt on Stable Diffusion 1.x/2.x pipelines (``prompt_embeds = [negative, positive]``).

    ``pipe(prompt, callback_on_step_end=DelayedNegative("glasses", start_step=5))`` guides steps 0-4 against
    the pipeline's own unconditional embedding and steps 5.. against "glasses".

    Args:
        negative_prompt: a str, or a list with one entry per prompt (or per image row) of the batch.
        negative_prompt_embeds: instead of text, precomputed embeddings ``(rows, tokens, dim)`` (e.g. compel).
        start_step / start_fraction / start_sigma: exactly one. Step k is the 0-based progress-bar step;
            a fraction f is step ``int(f * N)`` (N = steps that run); a sigma s is the first step whose noise
            level at its first UNet call is ``<= s``. Each may be a list: one start per prompt or per row.
        stop_step / stop_fraction / stop_sigma: optional; from there on the pipeline's own embedding again.
        start_percent / stop_percent: ComfyUI's start/end percent on the model's noise axis, converted with the
            scheduler's training noise schedule (or flow-matching shift) to a noise level; a start is the first
            step at or below it, a stop the first step below it (docs/semantics.md, "Coming from ComfyUI").
        before: what runs outside the negative's window (before the start, and from a stop on):
            ``"unconditional"`` (default): CFG against the pipeline's own unconditional embedding;
            ``"no_cfg"``: the conditional prediction alone (A1111's "Ignore negative prompt during early
            sampling"). A step-end callback cannot change step 0, so ``"no_cfg"`` needs the prompt as the
            pipeline's own negative, ``pipe(prompt, negative_prompt=prompt, ...)`` (checked at step 0);
            ``negdelay.apply`` has no such need.

    A start at or past the last step never comes (output equals the stock pipeline without this negative).
    ``start_step=0`` is refused (a step-end callback cannot change step 0: pass ``negative_prompt=`` to the
    pipeline). With ``guidance_scale <= 1`` there is no negative half and the callback does nothing.
    """

    family = SD()


_CLASSES: dict[str, type[DelayedNegativeBase]] = {"sd": DelayedNegative}


def register(family: Family, cls: type[DelayedNegativeBase]) -> None:
    """Make ``cls`` the callback class of ``family`` (used by the family modules)."""
    _CLASSES[family.name] = cls


def callback_class(family: Family) -> type[DelayedNegativeBase]:
    importlib.import_module(".families.callbacks", __package__)  # registers DelayedNegativeXL and DelayedNegativeSD3

    if family.name not in _CLASSES:
        _CLASSES[family.name] = type(f"DelayedNegative_{family.name}", (DelayedNegativeBase,), {"family": family})
    return _CLASSES[family.name]
