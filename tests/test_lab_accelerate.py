"""``accelerate launch -m negdelay sweep``: two CPU processes split the seeds, no unit twice, one merged result equal
to a single-process run's.

On a machine without GPUs, accelerate 1.x's ``--cpu`` flag starts a single process unless MPI is installed; the
two processes here are started the way ``--multi_gpu`` starts them (torchrun), and the lab asks accelerate for a CPU
process group (gloo) because ``--device cpu``.
"""

import json
import socket
import subprocess
import sys

import pytest

from lab_util import env, negdelay, save_tiny

pytest.importorskip("accelerate")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_split_the_seeds_into_one_merged_result(tmp_path):
    folder = save_tiny(tmp_path / "pipe")
    args = ["sweep", "--model", str(folder), "-p", "a girl eating pizza", "-n", "glasses", "--starts", "step:1,3",
            "--steps", "5", "--seeds", "0-6", "--device", "cpu", "--no-progress"]
    two = tmp_path / "two"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), "-m", "negdelay", *args, "--out", str(two)]
    r = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    one = tmp_path / "one"
    r1 = negdelay(*args, "--out", one)
    assert r1.returncode == 0, r1.stderr[-3000:]

    logs = {p.stem: p.read_text().split() for p in (two / "processes").glob("*.log")}
    assert set(logs) == {"0", "1"}
    units = [f"seed-{s}" for s in range(7)]
    assert sorted(logs["0"] + logs["1"]) == sorted(units)  # every seed once, none twice
    assert logs["0"] == units[0::2] and logs["1"] == units[1::2]
    records = {p.stem: json.loads(p.read_text()) for p in (two / "records").glob("*.json")}
    assert {k: v["process"] for k, v in records.items()} == {u: i % 2 for i, u in enumerate(units)}

    # one merged result, the same as one process computes
    s2, s1 = (json.loads((d / "summary.json").read_text()) for d in (two, one))
    assert s2 == s1
    assert (two / "results.csv").read_bytes() == (one / "results.csv").read_bytes()
    for png in (one / "images").glob("*.png"):
        assert (two / "images" / png.name).read_bytes() == png.read_bytes()
    manifest = json.loads((two / "manifest.json").read_text())
    assert sorted(manifest["units"]) == sorted(units)
