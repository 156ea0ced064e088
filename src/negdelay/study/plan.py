"""The study's cells on the embedded model (docs/study.md): which settings, seeds, start steps.

Seeds 0..199 (seed ``j`` renders prompt ``j % 12``: the 12 colour x shape prompts, none naming the dot), guidance 7.5.
Starts are the same fractions of the run for 20 and 50 steps where the question compares step counts.
"""

from __future__ import annotations

from ..toy import world
from .protocol import Cell

SEEDS = tuple(range(200))
PLAIN = tuple(world.plain_prompt(c, s) for s in world.SHAPES for c in world.COLOURS)
NAMED = tuple(world.accessory_prompt(c, s) for s in world.SHAPES for c in world.COLOURS)
NEG = world.NEGATIVE_PROMPT  # "with a dot"
GENERIC = "small"  # an unrelated attribute negative: the embedded world's stand-in for "extra fingers"
SAMPLERS = ("ddim", "euler", "dpm++2m", "pndm")

#: the start fractions swept for question 4 (steps int(f * N)); a rehearsal on an interim export showed the removal
#: flat up to ~0.75 of the run and falling after it, so the grid is dense late
FRACTIONS = (0.5, 0.7, 0.8, 0.9, 0.95)
#: the full per-step sweep (question 2, the oracle): DDIM, 20 steps, every start from 1 to 19, so every choice auto
#: can make is a row of the sweep
FULL_STARTS = tuple(range(1, 20))
#: fixed-step probes for the 50-step cells: the 20-step runs put the 50 %-removal point near step 13 (fraction 0.66);
#: at 50 steps a fixed critical step would show it near step 13 again, a fixed fraction near step 33, so both must
#: be rows of the 50-step cells (question 4)
STEP_PROBES_50 = (5, 10, 13, 17, 20, 33)


#: early starts for the 20-step Euler / DPM++ 2M / PNDM cells (question 4 on the second model): their main cells start
#: at 0.5 of the run (FRACTIONS, chosen on the first model), past the second model's critical fraction (~0.34), so
#: these cells add every start from 1 to 6 and step 8, where that point and PNDM's even/odd pattern can show
EARLY_STARTS_20 = (1, 2, 3, 4, 5, 6, 8)

#: question 6 (early behaviour): starts at these fractions of the run, the range the study recommends (0.1-0.3) and
#: one later start
EARLY_FRACTIONS = (0.1, 0.2, 0.3, 0.5)


def early_starts(steps: int) -> tuple[int, ...]:
    return tuple(sorted({max(1, int(f * steps)) for f in EARLY_FRACTIONS}))


def frac_starts(steps: int, extra: tuple[int, ...] = ()) -> tuple[int, ...]:
    return tuple(sorted({max(1, int(f * steps)) for f in FRACTIONS} | set(extra)))


def cells(seeds=SEEDS) -> dict[str, Cell]:
    seeds = tuple(seeds)
    out = {
        "ddim-20-full": Cell("ddim-20-full", 20, FULL_STARTS, seeds, PLAIN, NEG, sampler="ddim"),
    }
    for s in SAMPLERS:
        for n in (20, 50):
            name = f"{s}-{n}"
            if name == "ddim-20":
                continue  # the full sweep covers it
            extra = STEP_PROBES_50 if n == 50 else ()
            if (s, n) == ("pndm", 50):
                extra = extra + (4,)
            out[name] = Cell(name, n, frac_starts(n, extra), seeds, PLAIN, NEG, sampler=s)
    for s in SAMPLERS:
        if s != "ddim":  # DDIM 20 has every start in the full sweep
            out[f"{s}-20-early"] = Cell(f"{s}-20-early", 20, EARLY_STARTS_20, seeds, PLAIN, NEG, sampler=s)
    # question 5: the seed's three experiments, embedded-world analogues, PNDM 50 steps, start step 4
    out["seed-exp2"] = Cell("seed-exp2", 50, (4,), seeds, PLAIN, NEG, sampler="pndm")
    out["seed-exp1"] = Cell("seed-exp1", 50, (4,), seeds, PLAIN, GENERIC, sampler="pndm")
    out["seed-exp3"] = Cell("seed-exp3", 50, (4,), seeds, NAMED, GENERIC, sampler="pndm")
    # question 6: at the same start, CFG against the empty prompt before it (the default) vs CFG off before it
    # (A1111's "Ignore negative prompt during early sampling"), DDIM at 20 and 50 steps, the same fractions
    for n in (20, 50):
        out[f"q6-ddim-{n}"] = Cell(f"q6-ddim-{n}", n, early_starts(n), seeds, PLAIN, NEG, sampler="ddim", no_cfg=True)
    return out


#: order of the final runs (most important first), so a run cut short still answers the main questions
ORDER = ("ddim-20-full", "pndm-20", "euler-20", "dpm++2m-20", "pndm-50", "ddim-50", "seed-exp2", "seed-exp3",
         "seed-exp1", "euler-50", "dpm++2m-50", "q6-ddim-20", "q6-ddim-50", "pndm-20-early", "euler-20-early",
         "dpm++2m-20-early")
