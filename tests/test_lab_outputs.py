"""Outputs: A1111 infotext round-trip through a PNG, atomic writes, run folders; metrics and intervals."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from negdelay.lab import metrics as M
from negdelay.lab.models import LabError
from negdelay.lab.outputs import (
    RunFolder, atomic_write, clean_temporaries, infotext, parse_infotext, png_bytes, read_parameters,
)


def test_infotext_round_trip_through_a_png(tmp_path):
    params = {"Steps": 50, "Sampler": "PLMS", "CFG scale": "7.5", "Seed": 1234, "Size": "512x512",
              "Model": "counterfeit-v30", "Negative schedule": "step:4 = from step 4"}
    neg = "EasyNegativeV2, extra fingers, fewer fingers"
    text = infotext("girl eating pizza\nsecond line", neg, params)
    lines = text.split("\n")
    assert lines[2] == f"Negative prompt: {neg}"
    assert lines[3].startswith("Steps: 50, Sampler: PLMS, CFG scale: 7.5, Seed: 1234, Size: 512x512")
    path = tmp_path / "x.png"
    atomic_write(path, png_bytes(Image.new("RGB", (8, 8), "red"), text))
    with Image.open(path) as im:
        assert im.text["parameters"] == text  # the chunk A1111-family browsers read
    prompt, negative, got = parse_infotext(read_parameters(path))
    assert (prompt, negative) == ("girl eating pizza\nsecond line", neg)
    assert got == {k: str(v) for k, v in params.items()}  # the ':' in the schedule was quoted and comes back


def test_infotext_without_negative_and_with_quotes():
    text = infotext("a red circle", None, {"Steps": 3, "Note": 'say "hi", ok'})
    assert "Negative prompt" not in text
    assert parse_infotext(text) == ("a red circle", None, {"Steps": "3", "Note": 'say "hi", ok'})


def test_atomic_write_leaves_nothing_half_written(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    atomic_write(target, b"old")

    def boom(*a):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        atomic_write(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # the temporary was removed
    (tmp_path / ".b.png.tmp-abc123-77-0f0f0f0f").write_bytes(b"junk from a killed process of run abc123")
    (tmp_path / ".b.png.tmp-123-abc").write_bytes(b"not named by that run")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".c.png.tmp-abc123-77-0f0f0f0f").write_bytes(b"another folder")
    assert clean_temporaries(tmp_path, "abc123") == 1  # only that run's names, only in that folder
    assert sorted(p.name for p in tmp_path.iterdir()) == [".b.png.tmp-123-abc", "a.json", "sub"]
    with pytest.raises(ValueError, match="run id"):
        clean_temporaries(tmp_path, "")  # never "every temporary"


def test_run_folder_resumes_the_same_run_and_refuses_another(tmp_path):
    f = RunFolder(tmp_path / "run")
    assert f.prepare("sweep", {"steps": 10}) is False
    f.save_record("seed-0", {"x": 1})
    f.release()
    with RunFolder(tmp_path / "run") as g:
        assert g.prepare("sweep", {"steps": 10}) is True and g.id == f.id
    assert f.done() == {"seed-0": {"x": 1}}
    with pytest.raises(LabError, match="different run.*steps"):
        RunFolder(tmp_path / "run").prepare("sweep", {"steps": 12})
    with pytest.raises(LabError, match="command"):
        RunFolder(tmp_path / "run").prepare("compare", {"steps": 10})
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LabError, match="cannot write"):
        RunFolder(blocker / "sub").prepare("sweep", {})


def test_wilson_interval_known_values():
    lo, hi = M.wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = M.wilson(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert math.isnan(M.wilson(0, 0)[0])


def test_bootstrap_interval_covers_the_mean_and_is_deterministic():
    x = np.random.default_rng(1).normal(2.0, 1.0, 200)
    m, lo, hi = M.bootstrap_mean(x)
    assert lo < m < hi and m == pytest.approx(x.mean())
    se = x.std(ddof=1) / np.sqrt(x.size)  # the bootstrap interval is close to the normal one
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert M.bootstrap_mean(x) == (m, lo, hi)


def test_distances():
    a = np.zeros((32, 32, 3), np.uint8)
    b = a.copy()
    assert M.pixel_distance(a, b) == 0.0 and M.ssim_distance(a, b) == pytest.approx(0.0, abs=1e-12)
    b[:16] = 255
    assert M.pixel_distance(a, b) == pytest.approx(0.5)
    assert 0.1 < M.ssim_distance(a, b) <= 2.0


def test_detector_scoring_on_world_images():
    from negdelay.toy import world

    hits = 0
    for seed in range(20):
        s = world.make_scene(seed)
        got = M.detect(s.image, world.plain_prompt(s.colour, s.shape))
        hits += got["dot"] == s.has_dot and got["colour_ok"] and got["shape_ok"]
    assert hits >= 18
    assert M.prompt_target("a small blue square on a light background") == ("blue", "square")
    assert M.detect(world.make_scene(0).image, "a thing")["colour_ok"] is None
    assert json.dumps(M.summarize([{"dot": True, "pixel_distance": 0.1}, {"dot": False, "pixel_distance": 0.3}]))
