"""One ``apply``: the schedule, the texts, the declaration, and the work done per denoiser call.

The hooks (``modes.py``) only say which rows of a denoiser call are the unconditional pass; the session decides,
from the plan of the running call, what those rows become.
"""

from __future__ import annotations

import warnings

import torch

from .. import schedule as sch
from ..families.base import run_facts
from ..pipelines.rows import cat, concat_rows
from .calls import CallState, CallTracker

_MISSING = object()


def get_input(kwargs: dict, name: str, default=None):
    """``kwargs[name]``; a dotted name reads a nested dict (``added_cond_kwargs.text_embeds``)."""
    head, _, rest = name.partition(".")
    value = kwargs.get(head, default if not rest else None)
    if rest:
        return value.get(rest, default) if isinstance(value, dict) else default
    return value


def put_input(kwargs: dict, name: str, value) -> None:
    """Set ``kwargs[name]``; a nested dict is copied first (the pipeline may share it between models)."""
    head, _, rest = name.partition(".")
    if rest:
        kwargs[head] = {**kwargs[head], rest: value}
    else:
        kwargs[head] = value


class Session:
    def __init__(self, pipeline, declaration, rows, texts, tracker: CallTracker):
        self.pipeline = pipeline
        self.declaration = declaration
        self.rows = rows
        self.texts = texts
        self.tracker = tracker
        self.merge = declaration.merge or concat_rows
        self.last_plan: list[tuple] | None = None

    # -- where the loop is ------------------------------------------------------------------------------------

    def iteration(self, call: CallState, denoiser: str) -> int:
        """The loop iteration of this denoiser call: the scheduler's step index, relative to the call's first
        denoiser call (img2img begins later); schedulers without one (DDIM, PNDM) count calls (batched mode)."""
        sched = self.pipeline.scheduler
        if hasattr(sched, "step_index"):
            if call.base_index is None:
                call.base_index = self._first_index(sched)
            index = sched.step_index
            return 0 if index is None else int(index) - call.base_index
        if self.declaration.mode != "batched":
            raise ValueError(
                f"negdelay.apply: {type(sched).__name__} has no step_index, so the hook cannot tell the step of "
                f"{type(self.pipeline).__name__}'s separate unconditional pass; use a scheduler with step_index "
                "(e.g. FlowMatchEulerDiscreteScheduler)"
            )
        count = call.calls.get(denoiser, 0)
        call.calls[denoiser] = count + 1
        return count

    def _first_index(self, sched) -> int:
        """The scheduler index of the loop's first timestep: its step index if it has one already, else its begin
        index (img2img sets it), else the timesteps the pipeline skips (``len(timesteps) - _num_timesteps``); a
        scheduler without ``set_begin_index`` finds that index from the timestep at its first ``step``."""
        if sched.step_index is not None:
            return int(sched.step_index)
        begin = getattr(sched, "begin_index", None)
        if begin is not None:
            return int(begin)
        run = getattr(self.pipeline, "_num_timesteps", None)
        return len(sched.timesteps) - int(run) if run else 0

    def check_inputs(self, module, kwargs) -> None:
        missing = [n for n in self.declaration.inputs if get_input(kwargs, n, _MISSING) is _MISSING]
        if missing:
            raise TypeError(
                f"negdelay.apply: {type(module).__name__} was called without the keyword arguments {missing}; "
                f"negdelay expects {type(self.pipeline).__name__} to pass {list(self.declaration.inputs)} by keyword"
            )

    def no_unconditional(self, call: CallState, it: int) -> None:
        """Called for a separate-pass pipeline's call that is not unconditional: warn once per call when a whole
        step has passed without any unconditional pass (guidance off): the delayed negative does nothing."""
        if it >= 1 and not call.uncond_seen and not call.warned:
            call.warned = True
            warnings.warn(
                f"negdelay.apply: {type(self.pipeline).__name__} ran no unconditional pass, so the delayed negative "
                f"does nothing; it needs {self.declaration.needs}",
                stacklevel=4,
            )

    # -- what the unconditional rows become -------------------------------------------------------------------

    def _plan(self, call: CallState, n_rows: int) -> list[tuple]:
        if call.plan is None:
            rows = sch.expand(self.rows, n_rows, "negative_prompt / start_* / stop_* lists")
            need_sigmas = any(p.kind == "sigma" for seg in rows for p, _ in seg)
            call.plan = sch.plan(rows, run_facts(self.pipeline, need_sigmas, begin=call.base_index))
            self.last_plan = call.plan
        return call.plan

    def _negative(self, call: CallState, current: dict) -> dict:
        """The negative's rows, encoded once per pipeline call (LoRA, textual inversion or fused weights can change
        the text encoders in place between calls), as the stock pipeline encodes its ``negative_prompt``."""
        if call.negative is None:
            with torch.no_grad(), self.tracker.quietly():
                call.negative = self.declaration.encode(self.pipeline, self.texts, current, call)
        return call.negative

    def swap(self, call: CallState, denoiser: str, it: int, kwargs: dict, n_rows: int, blocks=None) -> dict:
        """``kwargs`` with the unconditional rows replaced as the plan says for iteration ``it``: all ``n_rows``
        rows of the call, or (``blocks = (count, unconditional)``) each unconditional block of ``n_rows`` rows of a
        call made of ``count`` such blocks."""
        call.uncond_seen = True
        plan = self._plan(call, n_rows)
        keys = plan[min(it, len(plan) - 1)]
        if all(k is None for k in keys):
            return kwargs
        # rows that keep the pipeline's own text may be replaced mid-call by a step-end callback: merged every call
        mixed = any(k is None for k in keys)
        built = None if mixed else call.built.get((denoiser, keys))
        if built is None:
            first = 0 if blocks is None else blocks[1][0] * n_rows
            current = {n: get_input(kwargs, n) for n in self.declaration.inputs}
            own = {n: None if t is None else t[first : first + n_rows] for n, t in current.items()}
            built = self.merge(own, self._negative(call, own), keys)
            if not mixed:
                call.built[(denoiser, keys)] = built
        if blocks is not None:  # the other blocks (conditional, perturbed, ...) as the pipeline passes them
            count, uncond = blocks
            built = {n: cat([t if b in uncond else get_input(kwargs, n)[b * n_rows : (b + 1) * n_rows]
                             for b in range(count)]) for n, t in built.items()}
        out = dict(kwargs)
        for name, tensor in built.items():
            put_input(out, name, tensor)
        return out
