"""``negdelay study``: the study's protocol on any SD 1.x/2.x checkpoint (or the embedded model).

For each seed, one batched call renders the prompt with no negative, with the stock negative (from step 0) and with
the negative from each start; optionally a second call runs ``negdelay.auto``. Every image is scored for the
negative's presence (the toy judge on the embedded model; CLIP presence with a CLIP model you give, otherwise) and
its distance to the no-negative twin. Out: ``summary.json``, ``summary.md`` (rates with Wilson intervals, distances
with bootstrap intervals, the critical start, reverse activation, auto against the per-image oracle) and
``tradeoff.png``. Resumable: the same command in the same folder skips what is done.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, model_validator

from ..lab.config import TOY, Common, Starts
from ..lab.models import LabError
from . import report as R
from .protocol import NONE, STOCK, Cell, ClipScorer, load_cell, load_images, run_auto_chunks, run_cell, toy_scorer


class StudyConfig(Common):
    """Settings of ``negdelay study``."""

    prompts: list[str] = []
    negative: str | None = None
    starts: Starts | None = None
    clip: str | None = Field(None, description="CLIP model (diffusers/transformers folder or hub id) for presence scores")
    contrast: str = "a photo"
    auto: bool = True
    seeds: list[int] = list(range(200))

    @model_validator(mode="after")
    def _defaults(self) -> "StudyConfig":
        if self.model == TOY:
            from . import plan

            self.prompts = self.prompts or list(plan.PLAIN)
            self.negative = self.negative or plan.NEG
        else:
            if not self.prompts or not self.negative:
                raise ValueError("prompts and negative are required (defaults exist only for model 'toy')")
            if not self.clip:
                raise ValueError("clip: give a CLIP model (folder or hub id) to score the negative's presence; "
                                 "only model 'toy' has a ground-truth judge")
        if self.starts is None:
            self.starts = Starts(kind="step", values=list(range(1, min(self.steps, 13))))
        return self

    def uses_clip(self) -> bool:
        return self.clip is not None and not (self.model == TOY and self.detector != "none")


@dataclass
class StudyResult:
    out: Path
    summary: dict
    markdown: str
    plot: Path | None
    seconds: float


def start_steps(cfg: StudyConfig, pipe) -> list[int]:
    from .. import schedule as sch
    from ..lab.run import run_facts_for

    run = run_facts_for(pipe, cfg.steps, cfg.starts.kind == "sigma")
    steps, bad = [], []
    for p in cfg.starts.points():
        k = sch.resolve(p, run)
        if not 1 <= k < run.n_steps:
            bad.append(f"{p.kind} {p.value:g} (step {k})")
        elif k not in steps:
            steps.append(k)
    if bad:
        raise LabError(f"starts: {', '.join(bad)} fall outside this run of {run.n_steps} steps; a start must resolve "
                       f"to a step from 1 to {run.n_steps - 1}")
    return sorted(steps)


def run_study(cfg: StudyConfig, log=None) -> StudyResult:
    from ..lab.models import check_ti_tokens, load

    t0 = time.perf_counter()
    check_ti_tokens(cfg, [cfg.negative])
    out = Path(cfg.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise LabError(f"out: cannot write to {str(out)!r}: {e.strerror or e}") from None
    if cfg.uses_clip():
        scorer = ClipScorer(cfg.clip, cfg.negative, cfg.contrast, device=cfg.device)
        try:
            scorer.load()
        except ValueError as e:
            raise LabError(str(e)) from None
    else:
        scorer = toy_scorer
    loaded = load(cfg)
    pipe = loaded.pipe
    starts = start_steps(cfg, pipe)
    cell = Cell("sweep", cfg.steps, tuple(starts), tuple(cfg.seeds), tuple(cfg.prompts), cfg.negative, None,
                cfg.guidance_scale, True, cfg.batch_size or 64, cfg.height, cfg.width)
    say = log or (lambda m: None)
    say(f"study: {len(cell.seeds)} seeds x {len(cell.rows)} rows ({cfg.steps} steps), scoring with "
        f"{'CLIP ' + str(cfg.clip) if cfg.uses_clip() else 'the toy judge'}")
    records = run_cell(pipe, cell, out, scorer, progress=cfg.progress, log=say)
    auto_recs, cost = [], None
    if cfg.auto:
        auto_recs, cost = _run_auto(cfg, pipe, cell, out, scorer, say)
    summary, md = _summarize(cfg, cell, records, auto_recs, cost, loaded.model_name)
    (out / "summary.json").write_text(json.dumps(_clean(summary), indent=1))
    (out / "summary.md").write_text(md)
    plot = None
    from .plots import tradeoff

    try:
        plot = tradeoff(summary["all"], out / "tradeoff.png", f"start step of the negative ({cfg.steps} steps)",
                        f"{loaded.model_name}: removal and change vs start step ({len(cell.seeds)} paired seeds)")
    except (KeyError, ValueError):
        plot = None
    return StudyResult(out, summary, md, plot, time.perf_counter() - t0)


def _run_auto(cfg, pipe, cell, out, scorer, say):
    from ..auto import AutoDelayedNegative

    recs = load_cell(out, cell.name)
    ims = load_images(out, cell.name)
    none_img = {(r["seed"], r["prompt"]): im for r, im in zip(recs, ims) if r["row"] == NONE}
    chunks = run_auto_chunks(pipe, cell, out / "auto", max(1, cfg.batch_size or 64),
                             lambda: AutoDelayedNegative(cell.negative), scorer, none_img, log=say)
    probe = sum(c["cost"]["probe_rows"] for c in chunks)
    own = sum(c["cost"]["pipeline_rows"] for c in chunks)
    return [r for c in chunks for r in c["records"]], {"probe_rows": probe, "pipeline_rows": own,
                                                      "extra": probe / own if own else math.nan}


def _clean(x):
    from .report import jsonable as _jsonable

    return _jsonable(x)


def _summarize(cfg, cell, records, auto_recs, cost, model_name):
    summary = {"model": model_name, "negative": cell.negative, "steps": cell.steps, "starts": list(cell.starts),
               "seeds": len(cell.seeds), "prompts": list(cell.prompts),
               "scoring": f"CLIP {cfg.clip} (P(negative | negative vs {cfg.contrast!r}) > 0.5)" if cfg.uses_clip()
               else "toy judge"}
    summary["all"] = R.summarize_cell(records)
    summary["by_prompt"] = R.by_group(records, lambda r: r["prompt"]) if len(cell.prompts) > 1 else {}
    ks, rel = R.removal_curve(summary["all"])
    summary["critical_step"] = R.crossing([float(k) for k in ks], rel, 0.5)
    lines = [f"# negdelay study: {model_name}, negative {cell.negative!r}", "",
             f"{len(cell.seeds)} paired seeds, {cell.steps} steps, guidance {cell.guidance:g}; presence scored by "
             f"{summary['scoring']}.", "", R.cell_table(summary["all"], _cols(cfg)), ""]
    st = summary["all"]["rows"]
    d = st[STOCK]["diff_vs_none"]
    lines.append(f"Reverse activation check: stock − none = {100 * d['mean']:+.1f} pp "
                 f"[{100 * d['low']:+.1f}, {100 * d['high']:+.1f}] (paired; positive means the negative from step 0 "
                 "makes the thing it names more frequent).")
    crit = summary["critical_step"]
    lines.append("Critical start (relative removal falls to 50 % of the stock negative's): "
                 + ("not reached within the starts swept" if math.isnan(crit) else f"step {crit:.1f}") + ".")
    if auto_recs:
        seeds_rows = {}
        for r in records:
            seeds_rows.setdefault((r["seed"], r["prompt"]), {})[r["row"]] = r
        # judge_auto keys by seed; seeds are unique per cell (one prompt per seed)
        by_seed = {s: v for (s, _), v in seeds_rows.items()}
        chosen = {r["seed"]: r["step"] for r in auto_recs}
        res = R.judge_auto(by_seed, list(cell.starts), chosen)
        direct = {"present": R.rate([r["present"] for r in auto_recs]),
                  "pixel": dict(zip(("mean", "low", "high"), R.bootstrap_mean([r["pixel"] for r in auto_recs])))}
        summary["auto"] = {"judged": res, "direct": direct, "cost": cost,
                           "steps": [r["step"] for r in auto_recs]}
        lines += ["", "## negdelay.auto", "",
                  f"- presence: {R.pct(direct['present'])}; pixel distance to the no-negative twin "
                  f"{R.num(direct['pixel'], 1, 4)}",
                  f"- within one step of the per-image oracle (images with the thing, removable by a swept start): "
                  f"{R.pct(res['within_one'])}",
                  f"- extra UNet rows: {cost['probe_rows']} for {cost['pipeline_rows']} (+{100 * cost['extra']:.1f} %)",
                  f"- fixed starts as good on both removal and change: {res['dominated_by'] or 'none'}"]
    return summary, "\n".join(lines) + "\n"


def _cols(cfg):
    base = ("present", "created", "removed")
    if cfg.uses_clip():
        return base + ("presence", "pixel", "ssim")
    return base + ("correct", "pixel", "ssim")
