"""Overhead of DelayedNegative against the stock negative prompt, measured in one interleaved run.

    python benchmarks/overhead.py [--model toy|tiny] [--family sd|sdxl|all] [--pairs 15] [--steps 25] [--threads 1]

Each pair runs stock ``pipe(prompt, negative_prompt=neg)`` and
``pipe(prompt, callback_on_step_end=DelayedNegative(neg, start_step=k))`` back to back (the order alternates
between pairs), from the same seed. It prints the median wall-time ratio (delayed / stock), its
interquartile range over the pairs, and the UNet evaluations (calls and rows) of both.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def count_unet(pipe):
    """Wrap the denoiser's ``forward`` (``pipe.unet``, else ``pipe.transformer``) to count calls and rows; returns the
    counter dict. Installed before any negdelay hook, it counts what the model really runs."""
    counter = {"calls": 0, "rows": 0}
    module = pipe.unet if getattr(pipe, "unet", None) is not None else pipe.transformer
    forward = module.forward

    def counted(*args, **kwargs):
        sample = args[0] if args else kwargs.get("sample", kwargs.get("hidden_states"))
        counter["calls"] += 1
        counter["rows"] += sample.shape[0]
        return forward(*args, **kwargs)

    module.forward = counted
    return counter


def interleaved(runs, pairs: int, counter: dict) -> tuple[dict, dict]:
    """Time ``runs`` = ``{label: (prepare, call)}`` (two of them) in ``pairs`` interleaved pairs, the order alternating;
    ``prepare()`` (or None) runs untimed before each ``call()``. A first untimed round warms up and records the
    ``counter`` (``count_unet``) of one call each. Returns ({label: [seconds]}, {label: counts})."""
    labels = list(runs)
    evals = {}
    for label in labels:
        prepare, call = runs[label]
        if prepare:
            prepare()
        counter.update(calls=0, rows=0)
        call()
        evals[label] = dict(counter)
    times = {label: [] for label in labels}
    for p in range(pairs):
        for label in labels[::-1] if p % 2 else labels:
            prepare, call = runs[label]
            if prepare:
                prepare()
            t0 = time.perf_counter()
            call()
            times[label].append(time.perf_counter() - t0)
    return times, evals


def ratio_stats(numerator: list[float], denominator: list[float]) -> tuple[float, float, float]:
    """Median of the per-pair ratios and its interquartile range."""
    ratios = [a / b for a, b in zip(numerator, denominator)]
    q = statistics.quantiles(ratios, n=4)
    return statistics.median(ratios), q[0], q[2]


def measure(pipe, callback_factory, prompt, negative, *, pairs, steps, extra=None, label="", reuse=False):
    """Interleaved pairs of stock vs delayed; returns a dict of medians and counts."""
    import torch

    extra = extra or {}
    counter = count_unet(pipe)

    def stock():
        pipe(prompt, negative_prompt=negative, num_inference_steps=steps, output_type="latent",
             generator=torch.Generator().manual_seed(0), **extra)

    inside = []  # seconds spent inside the callback, per delayed call
    shared = callback_factory() if reuse else None

    def delayed():
        # a fresh instance encodes its negative every call, as stock does; a reused one hits its cache
        cb = shared if reuse else callback_factory()
        fn, spent = cb.callback_fn, [0.0]

        def timed(*args):
            t0 = time.perf_counter()
            out = fn(*args)
            spent[0] += time.perf_counter() - t0
            return out

        cb.callback_fn = timed
        try:
            pipe(prompt, callback_on_step_end=cb, num_inference_steps=steps, output_type="latent",
                 generator=torch.Generator().manual_seed(0), **extra)
        finally:
            del cb.callback_fn  # back to the class's method
        inside.append(spent[0])

    times, evals = interleaved({"stock": (None, stock), "delayed": (None, delayed)}, pairs, counter)
    t_stock, t_delayed = times["stock"], times["delayed"]
    q = ratio_stats(t_delayed, t_stock)
    result = {
        "label": label, "pairs": pairs, "steps": steps,
        "median_stock_s": statistics.median(t_stock), "median_delayed_s": statistics.median(t_delayed),
        "median_ratio": q[0], "ratio_q1": q[1], "ratio_q3": q[2],
        "unet_stock": evals["stock"], "unet_delayed": evals["delayed"],
        "median_inside_callback_s": statistics.median(inside),
    }
    print(
        f"{label}: {pairs} interleaved pairs, {steps} steps | stock {result['median_stock_s'] * 1000:.1f} ms, "
        f"delayed {result['median_delayed_s'] * 1000:.1f} ms | median ratio delayed/stock "
        f"{result['median_ratio']:.4f} (IQR {q[1]:.4f}-{q[2]:.4f}) | UNet calls/rows stock "
        f"{evals['stock']['calls']}/{evals['stock']['rows']}, delayed {evals['delayed']['calls']}/{evals['delayed']['rows']} | "
        f"inside the callback {result['median_inside_callback_s'] * 1000:.2f} ms per call "
        f"({result['median_inside_callback_s'] / result['median_stock_s']:.2%} of a stock call)"
    )
    return result


def sd_pipeline(model):
    if model == "toy":
        from negdelay.toy import load_pipeline

        return load_pipeline(), "a red circle", "dot", {}
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from tiny import tiny_sd

    return tiny_sd(), "a girl eating pizza", "glasses", {"height": 32, "width": 32}


def sdxl_pipeline():
    """The tiny in-code SDXL pipeline of the tests (two text encoders, pooled + time-id conditioning)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from tiny_families import tiny_sdxl

    return tiny_sdxl(), "a girl eating pizza", "glasses", {"height": 32, "width": 32}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["toy", "tiny"], default="toy")
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--start-step", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reuse", action="store_true", help="one callback instance for all calls (its encoding cached)")
    ap.add_argument("--family", choices=["sd", "sdxl", "all"], default="sd",
                    help="sd: the SD 1.x pipeline of --model; sdxl: the tiny in-code SDXL pipeline; all: both")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from negdelay import DelayedNegative

    if args.family in ("sd", "all"):
        pipe, prompt, negative, extra = sd_pipeline(args.model)
        pipe.set_progress_bar_config(disable=True)
        measure(pipe, lambda: DelayedNegative(negative, start_step=args.start_step), prompt, negative,
                pairs=args.pairs, steps=args.steps, extra=extra, label=f"SD 1.x ({args.model}{', reused' if args.reuse else ''})", reuse=args.reuse)
    if args.family in ("sdxl", "all"):
        from negdelay import DelayedNegativeXL

        pipe, prompt, negative, extra = sdxl_pipeline()
        pipe.set_progress_bar_config(disable=True)
        measure(pipe, lambda: DelayedNegativeXL(negative, start_step=args.start_step), prompt, negative,
                pairs=args.pairs, steps=args.steps, extra=extra, label=f"SDXL (tiny, 32x32{', reused' if args.reuse else ''})", reuse=args.reuse)


if __name__ == "__main__":
    main()
