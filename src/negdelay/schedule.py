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
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from numbers import Integral, Real

KINDS = ("step", "fraction", "sigma")


@dataclass(frozen=True)
class Point:
    """A point in a run: ``kind`` is ``"step"``, ``"fraction"`` or ``"sigma"``."""

    kind: str
    value: float

    def __post_init__(self) -> None:
        check_point_value(self.kind, self.value, f"{self.kind} point")

    def describe(self) -> str:
        return f"{self.kind} {self.value:g}"


def check_point_value(kind: str, value: object, name: str) -> None:
    """Raise a ``TypeError``/``ValueError`` naming ``name`` when ``value`` is not a valid ``kind`` value."""
    if kind not in KINDS:
        raise ValueError(f"{name}: kind must be one of {KINDS}, got {kind!r}")
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
        if kind == "sigma" and value <= 0:
            raise ValueError(f"{name} must be a noise level > 0, got {value}")


def point_from(prefix: str, step=None, fraction=None, sigma=None, *, required: bool) -> list[Point] | None:
    """The points given by exactly one of ``{prefix}_step/_fraction/_sigma``, one per entry.

    Each may be a single value or a sequence (one value per prompt or per image row). Returns ``None``
    when none is given and ``required`` is false.
    """
    given = {k: v for k, v in (("step", step), ("fraction", fraction), ("sigma", sigma)) if v is not None}
    names = ", ".join(f"{prefix}_{k}" for k in KINDS)
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
class Run:
    """Facts of one pipeline call.

    ``n_iterations``: loop iterations (UNet calls per row); ``n_steps``: progress-bar steps that run;
    ``order``: the scheduler's ``order``; ``sigmas``: noise level at each iteration (optional, needed for
    sigma points).
    """

    n_iterations: int
    n_steps: int
    order: int = 1
    sigmas: tuple[float, ...] | None = None

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


def resolve(point: Point, run: Run) -> int:
    """The step a point resolves to in ``run`` (``>= run.n_steps`` means: never)."""
    if point.kind == "step":
        return int(point.value)
    if point.kind == "fraction":
        return int(point.value * run.n_steps)
    for k, s in enumerate(run.step_sigmas()):
        if s <= point.value:
            return k
    return run.n_steps


Segments = Sequence[tuple[Point, Hashable]]


def window(start: Point, key: Hashable, stop: Point | None = None) -> list[tuple[Point, Hashable]]:
    """Segments for "``key`` from ``start`` on, back to the pipeline's own from ``stop`` on"."""
    return [(start, key)] if stop is None else [(start, key), (stop, None)]


def row_steps(segments: Segments, run: Run) -> list[tuple[int, Hashable]]:
    """Resolve one row's segments to ``(step, key)``, in order, checking that they do not run backwards."""
    out: list[tuple[int, Hashable]] = []
    for point, key in segments:
        step = resolve(point, run)
        if out and step < out[-1][0] and out[-1][0] < run.n_steps:
            prev = out[-1]
            raise ValueError(
                f"schedule runs backwards in this run: {point.describe()} resolves to step {step}, before step "
                f"{prev[0]} of the segment before it ({run.n_steps} steps)"
            )
        if out and step == out[-1][0] and step < run.n_steps and key is None and out[-1][1] is not None:
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
    """For each loop iteration, the key of every row. Raises if any row wants a non-``None`` key at step 0."""
    per_row = [key_per_step(seg, run) for seg in rows]
    for r, keys in enumerate(per_row):
        if keys and keys[0] is not None:
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
