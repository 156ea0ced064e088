"""From the study's raw results to its report: calibration of the automatic step, tables, plots.

``calibrate(out)`` fits the auto signal's threshold on the DDIM 20-step full sweep (2-fold: fitted on even seeds,
judged on odd ones and the reverse; the shipped threshold is fitted on all seeds) and writes
``auto-calibration.json``. ``build_report(out, img)`` writes ``report.md`` / ``report.json`` in ``out`` and the
plots ``study-*.png`` in ``img``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..auto import DEFAULT_MAX_FRACTION, SIGNALS, decide, decide_rise
from . import plan
from . import report as R
from .protocol import NONE, STOCK, load_cell, load_signals

FULL = "ddim-20-full"


_jsonable = R.jsonable


# ------------------------------------------------------------------------------------------------------ auto
def offline_choices(sig: dict, kind: str, threshold: float, steps: int = 20, max_fraction=DEFAULT_MAX_FRACTION,
                    when: str = "first", fallback: str = "max") -> dict:
    """The start step AutoDelayedNegative would choose for each recorded seed (iteration 0 is unseen at run time)."""
    iter_steps = [int(s) for s in sig["iter_steps"]]
    out = {}
    for j, seed in enumerate(sig["seeds"]):
        values = [None] + [float(v) for v in sig[kind][j][1:]]
        out[int(seed)] = decide(values, iter_steps, steps, threshold, max_fraction=max_fraction, when=when,
                                fallback=fallback)
    return out


MAX_FRACTIONS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def _score(seeds_rows, starts, chosen, oracles=None) -> tuple[float, float]:
    """(within one step of the oracle on images with the accessory and an oracle, minus the mean pixel change over
    all images: the tie-break)."""
    near, change = [], []
    for s, k in chosen.items():
        change.append(seeds_rows[s][NONE if k is None else k]["pixel"])
        o = oracles[s] if oracles is not None else R.oracle(seeds_rows[s], starts)
        if o is None or o == -1:
            continue
        near.append(k is not None and abs(k - o) <= 1)
    return (float(np.mean(near)) if near else 0.0, -float(np.mean(change)) if change else 0.0)


def _settings(sig):
    for kind in [k for k in SIGNALS if k in sig]:
        vals = sig[kind][:, 1:]
        grid = np.unique(np.quantile(vals[np.isfinite(vals)], np.linspace(0.01, 0.99, 40)))
        grid = np.concatenate([grid, [np.inf]])  # inf: never fires, always the fallback (a fixed step)
        for mf in MAX_FRACTIONS:
            for when, fallback in (("first", "max"), ("first", "never"), ("latest", "never")):
                for thr in grid:
                    if thr == np.inf and (when, fallback) != ("first", "max"):
                        continue
                    yield {"signal": kind, "threshold": float(thr), "max_fraction": mf, "when": when,
                           "fallback": fallback}


def _fit_all(seeds_rows, starts, sig, subsets: list[set]) -> list[dict]:
    """For each subset of seeds, the auto setting with the best within-one accuracy (ties: less change)."""
    oracles = {s: R.oracle(r, starts) for s, r in seeds_rows.items()}
    best = [None] * len(subsets)
    scores = [(-1.0, -1.0)] * len(subsets)
    for st in _settings(sig):
        ch_all = _choices(sig, st)
        for j, sub in enumerate(subsets):
            sc = _score(seeds_rows, starts, {s: k for s, k in ch_all.items() if s in sub}, oracles)
            if sc > scores[j]:
                scores[j] = sc
                best[j] = {**st, "fit_within_one": sc[0], "fit_change": -sc[1]}
    return best


def _choices(sig, fit: dict) -> dict:
    return offline_choices(sig, fit["signal"], fit["threshold"], max_fraction=fit["max_fraction"], when=fit["when"],
                           fallback=fit["fallback"])


def calibrate(out: Path) -> dict:
    out = Path(out)
    seeds_rows = R.by_seed(load_cell(out, FULL))
    starts = list(plan.FULL_STARTS)
    sig = load_signals(out)
    all_seeds = [int(s) for s in sig["seeds"] if int(s) in seeds_rows]
    folds = [set(all_seeds[0::2]), set(all_seeds[1::2])]
    fits = _fit_all(seeds_rows, starts, sig, [folds[0], folds[1], set(all_seeds)])
    cv = []
    for f in (0, 1):
        fit = fits[f]
        held = folds[1 - f]
        ch = {s: k for s, k in _choices(sig, fit).items() if s in held}
        res = R.judge_auto(seeds_rows, starts, ch)
        cv.append({"fit_on": "even seeds" if f == 0 else "odd seeds", **fit, "held_out": res,
                   "frontier_gap": R.frontier_gap(res)})
    fit = fits[2]
    ch = {s: k for s, k in _choices(sig, fit).items() if s in set(all_seeds)}
    full = R.judge_auto(seeds_rows, starts, ch)
    calib = {**fit, "within_one_in_sample": fit["fit_within_one"], "cross_validation": cv, "in_sample": full,
             "in_sample_frontier_gap": R.frontier_gap(full),
             "fixed_within_one": {k: _score(seeds_rows, starts, {s: k for s in all_seeds})[0] for k in starts}}
    (out / "auto-calibration.json").write_text(json.dumps(_jsonable(calib), indent=1))
    return calib


# --------------------------------------------------------------------------------------- auto: detector rule
X0_DIR = "x0-ddim-20"  # benchmarks/auto_x0_signals.py
RISES = tuple(round(0.02 * k, 2) for k in range(1, 21))
RISE_MIN_STEPS = (2, 3, 4, 5, 6, 7)


def within_one_whole(seeds_rows, starts, chosen: dict, n_steps: int = 20) -> dict:
    """Within one step of the oracle over *every* image, with "never" counted as step ``n_steps``: an image without
    the accessory, or whose accessory no start removes, has the oracle "never" (no negative: the least change; for
    the unremovable ones a convention -- nothing removes it, so nothing is the least change)."""
    near = []
    for s, k in chosen.items():
        o = R.oracle(seeds_rows[s], starts)
        o = n_steps if o is None or o == -1 else o
        near.append(abs((n_steps if k is None else k) - o) <= 1)
    return R.rate(near)


DETECTORS = ("dot", "dot-relative")


def load_x0_scores(out: Path, detector: str = "dot") -> dict:
    """Per recorded seed, the embedded world's dot score (``signals.dot_score``) of the decoded negative-guided
    x0-prediction of every iteration of the no-negative DDIM 20-step run."""
    from .signals import dot_score, dot_score_relative

    score = {"dot": dot_score, "dot-relative": dot_score_relative}[detector]
    parts = [dict(np.load(p)) for p in sorted((Path(out) / X0_DIR).glob("chunk-*.npz"))]
    if not parts:
        raise FileNotFoundError(f"no x0 recordings in {Path(out) / X0_DIR} (run benchmarks/auto_x0_signals.py)")
    out_ = {}
    for part in parts:
        imgs = part["img_n"]
        for j, seed in enumerate(part["seeds"]):
            out_[int(seed)] = score(imgs[j])
    return out_


def rise_choices(scores: dict, rise: float, min_step: int, steps: int = 20, lookahead: bool = False) -> dict:
    """AutoDelayedNegative(detector=...)'s start per seed read off the recording (iteration 0 is unseen at run time;
    with ``lookahead`` iteration i's score is evaluated at the end of step i - 1 and decides step i)."""
    iters = list(range(steps))
    return {s: decide_rise([None] + [float(v) for v in sc[1:]], iters, steps, rise, min_step, lookahead)
            for s, sc in scores.items()}


def _fit_rise(seeds_rows, starts, scores, subsets, lookahead: bool = False):
    """Per subset, the (rise, min_step) with the best within-one accuracy on images with an oracle (ties: the
    whole-set accuracy, then less change)."""
    oracles = {s: R.oracle(r, starts) for s, r in seeds_rows.items()}
    best, keys = [None] * len(subsets), [(-1.0,)] * len(subsets)
    for rise in RISES:
        for ms in ((1,) + RISE_MIN_STEPS if lookahead else RISE_MIN_STEPS):
            ch = rise_choices(scores, rise, ms, lookahead=lookahead)
            for j, sub in enumerate(subsets):
                c = {s: k for s, k in ch.items() if s in sub}
                a, chg = _score(seeds_rows, starts, c, oracles)
                key = (a, within_one_whole(seeds_rows, starts, c)["rate"], chg)
                if key > keys[j]:
                    keys[j], best[j] = key, {"rise": rise, "min_step": ms, "fit_within_one": a}
    return best


def _fit_fixed(seeds_rows, starts, sub):
    return max(starts, key=lambda k: _score(seeds_rows, starts, {s: k for s in sub}))


def fold_schemes(seeds: list[int]) -> dict:
    """Two 2-fold splits over seeds. "parity": even / odd seeds -- seed j renders prompt j mod 12, so this splits the
    prompts (red/blue vs green/yellow objects): a cross-prompt test. "blocks": seeds 0-11, 24-35, ... vs 12-23, ...
    -- every prompt in both folds: a cross-seed test."""
    return {"parity": [set(s for s in seeds if s % 2 == 0), set(s for s in seeds if s % 2 == 1)],
            "blocks": [set(s for s in seeds if (s // 12) % 2 == 0), set(s for s in seeds if (s // 12) % 2 == 1)]}


def rise_calibration_name(lookahead: bool, detector: str = "dot") -> str:
    return f"auto-rise{'-lookahead' if lookahead else ''}{'' if detector == 'dot' else '-' + detector}-calibration.json"


def calibrate_rise(out: Path, lookahead: bool = False, detector: str = "dot") -> dict:
    """Fit and cross-validate the detector rule; the old signal rule and the best fixed step on the same folds."""
    out = Path(out)
    seeds_rows = R.by_seed(load_cell(out, FULL))
    starts = list(plan.FULL_STARTS)
    scores = {s: v for s, v in load_x0_scores(out, detector).items() if s in seeds_rows}
    sig = load_signals(out)
    all_seeds = sorted(scores)

    def judged(chosen, sub):
        c = {s: k for s, k in chosen.items() if s in sub}
        res = R.judge_auto(seeds_rows, starts, c)
        return {"within_one": res["within_one"], "within_one_all": within_one_whole(seeds_rows, starts, c),
                "exact": res["exact"], "mean_diff": res["mean_diff"], "present": res["auto"]["present"],
                "present_dotted": res["auto"]["present_dotted"], "pixel": res["auto"]["pixel"],
                "ssim": res["auto"]["ssim"], "frontier_gap": R.frontier_gap(res), "dominated_by": res["dominated_by"],
                "n_oracle": res["n_oracle"], "n_images": res["n_images"]}

    result = {"folds": {}}
    for name, folds in fold_schemes(all_seeds).items():
        fits = _fit_rise(seeds_rows, starts, scores, folds, lookahead)
        old = _fit_all(seeds_rows, starts, sig, folds)
        rows = []
        for f in (0, 1):
            held = folds[1 - f]
            k = _fit_fixed(seeds_rows, starts, folds[f])
            rows.append({
                "fit_on": f"fold {f}", "judged_on": f"fold {1 - f}",
                "rise": {**fits[f], **judged(rise_choices(scores, fits[f]["rise"], fits[f]["min_step"],
                                                          lookahead=lookahead), held)},
                "signal": {**{x: old[f][x] for x in ("signal", "threshold", "max_fraction", "when", "fallback")},
                           **judged(_choices(sig, old[f]), held)},
                "fixed": {"step": k, **judged({s: k for s in all_seeds}, held)},
            })
        result["folds"][name] = rows
    fit = _fit_rise(seeds_rows, starts, scores, [set(all_seeds)], lookahead)[0]
    result["fit"] = {**fit, "lookahead": lookahead, "detector": detector}
    result["in_sample"] = judged(rise_choices(scores, fit["rise"], fit["min_step"], lookahead=lookahead),
                                 set(all_seeds))
    old = _fit_all(seeds_rows, starts, sig, [set(all_seeds)])[0]
    result["signal_in_sample"] = {**{x: old[x] for x in ("signal", "threshold", "max_fraction", "when", "fallback")},
                                  **judged(_choices(sig, old), set(all_seeds))}
    result["fixed_in_sample"] = {k: judged({s: k for s in all_seeds}, set(all_seeds)) for k in starts}
    (out / rise_calibration_name(lookahead, detector)).write_text(json.dumps(_jsonable(result), indent=1))
    return result


# ------------------------------------------------------------------------------------------------------ report
def _cells_present(out: Path) -> dict:
    cells = plan.cells()
    return {n: c for n, c in cells.items() if list((out / n).glob("chunk-*.json"))}


def _sigmas(cell) -> list[float]:
    import diffusers

    from ..toy import MODEL_DIR

    cfg = json.loads((MODEL_DIR / "scheduler" / "scheduler_config.json").read_text())
    from types import SimpleNamespace as NS

    from .protocol import set_sampler

    holder = NS(scheduler=getattr(diffusers, cfg["_class_name"]).from_config(cfg))
    set_sampler(holder, cell.sampler)
    sched = holder.scheduler
    sched.set_timesteps(cell.steps)
    from types import SimpleNamespace

    from ..families import run_facts

    return run_facts(SimpleNamespace(scheduler=sched, _num_timesteps=len(sched.timesteps)), True).step_sigmas()


def build_report(out: Path, img: Path | None) -> dict:
    """``report.md`` and ``report.json`` in ``out`` from every cell, signal recording and auto run found there (and
    the plots in ``img``, if given). Returns the report's data."""
    out = Path(out)
    present = _cells_present(out)
    rep: dict = {"cells": {}}
    summaries = _summaries(out, present, rep)
    md = _reverse_activation_md(summaries, present)
    md += _cell_tables_md(summaries, present)
    md += _seed_setting_md(out, summaries, present, rep)
    settings = _critical_settings(summaries, present)
    md += _critical_points_md(settings, rep)
    sig = _signals_if_recorded(out)
    if sig is not None:
        rep["signals"] = _signal_summary(sig)
        md.append(_signal_table(rep["signals"]))
    md += _auto_section(out, summaries, sig, rep)
    md += _early_behaviour_md(out, present, rep)
    (out / "report.md").write_text("\n".join(md) + "\n")
    (out / "report.json").write_text(json.dumps(_jsonable(rep), indent=1))
    if img is not None:
        from .plots import make_plots

        make_plots(rep, summaries, present, settings, sig, Path(img))
    return rep


def _summaries(out: Path, present: dict, rep: dict) -> dict:
    """Per cell: the summary of its records (with one per shape); the cell's settings and summary go into ``rep``."""
    summaries = {}
    for name, cell in present.items():
        recs = load_cell(out, name)
        s = R.summarize_cell(recs)
        s["by_shape"] = R.by_group(recs, lambda r: R.shape_of(r["prompt"]))
        summaries[name] = s
        rep["cells"][name] = {"cell": {"sampler": cell.sampler, "steps": cell.steps, "negative": cell.negative,
                                       "prompts": "plain" if cell.prompts == plan.PLAIN else "named"}, **s}
    return summaries


def _reverse_activation_md(summaries: dict, present: dict) -> list[str]:
    """Question 1: the accessory rate with no negative vs stock (and the highest start row), paired, per cell."""
    rev = [n for n, s_ in summaries.items() if NONE in s_["rows"] and STOCK in s_["rows"] and present[n].prompts == plan.PLAIN]
    if not rev:
        return []
    md = ["### Reverse activation: accessory rate with no negative vs the negative from step 0 (and from each "
          "later start), paired\n",
          "| cell | no negative | stock (step 0) | stock − none (paired) | created by stock (of images "
          "without) | highest start row − none (paired) |",
          "|---|---|---|---|---|---|"]
    for n in rev:
        rows = summaries[n]["rows"]
        d = rows[STOCK]["diff_vs_none"]
        ks = [k for k in rows if isinstance(k, int)]
        hi = max(ks, key=lambda k: rows[k]["diff_vs_none"]["mean"]) if ks else None
        hd = rows[hi]["diff_vs_none"] if hi is not None else None
        md.append(f"| {n} ({present[n].negative!r}) | {R.pct(rows[NONE]['present'])} | {R.pct(rows[STOCK]['present'])} | "
                  f"{100 * d['mean']:+.1f} pp [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}] | "
                  f"{R.pct(rows[STOCK]['created'])} | "
                  + (f"step {hi}: {100 * hd['mean']:+.1f} pp [{100 * hd['low']:+.1f}, {100 * hd['high']:+.1f}]"
                     if hd else "–") + " |")
    md.append("")
    return md


def _cell_tables_md(summaries: dict, present: dict) -> list[str]:
    """Questions 1 and 2: every cell's table, and its accessory rates per shape."""
    md = []
    for name, s in summaries.items():
        c = present[name]
        md.append(f"### {name}: {c.sampler}, {c.steps} steps, negative {c.negative!r}, "
                  f"{'prompts not naming the dot' if c.prompts == plan.PLAIN else 'prompts naming the dot'}, "
                  f"{s['n_seeds']} seeds\n")
        md.append(R.cell_table(s))
        md.append("")
        md.append("Per shape (accessory rate: no negative / stock / paired difference stock − none):\n")
        md.append("| shape | no negative | stock | stock − none (paired) |\n|---|---|---|---|")
        for shp, g in s["by_shape"].items():
            if NONE in g["rows"] and STOCK in g["rows"]:
                d = g["rows"][STOCK]["diff_vs_none"]
                md.append(f"| {shp} | {R.pct(g['rows'][NONE]['present'])} | {R.pct(g['rows'][STOCK]['present'])} | "
                          f"{100 * d['mean']:+.1f} pp [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}] |")
        md.append("")
    return md


def _seed_setting_md(out: Path, summaries: dict, present: dict, rep: dict) -> list[str]:
    """Question 5: the seed's setting (PNDM 50 steps, start step 4 vs stock), paired."""
    md = []
    for name in ("pndm-50", "seed-exp2", "seed-exp1", "seed-exp3"):
        if name in present and 4 in summaries[name]["rows"]:
            q5 = _paired_rows(load_cell(out, name), STOCK, 4)
            rep.setdefault("seed_setting", {})[name] = q5
            c = present[name]
            md.append(f"### {name}: start step 4 of 50 (PNDM) minus stock, paired over {q5['n']} seeds "
                      f"(negative {c.negative!r})\n")
            md.append("| measure | stock | from step 4 | step 4 − stock (paired) |\n|---|---|---|---|")
            for m, v in q5["measures"].items():
                md.append(f"| {m} | {v['a']:.4f} | {v['b']:.4f} | {v['diff'][0]:+.4f} [{v['diff'][1]:+.4f}, "
                          f"{v['diff'][2]:+.4f}] |")
            md.append("")
    return md


def _critical_settings(summaries: dict, present: dict) -> dict:
    """Question 4: the cells whose removal curve has a critical point (the plain prompts and negative, a stock row
    and three starts at least), with their step count and step sigmas."""
    settings = {}
    for name, c in present.items():
        if c.negative != plan.NEG or c.prompts != plan.PLAIN or STOCK not in summaries[name]["rows"] or c.no_cfg:
            continue
        if len([k for k in summaries[name]["rows"] if isinstance(k, int)]) < 3:
            continue
        settings[name] = {"summary": summaries[name], "n_steps": c.steps, "sigmas": _sigmas(c)}
    return settings


def _critical_points_md(settings: dict, rep: dict) -> list[str]:
    """Question 4: where the relative removal falls to 50 %, as a step, a fraction and a sigma, and which kind of
    schedule carries it across settings best."""
    if not settings:
        return []
    kt = R.schedule_kind_test(settings)
    rep["schedule_kind"] = kt
    md = ["### Critical point (relative removal falls to 50 %) per setting\n", "| setting | step | fraction | sigma |\n|---|---|---|---|"]
    for n, cp in kt["critical"].items():
        md.append(f"| {n} | {cp['step']:.2f} | {cp['fraction']:.3f} | {cp['sigma']:.3f} |")
    md.append("")
    md.append("| schedule kind | median critical value | mean abs. error of relative removal at the median | max |")
    md.append("|---|---|---|---|")
    for kind, v in kt["kinds"].items():
        md.append(f"| {kind} | {v['median']:.3f} | {v['mean_abs_error']:.3f} | {v['max_abs_error']:.3f} |")
    md.append("")
    return md


def _signals_if_recorded(out: Path) -> dict | None:
    try:
        return load_signals(out)
    except FileNotFoundError:
        return None


def _auto_section(out: Path, summaries: dict, sig: dict | None, rep: dict) -> list[str]:
    """The automatic step: its calibration and its real runs (``auto-*`` folders) into ``rep``; the section when the
    full sweep, an auto run of it and the signal recording are all there."""
    cal_path = out / "auto-calibration.json"
    if cal_path.exists():
        rep["auto_calibration"] = json.loads(cal_path.read_text())
    autos = {}
    for folder in sorted(out.glob("auto-*")):
        if folder.is_dir():
            autos[folder.name[5:]] = _auto_runtime(out, folder)
    rep["auto_runtime"] = autos
    if FULL in summaries and autos.get(FULL) and sig is not None:
        return [_auto_md(rep, out)]
    return []


def _early_behaviour_md(out: Path, present: dict, rep: dict) -> list[str]:
    """Question 6: at the same start, CFG against the empty prompt before it (the default) vs CFG off before it, on
    removal and change; per cell with the early-behaviour rows (``Cell.no_cfg``)."""
    md = []
    for name, cell in present.items():
        if not cell.no_cfg:
            continue
        result = early_behaviour(out, name, list(cell.starts))
        rep.setdefault("early_behaviour", {})[name] = result
        md += _early_behaviour_table(name, cell, result)
    return md


def early_behaviour(out: Path, name: str, starts: list[int]) -> dict:
    """Per start ``k``: the three rows' rates and changes, the paired difference CFG off − default (both against
    the no-negative twin), and CFG off with the negative against its own twin (CFG off, no negative)."""
    from ..lab import metrics as M
    from .protocol import NO_CFG, NO_CFG_ONLY, early_row, load_images

    records = load_cell(out, name)
    images = load_images(out, name)
    seeds = R.by_seed(records)
    index = {(r["seed"], r["row"]): j for j, r in enumerate(records)}
    summary = R.summarize_cell(records)["rows"]
    result = {}
    for k in starts:
        off, twin = early_row(NO_CFG, k), early_row(NO_CFG_ONLY, k)
        pairs = [(index[(s, off)], index[(s, twin)]) for s in seeds if (s, off) in index and (s, twin) in index]
        own = {"pixel": R.bootstrap_mean([M.pixel_distance(images[a], images[b]) for a, b in pairs]),
               "ssim": R.bootstrap_mean([M.ssim_distance(images[a], images[b]) for a, b in pairs])}
        with_dot = [(records[a]["present"], records[b]["present"]) for a, b in pairs if records[b]["present"]]
        result[k] = {"default": summary[k], "no_cfg": summary[off], "no_cfg_only": summary[twin],
                     "paired": _paired_rows(records, k, off),
                     "vs_own_twin": {**own, "removed": R.rate([not p for p, _ in with_dot]) if with_dot else None}}
    return result


def _early_behaviour_table(name: str, cell, result: dict) -> list[str]:
    md = [f"### {name}: the same start, CFG against the empty prompt before it (default) vs CFG off before it "
          f"({cell.sampler}, {cell.steps} steps, {len(cell.seeds)} seeds)\n",
          "| start | before the start | accessory rate | removed (of those with) | created (of those without) | "
          "pixel dist. to no negative | 1 − SSIM to no negative |",
          "|---|---|---|---|---|---|---|"]
    for k, r in result.items():
        for label, e in (("CFG, empty prompt (default)", r["default"]), ("CFG off", r["no_cfg"]),
                         ("CFG off, no negative at all", r["no_cfg_only"])):
            md.append(f"| {k} | {label} | {R.pct(e['present'])} | {R.pct(e['removed'])} | {R.pct(e['created'])} | "
                      f"{R.num(e['pixel'])} | {R.num(e['ssim'])} |")
    md += ["", "Paired over seeds, CFG off − default at the same start (95 % bootstrap), and CFG off with the negative "
           "against its own twin (CFG off, no negative):\n",
           "| start | accessory rate | pixel dist. | 1 − SSIM | object right | own twin: removed (of its dots) | "
           "own twin: pixel dist. | own twin: 1 − SSIM |", "|---|---|---|---|---|---|---|---|"]
    for k, r in result.items():
        m, t = r["paired"]["measures"], r["vs_own_twin"]
        d = lambda key, scale=1.0, f=".3f": (f"{scale * m[key]['diff'][0]:+{f}} [{scale * m[key]['diff'][1]:+{f}}, "  # noqa: E731
                                             f"{scale * m[key]['diff'][2]:+{f}}]")
        num = lambda v: f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]"  # noqa: E731
        md.append(f"| {k} | {d('accessory present', 100, '.1f')} pp | {d('pixel distance to no negative')} | "
                  f"{d('1 - SSIM to no negative')} | {d('object right', 100, '.1f')} pp | {R.pct(t['removed'])} | "
                  f"{num(t['pixel'])} | {num(t['ssim'])} |")
    md.append("")
    return md


def _paired_rows(records: list[dict], a, b) -> dict:
    """Paired comparison of rows ``a`` and ``b`` over the seeds having both: means and the bootstrap interval of the
    per-seed difference ``b - a`` for the accessory, the object, and the change to the no-negative twin."""
    seeds = R.by_seed(records)
    pairs = [(d[a], d[b]) for d in seeds.values() if a in d and b in d]
    out = {"n": len(pairs), "measures": {}}
    for m, f in (("accessory present", lambda r: float(r["present"])),
                 ("object right", lambda r: float(bool(r.get("correct")))),
                 ("pixel distance to no negative", lambda r: r["pixel"]),
                 ("1 - SSIM to no negative", lambda r: r["ssim"])):
        x = [f(p) for p, _ in pairs]
        y = [f(q) for _, q in pairs]
        out["measures"][m] = {"a": float(np.mean(x)), "b": float(np.mean(y)), "diff": R.paired_diff(x, y)}
    return out


def _signal_summary(sig: dict) -> dict:
    from ..lab.metrics import bootstrap_mean

    out = {"iter_steps": sig["iter_steps"].tolist(), "sigmas": sig["sigmas"].tolist(), "groups": {}}
    for group, mask in (("with dot", sig["has_dot"] & sig["found"]), ("without dot", ~sig["has_dot"] & sig["found"])):
        g = {"n": int(mask.sum())}
        for region in ("dot", "object", "background"):
            for stat in ("cancel", "align", "act"):
                arr = sig[f"{region}_{stat}"][mask]
                g[f"{region}_{stat}"] = [bootstrap_mean(col[np.isfinite(col)], n_boot=500) for col in arr.T]
        d = sig["dot_cancel"][mask] - np.nanmean(
            np.stack([sig["object_cancel"][mask], sig["background_cancel"][mask]]), axis=0)
        g["dot_minus_rest_cancel"] = [bootstrap_mean(col[np.isfinite(col)], n_boot=500) for col in d.T]
        for kind in [k for k in SIGNALS if k in sig]:
            g[kind] = [bootstrap_mean(col, n_boot=500) for col in sig[kind][mask].T]
        out["groups"][group] = g
    return out


def _signal_table(s: dict) -> str:
    lines = ["### Neutralization per step (DDIM 20 steps, no-negative trajectory; mean [95 % bootstrap])\n",
             "| step | sigma | cancel: dot region | cancel: rest of object | cancel: background | dot − rest | "
             "align (auto signal) |", "|---|---|---|---|---|---|---|"]
    g = s["groups"]["with dot"]
    for i, st in enumerate(s["iter_steps"]):
        f = lambda m: f"{m[0]:.3f} [{m[1]:.3f}, {m[2]:.3f}]"  # noqa: E731
        lines.append(f"| {st} | {s['sigmas'][st]:.2f} | {f(g['dot_cancel'][i])} | {f(g['object_cancel'][i])} | "
                     f"{f(g['background_cancel'][i])} | {f(g['dot_minus_rest_cancel'][i])} | {f(g['align'][i])} |")
    lines.append(f"\n(images whose no-negative render has the dot: {g['n']})\n")
    return "\n".join(lines)


def _auto_runtime(out: Path, folder: Path) -> dict:
    chunks = [json.loads(p.read_text()) for p in sorted(folder.glob("chunk-*.json"))]
    recs = [r for c in chunks for r in c["records"]]
    probe = sum(c["cost"]["probe_rows"] for c in chunks)
    own = sum(c["cost"]["pipeline_rows"] for c in chunks)
    return {"n": len(recs), "records": recs, "probe_rows": probe, "pipeline_rows": own,
            "extra": probe / own if own else math.nan, "seconds": sum(c["seconds"] for c in chunks),
            "threshold": chunks[0]["threshold"] if chunks else None, "signal": chunks[0]["signal"] if chunks else None}


def _f(x, spec: str, scale: float = 1.0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return format(scale * x, spec)


def _auto_md(rep: dict, out: Path) -> str:
    cal = rep.get("auto_calibration")
    rt = rep["auto_runtime"][FULL]
    seeds_rows = R.by_seed(load_cell(out, FULL))
    starts = list(plan.FULL_STARTS)
    chosen = {r["seed"]: r["step"] for r in rt["records"]}
    res = R.judge_auto(seeds_rows, starts, chosen)
    rep["auto_runtime_judged"] = res
    # runtime images scored directly (not read off the sweep)
    direct = {"present": R.rate([r["present"] for r in rt["records"]]),
              "pixel": dict(zip(("mean", "low", "high"), R.bootstrap_mean([r["pixel"] for r in rt["records"]])))}
    rep["auto_runtime_direct"] = direct
    lines = ["### Automatic critical step (DDIM 20 steps)\n"]
    if cal:
        fx = cal.get("fixed_within_one", {})
        if fx:
            best_k = max(fx, key=lambda k: fx[k])
            lines.append(f"Best fixed start against the same oracle: step {best_k}, within one step on "
                         f"{_f(fx[best_k], '.1f', 100)} % of the images (in sample).\n")
        lines.append(f"Signal {cal['signal']!r}, threshold {_f(cal['threshold'], '.4f')}, latest start "
                     f"{cal['max_fraction']:g} of the run, when={cal['when']!r}, fallback={cal['fallback']!r} "
                     "(fitted on all seeds; "
                     f"in-sample within one step of the oracle: {_f(cal['within_one_in_sample'], '.1f', 100)} %).\n")
        lines.append("| fold | signal / threshold / latest start / mode fitted | within one step (held out) | exact | "
                     "mean step − oracle | accessory rate | pixel dist. | above fixed-step curve by |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for f in cal["cross_validation"]:
            h = f["held_out"]
            lines.append(f"| fit on {f['fit_on']} | {f['signal']} / {_f(f['threshold'], '.4f')} / "
                         f"{f['max_fraction']:g} / {f['when']}, {f['fallback']} | {R.pct(h['within_one'])} | "
                         f"{R.pct(h['exact'])} | {_f(h['mean_diff'], '+.2f')} | {R.pct(h['auto']['present'])} | "
                         f"{R.num(h['auto']['pixel'], 1, 4)} | {_f(f['frontier_gap'], '+.1f', 100)} pp |")
        lines.append("")
    lines.append("Run for real (AutoDelayedNegative in the pipeline, all seeds):\n")
    lines.append(f"- within one step of the oracle: {R.pct(res['within_one'])}; exact: {R.pct(res['exact'])}; "
                 f"images with the dot: {res['n_with_accessory']}, with an oracle: {res['n_oracle']}, "
                 f"not removable by any start {plan.FULL_STARTS[0]}-{plan.FULL_STARTS[-1]}: {res['n_unreachable']}; "
                 f"with an oracle but left without the negative by auto: {res['n_never']}; mean chosen step − oracle "
                 f"(where applied): {_f(res['mean_diff'], '+.2f')}")
    lines.append(f"- accessory rate: {R.pct(direct['present'])}; pixel distance to the no-negative twin: "
                 f"{R.num(direct['pixel'], 1, 4)}; above the fixed-step curve by {100 * R.frontier_gap(res):+.1f} pp")
    lines.append(f"- cost: {rt['probe_rows']} extra UNet rows for {rt['pipeline_rows']} of the pipeline's own "
                 f"(+{100 * rt['extra']:.1f} %), {rt['seconds']:.0f} s for {rt['n']} images")
    lines.append(f"- fixed starts that beat it on both removal and change: {res['dominated_by'] or 'none'}\n")
    lines.append("| choice | accessory rate | of images with the dot | pixel dist. | 1 − SSIM | object right |")
    lines.append("|---|---|---|---|---|---|")
    rows = [("auto (read off the sweep)", res["auto"]), ("oracle", res["oracle"])] + [
        (f"fixed step {k}", v) for k, v in res["fixed"].items()]
    for name, v in rows:
        lines.append(f"| {name} | {R.pct(v['present'])} | {R.pct(v['present_dotted'])} | {R.num(v['pixel'], 1, 4)} | "
                     f"{R.num(v['ssim'], 1, 4)} | {R.pct(v['correct'])} |")
    lines.append("")
    return "\n".join(lines)
