"""Does the sampler's guided prediction zigzag from step to step? (docs/lab.md, the even/odd sweep under PNDM)

    OMP_NUM_THREADS=1 python benchmarks/pndm_parity.py --seeds 16

Runs the embedded model with no negative (CFG against the empty prompt, 7.5) and records the guided noise
prediction each step hands to ``scheduler.step``. For each step k the zigzag ratio is
``|e[k+1] - 2 e[k] + e[k-1]| / |e[k+1] - e[k-1]|``: about 0 when the predictions change smoothly, large when every
other step swings back (an even/odd pattern). Printed per step and sampler (median over images), and the run's
median: a delayed negative that starts at step k meets the state of that step, so a zigzag in the state is a
reason for start steps of one parity to act differently from the other.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from negdelay.study.protocol import set_sampler  # noqa: E402
from negdelay.toy import load_pipeline, world  # noqa: E402


def guided_predictions(pipe, prompts, seeds, steps):
    """The scheduler's inputs of one no-negative call: (steps that ran, images, latent numbers)."""
    seen = []
    step = pipe.scheduler.step

    def recording(model_output, *a, **kw):
        seen.append(model_output.detach().flatten(1).clone())
        return step(model_output, *a, **kw)

    pipe.scheduler.step = recording
    try:
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        with torch.no_grad():
            pipe(list(prompts), num_inference_steps=steps, guidance_scale=7.5, generator=gens, output_type="np")
    finally:
        del pipe.scheduler.step
    return torch.stack(seen).numpy()


def zigzag(e):
    """Per step k (1 .. K-2) and image: |e[k+1] - 2 e[k] + e[k-1]| / |e[k+1] - e[k-1]|."""
    second = np.linalg.norm(e[2:] - 2 * e[1:-1] + e[:-2], axis=-1)
    span = np.linalg.norm(e[2:] - e[:-2], axis=-1)
    return second / np.maximum(span, 1e-12)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--samplers", default="pndm,ddim,euler,dpm++2m")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    pipe = load_pipeline()
    seeds = list(range(args.seeds))
    prompts = [world.plain_prompt(world.COLOURS[i % 4], world.SHAPES[(i // 4) % 3]) for i in seeds]
    print(f"{args.seeds} images, {args.steps} steps, no negative, CFG 7.5; zigzag ratio per step (median over images)")
    for name in args.samplers.split(","):
        set_sampler(pipe, name)
        z = zigzag(guided_predictions(pipe, prompts, seeds, args.steps))
        per_step = np.median(z, axis=1)
        print(f"{name:>8s}: run median {np.median(z):.3f}; steps 1..{len(per_step)}: "
              + " ".join(f"{v:.2f}" for v in per_step))


if __name__ == "__main__":
    main()
