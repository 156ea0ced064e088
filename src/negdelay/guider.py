"""A delayed negative for modular diffusers pipelines, through the guider.

Modular pipelines (``diffusers.modular_pipelines``) run classifier-free guidance through a guider component:
each step the denoise loop calls ``guider.set_state(step, num_inference_steps, timestep)`` and then
``guider.prepare_inputs(...)``, which returns one batch of denoiser inputs per branch; the unconditional
branch is the batch tagged ``"pred_uncond"``. ``DelayedNegativeGuidance`` is the guider it wraps, unchanged,
except that from the start step that batch carries the delayed negative's inputs.

Where those inputs come from: ``apply(pipe, negative_prompt, start_...)`` wraps every CFG-like guider of the
pipeline and, per pipeline call, runs the pipeline's own blocks a second time on the negative text -- only
the blocks that read it, directly or through what they made from it (the text encoder, the text input step
that repeats rows per image, a connector or RoPE step, ...) -- on a side copy of the call's state, until the
denoise loop starts. Names whose side value differs from the real one are the negative's inputs; the guider
swaps them into the unconditional batch, matching the real tensors by identity (or, if the loop cast them,
by value). The real state, the generator and every real tensor are untouched, so a start at or past the
last step gives the stock output bit for bit.

Step semantics are negdelay's (``negdelay.schedule``): step ``k`` is the ``k``-th step of the denoising loop
as its progress bar counts it; ``start_fraction=f`` is step ``int(f * N)``; ``start_sigma`` the first step
whose noise level is ``<= s``. Unlike the step-end callback, ``start_step=0`` works here (the guider sees
step 0 before the denoiser does). A loop whose step counter restarts at 0 (chunked video, pyramid stages)
starts a new run with the same schedule.
"""

from __future__ import annotations

import copy
import functools
from types import SimpleNamespace

import torch

from . import schedule as sch
from .families.base import run_facts

UNCOND = "pred_uncond"
COND = "pred_cond"
_NEG = "negative"  # the schedule's key for the delayed negative
_MISSING = object()

# The classes the contract test (tests/test_guider_contract.py) proves on tiny components, and why the others
# are not served. The test checks that this list is exactly what it proves.
SERVED: tuple[str, ...] = (
    "AnimaModularPipeline", "ErnieImageModularPipeline", "Flux2KleinBaseModularPipeline", "Flux3ModularPipeline",
    "HeliosModularPipeline", "HeliosPyramidModularPipeline", "HunyuanVideo15ModularPipeline", "Krea2ModularPipeline",
    "LTX25ModularPipeline", "LTX2ModularPipeline", "LTXModularPipeline", "QwenImage21ModularPipeline",
    "QwenImageEditModularPipeline", "QwenImageEditPlusModularPipeline", "QwenImageLayeredModularPipeline",
    "QwenImageModularPipeline", "StableDiffusion3ModularPipeline", "StableDiffusionXLModularPipeline",
    "Wan22Image2VideoModularPipeline", "Wan22ModularPipeline", "Wan22VaceModularPipeline",
    "WanAnimate2DistilledModularPipeline", "WanAnimate2ModularPipeline", "WanImage2VideoModularPipeline",
    "WanModularPipeline", "ZImageModularPipeline",
)
_NO_GUIDER = "no guider component: its blocks run no classifier-free guidance through a guider"
NOT_SERVED: dict[str, str] = {
    "Cosmos3DistilledModularPipeline": _NO_GUIDER + " (distilled, no negative_prompt input)",
    "Cosmos3OmniModularPipeline": _NO_GUIDER + " (its denoise step combines cond/uncond itself; a hook, not a guider)",
    "EchoModularPipeline": _NO_GUIDER + " (no negative_prompt input)",
    "Flux2ModularPipeline": _NO_GUIDER + " (guidance-distilled FLUX.2, no negative_prompt input)",
    "Flux2KleinModularPipeline": _NO_GUIDER + " (distilled Klein, no negative_prompt input)",
    "Flux3DistilledModularPipeline": _NO_GUIDER + " (distilled, no negative_prompt input)",
    "FluxModularPipeline": _NO_GUIDER + " (guidance-distilled FLUX.1, no negative_prompt input)",
    "FluxKontextModularPipeline": _NO_GUIDER + " (guidance-distilled, no negative_prompt input)",
    "Ideogram4ModularPipeline": _NO_GUIDER + " (its unconditional pass is a second transformer on the image alone: no text)",
    "Krea2TurboModularPipeline": _NO_GUIDER + " (turbo checkpoint, no negative_prompt input)",
    "MiniMaxH3ModularPipeline": _NO_GUIDER + " (guidance-distilled, no unconditional pass)",
    "QwenImage21TurboModularPipeline": _NO_GUIDER + " (turbo checkpoint, no negative_prompt input)",
    "MiniMaxMusic3ModularPipeline": "no negative_prompt input: its unconditional branch is not a text",
    "HeliosPyramidDistilledModularPipeline": (
        "DMD-distilled, meant to run without CFG; with CFG the stock pipeline is not reproducible from one call to "
        "the next (the DMD scheduler keeps state), so nothing can be proven"
    ),
}


# ---------------------------------------------------------------------------------------------------------
# the guider
# ---------------------------------------------------------------------------------------------------------


def is_cfg_like(guider) -> bool:
    """Whether ``guider`` has an unconditional branch: a ``diffusers.guiders.BaseGuidance`` whose predictions
    include ``"pred_uncond"`` (CFG, APG, CFG-Zero*, TCFG, FDG, PAG, SLG, SEG, LTX2Guidance, ...)."""
    from diffusers.guiders.guider_utils import BaseGuidance

    return isinstance(guider, BaseGuidance) and UNCOND in (type(guider)._input_predictions or ())


@functools.cache
def _delayed_class(base: type) -> type:
    return type(f"DelayedNegative{base.__name__}", (DelayedNegativeGuidance, base), {"__module__": __name__})


class DelayedNegativeGuidance:
    """``DelayedNegativeGuidance(guider, negative_prompt, start_step|start_fraction|start_sigma=..., stop_...=...)``

    Returns an instance of a subclass of ``type(guider)`` holding a copy of ``guider``'s state: it is that
    guider (same config, same ``start``/``stop``, momentum, zero-init steps, ``enable()``/``disable()``), and
    ``isinstance(g, type(guider))`` holds. It differs in one thing: from the schedule's start step on, the
    unconditional batch it prepares carries the delayed negative's inputs. ``guider`` itself is not changed.

    It needs the pipeline's call to encode the negative: install it with ``negdelay.guider.apply(pipe, ...)``,
    which builds one per guider component of the pipeline.
    """

    def __new__(cls, guider=None, negative_prompt=None, **schedule):
        if guider is None:
            if negative_prompt is not None or schedule:  # e.g. ConfigMixin.from_config on the subclass
                raise TypeError("build it as DelayedNegativeGuidance(guider, negative_prompt, start_...=...)")
            return object.__new__(cls)  # copy / pickle protocol: an empty instance whose state is set afterwards
        if isinstance(guider, DelayedNegativeGuidance):
            raise ValueError("this guider already delays a negative; wrap the original guider instead")
        if not is_cfg_like(guider):
            preds = getattr(type(guider), "_input_predictions", None)
            raise TypeError(
                f"guider: {type(guider).__name__} has no unconditional branch (its predictions are {preds!r}; a "
                "delayed negative needs 'pred_uncond'): give a classifier-free-guidance-like guider, e.g. "
                "ClassifierFreeGuidance, AdaptiveProjectedGuidance, ClassifierFreeZeroStarGuidance"
            )
        delay = _Delay(negative_prompt, schedule)
        self = object.__new__(_delayed_class(type(guider)))
        self.__dict__.update(copy.deepcopy(guider.__dict__))
        self.__dict__["_negdelay"] = _Link(delay, type(guider))
        return self

    def __init__(self, *args, **kwargs):  # everything is set in __new__; the guider's own __init__ must not run
        pass

    @classmethod
    def from_config(cls, *args, **kwargs):
        raise TypeError(
            "build it as DelayedNegativeGuidance(guider, negative_prompt, start_...=...) around a guider made with "
            "its own class's from_config"
        )

    @property
    def negative_prompt(self):
        return self._negdelay.delay.negative_prompt

    def new(self, **kwargs):
        """A copy of the wrapped guider with changed config (diffusers' ``BaseGuidance.new``), delayed the same way."""
        plain = self._negdelay.base.from_config(self.config, **kwargs)
        out = DelayedNegativeGuidance(plain, self._negdelay.delay.negative_prompt, **self._negdelay.delay.keywords)
        out._negdelay.handle = self._negdelay.handle
        return out

    def set_state(self, step, num_inference_steps, timestep) -> None:
        super().set_state(step, num_inference_steps, timestep)
        self._handle().on_step(step, num_inference_steps, timestep)

    def prepare_inputs(self, data, *args, **kwargs):
        return self._handle().substitute(super().prepare_inputs(data, *args, **kwargs))

    def prepare_inputs_from_block_state(self, data, input_fields, *args, **kwargs):
        return self._handle().substitute(super().prepare_inputs_from_block_state(data, input_fields, *args, **kwargs))

    def _handle(self) -> "Handle":
        handle = self._negdelay.handle
        if handle is None:
            raise RuntimeError(
                "DelayedNegativeGuidance is not attached to a pipeline: it needs the pipeline's call to encode the "
                "negative. Install it with negdelay.guider.apply(pipe, negative_prompt, start_...=...)"
            )
        return handle


class _Link:
    """A wrapper's own state: its schedule, the guider class it wraps, the handle of the pipeline it serves. A copy
    of the wrapper (``copy.deepcopy``) shares the handle: it must not copy the pipeline."""

    def __init__(self, delay, base, handle=None):
        self.delay, self.base, self.handle = delay, base, handle

    def __deepcopy__(self, memo):
        return _Link(self.delay, self.base, self.handle)


class _Delay:
    """The user's negative and schedule, checked."""

    def __init__(self, negative_prompt, schedule: dict):
        allowed = {f"{a}_{k}" for a in ("start", "stop") for k in sch.KINDS}
        unknown = sorted(set(schedule) - allowed)
        if unknown:
            raise TypeError(f"unknown schedule keyword(s) {unknown}; allowed: {sorted(allowed)}")
        texts = [negative_prompt] if isinstance(negative_prompt, str) else negative_prompt
        if not isinstance(texts, (list, tuple)) or not texts or not all(isinstance(t, str) for t in texts):
            raise TypeError(f"negative_prompt must be a str or a non-empty list of str, got {negative_prompt!r}")
        for key, value in schedule.items():
            if isinstance(value, (list, tuple)):
                raise ValueError(
                    f"{key}: the guider applies one schedule to every row of a call; give a single value, not a "
                    "list (per-row starts: the step-end callback or negdelay.apply on a classic pipeline)"
                )
        pick = lambda a: {k: schedule.get(f"{a}_{k}") for k in sch.KINDS}  # noqa: E731
        (start,) = sch.point_from("start", **pick("start"), required=True)
        stops = sch.point_from("stop", **pick("stop"), required=False)
        stop = stops[0] if stops else None
        if stop is not None and start.kind == stop.kind == "step" and stop.value <= start.value:
            raise ValueError(f"stop_step must be after start_step; got start {start.value}, stop {stop.value}")
        self.negative_prompt = negative_prompt if isinstance(negative_prompt, str) else list(negative_prompt)
        self.keywords = {k: v for k, v in schedule.items() if v is not None}
        self.segments = sch.window(start, _NEG, stop)
        self.needs_sigmas = start.kind == "sigma" or (stop is not None and stop.kind == "sigma")

    def iteration_keys(self, run: sch.Run) -> list:
        """The key (``None`` or the negative) of every loop iteration of ``run``."""
        per_step = sch.key_per_step(self.segments, run)
        return [per_step[s] for s in run.iteration_steps()]


# ---------------------------------------------------------------------------------------------------------
# apply / remove
# ---------------------------------------------------------------------------------------------------------


def _guider_names(pipe) -> list[str]:
    from diffusers.guiders.guider_utils import BaseGuidance

    specs = getattr(pipe, "_component_specs", {}) or {}
    return [name for name in specs if isinstance(getattr(pipe, name, None), BaseGuidance)]


def _block_inputs(pipe) -> set[str]:
    return {p.name for p in pipe._blocks.inputs if p.name}


def _why_not(pipe) -> str:
    """Empty if ``apply`` can serve ``pipe``, else one line why not."""
    from diffusers.modular_pipelines import ModularPipeline

    if not isinstance(pipe, ModularPipeline):
        return f"{type(pipe).__name__} is not a diffusers ModularPipeline (classic pipelines: negdelay.apply / DelayedNegative)"
    names = _guider_names(pipe)
    if not names:
        return f"{type(pipe).__name__} has no guider component (its guidance, if any, does not run through a guider)"
    if not any(is_cfg_like(getattr(pipe, n)) for n in names):
        kinds = ", ".join(f"{n}={type(getattr(pipe, n)).__name__}" for n in names)
        return f"no guider of {type(pipe).__name__} has an unconditional branch ({kinds})"
    if "negative_prompt" not in _block_inputs(pipe) and not _prompt_only_text_steps(pipe._blocks):
        return f"{type(pipe).__name__} takes no negative_prompt: its unconditional branch is not a text"
    return ""


def _negative_pairs(block) -> list[tuple[str, str]]:
    """``(name, "negative_" + name)`` for every output pair of ``block``: what it makes from the prompt and the
    same thing for the unconditional text."""
    outs = {p.name for p in block.intermediate_outputs if p.name}
    return sorted((name, "negative_" + name) for name in outs if "negative_" + name in outs)


def _prompt_only_text_steps(blocks) -> list:
    """Text steps that read ``prompt`` but no ``negative_prompt`` and still make unconditional text inputs (Flux 2
    Klein base encodes ``""`` for them): run on the delayed negative as their ``prompt``, their prompt outputs are
    the negative's unconditional inputs. Only where no block of the pipeline reads ``negative_prompt``."""
    leaves = [block for block, is_loop in _leaves(blocks) if not is_loop]
    if any("negative_prompt" in {p.name for p in block.inputs} for block in leaves):
        return []
    return [block for block in leaves if "prompt" in {p.name for p in block.inputs} and _negative_pairs(block)]


def supports(pipe) -> bool:
    """Whether ``apply`` can install a delayed negative on ``pipe`` (a modular pipeline with a CFG-like guider
    and a ``negative_prompt`` input). Which classes are proven: ``modular_table()``."""
    return not _why_not(pipe)


def is_applied(pipe) -> bool:
    return isinstance(getattr(pipe, "__dict__", {}).get("_blocks"), _HookedBlocks)


def apply(pipe, negative_prompt, **schedule) -> "Handle":
    """Install a delayed negative on a modular pipeline; returns a handle (also a context manager).

    Every CFG-like guider component (``guider``, ``guider_2``, ``audio_guider``, ...) is replaced by a
    ``DelayedNegativeGuidance`` around it, and the pipeline's calls encode the negative with the pipeline's own
    blocks, once per call. ``remove(pipe)`` (or leaving the ``with`` block) puts the original objects back.
    """
    if is_applied(pipe):
        raise ValueError(f"a delayed negative is already applied to this {type(pipe).__name__}; remove(pipe) first")
    why = _why_not(pipe)
    if why:
        raise ValueError(f"cannot apply a delayed negative: {why}")
    return Handle(pipe, negative_prompt, schedule)


def remove(pipe) -> None:
    """Restore the pipeline's own guider(s) and blocks: the very objects it had before ``apply``."""
    if not is_applied(pipe):
        raise ValueError(f"no delayed negative is applied to this {type(pipe).__name__}")
    pipe.__dict__["_blocks"]._negdelay_handle.remove()


class Handle:
    """What ``apply`` returns: the installed guiders, per-call encoding and the step plan."""

    def __init__(self, pipe, negative_prompt, schedule: dict):
        self.pipe = pipe
        self.delay = _Delay(negative_prompt, schedule)
        self._originals = {name: getattr(pipe, name) for name in _guider_names(pipe)}
        self.guiders = {}
        for name, guider in self._originals.items():
            if is_cfg_like(guider):
                wrapped = DelayedNegativeGuidance(guider, negative_prompt, **schedule)
                wrapped._negdelay.handle = self
                self.guiders[name] = wrapped
        self._blocks = pipe.__dict__["_blocks"]
        self._call: _Call | None = None
        self._keys: list | None = None
        self._last_step = None
        self.active = False
        for name, wrapped in self.guiders.items():
            setattr(pipe, name, wrapped)
        pipe.__dict__["_blocks"] = _HookedBlocks(self._blocks, self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if is_applied(self.pipe) and self.pipe.__dict__["_blocks"]._negdelay_handle is self:
            self.remove()
        return False

    def remove(self) -> None:
        self.pipe.__dict__["_blocks"] = self._blocks
        for name, guider in self._originals.items():
            setattr(self.pipe, name, guider)

    # -- one pipeline call ---------------------------------------------------------------------------------

    def run_call(self, blocks, pipeline, state):
        if self._call is not None:
            raise RuntimeError("this pipeline is already running a call with a delayed negative (re-entrant call)")
        call = _Call(self, pipeline, state)
        self._call, self._keys, self._last_step, self.active = call, None, None, False
        patched = _patch_leaves(blocks, call)
        try:
            return blocks(pipeline, state)
        finally:
            _unpatch(patched)
            self._call = None

    # -- the guider's side ---------------------------------------------------------------------------------

    def on_step(self, step, num_inference_steps, timestep) -> None:
        if self._keys is None or self._last_step is None or step <= self._last_step:
            self._keys = self.delay.iteration_keys(self._run(step, num_inference_steps, timestep))
        self._last_step = step
        self.active = 0 <= step < len(self._keys) and self._keys[step] is not None

    def _run(self, step, num_inference_steps, timestep) -> sch.Run:
        """The facts of the run that starts (or is at) loop index ``step``."""
        sched = getattr(self.pipe, "scheduler", None)
        try:
            all_t = [float(x) for x in sched.timesteps.tolist()]
            begin = all_t.index(float(timestep)) - int(step)
            facade = SimpleNamespace(scheduler=sched, _num_timesteps=len(all_t) - begin)
            return run_facts(facade, self.delay.needs_sigmas)
        except (AttributeError, TypeError, ValueError) as err:
            if self.delay.needs_sigmas:
                raise ValueError(
                    f"start_sigma/stop_sigma: cannot read this run's noise levels from {type(sched).__name__} "
                    f"({err}); use start_step or start_fraction"
                ) from err
            n = int(num_inference_steps)
            return sch.Run(n_iterations=n, n_steps=n)

    def substitute(self, batches):
        uncond = [b for b in batches if getattr(b, _identifier_key(), None) == UNCOND]
        if not uncond:  # the wrapped guider runs no unconditional branch at this step (its own start/stop, scale 1)
            return batches
        if self._call is not None:
            self._call.sync_cache(self.active)
        if not self.active:
            return batches
        if self._call is None:
            raise RuntimeError("the delayed negative was not encoded for this run: call the pipeline itself (pipe(...))")
        cond = next((b for b in batches if getattr(b, _identifier_key(), None) == COND), None)
        for batch in uncond:
            self._call.substitute(batch, cond)
        return batches


def _identifier_key() -> str:
    from diffusers.guiders.guider_utils import BaseGuidance

    return BaseGuidance._identifier_key


class _HookedBlocks:
    """Stands in for ``pipe._blocks`` while applied: every attribute is the blocks' own; calling it runs the
    call with the negative's side state. ``pipe.blocks`` (a deep copy) gets the plain blocks."""

    def __init__(self, blocks, handle):
        self.__dict__["_negdelay_blocks"] = blocks
        self.__dict__["_negdelay_handle"] = handle

    def __getattr__(self, name):
        return getattr(self.__dict__["_negdelay_blocks"], name)

    def __call__(self, pipeline, state):
        return self._negdelay_handle.run_call(self._negdelay_blocks, pipeline, state)

    def __deepcopy__(self, memo):
        return copy.deepcopy(self._negdelay_blocks, memo)

    def __repr__(self):
        return repr(self._negdelay_blocks)


# ---------------------------------------------------------------------------------------------------------
# per call: the negative's side state
# ---------------------------------------------------------------------------------------------------------


def _leaves(blocks):
    """``(block, is_loop)`` for every block that runs code: leaves, and denoise loops (not entered)."""
    from diffusers.modular_pipelines.modular_pipeline import (
        ConditionalPipelineBlocks,
        LoopSequentialPipelineBlocks,
        SequentialPipelineBlocks,
    )

    seen = set()

    def walk(block):
        if id(block) in seen:
            return
        seen.add(id(block))
        if isinstance(block, LoopSequentialPipelineBlocks):
            yield block, True
        elif isinstance(block, (SequentialPipelineBlocks, ConditionalPipelineBlocks)):
            for sub in block.sub_blocks.values():
                yield from walk(sub)
        else:
            yield block, False

    yield from walk(blocks)


_PATCHED = ("get_block_state", "set_block_state")


def _patch_leaves(blocks, call) -> list:
    patched = []
    for block, is_loop in _leaves(blocks):
        saved = {name: block.__dict__.get(name, _MISSING) for name in _PATCHED}
        get_state, set_state = block.get_block_state, block.set_block_state
        block.get_block_state = functools.partial(call.get_block_state, block, get_state, is_loop)
        block.set_block_state = functools.partial(call.set_block_state, block, set_state)
        patched.append((block, saved))
    return patched


def _unpatch(patched) -> None:
    for block, saved in patched:
        for name, value in saved.items():
            if value is _MISSING:
                block.__dict__.pop(name, None)
            else:
                block.__dict__[name] = value


class _Call:
    """One pipeline call. ``taint``: name -> the negative's value, for every state name whose value differs
    from the real one because of the negative (seeded with the negative texts)."""

    def __init__(self, handle: Handle, pipeline, state):
        self.handle, self.pipeline, self.state = handle, pipeline, state
        inputs = _block_inputs(handle.pipe)
        texts = {"negative_prompt": handle.delay.negative_prompt}
        # negative_prompt_2 / _3 (SDXL, SD3): the delayed negative replaces every negative text
        texts.update({n: None for n in inputs if n.startswith("negative_prompt_") and n[16:].isdigit()})
        self.taint = texts
        # a pipeline whose text step encodes its own unconditional text from nothing (Flux 2 Klein base: ""): that
        # step runs once more with the negative as its prompt
        self._as_prompt = {id(block): _negative_pairs(block) for block in _prompt_only_text_steps(handle._blocks)}
        self.encoded = False
        self.frozen = False
        self._pending: dict[int, tuple] = {}
        self._by_id: dict[int, tuple] = {}
        self._absent: list[str] = []  # the negative made these, the pipeline's own call has none
        self._loop_state = None  # the running denoise loop's block state (its prefix KV caches, if it keeps any)
        self._cache = _PrefixCache()

    # -- hooks on every block, during this call only -----------------------------------------------------

    def get_block_state(self, block, original, is_loop, state):
        if state is self.state and not self.frozen:
            if is_loop:
                self.freeze()
            elif self._reads_taint(block, state) or id(block) in self._as_prompt:
                # what the block sees, kept as it is now: the block may edit lists in place (Z-Image's text step
                # writes the templated prompts into its prompt list) and advance the generator
                values = {name: _fresh(v) for name, v in state.values.items()}
                self._pending[id(block)] = (values, {k: list(v) for k, v in state.kwargs_mapping.items()})
        block_state = original(state)
        if is_loop and state is self.state:
            self._loop_state = block_state
        return block_state

    def set_block_state(self, block, original, state, block_state):
        original(state, block_state)
        snapshot = self._pending.pop(id(block), None) if state is self.state else None
        if snapshot is not None:
            self._shadow(block, *snapshot)

    def _reads_taint(self, block, state) -> bool:
        for param in block.inputs:
            if param.name:
                if param.name in self.taint:
                    return True
            elif param.kwargs_type and any(n in self.taint for n in state.kwargs_mapping.get(param.kwargs_type, ())):
                return True
        return False

    def _shadow(self, block, values, mapping) -> None:
        """Run ``block`` again on the state it saw, with the negative's values, and record what differs."""
        from diffusers.modular_pipelines.modular_pipeline import PipelineState

        side = {**values, **{name: _fresh(v) for name, v in self.taint.items()}}
        pairs = self._as_prompt.get(id(block))
        if pairs is not None:
            side["prompt"] = _negative_as_prompt(self.handle.delay.negative_prompt, values.get("prompt"))
        before = dict(side)
        shadow = PipelineState(values=side, kwargs_mapping=mapping)
        block(self.pipeline, shadow)
        self.encoded = True
        if pairs is not None:  # the negative's prompt outputs are its unconditional inputs; nothing else counts
            made = shadow.values
            shadow = PipelineState(values={neg: made.get(name) for name, neg in pairs}, kwargs_mapping=mapping)
            before = {}
        for name, value in shadow.values.items():
            if name in before and value is before[name]:
                continue  # not written by the block
            if _same(value, self.state.values.get(name, _MISSING)):
                self.taint.pop(name, None)
            else:
                self.taint[name] = value

    def freeze(self) -> None:
        """The denoise loop starts: the negative's values are final; index the real tensors they replace."""
        self.frozen = True
        for name, value in self.taint.items():
            real = self.state.values.get(name)
            if _holds_tensors(real):
                self._by_id[id(real)] = (name, real, value)
            elif real is None and _holds_tensors(value):
                self._absent.append(name)

    # -- the guider's unconditional batch ----------------------------------------------------------------

    def substitute(self, batch, cond) -> None:
        if not self.frozen:
            self.freeze()
        if not self.encoded:
            raise RuntimeError(
                "the delayed negative was never encoded in this call: no block of the pipeline read negative_prompt "
                "(were negative embeddings passed in directly?); pass the texts instead"
            )
        if not self._by_id:
            if self._absent:
                raise RuntimeError(
                    f"this call has no unconditional text inputs of its own ({', '.join(sorted(self._absent))} are None: "
                    "the pipeline runs its unconditional pass on the prompt's inputs), so there is nothing the delayed "
                    "negative can stand in for; pass negative_prompt='' (or your own) to the pipeline"
                )
            return  # the negative's inputs equal the pipeline's own: nothing to swap
        swapped = 0
        for key, value in list(vars(batch).items()):
            if key == _identifier_key():
                continue
            hit = self._lookup(value)
            if hit is None:
                continue
            name, real, negative = hit
            negative = _like(negative, value)
            _check_stands_in(key, name, negative, value)
            setattr(batch, key, negative)
            swapped += 1
        if not swapped:
            names = sorted(entry[0] for entry in self._by_id.values())
            raise RuntimeError(
                f"none of the unconditional inputs the guider prepared ({sorted(k for k in vars(batch) if k != _identifier_key())}) "
                f"is one of the pipeline's negative inputs {names}: this pipeline derives them in its denoise loop, "
                "which the delayed negative cannot follow"
            )

    def sync_cache(self, active: bool) -> None:
        """Before the unconditional pass of a step: if the loop keeps a prefix KV cache for that branch (Qwen-Image
        2.1: ``kv_caches["pred_uncond"]``, filled at its first call and then read instead of the text) and it holds
        the other text than this step's, drop it: the loop then prefills it again from this step's inputs, through
        its own ``kv_cache_mode="extract"`` path."""
        caches = getattr(self._loop_state, "kv_caches", None)
        if isinstance(caches, dict):
            self._cache.sync(caches, active)

    def _lookup(self, value):
        hit = self._by_id.get(id(value))
        if hit is not None and hit[1] is value:
            return hit
        if isinstance(value, torch.Tensor):  # the loop made a cast or copy of a real tensor
            for name, real, negative in self._by_id.values():
                if isinstance(real, torch.Tensor) and real.shape == value.shape and torch.equal(real.to(value), value):
                    return name, real, negative
            return self._lookup_extended(value)
        return None

    def _lookup_extended(self, value):
        """The loop appended text-independent positions to a real negative input along its last axis (Qwen-Image
        2.1's image mask: the negative's pad mask, then one slot per group of target latents): the negative's own
        input with the same positions appended."""
        for name, real, negative in self._by_id.values():
            if (
                isinstance(real, torch.Tensor) and isinstance(negative, torch.Tensor) and real.ndim == value.ndim >= 1
                and real.dtype == value.dtype and real.shape[:-1] == value.shape[:-1]
                and 0 < real.shape[-1] < value.shape[-1] and torch.equal(value[..., : real.shape[-1]], real)
            ):
                tail = value[..., real.shape[-1]:]
                if negative.shape[:-1] == tail.shape[:-1]:
                    return name, real, torch.cat([negative.to(tail), tail], dim=-1)
        return None


class _PrefixCache:
    """Which text the loop's unconditional prefix cache holds. The loop fills a missing entry at the branch's next
    call from that call's inputs; an entry filled with the other text than the current step's is dropped."""

    def __init__(self):
        self.entry, self.holds, self.pending = None, None, None

    def sync(self, caches: dict, active: bool) -> None:
        entry = caches.get(UNCOND)
        if entry is None:  # the loop fills it at this step, from this step's inputs
            self.entry, self.pending = None, active
            return
        if entry is not self.entry:  # filled by the loop at an earlier step (a new loop: a new entry)
            self.entry, self.holds = entry, self.pending
        if self.holds is not None and self.holds != active:
            del caches[UNCOND]
            self.entry, self.pending = None, active


def _negative_as_prompt(negative, prompt):
    """The delayed negative as a prompt text step's ``prompt``: one text per prompt (a single negative for all)."""
    count = 1 if prompt is None or isinstance(prompt, str) else len(prompt)
    if isinstance(negative, str):
        return negative if isinstance(prompt, str) or prompt is None else [negative] * count
    if len(negative) != count:
        raise ValueError(
            f"negative_prompt: {len(negative)} texts for {count} prompt(s); give one per prompt or a single string"
        )
    return list(negative)


def _holds_tensors(value) -> bool:
    return isinstance(value, torch.Tensor) or (
        isinstance(value, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in value)
    )


def _fresh(value):
    """A generator with the same state; a list with the same items; anything else as it is."""
    if isinstance(value, torch.Generator):
        fresh = torch.Generator(device=value.device)
        fresh.set_state(value.get_state())
        return fresh
    if isinstance(value, list):
        return [_fresh(v) if isinstance(v, torch.Generator) else v for v in value]
    return value


def _same(a, b) -> bool:
    if a is b:
        return True
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
            and a.dtype == b.dtype and a.device == b.device and torch.equal(a, b)
        )
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - objects without a plain equality are not equal
        return False


def _like(negative, value):
    """The negative's value with the dtype/device of the value it replaces (the loop may have cast the real one)."""
    if isinstance(negative, torch.Tensor) and isinstance(value, torch.Tensor):
        return negative.to(device=value.device, dtype=value.dtype)
    return negative


def _shape(x):
    if isinstance(x, torch.Tensor):
        return tuple(x.shape)
    if isinstance(x, (list, tuple)):
        return [_shape(v) for v in x]
    return type(x).__name__


def _check_stands_in(key, name, negative, value) -> None:
    """The negative's input may differ from the pipeline's own in its text length, not in rows or rank."""

    def fits(a, b) -> bool:
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            return a.ndim == b.ndim and (a.ndim == 0 or a.shape[0] == b.shape[0])
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            return len(a) == len(b) and all(
                not isinstance(x, torch.Tensor) or (isinstance(y, torch.Tensor) and x.ndim == y.ndim) for x, y in zip(a, b)
            )
        return type(a) is type(b)

    if not fits(negative, value):
        raise ValueError(
            f"the delayed negative's {name} (the denoiser's {key!r}) has shape {_shape(negative)}, but the pipeline's "
            f"own unconditional {key!r} has shape {_shape(value)}: it cannot stand in (give one negative per prompt, "
            "or a single string)"
        )


# ---------------------------------------------------------------------------------------------------------
# the table of modular pipelines
# ---------------------------------------------------------------------------------------------------------


def modular_classes() -> list[str]:
    """Names of every ``*ModularPipeline`` class of the installed ``diffusers.modular_pipelines``."""
    import diffusers.modular_pipelines as mp

    return sorted(n for n in dir(mp) if n.endswith("ModularPipeline") and n != "ModularPipeline")


def modular_table() -> list[dict]:
    """One row per modular pipeline class of the installed diffusers: served (proven by the contract test) or not."""
    rows = []
    for name in modular_classes():
        served = name in SERVED
        reason = "" if served else NOT_SERVED.get(name, "not proven on this diffusers version")
        rows.append({"class": name, "entry": "guider", "mode": "guider", "status": "served" if served else "not served",
                     "reason": reason})
    return rows


__all__ = [
    "DelayedNegativeGuidance", "Handle", "apply", "remove", "is_applied", "supports", "modular_table",
    "modular_classes", "is_cfg_like", "SERVED", "NOT_SERVED",
]

