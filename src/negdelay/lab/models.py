"""Loading a pipeline from the lab's settings: the embedded toy model, a diffusers folder or hub id, a single-file
checkpoint; textual inversions; a scheduler by name; device and dtype. Every failure is a ``LabError`` that says what
was wrong and what is allowed."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .config import SCHEDULERS, TOY, Common


class LabError(Exception):
    """An error the CLI prints as one clear message (exit code 2), never a traceback."""


@dataclass
class Loaded:
    pipe: object
    model_name: str  # for the infotext: the model's short name
    sampler: str  # A1111 sampler name
    clip: object = None  # a metrics.ClipScore when a CLIP model is given


SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")


def _hub_id(model: str) -> bool:
    """``owner/name`` as the hub spells ids (and not a path that merely does not exist)."""
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*", model)) and not model.endswith(SINGLE_FILE_SUFFIXES)


def _quiet() -> None:
    """No per-component loading bars or deprecation chatter: the lab shows its own progress."""
    import warnings

    from diffusers.utils import logging as dlog

    dlog.disable_progress_bar()
    dlog.set_verbosity_error()
    try:
        from transformers.utils import logging as tlog

        tlog.disable_progress_bar()
        tlog.set_verbosity_error()
    except ImportError:
        pass
    warnings.filterwarnings("ignore", category=FutureWarning, module="diffusers")
    warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)  # we say why it fails


def _torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def load(cfg: Common):
    """The pipeline ``cfg`` names, ready to run (progress bar off, eval mode)."""
    import torch

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    dtype = _torch_dtype(cfg.dtype)
    _quiet()
    model = cfg.model
    if model == TOY:
        from .. import toy

        try:
            pipe = toy.load_pipeline(device="cpu", dtype=dtype)
        except FileNotFoundError as e:
            raise LabError(f"model 'toy': {e}") from None
        name = "negdelay-toy"
    else:
        pipe, name = _load_external(cfg, dtype)
    _set_scheduler(pipe, cfg.scheduler)
    for ti in cfg.textual_inversion:
        _load_ti(pipe, ti.file, ti.token)
    try:
        pipe = pipe.to(cfg.device)
    except (RuntimeError, AssertionError, AttributeError, ValueError) as e:
        raise LabError(f"device {cfg.device!r} is not usable here: {e}") from None
    for part in ("unet", "vae", "text_encoder", "text_encoder_2", "transformer"):
        m = getattr(pipe, part, None)
        if m is not None and hasattr(m, "eval"):
            m.eval()
    pipe.set_progress_bar_config(disable=True)
    return Loaded(pipe, name, sampler_name(pipe, cfg.scheduler))


def _load_external(cfg: Common, dtype):
    from diffusers import DiffusionPipeline, StableDiffusionPipeline

    model = cfg.model
    path = Path(os.path.expanduser(model))
    if path.is_file() or model.endswith(SINGLE_FILE_SUFFIXES):
        if not path.is_file():
            raise LabError(f"model: checkpoint file {model!r} does not exist")
        if path.suffix != ".safetensors":
            if not cfg.allow_pickle:
                raise LabError(
                    f"model: {path.name} is a pickle checkpoint ({path.suffix}), which can run code when loaded; "
                    "use a .safetensors file, or pass --allow-pickle if you trust it"
                )
        kwargs = dict(torch_dtype=dtype, load_safety_checker=False)  # from_single_file still reads torch_dtype
        if cfg.single_file_config:
            kwargs["config"] = cfg.single_file_config
        try:
            pipe = StableDiffusionPipeline.from_single_file(str(path), **kwargs)
        except Exception as e:  # noqa: BLE001 - every loader failure becomes one clear message
            why, architecture = checkpoint_failure(path, e)
            raise LabError(
                f"model: could not load single-file checkpoint {str(path)!r}: {why}"
                + (" (offline, give single_file_config: a local diffusers folder of the same architecture)"
                   if architecture and not cfg.single_file_config else "")
            ) from None
        return pipe, path.stem
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise LabError(f"model: folder {model!r} is not a diffusers pipeline folder (no model_index.json)")
        source, local = str(path), True
    elif not _hub_id(model):
        raise LabError(
            f"model: {model!r} does not exist: give 'toy', a diffusers folder, a single-file checkpoint "
            "(.safetensors; .ckpt with --allow-pickle) or a hub id (owner/name)"
        )
    else:
        source, local = model, False
    try:
        pipe = DiffusionPipeline.from_pretrained(
            source, torch_dtype=dtype, safety_checker=None, requires_safety_checker=False, local_files_only=local
        )
    except Exception as e:  # noqa: BLE001
        raise LabError(f"model: could not load {source!r}: {type(e).__name__}: {_short(e)}") from None
    from ..families import family_for

    if family_for(pipe) is None:
        raise LabError(f"model: {type(pipe).__name__} is not a pipeline family the delayed-negative callback serves")
    return pipe, path.name if local else model.split("/")[-1]


def checkpoint_failure(path: Path, error: BaseException) -> tuple[str, bool]:
    """Why loading a single-file checkpoint failed, in words, from the root of the exception chain (diffusers
    wraps torch's reason into "Unable to load weights ..."); and whether it is about telling the architecture."""
    chain: list[BaseException] = []
    e: BaseException | None = error
    while e is not None and e not in chain:
        chain.append(e)
        e = e.__cause__ or e.__context__
    root = chain[-1]
    text = " ".join(str(root).split())
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        size, head = -1, b""
    if size == 0:
        return "the file is empty", False
    if isinstance(root, EOFError) or "Ran out of input" in text:
        return "the file ends early (cut short by a copy or download?)", False
    what = re.search(r"GLOBAL ([\w.]+)", text)
    if what:
        return (f"it holds Python objects besides tensors (it calls {what.group(1)}), which loading could run as "
                "code; pickles are read with torch's weights-only loader, which refuses them: convert the file to "
                ".safetensors where you trust it"), False
    if head.startswith(b"PK\x03\x04") and ("zip" in text.lower() or "central directory" in text):
        return f"its zip archive (torch.save's format) is damaged or cut short: {_short(root, 120)}", False
    if head[:1] == b"\x80" and ("Weights only load failed" in text or "Unsupported operand" in text
                                or type(root).__name__ == "UnpicklingError"):
        return (f"it is a pickle that torch's weights-only loader cannot read ({_short(root, 120)}): not a "
                "torch.save checkpoint of tensors; convert it to .safetensors where you trust it"), False
    if not head.startswith(b"PK") and head[:1] != b"\x80":
        return f"it is not a PyTorch checkpoint: neither a zip archive nor a pickle (first bytes {head!r})", False
    if type(root).__name__ in ("LocalEntryNotFoundError", "OfflineModeIsEnabled") or "outgoing traffic" in text:
        return ("diffusers could not tell which model it is from its weights without downloading a config "
                "(are these Stable Diffusion 1.x/2.x weights?)"), True
    return f"{type(root).__name__}: {_short(root)}", True


def _short(e: Exception, n: int = 300) -> str:
    s = " ".join(str(e).split())
    return s if len(s) <= n else s[: n - 3] + "..."


def _set_scheduler(pipe, name: str | None) -> None:
    if name is None:
        return
    import diffusers

    cls_name, extra, _ = SCHEDULERS[name]
    cls = getattr(diffusers, cls_name)
    try:
        pipe.scheduler = cls.from_config(pipe.scheduler.config, **extra)
    except Exception as e:  # noqa: BLE001
        raise LabError(f"scheduler {name!r} ({cls_name}) cannot be built from this model's scheduler config: {_short(e)}") from None


def sampler_name(pipe, name: str | None) -> str:
    if name is not None:
        return SCHEDULERS[name][2]
    cls = type(pipe.scheduler).__name__
    karras = bool(getattr(pipe.scheduler.config, "use_karras_sigmas", False))
    for key, (cname, extra, a1111) in SCHEDULERS.items():
        if cname == cls and bool(extra.get("use_karras_sigmas", False)) == karras:
            return a1111
    return cls


def _load_ti(pipe, file: str, token: str) -> None:
    path = Path(os.path.expanduser(file))
    if not path.is_file():
        raise LabError(f"textual_inversion: file {file!r} does not exist")
    if not hasattr(pipe, "load_textual_inversion"):
        raise LabError(f"textual_inversion: {type(pipe).__name__} cannot load textual inversions")
    if path.suffix != ".safetensors":
        raise LabError(f"textual_inversion: {path.name}: only .safetensors files are loaded (pickle files can run code)")
    try:
        pipe.load_textual_inversion(str(path), token=token)
    except Exception as e:  # noqa: BLE001
        raise LabError(f"textual_inversion {file}:{token}: could not load: {_short(e)}") from None


def check_ti_tokens(cfg: Common, negatives: list[str]) -> None:
    """Every textual-inversion token must occur in a negative: otherwise the file is loaded for nothing, which is
    almost always a typo in the token or the negative."""
    for ti in cfg.textual_inversion:
        if not any(ti.token in n for n in negatives):
            raise LabError(
                f"textual_inversion: token {ti.token!r} (from {ti.file}) does not occur in any negative prompt "
                f"({'; '.join(repr(n) for n in negatives)}); write it into the negative, e.g. '{ti.token}, ...'"
            )


def fingerprint(cfg: Common) -> str:
    """Identifies the model files a run used (names, sizes, modification times), so that resuming a run after the
    model changed (e.g. the toy model re-exported) is refused instead of mixing images of two models."""
    import hashlib

    paths: list[Path] = []
    if cfg.model == TOY:
        from .. import toy

        paths.append(Path(toy.MODEL_DIR))
    elif Path(os.path.expanduser(cfg.model)).exists():
        paths.append(Path(os.path.expanduser(cfg.model)))
    paths += [Path(os.path.expanduser(t.file)) for t in cfg.textual_inversion]
    h = hashlib.sha256()
    for root in paths:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for f in files:
            st = f.stat()
            h.update(f"{f.relative_to(root) if root.is_dir() else f.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16] if paths else cfg.model
