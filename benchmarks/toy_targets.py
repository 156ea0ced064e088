"""Measure the toy model's targets with the ground-truth judge (issue 4).

    python benchmarks/toy_targets.py --n 240            # the table in docs/toy-model.md

For seed i the object is (COLOURS[i % 4], SHAPES[(i // 4) % 3]); every image gets its own torch.Generator seeded
with i, so the three conditions are paired (same initial noise):

- plain:    prompt "a <colour> <shape>", no negative prompt (CFG against "");
- negative: same prompt, negative_prompt=world.NEGATIVE_PROMPT ("with a dot") from step 0;
- prompted: "a <colour> <shape> with a dot".
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from negdelay.toy import MODEL_DIR, detect, load_pipeline, world


def generate(pipe, prompts, seeds, negative=None, steps=25, cfg=7.5, batch=16):
    out = []
    for i in range(0, len(prompts), batch):
        p = prompts[i:i + batch]
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds[i:i + batch]]
        kw = {} if negative is None else {"negative_prompt": [negative] * len(p)}
        with torch.no_grad():
            im = pipe(p, num_inference_steps=steps, guidance_scale=cfg, generator=gens, output_type="np", **kw).images
        out.append((np.clip(im, 0, 1) * 255).round().astype(np.uint8))
    return np.concatenate(out)


def target_lines(res: dict) -> list[str]:
    """Issue 13's targets, each with PASS or MISS, as they came out."""
    plain = res["plain"]
    worst = min(plain["cells"].items(), key=lambda kv: min(kv[1]["colour"], kv[1]["shape"]))
    worst_v = min(worst[1]["colour"], worst[1]["shape"])
    p, ng, pr = plain["dot"], res["negative"]["dot"], res["prompted"]["dot"]
    by = plain["dot_by_shape"]
    ok = lambda b: "PASS" if b else "MISS"  # noqa: E731
    return [
        f"every colour x shape cell >= 85 % colour and shape right: worst {worst[0]} {100 * worst_v:.1f} % "
        f"{ok(worst_v >= 0.85)}",
        f"colour and shape both right overall >= 92 %: {100 * plain['both']:.1f} % {ok(plain['both'] >= 0.92)}",
        "unprompted dot in 20-60 % on each shape: " + " / ".join(f"{100 * by[s]:.1f} %" for s in world.SHAPES)
        + f" {ok(all(0.2 <= by[s] <= 0.6 for s in world.SHAPES))}",
        f"stock negative at most half of it: {100 * ng:.1f} % vs {100 * p:.1f} % {ok(ng <= p / 2)}",
        f"prompted dot >= 85 %: {100 * pr:.1f} % {ok(pr >= 0.85)}",
    ]


def grid_png(images, labels, path, cols=12, scale=4):
    from PIL import Image, ImageDraw

    n = len(images)
    rows = (n + cols - 1) // cols
    cw, ch = 32 * scale, 32 * scale + 14
    canvas = Image.new("RGB", (cols * cw, rows * ch), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (im, lab) in enumerate(zip(images, labels)):
        r, c = divmod(k, cols)
        canvas.paste(Image.fromarray(im).resize((32 * scale, 32 * scale), Image.NEAREST), (c * cw, r * ch))
        draw.text((c * cw + 2, r * ch + 32 * scale + 1), lab, fill="black")
    canvas.save(path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=240, help="seeds per condition")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--cfg", type=float, default=7.5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--model", default=None, help="exported model folder (default: the shipped one)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="write the numbers here")
    ap.add_argument("--grid", type=Path, default=None, help="PNG of the first 48 images per condition, judged")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(path=args.model)
    seeds = np.arange(args.n)
    colours = [world.COLOURS[i % 4] for i in seeds]
    shapes = [world.SHAPES[(i // 4) % 3] for i in seeds]
    plain = [world.plain_prompt(c, s) for c, s in zip(colours, shapes)]
    prompted = [world.accessory_prompt(c, s) for c, s in zip(colours, shapes)]
    conds = {
        "plain": (plain, None),
        "negative": (plain, world.NEGATIVE_PROMPT),
        "prompted": (prompted, None),
    }
    res, imgs = {}, {}
    t0 = time.time()
    for name, (prompts, neg) in conds.items():
        im = generate(pipe, prompts, seeds, neg, args.steps, args.cfg, args.batch)
        j = detect.judge_batch(im)
        col = np.array([a == b for a, b in zip(j["colour"], colours)])
        shp = np.array([a == b for a, b in zip(j["shape"], shapes)])
        res[name] = {
            "colour": float(col.mean()),
            "shape": float(shp.mean()),
            "both": float((col & shp).mean()),
            "dot": float(j["dot"].mean()),
            "dot_by_shape": {s: float(j["dot"][np.array(shapes) == s].mean()) for s in world.SHAPES},
            "dot_by_colour": {c: float(j["dot"][np.array(colours) == c].mean()) for c in world.COLOURS},
            "cells": {f"{c} {s}": {"colour": float(col[sel].mean()), "shape": float(shp[sel].mean()),
                                    "both": float((col & shp)[sel].mean()), "n": int(sel.sum())}
                      for c in world.COLOURS for s in world.SHAPES
                      for sel in [(np.array(colours) == c) & (np.array(shapes) == s)]},
        }
        imgs[name] = (im, j)
        print(f"{name}: done ({time.time() - t0:.0f} s)", flush=True)
    info = {}
    info_path = Path(args.model or MODEL_DIR) / "training_info.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text())
    print()
    print(f"model: {args.model or 'shipped'} {info}; {args.n} seeds, {args.steps} steps, CFG {args.cfg}")
    print("| condition | colour right | shape right | both right | dot present | dot: circle / square / triangle |")
    print("|---|---|---|---|---|---|")
    for name, r in res.items():
        by = " / ".join(f"{100 * r['dot_by_shape'][s]:.0f} %" for s in world.SHAPES)
        print(f"| {name} | {100 * r['colour']:.1f} % | {100 * r['shape']:.1f} % | {100 * r['both']:.1f} % "
              f"| {100 * r['dot']:.1f} % | {by} |")
    print()
    print("plain, colour x shape cells (both right):")
    cells = res["plain"]["cells"]
    for c in world.COLOURS:
        print(f"  {c:<7s}" + "  ".join(f"{s} {100 * cells[f'{c} {s}']['both']:5.1f} %" for s in world.SHAPES))
    print()
    print("dot present by colour (all shapes):")
    for name, r in res.items():
        print(f"  {name:<9s}" + "  ".join(f"{c} {100 * r['dot_by_colour'][c]:5.1f} %" for c in world.COLOURS))
    print()
    print("targets (issue 13):")
    for line in target_lines(res):
        print("  " + line)
    print("  (design: dot under plain captions 25 / 40 / 55 % for circle / square / triangle)")
    if args.json:
        args.json.write_text(json.dumps(dict(args={k: str(v) for k, v in vars(args).items()}, results=res), indent=1))
    if args.grid:
        ims, labs = [], []
        for name in conds:
            im, j = imgs[name]
            for k in range(min(48, len(im))):
                ims.append(im[k])
                labs.append(f"{(j['colour'][k] or '-')[:3]} {(j['shape'][k] or '-')[:3]}{' DOT' if j['dot'][k] else ''}")
        grid_png(ims, labs, args.grid)
        print(f"grid: {args.grid}")


if __name__ == "__main__":
    main()
