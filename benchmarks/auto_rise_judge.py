"""Judge the detector rule's real run (``python -m negdelay.study auto --out runs/study --rule rise``) against the
per-image oracle of the DDIM 20-step full sweep, and compare its decisions with the offline read-off of the
recording (``benchmarks/auto_x0_signals.py``; ``calibrate`` fitted rise/min_step on it).

    OMP_NUM_THREADS=1 python benchmarks/auto_rise_judge.py --out runs/study [--rule rise-lookahead] [--detector dot-relative]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv=None):
    from negdelay.study import plan
    from negdelay.study import report as R
    from negdelay.study.analysis import FULL, load_x0_scores, rise_calibration_name, rise_choices, within_one_whole
    from negdelay.study.protocol import load_cell

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/study")
    ap.add_argument("--rule", choices=("rise", "rise-lookahead"), default="rise")
    ap.add_argument("--detector", choices=("dot", "dot-relative"), default="dot")
    a = ap.parse_args(argv)
    look = a.rule == "rise-lookahead"
    out = Path(a.out)
    chunks = [json.loads(p.read_text()) for p in sorted((out / f"auto-{a.rule if a.detector == 'dot' else a.rule + '-' + a.detector}-{FULL}").glob("chunk-*.json"))]
    recs = [r for c in chunks for r in c["records"]]
    chosen = {r["seed"]: r["step"] for r in recs}
    seeds_rows = R.by_seed(load_cell(out, FULL))
    starts = list(plan.FULL_STARTS)
    fit = json.loads((out / rise_calibration_name(look, a.detector)).read_text())["fit"]
    offline = rise_choices(load_x0_scores(out, a.detector), fit["rise"], fit["min_step"], lookahead=look)
    same = sum(offline[s] == k for s, k in chosen.items())
    res = R.judge_auto(seeds_rows, starts, chosen)
    probe = sum(c["cost"]["probe_rows"] for c in chunks)
    own = sum(c["cost"]["pipeline_rows"] for c in chunks)
    dec = sum(c["cost"].get("decodes", 0) for c in chunks)
    print(f"rule: {a.rule}, detector {a.detector}, rise {fit['rise']}, min_step {fit['min_step']}; {len(recs)} images")
    print(f"decisions equal to the offline read-off: {same}/{len(chosen)}")
    print(f"within one step (images with an oracle): {R.pct(res['within_one'])}; exact {R.pct(res['exact'])}; "
          f"never applied though an oracle exists: {res['n_never']}; mean chosen - oracle {res['mean_diff']:+.2f}")
    print(f"within one step (all images, 'never' = step 20): {R.pct(within_one_whole(seeds_rows, starts, chosen))}")
    print(f"scored directly: accessory {R.pct(R.rate([r['present'] for r in recs]))}; "
          f"|dpixel| {R.num(dict(zip(('mean', 'low', 'high'), R.bootstrap_mean([r['pixel'] for r in recs]))), 1, 4)}; "
          f"1 - SSIM {R.num(dict(zip(('mean', 'low', 'high'), R.bootstrap_mean([r['ssim'] for r in recs]))), 1, 4)}; "
          f"object right {R.pct(R.rate([r['correct'] for r in recs]))}")
    print(f"read off the sweep: accessory {R.pct(res['auto']['present'])}, of images with the dot "
          f"{R.pct(res['auto']['present_dotted'])}; |dpixel| {R.num(res['auto']['pixel'], 1, 4)}; above the fixed-step "
          f"curve by {100 * R.frontier_gap(res):+.1f} pp; fixed starts at least as good on both: "
          f"{res['dominated_by'] or 'none'}")
    print(f"cost: {probe} extra UNet rows for {own} of the pipeline's own (+{100 * probe / own:.1f} %), {dec} VAE "
          f"decodes ({dec / len(recs):.1f} per image), {sum(c['seconds'] for c in chunks):.0f} s for {len(recs)} images")


if __name__ == "__main__":
    main()
