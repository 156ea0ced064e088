"""An independent reference for the contract, written without negdelay: no registry, no modes, no encoders.

Two stock runs are recorded, model call by model call: A with the pipeline's own negative, B with the negative as
``negative_prompt``. The text-carrying inputs are found as the keyword arguments that are constant over a call slot
(model, position within the step) in both runs and differ between them; the reference is the stock run A whose
models get B's values of exactly those inputs (only the differing rows, or the whole value where its shape differs)
at the calls of chosen progress-bar steps, counted with the pipeline's own progress bar (a pipeline that loops
over its scheduler's timesteps with ``tqdm`` directly, once per chunk: by the items of each such loop, ``_ChunkSteps``).

A pipeline that calls other pipelines (a combined pipeline's prior, then its decoder) counts each loop's steps with
that pipeline's progress bar; models that run one after another are judged in that order (``staged_text_inputs``):
what the prior made of the negative reaches the decoder as an input that differs between A and B, but it is the
prior's output, not the decoder's text.
"""

from __future__ import annotations

import contextlib
import inspect
import sys

import torch

#: components that never see the denoising loop's text inputs as a denoiser
_NOT_DENOISERS = ("text_encoder", "tokenizer", "vae", "image_encoder", "safety_checker", "feature_extractor",
                  "processor", "vocoder", "audio_vae", "image_processor", "connectors", "scheduler", "siglip")


class _Bar:
    """The pipeline's progress bar, counting steps: ``update()`` in a ``with`` block, or iteration
    (``for t in self.progress_bar(timesteps)``: one step after each item). A new bar starts counting at 0 (a prior
    loop before the denoising loop has its own steps)."""

    def __init__(self, counter, iterable=None):
        self.counter = counter
        self.iterable = iterable
        counter["step"] = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.counter["step"] += 1

    def update(self, n=1):
        self.counter["step"] += n


class _ChunkSteps:
    """A loop a pipeline runs over its scheduler's timesteps with ``tqdm`` itself instead of its progress bar (AnyFlow
    FAR: one such loop per chunk, each chunk a full run): its steps are its items, counted from 0 in every loop, and
    the calls of each loop take slots anew. A model call after the loop (FAR's KV-cache pass after a chunk) counts
    as the loop's last step, in a slot of its own (the last step took the first)."""

    def __init__(self, counter, per_step, iterable):
        self.counter, self.per_step, self.iterable = counter, per_step, iterable

    def __iter__(self):
        self.per_step.clear()
        for i, item in enumerate(self.iterable):
            self.counter["step"] = i
            yield item


@contextlib.contextmanager
def _direct_tqdm(pipe, counter, per_step):
    """Within the block, the ``tqdm`` of the pipeline's own module counts a loop over the scheduler's timesteps
    (``_ChunkSteps``); other loops (FAR's loop over chunks) are left to tqdm."""
    module = sys.modules[type(pipe).__module__]
    own = module.__dict__.get("tqdm")
    if own is None:
        yield
        return

    def counting(iterable=None, *args, **kwargs):
        if iterable is not None and iterable is pipe.scheduler.timesteps:
            return _ChunkSteps(counter, per_step, iterable)
        return own(iterable, *args, **kwargs)

    module.tqdm = counting
    try:
        yield
    finally:
        module.tqdm = own


def pipelines(pipe) -> list:
    """The pipeline and the pipelines it calls (a combined pipeline's ``prior_pipe``, ``decoder_pipe``): each counts
    its own loop's steps with its own progress bar."""
    from diffusers import DiffusionPipeline

    return [pipe] + [v for v in vars(pipe).values() if isinstance(v, DiffusionPipeline)]


def denoisers(pipe) -> list[str]:
    return [
        name for name, module in pipe.components.items()
        if isinstance(module, torch.nn.Module) and not any(name.startswith(p) for p in _NOT_DENOISERS)
    ]


def _tensors(value) -> bool:
    """A tensor, or a non-empty list of them, or of such lists (Z-Image Omni's captions: segments per row)."""
    if isinstance(value, (list, tuple)):
        return bool(value) and all(_tensors(v) for v in value)
    return isinstance(value, torch.Tensor)


def _copy(value):
    return value.detach().clone() if isinstance(value, torch.Tensor) else [_copy(v) for v in value]


def _flat(kwargs: dict, prefix="") -> dict:
    """Nested dicts flattened to dotted names; tensors and (nested) lists of tensors kept, other values skipped."""
    out = {}
    for key, value in kwargs.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, name + "."))
        elif _tensors(value):
            out[name] = _copy(value)
    return out


def _set(kwargs: dict, name: str, value) -> None:
    head, _, rest = name.partition(".")
    if rest:
        kwargs[head] = dict(kwargs[head])
        _set(kwargs[head], rest, value)
    else:
        kwargs[head] = value


def _get(kwargs: dict, name: str):
    head, _, rest = name.partition(".")
    return _get(kwargs[head], rest) if rest else kwargs[head]


@contextlib.contextmanager
def watch(pipe, change=None):
    """Within the block every denoiser call is recorded as ``(step, model, slot, flat kwargs)``; ``change(step,
    model, slot, kwargs)`` may edit the (name-bound) keyword arguments first."""
    counter = {"step": 0}
    calls, per_step = [], {}
    modules = {name: getattr(pipe, name) for name in denoisers(pipe)}

    def wrap(name, module):
        forward = module.forward
        names = list(inspect.signature(forward).parameters)

        def wrapped(*args, **kwargs):
            kwargs = {**dict(zip(names, args)), **kwargs}
            key = (counter["step"], name)
            slot = per_step[key] = per_step.get(key, -1) + 1
            if change is not None:
                change(counter["step"], name, slot, kwargs)
            calls.append((counter["step"], name, slot, _flat(kwargs)))
            return forward(**kwargs)

        module.forward = wrapped

    for name, module in modules.items():
        wrap(name, module)
    for each in pipelines(pipe):
        each.progress_bar = lambda iterable=None, **k: _Bar(counter, iterable)
    try:
        with _direct_tqdm(pipe, counter, per_step):
            yield calls
    finally:
        for module in modules.values():
            del module.forward
        for each in pipelines(pipe):
            del each.progress_bar


def _equal(a, b) -> bool:
    if isinstance(a, list) != isinstance(b, list):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)


def _structure(value):
    return [_structure(v) for v in value] if isinstance(value, (list, tuple)) else tuple(value.shape)


def by_slot(calls) -> dict[tuple[str, int], list[dict]]:
    """A run's recorded calls grouped by ``(model, slot)``: each slot's keyword arguments, in step order."""
    slots: dict[tuple[str, int], list[dict]] = {}
    for _step, model, slot, kw in calls:
        slots.setdefault((model, slot), []).append(kw)
    return slots


def text_inputs(calls_a, calls_b) -> dict[tuple[str, int], dict[str, object]]:
    """``{(model, slot): {input name: (A's value, B's value)}}`` for the inputs that are constant over the slot's
    calls in both runs (calls where the input has another structure -- CFG truncation drops the unconditional
    entries -- do not count) and differ between them. Each slot must be called at two steps at least."""
    a, b = by_slot(calls_a), by_slot(calls_b)
    assert a.keys() == b.keys(), f"runs A and B call different model slots: {sorted(a)} vs {sorted(b)}"
    found = {}
    for key in a:
        assert len(a[key]) == len(b[key]), f"slot {key}: called {len(a[key])}/{len(b[key])} times"
        if len(a[key]) < 2:  # called once per run (an adapter, a prior's encoder): no step a delay could change
            continue
        first_a, first_b = a[key][0], b[key][0]
        for name in first_a:
            if name not in first_b:
                continue
            like_a = [kw[name] for kw in a[key] if _structure(kw[name]) == _structure(first_a[name])]
            like_b = [kw[name] for kw in b[key] if _structure(kw[name]) == _structure(first_b[name])]
            constant = len(like_a) >= 2 and all(_equal(v, first_a[name]) for v in like_a) and all(
                _equal(v, first_b[name]) for v in like_b)
            if constant and not _equal(first_a[name], first_b[name]):
                found.setdefault(key, {})[name] = (first_a[name], first_b[name])
    return found


def stages(calls) -> list[set[str]]:
    """The models in groups that run one after another (a combined pipeline's prior loop, then its decoder loop): a
    model first called after the last call of every model before it starts a new group."""
    first, last = {}, {}
    for i, (_, model, _, _) in enumerate(calls):
        first.setdefault(model, i)
        last[model] = i
    groups: list[set[str]] = []
    for model in sorted(first, key=first.get):
        if groups and first[model] < max(last[m] for group in groups for m in group):
            groups[-1].add(model)
        else:
            groups.append({model})
    return groups


def staged_text_inputs(calls_a, calls_b, run_b) -> dict:
    """``text_inputs``, judged one group of ``stages`` at a time where models run one after another: a later group's
    text inputs are those that differ between run A and a run given B's negative (``run_b(change) -> calls``) in which
    the earlier groups keep A's text inputs, so that what an earlier model made of the negative (a prior's image
    embedding, passed on to the decoder) does not count as a text input of the later one."""
    values = text_inputs(calls_a, calls_b)
    called = {}
    for _, model, slot, _ in calls_a:
        called[(model, slot)] = called.get((model, slot), 0) + 1
    groups = stages(calls_a)
    for i, group in enumerate(groups[1:], start=1):
        earlier = set().union(*groups[:i])
        held = {key: {n: (b, a) for n, (a, b) in inputs.items()} for key, inputs in values.items() if key[0] in earlier}
        if not held or not any(n >= 2 for (model, _), n in called.items() if model in group):
            continue
        again = text_inputs(calls_a, run_b(substituting(held, 0)))
        values = {k: v for k, v in values.items() if k[0] not in group}
        values.update({k: v for k, v in again.items() if k[0] in group})
    return values


def _rows_replaced(mine, theirs):
    """B's value where its shape differs; else A's value with the rows that differ taken from B."""
    if isinstance(mine, (list, tuple)):
        return [_rows_replaced(m, t) for m, t in zip(mine, theirs)] if len(mine) == len(theirs) else list(theirs)
    if mine.shape != theirs.shape:
        return theirs
    differ = (mine != theirs).reshape(mine.shape[0], -1).any(dim=1)
    out = mine.clone()
    out[differ] = theirs[differ]
    return out


def substituting(values, first_step: int, only=None, skip=()):
    """A ``change`` for ``watch``: from ``first_step`` on, the slots' text inputs get B's rows. A model that keeps its
    text's keys/values in a prefix cache after its first call (``kv_cache_mode="cached"``, Qwen-Image 2.1) is called
    in its own ``"extract"`` mode at ``first_step``, where its text changes: it fills the cache again from B's text."""
    def change(step, model, slot, kwargs):
        if step < first_step:
            return
        changed = False
        for name, (mine, theirs) in values.get((model, slot), {}).items():
            current = _get(kwargs, name)
            if _structure(current) != _structure(mine):  # a call without the unconditional entries
                continue
            if (only is None or name in only) and name not in skip and (model, name) not in skip:
                _set(kwargs, name, _rows_replaced(current, theirs))
                changed = True
        if changed and step == first_step and kwargs.get("kv_cache_mode") == "cached":
            kwargs["kv_cache_mode"] = "extract"
    return change
