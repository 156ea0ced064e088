"""Cells of the study and how they run: paired, batched, resumable.

A *cell* is one setting (prompt set, sampler, step count, guidance) and the rows rendered for each seed:
``none`` (no negative), ``stock`` (the negative from step 0, given to the pipeline) and one row per start step ``k``
(``DelayedNegative``-equivalent segments: the negative from step ``k`` on). Every row of a seed starts from the same
initial noise (one ``torch.Generator().manual_seed(seed)`` per row), and the rows of several seeds share one batched
pipeline call. Seed ``j`` of the cell's seed list uses prompt ``prompts[j % len(prompts)]``.

Results go to ``<out>/<cell>/chunk-NNNN.json`` (+ ``.npz`` with the images), written atomically; a cell that is run
again skips the chunks already written (kill it, start it again: nothing lost, nothing duplicated).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..schedule import Point

NONE, STOCK = "none", "stock"
#: row label prefixes of the early-behaviour rows (``Cell.no_cfg``): ``"no_cfg:k"`` = CFG off before step k, the
#: negative from k on; ``"no_cfg_only:k"`` = CFG off before step k, then CFG against the empty prompt (its twin
#: without the negative)
NO_CFG, NO_CFG_ONLY = "no_cfg", "no_cfg_only"


def early_row(kind: str, k: int) -> str:
    return f"{kind}:{k}"


def parse_row(row) -> tuple[str, int | None]:
    """``(kind, start step)`` of a row label: ``("none", None)``, ``("stock", 0)``, ``("delayed", k)``,
    ``("no_cfg", k)``, ``("no_cfg_only", k)``."""
    if row == NONE:
        return NONE, None
    if row == STOCK:
        return STOCK, 0
    if isinstance(row, int):
        return "delayed", row
    kind, _, k = str(row).partition(":")
    if kind not in (NO_CFG, NO_CFG_ONLY) or not k.isdigit():
        raise ValueError(f"unknown row label {row!r}")
    return kind, int(k)


@dataclass(frozen=True)
class Cell:
    name: str
    steps: int
    starts: tuple[int, ...]
    seeds: tuple[int, ...]
    prompts: tuple[str, ...]
    negative: str
    sampler: str | None = None  # a key of negdelay.lab.config.SCHEDULERS; None: the pipeline's own scheduler
    guidance: float = 7.5
    stock: bool = True
    rows_per_call: int = 64
    height: int | None = None
    width: int | None = None
    no_cfg: bool = False  # also the early-behaviour rows "no_cfg:k" and "no_cfg_only:k" for every start k

    def __post_init__(self):
        if not self.seeds:
            raise ValueError(f"cell {self.name}: seeds must not be empty")
        if not self.prompts:
            raise ValueError(f"cell {self.name}: prompts must not be empty")
        for k in self.starts:
            if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < self.steps:
                raise ValueError(
                    f"cell {self.name}: start step {k!r} must be an int from 1 to {self.steps - 1} (steps={self.steps})"
                )
        if len(set(self.starts)) != len(self.starts):
            raise ValueError(f"cell {self.name}: starts hold duplicates")
        if self.sampler is not None:
            from ..lab.config import SCHEDULERS

            if self.sampler not in SCHEDULERS:
                raise ValueError(f"cell {self.name}: sampler {self.sampler!r} is not one of {', '.join(SCHEDULERS)}")
        if self.rows_per_call < 1:
            raise ValueError(f"cell {self.name}: rows_per_call must be >= 1")

    @property
    def rows(self) -> list[str | int]:
        """The row labels of one seed: ``"none"``, ``"stock"`` (if on), the start steps, then (``no_cfg``) the
        early-behaviour rows of every start."""
        early = [early_row(kind, k) for kind in (NO_CFG, NO_CFG_ONLY) for k in self.starts] if self.no_cfg else []
        return [NONE] + ([STOCK] if self.stock else []) + list(self.starts) + early

    def meta(self) -> dict:
        """The settings written to ``cell.json`` (a field at its default that older cells lack is left out, so
        that their folders still resume)."""
        meta = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}
        if not self.no_cfg:
            meta.pop("no_cfg")
        return meta

    def prompt_of(self, j: int) -> str:
        return self.prompts[j % len(self.prompts)]

    def chunks(self) -> list[list[int]]:
        """Seed indices per pipeline call."""
        per = max(1, self.rows_per_call // len(self.rows))
        idx = list(range(len(self.seeds)))
        return [idx[a : a + per] for a in range(0, len(idx), per)]


def set_sampler(pipe, name: str | None) -> None:
    """Replace ``pipe.scheduler`` by the lab's scheduler ``name`` built from the pipeline's config."""
    if name is None:
        return
    import diffusers

    from ..lab.config import SCHEDULERS

    if name not in SCHEDULERS:
        raise ValueError(f"sampler {name!r} is not one of {', '.join(SCHEDULERS)}")
    import inspect

    cls_name, extra, _ = SCHEDULERS[name]
    cls = getattr(diffusers, cls_name)
    extra = dict(extra)
    if "clip_sample" not in pipe.scheduler.config and "clip_sample" in inspect.signature(cls.__init__).parameters:
        # Stable Diffusion's own scheduler config says clip_sample=False; a config without the key (the embedded
        # model's PNDM config) would give DDIM/DDPM their default True, which clips the predicted latents to [-1, 1]
        # and wrecks the images.
        extra["clip_sample"] = False
    pipe.scheduler = cls.from_config(pipe.scheduler.config, **extra)


def to_uint8(images) -> np.ndarray:
    return (np.clip(np.asarray(images), 0, 1) * 255).round().astype(np.uint8)


def render_rows(pipe, prompts: list[str], negative: str, rows: list[str | int], seeds: list[int], steps: int,
                guidance: float, height=None, width=None, callback=None) -> np.ndarray:
    """One image per row (uint8, N x H x W x 3). Row ``r`` renders ``prompts[r]`` from seed ``seeds[r]``'s noise;
    ``rows[r]`` is ``"none"``, ``"stock"``, a start step (int), an early-behaviour row (``"no_cfg:k"``,
    ``"no_cfg_only:k"``: the pipeline is given the prompt as that row's negative, so step 0 runs without CFG, and the
    callback keeps CFG off until step k), or ``"callback"`` (the row is left to ``callback``, which then applies to
    every row: give it only for batches of such rows)."""
    import torch

    from ..callback import DelayedNegative

    kinds = [(r, None) if r == "callback" else parse_row(r) for r in rows]
    if callback is None and any(k not in (NONE, STOCK) for k, _ in kinds):
        callback = DelayedNegative(segments=[_row_segments(kind, k, negative) for kind, k in kinds])
    own = [negative if kind == STOCK else p if kind in (NO_CFG, NO_CFG_ONLY) else "" for (kind, _), p in zip(kinds, prompts)]
    with torch.no_grad():
        out = pipe(
            list(prompts),
            negative_prompt=own,
            num_inference_steps=steps,
            guidance_scale=guidance,
            height=height,
            width=width,
            generator=[torch.Generator("cpu").manual_seed(int(s)) for s in seeds],
            callback_on_step_end=callback,
            output_type="np",
        )
    return to_uint8(out.images)


def _row_segments(kind: str, k: int | None, negative: str) -> list:
    """The callback segments of one row (``render_rows``)."""
    from ..schedule import CONDITIONAL

    if kind == "delayed":
        return [(Point("step", k), negative)]
    if kind in (NO_CFG, NO_CFG_ONLY):
        return [(Point("step", 0), CONDITIONAL), (Point("step", k), negative if kind == NO_CFG else "")]
    return []


Scorer = Callable[[list[np.ndarray], list[str]], list[dict]]


def distances(images: np.ndarray, refs: np.ndarray) -> list[dict]:
    from ..lab import metrics as M

    return [{"pixel": M.pixel_distance(a, b), "ssim": M.ssim_distance(a, b)} for a, b in zip(images, refs)]


def _atomic_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _atomic_npz(path: Path, **arrays) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def run_cell(pipe, cell: Cell, out: Path, scorer: Scorer, progress: bool = False, log=print,
             reverse: bool = False) -> list[dict]:
    """Run (or resume) ``cell``; return one record per image: seed, prompt, row, scores and distances to the
    seed's ``none`` image. ``reverse`` walks the chunks from the end (two processes, one each way, share a cell)."""
    set_sampler(pipe, cell.sampler)
    folder = Path(out) / cell.name
    folder.mkdir(parents=True, exist_ok=True)
    meta = cell.meta()
    meta_path = folder / "cell.json"
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if old != meta:
            raise ValueError(f"{folder} holds a different cell (settings changed): remove it or use another out folder")
    else:
        _atomic_json(meta_path, meta)
    chunks = cell.chunks()
    t0, done_now = time.perf_counter(), 0
    order = list(enumerate(chunks))
    for c, idx in (order[::-1] if reverse else order):  # reverse: a second process can work from the other end
        path = folder / f"chunk-{c:04d}.json"
        if path.exists():
            continue
        rows, prompts, seeds = [], [], []
        for j in idx:
            for r in cell.rows:
                rows.append(r)
                prompts.append(cell.prompt_of(j))
                seeds.append(cell.seeds[j])
        images = render_rows(pipe, prompts, cell.negative, rows, seeds, cell.steps, cell.guidance, cell.height, cell.width)
        scores = scorer(list(images), prompts)
        per = len(cell.rows)
        refs = np.repeat(images[::per], per, axis=0)
        dist = distances(images, refs)
        records = [
            {"seed": s, "prompt": p, "row": r, **sc, **d}
            for s, p, r, sc, d in zip(seeds, prompts, rows, scores, dist)
        ]
        _atomic_npz(folder / f"chunk-{c:04d}.npz", images=images)
        _atomic_json(path, records)
        done_now += 1
        if progress:
            el = time.perf_counter() - t0
            log(f"  {cell.name}: chunk {c + 1}/{len(chunks)} ({len(images)} images) {el:.0f}s, "
                f"~{el / done_now * (len(chunks) - c - 1):.0f}s left")
    return load_cell(out, cell.name)


def run_auto_chunks(pipe, cell: Cell, folder: Path, per: int, make_callback: Callable, scorer: Scorer,
                    none_images: dict, log=print, extra: dict | None = None) -> list[dict]:
    """``AutoDelayedNegative`` on every seed of ``cell``, ``per`` images per batched call, resumable: one
    ``chunk-NNNN.json`` per call (written atomically; existing chunks are kept). ``make_callback()`` builds the
    callback of one call; ``none_images[(seed, prompt)]`` is the no-negative twin the change is measured against.
    Each chunk holds the records (row ``"auto"``, the chosen ``step``, scores, distances), the callback's
    ``last_cost`` and ``last_signals``, the seconds of the call and ``extra``. Returns the chunks, in order."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    idx = list(range(len(cell.seeds)))
    n_chunks = -(-len(idx) // per)
    for a in range(0, len(idx), per):
        path = folder / f"chunk-{a // per:04d}.json"
        if path.exists():
            continue
        chunk = idx[a : a + per]
        seeds = [cell.seeds[j] for j in chunk]
        prompts = [cell.prompt_of(j) for j in chunk]
        cb = make_callback()
        t0 = time.perf_counter()
        with torch.no_grad():
            images = render_rows(pipe, prompts, cell.negative, ["callback"] * len(chunk), seeds, cell.steps,
                                 cell.guidance, cell.height, cell.width, callback=cb)
        sec = time.perf_counter() - t0
        scores = scorer(list(images), prompts)
        dist = distances(images, np.stack([none_images[(s, p)] for s, p in zip(seeds, prompts)]))
        rows = [{"seed": s, "prompt": p, "row": "auto", "step": k, **x, **d}
                for s, p, k, x, d in zip(seeds, prompts, cb.last_steps, scores, dist)]
        _atomic_json(path, {"records": rows, "cost": cb.last_cost, "seconds": sec,
                            "signals": getattr(cb, "last_signals", None), **(extra or {})})
        log(f"auto {cell.name} chunk {a // per + 1}/{n_chunks}: {sec:.0f}s, extra UNet rows {cb.last_cost['extra']:.3f}")
    return [json.loads(p.read_text()) for p in sorted(folder.glob("chunk-*.json"))]


def load_cell(out: Path, name: str) -> list[dict]:
    folder = Path(out) / name
    records: list[dict] = []
    for path in sorted(folder.glob("chunk-*.json")):
        records.extend(json.loads(path.read_text()))
    return records


def load_images(out: Path, name: str) -> np.ndarray:
    folder = Path(out) / name
    return np.concatenate([np.load(p)["images"] for p in sorted(folder.glob("chunk-*.npz"))])


def load_signals(out: Path, sampler: str = "ddim", steps: int = 20) -> dict:
    """The per-step signal recordings of ``python -m negdelay.study signals`` (``<out>/signals-<sampler>-<steps>``),
    chunks joined along the seeds."""
    folder = Path(out) / f"signals-{sampler}-{steps}"
    parts = [dict(np.load(p)) for p in sorted(folder.glob("chunk-*.npz"))]
    if not parts:
        raise FileNotFoundError(f"no signal recordings in {folder} (run: python -m negdelay.study signals)")
    keep = {"iter_steps", "sigmas"}
    return {k: (parts[0][k] if k in keep else np.concatenate([p[k] for p in parts])) for k in parts[0]}


# ------------------------------------------------------------------------------------------------------- scoring
def toy_scorer(images: list[np.ndarray], prompts: list[str]) -> list[dict]:
    """The toy world's judge: ``present`` = the dot is there; ``correct`` = colour and shape as the prompt asks."""
    from ..lab import metrics as M

    out = []
    for im, p in zip(images, prompts):
        d = M.detect(im, p)
        ok = [v for v in (d["colour_ok"], d["shape_ok"]) if v is not None]
        out.append({"present": d["dot"], "colour_ok": d["colour_ok"], "shape_ok": d["shape_ok"],
                    "correct": all(ok) if ok else None})
    return out


@dataclass
class ClipScorer:
    """CLIP presence scoring for real checkpoints (no ground truth): for each image, the probability CLIP gives the
    negative's text against a contrast text (``P(negative | {negative, contrast})`` from the logits), and the
    cosine similarity to the prompt. ``present`` is ``p > 0.5``;
    ``correct`` is the prompt similarity above ``prompt_floor`` (None when no floor is given)."""

    model_path: str
    negative: str
    contrast: str = "a photo"
    device: str = "cpu"
    prompt_floor: float | None = None
    _model: object = field(default=None, repr=False)
    _processor: object = field(default=None, repr=False)
    _text_cache: dict = field(default_factory=dict, repr=False)

    def load(self):
        if self._model is None:
            from transformers import CLIPModel, CLIPProcessor

            path = Path(os.path.expanduser(self.model_path))
            local = path.is_dir()
            try:
                self._model = CLIPModel.from_pretrained(str(path) if local else self.model_path,
                                                        local_files_only=local).eval().to(self.device)
                self._processor = CLIPProcessor.from_pretrained(str(path) if local else self.model_path,
                                                                local_files_only=local)
            except Exception as e:  # noqa: BLE001 - one clear message
                raise ValueError(f"clip model {self.model_path!r} could not be loaded: {type(e).__name__}: {e}") from None
        return self._model, self._processor

    def _text(self, texts: list[str]):
        import torch

        key = tuple(texts)
        if key not in self._text_cache:
            model, proc = self.load()
            enc = proc.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt").to(self.device)
            with torch.no_grad():
                t = model.get_text_features(**enc)
            t = t if isinstance(t, torch.Tensor) else t.pooler_output
            self._text_cache[key] = t / t.norm(dim=-1, keepdim=True)
        return self._text_cache[key]

    def __call__(self, images: list[np.ndarray], prompts: list[str]) -> list[dict]:
        import torch

        model, proc = self.load()
        with torch.no_grad():
            pix = proc.image_processor(images=[np.asarray(im) for im in images], return_tensors="pt")["pixel_values"]
            f = model.get_image_features(pixel_values=pix.to(self.device))
            f = f if isinstance(f, torch.Tensor) else f.pooler_output
            f = f / f.norm(dim=-1, keepdim=True)
        pair = self._text([self.negative, self.contrast])
        scale = float(model.logit_scale.detach().exp())
        probs = torch.softmax(scale * f @ pair.T, dim=-1)[:, 0]
        out = []
        for j, p in enumerate(prompts):
            sim = float(f[j] @ self._text([p])[0])
            out.append({"present": bool(probs[j] > 0.5), "presence": float(probs[j]), "prompt_sim": sim,
                        "correct": None if self.prompt_floor is None else sim >= self.prompt_floor})
        return out
