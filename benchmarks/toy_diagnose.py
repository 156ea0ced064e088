"""Why does the toy model miss red? Four candidate causes, each with a number (issue 13).

    python benchmarks/toy_diagnose.py [--model FOLDER] [--seeds 48] [--json out.json]

1. VAE: the world's images round-tripped through the model's VAE (encode -> mean latent -> decode), judged by
   ``detect``; and the mean RGB error of the object's pixels, per colour.
2. Text encoder: how "red" is tokenized in every caption form the grammar makes; the distance between the encoded
   prompts "a <colour> <shape>" (last hidden state, mean over tokens) for every pair of colours, next to the
   distance between the input token embeddings of the colour words.
3. Data: each colour's share of the training captions, after caption dropout; the nominal hue of each colour and
   its nearest neighbour in hue (the judge's decision boundary lies half-way).
4. Sampler/CFG: colour right per colour at CFG scale 1, 3, 5, 7.5, 9 on fixed seeds (25 PNDM steps, plain prompts).
5. VAE under guidance: each scene painted in the four colours and encoded; the latents extrapolated from the mean of
   the four to one colour, ``mean + s * (colour - mean)`` (what CFG does to an x0-prediction), decoded and judged,
   per colour and s. ``--vae-ckpt`` scores a VAE from a training checkpoint (``.toy-train/vae.pt``) instead.
6. VAE and the dot: the scenes that have the dot, painted in each colour, round-tripped (s = 1) and extrapolated as
   in 5; the share in which the judge still finds the dot, per colour.
7. The dot asked for: its rate per colour under "a <colour> <shape> with a dot" at each CFG scale (``--dots-only``
   runs just 6 and 7).
"""

from __future__ import annotations

import argparse
import colorsys
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch

from negdelay.toy import detect, load_pipeline, world


def vae_roundtrip(pipe, n: int = 400, seed: int = 777) -> dict:
    """Per colour: judge's colour on the reconstruction, and the object's mean absolute RGB error (0-255)."""
    data = world.make_dataset(n, seed=seed)
    x = torch.from_numpy(data["images"]).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        rec = pipe.vae.decode(pipe.vae.encode(x).latent_dist.mean).sample
    rec = ((rec.clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).numpy().astype(np.uint8)
    judged = detect.judge_batch(rec)["colour"]
    out = {}
    for ci, c in enumerate(world.COLOURS):
        sel = data["colour"] == ci
        obj = data["object_mask"][sel] & ~data["accessory_mask"][sel]
        err = np.abs(rec[sel].astype(float) - data["images"][sel].astype(float))[obj].mean(axis=0)
        out[c] = {
            "n": int(sel.sum()),
            "colour_right": float(np.mean([judged[i] == c for i in np.flatnonzero(sel)])),
            "object_abs_err_rgb": [round(float(e), 1) for e in err],
        }
    return out


def tokenization(pipe, n: int = 4000) -> dict:
    """Every caption form with "red": is "red" one token, always the same id?"""
    tok = pipe.tokenizer
    red_id = tok.convert_tokens_to_ids("red</w>")
    data = world.make_dataset(n, seed=31)
    forms, bad = set(), 0
    for cap, col in zip(data["captions"], data["colour"]):
        if world.COLOURS[col] != "red":
            continue
        ids = tok(cap).input_ids
        toks = tok.convert_ids_to_tokens(ids)
        forms.add(" ".join(t if t != "red</w>" else "RED" for t in toks[1:-1]))
        bad += int(ids.count(red_id) != 1 or tok.unk_token_id in ids[1:-1])
    words = {w: tok(w).input_ids[1:-1] for w in world.COLOURS}
    return {"red_id": red_id, "colour_word_ids": words, "red_forms": len(forms), "red_captions_without_red_token": bad}


def text_distances(pipe) -> dict:
    """Cosine distance between colours: encoded prompts (per shape, averaged) and input token embeddings."""
    tok, te = pipe.tokenizer, pipe.text_encoder

    def enc(prompts):
        ids = tok(prompts, padding="max_length", max_length=tok.model_max_length, return_tensors="pt").input_ids
        with torch.no_grad():
            return te(ids)[0]

    cos = torch.nn.functional.cosine_similarity
    prompt_d, token_d = {}, {}
    emb = te.get_input_embeddings().weight.detach()
    for a, b in itertools.combinations(world.COLOURS, 2):
        d = []
        for s in world.SHAPES:
            ea, eb = enc([world.plain_prompt(a, s), world.plain_prompt(b, s)])
            d.append(float((1 - cos(ea, eb, dim=-1)).mean()))  # per token position, averaged
        prompt_d[f"{a}-{b}"] = round(float(np.mean(d)), 4)
        ia, ib = tok(a).input_ids[1], tok(b).input_ids[1]
        token_d[f"{a}-{b}"] = round(float(1 - cos(emb[ia], emb[ib], dim=0)), 4)
    return {"prompt_cosine_distance": prompt_d, "token_embedding_cosine_distance": token_d}


def data_shares(n: int = 60_000, seed: int = 0) -> dict:
    data = world.make_dataset(n, seed=seed)
    drop = world.dropout_mask(data["mentions_dot"], np.random.default_rng([seed, 2]))
    kept = data["colour"][~drop]
    hues = {c: colorsys.rgb_to_hsv(*(np.array(rgb) / 255))[0] * 360 for c, rgb in world.COLOUR_RGB.items()}
    nearest = {}
    for c, h in hues.items():
        others = {o: min(abs(h - ho), 360 - abs(h - ho)) for o, ho in hues.items() if o != c}
        o = min(others, key=others.get)
        nearest[c] = (o, round(others[o], 1))
    return {
        "share_after_dropout": {c: round(float(np.mean(kept == i)), 4) for i, c in enumerate(world.COLOURS)},
        "nominal_hue_deg": {c: round(h, 1) for c, h in hues.items()},
        "nearest_hue": nearest,
    }


def _extrapolated(vae, data: dict, idx: np.ndarray, seed: int, scales, score) -> dict:
    """Scenes ``idx`` painted in each colour and encoded; per s and colour, ``score(judged, colour)`` of the decoded
    latents extrapolated from the four colours' mean, ``mean + s * (colour - mean)`` (what CFG does)."""
    from negdelay.toy.train import recoloured

    rng = np.random.default_rng(seed)
    z = []
    for c in range(len(world.COLOURS)):
        x = torch.from_numpy(recoloured(data, idx, np.full(len(idx), c), rng)).permute(0, 3, 1, 2).float() * 2 - 1
        with torch.no_grad():
            z.append(vae.encode(x).latent_dist.mean)
    mean = sum(z) / len(z)
    out = {}
    for s in scales:
        row = {}
        for c, zc in zip(world.COLOURS, z):
            with torch.no_grad():
                rec = vae.decode(mean + s * (zc - mean)).sample
            rec = ((rec.clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).numpy().astype(np.uint8)
            row[c] = round(float(score(detect.judge_batch(rec), c)), 3)
        out[str(s)] = row
    return out


def vae_extrapolation(vae, n: int = 64, seed: int = 4242, scales=(1.0, 2.0, 3.0, 5.0, 7.5)) -> dict:
    """Colour right per colour when latents are extrapolated from the four colours' mean by ``s``."""
    return _extrapolated(vae, world.make_dataset(n, seed=seed), np.arange(n), seed, scales,
                         lambda judged, c: np.mean([j == c for j in judged["colour"]]))


def vae_dots(vae, n: int = 256, seed: int = 4343, scales=(1.0, 2.0, 3.0, 5.0, 7.5)) -> dict:
    """Per s and colour: the share of dotted scenes, painted in that colour, whose decoded latents still show the
    dot (extrapolated as in ``vae_extrapolation``; s = 1 is the plain round trip)."""
    data = world.make_dataset(n, seed=seed)
    idx = np.flatnonzero(data["accessory_mask"].reshape(n, -1).any(axis=1))
    return {"n": int(len(idx)), **_extrapolated(vae, data, idx, seed, scales, lambda judged, c: np.mean(judged["dot"]))}


def _judged(pipe, prompts, cfg: float, steps: int) -> dict:
    """The judge's verdicts on one image per prompt, image ``i`` from seed ``10_000 + i``."""
    gens = [torch.Generator().manual_seed(10_000 + i) for i in range(len(prompts))]
    with torch.no_grad():
        im = pipe(prompts, num_inference_steps=steps, guidance_scale=cfg, generator=gens, output_type="np").images
    return detect.judge_batch((np.clip(im, 0, 1) * 255).round().astype(np.uint8))


def cfg_sweep(pipe, seeds: int, scales=(1.0, 3.0, 5.0, 7.5, 9.0), steps: int = 25) -> dict:
    out = {}
    for cfg in scales:
        row = {}
        for c in world.COLOURS:
            judged = _judged(pipe, [world.plain_prompt(c, world.SHAPES[i % 3]) for i in range(seeds)], cfg, steps)
            judged = judged["colour"]
            row[c] = {"right": float(np.mean([j == c for j in judged])),
                      "judged": {k: int(sum(j == k for j in judged)) for k in set(map(str, judged))}}
        out[str(cfg)] = row
    return out


def prompted_dot_cfg(pipe, seeds: int, scales=(1.0, 3.0, 5.0, 7.5, 9.0), steps: int = 25) -> dict:
    """Per CFG scale and colour: the dot rate under prompts that ask for it ("a <colour> <shape> with a dot")."""
    out = {}
    for cfg in scales:
        out[str(cfg)] = {c: round(float(np.mean(_judged(
            pipe, [world.accessory_prompt(c, world.SHAPES[i % 3]) for i in range(seeds)], cfg, steps)["dot"])), 3)
            for c in world.COLOURS}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--seeds", type=int, default=48, help="seeds per colour per CFG scale")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-cfg", action="store_true")
    ap.add_argument("--vae-ckpt", type=Path, default=None, help="only part 5, on this training checkpoint's VAE")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--dots-only", action="store_true", help="only part 6 (the VAE and the dot)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.dots_only:
        pipe = load_pipeline(path=args.model)
        res = {"vae_dots": vae_dots(pipe.vae), "prompted_dot_cfg": prompted_dot_cfg(pipe, args.seeds)}
        print(json.dumps(res, indent=1))
        if args.json:
            args.json.write_text(json.dumps(res, indent=1))
        return
    if args.vae_ckpt:
        from negdelay.toy.train import make_vae

        vae = make_vae()
        vae.load_state_dict(torch.load(args.vae_ckpt, weights_only=False)["vae"])
        print(json.dumps({"vae_extrapolation": vae_extrapolation(vae.eval())}, indent=1))
        return
    pipe = load_pipeline(path=args.model)
    t0 = time.time()
    res = {"vae": vae_roundtrip(pipe), "tokens": tokenization(pipe), "text": text_distances(pipe),
           "data": data_shares(), "vae_extrapolation": vae_extrapolation(pipe.vae), "vae_dots": vae_dots(pipe.vae)}
    if not args.skip_cfg:
        res["cfg"] = cfg_sweep(pipe, args.seeds)
    res["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(res, indent=1))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
