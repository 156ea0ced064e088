"""Save a grid of shapes-world training images with their captions: docs/img/toy-world.png.

    python benchmarks/toy_world_grid.py [--out docs/img/toy-world.png]
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageDraw

from negdelay.toy import world


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/img/toy-world.png")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    d = world.make_dataset(24, seed=args.seed)
    cols, scale = 6, 4
    cw, ch = 200, 32 * scale + 16
    canvas = Image.new("RGB", (cols * cw, 4 * ch), "white")
    draw = ImageDraw.Draw(canvas)
    for k in range(24):
        r, c = divmod(k, cols)
        im = Image.fromarray(d["images"][k]).resize((32 * scale, 32 * scale), Image.NEAREST)
        canvas.paste(im, (c * cw + (cw - 32 * scale) // 2, r * ch))
        draw.text((c * cw + 2, r * ch + 32 * scale + 2), d["captions"][k][:34], fill="black")
    canvas.save(args.out)
    print(args.out, "dot present:", int(np.sum(d["has_dot"])), "of 24")


if __name__ == "__main__":
    main()
