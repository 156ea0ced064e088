"""A synthetic study output folder (records, signal recordings, an auto run) in the exact formats the study writes, so
that its calibration and report can be run offline in seconds and compared byte for byte with a stored result
(tests/data/study_golden/: written by the report code before it was split into pieces; tests/test_study_report.py).

Deterministic: every value comes from ``numpy.random.default_rng(seed)`` with fixed seeds. The numbers have the
study's structure (removal falls and change shrinks with later starts) but no meaning.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from negdelay.study import plan
from negdelay.study.protocol import NONE, STOCK

SEEDS = tuple(range(24))
CELLS = ("ddim-20-full", "euler-20", "ddim-50", "pndm-50")


def _records(cell, rng) -> list[dict]:
    out = []
    for j in cell.seeds:
        prompt = cell.prompt_of(j)
        has = bool(rng.random() < 0.5)
        limit = rng.uniform(0.3, 1.0)  # the start fraction up to which this image's dot is removed
        base = rng.uniform(0.02, 0.08)
        for row in cell.rows:
            if row == NONE:
                present, pixel = has, 0.0
            elif row == STOCK:
                present, pixel = bool(has and rng.random() < 0.1) or bool(not has and rng.random() < 0.05), base
            else:
                f = row / cell.steps
                present = bool(has and f > limit)
                pixel = float(base * (1 - f) + rng.uniform(0, 0.004))
            out.append({"seed": j, "prompt": prompt, "row": row, "present": present, "colour_ok": True,
                        "shape_ok": bool(rng.random() < 0.97), "correct": bool(rng.random() < 0.97),
                        "pixel": float(pixel), "ssim": float(min(1.0, 4 * pixel + rng.uniform(0, 0.01)))})
    return out


def _signals(rng, seeds, has_dot) -> dict:
    n, iters = len(seeds), 20
    arrays = {"seeds": np.array(seeds), "has_dot": np.array(has_dot), "found": np.ones(n, bool),
              "iter_steps": np.arange(iters), "sigmas": np.geomspace(14.6, 0.03, iters),
              "images": rng.integers(0, 255, (n, 4, 4, 3), dtype=np.uint8)}
    for kind in ("align", "focus", "cancel"):
        arrays[kind] = rng.normal(0, 1, (n, iters)).astype(np.float32).cumsum(axis=1) / 5
    for region in ("dot", "object", "background"):
        for stat in ("cancel", "align", "act"):
            arrays[f"{region}_{stat}"] = rng.normal(0, 1, (n, iters)).astype(np.float32)
    return arrays


def write(out: Path, with_auto: bool = True) -> Path:
    """Fill ``out`` with the synthetic study; returns it. ``with_auto``: also calibrate and add an auto run."""
    out = Path(out)
    cells = plan.cells(SEEDS)
    for c, name in enumerate(CELLS):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "chunk-0000.json").write_text(json.dumps(_records(cells[name], np.random.default_rng(100 + c))))
    full = json.loads((out / "ddim-20-full" / "chunk-0000.json").read_text())
    has_dot = [next(r["present"] for r in full if r["seed"] == s and r["row"] == NONE) for s in SEEDS]
    sig = out / "signals-ddim-20"
    sig.mkdir(exist_ok=True)
    np.savez_compressed(sig / "chunk-0000.npz", **_signals(np.random.default_rng(7), list(SEEDS), has_dot))
    if not with_auto:
        return out
    from negdelay.study.analysis import calibrate

    calibrate(out)
    rng = np.random.default_rng(11)
    recs = []
    for s in SEEDS:
        row = {r["row"]: r for r in full if r["seed"] == s}
        k = int(rng.integers(1, 20)) if rng.random() < 0.8 else None
        src = row[NONE if k is None else k]
        recs.append({**src, "row": "auto", "step": k})
    auto = out / "auto-ddim-20-full"
    auto.mkdir(exist_ok=True)
    (auto / "chunk-0000.json").write_text(json.dumps({
        "records": recs, "cost": {"probe_rows": 123, "pipeline_rows": 960, "extra": 123 / 960}, "seconds": 4.5,
        "signals": None, "threshold": 0.25, "signal": "align", "max_fraction": 0.8, "when": "first",
        "fallback": "max"}))
    return out
