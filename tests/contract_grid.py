"""Which grid tests/test_contract.py runs for every served class: docs/contract-grid.md, generated from the cases.

Part (b) of the contract (delayed from step k = the reference) runs every case over a grid: k in {1, 3} times every
scheduler the case offers, or, for a variant whose family has a main class on that grid (``Case.full_grid=False``),
k = 1 under the first scheduler only. This module reads that from the built cases (tiny pipelines are built, none
is run) and writes it as a page. Regenerate from the repository root with

    python tests/contract_grid.py --write docs/contract-grid.md

(without ``--write``: print it). tests/test_contract_grid.py fails when the page is not current.
"""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from dataclasses import dataclass

PAGE = "docs/contract-grid.md"
COMMAND = f"python tests/contract_grid.py --write {PAGE}"
KS_FULL = (1, 3)
KS_TRIMMED = (1,)


@dataclass(frozen=True)
class Row:
    """One contract case as the page shows it."""

    family: str
    name: str  # "Class" or "Class[variant]"
    full_grid: bool
    ks: tuple[int, ...]
    schedulers: tuple[str, ...]  # the ones (b) runs under, the pipeline's own first
    offered: int  # how many the case offers (a trimmed case runs the first only)
    prompts: int
    images: int

    @property
    def runs(self) -> int:
        return len(self.ks) * len(self.schedulers)


def plan(case) -> tuple[tuple[int, ...], range]:
    """The start steps and scheduler indices part (b) runs ``case`` with (the contract's ``grid``, from a case)."""
    if case.full_grid:
        return KS_FULL, range(max(1, len(case.schedulers)))
    return KS_TRIMMED, range(1)


def _config_diff(schedulers) -> list[str]:
    """For schedulers of one class: what sets each apart (the config entries that differ among them)."""
    configs = [dict(s.config) for s in schedulers]
    keys = sorted(k for k in configs[0] if not k.startswith("_") and len({repr(c.get(k)) for c in configs}) > 1)
    return [", ".join(f"{k}={c.get(k)!r}" for k in keys) for c in configs]


def scheduler_names(case, indices) -> tuple[str, ...]:
    """Class names of the case's schedulers at ``indices`` (index 0: the pipeline's own, as the contract runs it);
    schedulers of one class are told apart by the config entries that differ."""
    built = [getattr(case.pipe, "scheduler", None) if i == 0 else case.schedulers[i](case.pipe) for i in indices]
    names = [type(s).__name__ for s in built]
    for name in set(names):
        same = [i for i, n in enumerate(names) if n == name]
        if len(same) > 1 and all(built[i] is not None for i in same):
            for i, diff in zip(same, _config_diff([built[i] for i in same])):
                names[i] = f"{name}({diff})" if diff else name
    return tuple(names)


def row(name: str, case, family: str) -> Row:
    ks, indices = plan(case)
    prompts = 1 if isinstance(case.prompts, str) else len(case.prompts)
    return Row(family=family, name=name, full_grid=case.full_grid, ks=ks, schedulers=scheduler_names(case, indices),
               offered=max(1, len(case.schedulers)), prompts=prompts, images=2 if case.images_arg else 1)


def served_names() -> list[str]:
    """The contract's case names (``Class`` or ``Class[variant]``) of served classes, as test_contract collects them."""
    from contract_cases import CASES
    from negdelay.pipelines import REGISTRY

    return sorted(name for name in CASES if name.split("[")[0] in REGISTRY)


def rows() -> list[Row]:
    """Every served class's contract cases, by family then name (builds each case once: contract_cases.case)."""
    from contract_cases import case
    from negdelay.pipelines import REGISTRY

    found = [row(name, case(name), REGISTRY[name.split("[")[0]].family) for name in served_names()]
    return sorted(found, key=lambda r: (r.family.lower(), r.name))


def by_family(found: list[Row]) -> dict[str, list[Row]]:
    families = defaultdict(list)
    for r in found:
        families[r.family].append(r)
    return dict(families)


def classes(family_rows: list[Row], full_only: bool = False) -> set[str]:
    return {r.name.split("[")[0] for r in family_rows if r.full_grid or not full_only}


def without_full_grid(found: list[Row]) -> list[str]:
    """Families none of whose classes runs the full grid."""
    return sorted(f for f, rs in by_family(found).items() if not classes(rs, full_only=True))


def _cell_schedulers(r: Row) -> str:
    shown = ", ".join(f"`{s}`" for s in r.schedulers)
    left = r.offered - len(r.schedulers)
    return shown + (f" (+{left} offered, not run)" if left else "")


def render(found: list[Row]) -> str:
    families = by_family(found)
    n_classes = len({r.name.split("[")[0] for r in found})
    full = [r for r in found if r.full_grid]
    full_classes = {r.name.split("[")[0] for r in full}
    lacking = without_full_grid(found)
    lines = [
        "# The contract's grid, per class",
        "",
        f"<!-- generated by `{COMMAND}` from the contract's cases (tests/builders/); do not edit by hand -->",
        "",
        "Part (b) of the contract (tests/test_contract.py: delayed from step k = the independent reference) runs each "
        "case over a grid: **full**: k in {1, 3} under every scheduler the case offers; **trimmed** "
        "(`Case.full_grid=False`, variants of a family whose main class runs the full grid): k = 1 under the first "
        "scheduler only. The first scheduler is always the pipeline's own. Parts (a), (c), (d), (e) run every case "
        "once, whatever its grid. Prompts x images: the prompts of every call x the images per prompt "
        "(1 where the pipeline has no images-per-prompt argument). A class with two cases is listed as "
        "`Class[variant]` for the second.",
        "",
        f"**{n_classes}** served classes in **{len(families)}** families, **{len(found)}** cases: "
        f"**{len(full)}** on the full grid ({len(full_classes)} classes), **{len(found) - len(full)}** trimmed; "
        f"**{sum(r.runs for r in found)}** runs of part (b).",
        "",
        "Families without a full-grid class: " + (", ".join(lacking) if lacking else "none") + ".",
        "",
        "| family | case | grid | k | schedulers | prompts x images |",
        "|---|---|---|---|---|---|",
    ]
    for family, family_rows in families.items():
        for r in family_rows:
            grid = "full" if r.full_grid else "trimmed"
            k = ", ".join(map(str, r.ks))
            lines.append(f"| {family} | `{r.name}` | {grid} | {k} | {_cell_schedulers(r)} | {r.prompts} x {r.images} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import warnings

    warnings.simplefilter("ignore")
    if argv and (argv[0] != "--write" or len(argv) != 2):
        print(f"usage: python tests/contract_grid.py [--write {PAGE}]", file=sys.stderr)
        return 2
    text = render(rows())
    if argv:
        with open(argv[1], "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
