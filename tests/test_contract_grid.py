"""docs/contract-grid.md is current, says what tests/test_contract.py runs, and every family is proven on the full
grid by at least one class. Builds the tiny pipelines (shared with test_contract's collection), runs none."""

from __future__ import annotations

from pathlib import Path

import pytest

import contract_grid
from contract_grid import COMMAND, PAGE, Row, by_family, classes, plan, render, rows, without_full_grid
from contract_cases import case
from test_contract import SERVED, grid

ROOT = Path(__file__).resolve().parent.parent

#: families none of whose classes runs the full grid, and why that is accepted (each one class only)
TRIMMED_FAMILIES = {
    "Stable Cascade combined": "a wrapper of the Stable Cascade prior and decoder; the prior runs the full grid in "
                               "the Stable Cascade family",
}

#: full-grid cases that run one scheduler twice (builder, why); the fix is in the builder, then drop the line
REPEATED_SCHEDULERS: dict[str, str] = {}


@pytest.fixture(scope="module")
def found() -> list[Row]:
    return rows()


def test_page_is_current(found):
    page = ROOT / PAGE
    assert page.exists(), f"{PAGE} is missing: run `{COMMAND}`"
    assert page.read_text(encoding="utf-8") == render(found), f"{PAGE} is not current: run `{COMMAND}`"


def test_plan_is_the_contracts_grid(found):
    assert [r.name for r in sorted(found, key=lambda r: r.name)] == SERVED
    for name in SERVED:
        ks, indices = plan(case(name))
        assert sorted((k, s) for s in indices for k in ks) == sorted(grid(name)), name


def test_every_family_with_several_classes_has_a_full_grid_class(found):
    several = {f: rs for f, rs in by_family(found).items() if len(classes(rs)) > 1}
    lacking = sorted(f for f, rs in several.items() if not classes(rs, full_only=True))
    assert not lacking, f"families whose classes all run the trimmed grid (k = 1, one scheduler): {lacking}"


def test_families_without_a_full_grid_class_are_the_known_ones(found):
    lacking = without_full_grid(found)
    assert set(lacking) == set(TRIMMED_FAMILIES), (
        f"families without a full-grid class: {lacking}; known: {sorted(TRIMMED_FAMILIES)} (give one class "
        "full_grid=True in its builder, or name the family in TRIMMED_FAMILIES with why)")


def test_full_grid_cases_run_distinct_schedulers(found):
    repeated = sorted(r.name for r in found if r.full_grid and len(set(r.schedulers)) < len(r.schedulers))
    assert repeated == sorted(REPEATED_SCHEDULERS), (
        f"full-grid cases that run a scheduler twice: {repeated}; known: {sorted(REPEATED_SCHEDULERS)}")


def _row(family, name, full_grid):
    ks, indices = contract_grid.KS_FULL if full_grid else contract_grid.KS_TRIMMED, range(2 if full_grid else 1)
    return Row(family=family, name=name, full_grid=full_grid, ks=ks, schedulers=tuple(f"S{i}" for i in indices),
               offered=2, prompts=2, images=2)


def test_the_checks_see_a_family_without_a_full_grid_class():
    made = [_row("A", "APipeline", True), _row("A", "AImg2ImgPipeline", False),
            _row("B", "BPipeline", False), _row("B", "BPipeline[variant]", False), _row("B", "BInpaintPipeline", False)]
    assert without_full_grid(made) == ["B"]
    text = render(made)
    assert "Families without a full-grid class: B." in text
    assert "| B | `BInpaintPipeline` | trimmed | 1 | `S0` (+1 offered, not run) | 2 x 2 |" in text
    assert "**4** served classes in **2** families, **5** cases" in text
