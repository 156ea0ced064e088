"""Files the lab writes: atomic writes, PNGs with A1111-style infotext, per-unit records, the manifest.

A run's output folder holds:

- ``run.json``: the command and its validated settings; a second run into the same folder must have the same
  settings (it then resumes), otherwise it is refused.
- ``records/<unit>.json``: one per finished unit of work (a pipeline call's images, with their metrics). A unit is
  done exactly when its record exists: records are written last, atomically, after the unit's PNGs. A run killed at
  any moment (even ``kill -9``) and started again skips the units that have records and redoes the others, whose
  PNGs it overwrites (atomically), so nothing is lost and nothing is duplicated.
- ``manifest.json``: every file of the run and what it is, rebuilt from the records at the end of a run.

Every file is written to a temporary name in the same folder, flushed, then moved into place with ``os.replace``;
leftover temporaries of a killed run (``.*.tmp-*``) are removed when the next run starts.
"""

from __future__ import annotations

import io
import json
import os
import re
import uuid
from pathlib import Path

TMP_MARK = ".tmp-"


def atomic_write(path: Path, data: bytes) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, obj) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def write_text(path: Path, text: str) -> None:
    atomic_write(path, text.encode())


def clean_temporaries(root: Path) -> int:
    """Remove leftover temporary files of killed runs under ``root``; returns how many."""
    n = 0
    for p in Path(root).rglob(f".*{TMP_MARK}*"):
        if p.is_file():
            p.unlink(missing_ok=True)
            n += 1
    return n


# ----------------------------------------------------------------------------------------------------------- infotext
def _quote(value) -> str:
    s = str(value)
    return json.dumps(s) if any(c in s for c in ',:"\n') else s


def infotext(prompt: str, negative: str | None, params: dict) -> str:
    """A1111's ``parameters`` text: the prompt, ``Negative prompt: ...`` (when there is one), then one line of
    ``Key: value`` pairs separated by ", " (values holding , : or " are JSON-quoted, as A1111 does)."""
    lines = [prompt]
    if negative:
        lines.append(f"Negative prompt: {negative}")
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in params.items()))
    return "\n".join(lines)


_PAIR = re.compile(r'\s*([^:,"]+?):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


def parse_infotext(text: str) -> tuple[str, str | None, dict[str, str]]:
    """Inverse of ``infotext``: ``(prompt, negative or None, {key: value as text})``."""
    lines = text.split("\n")
    params: dict[str, str] = {}
    if lines and re.match(r"\s*Steps:", lines[-1]):
        for m in _PAIR.finditer(lines[-1]):
            key, value = m.group(1).strip(), m.group(2).strip()
            params[key] = json.loads(value) if value.startswith('"') else value
        lines = lines[:-1]
    prompt_lines, negative_lines, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:"):].lstrip()
        (negative_lines if in_negative else prompt_lines).append(line)
    return "\n".join(prompt_lines), ("\n".join(negative_lines) if in_negative else None), params


def png_bytes(image, text: str | None = None) -> bytes:
    """A PIL image as PNG bytes, with ``text`` in the ``parameters`` chunk."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    if text is not None:
        info.add_text("parameters", text)
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def read_parameters(path: Path) -> str | None:
    from PIL import Image

    with Image.open(path) as im:
        return im.text.get("parameters") if hasattr(im, "text") else im.info.get("parameters")


# ------------------------------------------------------------------------------------------------- run folder, records
class RunFolder:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.records = self.root / "records"

    def prepare(self, command: str, settings: dict, main: bool = True) -> bool:
        """Create the folder (or check it is writable); refuse a folder that holds a different run.

        Returns True when the folder already held this run (a resume)."""
        from .models import LabError

        try:
            self.records.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe{TMP_MARK}{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise LabError(f"out: cannot write to {str(self.root)!r}: {e.strerror or e}") from None
        run = {"command": command, "settings": settings}
        path = self.root / "run.json"
        if path.exists():
            try:
                old = json.loads(path.read_text())
            except (OSError, ValueError):
                old = None
            if old is not None and old != run:
                diff = _diff(old, run)
                raise LabError(
                    f"out: {str(self.root)!r} holds a different run ({diff}); use another --out to start a new run, "
                    "or the same settings to resume it"
                )
            if old is not None:
                return True
        if main:
            write_json(path, run)
        return False

    def done(self) -> dict[str, dict]:
        out = {}
        for p in sorted(self.records.glob("*.json")):
            try:
                out[p.stem] = json.loads(p.read_text())
            except (OSError, ValueError):
                continue  # cannot happen with atomic writes; an unreadable record means: not done
        return out

    def save_record(self, unit: str, record: dict) -> None:
        write_json(self.records / f"{unit}.json", record)

    def log_done(self, rank: int, unit: str) -> None:
        """Append to ``processes/<rank>.log``: an audit of which process rendered which unit, run after run."""
        logs = self.root / "processes"
        logs.mkdir(exist_ok=True)
        with open(logs / f"{rank}.log", "a") as f:
            f.write(unit + "\n")

    def write_manifest(self, files: list[dict], extra: dict | None = None) -> None:
        write_json(self.root / "manifest.json", {**(extra or {}), "files": files})


def _diff(old: dict, new: dict) -> str:
    if old.get("command") != new.get("command"):
        return f"command {old.get('command')!r}, not {new.get('command')!r}"
    a, b = old.get("settings", {}), new.get("settings", {})
    keys = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return "different " + ", ".join(keys[:6])
