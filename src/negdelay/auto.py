"""An automatic critical step: start the negative, per image, when the run itself says the negative has found
something to act on.

``pipe(prompt, callback_on_step_end=AutoDelayedNegative("with a dot"))``

How it decides (SD 1.x/2.x pipelines). While a row still guides against the pipeline's own unconditional embedding,
a forward hook on ``pipeline.unet`` keeps the inputs and outputs of the pipeline's own UNet call of each loop
iteration: the latents ``x`` the UNet saw, the timestep, ``eps_u`` (unconditional) and ``eps_c`` (the prompt). At
the step-end callback the negative's prediction ``eps_n`` is evaluated on the same ``x`` and timestep (one extra UNet
row per undecided image), and the row's *signal* is computed from the three predictions (``signal()`` below). The
first step boundary at which the signal reaches ``threshold`` switches that row to the negative from the next step
on. If it has not happened by ``max_fraction`` of the run, the row switches there (``fallback="max"``) or never
(``fallback="never"``).

Once a row is decided it costs nothing more; after every row is decided the hook is removed and the loop runs at
stock speed. ``last_steps`` holds the chosen start step of each row (``None``: never), ``last_cost`` the extra UNet
rows evaluated, next to the pipeline's own.

When a row switches at step ``k``, its output is bit-identical to ``DelayedNegative(negative, start_step=k)``: the
switch replaces the same rows with the same encoding (the family adapter's ``encode``), and the probe's UNet calls
change no state (tests/test_auto.py proves it against a callback-free reference).

With a ``detector`` (``AutoDelayedNegative(neg, detector=f)``) the rule is another one, "switch just before the
negative can no longer remove it": at each step end the probe's ``eps_n`` replaces the unconditional prediction in
the guidance (``eps_n + g (eps_c - eps_n)``), the clean image that prediction implies (``x0_prediction``) is decoded
by the pipeline's VAE, and ``f(images)`` scores the accessory in it (higher: more visible). While the negative can
still remove the accessory that score stays low; when it starts to rise by ``rise`` above its lowest value since
``min_step``, the row switches at the next step (``decide_rise``). Rows whose score never rises never get the
negative. Cost: one extra UNet row and one VAE decode per undecided row and step (rows stay undecided longer than
with the signal rule). ``threshold``, ``signal_kind``, ``when``, ``fallback`` and ``max_fraction`` are not used
then. Measured on the embedded model: docs/study.md.

The earliest step auto can choose is the first step after the first recorded UNet call: step 2 on first-order
schedulers (the hook is attached at the end of step 0, so step 1's state is the first one seen), step 1 on PNDM
(whose step 0 makes two UNet calls).
"""

from __future__ import annotations

import math
import threading

import torch
from diffusers.callbacks import PipelineCallback

from .callback import call_key
from .families import SD, run_facts

#: the signals ``signal()`` computes; the callback decides on one of them
SIGNALS = ("align", "focus", "cancel")
#: fitted on the shipped embedded model (the second, 2026-12-01; DDIM, 20 steps, 200 seeds; ``python -m negdelay.study
#: calibrate``, docs/study.md question 7). Measured: within one step of the per-image oracle on 38.7 % of the images in
#: sample, 28-30 % held out across seeds -- the signal does not find the critical step well; it switches a row when
#: the negative's change concentrates (``"focus"``), else at 0.8 of the run. (The first model's fit was align /
#: 0.2784 / latest / never: 30 % in sample.)
DEFAULT_SIGNAL = "focus"
DEFAULT_THRESHOLD = 0.4506
DEFAULT_MAX_FRACTION = 0.8
DEFAULT_WHEN = "first"
DEFAULT_FALLBACK = "max"
#: the detector rule's calibration (the same model, cell and seeds, the world's ``study.signals.dot_score`` as
#: detector): the rise of the accessory score above its lowest value since ``min_step`` that switches a row. In units
#: of that detector's score: another detector needs its own calibration. Measured (in sample / held out over seeds,
#: blocks folds): within one step of the oracle 40.0 % / 32-34 %. (First model: 0.22 from step 5, 57.6 %.)
DEFAULT_RISE = 0.24
DEFAULT_RISE_MIN_STEP = 2
#: the same with ``lookahead=True``: 60.0 % in sample / 54-56 % held out (first model: 0.36 from step 2, 69.7 %)
DEFAULT_LOOKAHEAD_RISE = 0.20
DEFAULT_LOOKAHEAD_MIN_STEP = 1


def signal(eps_u: torch.Tensor, eps_c: torch.Tensor, eps_n: torch.Tensor, kind: str = DEFAULT_SIGNAL) -> torch.Tensor:
    """One value per row from the three noise predictions ``(rows, C, H, W)`` of the same latents and timestep.

    - ``"align"``: cosine between what the negative adds to the unconditional prediction (``eps_n - eps_u``) and what
      the prompt adds (``eps_c - eps_u``), over the whole latent. It rises when the negative's text recognises what
      the prompt is rendering: the two then push the same way, and CFG with the negative cancels that part
      (Ban et al.'s neutralization).
    - ``"focus"``: how concentrated ``eps_n - eps_u`` is in space: the share of its energy in the top 5 % of latent
      positions (``0.05`` when spread evenly, up to 1 when in one spot).
    - ``"cancel"``: ``1 - |eps_c - eps_n| / |eps_c - eps_u|``: how much of the prompt's guidance direction the
      negative's prediction cancels, relative to the empty prompt's (0: as much as the empty prompt; 1: all).
    """
    if kind not in SIGNALS:
        raise ValueError(f"signal kind must be one of {SIGNALS}, got {kind!r}")
    d_n = (eps_n - eps_u).flatten(2).float()  # rows, C, HW
    if kind == "cancel":
        g = (eps_c - eps_u).flatten(1).float()
        c_n = (eps_c - eps_n).flatten(1).float()
        return 1.0 - c_n.norm(dim=1) / g.norm(dim=1).clamp_min(1e-12)
    if kind == "align":
        d_c = (eps_c - eps_u).flatten(2).float()
        a, b = d_n.flatten(1), d_c.flatten(1)
        return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)
    energy = (d_n**2).sum(1)  # rows, HW
    k = max(1, int(math.ceil(0.05 * energy.shape[1])))
    top = energy.topk(k, dim=1).values.sum(1)
    return top / energy.sum(1).clamp_min(1e-12)


def x0_prediction(scheduler, sample: torch.Tensor, timestep, eps: torch.Tensor) -> torch.Tensor:
    """The clean latents the (guided) prediction ``eps`` implies for the UNet input ``sample`` at ``timestep``:
    ``x0 = (x_t - sqrt(1 - a) eps) / sqrt(a)`` (``a``: ``scheduler.alphas_cumprod`` at the timestep, linearly
    interpolated for fractional timesteps), or ``sqrt(a) x_t - sqrt(1 - a) v`` for v-prediction. The UNet input is
    the variance-preserving ``x_t`` for DDIM/PNDM/DPM and for Euler-type schedulers after ``scale_model_input``."""
    acp = getattr(scheduler, "alphas_cumprod", None)
    if acp is None:
        raise TypeError(f"{type(scheduler).__name__} has no alphas_cumprod: cannot form the x0-prediction")
    t = float(timestep.flatten()[0]) if torch.is_tensor(timestep) else float(timestep)
    t = min(max(t, 0.0), len(acp) - 1.0)
    lo = int(math.floor(t))
    hi = min(lo + 1, len(acp) - 1)
    a = float(acp[lo]) + (t - lo) * (float(acp[hi]) - float(acp[lo]))
    x, e = sample.float(), eps.float()
    kind = getattr(scheduler.config, "prediction_type", "epsilon")
    if kind == "v_prediction":
        return math.sqrt(a) * x - math.sqrt(1.0 - a) * e
    if kind == "sample":
        return e
    return (x - math.sqrt(1.0 - a) * e) / math.sqrt(a)


def decide(signals, iteration_steps, n_steps: int, threshold: float = DEFAULT_THRESHOLD,
           max_fraction: float = DEFAULT_MAX_FRACTION, min_step: int = 1, fallback: str = DEFAULT_FALLBACK,
           when: str = DEFAULT_WHEN) -> int | None:
    """The start step ``AutoDelayedNegative`` chooses for one row, from its signal at each loop iteration.

    ``signals[i]`` is the signal of the state iteration ``i``'s UNet call saw (``None``: not seen; the callback never
    sees iteration 0, its hook is attached at the end of step 0). The signal *fires* at the first step boundary
    (the next iteration starts a new step ``s``, ``min_step <= s < int(max_fraction * n_steps)``) whose signal
    reaches ``threshold``. ``when="first"``: the row switches at that ``s``. ``when="latest"``: the signal only
    decides *whether* — a row whose signal fired switches at the latest start ``int(max_fraction * n_steps)``.
    A row whose signal has not fired by the latest start switches there (``fallback="max"``) or never
    (``"never"``). The study uses this to read the decision of any setting off a recorded no-negative trajectory.
    """
    max_step = max(1, int(max_fraction * n_steps))
    fired = False
    for i in range(len(iteration_steps) - 1):
        nxt = iteration_steps[i + 1]
        if nxt == iteration_steps[i] or nxt < min_step:
            continue
        if nxt >= max_step:
            return nxt if (fired or fallback == "max") else None
        if fired:
            continue
        v = signals[i]
        if v is not None and v >= threshold:
            if when == "first":
                return nxt
            fired = True
    return None


def decide_rise(scores, iteration_steps, n_steps: int, rise: float = DEFAULT_RISE,
                min_step: int = DEFAULT_RISE_MIN_STEP, lookahead: bool = False) -> int | None:
    """The start step of the detector rule for one row, from the accessory score of each loop iteration's
    negative-guided x0-prediction (``scores[i]``; ``None``: not seen).

    Only iterations at a step boundary whose next step ``s`` is ``>= min_step`` count. The row switches at the first
    such ``s`` whose iteration's score is at least ``rise`` above the lowest score counted so far (that iteration's
    included); never (``None``) if that does not happen before the last step.

    ``lookahead=True``: ``scores[i]`` is known at the end of the step before iteration ``i`` (the callback evaluates
    the state the next step will see), so iteration ``i`` counts when it starts a step ``s`` (``min_step <= s <
    n_steps``), and the row switches at ``s`` itself."""
    if lookahead:
        lowest = math.inf
        for i in range(1, len(iteration_steps)):
            s = iteration_steps[i]
            if s == iteration_steps[i - 1] or s < min_step or s > n_steps - 1 or scores[i] is None:
                continue
            lowest = min(lowest, scores[i])
            if scores[i] >= lowest + rise:
                return s
        return None
    lowest = math.inf
    for i in range(len(iteration_steps) - 1):
        nxt = iteration_steps[i + 1]
        if nxt == iteration_steps[i] or nxt < min_step or nxt > n_steps - 1:
            continue
        v = scores[i]
        if v is None:
            continue
        lowest = min(lowest, v)
        if v >= lowest + rise:
            return nxt
    return None


class _Recorder:
    """A forward hook on the UNet that keeps the last call's sample, timestep, kwargs and output -- of the UNet
    calls made by the thread that created it (another thread's pipeline may share the UNet)."""

    def __init__(self, unet):
        self.last = None
        self.muted = False
        self.thread = threading.get_ident()
        self.handle = unet.register_forward_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs, output):
        if self.muted or threading.get_ident() != self.thread:
            return None
        sample = args[0] if args else kwargs["sample"]
        timestep = args[1] if len(args) > 1 else kwargs["timestep"]
        out = output[0] if isinstance(output, tuple) else output.sample
        self.last = (sample, timestep, kwargs, out)
        return None

    def remove(self) -> None:
        if self.handle is not None:
            self.handle.remove()
            self.handle = None


def _check_negative(negative_prompt) -> None:
    if not isinstance(negative_prompt, str) or not negative_prompt:
        raise TypeError(f"negative_prompt must be a non-empty str, got {negative_prompt!r}")


def _check_signal_rule(threshold, signal_kind, max_fraction) -> None:
    """The signal rule's settings: its signal, threshold and latest start."""
    if signal_kind not in SIGNALS:
        raise ValueError(f"signal_kind must be one of {SIGNALS}, got {signal_kind!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or math.isnan(threshold):
        raise TypeError(f"threshold must be a number (inf: never fire, always the fallback), got {threshold!r}")
    if isinstance(max_fraction, bool) or not isinstance(max_fraction, (int, float)) or not 0.0 < max_fraction <= 1.0:
        raise ValueError(f"max_fraction must be a fraction in (0, 1], got {max_fraction!r}")


def _detector_rule(detector, rise, min_step, lookahead) -> tuple[float, int]:
    """The detector rule's settings checked, with their defaults: ``(rise, min_step)``."""
    if not isinstance(lookahead, bool):
        raise TypeError(f"lookahead must be a bool, got {lookahead!r}")
    if lookahead and detector is None:
        raise ValueError("lookahead=True needs a detector (it belongs to the detector rule)")
    if detector is not None and not callable(detector):
        raise TypeError(f"detector must be a callable images -> scores (or None), got {detector!r}")
    if rise is None:
        rise = DEFAULT_LOOKAHEAD_RISE if lookahead else DEFAULT_RISE
    if isinstance(rise, bool) or not isinstance(rise, (int, float)) or not math.isfinite(rise) or rise < 0:
        raise ValueError(f"rise must be a finite number >= 0, got {rise!r}")
    if min_step is None:
        min_step = 1 if detector is None else (DEFAULT_LOOKAHEAD_MIN_STEP if lookahead else DEFAULT_RISE_MIN_STEP)
    if isinstance(min_step, bool) or not isinstance(min_step, int) or min_step < 1:
        raise ValueError(f"min_step must be an int >= 1 (a step-end callback cannot change step 0), got {min_step!r}")
    return rise, min_step


def _check_modes(fallback, when) -> None:
    if fallback not in ("max", "never"):
        raise ValueError(f"fallback must be 'max' or 'never', got {fallback!r}")
    if when not in ("first", "latest"):
        raise ValueError(f"when must be 'first' or 'latest', got {when!r}")


class AutoDelayedNegative(PipelineCallback):
    """Delay the negative prompt to a start step chosen per image from the run's own noise predictions.

    Args:
        negative_prompt: the negative (one str for every row).
        threshold: the signal value at which a row switches (see ``signal``).
        signal_kind: ``"focus"`` (default), ``"align"`` or ``"cancel"``.
        max_fraction: the latest start, as a fraction of the run's steps (step ``int(f * N)``); a row whose signal has
            not fired by then switches there (``fallback="max"``) or never (``fallback="never"``).
        min_step: the earliest start step allowed (>= 1; default 1; with a ``detector`` ``DEFAULT_RISE_MIN_STEP``, or
            ``DEFAULT_LOOKAHEAD_MIN_STEP`` with ``lookahead``).
        detector: optional ``f(images) -> scores``: ``images`` a float array ``(rows, H, W, 3)`` in [0, 1] (decoded
            x0-predictions with the negative's guidance), one score per row, higher when the accessory is more
            visible. Selects the detector rule (module docstring, ``decide_rise``).
        rise: with a ``detector``: how far the score must rise above its lowest value since ``min_step`` (default
            ``DEFAULT_RISE``, or ``DEFAULT_LOOKAHEAD_RISE`` with ``lookahead``; calibrated for the embedded world's
            detector). Lower: earlier switches, more removal and more change; higher: the reverse.
        lookahead: with a ``detector``: at the end of each step, evaluate the state the *next* step will see (the
            step's output latents: two extra UNet rows, the prompt's and the negative's, per undecided row) instead
            of the state this step saw (one extra row, the pipeline's own prompt prediction reused): the decision
            is one step earlier, at twice the probe rows. No UNet hook then.

    After a call: ``last_steps`` (chosen start step per row, ``None`` = never), ``last_signals`` (per row and loop
    iteration, the signal of the state that iteration's UNet call saw; ``None`` where it was not probed), ``last_cost`` (``{"probe_rows", "pipeline_rows", "extra", "decodes"}``: extra
    UNet rows evaluated, the pipeline's own UNet rows, their ratio, and the detector rule's VAE decodes).
    """

    tensor_inputs = ["prompt_embeds"]
    family = SD()

    def __init__(
        self,
        negative_prompt: str,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        signal_kind: str = DEFAULT_SIGNAL,
        max_fraction: float = DEFAULT_MAX_FRACTION,
        min_step: int | None = None,
        fallback: str = DEFAULT_FALLBACK,
        when: str = DEFAULT_WHEN,
        detector=None,
        rise: float | None = None,
        lookahead: bool = False,
    ):
        super().__init__()
        _check_negative(negative_prompt)
        _check_signal_rule(threshold, signal_kind, max_fraction)
        rise, min_step = _detector_rule(detector, rise, min_step, lookahead)
        _check_modes(fallback, when)
        self.when = when
        self.negative_prompt = negative_prompt
        self.threshold = float(threshold)
        self.signal_kind = signal_kind
        self.max_fraction = float(max_fraction)
        self.min_step = min_step
        self.fallback = fallback
        self.detector = detector
        self.rise = float(rise)
        self.lookahead = lookahead
        if lookahead:  # the step's output latents: the state the next step sees
            self.tensor_inputs = ["prompt_embeds", "latents"]
        self._cache = None  # (key, encoded negative): replaced whole, read once per use (threads share it)
        self._calls: dict[tuple[int, int], _AutoCall] = {}  # the calls running now, by call_key
        self._last: dict[int, _AutoCall] = {}  # per thread: its last call (for last_steps, last_signals, last_cost)
        self.register_to_config(
            negative_prompt=negative_prompt, threshold=self.threshold, signal_kind=signal_kind,
            max_fraction=self.max_fraction, min_step=min_step, fallback=fallback, when=when,
            detector=None if detector is None else getattr(detector, "__name__", repr(detector)), rise=self.rise,
            lookahead=lookahead,
        )

    # -- results of the calling thread's last call ----------------------------------------------------------------
    def _mine(self, name):
        call = self._last.get(threading.get_ident())
        return None if call is None else getattr(call, name)

    @property
    def last_steps(self) -> list[int | None] | None:
        """Per row of this thread's last call: the chosen start step (None: never)."""
        return self._mine("decided")

    @property
    def last_signals(self) -> list[list[float | None]] | None:
        """Per row and loop iteration of this thread's last call: the signal (or detector score) probed."""
        return self._mine("signals")

    @property
    def last_cost(self) -> dict | None:
        """This thread's last call: extra UNet rows, the pipeline's own, their ratio, VAE decodes."""
        return self._mine("cost")

    # -- per call ----------------------------------------------------------------------------------------------
    def _begin(self, pipeline, kw) -> "_AutoCall":
        if not self.family.serves(pipeline):
            raise TypeError(
                f"AutoDelayedNegative serves Stable Diffusion 1.x/2.x pipelines ({', '.join(self.family.pipelines)}); "
                f"got {type(pipeline).__name__}"
            )
        c = _AutoCall()
        c.active = self.family.cfg_active(pipeline)
        emb = kw["prompt_embeds"]
        n = emb.shape[0] // 2 if c.active else emb.shape[0]  # guidance off: no unconditional half, nothing to do
        c.n = n
        run = run_facts(pipeline, need_sigmas=False)
        c.iter_steps = run.iteration_steps()
        c.n_steps = run.n_steps
        c.max_step = max(1, int(self.max_fraction * run.n_steps))
        if self.detector is not None:  # the detector rule may switch up to the last step
            c.max_step = run.n_steps
        c.lowest = [math.inf] * n
        c.original = emb[:n]
        key = (id(pipeline.text_encoder), pipeline.text_encoder.get_input_embeddings().weight._version,
               len(pipeline.tokenizer), emb.device, emb.dtype, emb.shape[1], getattr(pipeline, "clip_skip", None))
        cached = self._cache  # one read: another thread may replace it meanwhile
        if cached is None or cached[0] != key:
            cached = (key, self.family.encode(pipeline, [self.negative_prompt], kw)["prompt_embeds"])
            self._cache = cached
        c.negative = cached[1]
        c.decided = [None] * n
        c.done = [False] * n
        c.fired = [False] * n
        c.signals = [[None] * len(c.iter_steps) for _ in range(n)]
        c.cost = {"probe_rows": 0, "pipeline_rows": 2 * n * len(c.iter_steps), "extra": 0.0, "decodes": 0}
        if c.active and not self.lookahead:
            c.recorder = _Recorder(pipeline.unet)
        return c

    def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
        key = call_key(pipeline)
        if step_index == 0:
            for other in [k for k in list(self._calls) if k[0] == key[0]]:  # this thread's calls that ended early
                old = self._calls.pop(other, None)
                if old is not None:
                    old.detach()
            c = self._calls[key] = self._begin(pipeline, callback_kwargs)
            self._last[key[0]] = c
        else:
            c = self._calls.get(key)
            if c is None:  # no step 0 seen (or the call already ended): nothing to do
                return callback_kwargs
        if step_index >= len(c.iter_steps) - 1:  # the call's last step: forget it
            self._calls.pop(key, None)
            c.detach()
            c.drop_tensors()
            return callback_kwargs
        if self.lookahead:
            return self._callback_lookahead(pipeline, c, step_index, callback_kwargs)
        i = step_index
        if not c.active or c.recorder is None:
            return callback_kwargs
        emb = callback_kwargs["prompt_embeds"]
        if emb.shape[0] != 2 * c.n:  # no negative half any more (another callback cut CFG off)
            c.detach()
            return callback_kwargs
        next_step = c.iter_steps[i + 1]
        if next_step == c.iter_steps[i]:  # inside a step (PNDM warm-up, Heun): a switch only at a step boundary
            return callback_kwargs
        rows = [r for r in range(c.n) if not c.done[r]]
        fire: list[int] = []
        seen = c.recorder.last
        c.recorder.last = None
        if rows and next_step >= self.min_step:
            if next_step >= c.max_step:
                fire = [r for r in rows if c.fired[r] or self.fallback == "max"]
                for r in rows:
                    c.done[r] = True
            elif seen is not None:
                probe = [r for r in rows if not c.fired[r]]
                values = self._probe(pipeline, c, probe, *seen) if probe else []
                for r, v in zip(probe, values):
                    c.signals[r][i] = v
                    if self.detector is not None:
                        c.lowest[r] = min(c.lowest[r], v)
                        if v >= c.lowest[r] + self.rise:
                            fire.append(r)
                            c.done[r] = True
                        continue
                    if v >= self.threshold:
                        c.fired[r] = True
                        if self.when == "first":
                            fire.append(r)
                            c.done[r] = True
        if fire:
            self._switch(c, fire, next_step, emb, callback_kwargs)
        if all(d or f for d, f in zip(c.done, c.fired)):
            c.detach_hook_only()
        return callback_kwargs

    @staticmethod
    def _switch(c, fire, next_step, emb, callback_kwargs):
        for r in fire:
            c.decided[r] = next_step
        parts = [c.negative[0:1] if c.decided[r] is not None else c.original[r : r + 1] for r in range(c.n)]
        callback_kwargs["prompt_embeds"] = torch.cat(parts + [emb[c.n :]])

    @torch.no_grad()
    def _callback_lookahead(self, pipeline, c, i, callback_kwargs):
        """The detector rule on the state the next step will see (``lookahead=True``)."""
        if not c.active:
            return callback_kwargs
        emb = callback_kwargs["prompt_embeds"]
        if emb.shape[0] != 2 * c.n:
            return callback_kwargs
        next_step = c.iter_steps[i + 1]
        if next_step == c.iter_steps[i] or next_step < self.min_step or next_step > c.n_steps - 1:
            return callback_kwargs
        rows = [r for r in range(c.n) if not c.done[r]]
        if not rows:
            return callback_kwargs
        import copy

        sched = pipeline.scheduler
        t = sched.timesteps[(getattr(sched, "begin_index", None) or 0) + i + 1]
        idx = torch.tensor(rows, device=emb.device)
        # the model input the next iteration will build (Euler-type schedulers scale it), on a copy of the scheduler
        x = copy.deepcopy(sched).scale_model_input(callback_kwargs["latents"].index_select(0, idx), t)
        k = len(rows)
        ehs = torch.cat([c.negative[0:1].expand(k, -1, -1), emb[c.n :].index_select(0, idx)])
        extra = {}
        if getattr(pipeline, "cross_attention_kwargs", None) is not None:
            extra["cross_attention_kwargs"] = pipeline.cross_attention_kwargs
        out = pipeline.unet(torch.cat([x, x]), t, encoder_hidden_states=ehs, return_dict=False, **extra)[0]
        c.cost["probe_rows"] += 2 * k
        c.cost["extra"] = c.cost["probe_rows"] / c.cost["pipeline_rows"]
        eps_n, eps_c = out[:k], out[k:]
        values = self._detect(pipeline, c, x, t, eps_n + pipeline.guidance_scale * (eps_c - eps_n))
        fire = []
        for r, v in zip(rows, values):
            c.signals[r][i + 1] = v
            c.lowest[r] = min(c.lowest[r], v)
            if v >= c.lowest[r] + self.rise:
                fire.append(r)
                c.done[r] = True
        if fire:
            self._switch(c, fire, next_step, emb, callback_kwargs)
        return callback_kwargs

    @torch.no_grad()
    def _probe(self, pipeline, c, rows, sample, t, kwargs, out) -> list[float]:
        n = c.n
        idx = torch.tensor(rows, device=sample.device)
        x = sample[:n].index_select(0, idx)
        neg = c.negative[0:1].expand(len(rows), -1, -1)
        call = {k: v for k, v in kwargs.items() if k in ("timestep_cond", "cross_attention_kwargs", "added_cond_kwargs")}
        c.recorder.muted = True
        try:
            eps_n = pipeline.unet(x, t, encoder_hidden_states=neg, return_dict=False, **call)[0]
        finally:
            c.recorder.muted = False
        c.cost["probe_rows"] += len(rows)
        c.cost["extra"] = c.cost["probe_rows"] / c.cost["pipeline_rows"]
        eps_u = out[:n].index_select(0, idx)
        eps_c = out[n:].index_select(0, idx)
        if self.detector is not None:
            return self._detect(pipeline, c, x, t, eps_n + pipeline.guidance_scale * (eps_c - eps_n))
        return [float(v) for v in signal(eps_u, eps_c, eps_n, self.signal_kind)]

    def _detect(self, pipeline, c, x, t, eps) -> list[float]:
        """The detector's scores of the clean images ``eps`` implies (decoded by the pipeline's VAE)."""
        vae = pipeline.vae
        x0 = x0_prediction(pipeline.scheduler, x, t, eps).to(vae.dtype)
        images = vae.decode(x0 / vae.config.scaling_factor, return_dict=False)[0]
        images = (images.float() / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        c.cost["decodes"] += len(images)
        scores = [float(v) for v in self.detector(images)]
        if len(scores) != len(images):
            raise ValueError(f"detector returned {len(scores)} scores for {len(images)} images")
        return scores


class _AutoCall:
    """One pipeline call's state: what ``AutoDelayedNegative._begin`` set up at its step 0 and the per-row
    decisions so far. Kept per call (``negdelay.callback.call_key``), so one instance can serve calls running at
    the same time in several threads."""

    def __init__(self):
        self.active = False
        self.n = 0
        self.iter_steps: list[int] = []
        self.n_steps = 0
        self.max_step = 0
        self.lowest: list[float] = []
        self.original = None
        self.negative = None
        self.decided: list[int | None] = []
        self.done: list[bool] = []
        self.fired: list[bool] = []
        self.signals: list[list[float | None]] = []
        self.cost: dict = {}
        self.recorder: _Recorder | None = None

    def detach_hook_only(self) -> None:
        """No more probes needed: remove the hook (rows waiting for the latest start still switch there)."""
        if self.recorder is not None:
            self.recorder.remove()

    def detach(self) -> None:
        if self.recorder is not None:
            self.recorder.remove()
            self.recorder = None

    def drop_tensors(self) -> None:
        """After the call: keep the results (decided, signals, cost), not the embeddings."""
        self.original = self.negative = None
