"""One ``apply``: the schedule, the texts, the declaration, and the work done per denoiser call.

The hooks (``modes.py``) only say which rows of a denoiser call are the unconditional pass; the session decides,
from the plan of the running call, what those rows become.
"""

from __future__ import annotations

import warnings

import torch

from .. import schedule as sch
from ..families.base import run_facts
from ..pipelines.rows import cat, concat_rows, count
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
        # before="no_cfg" somewhere: unconditional passes take the conditional pass's text (kept per step)
        self.no_cfg = any(k is sch.CONDITIONAL for seg in rows for _, k in seg)
        self._cache: tuple | None = None  # (key, encoded negative) of the last call whose key was known

    # -- where the loop is ------------------------------------------------------------------------------------

    def iteration(self, call: CallState, denoiser: str) -> int:
        """The loop iteration of this denoiser call: the scheduler's step index, relative to the call's first
        denoiser call (img2img begins later); schedulers without one (DDIM, PNDM) count calls (batched mode).
        A declaration with ``steps="progress"`` counts by the pipeline's progress bar instead (``_bar_step``)."""
        if self.declaration.steps == "progress":
            return self._bar_step(call)
        if self.declaration.steps == "chunks":
            return self._chunk_step(call)
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

    def _chunk_step(self, call: CallState) -> int:
        """The step within the running chunk (``steps="chunks"``): the loop item of the scheduler's step index, which
        each chunk's ``set_timesteps`` resets (None until the chunk's first step). Every chunk is a full run from item
        0, so one plan serves them all. Items the loop skips (``_items_run``) count as steps, as in the schedule the
        user's points are placed in; a call after a chunk's last step (its KV-cache pass) takes the last step's
        text. A call before the first chunk has set the scheduler's timesteps (the cache pass of a video context)
        has no step and is refused."""
        sched = self.pipeline.scheduler
        if call.base_index is None:
            if sched.timesteps is None or sched.timesteps is call.timesteps_at_start:
                raise ValueError(
                    f"negdelay.apply: {type(self.pipeline).__name__} called its denoiser before its first chunk set "
                    "the scheduler's timesteps (a video context's KV-cache pass), so that call has no step to place "
                    "the start in; negdelay serves it without a video context (video= / video_latents=)"
                )
            call.base_index = 0  # each chunk runs its timesteps from the first
        index = sched.step_index
        taken = 0 if index is None else int(index)
        items = _items_run(sched)
        return items[taken] if taken < len(items) else len(sched.timesteps) - 1

    def _bar_step(self, call: CallState) -> int:
        """The step of the call's last opened progress bar. A new bar is a new loop (diffusion forcing's long-video
        iterations, Helios' chunks): its steps count from 0 and the plan is made anew for its length."""
        bar = self.tracker.bar
        if bar is None or bar.call is not call:
            raise ValueError(
                f"negdelay.apply: {type(self.pipeline).__name__} called its denoiser before opening its progress bar, "
                "by which negdelay counts its steps"
            )
        if call.bar is not bar:
            call.bar, call.plan = bar, None
        return bar.step

    def _bar_run(self, need_sigmas: bool) -> sch.Run:
        """The run of the current progress bar: one loop iteration per bar step, ``total`` steps."""
        name = type(self.pipeline).__name__
        if need_sigmas:
            raise ValueError(
                f"start_sigma / stop_sigma / start_percent / stop_percent: {name} counts its steps by its progress bar "
                "(its steps do not each have one noise level of the scheduler), so a noise level cannot be placed; "
                "give start_step or start_fraction"
            )
        total = self.tracker.bar.total
        if not total:
            raise ValueError(f"negdelay.apply: {name}'s progress bar has no total, so its steps cannot be counted")
        return sch.Run(n_iterations=total, n_steps=total)

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
        """Refuse a denoiser call without the declared inputs; keep its keyword arguments on the running call
        (``denoiser_kwargs``) for a declaration's ``guided`` or ``pad`` that reads them (AnimateDiff ControlNet's
        ``guess_mode``, Bria Fibo's ``txt_ids``)."""
        self.tracker.state.denoiser_kwargs = kwargs
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
            need_sigmas, need_axis = sch.needs(sch.row_points(rows))
            if self.declaration.steps == "progress":
                run = self._bar_run(need_sigmas)
            else:
                run = run_facts(self.pipeline, need_sigmas, begin=call.base_index, need_axis=need_axis)
            call.plan = sch.plan(rows, run)
            self.last_plan = call.plan
        return call.plan

    def _negative(self, call: CallState, current: dict) -> dict:
        """The negative's rows as the stock pipeline encodes its ``negative_prompt``: once per pipeline call, or
        reused from the last call when nothing it depends on changed (``_encoding_key``)."""
        if call.negative is None:
            self._batching(call)  # per call, also where the encoding is reused: _rows_of reads it
            key = self._encoding_key(call, current)
            if key is not None and self._cache is not None and self._cache[0] == key:
                call.negative = self._cache[1]
                return call.negative
            with torch.no_grad(), self.tracker.quietly():
                call.negative = self._encode_like_stock(call, current)
            self._cache = None if key is None else (key, call.negative)
        return call.negative

    def _encode_like_stock(self, call: CallState, current: dict) -> dict:
        """Encode the texts in the batch the stock pipeline would: a negative given once for ``m`` prompts is encoded
        ``m`` times in one batch (a text encoder's output can depend on its batch in the last bits); ``_rows_of`` then
        gives each image row the row of its own prompt."""
        texts = [t for t in self.texts for _ in range(call.repeat)]
        return self.declaration.encode(self.pipeline, texts, current, call)

    def _batching(self, call: CallState) -> None:
        """The call's prompt count and how many times each text is encoded in its batch (``m`` prompts per text)."""
        prompt = call.encode_args.get("prompt")
        call.prompts = len(prompt) if isinstance(prompt, (list, tuple)) else 1
        call.repeat = call.prompts // len(self.texts) if call.prompts % len(self.texts) == 0 else 1

    @staticmethod
    def _rows_of(call: CallState, keys: tuple) -> tuple:
        """Keys (text indices) -> rows of the encoded batch: with each text encoded once per prompt it covers, an
        image row takes the row of its own prompt, as in the stock pipeline's batch."""
        m = getattr(call, "repeat", 1)
        if m == 1:
            return keys
        if len(keys) % call.prompts:
            return tuple(None if k is None else k * m for k in keys)
        per_prompt = len(keys) // call.prompts
        return tuple(None if k is None else k * m + (r // per_prompt) % m for r, k in enumerate(keys))

    def _encoding_key(self, call: CallState, current: dict):
        """What the negative's encoding depends on, when every argument of the call's ``encode_prompt`` is a plain
        value: those arguments, the text encoders (identity, a content fingerprint of their parameters and PEFT
        state: in-place LoRA fusing or loaded weights are seen), the tokenizers' sizes (textual inversion), the
        inputs' shapes and dtypes, the batch's layout. None (encode anew) where an argument is a tensor, an image or
        another object."""
        from ..callback import _fingerprint

        plain = (str, int, float, bool, type(None), torch.device, torch.dtype)
        args = {k: v for k, v in call.encode_args.items() if not k.startswith("negative_") and "embeds" not in k
                and "mask" not in k and k not in ("prompt", "prompt_2", "prompt_3")}
        if not all(isinstance(v, plain) or (isinstance(v, (list, tuple)) and all(isinstance(x, plain) for x in v))
                   for v in args.values()):
            return None
        parts = {name: getattr(self.pipeline, name, None) for name in dir(self.pipeline)
                 if name.startswith(("text_encoder", "tokenizer", "connectors"))}
        encoders = [m for m in parts.values() if isinstance(m, torch.nn.Module)]
        tokenizers = [len(t) for n, t in sorted(parts.items()) if n.startswith("tokenizer") and hasattr(t, "get_vocab")]
        shapes = tuple((n, tuple(t.shape), str(t.dtype), str(t.device)) if isinstance(t, torch.Tensor) else (n, len(t))
                       for n, t in current.items() if t is not None)
        return (repr(sorted(args.items(), key=lambda kv: kv[0])), tuple(id(e) for e in encoders),
                tuple(_fingerprint(e) for e in encoders), tuple(tokenizers), shapes, torch.is_grad_enabled(),
                call.repeat)  # the encoded batch's layout (``_batching``), which the prompt count decides

    # -- before="no_cfg": the conditional pass's text -----------------------------------------------------------

    def seen_conditional(self, call: CallState, denoiser: str, it: int, kwargs: dict) -> None:
        """A separate conditional pass (context and ordered modes): keep its text inputs (references, no copies) for
        the unconditional pass of the same step, which takes them when that step runs without CFG."""
        if self.no_cfg:
            call.conditional[denoiser] = (it, {n: self._read(kwargs, n) for n in self.declaration.inputs})

    def _conditional(self, call: CallState, denoiser: str, it: int, current: dict, n_rows: int, blocks,
                     groups: dict) -> dict:
        """The conditional pass's text inputs for the rows of this unconditional pass: the conditional block of this
        call (batched: the first block that is not unconditional), or the conditional call of this step."""
        if blocks is not None:
            n_blocks, uncond = blocks
            b = next(b for b in range(n_blocks) if b not in uncond)
            return self._block_rows(current, b * n_rows, n_rows, groups)
        seen = call.conditional.get(denoiser)
        name = type(self.pipeline).__name__
        if seen is None or seen[0] != it:
            raise ValueError(
                f"negdelay.apply(before='no_cfg'): {name}'s unconditional pass of loop iteration {it} came before its "
                "conditional pass, so it cannot be given the conditional pass's text; use before='unconditional'"
            )
        inputs = seen[1]
        first = inputs[self.declaration.inputs[0]]
        if first is None or count(first) != n_rows:
            raise ValueError(
                f"negdelay.apply(before='no_cfg'): {name}'s conditional pass has "
                f"{'no' if first is None else count(first)} rows of {self.declaration.inputs[0]}, its unconditional "
                f"pass {n_rows}; use before='unconditional'"
            )
        return inputs

    def _build(self, call: CallState, own: dict, conditional: dict | None, keys, groups: dict) -> dict:
        """The unconditional inputs: per row the pipeline's own (key None), the conditional pass's (``CONDITIONAL``)
        or the negative's (an index). A call whose rows all run without CFG takes the conditional inputs as they
        are, so its unconditional pass is the conditional pass bit for bit."""
        if conditional is not None and all(k is sch.CONDITIONAL for k in keys):
            return dict(conditional)
        merged = own
        if conditional is not None:
            if any(t is None and own[n] is not None for n, t in conditional.items()):
                raise ValueError(
                    f"negdelay.apply(before='no_cfg'): {type(self.pipeline).__name__} passes its conditional text "
                    "without some inputs its unconditional pass has, so rows with and without CFG cannot share a "
                    "step; give every row the same start"
                )
            merged = self._merge(own, conditional, [r if k is sch.CONDITIONAL else None for r, k in enumerate(keys)],
                                 groups, by_row=True)
            keys = tuple(None if k is sch.CONDITIONAL else k for k in keys)
        if all(k is None for k in keys):
            return merged
        negative = self._negative(call, own)  # first: it records how the texts were batched
        return self._merge(merged, negative, self._rows_of(call, keys), groups)

    def _merge(self, own: dict, other: dict, keys, groups: dict, by_row: bool = False) -> dict:
        """The declaration's merge; a ``grouped`` input (one row per ``g`` rows of the first input) is merged with
        one key per group of ``g`` keys (``by_row``: keys are row indices of ``other``, divided by ``g``)."""
        if not groups:
            return self.merge(own, other, keys)
        out = self.merge({n: t for n, t in own.items() if n not in groups}, other, keys)
        for name, g in groups.items():
            out.update(self.merge({name: own[name]}, other, self._per_group(name, keys, g, by_row)))
        return out

    def _per_group(self, name: str, keys, g: int, by_row: bool) -> list:
        out = []
        for j in range(0, len(keys), g):
            group = {None if k is None else (k // g if by_row else k) for k in keys[j : j + g]}
            if len(group) != 1:
                raise ValueError(
                    f"negdelay.apply: {type(self.pipeline).__name__}'s {name} has one row per {g} rows of "
                    f"{self.declaration.inputs[0]} (one per video, those one per frame), so the rows of a video take "
                    "one negative and one start: give negative_prompt / start_* / stop_* one entry per prompt"
                )
            out.append(group.pop())
        return out

    @staticmethod
    def _block_rows(current: dict, first: int, n_rows: int, groups: dict) -> dict:
        """Rows ``first`` to ``first + n_rows`` of each input; of a ``grouped`` input, the rows of their groups."""
        return {n: None if t is None else t[first // groups.get(n, 1) : (first + n_rows) // groups.get(n, 1)]
                for n, t in current.items()}

    def _groups(self, current: dict) -> dict:
        """``{input: g}`` for the declaration's ``grouped`` inputs: ``g`` rows of the first input per row of it in
        this call (AnimateDiff SDXL: the frames per video)."""
        if not self.declaration.grouped:
            return {}
        total = count(current[self.declaration.inputs[0]])
        groups = {}
        for name in self.declaration.grouped:
            if current.get(name) is None:
                continue
            rows = count(current[name])
            if rows == 0 or total % rows:
                raise ValueError(
                    f"negdelay.apply: {type(self.pipeline).__name__} passes {rows} rows of {name} for {total} rows of "
                    f"{self.declaration.inputs[0]}: not one row per group of rows"
                )
            groups[name] = total // rows
        return groups

    def swap(self, call: CallState, denoiser: str, it: int, kwargs: dict, n_rows: int, blocks=None) -> dict:
        """``kwargs`` with the unconditional rows replaced as the plan says for iteration ``it``: all ``n_rows``
        rows of the call, or (``blocks = (count, unconditional)``) each unconditional block of ``n_rows`` rows of a
        call made of ``count`` such blocks."""
        call.uncond_seen = True
        plan = self._plan(call, n_rows)
        keys = plan[min(it, len(plan) - 1)]
        kwargs = self._refill(call, denoiser, keys, kwargs)
        if all(k is None for k in keys):
            return kwargs
        # rows that keep the pipeline's own text may be replaced mid-call by a step-end callback, and the conditional
        # text is the pipeline's too: merged every call
        mixed = any(k in sch.OWN for k in keys)
        built = None if mixed else call.built.get((denoiser, keys))
        current = {n: self._read(kwargs, n) for n in self.declaration.inputs}
        groups = self._groups(current)
        if built is None:
            first = 0 if blocks is None else blocks[1][0] * n_rows
            own = self._block_rows(current, first, n_rows, groups)
            conditional = None
            if any(k is sch.CONDITIONAL for k in keys):
                conditional = self._conditional(call, denoiser, it, current, n_rows, blocks, groups)
            built = self._build(call, own, conditional, keys, groups)
            if not mixed:
                call.built[(denoiser, keys)] = built
        if blocks is not None:  # the other blocks (conditional, perturbed, ...) as the pipeline passes them
            count, uncond = blocks
            size = {n: n_rows // groups.get(n, 1) for n in built}
            built = {n: cat([t if b in uncond else current[n][b * size[n] : (b + 1) * size[n]]
                             for b in range(count)]) for n, t in built.items()}
        out = dict(kwargs)
        for name, tensor in built.items():
            axis = self.declaration.batch_axes.get(name)
            put_input(out, name, tensor.movedim(0, axis) if axis and tensor is not None else tensor)
        return out

    def _refill(self, call: CallState, denoiser: str, keys: tuple, kwargs: dict) -> dict:
        """A denoiser that caches the unconditional text after its first pass (the declaration's ``refill``:
        Qwen-Image 2.1's prefix KV cache) is told to fill that cache again at a pass whose text differs from the
        last unconditional pass's (the start, the stop, a row's switch)."""
        if self.declaration.refill is None:
            return kwargs
        last, call.uncond_keys[denoiser] = call.uncond_keys.get(denoiser), keys
        return kwargs if last is None or last == keys else self.declaration.refill(dict(kwargs))

    def _read(self, kwargs: dict, name: str):
        """Input ``name`` of a denoiser call, rows first: a declared batch axis (``batch_axes``) moved to dim 0."""
        value = get_input(kwargs, name)
        axis = self.declaration.batch_axes.get(name)
        return value.movedim(axis, 0) if axis and value is not None else value


def _items_run(sched) -> list[int]:
    """The items of a chunk's schedule that the loop runs a step on: AnyFlow FAR skips an item whose timestep equals
    the next sigma's (a flow map of zero length: a repeated value in a custom ``sigmas=`` / ``timesteps=``), with no
    denoiser call and no ``scheduler.step``, so the scheduler's step index counts the items run, not the items."""
    ts = sched.timesteps
    runs = ts != sched.sigmas[1 : len(ts) + 1] * sched.config.num_train_timesteps
    return runs.nonzero().flatten().tolist()
