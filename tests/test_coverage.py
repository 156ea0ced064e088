"""Coverage that cannot rot: every installed diffusers pipeline that takes ``negative_prompt`` is served (declared,
with a tiny builder, so the contract proves it) or listed as not served with a reason; the table, its JSON and
docs/pipelines.md come from the same registry."""

from __future__ import annotations

import json
import pathlib

import diffusers
import pytest

from contract_cases import all_cases
from negdelay.pipelines import REGISTRY
from negdelay.pipelines.coverage import NOT_SERVED, negative_prompt_pipelines, table
from negdelay.pipelines.docs import BEGIN, END, as_markdown
from negdelay.pipelines.__main__ import main

DOCS = pathlib.Path(__file__).parent.parent / "docs" / "pipelines.md"
SERVED_AT_LEAST = 194  # raised as pipelines are served; never lowered


@pytest.fixture(scope="module")
def installed():
    return negative_prompt_pipelines()


def test_every_installed_negative_prompt_pipeline_is_served_or_listed(installed):
    assert len(installed) > 150
    unaccounted = sorted(set(installed) - set(REGISTRY) - set(NOT_SERVED))
    assert not unaccounted, f"neither served nor listed in NOT_SERVED: {unaccounted}"
    both = sorted(set(REGISTRY) & set(NOT_SERVED))
    assert not both, f"served and listed as not served: {both}"
    assert all(reason.strip() for reason in NOT_SERVED.values())


def test_every_name_is_a_diffusers_pipeline(installed):
    for name in [*REGISTRY, *NOT_SERVED]:
        assert name in installed or hasattr(diffusers, name), name
    assert set(REGISTRY) <= set(installed)  # a served class takes negative_prompt


def test_every_served_class_has_a_builder_so_the_contract_proves_it():
    cases = {name.split("[")[0] for name in all_cases()}
    missing = sorted(set(REGISTRY) - cases)
    assert not missing, f"served without a tiny builder (the contract would not prove them): {missing}"
    assert len(REGISTRY) >= SERVED_AT_LEAST


def test_table_json_and_docs_agree(installed, capsys):
    rows = table(installed)
    assert {r["class"] for r in rows} == set(installed)
    served = [r for r in rows if r["status"] == "served"]
    assert {r["class"] for r in served} == set(REGISTRY) & set(installed)
    assert all(r["status"] in ("served", "not served") and "entry" in r for r in rows)
    assert main(["--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [(r["class"], r["entry"], r["status"]) for r in printed[: len(rows)]] == [
        (r["class"], r["entry"], r["status"]) for r in rows]
    modular = printed[len(rows):]  # then the modular pipelines, served through their guider (docs/modular.md)
    assert modular and all(r["class"].endswith("ModularPipeline") and r["entry"] == "guider" for r in modular)
    text = DOCS.read_text(encoding="utf-8")
    current = BEGIN + text.split(BEGIN, 1)[1].split(END, 1)[0] + END if BEGIN in text else ""
    assert current == as_markdown(rows), "docs/pipelines.md is stale: python -m negdelay.pipelines --write-docs docs/pipelines.md"


def test_cli_pipelines_json_offline(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "negdelay", "pipelines", "--json"], capture_output=True, text=True,
                         env=env, timeout=300, check=True).stdout
    rows = json.loads(out)
    assert {"class", "entry", "status"} <= set(rows[0])
    classic = [r for r in rows if r["entry"] != "guider"]
    assert sum(r["status"] == "served" for r in classic) == len(set(REGISTRY) & {r["class"] for r in classic})
