"""``negdelay``: the lab's command line. A thin layer: each command turns its flags (and ``--config``) into a
validated settings model (``negdelay.lab.config``) and calls one function of ``negdelay.lab.run``.

Add a command: write ``def mycommand(...)`` with ``@app.command()``, build its settings with ``_settings(...)``, call
your function inside ``_guard()``.
"""

from __future__ import annotations

import os
import signal
import sys

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
INTERRUPTED = "interrupted; nothing is half-written: run the same command again to resume (finished images are kept)"


# Ctrl-C in the negdelay program (console script, ``python -m negdelay``) ends it at once, at any moment -- Python
# starting, imports, model loading, rendering, writing: the progress display is stopped, the temporaries being
# written are removed (every file reaches its name whole, by ``os.replace``; a unit is done only when its record
# exists), one line is printed, exit code 130; the operating system drops the run folder's lock. A handler rather
# than ``KeyboardInterrupt``: an exception raised where the signal lands can be swallowed (e.g. inside a library's
# ``__del__``, "Exception ignored in ...") and the run would go on. Installed before the heavy imports, only in the
# program itself, never in a process that merely imports this module (there ``_guard`` turns KeyboardInterrupt into
# exit code 130). ``negdelay/__init__.py`` imports nothing heavy (its names load on first use).
def _interrupted(signum, frame):  # pragma: no cover - exercised in subprocesses (tests/test_lab_safety.py)
    for name, undo in (("negdelay.lab.run", "stop_display"), ("negdelay.lab.outputs", "remove_in_flight")):
        module = sys.modules.get(name)
        try:
            if module is not None:
                getattr(module, undo)()
        except Exception:  # noqa: BLE001 - leaving now matters more; the next run cleans up its temporaries
            pass
    os.write(2, f"negdelay: {INTERRUPTED}\n".encode())
    os._exit(EXIT_INTERRUPTED)


def _is_the_cli() -> bool:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name in ("negdelay.__main__", "negdelay.cli", "negdelay.lab.cli"):
        return True
    return os.path.basename(getattr(main, "__file__", None) or "").lower() in ("negdelay", "negdelay.exe", "negdelay-script.py")


if _is_the_cli():
    try:
        signal.signal(signal.SIGINT, _interrupted)
    except ValueError:  # not the main thread
        pass

import contextlib  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Optional  # noqa: E402

import typer  # noqa: E402

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Delayed negative prompts: compare, sweep and generate (Ban et al., arXiv:2406.02965).",
    pretty_exceptions_enable=False,
)

# ---- options every command shares (all default to None: unset flags leave the config file's value) ----
ConfigOpt = typer.Option(None, "--config", "-c", help="YAML settings file; flags given here override it")
ModelOpt = typer.Option(None, "--model", "-m", help="'toy' (embedded, default), a diffusers folder, a hub id, or a single-file checkpoint")
SingleCfgOpt = typer.Option(None, "--single-file-config", help="single-file checkpoints: local diffusers folder with the component configs")
PickleOpt = typer.Option(None, "--allow-pickle/--no-allow-pickle", help="allow .ckpt (pickle) checkpoints")
TIOpt = typer.Option(None, "--textual-inversion", "--ti", help="FILE:TOKEN (repeatable); the token must appear in the negative")
SchedulerOpt = typer.Option(None, "--scheduler", help="pndm, ddim, ddpm, euler, euler_a, heun, lms, dpm++2m, dpm++2m_karras, dpm++sde, kdpm2, kdpm2_a, unipc, deis")
DeviceOpt = typer.Option(None, "--device", help="cpu (default), cuda, cuda:N, mps")
DtypeOpt = typer.Option(None, "--dtype", help="float32 (default), float16, bfloat16")
ThreadsOpt = typer.Option(None, "--threads", help="torch CPU threads (default 1)")
StepsOpt = typer.Option(None, "--steps", help="inference steps (default 20)")
CfgOpt = typer.Option(None, "--guidance-scale", "--cfg", help="CFG scale, > 1 (default 7.5)")
HOpt = typer.Option(None, "--height")
WOpt = typer.Option(None, "--width")
SeedsOpt = typer.Option(None, "--seeds", help="e.g. 0-7 (eight seeds), 0,3,5; a single number is that one seed")
BatchOpt = typer.Option(None, "--batch-size", help="max image rows per pipeline call (0: all columns of a seed in one call)")
DetectorOpt = typer.Option(None, "--detector", help="auto (toy model: on), toy, none")
OutOpt = typer.Option(None, "--out", "-o", help="output folder (a run into the same folder with the same settings resumes)")
ProgressOpt = typer.Option(None, "--progress/--no-progress")
WaitLockOpt = typer.Option(None, "--wait-lock/--no-wait-lock",
                           help="another process works in --out: wait for it (default: stop with exit code 2)")


def _err(msg: str) -> None:
    typer.echo(f"negdelay: error: {msg}", err=True)


@contextlib.contextmanager
def _guard():
    """Bad input -> one clear message and exit code 2; Ctrl-C -> one line and exit code 130 (in the program itself
    the handler above does it; this is for the commands called in-process, e.g. by tests). No tracebacks for either;
    real bugs still raise."""
    try:
        from .config import ConfigError
        from .models import LabError

        try:
            yield
        except (ConfigError, LabError) as e:
            _err(str(e))
            raise typer.Exit(EXIT_BAD_INPUT) from None
    except KeyboardInterrupt:
        typer.echo(f"negdelay: {INTERRUPTED}", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _settings(command: str, config: Optional[Path], **flags):
    from .config import build

    if flags.get("textual_inversion") == []:
        flags["textual_inversion"] = None
    return build(command, config, **flags)


def _common(model, single_file_config, allow_pickle, textual_inversion, scheduler, device, dtype, threads, steps,
            guidance_scale, height, width, seeds, batch_size, detector, out, progress, wait_lock=None) -> dict:
    return dict(model=model, single_file_config=single_file_config, allow_pickle=allow_pickle,
                textual_inversion=textual_inversion or None, scheduler=scheduler, device=device, dtype=dtype,
                threads=threads, steps=steps, guidance_scale=guidance_scale, height=height, width=width, seeds=seeds,
                batch_size=batch_size, detector=detector, out=out, progress=progress, wait_lock=wait_lock)


@app.command()
def compare(
    prompt: Optional[list[str]] = typer.Option(None, "--prompt", "-p", help="repeatable; paired with --negative"),
    negative: Optional[list[str]] = typer.Option(None, "--negative", "-n", help="one for all prompts, or one per prompt"),
    schedule: Optional[list[str]] = typer.Option(None, "--schedule", "-s", help="repeatable: step:4, fraction:0.25, sigma:2.5, percent:0.3 (ComfyUI's), step:4..12; add ' before=no_cfg' for CFG off before the start"),
    clip_model: Optional[str] = typer.Option(None, "--clip-model", help="local CLIP folder: adds CLIP similarity to prompt and negative"),
    seeds_per_call: Optional[int] = typer.Option(None, "--seeds-per-call", help="seeds rendered in one batched call (default: 4 on the toy model, else 1)"),
    config: Optional[Path] = ConfigOpt, model: Optional[str] = ModelOpt, single_file_config: Optional[str] = SingleCfgOpt,
    allow_pickle: Optional[bool] = PickleOpt, textual_inversion: Optional[list[str]] = TIOpt,
    scheduler: Optional[str] = SchedulerOpt, device: Optional[str] = DeviceOpt, dtype: Optional[str] = DtypeOpt,
    threads: Optional[int] = ThreadsOpt, steps: Optional[int] = StepsOpt, guidance_scale: Optional[float] = CfgOpt,
    height: Optional[int] = HOpt, width: Optional[int] = WOpt, seeds: Optional[str] = SeedsOpt,
    batch_size: Optional[int] = BatchOpt, detector: Optional[str] = DetectorOpt, out: Optional[Path] = OutOpt,
    progress: Optional[bool] = ProgressOpt, wait_lock: Optional[bool] = WaitLockOpt,
):
    """No negative / stock negative / delayed negative(s), paired from one initial noise per seed.

    With no arguments: the embedded toy model, built-in pairs, detector rates per column.
    """
    with _guard():
        from . import run

        pairs = _pairs(prompt, negative)
        cfg = _settings("compare", config, pairs=pairs, schedules=schedule or None, seeds_per_call=seeds_per_call,
                        clip_model=clip_model,
                        **_common(model, single_file_config, allow_pickle, textual_inversion, scheduler, device, dtype,
                                  threads, steps, guidance_scale, height, width, seeds, batch_size, detector, out,
                                  progress, wait_lock))
        res = run.compare(cfg)
        if res.summary:
            typer.echo(_compare_text(res))


def _pairs(prompts, negatives):
    from .config import ConfigError

    if not prompts and not negatives:
        return None
    if not prompts or not negatives:
        raise ConfigError("give --prompt and --negative together (one negative for all prompts, or one per prompt)")
    if len(negatives) == 1:
        negatives = negatives * len(prompts)
    if len(negatives) != len(prompts):
        raise ConfigError(f"--negative: give 1 or {len(prompts)} (one per --prompt), got {len(negatives)}")
    return [{"prompt": p, "negative": n} for p, n in zip(prompts, negatives)]


def _compare_text(res) -> str:
    s = res.summary
    lines = [f"compare: {len(s['pairs'])} pair(s) x {len(s['seeds'])} seeds in {res.seconds:.1f} s -> {res.out}"]
    table = s["all_pairs"] or next(iter(s["pairs"].values()))["columns"]
    for col in table.values():
        parts = [f"{col['label']:<28s}"]
        if "dot" in col:
            d = col["dot"]
            parts.append(f"dot {100 * d['rate']:3.0f}% [{100 * d['low']:.0f}-{100 * d['high']:.0f}]")
        if "pixel_distance" in col and col["pixel_distance"]["mean"] > 0:
            parts.append(f"pixel dist {col['pixel_distance']['mean']:.3f}")
        lines.append("  " + "  ".join(parts))
    from .verdict import line

    lines.append("verdict (all pairs, paired by seed, against the stock negative):")
    lines += [f"  {line(v)}" for v in s.get("verdicts", {}).values()]
    lines.append(f"grids: {', '.join(str(g) for g in res.grids)}")
    lines.append(f"summary: {res.out / 'summary.md'}")
    return "\n".join(lines)


@app.command()
def sweep(
    prompt: Optional[str] = typer.Option(None, "--prompt", "-p"),
    negative: Optional[str] = typer.Option(None, "--negative", "-n"),
    clip_model: Optional[str] = typer.Option(None, "--clip-model", help="local CLIP folder: adds CLIP similarity to prompt and negative"),
    starts: Optional[str] = typer.Option(None, "--starts", help="one kind, many values: step:1-10, step:1,2,4, fraction:0.1,0.2, sigma:8,4,2, percent:0.2,0.4"),
    before: Optional[list[str]] = typer.Option(None, "--before", help="repeatable: unconditional (default) and/or no_cfg (CFG off before the start): one row per start and value"),
    config: Optional[Path] = ConfigOpt, model: Optional[str] = ModelOpt, single_file_config: Optional[str] = SingleCfgOpt,
    allow_pickle: Optional[bool] = PickleOpt, textual_inversion: Optional[list[str]] = TIOpt,
    scheduler: Optional[str] = SchedulerOpt, device: Optional[str] = DeviceOpt, dtype: Optional[str] = DtypeOpt,
    threads: Optional[int] = ThreadsOpt, steps: Optional[int] = StepsOpt, guidance_scale: Optional[float] = CfgOpt,
    height: Optional[int] = HOpt, width: Optional[int] = WOpt, seeds: Optional[str] = SeedsOpt,
    batch_size: Optional[int] = BatchOpt, detector: Optional[str] = DetectorOpt, out: Optional[Path] = OutOpt,
    progress: Optional[bool] = ProgressOpt, wait_lock: Optional[bool] = WaitLockOpt,
):
    """Many start points x many seeds: metrics per start (CSV/JSON) and a plot with 95% bands.

    The start points of one seed run as rows of one batched call. Under `accelerate launch -m negdelay sweep ...`
    the seeds are split across processes.
    """
    with _guard():
        from . import run

        cfg = _settings("sweep", config, prompt=prompt, negative=negative, starts=starts, clip_model=clip_model,
                        before=before or None,
                        **_common(model, single_file_config, allow_pickle, textual_inversion, scheduler, device, dtype,
                                  threads, steps, guidance_scale, height, width, seeds, batch_size, detector, out,
                                  progress, wait_lock))
        res = run.sweep(cfg)
        if res.summary:
            typer.echo(_sweep_text(res))


def _png_flags(path: Path, flags: dict) -> dict:
    """The PNG's settings under the flags given (a negative or schedule given on the command line replaces the
    PNG's negative altogether); lists what the PNG holds that is not reproduced."""
    from .from_png import read_png, settings_for

    png = read_png(path)
    base = settings_for(png, model_given=flags.get("model") is not None)
    if any(flags.get(k) is not None for k in ("negative", "schedule", "a1111")):
        for k in ("negative", "schedule", "a1111", "skip_early_cfg"):
            base.pop(k, None)
    if png.ignored:
        typer.echo(f"from-png: not reproduced: {', '.join(png.ignored)}", err=True)
    return {**base, **{k: v for k, v in flags.items() if v is not None}}


def _sweep_text(res) -> str:
    s = res.summary
    lines = [f"sweep: {len(s['starts'])} starts x {len(s['seeds'])} seeds in {res.seconds:.1f} s -> {res.out}"]
    for st in s["starts"]:
        parts = [f"start {s['start_kind']} {st['value']:g} (step {st['start_step']})"
                 + (", CFG off before" if st.get("before") == "no_cfg" else "")]
        if "dot" in st:
            parts.append(f"dot {100 * st['dot']['rate']:3.0f}%")
        if "pixel_distance" in st:
            parts.append(f"pixel dist {st['pixel_distance']['mean']:.3f}")
        lines.append("  " + "  ".join(parts))
    lines.append(f"plot: {res.plot}")
    return "\n".join(lines)


@app.command()
def generate(
    prompt: Optional[str] = typer.Option(None, "--prompt", "-p"),
    negative: Optional[str] = typer.Option(None, "--negative", "-n"),
    schedule: Optional[str] = typer.Option(None, "--schedule", "-s", help="step:4, fraction:0.25, sigma:2.5, percent:0.3, step:4..12 (+ ' before=no_cfg')"),
    a1111: Optional[str] = typer.Option(None, "--a1111", help="the negative in A1111 syntax instead, e.g. '[glasses:5]'"),
    skip_early_cfg: Optional[float] = typer.Option(None, "--skip-early-cfg", help="with --a1111: A1111's 'Ignore negative prompt during early sampling' (0-1)"),
    from_png: Optional[Path] = typer.Option(None, "--from-png", help="an A1111-style PNG: its prompt, negative, steps, sampler, CFG, seed and size (flags override them)"),
    config: Optional[Path] = ConfigOpt, model: Optional[str] = ModelOpt, single_file_config: Optional[str] = SingleCfgOpt,
    allow_pickle: Optional[bool] = PickleOpt, textual_inversion: Optional[list[str]] = TIOpt,
    scheduler: Optional[str] = SchedulerOpt, device: Optional[str] = DeviceOpt, dtype: Optional[str] = DtypeOpt,
    threads: Optional[int] = ThreadsOpt, steps: Optional[int] = StepsOpt, guidance_scale: Optional[float] = CfgOpt,
    height: Optional[int] = HOpt, width: Optional[int] = WOpt, seeds: Optional[str] = SeedsOpt,
    out: Optional[Path] = OutOpt, progress: Optional[bool] = ProgressOpt, wait_lock: Optional[bool] = WaitLockOpt,
):
    """One prompt, one delayed negative: one image per seed, with A1111 infotext (or the settings of a PNG)."""
    with _guard():
        from . import run

        flags = dict(prompt=prompt, negative=negative, schedule=schedule, a1111=a1111, skip_early_cfg=skip_early_cfg,
                     **_common(model, single_file_config, allow_pickle, textual_inversion, scheduler, device, dtype,
                               threads, steps, guidance_scale, height, width, seeds, None, None, out, progress,
                               wait_lock))
        if from_png is not None:
            flags = _png_flags(from_png, flags)
        cfg = _settings("generate", config, **flags)
        res = run.generate(cfg)
        for f in res.files:
            typer.echo(str(f))


@app.command("pipelines")
def pipelines_command(
    json_out: bool = typer.Option(False, "--json", help="a JSON list of objects: class, entry, mode, status, ..."),
) -> None:
    """Every installed diffusers pipeline that takes negative_prompt: served (entry point, mode) or why not."""
    from ..pipelines.__main__ import main as table_main

    table_main(["--json"] if json_out else [])


def main(argv: Optional[list[str]] = None) -> None:
    """The lab's commands alone (``python -m negdelay.lab.cli``). The ``negdelay`` program is ``negdelay.cli.main``,
    which adds the study's command: the lab does not import the study (the study builds on the lab)."""
    app(args=sys.argv[1:] if argv is None else list(argv), prog_name="negdelay")


if __name__ == "__main__":
    main()
