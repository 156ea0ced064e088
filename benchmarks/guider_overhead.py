"""Overhead of ``negdelay.guider.apply`` on modular pipelines against the stock negative prompt, one interleaved run.

    python benchmarks/guider_overhead.py [--pairs 15] [--steps 25] [--start-step 5] [--threads 1] [--classes A,B]

Each class is built by its guider-contract builder (tests/builders_modular.py: tiny components of the real class).
Each pair runs the stock ``pipe(prompt, negative_prompt=NEGS)`` and, with ``negdelay.guider.apply(pipe, NEGS,
start_step=k)`` installed once and kept (as a user keeps it), ``pipe(prompt)`` with the pipeline's own negative,
back to back, order alternating, same seed. Prints the median wall-time ratio (delayed / stock) with its
interquartile range, the difference of the medians (the fixed cost per call: the side run of the text blocks on
the negative, and the guider's bookkeeping), and the denoiser calls and rows of one call each (equal: the guider
adds no denoiser pass).
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
from overhead import interleaved, ratio_stats  # noqa: E402

DEFAULT = ("WanModularPipeline", "StableDiffusionXLModularPipeline", "QwenImageModularPipeline",
           "HeliosModularPipeline", "Krea2ModularPipeline")


def count_denoiser(pipe):
    """Count the calls and rows of ``pipe.transformer`` (or ``pipe.unet``). The wrapper keeps the signature: modular
    loops pick the keyword arguments they pass from it."""
    import functools

    counter = {"calls": 0, "rows": 0}
    module = pipe.unet if getattr(pipe, "unet", None) is not None else pipe.transformer
    forward = module.forward

    @functools.wraps(forward)
    def counted(*args, **kwargs):
        sample = args[0] if args else kwargs.get("hidden_states", kwargs.get("sample", kwargs.get("x")))
        counter["calls"] += 1
        counter["rows"] += len(sample)
        return forward(*args, **kwargs)

    module.forward = counted
    return counter


def measure(name, case, *, pairs, steps, start):
    import torch

    from negdelay import guider

    pipe, negs = case.pipe, case.negative
    prompts = list(case.prompts) if isinstance(case.prompts, list) else case.prompts
    kw = {**case.call, "num_inference_steps": steps, "output": case.output}
    kw.pop("negative_prompt", None)
    own = case.call.get("negative_prompt")  # the pipeline's own negative where the stock step needs one
    if case.images_arg:
        kw[case.images_arg] = 1
    count = count_denoiser(pipe)

    def stock():
        pipe(prompt=prompts, negative_prompt=negs, **kw, generator=torch.Generator().manual_seed(0))

    def delayed():
        pipe(prompt=prompts, negative_prompt=own, **kw, generator=torch.Generator().manual_seed(0))

    runs = {"stock": (lambda: guider.is_applied(pipe) and guider.remove(pipe), stock),
            "delayed": (lambda: guider.is_applied(pipe) or guider.apply(pipe, negs, start_step=start), delayed)}
    times, evals = interleaved(runs, pairs, count)
    if guider.is_applied(pipe):
        guider.remove(pipe)
    ratio, q1, q3 = ratio_stats(times["delayed"], times["stock"])
    ms = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(
        f"{name}: {pairs} pairs, {steps} steps, start {start} | stock {ms['stock']:.1f} ms, delayed "
        f"{ms['delayed']:.1f} ms | ratio {ratio:.4f} (IQR {q1:.4f}-{q3:.4f}) | fixed {ms['delayed'] - ms['stock']:+.2f} "
        f"ms/call | denoiser calls/rows stock {evals['stock']['calls']}/{evals['stock']['rows']}, delayed "
        f"{evals['delayed']['calls']}/{evals['delayed']['rows']}",
        flush=True,
    )
    return ratio


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--start-step", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--classes", default=",".join(DEFAULT), help="comma-separated served classes (tests/builders_modular.py)")
    args = ap.parse_args(argv)
    import torch

    from builders_modular import CASES

    torch.set_num_threads(args.threads)
    names = [n for n in args.classes.split(",") if n]
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        ap.error(f"--classes: no builder for {unknown}")
    ratios = [measure(n, CASES[n](), pairs=args.pairs, steps=args.steps, start=args.start_step) for n in names]
    print(f"median of the classes' median ratios: {statistics.median(ratios):.4f}")


if __name__ == "__main__":
    main()
