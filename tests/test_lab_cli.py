"""The CLI end to end: compare / sweep / generate on the embedded model, bad input -> exit 2 and nothing written,
resume after kill -9."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from lab_util import env, negdelay, save_tiny
from negdelay.lab.cli import app
from negdelay.lab.outputs import LOCK_NAME, parse_infotext, read_parameters

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny") / "pipe")


def test_compare_on_the_embedded_model(tmp_path):
    out = tmp_path / "cmp"
    r = invoke("compare", "--seeds", "0-1", "--steps", "8", "--out", out, "--no-progress")
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "negdelay-toy" and summary["detector"] == "negdelay.toy.detect"
    assert len(summary["pairs"]) == 3
    for pair in summary["pairs"].values():
        cols = pair["columns"]
        # no schedules given: the default fractions 0.1 and 0.3 of the run, as steps (max(1, int(0.1 * 8)), int(0.3 * 8))
        assert list(cols) == ["none", "stock", "delayed-step-1", "delayed-step-2"]
        for c in cols.values():  # detector rates per column, with intervals
            assert c["n"] == 2 and 0 <= c["dot"]["low"] <= c["dot"]["rate"] <= c["dot"]["high"] <= 1
        assert cols["none"]["pixel_distance"]["mean"] == 0.0
    manifest = json.loads((out / "manifest.json").read_text())
    paths = {f["path"] for f in manifest["files"]}
    assert len([p for p in paths if p.endswith(".png") and "grid" not in p]) == 3 * 2 * 4
    assert all((out / p).is_file() for p in paths)
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert on_disk == paths | {"manifest.json"}  # every file is in the manifest, and nothing else is there
    grid = out / "yellow-circle" / "grid.png"
    assert grid.is_file()
    prompt, negative, params = parse_infotext(read_parameters(out / "yellow-circle" / "seed-1_delayed-step-2.png"))
    assert (prompt, negative) == ("a yellow circle", "with a dot")
    assert params["Seed"] == "1" and params["Steps"] == "8" and params["Sampler"] == "PLMS"
    assert params["Size"] == "32x32" and params["Model"] == "negdelay-toy" and "step 2" in params["Negative schedule"]
    md = (out / "summary.md").read_text()
    assert "| stock negative | 2 |" in md and "delayed from step 2" in md
    # the same command again: everything was done, nothing is rendered twice
    r2 = invoke("compare", "--seeds", "0-1", "--steps", "8", "--out", out, "--no-progress")
    assert r2.exit_code == 0, r2.output
    assert (out / "processes" / "0.log").read_text().split() == [f"{p}__seed-0-1" for p in summary["pairs"]]


def test_sweep_and_generate_on_the_embedded_model(tmp_path):
    out = tmp_path / "sw"
    r = invoke("sweep", "--starts", "step:2,4", "--seeds", "0-2", "--steps", "6", "--out", out, "--no-progress")
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    assert [x["start_step"] for x in s["starts"]] == [2, 4] and s["starts"][0]["n"] == 3
    assert set(s["reference"]) == {"none", "stock"} and "dot" in s["starts"][0]
    assert (out / "sweep.png").stat().st_size > 1000
    lines = (out / "results.csv").read_text().splitlines()
    assert len(lines) == 1 + 3 * 4 and lines[0].startswith("seed,column,kind,start_step")
    assert len((out / "summary.csv").read_text().splitlines()) == 3

    g = tmp_path / "gen"
    r = invoke("generate", "-p", "a blue square", "-n", "with a dot", "-s", "fraction:0.25", "--steps", "8",
               "--seeds", "3-5", "--out", g, "--no-progress")
    assert r.exit_code == 0, r.output
    pngs = sorted(g.glob("*.png"))
    assert len(pngs) == 3
    _, neg, params = parse_infotext(read_parameters(pngs[0]))
    assert neg == "with a dot" and "step 2" in params["Negative schedule"]
    r = invoke("generate", "-p", "a blue square", "--a1111", "[with a dot:3]", "--steps", "8", "--out", tmp_path / "a", "--no-progress")
    assert r.exit_code == 0, r.output
    _, neg, _ = parse_infotext(read_parameters(next((tmp_path / "a").glob("*.png"))))
    assert neg == "[with a dot:3]"  # what A1111 itself reads as the same delayed negative


def _bad_inputs(tmp_path, tiny_folder):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    ti = tmp_path / "ti.safetensors"
    ti.write_bytes(b"")
    yaml_file = tmp_path / "bad.yaml"
    yaml_file.write_text("steps: 8\nsampler: euler\n")
    m = ["--model", tiny_folder, "-p", "a girl", "-n", "glasses", "--steps", "6"]
    return [
        (["compare", "--scheduler", "fancy"], "scheduler: Input should be 'pndm'"),
        (["compare", "--model", tmp_path / "missing.safetensors", "-p", "a", "-n", "b"], "does not exist"),
        (["compare", "--model", tmp_path / "old.ckpt", "-p", "a", "-n", "b"], "does not exist"),
        (["compare", *m, "--ti", f"{ti}:EasyNeg"], "token 'EasyNeg'"),
        (["compare", *m, "-s", "step:6"], "resolves to step 6 in this run of 6 steps"),
        (["sweep", *m[:-2], "--starts", "step:2,9", "--steps", "6"], "starts outside this run of 6 steps: 9 (step 9)"),
        (["compare", *m, "--out", blocker / "sub"], "out: cannot write"),
        (["compare", "--config", yaml_file], "sampler: unknown key"),
        (["compare", "--config", tmp_path / "nope.yaml"], "does not exist"),
        (["generate", *m, "-s", "step:2", "--a1111", "[x:2]"], "not both"),
        (["generate", *m[:-2], "--a1111", "[glasses|hat]"], "a1111"),
    ]


def test_bad_input_gives_a_clear_error_exit_2_and_writes_nothing(tmp_path, tiny_folder, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args, needle in _bad_inputs(tmp_path, tiny_folder):
        out = tmp_path / "never"
        if "--out" not in args:
            args = [*args, "--out", out]
        r = invoke(*args)
        assert r.exit_code == 2, (args, r.output)
        assert needle in r.output and r.output.startswith("negdelay: error: "), (args, r.output)
        assert "Traceback" not in r.output
        assert not out.exists(), args


def test_bad_input_in_a_real_process(tmp_path):
    r = negdelay("compare", "--scheduler", "fancy", "--out", tmp_path / "x")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "scheduler" in r.stderr
    assert not (tmp_path / "x").exists()


def test_resume_after_kill_9_loses_and_duplicates_nothing(tmp_path, tiny_folder):
    args = ["sweep", "--model", tiny_folder, "-p", "a girl eating pizza", "-n", "glasses", "--starts", "step:1-4",
            "--steps", "6", "--seeds", "0-19", "--no-progress"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "negdelay", *map(str, args), "--out", str(killed)], env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if len(list((killed / "records").glob("*.json"))) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed: " + proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    n_before = len(list((killed / "records").glob("*.json")))
    assert 3 <= n_before < 20 and not (killed / "summary.json").exists()

    r = negdelay(*args, "--out", killed)
    assert r.returncode == 0, r.stderr[-3000:]
    straight = tmp_path / "straight"
    r = negdelay(*args, "--out", straight)
    assert r.returncode == 0, r.stderr[-3000:]

    def files(root):
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
                if p.is_file() and p.parts[len(root.parts)] != "processes" and p.name != LOCK_NAME}

    a, b = files(killed), files(straight)
    assert sorted(a) == sorted(b)  # nothing lost, no stray temporaries
    assert not [k for k in a if ".tmp-" in k]
    for k in a:  # PNGs, records, CSVs, summary, manifest: byte-identical to an uninterrupted run
        if k != "sweep.png":  # matplotlib stamps nothing variable, but its bytes are not our claim
            assert a[k] == b[k], k
    log = (killed / "processes" / "0.log").read_text().split()
    assert len(log) == len(set(log)) and len(log) >= 19  # no unit rendered twice (the one in flight had no record)


def test_a_changed_model_is_not_mixed_into_a_resumed_run(tmp_path):
    folder = save_tiny(tmp_path / "pipe")
    args = ["compare", "--model", folder, "-p", "a girl", "-n", "glasses", "-s", "step:2", "--steps", "4",
            "--seeds", "0", "--out", tmp_path / "run", "--no-progress"]
    assert invoke(*args).exit_code == 0
    assert invoke(*args).exit_code == 0  # same model, same settings: a (finished) resume
    weights = next((folder / "unet").glob("*.safetensors"))
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))  # as a re-export would
    r = invoke(*args)
    assert r.exit_code == 2 and "different run" in r.output and "model_files" in r.output, r.output
