"""``python -m negdelay.study <command>``: the study's runs on the embedded model and its report.

    python -m negdelay.study run --out runs/study                 # every cell of plan.ORDER (resumable)
    python -m negdelay.study run --out runs/study --cells ddim-20-full,euler-20
    python -m negdelay.study signals --out runs/study             # per-step predictions, DDIM 20 steps (q3, auto)
    python -m negdelay.study calibrate --out runs/study          # fit the auto threshold (2-fold CV + all seeds)
    python -m negdelay.study auto --out runs/study                # AutoDelayedNegative run for real (cost, agreement)
    python -m negdelay.study report --out runs/study --img docs/img   # tables (report.md, report.json) and plots

``--seeds N`` uses seeds 0..N-1 (default 200), ``--threads`` torch threads (default 1).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

_MODEL_PATH = None


def _pipe(threads: int):
    import torch

    torch.set_num_threads(threads)
    from ..toy import load_pipeline

    return load_pipeline(path=_MODEL_PATH)


def cmd_run(args) -> None:
    from . import plan
    from .protocol import run_cell, toy_scorer

    cells = plan.cells(range(args.seeds))
    names = args.cells.split(",") if args.cells else list(plan.ORDER)
    unknown = [n for n in names if n not in cells]
    if unknown:
        sys.exit(f"--cells: unknown {unknown}; known: {', '.join(cells)}")
    pipe = _pipe(args.threads)
    for name in names:
        cell = cells[name]
        if args.rows_per_call:
            from dataclasses import replace

            cell = replace(cell, rows_per_call=args.rows_per_call)
        t0 = time.perf_counter()
        print(f"{name}: {len(cell.seeds)} seeds x {len(cell.rows)} rows, {cell.steps} steps, {cell.sampler}", flush=True)
        run_cell(pipe, cell, Path(args.out), toy_scorer, progress=True, log=lambda m: print(m, flush=True),
                 reverse=args.reverse)
        print(f"{name}: done in {time.perf_counter() - t0:.0f}s", flush=True)


def cmd_signals(args) -> None:
    from . import plan
    from .protocol import set_sampler
    from .signals import global_signals, record, region_stats

    out = Path(args.out) / f"signals-{args.sampler}-{args.steps}"
    out.mkdir(parents=True, exist_ok=True)
    pipe = _pipe(args.threads)
    set_sampler(pipe, args.sampler)
    seeds = list(range(args.seeds))
    per = args.batch
    for a in range(0, len(seeds), per):
        path = out / f"chunk-{a // per:04d}.npz"
        if path.exists():
            continue
        chunk = seeds[a : a + per]
        prompts = [plan.PLAIN[j % len(plan.PLAIN)] for j in chunk]
        t0 = time.perf_counter()
        rec = record(pipe, prompts, chunk, plan.NEG, args.steps)
        g = global_signals(rec)
        st = region_stats(rec)
        iters = rec.eps_u.shape[1]
        arrays = {"seeds": np.array(chunk), **g,
                  "has_dot": np.array([bool(s and s["has_dot"]) for s in st]),
                  "found": np.array([s is not None for s in st]),
                  "iter_steps": np.array(rec.iter_steps), "sigmas": np.array(rec.sigmas), "images": rec.images}
        for region in ("dot", "object", "background"):
            for stat in ("cancel", "align", "act"):
                arr = np.full((len(chunk), iters), np.nan, np.float32)
                for r, s in enumerate(st):
                    if s is not None and s.get(region) is not None:
                        arr[r] = s[region][stat]
                arrays[f"{region}_{stat}"] = arr
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
        print(f"signals chunk {a // per + 1}/{-(-len(seeds) // per)}: {time.perf_counter() - t0:.0f}s", flush=True)


def cmd_auto(args) -> None:
    """Run AutoDelayedNegative for real on a cell's seeds; score against the cell's no-negative images."""
    from ..auto import AutoDelayedNegative
    from . import plan
    from .protocol import load_cell, load_images, run_auto_chunks, set_sampler, toy_scorer

    cells = plan.cells(range(args.seeds))
    cell = cells[args.cell]
    threshold = args.threshold
    rise_rule = args.rule in ("rise", "rise-lookahead")
    look = args.rule == "rise-lookahead"
    if rise_rule:  # the detector rule with the embedded world's dot score, calibrated by `calibrate`
        from .analysis import rise_calibration_name
        from .signals import dot_score, dot_score_relative

        rc = json.loads((Path(args.out) / rise_calibration_name(look, args.detector)).read_text())["fit"]
        threshold, signal_kind, max_fraction, mode = None, args.rule, 1.0, {}
        det = {"dot": dot_score, "dot-relative": dot_score_relative}[args.detector]
        extra = dict(detector=det, rise=rc["rise"], min_step=rc["min_step"], lookahead=look)
    elif threshold is None:
        calib = json.loads((Path(args.out) / "auto-calibration.json").read_text())
        threshold = calib["threshold"] if calib["threshold"] is not None else float("inf")
        signal_kind = calib["signal"]
        max_fraction = calib["max_fraction"]
        mode = dict(when=calib["when"], fallback=calib["fallback"])
    else:
        signal_kind = args.signal
        max_fraction = args.max_fraction
        mode = dict(when=args.when, fallback=args.fallback)
    if not rise_rule:
        extra = {}
    recs = load_cell(Path(args.out), cell.name)
    images = load_images(Path(args.out), cell.name)
    none_img = {(r["seed"], r["prompt"]): im for r, im in zip(recs, images) if r["row"] == "none"}
    pipe = _pipe(args.threads)
    set_sampler(pipe, cell.sampler)
    tag = args.rule if args.detector == "dot" else f"{args.rule}-{args.detector}"
    out = Path(args.out) / (f"auto-{tag}-{cell.name}" if rise_rule else f"auto-{cell.name}")

    def make_callback():
        if rise_rule:
            return AutoDelayedNegative(cell.negative, **extra)
        return AutoDelayedNegative(cell.negative, threshold=threshold, signal_kind=signal_kind,
                                   max_fraction=max_fraction, **mode)

    settings = {"threshold": threshold, "signal": signal_kind, "max_fraction": max_fraction, **mode,
                **{k: v for k, v in extra.items() if k != "detector"}}
    run_auto_chunks(pipe, cell, out, args.batch, make_callback, toy_scorer, none_img,
                    log=lambda m: print(m, flush=True), extra=settings)


def cmd_calibrate(args) -> None:
    from .analysis import calibrate

    from .analysis import X0_DIR, calibrate_rise

    c = calibrate(Path(args.out))
    print(f"auto: signal {c['signal']!r}, threshold {c['threshold']}, latest start {c['max_fraction']}, "
          f"{c['when']}/{c['fallback']}, in-sample within one step "
          f"{100 * c['within_one_in_sample']:.1f} %")
    for f in c["cross_validation"]:
        w = f["held_out"]["within_one"]
        held = "-" if w is None else f"{100 * w['rate']:.1f} %"
        print(f"  fit on {f['fit_on']}: {f['signal']} {f['threshold']} {f['max_fraction']} {f['when']}/{f['fallback']}; "
              f"held out within one step {held}; change {f['held_out']['auto']['pixel']['mean']:.4f}; "
              f"frontier gap {100 * f['frontier_gap']:+.1f} pp")
    if not list((Path(args.out) / X0_DIR).glob("chunk-*.npz")):
        print(f"detector rule: no recording in {Path(args.out) / X0_DIR} (benchmarks/auto_x0_signals.py): skipped")
        return
    for look, det in ((False, "dot"), (True, "dot"), (True, "dot-relative")):
        _print_rise(calibrate_rise(Path(args.out), lookahead=look, detector=det), look, det)


def _print_rise(r, look, det) -> None:
    pc = lambda x: "-" if x is None else f"{100 * x['rate']:.1f} % [{100 * x['low']:.1f}, {100 * x['high']:.1f}] ({x['k']}/{x['n']})"  # noqa: E731

    def line(tag, d):
        print(f"    {tag:>14}: within one (images with an oracle) {pc(d['within_one'])}; within one (all images, "
              f"'never' = step 20) {pc(d['within_one_all'])}; accessory {pc(d['present'])}; |dpixel| "
              f"{d['pixel']['mean']:.4f}; above fixed-step curve {100 * d['frontier_gap']:+.1f} pp")

    f = r["fit"]
    print(f"detector rule{' with lookahead' if look else ''} ({det} score of the negative-guided x0-prediction): "
          f"rise {f['rise']}, min_step {f['min_step']} (fitted on all seeds); in sample:")
    line("detector rule", r["in_sample"])
    line("signal rule", r["signal_in_sample"])
    best = max(r["fixed_in_sample"], key=lambda k: (r["fixed_in_sample"][k]["within_one"]["rate"], int(k)))
    line(f"fixed step {best}", r["fixed_in_sample"][best])
    for name, rows in r["folds"].items():
        for row in rows:
            print(f"  {name} folds, fit on {row['fit_on']}, held out {row['judged_on']} (detector rise "
                  f"{row['rise']['rise']}, min_step {row['rise']['min_step']}; fixed step {row['fixed']['step']}):")
            line("detector rule", row["rise"])
            line("signal rule", row["signal"])
            line("fixed step", row["fixed"])


def cmd_report(args) -> None:
    from .analysis import build_report

    build_report(Path(args.out), Path(args.img) if args.img else None)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m negdelay.study", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("run", "signals", "calibrate", "auto", "report"):
        p = sub.add_parser(name)
        p.add_argument("--out", default="runs/study")
        p.add_argument("--seeds", type=int, default=200)
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--model-path", default=None, help="another exported toy model folder (default: the shipped one)")
        if name == "run":
            p.add_argument("--cells", default=None)
            p.add_argument("--rows-per-call", type=int, default=0)
            p.add_argument("--reverse", action="store_true", help="walk the chunks from the end (a second process)")
        if name == "signals":
            p.add_argument("--sampler", default="ddim")
            p.add_argument("--steps", type=int, default=20)
            p.add_argument("--batch", type=int, default=25)
        if name == "auto":
            p.add_argument("--cell", default="ddim-20-full")
            p.add_argument("--threshold", type=float, default=None, help="default: the calibrated one")
            p.add_argument("--signal", default="align")
            p.add_argument("--max-fraction", type=float, default=0.5)
            p.add_argument("--when", default="first")
            p.add_argument("--fallback", default="max")
            p.add_argument("--batch", type=int, default=50)
            p.add_argument("--rule", choices=("signal", "rise", "rise-lookahead"), default="signal",
                           help="rise[-lookahead]: the detector rule with the world's dot score "
                                "(auto-rise[-lookahead][-DETECTOR]-calibration.json)")
            p.add_argument("--detector", choices=("dot", "dot-relative"), default="dot",
                           help="the world's score for the detector rule (signals.dot_score / dot_score_relative)")
        if name == "report":
            p.add_argument("--img", default=None, help="folder for the plots (e.g. docs/img)")
    args = ap.parse_args(argv)
    global _MODEL_PATH
    _MODEL_PATH = args.model_path
    {"run": cmd_run, "signals": cmd_signals, "calibrate": cmd_calibrate, "auto": cmd_auto, "report": cmd_report}[args.command](args)


if __name__ == "__main__":
    main()
