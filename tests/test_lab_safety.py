"""The lab never loses a user's file, one process at a time works in a run folder, and Ctrl-C at any moment is one
line and exit code 130 with nothing half-written (issue 15). Real processes where it matters."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from lab_util import env, negdelay
from negdelay.lab.cli import app
from negdelay.lab.models import LabError
from negdelay.lab.outputs import LOCK_NAME, RunFolder, create_exclusive

runner = CliRunner()
TOY_GEN = ["generate", "-p", "a red circle", "-n", "with a dot", "-s", "step:2", "--steps", "4", "--no-progress"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------------------------ --out
def test_out_refuses_a_folder_negdelay_did_not_make(tmp_path):
    """The issue's reproduction: a user's folder with a note and a summary.md is refused and left as it was."""
    u = tmp_path / "u"
    (u / "sub").mkdir(parents=True)
    (u / "sub" / ".notes.tmp-keep").write_text("x")
    (u / "summary.md").write_text("mine")
    before = tree(u)
    r = invoke("compare", "--out", u, "--seeds", "0", "--steps", "8", "--no-progress")
    assert r.exit_code == 2, r.output
    assert r.output.startswith("negdelay: error: out: ") and "not a negdelay run folder" in r.output, r.output
    assert "Traceback" not in r.output
    assert tree(u) == before and sorted(os.listdir(u)) == ["sub", "summary.md"]  # nothing added, nothing removed


def test_out_accepts_an_empty_folder_and_refuses_a_foreign_run_json(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert invoke(*TOY_GEN, "--seeds", "0", "--out", empty).exit_code == 0
    assert (empty / "run.json").is_file()
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "run.json").write_text('{"name": "my own run.json"}')
    r = invoke(*TOY_GEN, "--seeds", "0", "--out", odd)
    assert r.exit_code == 2 and "run.json" in r.output and "negdelay" in r.output, r.output
    assert sorted(os.listdir(odd)) == ["run.json"]


def test_only_this_runs_temporaries_are_removed_and_only_where_it_writes(tmp_path):
    out = tmp_path / "run"
    args = [*TOY_GEN, "--seeds", "0-1", "--out", out]
    assert invoke(*args).exit_code == 0
    run_id = json.loads((out / "run.json").read_text())["id"]
    ours = out / f".seed-1.png.tmp-{run_id}-4242-deadbeef"  # what a killed earlier process of this run leaves
    ours.write_bytes(b"half")
    ours_record = out / "records" / f".seed-1.json.tmp-{run_id}-4242-deadbeef"
    ours_record.write_bytes(b"half")
    foreign = [out / ".notes.tmp-keep", out / "records" / ".x.tmp-0123456789ab-1-2", out / "mine" / ".a.tmp-x"]
    for f in foreign:
        f.parent.mkdir(exist_ok=True)
        f.write_bytes(b"user's")
    assert invoke(*args).exit_code == 0  # a resume
    assert not ours.exists() and not ours_record.exists()
    assert all(f.read_bytes() == b"user's" for f in foreign)


def test_run_json_is_created_exactly_once(tmp_path):
    """``create_exclusive``: of many threads creating one file at the same moment exactly one wins, and the file
    holds one writer's bytes in full."""
    target = tmp_path / "run.json"
    barrier = threading.Barrier(8)
    won = []

    def go(j):
        barrier.wait()
        if create_exclusive(target, (f'{{"writer": {j}}}' + " " * 10000 + "\n").encode(), tag="t"):
            won.append(j)

    threads = [threading.Thread(target=go, args=(j,)) for j in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and json.loads(target.read_text()) == {"writer": won[0]}
    assert sorted(os.listdir(tmp_path)) == ["run.json"]  # no temporary left


# ------------------------------------------------------------------------------------------------------------- lock
def test_a_held_lock_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "run"
    first = RunFolder(out)
    first.prepare("generate", {"steps": 4})
    try:
        with pytest.raises(LabError, match=rf"in use by process {os.getpid()}\b.*--wait-lock"):
            RunFolder(out).prepare("generate", {"steps": 4})
    finally:
        first.release()
    second = RunFolder(out)
    assert second.prepare("generate", {"steps": 4}) is True  # released: the same run resumes
    second.release()


def _popen(args, out):
    return subprocess.Popen([sys.executable, "-m", "negdelay", *map(str, args), "--out", str(out)], env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for(pred, proc, what, limit=240):
    deadline = time.time() + limit
    while time.time() < deadline:
        if pred():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the process ended before {what}: {proc.stderr.read()[-2000:]}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_second_process_on_the_same_folder_exits_2_or_waits_and_a_killed_holder_does_not_block(tmp_path):
    out = tmp_path / "run"
    args = [*TOY_GEN, "--seeds", "0-119"]
    holder = _popen(args, out)
    try:
        _wait_for(lambda: len(list((out / "records").glob("*.json"))) >= 1, holder, "the first record")
        second = negdelay(*args, "--out", out)  # the same command, the same folder
        assert holder.poll() is None, "the first run ended too early for this test"
        assert second.returncode == 2, second.stderr[-2000:]
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("negdelay: error: out: "), second.stderr
        assert f"process {holder.pid}" in lines[0] and "--wait-lock" in lines[0]
        # asked to wait: it says so, and goes on once the holder is gone -- here killed with SIGKILL (a stale lock)
        waiter = _popen([*args, "--wait-lock"], out)
        line = waiter.stderr.readline()
        assert line.startswith("negdelay: waiting") and f"process {holder.pid}" in line, line
        assert holder.poll() is None
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        assert waiter.wait(timeout=300) == 0, waiter.stderr.read()[-2000:]
    finally:
        for p in (holder,) + ((waiter,) if "waiter" in locals() else ()):
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stderr.close()
    log = (out / "processes" / "0.log").read_text().split()
    assert len(log) == len(set(log)) == 120  # every unit rendered once: never by both processes
    assert len(list(out.glob("*.png"))) == 120 and not list(out.rglob("*.tmp-*"))


def test_a_stale_lock_from_a_killed_run_does_not_block_a_rerun(tmp_path):
    out = tmp_path / "run"
    args = [*TOY_GEN, "--seeds", "0-29"]
    proc = _popen(args, out)
    try:
        _wait_for(lambda: (out / "run.json").is_file(), proc, "run.json")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        proc.stderr.close()
    assert (out / LOCK_NAME).is_file()  # the lock file stays; the lock on it died with the process
    r = negdelay(*args, "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]


# ----------------------------------------------------------------------------------------------------------- Ctrl-C
def _interrupt_at(tmp_path, name, moment):
    """Start a run, send SIGINT at ``moment(out, proc)``; return (returncode, stderr, out)."""
    out = tmp_path / name
    proc = _popen([*TOY_GEN, "--seeds", "0-199"], out)
    try:
        moment(out, proc)
        assert proc.poll() is None, "the run ended before the interrupt"
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=120)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    return code, err, out


def _after(seconds):
    return lambda out, proc: time.sleep(seconds)


def _after_records(n):
    return lambda out, proc: _wait_for(lambda: len(list((out / "records").glob("*.json"))) >= n, proc, "records")


@pytest.mark.parametrize("name, moment", [
    ("importing", _after(0.3)),  # Python is importing negdelay, typer, torch
    ("loading", _after(2.5)),  # importing torch/diffusers or loading the model, on this machine
    ("rendering", _after_records(3)),  # between and inside units of work
], ids=["importing", "loading", "rendering"])
def test_ctrl_c_at_any_moment_is_one_line_and_exit_130(tmp_path, name, moment):
    code, err, out = _interrupt_at(tmp_path, name, moment)
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 130, err[-3000:]
    assert len(lines) == 1 and lines[0].startswith("negdelay: interrupted"), err[-3000:]
    if not out.exists():
        return
    # nothing half-written: no temporaries, every record and PNG whole
    assert not list(out.rglob("*.tmp-*"))
    for rec in (out / "records").glob("*.json"):
        json.loads(rec.read_text())
    for png in out.glob("*.png"):
        with Image.open(png) as im:
            im.load()
