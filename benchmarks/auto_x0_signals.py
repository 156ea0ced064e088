"""Record, on the no-negative DDIM trajectory of the study's seeds, the pipeline's own x0-prediction at every loop
iteration, decoded by the VAE and judged by the world's detector: "has the prompt rendered the dot yet?" per step.

    OMP_NUM_THREADS=1 python benchmarks/auto_x0_signals.py --out runs/study --seeds 200

Writes ``<out>/x0-ddim-20/chunk-*.npz``: seeds; per iteration the UNet input ``x`` and ``u``/``c``/``n`` (eps of the
empty text, the prompt, the negative; float16), the decoded x0-predictions ``img_u`` (the run's own guidance) and
``img_n`` (the negative in the unconditional's place), and the world detector's verdict and dark-pixel count on
each (``img_u_dot``, ``img_u_dark``, ``img_n_dot``, ``img_n_dark``); the final images.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch


def record(pipe, prompts, seeds, steps, negative, guidance=7.5):
    """Per loop iteration of the no-negative run: the UNet input, the pipeline's eps_u / eps_c, the negative's eps_n
    on the same input (one extra row, muted hook), and the decoded x0-predictions of the guided prediction with the
    empty unconditional (what the run does) and with the negative in its place (what a switch now would aim at)."""
    from negdelay.auto import x0_prediction
    from negdelay.study.protocol import to_uint8
    from negdelay.study.signals import negative_probe

    n = len(prompts)
    store = {k: [] for k in ("x", "u", "c", "n", "img_u", "img_n", "t")}

    def decode(x0):
        img = pipe.vae.decode(x0 / pipe.vae.config.scaling_factor, return_dict=False)[0]
        return to_uint8((img / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy())

    def sink(sample, t, eu, ec, eps_n):
        store["x"].append(sample.float().numpy())
        store["u"].append(eu.float().numpy())
        store["c"].append(ec.float().numpy())
        store["n"].append(eps_n.float().numpy())
        store["t"].append(float(t))
        store["img_u"].append(decode(x0_prediction(pipe.scheduler, sample, t, eu + guidance * (ec - eu))))
        store["img_n"].append(decode(x0_prediction(pipe.scheduler, sample, t, eps_n + guidance * (ec - eps_n))))

    with negative_probe(pipe, negative, n, sink), torch.no_grad():
        out = pipe(list(prompts), negative_prompt=[""] * n, num_inference_steps=steps, guidance_scale=guidance,
                   generator=[torch.Generator("cpu").manual_seed(int(s)) for s in seeds], output_type="np")
    res = {k: np.stack(v, axis=1) for k, v in store.items() if k != "t"}
    res["t"] = np.array(store["t"])
    res["final"] = to_uint8(out.images)
    return res


def main(argv=None):
    from negdelay.study import plan
    from negdelay.study.protocol import set_sampler
    from negdelay.toy import detect as D
    from negdelay.toy import load_pipeline

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/study")
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--sampler", default="ddim")
    ap.add_argument("--batch", type=int, default=25)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    pipe = load_pipeline()
    set_sampler(pipe, a.sampler)
    out = Path(a.out) / f"x0-{a.sampler}-{a.steps}"
    out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(a.seeds))
    for c in range(0, len(seeds), a.batch):
        path = out / f"chunk-{c // a.batch:04d}.npz"
        if path.exists():
            continue
        chunk = seeds[c : c + a.batch]
        prompts = [plan.PLAIN[j % len(plan.PLAIN)] for j in chunk]
        t0 = time.perf_counter()
        r = record(pipe, prompts, chunk, a.steps, plan.NEG)
        judged = {}
        for key in ("img_u", "img_n"):
            js = [[D.judge(r[key][q, i]) for i in range(r[key].shape[1])] for q in range(len(chunk))]
            judged[key + "_dot"] = np.array([[j.dot for j in row] for row in js])
            judged[key + "_dark"] = np.array([[j.n_dark for j in row] for row in js])
        np.savez_compressed(path, seeds=np.array(chunk), images=r.pop("final"), t=r.pop("t"),
                            **{k: (v.astype(np.float16) if v.dtype == np.float32 else v) for k, v in r.items()},
                            **judged)
        print(f"x0 chunk {c // a.batch + 1}: {time.perf_counter() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
