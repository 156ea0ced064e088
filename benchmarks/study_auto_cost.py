"""What negdelay.auto costs: wall clock of AutoDelayedNegative vs DelayedNegative at a fixed start step, interleaved
runs on the embedded model (same prompts, seeds, batch), and the extra UNet rows it reports.

    OMP_NUM_THREADS=1 python benchmarks/study_auto_cost.py [--repeats 5] [--batch 8] [--steps 20]

Prints the median time of each and their ratio. Timings depend on the machine; the UNet-row count does not.
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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from diffusers import DDIMScheduler

    from negdelay import DelayedNegative
    from negdelay.auto import AutoDelayedNegative
    from negdelay.study import plan
    from negdelay.toy import load_pipeline

    pipe = load_pipeline()
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    prompts = [plan.PLAIN[j % 12] for j in range(args.batch)]

    def run(cb):
        t = time.perf_counter()
        with torch.no_grad():
            pipe(prompts, num_inference_steps=args.steps, guidance_scale=7.5, output_type="np",
                 generator=[torch.Generator().manual_seed(j) for j in range(args.batch)], callback_on_step_end=cb)
        return time.perf_counter() - t

    fixed_step = max(1, args.steps // 4)
    times = {"fixed": [], "auto": []}
    costs = []
    run(DelayedNegative(plan.NEG, start_step=fixed_step))  # warm-up
    for _ in range(args.repeats):
        times["fixed"].append(run(DelayedNegative(plan.NEG, start_step=fixed_step)))
        cb = AutoDelayedNegative(plan.NEG)
        times["auto"].append(run(cb))
        costs.append(cb.last_cost["extra"])
    f, a = statistics.median(times["fixed"]), statistics.median(times["auto"])
    print(f"batch {args.batch}, {args.steps} steps, DDIM, {args.repeats} interleaved repeats")
    print(f"  DelayedNegative(start_step={fixed_step}): median {f:.3f} s")
    print(f"  AutoDelayedNegative:                median {a:.3f} s")
    print(f"  time ratio auto / fixed: {a / f:.3f}; extra UNet rows reported: +{100 * statistics.mean(costs):.1f} %")


if __name__ == "__main__":
    main()
