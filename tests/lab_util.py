"""Helpers for the lab's tests: the tiny pipeline saved as a diffusers folder (so the loaders read real files)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def save_tiny(folder: Path) -> Path:
    from tiny import tiny_sd

    pipe = tiny_sd()
    pipe.save_pretrained(str(folder))
    return folder


def env() -> dict:
    e = dict(os.environ)
    e.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT / "src") + os.pathsep + e.get("PYTHONPATH", ""))
    return e


def negdelay(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "negdelay", *map(str, args)], cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=timeout)
