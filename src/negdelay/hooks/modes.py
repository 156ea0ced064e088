"""One diffusers ``ModelHook`` class per mode: each only says which rows of a denoiser call are the unconditional
pass (``unconditional``); the session (``session.py``) decides what they become."""

from __future__ import annotations

from diffusers.hooks import ModelHook
from diffusers.hooks.hooks import BaseState, StateManager

from .session import Session, get_input

HOOK_NAME = "negdelay_delayed_negative"


class _NoState(BaseState):
    def reset(self, *args, **kwargs) -> None:
        pass


class DelayedNegativeHook(ModelHook):
    """Registered on a denoiser by ``negdelay.apply``. Stateful, so that diffusers hands it the cache context;
    the per-call state lives in the session's ``CallState``, not here."""

    _is_stateful = True

    def __init__(self, session: Session, denoiser: str):
        super().__init__()
        self.session = session
        self.denoiser = denoiser
        self.context = StateManager(_NoState)  # diffusers sets .set_context() around cache_context blocks

    def reset_state(self, module):
        return module

    def unconditional(self, call, it: int, args, kwargs) -> tuple | None:
        """(unconditional rows, None) for a whole call, (rows per block, (blocks, unconditional blocks)) for a
        batched call, or None."""
        raise NotImplementedError

    def pre_forward(self, module, *args, **kwargs):
        session = self.session
        call = session.tracker.running(module)
        it = session.iteration(call, self.denoiser)
        session.check_inputs(module, kwargs)
        found = self.unconditional(call, it, args, kwargs)
        if found is None:
            return args, kwargs
        return args, session.swap(call, self.denoiser, it, kwargs, *found)

    @property
    def last_plan(self):
        return self.session.last_plan


class BatchedHook(DelayedNegativeHook):
    """Blocks of rows in one call: ``[unconditional, conditional]`` by default, or the declaration's ``layout``
    (PAG adds a perturbed block, InstructPix2Pix has two unconditional ones). Guidance is decided once per call
    (the declaration's ``guided``, default the pipeline's ``do_classifier_free_guidance``); a call whose row count
    differs from the first guided call's (a CFG cutoff dropped the unconditional rows) is left alone."""

    def unconditional(self, call, it, args, kwargs):
        total = get_input(kwargs, self.session.declaration.inputs[0]).shape[0]
        decided = call.guided.get(self.denoiser)
        if decided is None:
            decided = call.guided[self.denoiser] = self._decide(call, total)
        if decided is None or total != decided[0]:
            return None
        _, count, uncond = decided
        return total // count, (count, uncond)

    def _decide(self, call, total):
        pipeline, declaration = self.session.pipeline, self.session.declaration
        guided = declaration.guided
        on = guided(pipeline, call, self.denoiser, total) if guided else bool(
            getattr(pipeline, "do_classifier_free_guidance", False))
        count, uncond = declaration.layout(pipeline) if declaration.layout else (2, (0,))
        return (total, count, uncond) if on and total % count == 0 else None


class ContextHook(DelayedNegativeHook):
    """A separate unconditional call inside ``cache_context("uncond")``."""

    def unconditional(self, call, it, args, kwargs):
        context = self.context._context
        if context is None or context.name != self.session.declaration.context:
            self.session.no_unconditional(call, it)
            return None
        return get_input(kwargs, self.session.declaration.inputs[0]).shape[0], None


class OrderedHook(DelayedNegativeHook):
    """A separate unconditional call, the second denoiser call of each loop iteration."""

    def unconditional(self, call, it, args, kwargs):
        last, count = call.in_step.get(self.denoiser, (None, 0))
        count = count + 1 if last == it else 0
        call.in_step[self.denoiser] = (it, count)
        if count != 1:
            self.session.no_unconditional(call, it)
            return None
        return get_input(kwargs, self.session.declaration.inputs[0]).shape[0], None


HOOKS = {"batched": BatchedHook, "context": ContextHook, "ordered": OrderedHook}
