"""`negdelay compare`'s verdict lines (negdelay.lab.verdict): removal and change against the stock negative, paired
by seed, with intervals; and the toy model's default of 8 seeds."""

from __future__ import annotations

from negdelay.lab import verdict
from negdelay.lab.config import build


def _rows(dots, dists):
    return [{"dot": d, "pixel_distance": x} for d, x in zip(dots, dists)]


def _columns(n=40):
    none = _rows([1] * n, [0.0] * n)
    stock = _rows([0] * n, [0.10] * n)
    same = _rows([0] * n, [0.05 + 0.001 * (i % 5) for i in range(n)])  # removes as stock, changes half as much
    weak = _rows([1] * (n // 2) + [0] * (n // 2), [0.10 + 0.002 * (i % 3) for i in range(n)])
    return {"none": none, "stock": stock, "late": same, "weak": weak}


def test_verdicts_name_removal_and_change_against_stock():
    labels = {"none": "no negative", "stock": "stock negative", "late": "delayed, step 3", "weak": "delayed, step 9"}
    v = verdict.verdicts(_columns(), labels, detector=True)
    assert set(v) == {"stock", "late", "weak"}
    assert v["stock"]["removal"]["word"] == "removes the dot" and v["stock"]["removal"]["diff"] == -1.0
    assert "change" not in v["stock"]
    assert v["late"]["removal"]["word"] == "removes as much as stock"
    assert v["late"]["change"]["word"] == "changes less than stock" and v["late"]["change"]["high"] < 1
    assert v["weak"]["removal"]["word"] == "removes less than stock" and v["weak"]["removal"]["low"] > 0
    assert v["weak"]["change"]["word"] == "changes more than stock"
    text = verdict.line(v["late"])
    assert text.startswith("delayed, step 3: removes as much as stock (dot +0 pp vs stock")
    assert "changes less than stock (pixel change x0.5" in text


def test_without_the_detector_only_change_is_judged():
    v = verdict.verdicts(_columns(), {k: k for k in _columns()}, detector=False)
    assert "removal" not in v["late"] and v["late"]["change"]["word"] == "changes less than stock"
    assert verdict.line(v["stock"]) == "stock: " + "  (n=40, 95% intervals)"


def test_toy_compare_defaults_to_eight_seeds_others_keep_four():
    assert build("compare").seeds == list(range(8))
    assert build("compare", seeds="0-2").seeds == [0, 1, 2]
    other = build("compare", model="./my-model", pairs=[{"prompt": "a cat", "negative": "dog"}])
    assert other.seeds == [0, 1, 2, 3]
