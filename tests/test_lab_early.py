"""The lab's early-behaviour column (``before: no_cfg`` per schedule; ``sweep --before``), ComfyUI percents in lab
schedules, and ``generate --from-png`` (A1111 infotext in, the same settings out; a round trip with the lab's own PNGs).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import negdelay
from lab_util import save_tiny
from negdelay import schedule as sch
from negdelay.lab.cli import app
from negdelay.lab.config import ConfigError, Schedule, build
from negdelay.lab.from_png import read_png
from negdelay.lab.outputs import infotext, parse_infotext, png_bytes, read_parameters

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny") / "pipe")


@pytest.fixture(scope="module")
def pipe(tiny_folder):
    from diffusers import StableDiffusionPipeline

    p = StableDiffusionPipeline.from_pretrained(str(tiny_folder), local_files_only=True)
    p.set_progress_bar_config(disable=True)
    return p


def image(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def render(pipe, prompt, seed, steps, **kw) -> np.ndarray:
    out = pipe(prompt, num_inference_steps=steps, guidance_scale=7.5, output_type="np",
               generator=torch.Generator("cpu").manual_seed(seed), **kw).images[0]
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


# ------------------------------------------------------------------------------------------------------ settings
def test_schedule_before_in_text_and_yaml():
    s = Schedule.parse("step:4..12 before=no_cfg")
    assert (s.start, s.stop, s.before) == (sch.Point("step", 4), sch.Point("step", 12), "no_cfg")
    assert s.text() == "step:4..12 before=no_cfg" and Schedule.parse(s.text()) == s
    assert Schedule.parse({"schedule": "percent:0.3", "before": "no_cfg"}).text() == "percent:0.3 before=no_cfg"
    assert "before" not in Schedule.parse("step:4").model_dump()  # run.json of older runs unchanged
    cfg = build("compare", schedules=["step:3", {"schedule": "step:3", "before": "no_cfg"}])
    assert [x.text() for x in cfg.schedules] == ["step:3", "step:3 before=no_cfg"]
    assert build("sweep", before="no_cfg").before == ["no_cfg"] and "before" not in build("sweep").model_dump()


@pytest.mark.parametrize("command, kw, needle", [
    ("compare", dict(schedules=["step:3 before=off"]), "before must be one of unconditional, no_cfg"),
    ("compare", dict(schedules=[{"schedule": "step:3", "before": "later"}]), "before must be one of"),
    ("compare", dict(schedules=[{"start": "step:3"}]), "a schedule mapping holds 'schedule'"),
    ("compare", dict(schedules=["percent:1.5"]), "must be a percent of the noise axis in [0, 1]"),
    ("sweep", dict(before=["no_cfg", "no_cfg"]), "before: give unconditional, no_cfg or both"),
    ("sweep", dict(before="off"), "before.0: Input should be 'unconditional' or 'no_cfg'"),
    ("generate", dict(prompt="a", negative="b", schedule="step:2", skip_early_cfg=0.2), "skip_early_cfg: goes with a1111"),
    ("generate", dict(prompt="a", a1111="b", skip_early_cfg=1.5), "skip_early_cfg"),
])
def test_bad_early_settings_name_the_field(command, kw, needle):
    with pytest.raises(ConfigError) as e:
        build(command, **kw)
    assert needle in str(e.value), str(e.value)


# --------------------------------------------------------------------------------------------- compare / sweep
def test_compare_column_with_cfg_off_before(tmp_path, tiny_folder, pipe):
    out = tmp_path / "cmp"
    r = invoke("compare", "--model", tiny_folder, "-p", "a girl eating pizza", "-n", "glasses", "--steps", "6",
               "--seeds", "0-1", "-s", "step:2", "-s", "step:2 before=no_cfg", "-s", "percent:0.5", "--out", out,
               "--no-progress")
    assert r.exit_code == 0, r.output
    cols = next(iter(json.loads((out / "summary.json").read_text())["pairs"].values()))["columns"]
    assert list(cols) == ["none", "stock", "delayed-step-2", "delayed-step-2-before-no-cfg", "delayed-percent-0.5"]
    assert "CFG off outside" in cols["delayed-step-2-before-no-cfg"]["label"]
    folder = next(p for p in out.iterdir() if (p / "grid.png").is_file())
    for seed in (0, 1):
        got = image(folder / f"seed-{seed}_delayed-step-2-before-no-cfg.png")
        with negdelay.apply(pipe, "glasses", start_step=2, before="no_cfg"):
            want = render(pipe, "a girl eating pizza", seed, 6)
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1  # a row of a batch vs one image: float noise
        assert not np.array_equal(got, image(folder / f"seed-{seed}_delayed-step-2.png"))
    _, _, params = parse_infotext(read_parameters(folder / "seed-0_delayed-step-2-before-no-cfg.png"))
    assert params["Negative schedule"] == "step:2 before=no_cfg = from step 2"
    # percent 0.5 on the tiny model's DDIM at 6 steps (timesteps 831, 665, 499, ...): ComfyUI's sigma at timestep
    # 499.5, reached at step 2 (timestep 499)
    _, _, params = parse_infotext(read_parameters(folder / "seed-0_delayed-percent-0.5.png"))
    assert params["Negative schedule"] == "percent:0.5 = from step 2"


def test_sweep_rows_for_both_early_behaviours(tmp_path, tiny_folder):
    out = tmp_path / "sw"
    r = invoke("sweep", "--model", tiny_folder, "-p", "a girl", "-n", "glasses", "--starts", "step:2,4", "--steps", "6",
               "--seeds", "0-1", "--before", "unconditional", "--before", "no_cfg", "--out", out, "--no-progress")
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    assert [(x["start_step"], x.get("before", "unconditional")) for x in s["starts"]] == [
        (2, "unconditional"), (4, "unconditional"), (2, "no_cfg"), (4, "no_cfg")]
    head = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert "before" in head and len((out / "results.csv").read_text().splitlines()) == 1 + 2 * 6
    assert {p.name for p in (out / "images").glob("seed-0_*")} >= {"seed-0_start-step-2.png",
                                                                   "seed-0_start-step-2-no_cfg.png"}
    assert "CFG off before" in r.output


# ------------------------------------------------------------------------------------------------- from-png
def test_round_trip_with_the_labs_own_pngs(tmp_path, tiny_folder):
    """A lab PNG (a delayed column with CFG off before) read back by ``generate --from-png`` is the same image (up to
    the float noise of a batched row) with the same infotext; a ``generate`` PNG read back is the same image, byte
    for byte."""
    out = tmp_path / "cmp"
    r = invoke("compare", "--model", tiny_folder, "-p", "a girl eating pizza", "-n", "glasses", "--steps", "6",
               "--seeds", "3", "-s", "fraction:0.4 before=no_cfg", "--out", out, "--no-progress")
    assert r.exit_code == 0, r.output
    source = next(out.rglob("seed-3_delayed-fraction-0.4-before-no-cfg.png"))
    g = tmp_path / "gen"
    r = invoke("generate", "--from-png", source, "--model", tiny_folder, "--out", g, "--no-progress")
    assert r.exit_code == 0, r.output
    made = next(g.glob("*.png"))
    assert np.abs(image(made).astype(int) - image(source).astype(int)).max() <= 1
    p1, n1, a = parse_infotext(read_parameters(source))
    p2, n2, b = parse_infotext(read_parameters(made))
    assert (p1, n1) == (p2, n2) and all(a[k] == b[k] for k in ("Steps", "Sampler", "CFG scale", "Seed", "Size",
                                                                 "Negative schedule"))
    again = tmp_path / "again"
    r = invoke("generate", "--from-png", made, "--model", tiny_folder, "--out", again, "--no-progress")
    assert r.exit_code == 0, r.output
    assert np.array_equal(image(next(again.glob("*.png"))), image(made))
    # the stock and no-negative columns come back as what they are
    for column, negative in (("stock", "glasses"), ("none", None)):
        src = next(out.rglob(f"seed-3_{column}.png"))
        settings = read_png(src).settings
        assert settings["a1111"] == (negative or "") and "schedule" not in settings


def a1111_png(path, negative, **params):
    text = infotext("a girl eating pizza", negative, {"Steps": 8, "Sampler": "DPM++ 2M", "Schedule type": "Karras",
                                                       "CFG scale": 7.5, "Seed": 11, "Size": "16x16",
                                                       "Model hash": "abc123", "Model": "v1-5-pruned", **params})
    path.write_bytes(png_bytes(Image.new("RGB", (16, 16)), text))
    return path


def test_an_a1111_png_with_prompt_editing_and_skip_early_cfg(tmp_path, tiny_folder, pipe):
    """A1111's infotext: the negative with prompt editing ``[blurry:glasses:4]`` and "Skip Early CFG: 0.3" (CFG off
    for the steps s with s / 8 <= 0.3: steps 0-2), DPM++ 2M Karras. The image equals negdelay.apply() with those
    segments on the stock pipeline (an independent route), byte for byte."""
    src = a1111_png(tmp_path / "a1111.png", "[blurry:glasses:4]", **{"Skip Early CFG": 0.3, "Clip skip": 2})
    g = tmp_path / "gen"
    r = invoke("generate", "--from-png", src, "--model", tiny_folder, "--out", g, "--no-progress")
    assert r.exit_code == 0, r.output
    assert "not reproduced: Clip skip" in r.output
    made = next(g.glob("*.png"))
    from diffusers import DPMSolverMultistepScheduler

    own = pipe.scheduler
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(own.config, use_karras_sigmas=True)
    try:
        # A1111: "blurry" at its steps 0-4, "glasses" from 5; CFG off while s / 8 <= 0.3 (steps 0, 1, 2)
        segments = [[(sch.Point("step", 0), sch.CONDITIONAL), (sch.Point("step", 3), "blurry"),
                     (sch.Point("step", 5), "glasses")]]
        with negdelay.apply(pipe, segments=segments):
            want = render(pipe, "a girl eating pizza", 11, 8, negative_prompt="")
    finally:
        pipe.scheduler = own
    assert np.array_equal(image(made), want)
    _, negative, params = parse_infotext(read_parameters(made))
    assert negative == "[blurry:glasses:4]" and params["Skip Early CFG"] == "0.3"
    assert params["Sampler"] == "DPM++ 2M Karras" and params["Seed"] == "11" and params["Size"] == "16x16"


def test_flags_override_the_png(tmp_path, tiny_folder):
    src = a1111_png(tmp_path / "a.png", "glasses")
    g = tmp_path / "gen"
    r = invoke("generate", "--from-png", src, "--model", tiny_folder, "--seeds", "5", "--steps", "6",
               "-n", "hat", "-s", "step:2", "--out", g, "--no-progress")
    assert r.exit_code == 0, r.output
    _, negative, params = parse_infotext(read_parameters(next(g.glob("*.png"))))
    assert (negative, params["Seed"], params["Steps"]) == ("hat", "5", "6")
    assert params["Negative schedule"] == "step:2 = from step 2"


def test_bad_pngs_are_refused_naming_what(tmp_path, tiny_folder):
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    no_steps = tmp_path / "nosteps.png"
    no_steps.write_bytes(png_bytes(Image.new("RGB", (8, 8)), "a girl\nNegative prompt: x\nSeed: 1"))
    cases = [
        (["--from-png", tmp_path / "missing.png", "--model", tiny_folder], "from-png: "),
        (["--from-png", plain, "--model", tiny_folder], "has no 'parameters' text"),
        (["--from-png", no_steps, "--model", tiny_folder], "lacks"),
        (["--from-png", a1111_png(tmp_path / "s.png", "x", Sampler="Magic"), "--model", tiny_folder],
         "Sampler 'Magic Karras' has no counterpart"),
        (["--from-png", a1111_png(tmp_path / "m.png", "x")], "made with model 'v1-5-pruned': give --model"),
    ]
    for args, needle in cases:
        out = tmp_path / "never"
        r = invoke("generate", *args, "--out", out)
        assert r.exit_code == 2 and needle in r.output and "Traceback" not in r.output, (args, r.output)
        assert not out.exists()
