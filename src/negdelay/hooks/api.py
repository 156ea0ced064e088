"""The public entry points: ``apply``, ``remove``, ``is_applied``, ``supports``."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Sequence
from dataclasses import replace

from diffusers.hooks import HookRegistry

from .. import schedule as sch
from ..pipelines import declaration_for
from .calls import CallTracker
from .modes import HOOK_NAME, HOOKS
from .session import Session

_ATTRIBUTE = "_negdelay_applied"  # on the pipeline instance: what apply() installed, for remove()


class Applied:
    """What ``apply`` returns: a handle whose ``with`` block ends with ``remove(pipe)``. For a wrapper pipeline
    (a declaration's ``parts``) ``parts`` holds the handles of its sub-pipelines and ``session`` is None."""

    def __init__(self, pipeline, session: Session | None, models: list, parts: dict | None = None):
        self.pipeline = pipeline
        self.session = session
        self.models = models
        self.parts = parts or {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        remove(self.pipeline)
        return False

    @property
    def last_plan(self):
        """The plan of the last call: for each loop iteration, each unconditional row's key (None: own text); for a
        wrapper, ``{part: its plan}``."""
        if self.session is None:
            return {name: part.last_plan for name, part in self.parts.items()}
        return self.session.last_plan


def _is_modular(pipeline) -> bool:
    return any(cls.__name__ == "ModularPipeline" for cls in type(pipeline).__mro__)


def supports(pipeline) -> bool:
    """Whether ``negdelay.apply`` serves this pipeline."""
    if _is_modular(pipeline):
        from .. import guider

        return guider.supports(pipeline)
    return declaration_for(pipeline) is not None


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
    start_percent: float | Sequence[float] | None = None,
    stop_percent: float | Sequence[float] | None = None,
    before: str = "unconditional",
    segments=None,
    **more_prompts,
) -> Applied:
    """Delay ``negative_prompt`` on ``pipeline`` (any served pipeline: ``negdelay pipelines`` lists them).

    Same schedule arguments and step semantics as ``DelayedNegative``; per-encoder negatives
    (``negative_prompt_2``, ...) where the pipeline takes them. The negative is encoded with the pipeline's own
    ``encode_prompt`` and the arguments of each call (``max_sequence_length``, ``clean_caption``, ...).
    Applying again replaces the earlier schedule (idempotent); ``remove(pipeline)`` restores the stock pipeline.
    Returns a context manager.

    ``before="no_cfg"``: outside the negative's window (from step 0 to the start, and from a stop on) the
    unconditional pass is given the conditional pass's text inputs, so its prediction equals the conditional one
    and guidance returns the conditional prediction alone (A1111's "Ignore negative prompt during early
    sampling"). The pass is still computed (and its result discarded by the guidance formula): no time is saved.
    ``start_percent`` / ``stop_percent``: ComfyUI's percents of the model's noise axis (docs/semantics.md).

    A wrapper pipeline (``KandinskyCombinedPipeline``, ``StableCascadeCombinedPipeline``, ...) is served through the
    sub-pipelines it passes its negative to (``prior_pipe``, ``decoder_pipe``): each is applied with the same
    arguments, and each counts its own loop's steps.
    """
    if _is_modular(pipeline):  # modular diffusers: the guider is the home of a delayed negative
        from .. import guider

        schedule = dict(start_step=start_step, start_fraction=start_fraction, start_sigma=start_sigma,
                        stop_step=stop_step, stop_fraction=stop_fraction, stop_sigma=stop_sigma)
        if segments is not None or more_prompts:
            raise TypeError("apply() on a modular pipeline takes negative_prompt and start_*/stop_* only")
        return guider.apply(pipeline, negative_prompt, **{k: v for k, v in schedule.items() if v is not None})
    declaration = declaration_for(pipeline)
    if declaration is None:
        raise TypeError(
            f"negdelay does not serve {type(pipeline).__name__}: `negdelay pipelines` lists the served pipeline "
            "classes and why the others are not served"
        )
    schedule = dict(start_step=start_step, start_fraction=start_fraction, start_sigma=start_sigma,
                    stop_step=stop_step, stop_fraction=stop_fraction, stop_sigma=stop_sigma,
                    start_percent=start_percent, stop_percent=stop_percent, before=before, segments=segments)
    return _apply_declared(pipeline, declaration, negative_prompt, **schedule, **more_prompts)


def _apply_declared(pipeline, declaration, negative_prompt, **arguments) -> Applied:
    """``apply`` with the declaration that serves ``pipeline`` (a wrapper's part may be served by its own)."""
    if declaration.parts:
        return _apply_parts(pipeline, declaration, negative_prompt, **arguments)
    return _apply_one(pipeline, declaration, negative_prompt, **arguments)


def _apply_one(pipeline, declaration, negative_prompt, *, start_step=None, start_fraction=None, start_sigma=None,
               stop_step=None, stop_fraction=None, stop_sigma=None, start_percent=None, stop_percent=None,
               before="unconditional", segments=None, **more_prompts) -> Applied:
    """``apply`` on a pipeline its declaration serves directly: hooks on its denoisers, one session."""
    unknown = sorted(set(more_prompts) - set(declaration.prompts))
    if unknown:
        raise TypeError(
            f"apply() got unknown arguments {unknown} for {type(pipeline).__name__}; allowed extra negatives: "
            f"{list(declaration.prompts)}"
        )
    sch.check_before(before)
    start = sch.point_from("start", start_step, start_fraction, start_sigma, start_percent, required=segments is None)
    stop = sch.point_from("stop", stop_step, stop_fraction, stop_sigma, stop_percent, required=False)
    more = {name: more_prompts.get(name) for name in declaration.prompts}
    rows, texts = _rows(negative_prompt, more, start, stop, segments, before)
    models = [(name, getattr(pipeline, name, None)) for name in declaration.denoisers]
    if models[0][1] is None:
        raise ValueError(f"{type(pipeline).__name__} has no {declaration.denoisers[0]}: nothing to hook")
    remove(pipeline)
    for _, model in models:  # a pipeline sharing a model (from_pipe) had it hooked: applying here replaces that
        earlier = _our_hook(model)
        if earlier is not None:
            remove(earlier.session.pipeline)
    tracker = CallTracker(pipeline, declaration.starts)
    session = Session(pipeline, declaration, rows, texts, tracker)
    hooked = []
    for name, model in models:
        if model is None:
            continue
        registry = HookRegistry.check_if_exists_or_initialize(model)
        registry.register_hook(HOOKS[declaration.mode](session, name), HOOK_NAME)
        hooked.append(model)
    applied = Applied(pipeline, session, hooked)
    setattr(pipeline, _ATTRIBUTE, applied)
    return applied


def _apply_parts(pipeline, declaration, negative_prompt, **arguments) -> Applied:
    """A wrapper (Kandinsky's and Stable Cascade's combined pipelines): the same negative and schedule applied to each
    sub-pipeline that receives the negative text, in one handle; if one part refuses, none stays applied."""
    remove(pipeline)
    parts = {}
    try:
        for name, served in declaration.parts:
            part = getattr(pipeline, name, None)
            if part is None or declaration_for(part) is None:
                raise TypeError(f"{type(pipeline).__name__}.{name} is {type(part).__name__}, which negdelay does not "
                                "serve: the wrapper cannot be applied")
            if "wrapper" in inspect.signature(served.encode).parameters:  # it encodes through another part
                served = replace(served, encode=functools.partial(served.encode, wrapper=pipeline))
            parts[name] = _apply_declared(part, served, negative_prompt, **arguments)
    except BaseException:
        for applied in parts.values():
            remove(applied.pipeline)
        raise
    applied = Applied(pipeline, None, [], parts)
    setattr(pipeline, _ATTRIBUTE, applied)
    return applied


def _our_hook(model):
    registry = getattr(model, "_diffusers_hook", None)
    return None if registry is None else registry.get_hook(HOOK_NAME)


def remove(pipeline) -> None:
    """Remove what ``apply`` installed on ``pipeline`` (nothing happens when there is none)."""
    if _is_modular(pipeline):
        from .. import guider

        guider.remove(pipeline)
        return
    applied = pipeline.__dict__.pop(_ATTRIBUTE, None)
    if applied is None:
        return
    for part in applied.parts.values():  # a wrapper: its parts, where they still hold what it applied
        if part.pipeline.__dict__.get(_ATTRIBUTE) is part:
            remove(part.pipeline)
    if applied.session is None:
        return
    for model in applied.models:
        if _our_hook(model) is not None:
            model._diffusers_hook.remove_hook(HOOK_NAME, recurse=False)
    applied.session.tracker.restore()


def session_of(pipeline) -> Session | None:
    """The session ``apply`` installed on ``pipeline`` (None where nothing is applied, or for a wrapper)."""
    applied = pipeline.__dict__.get(_ATTRIBUTE)
    return None if applied is None else applied.session


def running_call(pipeline):
    """The state of ``pipeline``'s running call (its ``encode_args``), or None where nothing is applied: for a part
    of a wrapper that encodes with another part's call (Stable Cascade's decoder, with its prior's)."""
    session = session_of(pipeline)
    return None if session is None else session.tracker.state


def is_applied(pipeline) -> bool:
    if _is_modular(pipeline):
        from .. import guider

        return guider.is_applied(pipeline)
    return _ATTRIBUTE in pipeline.__dict__


def _rows(negative_prompt, more: dict, start, stop, segments,
          before: str = "unconditional") -> tuple[list[list[tuple[sch.Point, int]]], list[tuple]]:
    """Per-entry schedules with keys = index into the list of texts to encode (or None / ``CONDITIONAL``), and that
    list (tuples per encoder)."""
    if segments is not None:
        if negative_prompt is not None or start or stop or any(v is not None for v in more.values()):
            raise ValueError("segments carry their own texts and points: give no negative_prompt, start_*, stop_*")
        if before != "unconditional":
            raise ValueError("before: segments carry their own early behaviour (a (Point, schedule.CONDITIONAL) "
                             "segment turns CFG off); give before= with start_*/stop_* only")
        texts = list(dict.fromkeys(t for seg in segments for _, t in seg if t not in sch.OWN))
        for t in texts:
            if not isinstance(t, str):
                raise TypeError(f"segments: texts must be str or None, got {t!r}")
        index = {t: j for j, t in enumerate(texts)}
        rows = [[(p, t if t in sch.OWN else index[t]) for p, t in seg] for seg in segments]
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
    return [sch.window(a, k, b, before) for k, a, b in zip(keys, starts, stops)], texts
