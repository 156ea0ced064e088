"""The study's plots (matplotlib, Agg): written as ``study-*.png``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import report as R
from .protocol import NONE, STOCK


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def make_plots(rep, summaries, cells, settings, sig, img: Path) -> list[Path]:
    img.mkdir(parents=True, exist_ok=True)
    paths = []
    if "ddim-20-full" in summaries:
        s = summaries["ddim-20-full"]
        paths.append(tradeoff(s, img / "study-tradeoff.png", title="Removal and collateral change vs start step "
                              f"(embedded model, DDIM 20 steps, {s['n_seeds']} paired seeds)"))
    if settings:
        paths.append(critical(settings, img / "study-samplers.png"))
    paths.append(reverse(summaries, cells, img / "study-reverse.png"))
    if sig is not None and "signals" in rep:
        paths.append(neutralization(rep["signals"], img / "study-neutralization.png"))
    if rep.get("auto_runtime_judged"):
        paths.append(auto_plot(rep["auto_runtime_judged"], img / "study-auto.png"))
    return paths


def _band(ax, xs, entries, key, label, color, scale=1.0):
    if key in ("pixel", "ssim"):
        m = [scale * e[key]["mean"] for e in entries]
        lo = [scale * e[key]["low"] for e in entries]
        hi = [scale * e[key]["high"] for e in entries]
    else:
        m = [e[key]["rate"] for e in entries]
        lo = [e[key]["low"] for e in entries]
        hi = [e[key]["high"] for e in entries]
    ax.plot(xs, m, "o-", color=color, label=label, ms=3)
    ax.fill_between(xs, lo, hi, color=color, alpha=0.2)


def tradeoff(s, path: Path, xlabel: str = "start step of the negative (DDIM, 20 steps)",
             title: str = "Removal and collateral change vs start step (embedded model, 200 paired seeds)") -> Path:
    plt = _plt()
    rows = s["rows"]
    ks = sorted(k for k in rows if isinstance(k, int))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ax = axes[0]
    _band(ax, ks, [rows[k] for k in ks], "present", "accessory rate", "C3")
    if all("correct" in rows[k] for k in ks):
        _band(ax, ks, [rows[k] for k in ks], "correct", "object right (colour and shape)", "C2")
    for row, ls in ((NONE, ":"), (STOCK, "--")):
        ax.axhline(rows[row]["present"]["rate"], color="C3", ls=ls, lw=1, label=f"dot rate, {R.label(row)}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rate (95 % Wilson)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    ax = axes[1]
    _band(ax, ks, [rows[k] for k in ks], "pixel", "mean |Δpixel| × 10", "C0", 10)
    _band(ax, ks, [rows[k] for k in ks], "ssim", "1 − SSIM", "C1")
    ax.axhline(10 * rows[STOCK]["pixel"]["mean"], color="C0", ls="--", lw=1, label="stock, pixel × 10")
    ax.axhline(rows[STOCK]["ssim"]["mean"], color="C1", ls="--", lw=1, label="stock, 1 − SSIM")
    ax.set_xlabel("start step of the negative")
    ax.set_ylabel("distance to the no-negative twin (95 % bootstrap)")
    ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _save(plt, fig, path)


def critical(settings, path: Path) -> Path:
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for j, (name, st) in enumerate(sorted(settings.items())):
        ks, rel = R.removal_curve(st["summary"])
        n = st["n_steps"]
        col = f"C{j}"
        ls = "-" if n <= 20 else "--"
        axes[0].plot(ks, rel, "o" + ls, color=col, label=name, ms=3)
        axes[1].plot([k / n for k in ks], rel, "o" + ls, color=col, label=name, ms=3)
        axes[2].plot([st["sigmas"][k] for k in ks], rel, "o" + ls, color=col, label=name, ms=3)
    for ax, xl in zip(axes, ("start step", "start fraction (step / steps)", "noise level sigma at the start step")):
        ax.axhline(0.5, color="k", lw=0.7, ls=":")
        ax.set_xlabel(xl)
        ax.set_ylabel("relative removal (1 = as the stock negative)")
    axes[2].set_xscale("log")
    axes[2].invert_xaxis()
    axes[0].legend(fontsize=7)
    fig.suptitle("Where the negative stops removing: one curve per sampler / step count", fontsize=10)
    return _save(plt, fig, path)


def reverse(summaries, cells, path: Path) -> Path:
    plt = _plt()
    names = [n for n, s in summaries.items() if NONE in s["rows"] and STOCK in s["rows"]]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(names)), 3.8))
    x = np.arange(len(names))
    for off, row, col in ((-0.2, NONE, "C7"), (0.2, STOCK, "C3")):
        m = [summaries[n]["rows"][row]["present"]["rate"] for n in names]
        lo = [max(0.0, m_ - summaries[n]["rows"][row]["present"]["low"]) for m_, n in zip(m, names)]
        hi = [max(0.0, summaries[n]["rows"][row]["present"]["high"] - m_) for m_, n in zip(m, names)]
        ax.bar(x + off, m, 0.4, yerr=[lo, hi], color=col, label=R.label(row), capsize=2)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("accessory rate (95 % Wilson)")
    ax.set_title("Reverse activation? The accessory with no negative vs the negative from step 0", fontsize=10)
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def neutralization(s, path: Path) -> Path:
    plt = _plt()
    steps = s["iter_steps"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, group in zip(axes, ("with dot", "without dot")):
        g = s["groups"][group]
        for region, col in (("dot", "C3"), ("object", "C0"), ("background", "C7")):
            m = np.array([v[0] for v in g[f"{region}_cancel"]])
            lo = np.array([v[1] for v in g[f"{region}_cancel"]])
            hi = np.array([v[2] for v in g[f"{region}_cancel"]])
            lab = {"dot": "accessory region" if group == "with dot" else "where the dot would be",
                   "object": "rest of the object", "background": "background"}[region]
            ax.plot(steps, m, "o-", color=col, ms=3, label=lab)
            ax.fill_between(steps, lo, hi, color=col, alpha=0.2)
        a = np.array([v[0] for v in g["align"]])
        ax.plot(steps, a, "k--", lw=1, label="auto signal (align, whole latent)")
        ax.set_xlabel("step (no-negative trajectory, DDIM 20 steps)")
        ax.set_ylabel("cancellation 1 − |ε_c − ε_n| / |ε_c − ε_u|")
        ax.set_title(f"images {group} (n = {g['n']})", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("Neutralization: how much the negative's prediction cancels the prompt's guidance, per region",
                 fontsize=10)
    return _save(plt, fig, path)


def auto_plot(res, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    ks = sorted(res["fixed"])
    xs = [res["fixed"][k]["pixel"]["mean"] for k in ks]
    ys = [res["fixed"][k]["present"]["rate"] for k in ks]
    ax.plot(xs, ys, "o-", color="C0", label="fixed start step")
    for k, x, y in zip(ks, xs, ys):
        ax.annotate(str(k), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    for name, col, mk in (("auto", "C3", "*"), ("oracle", "C2", "D")):
        v = res[name]
        ax.errorbar([v["pixel"]["mean"]], [v["present"]["rate"]],
                    xerr=[[max(0.0, v["pixel"]["mean"] - v["pixel"]["low"])], [max(0.0, v["pixel"]["high"] - v["pixel"]["mean"])]],
                    yerr=[[max(0.0, v["present"]["rate"] - v["present"]["low"])],
                          [max(0.0, v["present"]["high"] - v["present"]["rate"])]],
                    fmt=mk, color=col, ms=10, label=name, capsize=2)
    ax.set_xlabel("mean pixel distance to the no-negative twin (change)")
    ax.set_ylabel("accessory rate (lower: more removed)")
    ax.set_title("Removal vs change: fixed start steps, auto, oracle (DDIM 20)", fontsize=9)
    ax.legend(fontsize=8)
    return _save(plt, fig, path)
