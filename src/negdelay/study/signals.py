"""Per-step noise predictions on the no-negative trajectory, and where the negative acts (question 3).

``record(pipe, ...)`` renders rows with no negative and, through a forward hook on ``pipe.unet``, keeps for every loop
iteration the pipeline's own predictions ``eps_u`` (unconditional) and ``eps_c`` (prompt), and evaluates the
negative's ``eps_n`` on the same latents and timestep (one extra UNet row per image; the hook's call is muted so it
is not recorded itself). This is exactly the state a delayed negative starting at step ``k`` meets, and the state
``negdelay.auto`` sees before it switches.

``regions(image)`` gives the accessory's region at latent resolution from the final image (the toy judge's dark
pixels inside the object; for images without the dot, the disc where the world puts it: the object's centre), the
rest of the object, and the background. ``region_stats`` measures per iteration and region:

- ``cancel = 1 - |eps_c - eps_n| / |eps_c - eps_u|``: how much of the prompt's guidance direction the negative's
  prediction cancels there, relative to the empty prompt (0: no more than the empty prompt; 1: all of it);
- ``align = cos(eps_n - eps_u, eps_c - eps_u)`` within the region;
- ``act = rms(eps_n - eps_u)``: how much the negative's text changes the prediction there.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..auto import SIGNALS, signal


@dataclass
class Recording:
    timesteps: list[float]
    iter_steps: list[int]  # progress step of each loop iteration
    eps_u: np.ndarray  # rows, iterations, C, h, w
    eps_c: np.ndarray
    eps_n: np.ndarray
    images: np.ndarray  # rows, H, W, 3 uint8
    prompts: list[str]
    seeds: list[int]
    sigmas: list[float]  # noise level per progress step


@contextmanager
def negative_probe(pipe, negative: str, n: int, sink):
    """Within the block, every UNet call of ``pipe`` (``[unconditional, prompt]`` rows, ``n`` images) also evaluates
    the negative on the unconditional rows' input (one extra call, not seen by the hook itself) and hands
    ``sink(sample, t, eps_u, eps_c, eps_n)`` the ``n`` rows of each. The negative is encoded as the stock pipeline
    encodes a ``negative_prompt`` (the SD family adapter)."""
    from ..families import SD

    state = {"neg": None, "muted": False}

    def hook(module, args, kwargs, output):
        if state["muted"]:
            return None
        sample = args[0] if args else kwargs["sample"]
        t = args[1] if len(args) > 1 else kwargs["timestep"]
        ehs = kwargs["encoder_hidden_states"]
        out = output[0] if isinstance(output, tuple) else output.sample
        if state["neg"] is None:
            state["neg"] = SD().encode(pipe, [negative], {"prompt_embeds": ehs})["prompt_embeds"]
        state["muted"] = True
        try:
            call = {k: v for k, v in kwargs.items() if k in ("timestep_cond", "cross_attention_kwargs", "added_cond_kwargs")}
            eps_n = module(sample[:n], t, encoder_hidden_states=state["neg"].expand(n, -1, -1), return_dict=False, **call)[0]
        finally:
            state["muted"] = False
        sink(sample[:n], t, out[:n], out[n:], eps_n)
        return None

    handle = pipe.unet.register_forward_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def record(pipe, prompts: list[str], seeds: list[int], negative: str, steps: int, guidance: float = 7.5) -> Recording:
    import torch

    from ..families import run_facts
    from .protocol import to_uint8

    n = len(prompts)
    store = {"u": [], "c": [], "n": [], "t": []}
    state = {"facts": None}

    def sink(sample, t, eps_u, eps_c, eps_n):
        store["u"].append(eps_u.float().cpu().numpy())
        store["c"].append(eps_c.float().cpu().numpy())
        store["n"].append(eps_n.float().cpu().numpy())
        store["t"].append(float(t))

    def cb(pipeline, i, t, kw):
        if i == 0:
            state["facts"] = run_facts(pipeline, need_sigmas=True)
        return kw

    with negative_probe(pipe, negative, n, sink), torch.no_grad():
        out = pipe(list(prompts), negative_prompt=[""] * n, num_inference_steps=steps, guidance_scale=guidance,
                   generator=[torch.Generator("cpu").manual_seed(int(s)) for s in seeds], output_type="np",
                   callback_on_step_end=cb)
    facts = state["facts"]
    stack = lambda k: np.stack(store[k], axis=1)  # noqa: E731
    return Recording(store["t"], facts.iteration_steps(), stack("u"), stack("c"), stack("n"), to_uint8(out.images),
                     list(prompts), list(seeds), facts.step_sigmas())


def global_signals(rec: Recording) -> dict[str, np.ndarray]:
    """``{kind: (rows, iterations)}`` for every signal kind of ``negdelay.auto``."""
    import torch

    u, c, n = (torch.from_numpy(x) for x in (rec.eps_u, rec.eps_c, rec.eps_n))
    rows, iters = u.shape[:2]
    out = {}
    for kind in SIGNALS:
        flat = lambda x: x.reshape(rows * iters, *x.shape[2:])  # noqa: E731
        out[kind] = signal(flat(u), flat(c), flat(n), kind).reshape(rows, iters).numpy()
    return out


# ------------------------------------------------------------------------------------------------------- regions
def regions(image: np.ndarray, latent_hw: tuple[int, int]) -> dict[str, np.ndarray] | None:
    """Boolean latent-resolution masks ``dot``, ``object`` (object without the dot region), ``background``; and
    ``has_dot``. None when the judge finds no object."""
    from ..toy import detect as D
    from ..toy import world

    a = D._to_float(image)
    _, s, v = D._hsv(a)
    coloured = (s >= D.SAT_MIN) & (v >= D.VAL_MIN)
    dark = v < D.DARK_MAX
    obj = D._largest_component(coloured | dark)
    if not obj.any():
        return None
    obj = D._fill_holes(obj)
    ys, xs = np.nonzero(obj)
    y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    box = np.zeros_like(obj)
    box[max(y0 - 1, 0) : y1 + 2, max(x0 - 1, 0) : x1 + 2] = True
    dot = dark & box
    has_dot = int(dot.sum()) >= D.DOT_MIN_PIXELS
    if not has_dot:  # where the world puts the dot: a disc at the object's centre
        yy, xx = np.mgrid[0 : a.shape[0], 0 : a.shape[1]] + 0.5
        cy, cx = ys.mean() + 0.5, xs.mean() + 0.5
        dot = ((yy - cy) ** 2 + (xx - cx) ** 2 <= world.DOT_RADIUS**2) & obj
    h, w = latent_hw
    fy, fx = a.shape[0] // h, a.shape[1] // w

    def pool(m, how):
        b = m.reshape(h, fy, w, fx)
        return b.any(axis=(1, 3)) if how == "any" else b.mean(axis=(1, 3)) >= 0.5

    dot_l = pool(dot, "any")
    obj_l = pool(obj, "mean") & ~dot_l
    return {"dot": dot_l, "object": obj_l, "background": ~(dot_l | obj_l), "has_dot": has_dot}


def region_stats(rec: Recording) -> list[dict]:
    """Per row: ``has_dot`` and, per region, arrays over iterations of ``cancel``, ``align``, ``act``."""
    rows = []
    hw = rec.eps_u.shape[-2:]
    for r in range(rec.eps_u.shape[0]):
        m = regions(rec.images[r], hw)
        if m is None:
            rows.append(None)
            continue
        d_c = rec.eps_c[r] - rec.eps_u[r]  # iters, C, h, w
        d_n = rec.eps_n[r] - rec.eps_u[r]
        c_n = rec.eps_c[r] - rec.eps_n[r]
        entry = {"has_dot": bool(m["has_dot"]), "seed": rec.seeds[r], "prompt": rec.prompts[r]}
        for name in ("dot", "object", "background"):
            mask = m[name]
            if not mask.any():
                entry[name] = None
                continue
            sel = lambda x: x[:, :, mask]  # noqa: E731  iters, C, npos
            a, b, cc = sel(d_n), sel(d_c), sel(c_n)
            nb = np.sqrt((b**2).sum(axis=(1, 2)))
            entry[name] = {
                "cancel": 1.0 - np.sqrt((cc**2).sum(axis=(1, 2))) / np.maximum(nb, 1e-12),
                "align": (a * b).sum(axis=(1, 2)) / np.maximum(np.sqrt((a**2).sum(axis=(1, 2))) * nb, 1e-12),
                "act": np.sqrt((a**2).mean(axis=(1, 2))),
            }
        rows.append(entry)
    return rows


# ------------------------------------------------------------------------------------------ auto's detector rule
def dot_score_relative(images) -> np.ndarray:
    """As ``dot_score``, but the third-darkest value is divided by the object's median value first: ``1 - v3 /
    median``. A dim object (dark green decodes dim in early x0-predictions) then does not read as a dot. Chosen
    after looking at the per-colour failures of ``dot_score`` on the study's seeds (docs/study.md says so)."""
    return dot_score(images, relative=True)


def dot_score(images, relative: bool = False) -> np.ndarray:
    """The embedded world's accessory score for ``AutoDelayedNegative(detector=...)``: per image (``N x H x W x 3``,
    uint8 or float in [0, 1]; floats are quantised as the study's images are), ``1 -`` the third-darkest HSV value
    inside the object's 1-px dilated bounding box -- the continuous form of the judge's rule "at least 3 dark pixels
    (value < 0.40) there" (score > 0.60 <=> the judge sees the dot). 0 when the judge finds no object."""
    from ..toy import detect as D
    from .protocol import to_uint8

    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        arr = to_uint8(arr)
    out = np.zeros(len(arr))
    for q, img in enumerate(arr):
        a = D._to_float(img)
        _, s, v = D._hsv(a)
        s_obj = np.percentile(s[v >= D.VAL_MIN], 97) if (v >= D.VAL_MIN).any() else 0.0
        shape_px = ((s >= max(D.SAT_REL_MIN, 0.5 * s_obj)) & (v >= D.VAL_MIN)) | (v < D.DARK_MAX)
        obj = D._largest_component(shape_px)
        if not obj.any():
            continue
        obj = D._fill_holes(obj)
        ys, xs = np.nonzero(obj)
        box = v[max(ys.min() - 1, 0) : ys.max() + 2, max(xs.min() - 1, 0) : xs.max() + 2].ravel()
        if box.size < 3:
            continue
        v3 = np.sort(box)[2]
        out[q] = 1.0 - (v3 / max(float(np.median(v[obj])), 1e-3) if relative else v3)
    return out
