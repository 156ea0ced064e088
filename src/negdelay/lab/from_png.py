"""``negdelay generate --from-png FILE``: the settings of an A1111-style PNG (its ``parameters`` text chunk).

A1111, Forge and this lab write the same infotext::

    a red circle
    Negative prompt: [blurry:with a dot:4]
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 3, Size: 32x32, Skip Early CFG: 0.2, ...

Read here: the prompt, the negative (A1111 prompt editing included: it becomes ``generate``'s ``a1111`` setting),
``Steps``, ``Sampler`` (+ ``Schedule type: Karras``), ``CFG scale``, ``Seed``, ``Size``, ``Skip Early CFG`` (A1111's
"Ignore negative prompt during early sampling": CFG off early) and, from this lab's own PNGs, ``Negative schedule``
(the delayed negative's schedule, e.g. ``step:3 = from step 3``, ``fraction:0.2 before=no_cfg = from step 4``).
Settings that change an A1111 image but have no counterpart here (hires fix, clip skip, variation seeds, ENSD, ...)
are listed in ``ignored``; A1111's own noise (its RNG) differs from diffusers', so an A1111 image is reproduced in
its settings, not pixel for pixel. A PNG written by this lab is reproduced exactly (same model and settings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .config import SCHEDULERS, ConfigError, Schedule
from .outputs import parse_infotext, read_parameters

TOY_MODEL_NAME = "negdelay-toy"
#: infotext keys that change an A1111 image and are not carried over
NOT_REPRODUCED = ("Clip skip", "ENSD", "Eta noise seed delta", "Hires upscale", "Hires steps", "Hires upscaler",
                  "Denoising strength", "Variation seed", "Variation seed strength", "Seed resize from", "NGMS",
                  "Refiner", "Refiner switch at", "RNG", "Eta", "Face restoration", "Lora hashes", "TI hashes",
                  "Noise multiplier", "Sigma min", "Sigma max", "Sigma rho", "s_churn", "s_tmin", "s_noise")
#: infotext keys read here, or that do not change the image
READ = ("Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size", "Model", "Model hash", "Negative schedule",
        "Unused negative", "Skip Early CFG", "Version")


@dataclass
class PngSettings:
    """What a PNG says: ``settings`` are ``GenerateConfig`` fields; ``model`` the model name it names."""

    settings: dict
    model: str | None
    ignored: list[str] = field(default_factory=list)


def _sampler(name: str, schedule_type: str | None) -> str:
    """The lab's scheduler key for an A1111 sampler name (``"DPM++ 2M"`` + ``Schedule type: Karras``)."""
    full = name if schedule_type in (None, "", "Automatic", "Normal") or name.endswith(schedule_type) else (
        f"{name} {schedule_type}")
    for key, (_, _, a1111) in SCHEDULERS.items():
        if a1111 == full:
            return key
    known = ", ".join(sorted({v[2] for v in SCHEDULERS.values()}))
    raise ConfigError(f"from-png: Sampler {full!r} has no counterpart here; known: {known}")


def _number(params: dict, key: str, kind):
    try:
        return kind(params[key])
    except (TypeError, ValueError):
        raise ConfigError(f"from-png: {key} {params[key]!r} is not a {kind.__name__}") from None


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", text)
    if not m:
        raise ConfigError(f"from-png: Size {text!r} is not WIDTHxHEIGHT")
    return int(m.group(1)), int(m.group(2))


def _negative(negative: str | None, params: dict) -> dict:
    """The negative as ``generate`` takes it: a lab schedule (``negative`` + ``schedule``), or ``a1111`` text."""
    lab = params.get("Negative schedule")
    if lab and lab not in ("none",) and not lab.startswith(("stock", "A1111")):
        text = lab.split(" = ")[0].strip()
        try:
            schedule = Schedule.parse(text)
        except ValueError as e:
            raise ConfigError(f"from-png: Negative schedule {lab!r}: {e}") from None
        if not negative:
            raise ConfigError(f"from-png: Negative schedule {lab!r} but no Negative prompt")
        return {"negative": negative, "schedule": schedule.text()}
    return {"a1111": "" if lab == "none" else (negative or "")}


def read_png(path: Path) -> PngSettings:
    """The ``generate`` settings of the A1111-style PNG at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"from-png: {str(path)!r} does not exist")
    try:
        text = read_parameters(path)
    except Exception as e:  # noqa: BLE001 - not an image, or a broken one
        raise ConfigError(f"from-png: {str(path)!r} cannot be read as an image: {type(e).__name__}: {e}") from None
    if not text:
        raise ConfigError(f"from-png: {str(path)!r} has no 'parameters' text (A1111 infotext)")
    prompt, negative, params = parse_infotext(text)
    missing = [k for k in ("Steps", "Sampler", "CFG scale", "Seed", "Size") if k not in params]
    if missing:
        raise ConfigError(f"from-png: {str(path)!r}: the infotext lacks {', '.join(missing)}")
    if not prompt.strip():
        raise ConfigError(f"from-png: {str(path)!r}: the infotext has no prompt")
    width, height = _size(params["Size"])
    settings = {
        "prompt": prompt,
        "steps": _number(params, "Steps", int),
        "scheduler": _sampler(params["Sampler"], params.get("Schedule type")),
        "guidance_scale": _number(params, "CFG scale", float),
        "seeds": [_number(params, "Seed", int)],
        "width": width,
        "height": height,
        **_negative(negative, params),
    }
    if "Skip Early CFG" in params:
        skip = _number(params, "Skip Early CFG", float)
        if skip > 0:
            if "a1111" not in settings:
                raise ConfigError("from-png: Skip Early CFG together with a lab Negative schedule is not supported")
            settings["skip_early_cfg"] = skip
    ignored = [k for k in params if k in NOT_REPRODUCED or k not in READ]
    return PngSettings(settings, params.get("Model"), ignored)


def settings_for(png: PngSettings, model_given: bool) -> dict:
    """The PNG's settings, plus the model where the PNG names the embedded model; a ``ConfigError`` when it names
    another model and none is given (an A1111 model name is not a file)."""
    out = dict(png.settings)
    if not model_given and png.model and png.model != TOY_MODEL_NAME:
        raise ConfigError(f"from-png: the PNG was made with model {png.model!r}: give --model (a diffusers folder, "
                          "a hub id or a single-file checkpoint)")
    return out
