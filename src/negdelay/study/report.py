"""The study's numbers: rates with Wilson intervals, mean distances with bootstrap intervals, paired differences,
the critical point of each setting in steps / fractions / sigmas, the per-image oracle and the automatic step.

Everything here reads records written by ``protocol.run_cell`` (and the signal / auto files of ``__main__``); it
renders nothing.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from ..lab.metrics import bootstrap_mean, rate, wilson
from .protocol import NONE, STOCK


def jsonable(x):
    """``x`` with numpy scalars as Python numbers, NaN as None and dict keys as text: ready for ``json.dumps``."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if math.isnan(float(x)) else float(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def by_seed(records: list[dict]) -> dict[int, dict]:
    """``{seed: {row: record}}``."""
    out: dict[int, dict] = defaultdict(dict)
    for r in records:
        out[r["seed"]][r["row"]] = r
    return dict(out)


def row_order(records: list[dict]) -> list:
    """``none``, ``stock``, the start steps ascending, then the other rows (early behaviour) as they come."""
    rows = list(dict.fromkeys(r["row"] for r in records))
    return [x for x in (NONE, STOCK) if x in rows] + sorted(x for x in rows if isinstance(x, int)) + [
        x for x in rows if x not in (NONE, STOCK) and not isinstance(x, int)]


def paired_diff(a, b, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``b - a`` (paired) with a 95 % percentile-bootstrap interval."""
    d = np.asarray(b, float) - np.asarray(a, float)
    return bootstrap_mean(d, n_boot=n_boot, seed=seed)


def summarize_cell(records: list[dict]) -> dict:
    """Per row: present rate, correct rate (Wilson), pixel / ssim distance (bootstrap), and paired transitions
    against ``none``: ``created`` (no accessory without the negative, accessory with it) among seeds without it,
    ``removed`` among seeds with it; and the paired difference of the present rate against ``none``."""
    seeds = by_seed(records)
    rows = row_order(records)
    base = {s: d[NONE] for s, d in seeds.items() if NONE in d}
    out = {"n_seeds": len(seeds), "rows": {}}
    for row in rows:
        recs = [d[row] for s, d in seeds.items() if row in d and s in base]
        pres = [r["present"] for r in recs]
        entry = {"present": rate(pres)}
        corr = [r["correct"] for r in recs if r.get("correct") is not None]
        if corr:
            entry["correct"] = rate(corr)
        for m in ("pixel", "ssim"):
            m_, lo, hi = bootstrap_mean([r[m] for r in recs])
            entry[m] = {"mean": m_, "low": lo, "high": hi}
        b = [base[r["seed"]]["present"] for r in recs]
        without = [p for p, q in zip(pres, b) if not q]
        with_ = [p for p, q in zip(pres, b) if q]
        entry["created"] = rate(without) if without else None
        entry["removed"] = rate([not p for p in with_]) if with_ else None
        entry["diff_vs_none"] = dict(zip(("mean", "low", "high"), paired_diff(b, pres)))
        if recs and "presence" in recs[0]:
            m_, lo, hi = bootstrap_mean([r["presence"] for r in recs])
            entry["presence"] = {"mean": m_, "low": lo, "high": hi}
        out["rows"][row] = entry
    return out


def by_group(records: list[dict], key) -> dict:
    groups: dict = defaultdict(list)
    for r in records:
        groups[key(r)].append(r)
    return {k: summarize_cell(v) for k, v in sorted(groups.items())}


def shape_of(prompt: str) -> str:
    from ..toy import world

    return next((s for s in world.SHAPES if s in prompt.split()), "?")


# -------------------------------------------------------------------------------------------------- critical point
def removal_curve(summary: dict) -> tuple[list[int], list[float]]:
    """``(starts, relative removal)``: ``(p_none - p_k) / (p_none - p_stock)`` per start step (1: as much as the
    stock negative, 0: nothing)."""
    rows = summary["rows"]
    p0, ps = rows[NONE]["present"]["rate"], rows[STOCK]["present"]["rate"]
    ks = sorted(k for k in rows if isinstance(k, int))
    den = p0 - ps
    rel = [(p0 - rows[k]["present"]["rate"]) / den if den > 0 else math.nan for k in ks]
    return ks, rel


def crossing(xs: list[float], ys: list[float], level: float = 0.5) -> float:
    """The first ``x`` where the (decreasing) curve ``ys`` falls to ``level`` (linear interpolation; the curve is
    taken to start at (x_0 - 1 step, 1) when it starts below the level already: then nan)."""
    for j in range(len(xs) - 1):
        a, b = ys[j], ys[j + 1]
        if a >= level > b or a > level >= b:
            t = (a - level) / (a - b)
            return xs[j] + t * (xs[j + 1] - xs[j])
    return math.nan


def critical_points(summary: dict, n_steps: int, step_sigmas: list[float], level: float = 0.5) -> dict:
    """Where the relative removal falls to ``level``: as a step, a fraction, and a sigma (interpolated in log
    sigma over the step grid)."""
    ks, rel = removal_curve(summary)
    k = crossing([float(x) for x in ks], rel, level)
    if math.isnan(k):
        return {"step": math.nan, "fraction": math.nan, "sigma": math.nan}
    lo = int(math.floor(k))
    hi = min(lo + 1, n_steps - 1)
    t = k - lo
    ls = (1 - t) * math.log(step_sigmas[lo]) + t * math.log(step_sigmas[hi])
    return {"step": k, "fraction": k / n_steps, "sigma": math.exp(ls)}


def value_at(summary: dict, n_steps: int, step_sigmas: list[float], kind: str, value: float) -> float:
    """The relative removal of a setting at a start given as ``kind`` (step / fraction / sigma), interpolated."""
    ks, rel = removal_curve(summary)
    if kind == "step":
        k = value
    elif kind == "fraction":
        k = value * n_steps
    else:  # first step whose sigma <= value, continuous: interpolate in log sigma
        logs = [math.log(s) for s in step_sigmas]
        lv = math.log(value)
        k = float(len(logs) - 1)
        for j in range(len(logs) - 1):
            if logs[j] >= lv >= logs[j + 1]:
                k = j + (logs[j] - lv) / (logs[j] - logs[j + 1])
                break
        if lv > logs[0]:
            k = 0.0
    return float(np.interp(k, ks, rel))


def schedule_kind_test(settings: dict[str, dict]) -> dict:
    """Which kind of schedule carries the critical point across settings best.

    ``settings``: ``{name: {"summary", "n_steps", "sigmas"}}``. For each kind, the critical values (relative
    removal 0.5) of all settings, their median, and for each setting the relative removal that the median gives
    there; the kind whose median lands nearest 0.5 everywhere (smallest mean absolute error) carries best."""
    crit = {n: critical_points(s["summary"], s["n_steps"], s["sigmas"]) for n, s in settings.items()}
    out = {"critical": crit, "kinds": {}}
    for kind in ("step", "fraction", "sigma"):
        vals = [c[kind] for c in crit.values() if not math.isnan(c[kind])]
        if not vals:
            continue
        med = float(np.exp(np.median(np.log(vals)))) if kind == "sigma" else float(np.median(vals))
        got = {n: value_at(s["summary"], s["n_steps"], s["sigmas"], kind, med) for n, s in settings.items()}
        err = [abs(v - 0.5) for v in got.values() if not math.isnan(v)]
        out["kinds"][kind] = {"median": med, "removal_at_median": got, "mean_abs_error": float(np.mean(err)),
                              "max_abs_error": float(np.max(err))}
    return out


# ------------------------------------------------------------------------------------------------------ oracle
def oracle(seed_rows: dict, starts: list[int], metric: str = "pixel"):
    """Per image: the start step that removes the accessory with the least change (``metric`` distance to the
    no-negative twin; ties: the later step). ``None`` when the no-negative image has no accessory; ``-1`` when no
    start removes it."""
    if not seed_rows[NONE]["present"]:
        return None
    ok = [k for k in starts if k in seed_rows and not seed_rows[k]["present"]]
    if not ok:
        return -1
    return min(ok, key=lambda k: (seed_rows[k][metric], -k))


def auto_outcomes(seeds: dict, chosen: dict[int, int | None]) -> list[dict]:
    """The sweep's record of each seed's chosen start (``None``: the no-negative image)."""
    return [seeds[s][NONE if k is None else k] for s, k in chosen.items()]


def judge_auto(seeds: dict, starts: list[int], chosen: dict[int, int | None]) -> dict:
    """Accuracy of chosen steps against the oracle on images with the accessory and an oracle, and the removal /
    change the choice gives, next to every fixed start."""
    near, exact, diffs, unreachable, never = [], [], [], 0, 0
    for s, k in chosen.items():
        o = oracle(seeds[s], starts)
        if o is None:
            continue
        if o == -1:
            unreachable += 1
            continue
        near.append(k is not None and abs(k - o) <= 1)
        exact.append(k == o)
        if k is None:
            never += 1
        else:
            diffs.append(k - o)
    with_dot = [s for s in chosen if seeds[s][NONE]["present"]]

    def outcome(pick) -> dict:
        # a choice that is not a row of the sweep (auto may pick a start the sweep did not render) is left out here;
        # the runtime images of auto are scored directly by the caller
        recs = [seeds[s][pick(s)] for s in chosen if pick(s) in seeds[s]]
        recs_dot = [seeds[s][pick(s)] for s in with_dot if pick(s) in seeds[s]]
        return {
            "present": rate([r["present"] for r in recs]),
            "present_dotted": rate([r["present"] for r in recs_dot]) if recs_dot else None,
            "pixel": dict(zip(("mean", "low", "high"), bootstrap_mean([r["pixel"] for r in recs]))),
            "ssim": dict(zip(("mean", "low", "high"), bootstrap_mean([r["ssim"] for r in recs]))),
            "correct": rate([r["correct"] for r in recs if r.get("correct") is not None]),
        }

    res = {
        "n_images": len(chosen),
        "n_with_accessory": len(with_dot),
        "n_oracle": len(near),
        "n_unreachable": unreachable,
        "n_never": never,  # images with an oracle for which auto never applied the negative
        "within_one": rate(near) if near else None,
        "exact": rate(exact) if exact else None,
        "mean_abs_diff": float(np.mean(np.abs(diffs))) if diffs else math.nan,
        "mean_diff": float(np.mean(diffs)) if diffs else math.nan,
        "auto": outcome(lambda s: NONE if chosen[s] is None else chosen[s]),
        "fixed": {k: outcome(lambda s, k=k: k) for k in starts},
        "oracle": outcome(lambda s: _oracle_pick(seeds[s], starts)),
    }
    res["dominated_by"] = dominated_by(res)
    return res


def _oracle_pick(seed_rows, starts):
    o = oracle(seed_rows, starts)
    if o is None:
        return NONE
    if o == -1:
        return max(starts)  # nothing removes it: the least change among the starts is about the latest
    return o


def dominated_by(res: dict) -> list[int]:
    """Fixed starts at least as good as auto on both removal (present rate) and change (pixel distance)."""
    a = res["auto"]
    return [k for k, f in res["fixed"].items()
            if f["present"]["rate"] <= a["present"]["rate"] and f["pixel"]["mean"] <= a["pixel"]["mean"]]


def frontier_gap(res: dict) -> float:
    """How far auto's present rate is below the fixed-start curve at auto's mean change (pixel distance), the
    curve interpolated linearly between starts (positive: auto removes more for the same change)."""
    pts = sorted((f["pixel"]["mean"], f["present"]["rate"]) for f in res["fixed"].values())
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x = res["auto"]["pixel"]["mean"]
    return float(np.interp(x, xs, ys) - res["auto"]["present"]["rate"])


# --------------------------------------------------------------------------------------------------- formatting
def pct(r: dict | None) -> str:
    if r is None:
        return "–"
    return f"{100 * r['rate']:.1f} % [{100 * r['low']:.1f}, {100 * r['high']:.1f}] ({r['k']}/{r['n']})"


def num(m: dict | None, scale: float = 1.0, digits: int = 3) -> str:
    if m is None:
        return "–"
    return f"{scale * m['mean']:.{digits}f} [{scale * m['low']:.{digits}f}, {scale * m['high']:.{digits}f}]"


def label(row) -> str:
    if isinstance(row, str) and ":" in row:
        kind, _, k = row.partition(":")
        return {"no_cfg": f"CFG off before step {k}, negative from {k}",
                "no_cfg_only": f"CFG off before step {k}, no negative"}.get(kind, row)
    return {NONE: "no negative", STOCK: "stock (step 0)"}.get(row, f"from step {row}")


def cell_table(summary: dict, cols=("present", "created", "removed", "correct", "pixel", "ssim")) -> str:
    names = {"present": "accessory rate", "created": "created (of those without)", "removed": "removed (of those with)",
             "correct": "object right", "pixel": "pixel dist.", "ssim": "1 − SSIM", "presence": "CLIP presence"}
    head = "| start | " + " | ".join(names[c] for c in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for row, e in summary["rows"].items():
        cells = []
        for c in cols:
            v = e.get(c)
            cells.append(num(v) if c in ("pixel", "ssim", "presence") else pct(v))
        lines.append(f"| {label(row)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def wilson_text(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{100 * k / n:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}]"
