"""The study's calibration and report reproduce, byte for byte, what they produced before the report code was split
into pieces (``build_report``) and the study's import cycles were untangled: a synthetic study folder
(tests/study_fixture.py) goes through ``calibrate`` and ``build_report``; the SHA-256 of ``report.md``,
``report.json`` and ``auto-calibration.json`` must equal the stored ones (tests/data/study_golden/, computed with the
code of commit bea388e^, before this work; ``report.md`` is stored too, for a readable diff)."""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path

import study_fixture

from negdelay.study.analysis import build_report

GOLDEN = Path(__file__).parent / "data" / "study_golden"


def test_report_reproduces_the_stored_result(tmp_path):
    out = study_fixture.write(tmp_path / "study")
    build_report(out, None)
    want = json.loads((GOLDEN / "sha256.json").read_text())
    got = {name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in want}
    if got["report.md"] != want["report.md"]:
        diff = difflib.unified_diff((GOLDEN / "report.md").read_text().splitlines(),
                                    (out / "report.md").read_text().splitlines(), lineterm="", n=1)
        raise AssertionError("report.md differs from the stored one:\n" + "\n".join(list(diff)[:60]))
    assert got == want


def test_the_study_and_the_lab_import_in_one_direction():
    """study/__main__ and study/analysis do not import each other; the lab never imports the study."""
    import ast

    src = Path(__file__).resolve().parents[1] / "src" / "negdelay"

    def imports(path: Path) -> set[str]:
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names.add("." * node.level + (node.module or ""))
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
        return names

    assert not any(n in (".__main__", "negdelay.study.__main__") for n in imports(src / "study" / "analysis.py"))
    for path in (src / "lab").glob("*.py"):
        bad = [n for n in imports(path) if n.startswith(("..study", "negdelay.study"))]
        assert not bad, f"{path.name} imports {bad}"


def test_early_behaviour_section(tmp_path):
    """Question 6's section: per start the default, CFG-off and CFG-off-without-negative rows, the paired difference
    CFG off − default, and CFG off against its own twin (distances computed from the stored images)."""
    import numpy as np

    from negdelay.lab import metrics as M
    from negdelay.study import plan
    from negdelay.study.protocol import _atomic_npz

    cell = plan.cells(range(6))["q6-ddim-20"]
    rng = np.random.default_rng(3)
    folder = tmp_path / "q6-ddim-20"
    folder.mkdir()
    records, images = [], []
    for j in cell.seeds:
        for row in cell.rows:
            records.append({"seed": j, "prompt": cell.prompt_of(j), "row": row, "present": bool(rng.random() < 0.4),
                            "correct": True, "pixel": float(rng.random() / 10), "ssim": float(rng.random() / 3)})
            images.append(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
    (folder / "chunk-0000.json").write_text(json.dumps(records))
    _atomic_npz(folder / "chunk-0000.npz", images=np.stack(images))
    rep = build_report(tmp_path, None)
    got = rep["early_behaviour"]["q6-ddim-20"][4]
    by = {(r["seed"], r["row"]): (r, im) for r, im in zip(records, images)}
    default = [by[(s, 4)][0]["present"] for s in cell.seeds]
    off = [by[(s, "no_cfg:4")][0]["present"] for s in cell.seeds]
    assert abs(got["paired"]["measures"]["accessory present"]["diff"][0] - (np.mean(off) - np.mean(default))) < 1e-12
    own = [M.pixel_distance(by[(s, "no_cfg:4")][1], by[(s, "no_cfg_only:4")][1]) for s in cell.seeds]
    assert abs(got["vs_own_twin"]["pixel"][0] - np.mean(own)) < 1e-12
    md = (tmp_path / "report.md").read_text()
    assert "### q6-ddim-20: the same start, CFG against the empty prompt before it" in md
    assert "| 10 | CFG off, no negative at all |" in md
    assert "q6-ddim-20" not in rep.get("schedule_kind", {}).get("critical", {})  # not a question-4 setting
