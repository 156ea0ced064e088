"""Bad and unusual input, as a new user would try it: the library and the ``negdelay`` command line (issue 15).

Every case states its input and the outcome the docs promise: a clear error naming what is wrong (the library raises
``ValueError``/``TypeError``; the CLI prints one ``negdelay: error: ...`` line, exits with code 2 and writes
nothing), or the documented behaviour. New cases join the lists as they are found. What needs real processes
(the run-folder lock, Ctrl-C, kill -9) is in tests/test_lab_safety.py and tests/test_lab_cli.py; several threads
sharing one callback in tests/test_concurrency.py.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from lab_util import negdelay, save_tiny
from negdelay import AutoDelayedNegative, DelayedNegative
from negdelay.a1111 import schedule as a1111_schedule
from negdelay.lab import config as C
from negdelay.lab.cli import app

DEEP = "(" * 5000 + "[glasses:5]" + ")" * 5000  # a 10,011-character prompt nested 5000 deep

# ------------------------------------------------------------------------------------------------------- library
# (id, the call, the exception, text the message must hold)
LIBRARY = [
    ("start_step=0", lambda: DelayedNegative("x", start_step=0), ValueError, "pass it to the pipeline instead"),
    ("no start", lambda: DelayedNegative("x"), ValueError, "give exactly one of start_step, start_fraction, start_sigma"),
    ("two starts", lambda: DelayedNegative("x", start_step=2, start_fraction=0.2), ValueError, "got start_step, start_fraction"),
    ("fraction 1.5", lambda: DelayedNegative("x", start_fraction=1.5), ValueError, "start_fraction must be a fraction in [0, 1]"),
    ("fraction nan", lambda: DelayedNegative("x", start_fraction=float("nan")), ValueError, "start_fraction must be finite"),
    ("step -1", lambda: DelayedNegative("x", start_step=-1), ValueError, "start_step must be >= 0"),
    ("step 2.5", lambda: DelayedNegative("x", start_step=2.5), TypeError, "start_step must be an int"),
    ("step True", lambda: DelayedNegative("x", start_step=True), TypeError, "got a bool"),
    ("sigma -2", lambda: DelayedNegative("x", start_sigma=-2.0), ValueError, "start_sigma must be a noise level > 0"),
    ("no negative", lambda: DelayedNegative(None, start_step=2), ValueError, "give exactly one of negative_prompt"),
    ("negative 123", lambda: DelayedNegative(123, start_step=2), TypeError, "negative_prompt must be a str or a non-empty list"),
    ("negative []", lambda: DelayedNegative([], start_step=2), TypeError, "non-empty list of str"),
    ("text and embeds", lambda: DelayedNegative("x", negative_prompt_embeds=torch.zeros(1, 2, 3), start_step=2),
     ValueError, "give exactly one of negative_prompt"),
    ("embeds 1-D", lambda: DelayedNegative(negative_prompt_embeds=torch.zeros(3), start_step=2), TypeError,
     "(rows, tokens, dim)"),
    ("list lengths differ", lambda: DelayedNegative(["a", "b"], start_step=[1, 2, 3]), ValueError,
     "negative_prompt has 2, start_step has 3 entries"),
    ("stop before start", lambda: DelayedNegative("x", start_step=4, stop_step=3), ValueError, "stop_step must be after start_step"),
    ("segments []", lambda: DelayedNegative(segments=[]), ValueError, "segments must hold at least one row"),
    ("segments and start", lambda: DelayedNegative(segments=[[]], start_step=2), ValueError, "not both"),
    ("for_pipeline(object)", lambda: DelayedNegative.for_pipeline(object(), "x", start_step=2), TypeError,
     "is not supported by a delayed-negative callback. Supported pipelines:"),
    ("auto: empty negative", lambda: AutoDelayedNegative(""), TypeError, "non-empty str"),
    ("auto: list negative", lambda: AutoDelayedNegative(["a"]), TypeError, "non-empty str"),
    ("auto: max_fraction 0", lambda: AutoDelayedNegative("a", max_fraction=0), ValueError, "max_fraction must be a fraction in (0, 1]"),
    ("auto: min_step 0", lambda: AutoDelayedNegative("a", min_step=0), ValueError, "cannot change step 0"),
    ("auto: fallback", lambda: AutoDelayedNegative("a", fallback="sometimes"), ValueError, "fallback must be 'max' or 'never'"),
    ("auto: when", lambda: AutoDelayedNegative("a", when="never"), ValueError, "when must be 'first' or 'latest'"),
    ("auto: detector 'x'", lambda: AutoDelayedNegative("a", detector="x"), TypeError, "detector must be a callable"),
    ("auto: lookahead alone", lambda: AutoDelayedNegative("a", lookahead=True), ValueError, "needs a detector"),
    ("auto: threshold nan", lambda: AutoDelayedNegative("a", threshold=float("nan")), TypeError, "threshold must be a number"),
    ("auto: rise -1", lambda: AutoDelayedNegative("a", detector=len, rise=-1), ValueError, "rise must be a finite number >= 0"),
    ("auto: signal_kind", lambda: AutoDelayedNegative("a", signal_kind="x"), ValueError, "signal_kind must be one of"),
    ("a1111: alternation", lambda: a1111_schedule("[glasses|hat]", 20), ValueError, "alternation [a|b] is not supported"),
    ("a1111: AND", lambda: a1111_schedule("x AND y", 20), ValueError, "'AND' at position 2"),
    ("a1111: unbalanced", lambda: a1111_schedule("a [glasses:5", 20), ValueError, "unbalanced '['"),
    ("a1111: steps 0", lambda: a1111_schedule("[glasses:5]", 0), ValueError, "steps must be an int >= 1"),
    ("a1111: not text", lambda: a1111_schedule(None, 20), TypeError, "text must be a str"),
    ("a1111: 10k deep nesting", lambda: a1111_schedule(DEEP, 20), ValueError,
     "(10011 characters; around position 100: '...(((("),
    ("seeds 0-99999999999", lambda: C.parse_seeds("0-99999999999"), ValueError,
     f"is 100000000000 seeds; a run takes at most {C.MAX_SEEDS}"),
    ("seeds -1", lambda: C.parse_seeds("-1"), ValueError, "cannot read '-1'"),
    ("seeds 5-2", lambda: C.parse_seeds("5-2"), ValueError, "runs backwards"),
    ("seeds []", lambda: C.parse_seeds([]), ValueError, "must not be empty"),
    ("seed 2**64", lambda: C.parse_seeds([2**64]), ValueError, f"a seed is at most {C.MAX_SEED}"),
    ("starts step:1-99999999999", lambda: C.Starts.model_validate("step:1-99999999999"), ValueError,
     "step 99999999999 is past the longest run"),
    ("starts step:5-2", lambda: C.Starts.model_validate("step:5-2"), ValueError, "runs backwards"),
]


@pytest.mark.parametrize("call, exc, needle", [c[1:] for c in LIBRARY], ids=[c[0] for c in LIBRARY])
def test_library_refuses_with_a_clear_error(call, exc, needle):
    with pytest.raises(exc) as e:
        call()
    assert needle in str(e.value), str(e.value)
    assert len(str(e.value)) < 600, "an error message should not repeat a long input"


# LEAD: negdelay.apply(...) cases go here, as (id, call, exception, needle) -- e.g. apply on an unsupported
# pipeline, a second pipeline sharing the hooked model, two threads calling hooked pipelines -- and join LIBRARY:
def _apply_cases():
    import negdelay
    from diffusers import DDPMPipeline, DDPMScheduler, StableDiffusionImg2ImgPipeline
    from tiny import tiny_sd

    sd = tiny_sd()
    other = StableDiffusionImg2ImgPipeline(**sd.components)  # shares the UNet, as from_pipe does

    def shared_model_called_by_the_other():
        with negdelay.apply(sd, "glasses", start_step=1):
            other("a cat", image=torch.zeros(1, 3, 16, 16), num_inference_steps=2, output_type="latent")

    return [
        ("apply-unserved", lambda: negdelay.apply(DDPMPipeline(unet=sd.unet, scheduler=DDPMScheduler()), "x",
                                                  start_step=1), TypeError, "`negdelay pipelines` lists"),
        ("apply-unknown-negative-arg", lambda: negdelay.apply(sd, "x", start_step=1, negative_prompt_2="y"), TypeError,
         "allowed extra negatives"),
        ("apply-start-0", lambda: negdelay.apply(sd, "x", start_step=0), ValueError, "start_step=0"),
        ("apply-no-start", lambda: negdelay.apply(sd, "x"), ValueError, "exactly one of start_step"),
        ("apply-two-starts", lambda: negdelay.apply(sd, "x", start_step=1, start_fraction=0.5), ValueError,
         "exactly one of"),
        ("apply-not-text", lambda: negdelay.apply(sd, 3, start_step=1), TypeError, "negative_prompt must be a str"),
        ("apply-shared-model", shared_model_called_by_the_other, RuntimeError, "called outside a call of that"),
    ]


APPLY: list = _apply_cases()


@pytest.mark.parametrize("call, exc, needle", [c[1:] for c in APPLY] or [pytest.param(None, None, None, marks=pytest.mark.skip("no apply() cases yet"))],
                         ids=[c[0] for c in APPLY] or ["none"])
def test_apply_refuses_with_a_clear_error(call, exc, needle):
    with pytest.raises(exc) as e:
        call()
    assert needle in str(e.value), str(e.value)


# ----------------------------------------------------------------------------------- library: documented behaviour
@pytest.fixture(scope="module")
def pipe():
    from tiny import tiny_sd

    return tiny_sd()


def _images(pipe, callback=None, prompt="a girl eating pizza", steps=4, **kw):
    with torch.no_grad():
        return pipe(prompt, num_inference_steps=steps, guidance_scale=kw.pop("guidance_scale", 7.5), output_type="np",
                    generator=torch.Generator().manual_seed(0), callback_on_step_end=callback, **kw).images


def test_run_time_refusals(pipe):
    # a fraction that resolves to step 0 for this run: a step-end callback cannot change step 0
    with pytest.raises(ValueError, match="step 0"):
        _images(pipe, DelayedNegative("glasses", start_fraction=0.1), steps=4)
    # 3 negatives for 2 images: the list must divide the rows
    with pytest.raises(ValueError, match="3"):
        _images(pipe, DelayedNegative(["a", "b", "c"], start_step=2), prompt=["a girl", "a cat"])
    # AutoDelayedNegative serves SD 1.x/2.x only
    from tiny_families import tiny_sdxl

    with pytest.raises(TypeError, match="AutoDelayedNegative serves Stable Diffusion 1.x/2.x"):
        _images(tiny_sdxl(), AutoDelayedNegative("glasses"))


def test_documented_no_ops(pipe):
    stock = _images(pipe)
    assert np.array_equal(_images(pipe, DelayedNegative("glasses", start_step=4)), stock)  # start >= N: never
    assert np.array_equal(_images(pipe, DelayedNegative("glasses", start_step=99)), stock)
    flat = _images(pipe, guidance_scale=1.0)  # no unconditional half: the callback does nothing
    assert np.array_equal(_images(pipe, DelayedNegative("glasses", start_step=2), guidance_scale=1.0), flat)


def test_one_callback_in_two_threads_is_what_each_call_gives_alone(pipe):
    """Documented (docs/semantics.md, Concurrency): per-call state; tests/test_concurrency.py has the full check."""
    from tiny import tiny_sd

    other = tiny_sd()
    alone = [_images(pipe, DelayedNegative("glasses", start_step=2)),
             _images(other, DelayedNegative("glasses", start_step=2), prompt=["a cat", "a dog"])]
    shared = DelayedNegative("glasses", start_step=2)
    got = {}
    threads = [threading.Thread(target=lambda: got.__setitem__(0, _images(pipe, shared))),
               threading.Thread(target=lambda: got.__setitem__(1, _images(other, shared, prompt=["a cat", "a dog"])))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert np.array_equal(got[0], alone[0]) and np.array_equal(got[1], alone[1])


# ------------------------------------------------------------------------------------------------------------ CLI
@pytest.fixture(scope="module")
def f(tmp_path_factory):
    """The inputs the CLI cases point at."""
    d = tmp_path_factory.mktemp("inputs")
    ns = SimpleNamespace(d=d)
    ns.user = d / "user-folder"  # a folder of the user's: a note in a subfolder and a summary.md
    (ns.user / "sub").mkdir(parents=True)
    (ns.user / "sub" / ".notes.tmp-keep").write_text("x")
    (ns.user / "summary.md").write_text("mine")
    ns.a_file = d / "a-file"
    ns.a_file.write_text("")
    ns.foreign_run = d / "foreign-run"
    ns.foreign_run.mkdir()
    (ns.foreign_run / "run.json").write_text('{"my": "own"}')
    ns.other_run = d / "other-run"  # a negdelay run folder of another command
    ns.other_run.mkdir()
    (ns.other_run / "run.json").write_text('{"command": "sweep", "settings": {}, "id": "0123456789ab"}\n')
    ns.ckpt = d / "model.ckpt"
    ns.ckpt.write_bytes(os.urandom(64))
    ns.empty_ckpt = d / "empty.ckpt"
    ns.empty_ckpt.write_bytes(b"")
    ns.not_pipeline = d / "not-a-pipeline"
    ns.not_pipeline.mkdir()
    ns.evil_yaml = d / "evil.yaml"
    ns.evil_yaml.write_text("steps: !!python/object/apply:os.system ['echo hacked']\n")
    ns.list_yaml = d / "list.yaml"
    ns.list_yaml.write_text("- a\n- b\n")
    ns.unknown_yaml = d / "unknown.yaml"
    ns.unknown_yaml.write_text("steps: 8\nsampler: euler\n")
    ns.big_seeds_yaml = d / "seeds.yaml"
    ns.big_seeds_yaml.write_text("seeds: 0-99999999999\n")
    return ns


TOY = ["-p", "a red circle", "-n", "with a dot"]
# (id, args (a function of the inputs f), text the one error line must hold); each ends with exit code 2, one line,
# and the output folder untouched (not created, or as it was)
CLI = [
    ("--scheduler fancy", lambda f: ["compare", "--scheduler", "fancy"], "scheduler: Input should be 'pndm'"),
    ("--seeds 0-99999999999", lambda f: ["compare", "--seeds", "0-99999999999"], "seeds: '0-99999999999' is 100000000000 seeds"),
    ("seeds too many in YAML", lambda f: ["compare", "--config", f.big_seeds_yaml], "a run takes at most"),
    ("--seeds 5-2", lambda f: ["compare", "--seeds", "5-2"], "runs backwards"),
    ("--seeds -3", lambda f: ["compare", "--seeds", "-3"], "cannot read"),
    ("--steps 1", lambda f: ["compare", "--steps", "1"], "steps: Input should be greater than or equal to 2"),
    ("--steps 100000", lambda f: ["compare", "--steps", "100000"], "steps: Input should be less than or equal to 1000"),
    ("--cfg 1", lambda f: ["compare", "--cfg", "1"], "guidance_scale: Input should be greater than 1"),
    ("--height 30", lambda f: ["compare", "--height", "30"], "multiple of 8"),
    ("--device gpu", lambda f: ["compare", "--device", "gpu"], "use cpu, cuda, cuda:N"),
    ("--dtype float64", lambda f: ["compare", "--dtype", "float64"], "'bfloat16'"),
    ("--threads 0", lambda f: ["compare", "--threads", "0"], "threads: Input should be greater than or equal to 1"),
    ("--prompt alone", lambda f: ["compare", "-p", "a"], "give --prompt and --negative together"),
    ("3 negatives for 2 prompts", lambda f: ["compare", "-p", "a", "-p", "b", "-n", "x", "-n", "y", "-n", "z"], "give 1 or 2"),
    ("-s frac:0.2", lambda f: ["compare", "-s", "frac:0.2"], "kind 'frac' is not one of"),
    ("-s step:6..4", lambda f: ["compare", "-s", "step:6..4"], "the stop must come after the start"),
    ("-s twice", lambda f: ["compare", "-s", "step:3", "-s", "3"], "schedules hold duplicates"),
    ("YAML python tag", lambda f: ["compare", "--config", f.evil_yaml], "not valid YAML"),
    ("YAML list", lambda f: ["compare", "--config", f.list_yaml], "must hold a mapping"),
    ("YAML unknown key", lambda f: ["compare", "--config", f.unknown_yaml], "sampler: unknown key (allowed:"),
    ("YAML missing", lambda f: ["compare", "--config", f.d / "nope.yaml"], "does not exist"),
    ("--out a user's folder", lambda f: ["compare", "--steps", "8", "--out", f.user], "is not empty (sub, summary.md) and is not a negdelay run folder"),
    ("--out a file", lambda f: ["compare", "--steps", "8", "--out", f.a_file], "it is a file, not a folder"),
    ("--out a foreign run.json", lambda f: ["compare", "--steps", "8", "--out", f.foreign_run], "has a run.json that negdelay did not write"),
    ("--out another command's run", lambda f: ["compare", "--steps", "8", "--out", f.other_run], "holds a different run (command 'sweep', not 'compare')"),
    ("--model missing.safetensors", lambda f: ["compare", *TOY, "--model", f.d / "missing.safetensors"], "does not exist"),
    ("--model x.ckpt", lambda f: ["compare", *TOY, "--model", f.ckpt], "is a pickle checkpoint (.ckpt), which can run code"),
    ("--allow-pickle random bytes", lambda f: ["compare", *TOY, "--model", f.ckpt, "--allow-pickle"],
     "it is not a PyTorch checkpoint: neither a zip archive nor a pickle"),
    ("--allow-pickle empty file", lambda f: ["compare", *TOY, "--model", f.empty_ckpt, "--allow-pickle"], "the file is empty"),
    ("--model folder", lambda f: ["compare", *TOY, "--model", f.not_pipeline], "no model_index.json"),
    ("--model 'not a model'", lambda f: ["compare", *TOY, "--model", "not a model"], "does not exist: give 'toy'"),
    ("--ti nocolon", lambda f: ["compare", "--ti", "nocolon"], "write FILE:TOKEN"),
    ("--ti token not in negative", lambda f: ["compare", *TOY, "--ti", f"{f.a_file}:EasyNeg"], "token 'EasyNeg'"),
    ("--ti pickle", lambda f: ["compare", "-p", "a red circle", "-n", "EasyNeg", "--steps", "4", "--ti", f"{f.ckpt}:EasyNeg"],
     "only .safetensors files are loaded"),
    ("-s step:6 with --steps 4", lambda f: ["compare", "-s", "step:6", "--steps", "4"], "schedule 'step:6' resolves to step 6 in this run of 4 steps"),
    ("sweep --starts step:0,3", lambda f: ["sweep", "--starts", "step:0,3", "--steps", "6"], "starts outside this run of 6 steps: 0 (step 0)"),
    ("sweep --starts steps:1", lambda f: ["sweep", "--starts", "steps:1"], "kind 'steps' is not one of"),
    ("sweep --starts step:1-99999999999", lambda f: ["sweep", "--starts", "step:1-99999999999"], "past the longest run"),
    ("generate -s and --a1111", lambda f: ["generate", *TOY, "-s", "step:2", "--a1111", "[x:2]"], "not both"),
    ("generate without negative", lambda f: ["generate", "-p", "a red circle"], "negative: give the negative prompt"),
    ("generate --a1111 [a|b]", lambda f: ["generate", "-p", "a red circle", "--a1111", "[with a dot|hat]", "--steps", "4"], "alternation"),
    ("generate --a1111 10k deep", lambda f: ["generate", "-p", "a red circle", "--a1111", DEEP, "--steps", "4"],
     "(10011 characters; around position 100"),
]


@pytest.mark.parametrize("args, needle", [c[1:] for c in CLI], ids=[c[0] for c in CLI])
def test_cli_refuses_with_one_line_exit_2_and_writes_nothing(f, tmp_path, args, needle):
    argv = [str(a) for a in args(f)]
    if "--out" in argv:
        out = Path(argv[argv.index("--out") + 1])
    else:
        out = tmp_path / "never"
        argv += ["--out", str(out)]
    before = _tree(out)
    r = CliRunner().invoke(app, [*argv, "--no-progress"])
    lines = r.output.strip().splitlines()
    assert r.exit_code == 2, r.output
    assert len(lines) == 1, r.output
    assert lines[0].startswith("negdelay: error: ") and needle in r.output, r.output
    assert "Traceback" not in r.output and len(r.output) < 1200
    assert _tree(out) == before  # nothing written, nothing removed


def _tree(root: Path):
    if not root.exists():
        return None
    if root.is_file():
        return root.read_bytes()
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_cli_default_schedules_fit_a_short_run(tmp_path):
    """With no schedules and --steps 4, the defaults (0.1 and 0.3 of the run, at least step 1) give one delayed
    column, from step 1 -- not an error about a schedule the user never wrote."""
    out = tmp_path / "cmp"
    r = CliRunner().invoke(app, ["compare", "--steps", "4", "--seeds", "0", "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    import json

    cols = json.loads((out / "summary.json").read_text())["pairs"]["yellow-circle"]["columns"]
    assert list(cols) == ["none", "stock", "delayed-step-1"]


def test_cli_bad_input_in_a_real_process(tmp_path):
    r = negdelay("compare", "--seeds", "0-99999999999", "--out", tmp_path / "x")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "Traceback" not in r.stderr and "MemoryError" not in r.stderr and "at most" in r.stderr
    assert not (tmp_path / "x").exists()


def test_cli_on_a_tiny_model_folder(tmp_path):
    """A diffusers folder works; the same folder with different settings is refused as a different run."""
    folder = save_tiny(tmp_path / "pipe")
    base = ["compare", "--model", str(folder), "-p", "a girl", "-n", "glasses", "--seeds", "0", "--out",
            str(tmp_path / "run"), "--no-progress"]
    assert CliRunner().invoke(app, [*base, "--steps", "4"]).exit_code == 0
    r = CliRunner().invoke(app, [*base, "--steps", "6"])
    assert r.exit_code == 2 and "holds a different run (different steps)" in r.output, r.output
