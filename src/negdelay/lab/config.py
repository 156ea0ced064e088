"""The lab's settings: pydantic models shared by the CLI flags and the YAML configs.

Every command's settings are one flat model (``CompareConfig``, ``SweepConfig``, ``GenerateConfig``). A YAML file
(``--config x.yaml``, read with ``yaml.safe_load``) gives any of its fields; flags given on the command line override
them; the result is validated here. Unknown keys are refused (``extra="forbid"``); errors name the field and what it
allows (``ConfigError``).

Schedules are written as text, the same in YAML and on the command line::

    step:4            the negative from progress-bar step 4 (0-based) on
    fraction:0.25     from step int(0.25 * steps) on
    sigma:2.5         from the first step whose noise level is <= 2.5
    step:4..12        from step 4, back to no negative from step 12 on (a stop of any kind)
    4                 short for step:4

A sweep's starts are one kind and many values: ``step:1,2,3,4`` or ``step:1-10`` or ``fraction:0.1,0.2,0.3``.
Seeds: a list of ints, or text ``"0-7"`` (eight seeds) / ``"0,3,5"``; a single number is that one seed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_serializer,
                      model_validator)

from ..schedule import ALL_KINDS as KINDS
from ..schedule import BEFORE, Point, check_point_value

# name -> (diffusers class, extra config, A1111 sampler name)
SCHEDULERS: dict[str, tuple[str, dict, str]] = {
    "pndm": ("PNDMScheduler", {}, "PLMS"),
    "ddim": ("DDIMScheduler", {}, "DDIM"),
    "ddpm": ("DDPMScheduler", {}, "DDPM"),
    "euler": ("EulerDiscreteScheduler", {}, "Euler"),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}, "Euler a"),
    "heun": ("HeunDiscreteScheduler", {}, "Heun"),
    "lms": ("LMSDiscreteScheduler", {}, "LMS"),
    "dpm++2m": ("DPMSolverMultistepScheduler", {}, "DPM++ 2M"),
    "dpm++2m_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}, "DPM++ 2M Karras"),
    "dpm++sde": ("DPMSolverSDEScheduler", {}, "DPM++ SDE"),
    "kdpm2": ("KDPM2DiscreteScheduler", {}, "DPM2"),
    "kdpm2_a": ("KDPM2AncestralDiscreteScheduler", {}, "DPM2 a"),
    "unipc": ("UniPCMultistepScheduler", {}, "UniPC"),
    "deis": ("DEISMultistepScheduler", {}, "DEIS"),
}
SchedulerName = Literal[
    "pndm", "ddim", "ddpm", "euler", "euler_a", "heun", "lms", "dpm++2m", "dpm++2m_karras", "dpm++sde", "kdpm2",
    "kdpm2_a", "unipc", "deis",
]
DType = Literal["float32", "float16", "bfloat16"]
Detector = Literal["auto", "toy", "none"]

TOY = "toy"


class ConfigError(ValueError):
    """Bad settings; the message names each field and what it allows."""


# ----------------------------------------------------------------------------------------------------- parsing helpers
#: the most inference steps a run takes
MAX_STEPS = 1000
#: the most seeds one run takes (a range is counted before it is built: '0-99999999999' is an error, not a MemoryError)
MAX_SEEDS = 100_000
#: the largest seed: what ``torch.Generator.manual_seed`` takes (an unsigned 64-bit integer)
MAX_SEED = 2**64 - 1


def _too_many(count: int, what: str) -> ValueError:
    return ValueError(f"seeds: {what} is {count} seeds; a run takes at most {MAX_SEEDS} (MAX_SEEDS)")


def _check_seed(s: Any) -> int:
    if isinstance(s, bool) or not isinstance(s, int) or s < 0:
        raise ValueError(f"seeds must be ints >= 0, got {s!r}")
    if s > MAX_SEED:
        raise ValueError(f"seed {s} is too large: a seed is at most {MAX_SEED} (2**64 - 1, what torch takes)")
    return int(s)


def _seed_ranges(text: str) -> list[tuple[int, int]]:
    """``"0-3,8"`` -> ``[(0, 3), (8, 8)]``, each checked; the number of seeds is counted here, before any list of
    them is built."""
    ranges: list[tuple[int, int]] = []
    for part in text.replace(" ", "").split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ValueError(f"seeds: cannot read {part!r}; write e.g. '0-7', '0,3,5' or '0-3,8'")
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if b < a:
            raise ValueError(f"seeds: range {part!r} runs backwards")
        ranges.append((_check_seed(a), _check_seed(b)))
    count = sum(b - a + 1 for a, b in ranges)
    if count > MAX_SEEDS:
        raise _too_many(count, repr(text))
    return ranges


def parse_seeds(value: Any) -> list[int]:
    """``[0, 1, 5]``, ``"0-7"`` (eight seeds), ``"0,3,5"``, ``"0-3,8"``; a single number is that one seed
    (the same in YAML and on the command line). At most ``MAX_SEEDS`` seeds, each at most ``MAX_SEED``."""
    if isinstance(value, bool):
        raise ValueError("seeds: give a list of ints, or text like '0-7' / '0,3,5'")
    if isinstance(value, int):
        value = [value]
    if isinstance(value, str):
        value = [s for a, b in _seed_ranges(value) for s in range(a, b + 1)]
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_SEEDS:
            raise _too_many(len(value), "the list")
        seeds = [_check_seed(s) for s in value]
        if not seeds:
            raise ValueError("seeds must not be empty")
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds hold duplicates")
        return seeds
    raise ValueError(f"seeds: give a list of ints, a count, or text like '0-7', got {value!r}")


def _point(kind: str, text: str, name: str) -> Point:
    try:
        value: float = int(text) if kind == "step" else float(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a {'whole number' if kind == 'step' else 'number'}") from None
    check_point_value(kind, value, name)
    return Point(kind, value)


Before = Literal["unconditional", "no_cfg"]


class Schedule(BaseModel):
    """A delayed negative's window: from ``start`` on, until ``stop`` (exclusive) if given; outside it, ``before``:
    CFG against the pipeline's own unconditional text (default) or CFG off (``no_cfg``)."""

    model_config = ConfigDict(frozen=True)
    start: Point
    stop: Point | None = None
    before: Before = "unconditional"

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        data = handler(self)
        if self.before == "unconditional":  # settings written before the option existed stay the same
            data.pop("before", None)
        return data

    @classmethod
    def parse(cls, text: Any) -> "Schedule":
        if isinstance(text, Schedule):
            return text
        if isinstance(text, dict):
            return cls._from_mapping(text)
        if isinstance(text, bool) or not isinstance(text, (str, int)):
            raise ValueError(f"a schedule is text like 'step:4', 'fraction:0.25', 'sigma:2.5' or 'step:4..12', got {text!r}")
        text = str(text).strip()
        m = re.fullmatch(r"(.*?)\s+before\s*=\s*(\S+)", text)
        if m:
            before = m.group(2)
            if before not in BEFORE:
                raise ValueError(f"schedule {text!r}: before must be one of {', '.join(BEFORE)}, got {before!r}")
            return cls.parse(m.group(1)).model_copy(update={"before": before})
        if re.fullmatch(r"\d+", text):
            text = f"step:{text}"
        parts = text.split("..")
        if len(parts) > 2:
            raise ValueError(f"schedule {text!r}: at most one '..' (start..stop)")
        points = []
        kind = None
        for j, part in enumerate(parts):
            m = re.fullmatch(r"(?:(\w+):)?\s*([-+0-9.eE]+)", part.strip())
            if not m:
                raise ValueError(
                    f"schedule {text!r}: write <kind>:<value>[..<value>] with kind one of {', '.join(KINDS)}, "
                    "e.g. 'step:4', 'fraction:0.25', 'sigma:2.5', 'step:4..12'"
                )
            k = m.group(1) or kind or "step"
            if k not in KINDS:
                raise ValueError(f"schedule {text!r}: kind {k!r} is not one of {', '.join(KINDS)}")
            kind = k
            points.append(_point(k, m.group(2), f"schedule {text!r} {'start' if j == 0 else 'stop'}"))
        start, stop = points[0], points[1] if len(points) > 1 else None
        if stop is not None and start.kind == stop.kind:
            before = stop.value <= start.value if start.kind != "sigma" else stop.value >= start.value
            if before:
                raise ValueError(f"schedule {text!r}: the stop must come after the start")
        return cls(start=start, stop=stop)

    @classmethod
    def _from_mapping(cls, data: dict) -> "Schedule":
        """YAML ``{schedule: "step:4..12", before: no_cfg}``."""
        unknown = sorted(set(data) - {"schedule", "before"})
        if unknown or "schedule" not in data:
            raise ValueError(f"a schedule mapping holds 'schedule' (e.g. 'step:4') and optionally 'before' "
                             f"({' or '.join(BEFORE)}), got keys {sorted(data)}")
        before = data.get("before", "unconditional")
        if before not in BEFORE:
            raise ValueError(f"schedule {data['schedule']!r}: before must be one of {', '.join(BEFORE)}, got {before!r}")
        return cls.parse(data["schedule"]).model_copy(update={"before": before})

    def text(self) -> str:
        def fmt(p: Point) -> str:
            return f"{p.kind}:{p.value:g}"

        window = fmt(self.start) + (f"..{self.stop.value:g}" if self.stop and self.stop.kind == self.start.kind
                                    else (f"..{fmt(self.stop)}" if self.stop else ""))
        return window + ("" if self.before == "unconditional" else f" before={self.before}")

    def slug(self) -> str:
        return re.sub(r"[^a-z0-9.]+", "-", self.text().replace("..", "-to-")).strip("-")


def _schedule(v: Any) -> Schedule:
    return Schedule.parse(v)


ScheduleField = Annotated[Schedule, BeforeValidator(_schedule)]


class Starts(BaseModel):
    """A sweep's start points: one kind, many values."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["step", "fraction", "sigma", "percent"]
    values: list[float]

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, v: Any) -> Any:
        if isinstance(v, str):
            m = re.fullmatch(r"\s*(\w+)\s*:\s*(.+)", v)
            if not m:
                raise ValueError(f"starts {v!r}: write <kind>:<values>, e.g. 'step:1-10', 'step:1,2,4', 'fraction:0.1,0.2'")
            kind, rest = m.group(1), m.group(2)
            if kind not in KINDS:
                raise ValueError(f"starts {v!r}: kind {kind!r} is not one of {', '.join(KINDS)}")
            values: list[float] = []
            for part in rest.replace(" ", "").split(","):
                r = re.fullmatch(r"(\d+)-(\d+)", part)
                if r and kind == "step":
                    a, b = int(r.group(1)), int(r.group(2))
                    if b > MAX_STEPS:  # checked before the range is built
                        raise ValueError(f"starts {v!r}: step {b} is past the longest run (steps are at most {MAX_STEPS})")
                    if b < a:
                        raise ValueError(f"starts {v!r}: range {part!r} runs backwards")
                    values.extend(range(a, b + 1))
                else:
                    try:
                        values.append(int(part) if kind == "step" else float(part))
                    except ValueError:
                        raise ValueError(f"starts {v!r}: cannot read {part!r} as a {kind}") from None
            return {"kind": kind, "values": values}
        return v

    @model_validator(mode="after")
    def _check(self) -> "Starts":
        if not self.values:
            raise ValueError("starts: give at least one value")
        for j, x in enumerate(self.values):
            if self.kind == "step" and float(x) != int(x):
                raise ValueError(f"starts: step {x} is not a whole number")
            check_point_value(self.kind, int(x) if self.kind == "step" else float(x), f"starts[{j}] ({self.kind})")
        if len(set(self.values)) != len(self.values):
            raise ValueError("starts hold duplicates")
        return self

    def points(self) -> list[Point]:
        return [Point(self.kind, int(x) if self.kind == "step" else float(x)) for x in self.values]

    def text(self) -> str:
        return f"{self.kind}:" + ",".join(f"{x:g}" for x in self.values)


class Pair(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    prompt: str = Field(min_length=1)
    negative: str = Field(min_length=1)
    name: str | None = None


class TextualInversion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    file: str
    token: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, v: Any) -> Any:
        if isinstance(v, str):
            file, sep, token = v.rpartition(":")
            if not sep or not file or not token:
                raise ValueError(f"textual_inversion {v!r}: write FILE:TOKEN, e.g. EasyNegativeV2.safetensors:EasyNegativeV2")
            return {"file": file, "token": token}
        return v


# ------------------------------------------------------------------------------------------------------------ models
class Common(BaseModel):
    """Settings every command shares: the model, the run, the output folder."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field(TOY, description="'toy' (the embedded model), a diffusers folder, a hub id, or a single-file checkpoint")
    single_file_config: str | None = Field(
        None, description="single-file checkpoints: a local diffusers folder (or hub id) whose component configs to use"
    )
    allow_pickle: bool = False
    textual_inversion: list[TextualInversion] = []
    scheduler: SchedulerName | None = None
    device: str = "cpu"
    dtype: DType = "float32"
    threads: int | None = Field(1, ge=1, description="torch CPU threads (None: leave torch's default)")
    steps: int = Field(20, ge=2, le=MAX_STEPS)
    guidance_scale: float = Field(7.5, gt=1.0)
    height: int | None = Field(None, ge=8, multiple_of=8)
    width: int | None = Field(None, ge=8, multiple_of=8)
    seeds: list[int] = [0, 1, 2, 3]
    batch_size: int = Field(0, ge=0, description="max image rows per pipeline call (0: no limit)")
    detector: Detector = "auto"
    clip_model: str | None = Field(None, description="a local CLIP folder (or hub id): adds CLIP similarity to prompt and negative")
    out: Path = Path("runs")
    progress: bool = True
    wait_lock: bool = Field(False, description="another process works in `out`: wait for it instead of stopping")

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, v):
        return parse_seeds(v)

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(r"(cpu|cuda|mps|xpu|npu)(:\d+)?", v):
            raise ValueError(f"device {v!r}: use cpu, cuda, cuda:N, mps, xpu or npu")
        return v

    def uses_detector(self) -> bool:
        return self.detector == "toy" or (self.detector == "auto" and self.model == TOY)


class CompareConfig(Common):
    """``negdelay compare``: no negative / stock negative / delayed negative(s), paired by seed."""

    pairs: list[Pair] = []
    schedules: list[ScheduleField] = []
    seeds_per_call: int | None = Field(None, ge=1, description="seeds rendered in one call (default: 4 on the toy model, else 1)")
    out: Path = Path("runs/compare")

    @model_validator(mode="after")
    def _defaults(self) -> "CompareConfig":
        if not self.pairs:
            if self.model != TOY:
                raise ValueError("pairs: give at least one prompt/negative pair (built-in pairs exist only for model 'toy')")
            self.pairs = list(TOY_PAIRS)
        if not self.schedules:
            self.schedules = default_schedules(self.steps, TOY_FRACTIONS if self.model == TOY else DEFAULT_FRACTIONS)
        if "seeds" not in self.model_fields_set and self.model == TOY:
            self.seeds = list(range(TOY_COMPARE_SEEDS))
        if self.seeds_per_call is None:
            self.seeds_per_call = 4 if self.model == TOY else 1
        if len({s.text() for s in self.schedules}) != len(self.schedules):
            raise ValueError("schedules hold duplicates")
        return self


class SweepConfig(Common):
    """``negdelay sweep``: many start points x many seeds, one batched call per seed."""

    prompt: str | None = None
    negative: str | None = None
    starts: Starts | None = None
    before: list[Before] = Field(["unconditional"], description="early behaviour of every start: one row per start "
                                 "and value (unconditional, no_cfg, or both)")
    seeds: list[int] = list(range(8))
    out: Path = Path("runs/sweep")

    @field_validator("before", mode="before")
    @classmethod
    def _before(cls, v):
        return [v] if isinstance(v, str) else v

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        data = handler(self)
        if data.get("before") == ["unconditional"]:  # settings written before the option existed stay the same
            data.pop("before")
        return data

    @model_validator(mode="after")
    def _defaults(self) -> "SweepConfig":
        if not self.before or len(set(self.before)) != len(self.before):
            raise ValueError(f"before: give unconditional, no_cfg or both, once each; got {self.before}")
        if self.prompt is None or self.negative is None:
            if self.model != TOY:
                raise ValueError("prompt and negative are required (defaults exist only for model 'toy')")
            self.prompt = self.prompt or TOY_PAIRS[0].prompt
            self.negative = self.negative or TOY_PAIRS[0].negative
        if self.starts is None:
            self.starts = Starts(kind="step", values=list(range(1, min(self.steps, 11))))
        return self


class GenerateConfig(Common):
    """``negdelay generate``: one prompt, one delayed negative, images out."""

    prompt: str = Field(min_length=1)
    negative: str | None = None
    schedule: ScheduleField | None = None
    a1111: str | None = Field(None, description="the negative in A1111 prompt-editing syntax, e.g. '[glasses:5]'")
    skip_early_cfg: float | None = Field(
        None, ge=0.0, le=1.0, description="with a1111: A1111's 'Ignore negative prompt during early sampling' "
        "(infotext 'Skip Early CFG'): CFG off for the steps s with s / steps <= this value")
    seeds: list[int] = [0]
    out: Path = Path("runs/generate")

    @model_validator(mode="after")
    def _one_form(self) -> "GenerateConfig":
        if self.skip_early_cfg is not None and self.a1111 is None:
            raise ValueError("skip_early_cfg: goes with a1111 (with negative + schedule, write 'step:4 before=no_cfg')")
        if self.a1111 is not None:
            if self.negative is not None or self.schedule is not None:
                raise ValueError("give either a1111 or negative + schedule, not both")
        elif self.negative is None:
            raise ValueError("negative: give the negative prompt (with schedule), or a1111")
        elif self.schedule is None:
            raise ValueError("schedule: give when the negative starts, e.g. 'step:4' or 'fraction:0.2'")
        return self


# Built-in pairs for the embedded model: prompts that do not name the dot, negatives naming it. Prompts that carry
# the dot without a negative on the shipped (second) model, so that every grid has something to remove: in the
# study's PNDM 20-step cell (200 seeds) the no-negative dot rate was blue triangle 15/16, yellow circle 13/17, green
# square 7/17, and red objects 0-2/17 (docs/toy-model.md, "Dot by colour").
TOY_PAIRS = (
    Pair(prompt="a yellow circle", negative="with a dot", name="yellow-circle"),
    Pair(prompt="a blue triangle", negative="with a dot", name="blue-triangle"),
    Pair(prompt="a green square", negative="with a dot", name="green-square"),
)
TOY_COMPARE_SEEDS = 8  # `negdelay compare` on the toy model without --seeds: seeds 0-7 (other models: Common's 0-3)
# Default schedules when none are given: these fractions of the run, as start steps, at least step 1 (a step-end
# callback cannot change step 0), without duplicates. From the second embedded model's study (docs/study.md,
# question 2): removal close to stock needs a start at 5-10 % of the run, and by 30 % a third of the removal is
# traded for less change -- so the two defaults show one of each.
TOY_FRACTIONS = (0.1, 0.3)  # steps 2 and 6 at 20 steps
DEFAULT_FRACTIONS = (0.2,)


def default_schedules(steps: int, fractions: tuple[float, ...]) -> list[Schedule]:
    """The start steps ``max(1, int(f * steps))`` for each fraction ``f`` (fewer when two coincide): every one of
    them falls inside a run of ``steps >= 2`` steps, so a default never fails for a step count the user chose."""
    starts = dict.fromkeys(max(1, int(f * steps)) for f in fractions)
    return [Schedule(start=Point("step", k)) for k in starts]

COMMANDS = {"compare": CompareConfig, "sweep": SweepConfig, "generate": GenerateConfig}


# ------------------------------------------------------------------------------------------------------- load + errors
def format_errors(err: ValidationError, source: str = "settings", cls: type[BaseModel] | None = None) -> str:
    """One line for one error (``invalid compare settings: steps: ...``), else a headed list, one field a line."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key" + (f" (allowed: {', '.join(sorted(cls.model_fields))})" if cls and len(e["loc"]) == 1 else "")
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if msg.startswith(f"{loc}: "):  # the message names its field already
            msg = msg[len(loc) + 2:]
        lines.append(f"{loc}: {msg}")
    if len(lines) == 1:
        return f"invalid {source}: {lines[0]}"
    return "\n  ".join([f"invalid {source}:"] + lines)


def read_yaml(path: Path) -> dict:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {str(p)!r} is not valid YAML: {_yaml_error(e)}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {str(p)!r} cannot be read: {getattr(e, 'strerror', None) or e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping of settings, got {type(data).__name__}")
    return data


def _yaml_error(e) -> str:
    """PyYAML's error in one line: the problem and where (its own text spans several lines, with a caret)."""
    problem = getattr(e, "problem", None)
    mark = getattr(e, "problem_mark", None)
    if not problem:
        return " ".join(str(e).split())
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    context = getattr(e, "context", None)
    return (f"{context}: " if context else "") + problem + where


def build(command: str, file: Path | None = None, **overrides) -> Common:
    """The validated settings of ``command``: YAML ``file`` (if given), then ``overrides`` that are not None."""
    cls = COMMANDS[command]
    data = read_yaml(file) if file is not None else {}
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_errors(e, f"{command} settings" + (f" (from {file})" if file else ""), cls)) from None
