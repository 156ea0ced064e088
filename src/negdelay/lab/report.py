"""What a run leaves for people to read: labelled grids, summary tables (JSON + Markdown), CSVs, the sweep plot,
and the manifest. Everything here is rebuilt from the unit records, so a resumed run reports on all its units."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from . import metrics as M
from .outputs import LOCK_NAME, RunFolder
from .verdict import line, verdicts


# -------------------------------------------------------------------------------------------------------------- grid
def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def grid(images: list[list[np.ndarray]], col_labels: list[str], row_labels: list[str], tags=None, title: str = "",
         cell: int | None = None, note: str = ""):
    """A labelled grid (PIL image): ``images[row][col]``; optional ``tags[row][col]`` text under each image
    (e.g. the detector's verdict), drawn red when it starts with "!"."""
    from PIL import Image, ImageDraw

    h, w = images[0][0].shape[:2]
    cell = cell or (max(96, min(256, w)) if w < 96 else min(256, w))
    scale = cell / max(h, w)
    cw, ch = int(round(w * scale)), int(round(h * scale))
    font, small = _font(13), _font(11)
    pad, left, tag_h = 6, 70, (16 if tags else 0)
    head = 46 + (20 if title else 0)
    # column labels may need two lines
    W = left + len(col_labels) * (cw + pad) + pad
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    for line in [title, *note.split("\n")]:
        W = max(W, int(measure.textlength(line, font=font if line == title else small)) + 2 * pad)
    H = head + len(images) * (ch + tag_h + pad) + pad + (16 * (note.count("\n") + 1) + 4 if note else 0)
    canvas = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(canvas)
    if title:
        d.text((pad, 4), title, fill="black", font=font)
    y0 = 4 + (20 if title else 0)
    for j, lab in enumerate(col_labels):
        x = left + pad + j * (cw + pad)
        words, lines, cur = lab.split(), [], ""
        for wd in words:  # wrap to the cell width
            test = (cur + " " + wd).strip()
            if d.textlength(test, font=small) > cw and cur:
                lines.append(cur)
                cur = wd
            else:
                cur = test
        lines.append(cur)
        for k, line in enumerate(lines[:3]):
            d.text((x, y0 + k * 13), line, fill="black", font=small)
    if note:
        d.multiline_text((pad, head + len(images) * (ch + tag_h + pad) + 2), note, fill=(60, 60, 60), font=small,
                         spacing=4)
    resample = Image.NEAREST if scale >= 2 else Image.LANCZOS
    for i, row in enumerate(images):
        y = head + i * (ch + tag_h + pad)
        d.text((pad, y + ch // 2 - 7), row_labels[i], fill="black", font=small)
        for j, im in enumerate(row):
            x = left + pad + j * (cw + pad)
            canvas.paste(Image.fromarray(im).resize((cw, ch), resample), (x, y))
            if tags:
                t = tags[i][j]
                bad = t.startswith("!")
                d.text((x, y + ch + 2), t.lstrip("!"), fill=(200, 0, 0) if bad else (0, 110, 0), font=small)
    return canvas


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _load(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _tag(metrics: dict) -> str:
    if "dot" not in metrics:
        return ""
    return ("!dot" if metrics["dot"] else "no dot")


# ---------------------------------------------------------------------------------------------------------- compare
def _fmt_rate(r: dict | None) -> str:
    if not r:
        return "-"
    return f"{100 * r['rate']:.0f}% ({r['k']}/{r['n']}) [{100 * r['low']:.0f}-{100 * r['high']:.0f}]"


def _fmt_mean(r: dict | None) -> str:
    if not r:
        return "-"
    return f"{r['mean']:.3f} [{r['low']:.3f}-{r['high']:.3f}]"


def _table(rows: list[tuple[str, dict]], detector: bool) -> list[str]:
    head = ["column", "n"]
    if detector:
        head += ["dot rate [95% CI]", "colour right", "shape right"]
    head += ["pixel dist. to no-neg", "1-SSIM to no-neg"]
    clip = any("clip_prompt" in s for _, s in rows)
    if clip:
        head += ["CLIP sim. to prompt", "CLIP sim. to negative"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, s in rows:
        cells = [label, str(s["n"])]
        if detector:
            cells += [_fmt_rate(s.get("dot")), _fmt_rate(s.get("colour_ok")), _fmt_rate(s.get("shape_ok"))]
        cells += [_fmt_mean(s.get("pixel_distance")), _fmt_mean(s.get("ssim_distance"))]
        if clip:
            cells += [_fmt_mean(s.get("clip_prompt")), _fmt_mean(s.get("clip_negative"))]
        out.append("| " + " | ".join(cells) + " |")
    return out


def compare_report(folder: RunFolder, cfg, loaded, columns_of: dict, records: dict, detector: bool):
    root = folder.root
    by_pair: dict[str, list[dict]] = {}
    for rec in records.values():
        for row in rec["rows"]:
            by_pair.setdefault(rec["pair"], []).append({**rec, **row})
    summary = {"command": "compare", "model": loaded.model_name, "sampler": loaded.sampler, "steps": cfg.steps,
               "guidance_scale": cfg.guidance_scale, "size": None, "seeds": cfg.seeds,
               "detector": "negdelay.toy.detect" if detector else None, "pairs": {}, "all_pairs": {}}
    md = [f"# negdelay compare: {loaded.model_name}, {loaded.sampler}, {cfg.steps} steps, CFG {cfg.guidance_scale:g}, "
          f"{len(cfg.seeds)} seeds", "",
          "Every row of a grid starts from one initial noise (the seed), so the columns differ only by the negative.",
          "Rates: share of images (Wilson 95% interval); distances: mean over seeds (bootstrap 95% interval).", ""]
    grids, files = [], []
    pooled: dict[str, list[dict]] = {}
    labels = {}
    for name, recs in by_pair.items():
        recs = sorted(recs, key=lambda r: cfg.seeds.index(r["seed"]))
        cols = columns_of[name]
        per_col: dict[str, list[dict]] = {c.id: [] for c in cols}
        rows_img, tags = [], []
        for r in recs:
            row, trow = [], []
            for e in r["images"]:
                per_col[e["column"]].append(e["metrics"])
                row.append(_load(root / e["file"]))
                trow.append(_tag(e["metrics"]))
                files.append({"path": e["file"], "what": "image", "pair": name, "seed": r["seed"],
                              "column": e["column"], "label": e["label"], "schedule": e["schedule"]})
            rows_img.append(row)
            tags.append(trow)
        p0 = recs[0]
        summary["size"] = [rows_img[0][0].shape[1], rows_img[0][0].shape[0]]
        g = grid(rows_img, [c.label for c in cols], [f"seed {r['seed']}" for r in recs],
                 tags if detector else None, title=f"prompt {p0['prompt']!r}   negative {p0['negative']!r}",
                 note=("Each row starts from one seed's noise; columns differ only by the negative.\n"
                       + ("Under each image the toy world's judge: red 'dot' = the accessory the negative names is there."
                          if detector else "")).strip())
        folder.write(f"{name}/grid.png", _png(g))
        grids.append(root / name / "grid.png")
        files.append({"path": f"{name}/grid.png", "what": "grid: rows = seeds, columns = no / stock / delayed negative",
                      "pair": name})
        col_summary = {c.id: {"label": c.label, "schedule": c.schedule, **M.summarize(per_col[c.id])} for c in cols}
        summary["pairs"][name] = {"prompt": p0["prompt"], "negative": p0["negative"], "columns": col_summary}
        md += [f"## {p0['prompt']!r}, negative {p0['negative']!r}", "", f"![grid]({name}/grid.png)", ""]
        md += _table([(s["label"], s) for s in col_summary.values()], detector) + [""]
        for c in cols:
            key = c.id
            pooled.setdefault(key, []).extend(per_col[c.id])
            labels[key] = c.label
    if len(by_pair) > 1:
        summary["all_pairs"] = {k: {"label": labels[k], **M.summarize(v)} for k, v in pooled.items()}
        md += ["## All pairs", ""] + _table([(s["label"], s) for s in summary["all_pairs"].values()], detector) + [""]
    summary["verdicts"] = verdicts(pooled, labels, detector)
    md += ["## Verdict (all pairs, paired by seed, against the stock negative)", ""]
    md += [f"- {line(v)}" for v in summary["verdicts"].values()] + [""]
    folder.write_json("summary.json", summary)
    folder.write_text("summary.md", "\n".join(md))
    files += [{"path": "summary.json", "what": "per-pair, per-column metrics with 95% intervals"},
              {"path": "summary.md", "what": "the same as Markdown tables, with the grids"}] + bookkeeping(root)
    folder.write_manifest(files, {"command": "compare", "units": sorted(records)})
    return summary, grids


# ------------------------------------------------------------------------------------------------------------ sweep
def sweep_report(folder: RunFolder, cfg, loaded, cols, records: dict, detector: bool, run):
    root = folder.root
    per_col: dict[str, list[dict]] = {c.id: [] for c in cols}
    csv_rows, files = [], []
    for rec in records.values():
        for e in rec["images"]:
            per_col[e["column"]].append(e["metrics"])
            csv_rows.append({"seed": rec["seed"], "column": e["column"], "kind": e["kind"],
                             "start_" + cfg.starts.kind: e["value"], "start_step": e["start_step"],
                             **({"before": e["before"]} if "before" in e else {}),
                             **{k: e["metrics"].get(k) for k in (*M.RATE_METRICS, *M.MEAN_METRICS)
                                if k in e["metrics"]}, "file": e["file"]})
            files.append({"path": e["file"], "what": "image", "seed": rec["seed"], "column": e["column"],
                          "start_step": e["start_step"]})
    csv_rows.sort(key=lambda r: (cfg.seeds.index(r["seed"]), r["column"]))
    summary = {"command": "sweep", "model": loaded.model_name, "sampler": loaded.sampler, "steps": cfg.steps,
               "guidance_scale": cfg.guidance_scale, "prompt": cfg.prompt, "negative": cfg.negative,
               "seeds": cfg.seeds, "start_kind": cfg.starts.kind, "n_steps": run.n_steps,
               "detector": "negdelay.toy.detect" if detector else None,
               "reference": {c.id: {"label": c.label, **M.summarize(per_col[c.id])} for c in cols if c.kind != "delayed"},
               "starts": [{"value": c.value, "start_step": c.start_step,
                           **({"before": c.before} if c.before != "unconditional" else {}), **M.summarize(per_col[c.id])}
                          for c in cols if c.kind == "delayed"]}
    folder.write_json("summary.json", summary)
    _write_csv(folder, "results.csv", csv_rows)
    flat = []
    for s in summary["starts"]:
        row = {"start_" + cfg.starts.kind: s["value"], "start_step": s["start_step"],
               **({"before": s["before"]} if "before" in s else {}), "n": s["n"]}
        for m in (*M.RATE_METRICS, *M.MEAN_METRICS):
            if m in s:
                key = "rate" if m in M.RATE_METRICS else "mean"
                row.update({m: s[m][key], f"{m}_low": s[m]["low"], f"{m}_high": s[m]["high"]})
        flat.append(row)
    _write_csv(folder, "summary.csv", flat)
    plot = root / "sweep.png"
    folder.write("sweep.png", sweep_plot(summary, detector))
    files += [{"path": "results.csv", "what": "one row per image: seed, start, metrics"},
              {"path": "summary.csv", "what": "one row per start: metrics with 95% intervals"},
              {"path": "summary.json", "what": "per-start and reference (no / stock negative) metrics with 95% intervals"},
              {"path": "sweep.png", "what": "metrics vs start, 95% bands"}] + bookkeeping(root)
    folder.write_manifest(files, {"command": "sweep", "units": sorted(records)})
    return summary, plot


def bookkeeping(root: Path) -> list[dict]:
    """Manifest entries for the run's own bookkeeping files."""
    out = [{"path": "run.json", "what": "the command, its settings and the run's id"}]
    if (root / LOCK_NAME).is_file():
        out.append({"path": LOCK_NAME, "what": "the run's lock: one process at a time works here (names the last holder)"})
    out += [{"path": f"records/{p.name}", "what": "record of one finished unit of work (its images and metrics)"}
            for p in sorted((root / "records").glob("*.json"))]
    out += [{"path": f"processes/{p.name}", "what": "audit log: the units this process rendered"}
            for p in sorted((root / "processes").glob("*.log"))]
    return out


def _write_csv(folder: RunFolder, rel: str, rows: list[dict]) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(rows)
    folder.write(rel, buf.getvalue().encode())


def sweep_plot(summary: dict, detector: bool) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    starts = summary["starts"]
    kind = summary["start_kind"]
    # one curve per early behaviour: CFG against the empty prompt before the start (solid), CFG off (dash-dot)
    curves = [(b, [s for s in starts if s.get("before", "unconditional") == b], style, tag)
              for b, style, tag in (("unconditional", "o-", ""), ("no_cfg", "s-.", " (CFG off before)"))]
    curves = [c for c in curves if c[1]]
    groups = ([("rates", ["dot", "colour_ok", "shape_ok"])] if detector else []) + [("distances", list(M.DISTANCE_METRICS))]
    if starts and "clip_prompt" in starts[0]:
        groups.append(("CLIP similarity", list(M.CLIP_METRICS)))
    fig, axes = plt.subplots(1, len(groups), figsize=(5.2 * len(groups), 3.8), squeeze=False)
    colours = {"dot": "tab:red", "colour_ok": "tab:green", "shape_ok": "tab:blue", "clip_prompt": "tab:cyan",
               "clip_negative": "tab:brown",
               "pixel_distance": "tab:purple", "ssim_distance": "tab:orange"}
    for ax, (name, ms) in zip(axes[0], groups):
        for m in ms:
            if not all(m in s for s in starts):
                continue
            key = "rate" if m in M.RATE_METRICS else "mean"
            for _, group, style, tag in curves:
                x = np.array([s["value"] for s in group], dtype=float)
                y = np.array([s[m][key] for s in group])
                lo = np.array([s[m]["low"] for s in group])
                hi = np.array([s[m]["high"] for s in group])
                ax.plot(x, y, style, color=colours[m], label=M.LABELS[m] + tag, ms=3)
                ax.fill_between(x, lo, hi, color=colours[m], alpha=0.18, lw=0)
            for ref, style in (("none", ":"), ("stock", "--")):
                r = summary["reference"].get(ref, {}).get(m)
                if r is not None and not (m in M.DISTANCE_METRICS and ref == "none"):
                    ax.axhline(r[key], color=colours[m], ls=style, lw=1)
        ax.set_xlabel(f"negative starts at {kind}")
        ax.set_ylabel(name if name != "distances" else "distance")
        if name == "rates":
            ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    n = len(summary["seeds"])
    fig.suptitle(f"{summary['prompt']!r} / negative {summary['negative']!r}: {n} seeds, {summary['steps']} steps "
                 f"({summary['sampler']})\n95% bands (Wilson for rates, bootstrap for means); "
                 "dotted: no negative, dashed: stock negative", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
