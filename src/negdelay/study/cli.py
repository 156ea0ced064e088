"""``negdelay study``: the study's protocol on your model, as a command of the lab's program.

The study builds on the lab (its settings, loading, metrics), never the other way round: this module adds its
command to the lab's typer app (``register``), and ``negdelay.cli`` -- the program -- puts the two together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..lab.cli import (BatchOpt, CfgOpt, ConfigOpt, DetectorOpt, DeviceOpt, DtypeOpt, HOpt, ModelOpt, OutOpt, PickleOpt,
                       ProgressOpt, SchedulerOpt, SeedsOpt, SingleCfgOpt, StepsOpt, ThreadsOpt, TIOpt, WOpt, _common,
                       _guard)


def study(
    prompt: Optional[list[str]] = typer.Option(None, "--prompt", "-p", help="repeatable; seed j renders prompt j mod count"),
    negative: Optional[str] = typer.Option(None, "--negative", "-n"),
    starts: Optional[str] = typer.Option(None, "--starts", help="start points swept: step:1-12 (default), fraction:0.1,0.2, sigma:8,4,2"),
    clip: Optional[str] = typer.Option(None, "--clip", help="CLIP model (folder or hub id) scoring the negative's presence; required unless --model toy"),
    contrast: Optional[str] = typer.Option(None, "--contrast", help="CLIP contrast text for presence (default 'a photo')"),
    auto: Optional[bool] = typer.Option(None, "--auto/--no-auto", help="also run negdelay.auto and judge it against the per-image oracle (default on)"),
    config: Optional[Path] = ConfigOpt, model: Optional[str] = ModelOpt, single_file_config: Optional[str] = SingleCfgOpt,
    allow_pickle: Optional[bool] = PickleOpt, textual_inversion: Optional[list[str]] = TIOpt,
    scheduler: Optional[str] = SchedulerOpt, device: Optional[str] = DeviceOpt, dtype: Optional[str] = DtypeOpt,
    threads: Optional[int] = ThreadsOpt, steps: Optional[int] = StepsOpt, guidance_scale: Optional[float] = CfgOpt,
    height: Optional[int] = HOpt, width: Optional[int] = WOpt, seeds: Optional[str] = SeedsOpt,
    batch_size: Optional[int] = BatchOpt, detector: Optional[str] = DetectorOpt, out: Optional[Path] = OutOpt,
    progress: Optional[bool] = ProgressOpt,
):
    """The study's protocol on your model: no negative / stock / each start (+ auto), paired over many seeds.

    Rates of the negative's presence (CLIP, or the toy judge) with Wilson intervals, distances to the no-negative
    twin, the critical start, reverse activation, and negdelay.auto against the per-image oracle (docs/study.md).
    """
    with _guard():
        from pydantic import ValidationError

        from ..lab.config import ConfigError, format_errors, read_yaml
        from .user import StudyConfig, run_study

        flags = dict(prompts=prompt or None, negative=negative, starts=starts, clip=clip, contrast=contrast, auto=auto,
                     **_common(model, single_file_config, allow_pickle, textual_inversion, scheduler, device, dtype,
                               threads, steps, guidance_scale, height, width, seeds, batch_size, detector, out, progress))
        if flags.get("textual_inversion") == []:
            flags["textual_inversion"] = None
        data = read_yaml(config) if config is not None else {}
        data.update({k: v for k, v in flags.items() if v is not None})
        try:
            cfg = StudyConfig.model_validate(data)
        except ValidationError as e:
            raise ConfigError(format_errors(e, "study settings" + (f" (from {config})" if config else ""), StudyConfig)) from None
        res = run_study(cfg, log=typer.echo if cfg.progress else None)
        typer.echo(res.markdown)
        typer.echo(f"study: {res.seconds:.1f} s -> {res.out} (summary.md, summary.json"
                   + (f", {res.plot.name})" if res.plot else ")"))


def register(app: typer.Typer) -> None:
    """Add ``study`` to ``app`` (once)."""
    if not any(c.callback is study for c in app.registered_commands):
        app.command("study")(study)
