"""An independent reference for a delayed negative on a modular pipeline: no negdelay code, no guider wrapper.

It wraps the denoiser's ``forward`` (every denoiser the case names: ``transformer``, ``transformer_2``, ...)
and records each call's keyword arguments. Steps are counted from the calls themselves: a call whose
timestep differs from the previous call's starts the next step, a timestep that goes up starts a new run
(chunked video) at step 0. Within a step, the guider's batches run in its order, conditional first, so the
second call of a step is the unconditional one.

``reference(case, negative, k)``: the stock pipeline with its own unconditional inputs, except that the
unconditional calls of steps ``>= k`` get the text inputs of the same call of a stock run that was given the
negative as ``negative_prompt``. Text inputs are the keyword arguments in which the two stock runs'
unconditional calls of step 0 differ (embeddings, masks, text ids, lengths, ...).
"""

from __future__ import annotations

import contextlib
import functools
import inspect

import torch


def _scalar_t(t) -> float:
    if isinstance(t, torch.Tensor):
        return float(t.detach().float().max())
    return float(t)


def _same(a, b) -> bool:
    if a is b:
        return True
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001
        return False


@contextlib.contextmanager
def denoiser_calls(pipe, names, change=None, timestep_key="timestep", skip=None):
    """Record ``(step, role, kwargs)`` per denoiser call (role 0: first call of its step, 1: second, ...);
    ``calls.per_denoiser`` counts the calls of each denoiser.

    ``change(index, step, role, kwargs)`` may edit ``kwargs`` in place before the call runs. Calls for which
    ``skip(kwargs)`` holds are neither counted nor changed (Wan-Animate 2's reference pass, which fills a KV cache
    before each segment's steps).
    """
    calls = _Calls()
    count = {"step": -1, "t": None, "role": 0, "sign": 0, "shape": None}
    modules = [getattr(pipe, n) for n in names]

    def wrap(name, module):
        forward = module.forward
        params = list(inspect.signature(forward).parameters)

        @functools.wraps(forward)  # the loops read the denoiser's signature to pick its keyword arguments
        def wrapped(*args, **kwargs):
            kwargs = {**dict(zip(params, args)), **kwargs}
            if skip is not None and skip(kwargs):
                return forward(**kwargs)
            t = _scalar_t(kwargs[timestep_key])
            sign = 0 if count["t"] is None else (t > count["t"]) - (t < count["t"])
            latents = kwargs.get("hidden_states")
            shape = tuple(latents.shape) if isinstance(latents, torch.Tensor) else None
            reshaped, count["shape"] = count["shape"] is not None and shape != count["shape"], shape
            if count["t"] is None or reshaped or (sign and count["sign"] and sign != count["sign"]):
                count["step"], count["role"], count["sign"] = 0, 0, 0
            elif sign:
                count["step"], count["role"], count["sign"] = count["step"] + 1, 0, sign
            else:
                count["role"] += 1
            count["t"] = t
            if change is not None:
                change(len(calls), count["step"], count["role"], kwargs)
            calls.append((count["step"], count["role"], dict(kwargs)))
            calls.per_denoiser[name] = calls.per_denoiser.get(name, 0) + 1
            return forward(**kwargs)

        module.forward = wrapped

    for name, m in zip(names, modules):
        wrap(name, m)
    try:
        yield calls
    finally:
        for m in modules:
            del m.forward


def _is_data(value) -> bool:
    """Tensors, numbers, texts and containers of them: what a text can change. Other objects (a KV cache) are
    state of the call, not inputs to compare."""
    if value is None or isinstance(value, (torch.Tensor, int, float, bool, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_data(v) for v in value)
    if isinstance(value, dict):
        return all(_is_data(v) for v in value.values())
    return False


class _Calls(list):
    def __init__(self):
        super().__init__()
        self.per_denoiser: dict[str, int] = {}


def text_keys(own_calls, neg_calls, source_role=1) -> list[str]:
    """The keyword arguments in which the unconditional call of step 0 differs between the two stock runs (the
    negative run's call of ``source_role``: 0 where the negative was given as the prompt)."""
    own = next(kw for s, r, kw in own_calls if r == 1)
    neg = next(kw for s, r, kw in neg_calls if r == source_role)
    keys = [k for k in own if _is_data(own[k]) and not _same(own[k], neg.get(k))]
    if not keys:
        raise AssertionError("the negative changed no input of the unconditional call: the case cannot prove anything")
    return keys


def substituted(neg_calls, keys, k, stop=None, source_role=1, reprefill=False):
    """``change`` for ``denoiser_calls``: unconditional calls of steps >= k (and < stop) get the negative run's text
    inputs (from its call of ``source_role`` in the same step: its unconditional call, or with ``source_role=0`` its
    conditional one, for a run given the negative as its prompt).

    ``reprefill``: the denoiser keeps the text's keys/values in a prefix cache it fills at its first call
    (``kv_cache_mode="extract"``) and reads afterwards (``"cached"``, Qwen-Image 2.1): the unconditional call of the
    step where its text changes (k, and stop) runs in ``"extract"`` mode into the same cache, the denoiser's own way
    of filling it."""

    def change(index, step, role, kwargs):
        if reprefill and role == 1 and step in (k, stop) and kwargs.get("kv_cache_mode") == "cached":
            kwargs["kv_cache_mode"] = "extract"
        if role == 1 and step >= k and (stop is None or step < stop):
            s, r, neg = neg_calls[index - 1 + source_role]
            assert (s, r) == (step, source_role), "the two runs' calls do not line up"
            for key in keys:
                kwargs[key] = neg[key]

    return change


def reference_output(case, k, stop=None):
    """The reference for ``case`` and its negative from step ``k`` (to ``stop``): (stock output, negative output,
    reference output)."""
    with recording(case) as own:
        stock = case.run()
    with recording(case) as neg:
        negative = case.run(**negative_run(case))
    role = source_role(case)
    with recording(case, substituted(neg, text_keys(own, neg, role), k, stop, role, case.reprefill)):
        reference = case.run()
    return stock, negative, reference


def negative_run(case) -> dict:
    """The call keywords of the stock run that carries the negative's text inputs."""
    return {"prompt": case.negative} if case.negative_via == "prompt" else {"negative_prompt": case.negative}


def source_role(case) -> int:
    """Which call of each step of that run carries them: the conditional one (0) where it was given as the prompt."""
    return 0 if case.negative_via == "prompt" else 1


def recording(case, change=None):
    """``denoiser_calls`` for a ``builders_modular.ModularCase``."""
    return denoiser_calls(case.pipe, case.denoisers, change, timestep_key=case.timestep_key, skip=case.skip_call)
