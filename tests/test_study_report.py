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
