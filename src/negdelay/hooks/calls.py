"""Call boundaries without stack frames: ``apply`` wraps two instance methods every served pipeline calls.

- the declaration's ``starts`` method (``encode_prompt``), or each of its ``starts`` methods (a pipeline with one
  encoder per path): the first such call after the previous call's denoising starts a new pipeline call; the bound
  arguments of the last one are recorded with its name (``started_by``: the negative is encoded through it);
- ``maybe_free_model_hooks``, which diffusers pipelines call at the end of ``__call__``: the call has ended.

Both are set as instance attributes (``pipe.encode_prompt = wrapper``) and deleted by ``remove``, which restores
the class's methods. A denoiser call outside a call of the applied pipeline (another pipeline sharing the model)
or from another thread than the running call's is refused: the per-call state belongs to one call.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading

from diffusers.hooks.hooks import BaseState

END = "maybe_free_model_hooks"
BAR = "progress_bar"  # its ``with`` block (or loop) is the denoising loop: an exception leaving it ends the call


class CallState(BaseState):
    """Everything one pipeline call needs; a new one per call, shared by the hooks of one ``apply``."""

    def __init__(self, tracker: "CallTracker"):
        self._tracker = tracker
        self.reset()

    def reset(self, *args, **kwargs) -> None:
        self.thread = threading.get_ident()
        self.encode_args: dict = {}
        self.started_by: str = self._tracker.starts[0]  # the starts method encode_args were given to
        self.encode_result = None
        self.denoised = False  # a denoiser call has been made
        self.ended = False
        self.base_index: int | None = None  # the scheduler's step index at the call's first denoiser call
        self.plan: list[tuple] | None = None
        self.bar: _Bar | None = None  # the progress bar the plan was made for (steps="progress")
        # the scheduler's timesteps when the call started (steps="chunks": unchanged = no chunk has set its own yet)
        self.timesteps_at_start = getattr(getattr(self._tracker.pipeline, "scheduler", None), "timesteps", None)
        self.negative: dict | None = None
        self.built: dict = {}
        self.calls: dict[str, int] = {}  # denoiser -> calls made (schedulers without step_index)
        self.in_step: dict[str, tuple] = {}  # denoiser -> (iteration, calls in it) for ordered mode
        self.guided: dict[str, bool] = {}  # denoiser -> guidance decision (batched mode)
        self.conditional: dict[str, tuple] = {}  # denoiser -> (iteration, text inputs) of its last conditional pass
        self.uncond_keys: dict[str, tuple] = {}  # denoiser -> its last unconditional pass's plan keys (refill)
        self.denoiser_kwargs: dict = {}  # the running denoiser call's arguments (guided, pad read them)
        self.uncond_seen = False
        self.warned = False

    def original(self, name: str):
        """The pipeline's own (unwrapped) method ``name``."""
        return self._tracker.original(name)


class CallTracker:
    """Wraps ``starts`` and ``maybe_free_model_hooks`` on one pipeline instance; holds the running call's state."""

    def __init__(self, pipeline, starts: str | tuple[str, ...]):
        self.pipeline = pipeline
        self.starts = (starts,) if isinstance(starts, str) else tuple(starts)
        self.state: CallState | None = None
        self.bar: _Bar | None = None  # the last progress bar the pipeline opened (steps="progress" counts by it)
        self._lock = threading.Lock()
        self._quiet = 0  # > 0 while negdelay itself calls the pipeline's encode_prompt
        self._wrapped: list[str] = []
        for name in (*self.starts, END):
            if not callable(getattr(pipeline, name, None)):
                raise TypeError(f"{type(pipeline).__name__} has no method {name}(): negdelay cannot see its calls")
        self._signatures = {name: inspect.signature(getattr(type(pipeline), name)) for name in self.starts}
        for name in self.starts:
            self._wrap(name, functools.partial(self._on_start, name))
        self._wrap(END, self._on_end)
        self._wrap_bar()

    def original(self, name: str):
        return getattr(type(self.pipeline), name).__get__(self.pipeline)

    def _wrap(self, name: str, before) -> None:
        method = self.original(name)

        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            if not self._quiet:
                before(args, kwargs)
            return method(*args, **kwargs)

        wrapper._negdelay_tracker = self
        setattr(self.pipeline, name, wrapper)
        self._wrapped.append(name)

    def _wrap_bar(self) -> None:
        method = self.original(BAR)

        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            self.bar = _Bar(method(*args, **kwargs), self, _bar_total(*args, **kwargs))
            return self.bar

        wrapper._negdelay_tracker = self
        setattr(self.pipeline, BAR, wrapper)
        self._wrapped.append(BAR)

    @contextlib.contextmanager
    def quietly(self):
        """negdelay encodes a negative with the pipeline's own methods: not a new pipeline call."""
        self._quiet += 1
        try:
            yield
        finally:
            self._quiet -= 1

    def restore(self) -> None:
        for name in self._wrapped:
            if getattr(self.pipeline.__dict__.get(name), "_negdelay_tracker", None) is self:
                delattr(self.pipeline, name)
        self._wrapped = []
        self.state = None

    def _on_start(self, name: str, args, kwargs) -> None:
        with self._lock:
            state = self.state
            if state is not None and _busy_elsewhere(state):
                raise RuntimeError(_CONCURRENT.format(name=type(self.pipeline).__name__))
            if state is None or state.ended or state.denoised or state.thread != threading.get_ident():
                state = self.state = CallState(self)
        bound = self._signatures[name].bind(self.pipeline, *args, **kwargs)
        state.encode_args = {k: v for k, v in bound.arguments.items() if k != "self"}
        state.started_by = name

    def _on_end(self, args, kwargs) -> None:
        state = self.state
        if state is not None and state.thread == threading.get_ident():
            state.ended = True
            state.denoiser_kwargs = {}  # the last denoiser call's latents and texts: not kept past the call

    def running(self, module) -> CallState:
        """The running call's state, for a denoiser call; refuses calls that do not belong to it."""
        state = self.state
        name = type(self.pipeline).__name__
        if state is None or state.ended:
            raise RuntimeError(
                f"negdelay.apply was applied to a {name}, but its {type(module).__name__} was called outside a call of "
                f"that {name} (another pipeline sharing the model, e.g. from_pipe or **components, or a direct call). "
                f"Apply to the pipeline you call (negdelay.apply(pipe, ...) replaces the earlier one), or "
                f"negdelay.remove() the first pipeline first."
            )
        if state.thread != threading.get_ident():
            raise RuntimeError(_CONCURRENT.format(name=name))
        state.denoised = True
        return state


class _Bar:
    """The pipeline's progress bar: an exception that leaves its ``with`` block or its loop (KeyboardInterrupt, an
    error in a step-end callback) ends the running call, as ``maybe_free_model_hooks`` would have."""

    def __init__(self, bar, tracker: CallTracker, total: int | None = None):
        self._bar, self._tracker = bar, tracker
        self.call = tracker.state  # the call this bar's loop belongs to
        self.total = total  # the steps it counts (None: not given)
        self.step = 0  # its step: update() calls so far, or items yielded before the current one

    def __enter__(self):
        self._bar.__enter__()
        return self

    def __exit__(self, exc_type, *rest):
        if exc_type is not None:
            self._tracker._on_end((), {})
        return self._bar.__exit__(exc_type, *rest)

    def update(self, n=1):
        self.step += n
        return self._bar.update(n)

    def __iter__(self):
        try:
            for item in self._bar:
                yield item
                self.step += 1
        except BaseException:
            self._tracker._on_end((), {})
            raise

    def __getattr__(self, name):
        return getattr(self._bar, name)


def _bar_total(iterable=None, total=None, *args, **kwargs) -> int | None:
    """The steps a progress bar counts: its ``total``, else its iterable's length (None where it has none)."""
    if total is None and hasattr(iterable, "__len__"):
        return len(iterable)
    return None if total is None else int(total)


def _busy_elsewhere(state: CallState) -> bool:
    """A call of another thread that has not ended (a thread that died mid-call no longer counts)."""
    if state.ended or state.thread == threading.get_ident():
        return False
    return any(t.ident == state.thread for t in threading.enumerate())


_CONCURRENT = (
    "negdelay.apply: this {name} is already running a call in another thread. A diffusers pipeline (its scheduler) "
    "and negdelay's per-call state serve one call at a time: use one pipeline per thread."
)
