"""One diffusers ``ModelHook`` class per mode: each only says which rows of a denoiser call are the unconditional
pass (``unconditional``); the session (``session.py``) decides what they become."""

from __future__ import annotations

from diffusers.hooks import ModelHook
from diffusers.hooks.hooks import BaseState, StateManager

import inspect

import torch

from ..pipelines.rows import count
from .session import Session, get_input, put_input

HOOK_NAME = "negdelay_delayed_negative"
_ABSENT = object()


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
        args, kwargs = self._by_keyword(module, args, kwargs)
        it = session.iteration(call, self.denoiser)
        session.check_inputs(module, kwargs)
        found = self.unconditional(call, it, args, kwargs)
        if found is None:
            return args, kwargs
        return args, self.swap(call, it, kwargs, *found)

    def swap(self, call, it: int, kwargs: dict, n_rows: int, blocks=None) -> dict:
        """``kwargs`` with the unconditional rows replaced (the session's ``swap``)."""
        return self.session.swap(call, self.denoiser, it, kwargs, n_rows, blocks)

    def _by_keyword(self, module, args, kwargs):
        """Positional arguments bound to their names where a text input came positionally (Z-Image's captions)."""
        if not args or all(n.partition(".")[0] in kwargs for n in self.session.declaration.inputs):
            return args, kwargs
        names = [p for p in inspect.signature(type(module).forward).parameters if p != "self"]
        return (), {**dict(zip(names, args)), **kwargs}


class BatchedHook(DelayedNegativeHook):
    """Blocks of rows in one call: ``[unconditional, conditional]`` by default, or the declaration's ``layout``
    (PAG adds a perturbed block, InstructPix2Pix has two unconditional ones). Guidance is decided once per call
    (the declaration's ``guided``, default the pipeline's ``do_classifier_free_guidance``); a call whose row count
    differs from the first guided call's (a CFG cutoff dropped the unconditional rows) is left alone.

    With the declaration's ``pad`` (pipelines that pad prompt and negative rows to one width) each unconditional block
    is swapped on its own and all blocks are joined by that rule: a negative of another token length re-pads the
    conditional rows too, as the stock pipeline would have padded them for that ``negative_prompt``. There an input
    that is a list of row-batched tensors (Bria Fibo's per-layer states) is one tensor stacked on dim 2 (rows, tokens,
    list entries, ...) for the session and the rule, and a list again in the call; the rule's ``optional`` inputs
    (a mask the pipeline leaves out when nothing is padded) are None where the pipeline left them out; its
    ``follows`` inputs (no rows, only the text width: Bria Fibo's ``txt_ids``) are not cut into blocks."""

    def pre_forward(self, module, *args, **kwargs):
        for name in getattr(self.session.declaration.pad, "optional", ()):
            head = name.partition(".")[0]
            if get_input(kwargs, name, _ABSENT) is _ABSENT and (head == name or isinstance(kwargs.get(head), dict)):
                put_input(kwargs, name, None)  # left out = None, the model's default
        return super().pre_forward(module, *args, **kwargs)

    def unconditional(self, call, it, args, kwargs):
        total = count(get_input(kwargs, self.session.declaration.inputs[0]))
        decided = call.guided.get(self.denoiser)
        if decided is None:
            decided = call.guided[self.denoiser] = self._decide(call, total)
        if decided is None or total != decided[0]:
            return None
        _, blocks, uncond = decided
        return total // blocks, (blocks, uncond)

    layout = (2, (0,))  # [unconditional, conditional]

    def swap(self, call, it, kwargs, n_rows, blocks=None):
        pad = self.session.declaration.pad
        if pad is None or blocks is None:
            return super().swap(call, it, kwargs, n_rows, blocks)
        session, names = self.session, self.session.declaration.inputs
        count, uncond = blocks
        whole = getattr(pad, "follows", ())  # not rows: inputs that only follow the text width (txt_ids)
        parts = [self._block(kwargs, [n for n in names if n not in whole], b, n_rows) for b in range(count)]
        conditional = next(b for b in range(count) if b not in uncond)
        session.seen_conditional(call, self.denoiser, it, parts[conditional])  # before="no_cfg": its text
        changed = False
        for b in uncond:
            swapped = session.swap(call, self.denoiser, it, parts[b], n_rows)
            changed, parts[b] = changed or swapped is not parts[b], swapped
        if not changed:
            return kwargs
        out = dict(kwargs)
        keys = call.plan[min(it, len(call.plan) - 1)]  # this step's text per unconditional row (None: own)
        joined = pad([{n: get_input(part, n) for n in names} for part in parts], call, keys)
        for name, value in joined.items():
            if isinstance(get_input(kwargs, name), (list, tuple)):
                value = list(value.unbind(dim=2))
            put_input(out, name, value)
        return out

    @staticmethod
    def _block(kwargs: dict, names, b: int, n_rows: int) -> dict:
        """``kwargs`` with each text input cut to block ``b`` (rows ``b * n_rows`` to ``(b + 1) * n_rows``); a list of
        tensors is stacked on dim 2 first."""
        part = dict(kwargs)
        for name in names:
            value = get_input(kwargs, name)
            if isinstance(value, (list, tuple)):
                value = torch.stack(list(value), dim=2)
            put_input(part, name, None if value is None else value[b * n_rows : (b + 1) * n_rows])
        return part

    def _decide(self, call, total):
        pipeline, declaration = self.session.pipeline, self.session.declaration
        guided = declaration.guided
        on = guided(pipeline, call, self.denoiser, total) if guided else bool(
            getattr(pipeline, "do_classifier_free_guidance", False))
        blocks, uncond = declaration.layout(pipeline, call) if declaration.layout else self.layout
        return (total, blocks, uncond) if on and total % blocks == 0 else None


class ContextHook(DelayedNegativeHook):
    """A separate unconditional call inside ``cache_context("uncond")``."""

    def unconditional(self, call, it, args, kwargs):
        context = self.context._context
        if context is None or context.name != self.session.declaration.context:
            self.session.seen_conditional(call, self.denoiser, it, kwargs)
            self.session.no_unconditional(call, it)
            return None
        return count(get_input(kwargs, self.session.declaration.inputs[0])), None


class OrderedHook(DelayedNegativeHook):
    """A separate unconditional call, the second denoiser call of each loop iteration."""

    def unconditional(self, call, it, args, kwargs):
        last, calls = call.in_step.get(self.denoiser, (None, 0))
        calls = calls + 1 if last == it else 0
        call.in_step[self.denoiser] = (it, calls)
        if calls == 0:
            self.session.seen_conditional(call, self.denoiser, it, kwargs)
        if calls != 1:
            self.session.no_unconditional(call, it)
            return None
        return count(get_input(kwargs, self.session.declaration.inputs[0])), None


class ListHook(BatchedHook):
    """A list-of-tensors batch ``[conditional..., unconditional...]`` (Z-Image): the second half is unconditional;
    steps that drop it (CFG truncation) have half the entries and are left alone."""

    layout = (2, (1,))


HOOKS = {"batched": BatchedHook, "context": ContextHook, "ordered": OrderedHook, "list": ListHook}
