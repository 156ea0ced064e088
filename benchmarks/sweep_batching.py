"""How much faster is a sweep when the start steps of one seed run as rows of one batched call?

    OMP_NUM_THREADS=1 python benchmarks/sweep_batching.py [--starts 1-10] [--seeds 6] [--steps 20] [--model toy]

For each seed, the lab's ``render`` runs the sweep's rows (no negative, stock negative, one row per start step)
both ways, in alternating order (interleaved, so machine load hits both alike):

- batched: one pipeline call with every row (per-row schedules in one ``DelayedNegative``), as ``negdelay sweep`` does;
- separate: one call per row (``batch_size=1``).

Prints the time of each, the ratio separate / batched, and the largest pixel difference between the two ways
(batch size changes float rounding only).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="toy")
    ap.add_argument("--starts", default="step:1-10")
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from negdelay.lab import run as R
    from negdelay.lab.config import build
    from negdelay.lab.models import load

    cfg = build("sweep", model=args.model, starts=args.starts, steps=args.steps, seeds=args.seeds,
                threads=args.threads, device=args.device)
    loaded = load(cfg)
    run = R.run_facts_for(loaded.pipe, cfg.steps, cfg.starts.kind == "sigma")
    cols = R.sweep_columns(cfg, run)
    one = cfg.model_copy(update={"batch_size": 1})
    print(f"model {loaded.model_name} ({loaded.sampler}), {cfg.steps} steps, {len(cols)} rows per seed "
          f"(no negative, stock, {len(cols) - 2} starts), {len(cfg.seeds)} seeds, torch threads "
          f"{torch.get_num_threads()}, device {cfg.device}", flush=True)
    R.render(loaded, cfg, cfg.prompt, cfg.negative, cols, 10_000)  # warm-up, both ways
    R.render(loaded, one, cfg.prompt, cfg.negative, cols, 10_000)
    t_batched, t_separate, diff = [], [], 0
    for j, seed in enumerate(cfg.seeds):
        order = [("batched", cfg), ("separate", one)]
        if j % 2:
            order.reverse()
        got = {}
        for name, c in order:
            t0 = time.perf_counter()
            got[name] = R.render(loaded, c, cfg.prompt, cfg.negative, cols, seed)
            (t_batched if name == "batched" else t_separate).append(time.perf_counter() - t0)
        diff = max(diff, max(int(np.abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(got["batched"], got["separate"])))
        print(f"  seed {seed}: batched {t_batched[-1]:.2f} s, separate {t_separate[-1]:.2f} s", flush=True)
    b, s = sum(t_batched), sum(t_separate)
    print(f"batched:  {b:.2f} s total, {statistics.median(t_batched):.2f} s median per seed")
    print(f"separate: {s:.2f} s total, {statistics.median(t_separate):.2f} s median per seed")
    print(f"speed-up of one batched call per seed over separate calls: {s / b:.2f}x "
          f"(median per seed {statistics.median([x / y for x, y in zip(t_separate, t_batched)]):.2f}x)")
    print(f"largest pixel difference between the two ways: {diff}/255")


if __name__ == "__main__":
    main(sys.argv[1:])
