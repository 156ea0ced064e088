"""When which negative applies: the whole semantics of a delayed negative, in plain Python (no torch).

A *schedule* is, per batch row, a list of segments ``(Point, key)``: from the step a point resolves to, the
row's unconditional half uses the text named by ``key`` (``None``: the pipeline's own unconditional
embedding, whatever the user passed to the pipeline as ``negative_prompt``). Before the first segment the
row uses ``None``.

A *run* holds the facts of one pipeline call that the schedule needs: how many loop iterations the
denoising loop makes, how many progress-bar steps they form, the scheduler's order and the noise level of
each iteration.

Step semantics (see docs/semantics.md):

- "step k" is the 0-based index of the progress-bar step, counted as diffusers' progress bar counts:
  a warm-up iteration (PNDM) or a second UNet call (Heun, KDPM2) belongs to the step it completes.
  img2img / inpaint count only the steps that run (after ``strength``).
- a fraction ``f`` is step ``int(f * N)``, N = the steps that run.
- a sigma ``s`` is the first step whose noise level at its first UNet call is ``<= s``; no such step: never.
- a step at or past N never comes: the segment is never used.
- a percent ``p`` is ComfyUI's point on the model's noise axis (``percent_to_sigma``): the sigma of training
  timestep ``(1 - p) * (T - 1)`` (log-linear between timesteps) for discrete models, the shifted ``1 - p`` for
  flow matching; a start is the first step whose noise level is ``<=`` that sigma, a stop the first step whose
  noise level is ``<`` it (ComfyUI keeps a conditioning while ``end <= sigma <= start``).

What runs before the start (``before=``): ``"unconditional"`` keeps the pipeline's own unconditional text
(key ``None``); ``"no_cfg"`` gives the unconditional pass the conditional pass's text (key ``CONDITIONAL``), so
classifier-free guidance returns the conditional prediction alone (A1111's "Ignore negative prompt during early
sampling"), before the start and from a stop on.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from numbers import Integral, Real

KINDS = ("step", "fraction", "sigma")
#: every kind a point can have; "percent" (ComfyUI's start/end percent) needs the scheduler's training noise axis
ALL_KINDS = KINDS + ("percent",)
#: what runs before the start (and after a stop): the pipeline's own unconditional text, or CFG off
BEFORE = ("unconditional", "no_cfg")


class _Conditional:
    """The key of a row whose unconditional pass takes the conditional pass's text: the unconditional prediction
    then equals the conditional one, and guidance returns it unchanged (CFG off for that row and step)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __reduce__(self):
        return (_Conditional, ())

    def __repr__(self) -> str:
        return "CONDITIONAL"


#: segment key: the row's unconditional pass gets the conditional pass's text (CFG off)
CONDITIONAL = _Conditional()
#: keys that mean "no negative": the pipeline's own unconditional text, or the conditional text
OWN = (None, CONDITIONAL)


def check_before(before: object, name: str = "before") -> str:
    """``before`` if it is one of ``BEFORE``, else a ``ValueError`` naming ``name`` and the allowed values."""
    if not isinstance(before, str) or before not in BEFORE:
        raise ValueError(f"{name} must be one of {', '.join(repr(b) for b in BEFORE)}, got {before!r}")
    return before


def own_key(before: str):
    """The key of the steps outside the negative's window for ``before``."""
    return CONDITIONAL if check_before(before) == "no_cfg" else None


@dataclass(frozen=True)
class Point:
    """A point in a run: ``kind`` is ``"step"``, ``"fraction"``, ``"sigma"`` or ``"percent"``."""

    kind: str
    value: float

    def __post_init__(self) -> None:
        check_point_value(self.kind, self.value, f"{self.kind} point")

    def describe(self) -> str:
        return f"{self.kind} {self.value:g}"


def check_point_value(kind: str, value: object, name: str) -> None:
    """Raise a ``TypeError``/``ValueError`` naming ``name`` when ``value`` is not a valid ``kind`` value."""
    if kind not in ALL_KINDS:
        raise ValueError(f"{name}: kind must be one of {ALL_KINDS}, got {kind!r}")
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got a bool ({value!r})")
    if kind == "step":
        if not isinstance(value, Integral):
            raise TypeError(f"{name} must be an int (a 0-based progress-bar step), got {type(value).__name__} {value!r}")
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    else:
        if not isinstance(value, Real):
            raise TypeError(f"{name} must be a float, got {type(value).__name__} {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
        if kind == "fraction" and not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be a fraction in [0, 1], got {value}")
        if kind == "percent" and not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be a percent of the noise axis in [0, 1] (ComfyUI's 0.0-1.0), got {value}")
        if kind == "sigma" and value <= 0:
            raise ValueError(f"{name} must be a noise level > 0, got {value}")


def point_from(prefix: str, step=None, fraction=None, sigma=None, percent=None, *, required: bool) -> list[Point] | None:
    """The points given by exactly one of ``{prefix}_step/_fraction/_sigma/_percent``, one per entry.

    Each may be a single value or a sequence (one value per prompt or per image row). Returns ``None``
    when none is given and ``required`` is false.
    """
    given = {k: v for k, v in (("step", step), ("fraction", fraction), ("sigma", sigma), ("percent", percent))
             if v is not None}
    names = ", ".join(f"{prefix}_{k}" for k in ALL_KINDS)
    if len(given) > 1:
        raise ValueError(f"give exactly one of {names}; got {', '.join(f'{prefix}_{k}' for k in given)}")
    if not given:
        if required:
            raise ValueError(f"give exactly one of {names}; got none")
        return None
    (kind, value), = given.items()
    name = f"{prefix}_{kind}"
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise ValueError(f"{name} must not be an empty list")
    points = []
    for j, v in enumerate(values):
        check_point_value(kind, v, name if len(values) == 1 else f"{name}[{j}]")
        points.append(Point(kind, int(v) if kind == "step" else float(v)))
    return points


@dataclass(frozen=True)
class NoiseAxis:
    """A model's training noise axis, for ComfyUI's percents (``comfy/model_sampling.py``, ``percent_to_sigma``).

    ``kind="discrete"``: ``sigmas`` are the training noise levels ``sqrt((1 - a_t) / a_t)`` of timesteps
    ``0..T-1``; percent ``p`` is timestep ``(1 - p) * (T - 1)``, its sigma interpolated linearly in log sigma
    between the two timesteps around it (ComfyUI's 999 is ``T - 1`` for ``T = 1000``).
    ``kind="flow"``: flow matching, sigma = t; percent ``p`` is ``t = 1 - p`` through the scheduler's shift:
    ``shift * t / (1 + (shift - 1) * t)``.
    ``p <= 0`` is above every noise level (the start of the run), ``p >= 1`` is 0 (never reached).
    """

    kind: str
    sigmas: tuple[float, ...] = ()
    shift: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("discrete", "flow"):
            raise ValueError(f"noise axis kind must be 'discrete' or 'flow', got {self.kind!r}")
        if self.kind == "discrete" and len(self.sigmas) < 2:
            raise ValueError("a discrete noise axis needs the training sigmas of at least two timesteps")
        if self.kind == "flow" and not (math.isfinite(self.shift) and self.shift > 0):
            raise ValueError(f"a flow noise axis needs a shift > 0, got {self.shift}")

    def sigma(self, percent: float) -> float:
        """ComfyUI's ``percent_to_sigma(percent)`` on this axis."""
        if percent <= 0.0:
            return math.inf
        if percent >= 1.0:
            return 0.0
        if self.kind == "flow":
            t = 1.0 - percent
            return t if self.shift == 1.0 else self.shift * t / (1 + (self.shift - 1) * t)
        t = (1.0 - percent) * (len(self.sigmas) - 1)
        low, high = math.floor(t), math.ceil(t)
        w = t - low
        return math.exp((1 - w) * math.log(self.sigmas[low]) + w * math.log(self.sigmas[high]))


@dataclass(frozen=True)
class Run:
    """Facts of one pipeline call.

    ``n_iterations``: loop iterations (UNet calls per row); ``n_steps``: progress-bar steps that run;
    ``order``: the scheduler's ``order``; ``sigmas``: noise level at each iteration (optional, needed for
    sigma and percent points); ``axis``: the model's training noise axis (optional, needed for percent points).
    """

    n_iterations: int
    n_steps: int
    order: int = 1
    sigmas: tuple[float, ...] | None = None
    axis: NoiseAxis | None = None

    def __post_init__(self) -> None:
        if self.n_steps < 1 or self.n_iterations < self.n_steps:
            raise ValueError(f"inconsistent run: {self.n_iterations} iterations for {self.n_steps} steps")
        if self.sigmas is not None and len(self.sigmas) != self.n_iterations:
            raise ValueError(f"run has {self.n_iterations} iterations but {len(self.sigmas)} sigmas")

    def iteration_steps(self) -> list[int]:
        """The progress-bar step of each loop iteration, by diffusers' progress-bar rule."""
        n, warmup = self.n_iterations, self.n_iterations - self.n_steps * self.order
        steps, done = [], 0
        for i in range(n):
            steps.append(done)
            if i == n - 1 or (i + 1 > warmup and (i + 1) % self.order == 0):
                done += 1
        return steps

    def step_sigmas(self) -> list[float]:
        """Noise level at the first UNet call of each step."""
        if self.sigmas is None:
            raise ValueError("this run has no noise levels: a sigma schedule cannot be resolved")
        first: dict[int, float] = {}
        for i, s in enumerate(self.iteration_steps()):
            first.setdefault(s, self.sigmas[i])
        return [first[s] for s in sorted(first)]


def needs(points) -> tuple[bool, bool]:
    """``(noise levels, noise axis)``: what a run must know to resolve ``points`` (sigma and percent points)."""
    kinds = {p.kind for p in points if p is not None}
    return bool(kinds & {"sigma", "percent"}), "percent" in kinds


def row_points(rows) -> list[Point]:
    """Every point of a list of rows of segments."""
    return [p for seg in rows for p, _ in seg]


def percent_sigma(point: Point, run: Run) -> float:
    """The noise level a percent point stands for in ``run`` (its model's training noise axis)."""
    if run.axis is None:
        raise ValueError(
            f"{point.describe()}: this run has no training noise axis, so a percent cannot be converted to a noise "
            "level (start_percent / stop_percent need a scheduler with a training noise schedule)"
        )
    return run.axis.sigma(point.value)


def resolve(point: Point, run: Run, *, ends: bool = False) -> int:
    """The step a point resolves to in ``run`` (``>= run.n_steps`` means: never). ``ends``: the point ends the
    negative's window (a stop): a percent then resolves to the first step whose noise level is below its sigma
    (ComfyUI keeps a conditioning while ``sigma >= end``); every other kind resolves the same either way."""
    if point.kind == "step":
        return int(point.value)
    if point.kind == "fraction":
        return int(point.value * run.n_steps)
    if point.kind == "percent":
        threshold = percent_sigma(point, run)
        reached = (lambda s: s < threshold) if ends else (lambda s: s <= threshold)
    else:
        reached = lambda s: s <= point.value  # noqa: E731
    for k, s in enumerate(run.step_sigmas()):
        if reached(s):
            return k
    return run.n_steps


Segments = Sequence[tuple[Point, Hashable]]


def window(start: Point, key: Hashable, stop: Point | None = None,
           before: str = "unconditional") -> list[tuple[Point, Hashable]]:
    """Segments for "``key`` from ``start`` on, back from ``stop`` on"; outside the window the row runs as
    ``before`` says: the pipeline's own unconditional text (key None), or CFG off (key ``CONDITIONAL``, from
    step 0)."""
    own = own_key(before)
    head = [] if own is None else [(Point("step", 0), own)]
    return head + ([(start, key)] if stop is None else [(start, key), (stop, own)])


def row_steps(segments: Segments, run: Run) -> list[tuple[int, Hashable]]:
    """Resolve one row's segments to ``(step, key)``, in order, checking that they do not run backwards."""
    out: list[tuple[int, Hashable]] = []
    for point, key in segments:
        step = resolve(point, run, ends=bool(out) and key in OWN and out[-1][1] not in OWN)
        if out and step < out[-1][0] and out[-1][0] < run.n_steps:
            prev = out[-1]
            raise ValueError(
                f"schedule runs backwards in this run: {point.describe()} resolves to step {step}, before step "
                f"{prev[0]} of the segment before it ({run.n_steps} steps)"
            )
        if out and step == out[-1][0] and step < run.n_steps and key in OWN and out[-1][1] not in OWN:
            raise ValueError(
                f"stop ({point.describe()}) resolves to step {step}, the same step as the start: "
                f"the negative would never be used ({run.n_steps} steps); stop must come after start"
            )
        out.append((step, key))
    return out


def key_per_step(segments: Segments, run: Run) -> list[Hashable]:
    """For each step of ``run``, the key that applies to this row."""
    keys: list[Hashable] = [None] * run.n_steps
    for step, key in row_steps(segments, run):
        for s in range(step, run.n_steps):
            keys[s] = key
    return keys


def plan(rows: Sequence[Segments], run: Run) -> list[tuple[Hashable, ...]]:
    """For each loop iteration, the key of every row. Raises if any row wants a negative at step 0 (``CONDITIONAL``
    is allowed there: whoever applies the plan makes step 0's unconditional pass the conditional one)."""
    per_row = [key_per_step(seg, run) for seg in rows]
    for r, keys in enumerate(per_row):
        if keys and keys[0] not in OWN:
            raise ValueError(
                f"row {r}: the schedule resolves to step 0 for this run ({run.n_steps} steps), which a step-end "
                "callback cannot change; pass that negative to the pipeline as negative_prompt= instead, or start later"
            )
    steps = run.iteration_steps()
    return [tuple(keys[s] for keys in per_row) for s in steps]


def switches(iteration_keys: Sequence[tuple[Hashable, ...]]) -> dict[int, tuple[Hashable, ...]]:
    """``{i: keys}`` for every callback index ``i`` after which the rows' keys change (they apply from ``i + 1``)."""
    return {
        i: iteration_keys[i + 1]
        for i in range(len(iteration_keys) - 1)
        if iteration_keys[i + 1] != iteration_keys[i]
    }


def expand(entries: Sequence, n_rows: int, name: str) -> list:
    """One entry per image row: a list of ``L`` entries covers ``n_rows / L`` consecutive rows each.

    diffusers orders rows prompt-major (``num_images_per_prompt`` copies of prompt 0, then prompt 1, ...),
    so one entry per prompt and one entry per row both land where they belong.
    """
    n = len(entries)
    if n == 0 or n_rows % n:
        raise ValueError(
            f"{name} {'have' if name.endswith('lists') else 'has'} {n} entries but the batch has {n_rows} image rows; "
            f"give 1 entry, one per prompt, or one per image row (a divisor of {n_rows})"
        )
    return [entries[r // (n_rows // n)] for r in range(n_rows)]
