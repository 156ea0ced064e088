"""Overhead of ``negdelay.apply`` against the stock negative prompt, per hook mode, one interleaved run.

    python benchmarks/apply_overhead.py [--pairs 21] [--steps 25] [--threads 1] [--classes FluxPipeline,...]

Each class is built by its contract builder (tests/builders/: tiny components of the real class). Each pair runs the
stock ``pipe(prompt, negative_prompt=NEGS)`` and, with ``negdelay.apply(pipe, NEGS, start_step=k)`` installed once
and kept (as a user keeps it), ``pipe(prompt)`` with the pipeline's own negative, back to back, order alternating,
same seed. Prints the median wall-time ratio (hooked / stock) with its interquartile range, the difference of the
medians (the fixed cost per pipeline call: the hook's bookkeeping and the second text encoding, of the negative),
and the denoiser calls and rows of one call each.
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

#: one class per hook mode (and a second batched one with an attention mask)
DEFAULT = ("StableDiffusionPipeline", "PixArtAlphaPipeline", "FluxPipeline", "FluxImg2ImgPipeline",
           "QwenImagePipeline", "LTX2Pipeline")
NEGS = ["blurry hat", "ugly dog"]


def measure(name, case, *, pairs, steps, start):
    import torch

    import negdelay
    from negdelay.pipelines import declaration_for

    pipe = case.pipe
    kw = {"prompt": ["a red cat", "a blue dog"], **case.call, "num_inference_steps": steps}
    kw.pop("strength", None)  # every step runs
    if case.images_arg:
        kw[case.images_arg] = 1
    count = count_unet(pipe)

    def stock():
        pipe(**{**kw, case.negative_arg: NEGS}, generator=torch.Generator().manual_seed(0))

    def hooked():
        pipe(**kw, generator=torch.Generator().manual_seed(0))

    applied = negdelay.apply(pipe, NEGS, start_step=start)
    negdelay.remove(pipe)
    runs = {"stock": (lambda: negdelay.remove(pipe), stock),
            "hooked": (lambda: negdelay.is_applied(pipe) or negdelay.apply(pipe, NEGS, start_step=start), hooked)}
    times, evals = interleaved(runs, pairs, count)
    negdelay.remove(pipe)
    ratio, q1, q3 = ratio_stats(times["hooked"], times["stock"])
    ms = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(
        f"{name} ({declaration_for(pipe).mode}): {pairs} pairs, {steps} steps, start {start} | stock {ms['stock']:.1f} ms, "
        f"hooked {ms['hooked']:.1f} ms | ratio {ratio:.4f} (IQR {q1:.4f}-{q3:.4f}) | fixed "
        f"{ms['hooked'] - ms['stock']:+.2f} ms/call | denoiser calls/rows stock {evals['stock']['calls']}/"
        f"{evals['stock']['rows']}, hooked {evals['hooked']['calls']}/{evals['hooked']['rows']}",
        flush=True,
    )
    del applied


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=21)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--start-step", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--classes", default=",".join(DEFAULT), help="comma-separated served classes with a builder")
    args = ap.parse_args(argv)
    import torch

    from contract_cases import all_cases

    torch.set_num_threads(args.threads)
    cases = all_cases()
    names = [n for n in args.classes.split(",") if n]
    unknown = sorted(set(names) - set(cases))
    if unknown:
        ap.error(f"--classes: no builder for {unknown}")
    for name in names:
        measure(name, cases[name](), pairs=args.pairs, steps=args.steps, start=args.start_step)


if __name__ == "__main__":
    main()
