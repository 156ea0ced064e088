"""One line per column of ``negdelay compare``: does it remove the accessory, and how much does it change the image,
each against the stock negative, paired by seed, with a 95 % interval.

- removal: the dot rate of the column minus the stock negative's (percentage points; images paired by seed and
  pair, bootstrap over the pairs). Interval below 0: removes more; above 0: removes less; else: as much (within the
  interval). For the stock column itself: against no negative.
- change: the column's mean pixel distance to the no-negative image divided by the stock negative's (bootstrap over
  the pairs). Interval below 1: changes the image less; above 1: more; else: about as much.

Without the toy detector (other models) only the change is judged.
"""

from __future__ import annotations

from . import metrics as M


def _side(low: float, high: float, at: float, less: str, more: str, same: str) -> str:
    if high < at:
        return less
    if low > at:
        return more
    return same


def removal(column: list[dict], reference: list[dict], vs: str = "stock") -> dict:
    """Dot rate of ``column`` minus ``reference``'s (``vs``: "stock" or "no negative"), paired rows, with its
    interval and the words for it."""
    d = M.paired_difference([bool(r["dot"]) for r in column], [bool(r["dot"]) for r in reference])
    if vs == "stock":
        d["word"] = _side(d["low"], d["high"], 0.0, "removes more than stock", "removes less than stock",
                          "removes as much as stock")
    else:
        d["word"] = _side(d["low"], d["high"], 0.0, "removes the dot", "adds dots (reverse activation)",
                          "no clear removal")
    d["vs"] = vs
    return d


def change(column: list[dict], stock: list[dict]) -> dict:
    """Mean pixel distance to no negative of ``column`` over the stock negative's, with its interval and a word."""
    r = M.paired_ratio([x["pixel_distance"] for x in column], [x["pixel_distance"] for x in stock])
    r["word"] = _side(r["low"], r["high"], 1.0, "changes less than stock", "changes more than stock",
                      "changes as much as stock")
    return r


def verdicts(per_column: dict[str, list[dict]], labels: dict[str, str], detector: bool) -> dict[str, dict]:
    """Column id -> its verdict, for every column but "none" (rows of all columns paired by position)."""
    stock, none = per_column["stock"], per_column["none"]
    out = {}
    for cid, rows in per_column.items():
        if cid == "none":
            continue
        v: dict = {"label": labels[cid], "n": len(rows)}
        if detector:
            v["removal"] = removal(rows, none, "no negative") if cid == "stock" else removal(rows, stock)
        if cid != "stock":
            v["change"] = change(rows, stock)
        out[cid] = v
    return out


def line(v: dict) -> str:
    """``delayed, step 3: removes as much as stock (dot -2 pp [-9, +5]); changes less than stock (x0.61 ...)``"""
    parts = []
    if "removal" in v:
        r = v["removal"]
        parts.append(f"{r['word']} (dot {100 * r['diff']:+.0f} pp vs {r['vs']} [{100 * r['low']:+.0f}, "
                     f"{100 * r['high']:+.0f}])")
    if "change" in v:
        c = v["change"]
        parts.append(f"{c['word']} (pixel change x{c['ratio']:.2f} [{c['low']:.2f}-{c['high']:.2f}])")
    return f"{v['label']}: " + "; ".join(parts) + f"  (n={v['n']}, 95% intervals)"


__all__ = ["change", "line", "removal", "verdicts"]
