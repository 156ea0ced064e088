"""Overhead of ``negdelay.apply`` (the denoiser hook) against the stock negative prompt, one interleaved run.

    python benchmarks/apply_overhead.py [--pairs 21] [--steps 25] [--threads 1] [--only flux,pixart,...]

For each pipeline (tiny in-code pipelines of the tests: Flux true CFG = context mode, Flux img2img = ordered mode,
QwenImage = context mode with padded rows, PixArt = batched mode reading the pipeline's guidance decision), each
pair runs the stock ``pipe(prompt, negative_prompt=neg)`` and ``pipe(prompt, negative_prompt="")`` with
``negdelay.apply(pipe, neg, start_step=k)`` back to back (order alternating), same seed. Prints the median
wall-time ratio (hooked / stock) with its interquartile range, and the denoiser calls and rows of one call each.
The hook is applied anew before every hooked call (and removed before every stock call); each hooked call encodes
the negative once besides the pipeline's own ``""`` (the hook encodes once per pipeline call in any case).
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


def pipelines():
    import torch
    from diffusers import FluxImg2ImgPipeline
    from tiny_families import tiny_flux, tiny_pixart
    from tiny_qwen import tiny_qwenimage

    image = torch.linspace(0, 1, 3 * 32 * 32).reshape(1, 3, 32, 32)
    flux = dict(height=32, width=32, max_sequence_length=8, true_cfg_scale=3.0)
    return {
        "flux": (tiny_flux, flux),
        "flux-img2img": (lambda: FluxImg2ImgPipeline(**tiny_flux().components), {**flux, "image": image, "strength": 1.0}),
        "qwenimage": (tiny_qwenimage, dict(height=32, width=32, true_cfg_scale=3.0)),
        "pixart": (tiny_pixart, dict(height=32, width=32, max_sequence_length=8, clean_caption=False,
                                     use_resolution_binning=False)),
    }


def measure(name, build, extra, *, pairs, steps, start):
    import torch

    import negdelay

    pipe = build()
    pipe.set_progress_bar_config(disable=True)
    prompt, neg = ["a girl eating pizza"] * 2, ["glasses"] * 2
    options = {"clean_caption": False} if name == "pixart" else {}
    kw = {"num_inference_steps": steps, "output_type": "latent", **extra}
    count = count_unet(pipe)

    def stock():
        pipe(prompt, negative_prompt=neg, generator=torch.Generator().manual_seed(0), **kw)

    def hooked():
        pipe(prompt, negative_prompt=["", ""], generator=torch.Generator().manual_seed(0), **kw)

    runs = {"stock": (lambda: negdelay.remove(pipe), stock),
            "hooked": (lambda: negdelay.apply(pipe, neg, start_step=start, **options), hooked)}
    times, evals = interleaved(runs, pairs, count)
    negdelay.remove(pipe)
    ratio, q1, q3 = ratio_stats(times["hooked"], times["stock"])
    print(
        f"{name}: {pairs} interleaved pairs, {steps} steps, start step {start} | stock "
        f"{statistics.median(times['stock']) * 1000:.1f} ms, hooked {statistics.median(times['hooked']) * 1000:.1f} ms | "
        f"median ratio hooked/stock {ratio:.4f} (IQR {q1:.4f}-{q3:.4f}) | transformer calls/rows stock "
        f"{evals['stock']['calls']}/{evals['stock']['rows']}, hooked {evals['hooked']['calls']}/{evals['hooked']['rows']}",
        flush=True,
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=21)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--start-step", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default="", help="comma-separated subset of: flux, flux-img2img, qwenimage, pixart")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    todo = pipelines()
    names = [n for n in args.only.split(",") if n] or list(todo)
    unknown = sorted(set(names) - set(todo))
    if unknown:
        ap.error(f"--only: unknown {unknown}; choose from {', '.join(todo)}")
    for name in names:
        build, extra = todo[name]
        measure(name, build, extra, pairs=args.pairs, steps=args.steps, start=args.start_step)


if __name__ == "__main__":
    main()
