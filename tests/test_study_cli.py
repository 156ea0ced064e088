"""``negdelay study`` end to end on tiny settings: a tiny SD folder with a tiny CLIP model saved in tmp_path (no hub),
the embedded model with its judge, and bad input -> exit 2 with a message naming the setting."""

from __future__ import annotations

import json

import pytest
from lab_util import save_tiny
from test_study import tiny_clip
from typer.testing import CliRunner

from negdelay.cli import app
from negdelay.toy import MODEL_DIR

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    return save_tiny(root / "pipe"), tiny_clip(root / "clip")


def test_study_on_a_tiny_checkpoint_with_clip(tmp_path, folders):
    pipe, clip = folders
    out = tmp_path / "st"
    args = ("study", "--model", pipe, "--clip", clip, "--prompt", "a red cat", "--prompt", "a blue dog",
            "--negative", "glasses", "--seeds", "0-3", "--steps", "5", "--starts", "step:1-3", "--out", out,
            "--no-progress")
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    rows = s["all"]["rows"]
    assert list(rows) == ["none", "stock", "1", "2", "3"]
    assert all(rows[k]["present"]["n"] == 4 for k in rows)
    assert "presence" in rows["stock"] and 0 <= rows["stock"]["presence"]["mean"] <= 1
    assert rows["none"]["pixel"]["mean"] == 0 and rows["stock"]["pixel"]["mean"] > 0
    assert s["scoring"].startswith("CLIP")
    assert len(s["auto"]["steps"]) == 4 and all(k is None or 1 <= k < 5 for k in s["auto"]["steps"])
    assert s["auto"]["cost"]["pipeline_rows"] == 2 * 4 * 5  # CFG rows x images x steps; probes come on top
    assert (out / "summary.md").read_text().startswith("# negdelay study")
    assert (out / "tradeoff.png").stat().st_size > 0
    # the same command again resumes: nothing re-rendered, same summary
    before = {p.name: p.stat().st_mtime_ns for p in (out / "sweep").glob("chunk-*.json")}
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    assert {p.name: p.stat().st_mtime_ns for p in (out / "sweep").glob("chunk-*.json")} == before
    assert json.loads((out / "summary.json").read_text())["all"] == s["all"]


@pytest.mark.skipif(not (MODEL_DIR / "model_index.json").is_file(), reason="no exported embedded model")
def test_study_on_the_embedded_model(tmp_path):
    out = tmp_path / "toy"
    r = invoke("study", "--seeds", "0-2", "--steps", "6", "--starts", "fraction:0.2,0.5", "--out", out, "--no-progress")
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    assert s["scoring"] == "toy judge" and s["starts"] == [1, 3]
    assert "correct" in s["all"]["rows"]["none"]
    assert s["negative"] == "with a dot"


def test_bad_input(tmp_path, folders):
    pipe, clip = folders
    r = invoke("study", "--model", pipe, "--prompt", "a red cat", "--negative", "glasses", "--out", tmp_path / "a")
    assert r.exit_code == 2 and "clip" in r.output
    r = invoke("study", "--model", pipe, "--clip", clip, "--prompt", "a red cat", "--negative", "glasses",
               "--steps", "5", "--starts", "step:2,7", "--out", tmp_path / "b", "--no-progress")
    assert r.exit_code == 2 and "starts" in r.output and "step 7" in r.output, r.output
    r = invoke("study", "--model", pipe, "--clip", tmp_path / "nope", "--prompt", "a red cat", "--negative", "glasses",
               "--out", tmp_path / "c", "--no-progress")
    assert r.exit_code == 2 and "clip model" in r.output, r.output
    r = invoke("study", "--model", pipe, "--clip", clip, "--negative", "glasses", "--out", tmp_path / "d")
    assert r.exit_code == 2 and "prompts" in r.output
