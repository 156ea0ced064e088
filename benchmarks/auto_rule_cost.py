"""What each rule of negdelay.auto costs: wall clock of DelayedNegative at a fixed step, AutoDelayedNegative with the
signal rule (library defaults), the detector rule and the detector rule with lookahead (the embedded world's
``dot_score`` as detector, their calibrated defaults), interleaved runs on the embedded model (same prompts, seeds,
batch), and the extra UNet rows and VAE decodes each reports.

    OMP_NUM_THREADS=1 python benchmarks/auto_rule_cost.py [--repeats 5] [--batch 8] [--steps 20] [--rules signal,...]

``--rules signal`` times the fixed step against the signal rule alone (what docs/study.md's first cost table used).

Prints the median time of each and its ratio to the fixed step. Timings depend on the machine (and on the load of a
shared one); the row and decode counts do not.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rules", default="signal,detector,lookahead",
                    help="comma-separated subset of signal, detector, lookahead (the fixed step always runs)")
    args = ap.parse_args()
    rules = [r for r in args.rules.split(",") if r]
    unknown = sorted(set(rules) - {"signal", "detector", "lookahead"})
    if unknown or not rules:
        ap.error(f"--rules: unknown {unknown}; choose from signal, detector, lookahead")
    torch.set_num_threads(args.threads)
    from diffusers import DDIMScheduler

    from negdelay import DelayedNegative
    from negdelay.auto import AutoDelayedNegative
    from negdelay.study import plan
    from negdelay.study.signals import dot_score
    from negdelay.toy import load_pipeline

    pipe = load_pipeline()
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config, clip_sample=False)
    prompts = [plan.PLAIN[j % 12] for j in range(args.batch)]

    def run(cb):
        t = time.perf_counter()
        with torch.no_grad():
            pipe(prompts, num_inference_steps=args.steps, guidance_scale=7.5, output_type="np",
                 generator=[torch.Generator().manual_seed(j) for j in range(args.batch)], callback_on_step_end=cb)
        return time.perf_counter() - t

    fixed_step = max(1, args.steps // 4)
    candidates = {
        "signal": ("Auto, signal rule (defaults)", lambda: AutoDelayedNegative(plan.NEG)),
        "detector": ("Auto, detector rule", lambda: AutoDelayedNegative(plan.NEG, detector=dot_score)),
        "lookahead": ("Auto, detector rule + lookahead",
                      lambda: AutoDelayedNegative(plan.NEG, detector=dot_score, lookahead=True)),
    }
    makers = {f"DelayedNegative(start_step={fixed_step})": lambda: DelayedNegative(plan.NEG, start_step=fixed_step)}
    makers.update(candidates[r] for r in rules)
    times = {k: [] for k in makers}
    costs = {k: [] for k in makers}
    for mk in makers.values():  # warm-up
        run(mk())
    for _ in range(args.repeats):
        for name, mk in makers.items():
            cb = mk()
            times[name].append(run(cb))
            c = getattr(cb, "last_cost", None)
            costs[name].append((c["extra"], c.get("decodes", 0)) if c else (0.0, 0))
    base = statistics.median(next(iter(times.values())))
    print(f"batch {args.batch}, {args.steps} steps, DDIM, {args.repeats} interleaved repeats")
    for name in makers:
        m = statistics.median(times[name])
        extra = statistics.mean(c[0] for c in costs[name])
        dec = statistics.mean(c[1] for c in costs[name]) / args.batch
        print(f"  {name:34s} median {m:.3f} s  ratio {m / base:.3f}  extra UNet rows +{100 * extra:.1f} %  "
              f"VAE decodes per image {dec:.1f}")


if __name__ == "__main__":
    main()
