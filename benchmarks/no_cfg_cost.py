"""What ``before="no_cfg"`` costs: the unconditional pass is computed and its result discarded by the guidance formula.

    python benchmarks/no_cfg_cost.py [--pairs 15] [--steps 20] [--start-fraction 0.3] [--threads 1] [--classes ...]

Per class (tiny components of the real class, tests/builders/), four runs interleaved, order alternating, same seed:
``stock`` (the negative from step 0), ``default`` (``apply(NEGS, start_fraction=f)``), ``no_cfg``
(``apply(NEGS, start_fraction=f, before="no_cfg")``) and ``cfg_off`` (the stock pipeline with guidance off for the
whole run: what skipping the unconditional pass would save at most). Prints the median wall time of each, the
median per-pair ratios against ``stock`` and the denoiser calls/rows of one call each. ``--model toy``: the embedded
SD model (32x32) instead of the builders.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import count_unet, interleaved, ratio_stats  # noqa: E402

DEFAULT = ("StableDiffusionPipeline", "FluxPipeline", "ChromaPipeline")
NEGS = ["blurry hat", "ugly dog"]


def measure(name, pipe, kw, negative_arg, cfg_off, *, pairs, fraction):
    import torch

    import negdelay

    count = count_unet(pipe)
    undo = None
    kw = dict(kw)
    own = kw.pop(negative_arg, None)  # true-CFG pipelines need a negative ("") for their unconditional pass

    def call(**extra):
        extra = {negative_arg: own, **extra} if own is not None else extra
        return lambda: pipe(**{**kw, **extra}, generator=torch.Generator().manual_seed(0))

    def applied(**schedule):
        return lambda: negdelay.apply(pipe, NEGS, start_fraction=fraction, **schedule)

    def off():
        nonlocal undo
        negdelay.remove(pipe)
        if callable(cfg_off):
            undo = cfg_off(pipe)

    def back():
        nonlocal undo
        if undo is not None:
            undo()
            undo = None

    def stock_prepare():
        back()
        negdelay.remove(pipe)

    runs = {
        "stock": (stock_prepare, call(**{negative_arg: NEGS})),
        "default": (lambda: (back(), applied()()), call()),
        "no_cfg": (lambda: (back(), applied(before="no_cfg")()), call()),
        "cfg_off": (off, call(**({} if callable(cfg_off) else cfg_off))),
    }
    times, evals = interleaved(runs, pairs, count)
    back()
    negdelay.remove(pipe)
    ms = {k: statistics.median(v) * 1000 for k, v in times.items()}
    parts = []
    for label in ("default", "no_cfg", "cfg_off"):
        r, q1, q3 = ratio_stats(times[label], times["stock"])
        parts.append(f"{label} {ms[label]:.1f} ms = {r:.3f} x stock (IQR {q1:.3f}-{q3:.3f}), "
                     f"calls/rows {evals[label]['calls']}/{evals[label]['rows']}")
    print(f"{name}: {pairs} pairs, {kw['num_inference_steps']} steps, start_fraction {fraction} | stock {ms['stock']:.1f} "
          f"ms, calls/rows {evals['stock']['calls']}/{evals['stock']['rows']} | " + " | ".join(parts), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--start-fraction", type=float, default=0.3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", choices=("builders", "toy"), default="builders")
    ap.add_argument("--classes", default=",".join(DEFAULT), help="comma-separated served classes with a builder")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.model == "toy":
        from negdelay.toy import load_pipeline

        pipe = load_pipeline()
        pipe.set_progress_bar_config(disable=True)
        kw = {"prompt": ["a red circle", "a blue square"], "num_inference_steps": args.steps, "guidance_scale": 7.5,
              "output_type": "latent"}
        measure("embedded model (StableDiffusionPipeline, PNDM)", pipe, kw, "negative_prompt",
                {"guidance_scale": 1.0}, pairs=args.pairs, fraction=args.start_fraction)
        return
    from contract_cases import all_cases

    cases = all_cases()
    names = [n for n in args.classes.split(",") if n]
    unknown = sorted(set(names) - set(cases))
    if unknown:
        ap.error(f"--classes: no builder for {unknown}")
    for name in names:
        case = cases[name]()
        kw = {"prompt": ["a red cat", "a blue dog"], **case.call, "num_inference_steps": args.steps}
        kw.pop("strength", None)
        if case.images_arg:
            kw[case.images_arg] = 1
        measure(name, case.pipe, kw, case.negative_arg, case.no_cfg, pairs=args.pairs, fraction=args.start_fraction)


if __name__ == "__main__":
    main()
