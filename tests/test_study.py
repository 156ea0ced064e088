"""The study's protocol on tiny settings: rows are the paired renders they claim to be, resume recomputes only what is
missing, the report's statistics on records with known answers, and the offline auto emulation agrees with the
callback run for real."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tiny import tiny_sd

from negdelay import DelayedNegative
from negdelay.auto import AutoDelayedNegative, decide
from negdelay.study import protocol as P
from negdelay.study import report as R
from negdelay.study.signals import global_signals, record, regions
from negdelay.toy import world

NEG = "glasses"
PROMPTS = ("a red cat", "a blue dog")


def fake_scorer(images, prompts):
    # deterministic, image-dependent: "present" when the mean red channel is above a fixed level
    return [{"present": bool(im[..., 0].mean() > 120), "correct": bool(im[..., 2].mean() > 100)} for im in images]


def render_one(pipe, prompt, seed, steps, **kw):
    out = pipe(prompt, num_inference_steps=steps, guidance_scale=7.5, output_type="np",
               generator=torch.Generator().manual_seed(seed), **kw)
    return P.to_uint8(out.images)[0]


def test_cell_rows_are_the_paired_renders(tmp_path):
    pipe = tiny_sd()
    cell = P.Cell("c", 6, (2, 4), (11, 12, 13), PROMPTS, NEG, rows_per_call=8)  # 4 rows/seed -> 2 seeds per call
    assert cell.chunks() == [[0, 1], [2]]
    recs = P.run_cell(pipe, cell, tmp_path, fake_scorer)
    ims = P.load_images(tmp_path, "c")
    assert len(recs) == len(ims) == 12
    assert [r["row"] for r in recs[:4]] == ["none", "stock", 2, 4]
    assert [r["prompt"] for r in recs[::4]] == ["a red cat", "a blue dog", "a red cat"]
    for r, im in zip(recs, ims):
        if r["row"] == "none":
            ref = render_one(pipe, r["prompt"], r["seed"], 6)
            assert r["pixel"] == 0.0 and r["ssim"] == pytest.approx(0.0, abs=1e-9)
        elif r["row"] == "stock":
            ref = render_one(pipe, r["prompt"], r["seed"], 6, negative_prompt=NEG)
        else:
            ref = render_one(pipe, r["prompt"], r["seed"], 6,
                             callback_on_step_end=DelayedNegative(NEG, start_step=r["row"]))
        # a row of a batched call equals the separate call up to float noise (one uint8 level)
        assert np.abs(im.astype(int) - ref.astype(int)).max() <= 1, r
    # the rows really differ from each other (the schedule reached the pipeline)
    assert not np.array_equal(ims[0], ims[1]) and not np.array_equal(ims[2], ims[3])
    d = [r["pixel"] for r in recs if r["row"] == 2]
    assert all(x > 0 for x in d)


def test_resume_recomputes_only_missing_chunks(tmp_path):
    pipe = tiny_sd()
    cell = P.Cell("c", 4, (2,), (1, 2, 3, 4), PROMPTS, NEG, rows_per_call=6)  # 3 rows/seed -> 2 seeds per call
    first = P.run_cell(pipe, cell, tmp_path, fake_scorer)
    calls = {"n": 0}
    orig = pipe.__class__.__call__

    def counting(self, *a, **k):
        calls["n"] += 1
        return orig(self, *a, **k)

    (tmp_path / "c" / "chunk-0001.json").unlink()
    pipe.__class__.__call__ = counting
    try:
        again = P.run_cell(pipe, cell, tmp_path, fake_scorer)
    finally:
        pipe.__class__.__call__ = orig
    assert calls["n"] == 1
    assert [(r["seed"], r["row"], r["present"]) for r in again] == [(r["seed"], r["row"], r["present"]) for r in first]
    with pytest.raises(ValueError, match="different cell"):
        P.run_cell(pipe, P.Cell("c", 4, (3,), (1, 2, 3, 4), PROMPTS, NEG), tmp_path, fake_scorer)


@pytest.mark.parametrize(
    "kw, match",
    [(dict(starts=(0,)), "start step 0"), (dict(starts=(6,)), "start step 6"), (dict(starts=(2, 2)), "duplicates"),
     (dict(sampler="fast"), "sampler 'fast'"), (dict(seeds=()), "seeds")],
)
def test_cell_validation(kw, match):
    base = dict(name="c", steps=6, starts=(2,), seeds=(1,), prompts=PROMPTS, negative=NEG)
    with pytest.raises(ValueError, match=match):
        P.Cell(**{**base, **kw})


# ------------------------------------------------------------------------------------------------ statistics
def _recs(rows_by_seed):
    out = []
    for seed, rows in rows_by_seed.items():
        for row, (present, pixel) in rows.items():
            out.append({"seed": seed, "prompt": "a red circle", "row": row, "present": present, "correct": True,
                        "pixel": pixel, "ssim": pixel})
    return out


def test_summary_transitions_and_oracle():
    # 4 seeds. none: dot in seeds 0,1. stock: creates a dot in seed 2, removes seed 0's.
    data = {
        0: {"none": (True, 0.0), "stock": (False, 0.5), 1: (False, 0.3), 2: (False, 0.1), 3: (True, 0.05)},
        1: {"none": (True, 0.0), "stock": (True, 0.5), 1: (False, 0.3), 2: (True, 0.1), 3: (True, 0.05)},
        2: {"none": (False, 0.0), "stock": (True, 0.5), 1: (False, 0.2), 2: (False, 0.1), 3: (False, 0.05)},
        3: {"none": (False, 0.0), "stock": (False, 0.5), 1: (False, 0.2), 2: (False, 0.1), 3: (False, 0.05)},
    }
    s = R.summarize_cell(_recs(data))
    st = s["rows"]["stock"]
    assert (st["present"]["k"], st["present"]["n"]) == (2, 4)
    assert (st["created"]["k"], st["created"]["n"]) == (1, 2)
    assert (st["removed"]["k"], st["removed"]["n"]) == (1, 2)
    assert st["diff_vs_none"]["mean"] == pytest.approx(0.0)
    assert s["rows"][1]["present"]["rate"] == 0.0 and s["rows"][1]["removed"]["rate"] == 1.0
    assert s["rows"][2]["pixel"]["mean"] == pytest.approx(0.1)
    seeds = R.by_seed(_recs(data))
    assert R.oracle(seeds[0], [1, 2, 3]) == 2  # 1 and 2 remove; 2 changes less
    assert R.oracle(seeds[1], [1, 2, 3]) == 1
    assert R.oracle(seeds[2], [1, 2, 3]) is None  # nothing to remove
    res = R.judge_auto(seeds, [1, 2, 3], {0: 3, 1: 2, 2: 2, 3: None})
    assert res["n_oracle"] == 2 and res["within_one"]["k"] == 2 and res["exact"]["k"] == 0
    assert res["mean_diff"] == pytest.approx(1.0)
    assert res["auto"]["present"]["k"] == 2  # seeds 0 (step 3) and 1 (step 2) keep the dot
    assert res["oracle"]["present"]["k"] == 0
    assert R.dominated_by(res) == [3]  # fixed step 3: as many dots (2/4), less change (0.05 < 0.0625); step 2 changes more


def test_critical_point_and_schedule_kind():
    def summary(p_by_k, n=20):
        rows = {"none": {"present": {"rate": 0.4}}, "stock": {"present": {"rate": 0.0}}}
        rows.update({k: {"present": {"rate": p}} for k, p in p_by_k.items()})
        return {"rows": rows}

    # relative removal 1 - k / (0.5 n): linear, crossing 0.5 at k = n / 4 (a fixed fraction, 0.25)
    def lin(n):
        return summary({k: 0.4 * min(1.0, k / (0.5 * n)) for k in range(1, n)}, n)

    assert R.crossing([1, 2, 3], [1.0, 0.6, 0.2]) == pytest.approx(2.25)
    assert math.isnan(R.crossing([1, 2], [0.4, 0.2]))
    settings = {f"s{n}": {"summary": lin(n), "n_steps": n, "sigmas": list(np.geomspace(10, 0.1, n))} for n in (20, 50)}
    cp = R.critical_points(settings["s20"]["summary"], 20, settings["s20"]["sigmas"])
    assert cp["step"] == pytest.approx(5.0) and cp["fraction"] == pytest.approx(0.25)
    kt = R.schedule_kind_test(settings)
    assert kt["kinds"]["fraction"]["mean_abs_error"] == pytest.approx(0.0, abs=1e-9)
    assert kt["kinds"]["step"]["mean_abs_error"] > 0.1


# ------------------------------------------------------------------------------------------------- signals
def test_regions_follow_the_world_masks():
    for seed in range(40):
        sc = world.make_scene(seed)
        m = regions(sc.image, (16, 16))
        assert m is not None and m["has_dot"] == sc.has_dot
        if sc.has_dot:
            pooled = sc.accessory_mask.reshape(16, 2, 16, 2).any(axis=(1, 3))
            # every latent cell holding the world's dot is in the dot region
            assert not (pooled & ~m["dot"]).any()
        assert not (m["dot"] & m["object"]).any() and (m["dot"] | m["object"] | m["background"]).all()


def test_offline_emulation_matches_the_callback():
    pipe = tiny_sd()
    prompts, seeds = ["a red cat", "a blue dog", "a green pizza", "a cat"], [1, 2, 3, 4]
    rec = record(pipe, prompts, seeds, NEG, 8)
    assert rec.eps_u.shape[:2] == (4, 8) and rec.iter_steps == list(range(8))
    sig = global_signals(rec)["align"]
    # a threshold between recorded values, away from any of them
    vals = np.sort(sig[:, 1:6].ravel())
    gaps = np.diff(vals)
    j = int(np.argmax(gaps[len(gaps) // 4 : 3 * len(gaps) // 4])) + len(gaps) // 4
    thr = float((vals[j] + vals[j + 1]) / 2)
    want = [decide([None] + list(map(float, s[1:])), rec.iter_steps, 8, thr, max_fraction=0.75, when="first", fallback="max") for s in sig]
    cb = AutoDelayedNegative(NEG, threshold=thr, max_fraction=0.75, when="first", fallback="max", signal_kind="align")
    with torch.no_grad():
        pipe(prompts, negative_prompt=[""] * 4, num_inference_steps=8, guidance_scale=7.5, output_type="np",
             generator=[torch.Generator().manual_seed(s) for s in seeds], callback_on_step_end=cb)
    assert cb.last_steps == want
    assert len(set(want)) > 1, want
    for r, k in enumerate(want):
        for i in range(1, (k or 7) - 1):
            assert cb.last_signals[r][i] == pytest.approx(float(sig[r][i]), abs=1e-4)


# ------------------------------------------------------------------------------------------------- clip scorer
def tiny_clip(folder):
    from lab_util import save_tiny_clip

    return save_tiny_clip(folder, words=("a", "photo", "of", "glasses", "red", "cat", "blue", "dog"))


def test_clip_scorer(tmp_path):
    folder = tiny_clip(tmp_path / "clip")
    sc = P.ClipScorer(str(folder), "glasses", "a photo")
    rng = np.random.default_rng(0)
    ims = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(3)]
    out = sc(ims, ["a red cat"] * 3)
    assert len(out) == 3
    for o in out:
        assert 0.0 <= o["presence"] <= 1.0 and o["present"] == (o["presence"] > 0.5)
        assert -1.0 <= o["prompt_sim"] <= 1.0 and o["correct"] is None
    # different images, different scores (the image reaches the model)
    assert len({round(o["presence"], 6) for o in out}) == 3
    with pytest.raises(ValueError, match="clip model"):
        P.ClipScorer(str(tmp_path / "missing"), "glasses").load()


def test_set_sampler_keeps_sd_latents_unclipped():
    from diffusers import DDIMScheduler, PNDMScheduler

    pipe = tiny_sd(scheduler=PNDMScheduler(beta_schedule="scaled_linear", skip_prk_steps=True, steps_offset=1))
    P.set_sampler(pipe, "ddim")  # a PNDM config has no clip_sample: DDIM's default True would clip the latents
    assert type(pipe.scheduler).__name__ == "DDIMScheduler" and pipe.scheduler.config.clip_sample is False
    pipe.scheduler = DDIMScheduler(clip_sample=True)
    P.set_sampler(pipe, "ddim")  # a config that says so is kept
    assert pipe.scheduler.config.clip_sample is True
    P.set_sampler(pipe, "euler")
    assert type(pipe.scheduler).__name__ == "EulerDiscreteScheduler"


def test_early_behaviour_rows_are_the_paired_renders(tmp_path):
    """``Cell(no_cfg=True)``: rows "no_cfg:k" (CFG off before k, the negative from k) and "no_cfg_only:k" (CFG off
    before k, then CFG against the empty prompt) equal ``negdelay.apply(..., before="no_cfg")`` renders of one image
    up to float noise; a cell without them writes the same cell.json as before the option existed."""
    import negdelay

    pipe = tiny_sd()
    cell = P.Cell("c", 6, (2,), (11, 12), PROMPTS, NEG, no_cfg=True)
    assert cell.rows == ["none", "stock", 2, "no_cfg:2", "no_cfg_only:2"]
    recs = P.run_cell(pipe, cell, tmp_path, fake_scorer)
    ims = P.load_images(tmp_path, "c")
    for r, im in zip(recs, ims):
        kind, k = P.parse_row(r["row"])
        if kind not in (P.NO_CFG, P.NO_CFG_ONLY):
            continue
        with negdelay.apply(pipe, NEG if kind == P.NO_CFG else "", start_step=k, before="no_cfg"):
            ref = render_one(pipe, r["prompt"], r["seed"], 6)
        assert np.abs(im.astype(int) - ref.astype(int)).max() <= 1, r
    by = {(r["seed"], r["row"]): im for r, im in zip(recs, ims)}
    assert not np.array_equal(by[(11, 2)], by[(11, "no_cfg:2")])
    assert not np.array_equal(by[(11, "no_cfg:2")], by[(11, "no_cfg_only:2")])
    assert "no_cfg" not in P.Cell("d", 6, (2,), (1,), PROMPTS, NEG).meta()
    assert R.row_order(recs) == cell.rows
    with pytest.raises(ValueError, match="unknown row label"):
        P.parse_row("later:3")
