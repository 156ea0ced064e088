"""The lab's business logic: paired renders, units of work, resume, splitting across processes.

Pairing: every image of a comparison starts from the same initial noise: each image row gets its own
``torch.Generator("cpu").manual_seed(seed)``. The columns of one seed (no negative, stock negative, delayed
negatives / the start points of a sweep) are rows of one batched pipeline call, each row with its own schedule
(``DelayedNegativeBase.for_pipeline(pipe, segments=[...])``): no negative = the pipeline's own unconditional
embedding all along; stock = ``negative_prompt`` given to the pipeline for that row; delayed = a row whose
segments switch to the negative at its start step.

Units of work (one pipeline call, or a few when ``batch_size`` caps the rows) are independent and deterministic,
so a run can be killed and resumed, and split across processes (``accelerate launch``): unit ``i`` belongs to
process ``i % num_processes``.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np

from .. import schedule as sch
from .config import CompareConfig, Common, GenerateConfig, Schedule, SweepConfig
from .models import LabError, Loaded, check_ti_tokens, load
from .outputs import RunFolder, infotext, png_bytes
from . import metrics as M


# ------------------------------------------------------------------------------------------------------- columns, run
@dataclass(frozen=True)
class Column:
    """One image row of a paired call."""

    id: str
    label: str
    kind: str  # "none" | "stock" | "delayed"
    segments: tuple = ()  # the row's schedule segments: ((Point, negative text or None), ...)
    schedule: str | None = None  # text form, for the infotext / tables
    start_step: int | None = None  # where the negative starts in this run (0 for stock)
    value: float | None = None  # a sweep's start value (in its kind)
    before: str = "unconditional"  # outside the window: "unconditional", or "no_cfg" (the prompt is its own negative)

    def own_negative(self, prompt: str, negative: str) -> str:
        """The ``negative_prompt`` this row gives the pipeline: the negative (stock), the prompt itself (CFG off from
        step 0: ``before="no_cfg"``), or the empty prompt."""
        return negative if self.kind == "stock" else prompt if self.before == "no_cfg" else ""


def schedule_needs(schedules) -> tuple[bool, bool]:
    """``(noise levels, noise axis)`` the schedules need to be resolved (sigma and percent points)."""
    return sch.needs([p for s in schedules for p in (s.start, s.stop)])


def run_facts_for(pipe, steps: int, need_sigmas: bool, need_axis: bool = False) -> sch.Run:
    """The facts of a ``steps``-step text-to-image call of ``pipe``, without running it."""
    from ..families import run_facts

    sched = type(pipe.scheduler).from_config(pipe.scheduler.config)
    sched.set_timesteps(steps, device="cpu")
    try:
        return run_facts(SimpleNamespace(scheduler=sched, _num_timesteps=len(sched.timesteps)), need_sigmas,
                         need_axis=need_axis)
    except ValueError as e:
        raise LabError(f"schedule: {e}") from None


def resolve_schedule(s: Schedule, run: sch.Run, what: str = "schedule") -> tuple[int, int | None]:
    """``(start step, stop step)`` of ``s`` in ``run``; a ``LabError`` when it falls outside the run."""
    n = run.n_steps
    start = sch.resolve(s.start, run)
    if not 1 <= start < n:
        why = "step 0 cannot be changed by a step-end callback (that is the stock negative)" if start == 0 else "it never comes"
        raise LabError(
            f"{what} {s.text()!r} resolves to step {start} in this run of {n} steps ({why}); a start must resolve to "
            f"a step from 1 to {n - 1}"
        )
    stop = None
    if s.stop is not None:
        stop = sch.resolve(s.stop, run, ends=True)
        if stop <= start or stop > n:
            raise LabError(
                f"{what} {s.text()!r}: the stop resolves to step {stop}, outside steps {start + 1}..{n} of this run"
            )
    return start, stop


def delayed_column(s: Schedule, negative: str, run: sch.Run) -> Column:
    start, stop = resolve_schedule(s, run)
    return Column(
        id=f"delayed-{s.slug()}",
        label=f"delayed from {s.start.describe()}" + (f" (= step {start})" if s.start.kind != "step" else "")
        + (f" until {s.stop.describe()}" if s.stop is not None else "")
        + (", CFG off outside" if s.before == "no_cfg" else ""),
        kind="delayed",
        segments=tuple(sch.window(s.start, negative, s.stop, s.before)),
        schedule=s.text() + (f" = steps {start}..{stop}" if stop is not None else f" = from step {start}"),
        start_step=start,
        before=s.before,
    )


NONE = Column("none", "no negative", "none", schedule="none")


def stock_column() -> Column:
    return Column("stock", "stock negative", "stock", schedule="stock (from step 0)", start_step=0)


# ------------------------------------------------------------------------------------------------------------ render
def render(loaded: Loaded, cfg: Common, prompt: str, negative: str, columns: list[Column],
           seed: int | list[int]) -> list[np.ndarray]:
    """One paired image per column (uint8 HxWx3), all from seed ``seed``'s initial noise; with a list of seeds,
    the rows of every seed (seed-major: seed 0's columns, then seed 1's, ...). Every row gets its own generator
    seeded with its seed. Rows are batched up to ``cfg.batch_size`` per call (0: all in one call)."""
    import torch

    from ..callback import DelayedNegativeBase

    pipe = loaded.pipe
    seeds = [seed] if isinstance(seed, int) else list(seed)
    rows = [(s, c) for s in seeds for c in columns]
    size = cfg.batch_size or len(rows)
    images: list[np.ndarray] = []
    for at in range(0, len(rows), size):
        chunk = rows[at : at + size]
        n = len(chunk)
        callback = None
        if any(c.kind == "delayed" for _, c in chunk):
            callback = DelayedNegativeBase.for_pipeline(pipe, segments=[list(c.segments) for _, c in chunk])
        with torch.no_grad():
            out = pipe(
                [prompt] * n,
                negative_prompt=[c.own_negative(prompt, negative) for _, c in chunk],
                num_inference_steps=cfg.steps,
                guidance_scale=cfg.guidance_scale,
                height=cfg.height,
                width=cfg.width,
                generator=[torch.Generator("cpu").manual_seed(s) for s, _ in chunk],
                callback_on_step_end=callback,
                output_type="np",
            )
        images.extend((np.clip(out.images, 0, 1) * 255).round().astype(np.uint8))
    return images


def info_for(loaded: Loaded, cfg: Common, prompt: str, negative: str, column: Column, seed: int,
             image: np.ndarray, extra: dict | None = None) -> str:
    h, w = image.shape[:2]
    params = {
        "Steps": cfg.steps,
        "Sampler": loaded.sampler,
        "CFG scale": f"{cfg.guidance_scale:g}",
        "Seed": seed,
        "Size": f"{w}x{h}",
        "Model": loaded.model_name,
        "Negative schedule": column.schedule,
    }
    params.update(extra or {})
    if column.kind == "none":
        # The negative this comparison is about, though this image does not use it.
        params["Unused negative"] = negative
    return infotext(prompt, negative if column.kind != "none" else None, params)


def score(images: list[np.ndarray], columns: list[Column], prompt: str, detector: bool, clip=None,
          negative: str | None = None) -> list[dict]:
    """Per-image metrics: detector verdicts (embedded model), distances to the column "none" image, CLIP
    similarities (when ``clip``, a ``metrics.ClipScore``, is given)."""
    ref = next((im for im, c in zip(images, columns) if c.kind == "none"), None)
    clip_rows = clip(images, prompt, negative) if clip is not None else [{} for _ in images]
    rows = []
    for im, c, cr in zip(images, columns, clip_rows):
        r: dict = {}
        if detector:
            r.update(M.detect(im, prompt))
        if ref is not None:
            r["pixel_distance"] = M.pixel_distance(im, ref)
            r["ssim_distance"] = M.ssim_distance(im, ref)
        r.update(cr)
        rows.append(r)
    return rows


# ---------------------------------------------------------------------------------------------------- distribution
class Dist:
    """Which share of the units this process does. Under ``accelerate launch`` (or torchrun) the processes split
    the units and meet at barriers; otherwise a single process does everything."""

    def __init__(self, device: str):
        self.rank, self.world, self._state = 0, 1, None
        self.device = device
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from accelerate import PartialState

            self._state = PartialState(cpu=device == "cpu")
            self.rank, self.world = self._state.process_index, self._state.num_processes
            if device.startswith("cuda") and ":" not in device:
                self.device = f"cuda:{self._state.local_process_index}"

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self._state is not None:
            self._state.wait_for_everyone()


@dataclass
class Unit:
    id: str
    work: Callable[[], dict]  # renders, writes the unit's PNGs, returns its record


def execute(folder: RunFolder, units: list[Unit], dist: Dist, progress: bool, title: str) -> dict[str, dict]:
    """Do this process's share of the units not yet done; return all records once every process is done."""
    done = folder.done()
    mine = [u for i, u in enumerate(units) if i % dist.world == dist.rank and u.id not in done]
    skipped = sum(1 for u in units if u.id in done)
    if mine:
        with _progress(progress, dist, title, len(mine), skipped) as advance:
            for u in mine:
                record = u.work()
                record["unit"] = u.id
                record["process"] = dist.rank
                folder.save_record(u.id, record)
                folder.log_done(dist.rank, u.id)
                advance()
    dist.barrier()
    records = folder.done()
    missing = [u.id for u in units if u.id not in records]
    if missing:
        raise LabError(f"units not done after every process finished: {missing[:5]}")
    return {u.id: records[u.id] for u in units}


_live: list = []  # the progress display shown now, if any


def stop_display() -> None:
    """Stop the progress display (restores the terminal's cursor): for a Ctrl-C handler that ends the process."""
    for bar in list(_live):
        bar.stop()


class _progress:
    def __init__(self, enabled: bool, dist: Dist, title: str, total: int, skipped: int):
        self.enabled, self.dist, self.title, self.total, self.skipped = enabled, dist, title, total, skipped
        self.bar = None

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), transient=False)
            self.bar.start()
            _live.append(self.bar)
            desc = self.title + (f" [process {self.dist.rank + 1}/{self.dist.world}]" if self.dist.world > 1 else "")
            if self.skipped:
                desc += f" (resuming: {self.skipped} done before)"
            self.task = self.bar.add_task(desc, total=self.total)
            return lambda: self.bar.advance(self.task)
        return lambda: None

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
            _live.remove(self.bar)
        return False


def say(message: str) -> None:
    """A line for the person at the terminal (stderr), e.g. that the run waits for another process."""
    print(f"negdelay: {message}", file=sys.stderr, flush=True)


def run_settings(cfg: Common) -> dict:
    """What ``run.json`` records of a run's settings (a resume must match them): the validated settings but the
    ones that do not change the output, and a fingerprint of the model files."""
    from .models import fingerprint

    settings = cfg.model_dump(mode="json", exclude={"progress", "threads", "out", "wait_lock"})
    settings["model_files"] = fingerprint(cfg)
    return settings


@contextlib.contextmanager
def open_run(cfg: Common, command: str, dist: Dist, folders=()):
    """The run folder, prepared and locked for this run (the main process holds the lock until the block ends);
    this run's leftover temporaries removed from its folders: the root, ``records`` and ``folders``."""
    folder = RunFolder(cfg.out)
    settings = run_settings(cfg)
    error = None
    if dist.main:
        try:
            folder.prepare(command, settings, main=True, wait=cfg.wait_lock, say=say)
            folder.clean_temporaries(folders)
        except LabError as e:
            folder.release()
            error = e  # meet the others at the barrier first, so that they do not wait for ever
    try:
        dist.barrier()
        if error is not None:
            raise error
        if not dist.main:
            folder.prepare(command, settings, main=False)
        yield folder
    finally:
        folder.release()


def start(cfg: Common, command: str, negatives: list[str]) -> tuple[Loaded, Dist]:
    """Checks that need no model (the output folder among them: not a folder of the user's, not another run, not in
    use), then the model (and the CLIP model, if any: ``loaded.clip``). Nothing is written before every check
    passed."""
    check_ti_tokens(cfg, negatives)
    dist = Dist(cfg.device)
    if dist.main:
        RunFolder(cfg.out).check(command, run_settings(cfg), wait=cfg.wait_lock, say=say)
    if dist.device != cfg.device:
        cfg = cfg.model_copy(update={"device": dist.device})
    loaded = load(cfg)
    if getattr(cfg, "clip_model", None):
        try:
            loaded.clip = M.ClipScore(cfg.clip_model, cfg.device)
        except ValueError as e:
            raise LabError(str(e)) from None
    return loaded, dist


def slug(text: str, n: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:n] or "x"


def save_png(folder: RunFolder, rel: str, image: np.ndarray, text: str) -> None:
    from PIL import Image

    folder.write(rel, png_bytes(Image.fromarray(image), text))


# ----------------------------------------------------------------------------------------------------------- compare
@dataclass
class CompareResult:
    out: Path
    summary: dict
    grids: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def compare(cfg: CompareConfig) -> CompareResult:
    """``negdelay compare``: for each pair and seed, no negative / stock / delayed columns from one initial noise."""
    t0 = time.perf_counter()
    loaded, dist = start(cfg, "compare", [p.negative for p in cfg.pairs])
    run = run_facts_for(loaded.pipe, cfg.steps, *schedule_needs(cfg.schedules))
    detector = cfg.uses_detector()
    pair_names = _pair_names(cfg)
    columns_of = {}
    for p, name in zip(cfg.pairs, pair_names):
        columns_of[name] = [NONE, stock_column()] + [delayed_column(s, p.negative, run) for s in cfg.schedules]

    def work(p, name, seeds):
        def go() -> dict:
            cols = columns_of[name]
            images = render(loaded, cfg, p.prompt, p.negative, cols, seeds)
            (folder.root / name).mkdir(exist_ok=True)
            rows = []
            for k, seed in enumerate(seeds):
                ims = images[k * len(cols) : (k + 1) * len(cols)]
                entries = []
                for im, c, s in zip(ims, cols, score(ims, cols, p.prompt, detector, loaded.clip, p.negative)):
                    rel = f"{name}/seed-{seed}_{c.id}.png"
                    save_png(folder, rel, im, info_for(loaded, cfg, p.prompt, p.negative, c, seed, im))
                    entries.append({"file": rel, "column": c.id, "label": c.label, "schedule": c.schedule,
                                    "start_step": c.start_step, "metrics": s})
                rows.append({"seed": seed, "images": entries})
            return {"pair": name, "prompt": p.prompt, "negative": p.negative, "rows": rows}
        return go

    k = cfg.seeds_per_call
    groups = [cfg.seeds[i : i + k] for i in range(0, len(cfg.seeds), k)]
    units = [Unit(f"{name}__seed-{'-'.join(map(str, g))}", work(p, name, g))
             for p, name in zip(cfg.pairs, pair_names) for g in groups]
    with open_run(cfg, "compare", dist, pair_names) as folder:
        records = execute(folder, units, dist, cfg.progress, "compare")
        result = CompareResult(folder.root, {})
        if dist.main:
            from .report import compare_report

            result.summary, result.grids = compare_report(folder, cfg, loaded, columns_of, records, detector)
    result.seconds = time.perf_counter() - t0
    return result


def _pair_names(cfg: CompareConfig) -> list[str]:
    names, seen = [], set()
    for j, p in enumerate(cfg.pairs):
        base = p.name and slug(p.name) or slug(f"{p.prompt} - no {p.negative}")
        name = base if base not in seen else f"{base}-{j}"
        seen.add(name)
        names.append(name)
    return names


# ------------------------------------------------------------------------------------------------------------- sweep
@dataclass
class SweepResult:
    out: Path
    summary: dict
    plot: Path | None = None
    seconds: float = 0.0


def sweep_columns(cfg: SweepConfig, run: sch.Run) -> list[Column]:
    cols = [NONE, stock_column()]
    bad = []
    for before in cfg.before:
        for p in cfg.starts.points():
            s = Schedule(start=p, before=before)
            try:
                c = delayed_column(s, cfg.negative, run)
            except LabError:
                if before == cfg.before[0]:
                    bad.append(f"{p.value:g} (step {sch.resolve(p, run)})")
                continue
            tag = "" if before == "unconditional" else f"-{before}"
            cols.append(Column(**{**c.__dict__, "id": f"start-{p.kind}-{p.value:g}{tag}", "value": float(p.value)}))
    if bad:
        raise LabError(
            f"starts outside this run of {run.n_steps} steps: {', '.join(bad)}; a start must resolve to a step "
            f"from 1 to {run.n_steps - 1} (step 0 is the stock negative)"
        )
    return cols


def sweep(cfg: SweepConfig) -> SweepResult:
    """``negdelay sweep``: every start point x every seed; the start points of one seed are rows of one call."""
    t0 = time.perf_counter()
    loaded, dist = start(cfg, "sweep", [cfg.negative])
    run = run_facts_for(loaded.pipe, cfg.steps, *sch.needs(cfg.starts.points()))
    cols = sweep_columns(cfg, run)
    detector = cfg.uses_detector()

    def work(seed):
        def go() -> dict:
            images = render(loaded, cfg, cfg.prompt, cfg.negative, cols, seed)
            scores = score(images, cols, cfg.prompt, detector, loaded.clip, cfg.negative)
            (folder.root / "images").mkdir(exist_ok=True)
            entries = []
            for im, c, s in zip(images, cols, scores):
                rel = f"images/seed-{seed}_{c.id}.png"
                save_png(folder, rel, im, info_for(loaded, cfg, cfg.prompt, cfg.negative, c, seed, im))
                entries.append({"file": rel, "column": c.id, "kind": c.kind, "value": c.value,
                                "start_step": c.start_step, "metrics": s,
                                **({"before": c.before} if c.before != "unconditional" else {})})
            return {"seed": seed, "images": entries}
        return go

    units = [Unit(f"seed-{seed}", work(seed)) for seed in cfg.seeds]
    with open_run(cfg, "sweep", dist, ["images"]) as folder:
        records = execute(folder, units, dist, cfg.progress, f"sweep ({len(cols)} rows per call)")
        result = SweepResult(folder.root, {})
        if dist.main:
            from .report import sweep_report

            result.summary, result.plot = sweep_report(folder, cfg, loaded, cols, records, detector, run)
    result.seconds = time.perf_counter() - t0
    return result


# ---------------------------------------------------------------------------------------------------------- generate
@dataclass
class GenerateResult:
    out: Path
    files: list[Path]
    seconds: float = 0.0


def a1111_callback(text: str, steps: int, pipe, skip_early_cfg: float | None = None, prompt: str | None = None):
    """``(negative_prompt, callback or None)`` from A1111 prompt-editing syntax, through ``negdelay.a1111``; with
    ``skip_early_cfg`` (A1111's "Ignore negative prompt during early sampling"), CFG off for the steps ``s`` with
    ``s / steps <= skip_early_cfg`` (the prompt is the pipeline's own negative), then A1111's negative of each step."""
    try:
        from .. import a1111
    except ImportError:
        raise LabError("a1111: this install has no negdelay.a1111 module; use negative + schedule instead") from None
    try:
        if not skip_early_cfg:
            return a1111.delayed_negative(text, steps, pipe)
        texts = a1111.per_step(text, steps)
    except (ValueError, TypeError) as e:
        raise LabError(f"a1111: {e}") from None
    from ..callback import DelayedNegativeBase

    first = next((s for s in range(steps) if s / steps > skip_early_cfg), steps)
    segments, current = [(sch.Point("step", 0), sch.CONDITIONAL)], sch.CONDITIONAL
    for s in range(first, steps):
        if texts[s] != current:
            segments.append((sch.Point("step", s), texts[s]))
            current = texts[s]
    return prompt, DelayedNegativeBase.for_pipeline(pipe, segments=[segments])


def generate(cfg: GenerateConfig) -> GenerateResult:
    """``negdelay generate``: one prompt, one delayed negative, one image per seed."""
    t0 = time.perf_counter()
    negative_text = cfg.negative if cfg.negative is not None else cfg.a1111
    loaded, dist = start(cfg, "generate", [negative_text])
    extra = None
    if cfg.a1111 is not None:
        pipe_negative, callback = a1111_callback(cfg.a1111, cfg.steps, loaded.pipe, cfg.skip_early_cfg, cfg.prompt)
        column = Column("a1111", "A1111 negative", "a1111", schedule="A1111 prompt editing (Negative prompt as A1111 reads it)")
        segments = None
        if cfg.skip_early_cfg:
            extra = {"Skip Early CFG": f"{cfg.skip_early_cfg:g}"}
    else:
        pipe_negative = None
        run = run_facts_for(loaded.pipe, cfg.steps, *schedule_needs([cfg.schedule]))
        column = delayed_column(cfg.schedule, cfg.negative, run)
        callback, segments = None, list(column.segments)
        pipe_negative = column.own_negative(cfg.prompt, cfg.negative) or None

    def work(seed):
        def go() -> dict:
            import torch

            from ..callback import DelayedNegativeBase

            cb = callback
            if segments is not None:
                cb = DelayedNegativeBase.for_pipeline(loaded.pipe, segments=[segments])
            with torch.no_grad():
                out = loaded.pipe(cfg.prompt, negative_prompt=pipe_negative, num_inference_steps=cfg.steps, guidance_scale=cfg.guidance_scale,
                                  height=cfg.height, width=cfg.width, generator=torch.Generator("cpu").manual_seed(seed),
                                  callback_on_step_end=cb, output_type="np")
            im = (np.clip(out.images[0], 0, 1) * 255).round().astype(np.uint8)
            rel = f"{slug(cfg.prompt)}_seed-{seed}.png"
            save_png(folder, rel, im, info_for(loaded, cfg, cfg.prompt, negative_text, column, seed, im, extra))
            return {"seed": seed, "images": [{"file": rel, "column": column.id, "schedule": column.schedule}]}
        return go

    units = [Unit(f"seed-{seed}", work(seed)) for seed in cfg.seeds]
    with open_run(cfg, "generate", dist) as folder:
        records = execute(folder, units, dist, cfg.progress, "generate")
        files = [folder.root / e["file"] for r in records.values() for e in r["images"]]
        if dist.main:
            from .report import bookkeeping

            folder.write_manifest(
                [{"path": e["file"], "what": "image", "seed": r["seed"], "schedule": e["schedule"]}
                 for r in records.values() for e in r["images"]]
                + bookkeeping(folder.root),
                {"command": "generate"},
            )
    return GenerateResult(folder.root, files, time.perf_counter() - t0)
