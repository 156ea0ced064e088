"""Files the lab writes: atomic writes, PNGs with A1111-style infotext, per-unit records, the manifest.

A run's output folder holds:

- ``run.json``: the command, its validated settings and the run's id; a second run into the same folder must have
  the same settings (it then resumes), otherwise it is refused. A folder is a run folder when negdelay made it, i.e.
  it holds such a ``run.json``; an existing non-empty folder without one is refused (negdelay never writes into, or
  cleans up, a folder of the user's).
- ``.negdelay.lock``: one process at a time works in a run folder (an OS lock on this file, which also names the
  holder). The operating system drops the lock when its process ends, however it ends, so a killed run never
  blocks the next one.
- ``records/<unit>.json``: one per finished unit of work (a pipeline call's images, with their metrics). A unit is
  done exactly when its record exists: records are written last, atomically, after the unit's PNGs. A run killed at
  any moment (even ``kill -9``) and started again skips the units that have records and redoes the others, whose
  PNGs it overwrites (atomically), so nothing is lost and nothing is duplicated.
- ``manifest.json``: every file of the run and what it is, rebuilt from the records at the end of a run.

Every file is written to a temporary name in the same folder, flushed, then moved into place with ``os.replace``.
A run's temporaries carry its id (``.<name>.tmp-<run id>-<pid>-<random>``); when the run starts again (holding the
lock) it removes the leftovers of its own killed processes, only those, and only in the folders it writes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import time
import uuid
from pathlib import Path
from typing import Callable

TMP_MARK = ".tmp-"
RUN_FILE = "run.json"
LOCK_NAME = ".negdelay.lock"


_in_flight: set[Path] = set()  # temporaries this process is writing right now


def remove_in_flight() -> None:
    """Remove the temporaries this process is writing: for a Ctrl-C handler that ends the process at once."""
    for tmp in list(_in_flight):
        try:
            os.unlink(tmp)
        except OSError:
            pass


def temporary_name(path: Path, tag: str | None = None) -> Path:
    """``.<name>.tmp-[<tag>-]<pid>-<random>`` beside ``path``."""
    path = Path(path)
    tag = f"{tag}-" if tag else ""
    return path.with_name(f".{path.name}{TMP_MARK}{tag}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write(path: Path, data: bytes, tag: str | None = None) -> None:
    """Write ``data`` to ``path`` so that no reader, and no interruption, ever leaves part of it: a temporary beside
    it (named with ``tag``, a run's id), flushed, then ``os.replace``. The temporary is removed on any failure,
    Ctrl-C included; only ``kill -9`` can leave it (the run removes it when it starts again)."""
    path = Path(path)
    tmp = temporary_name(path, tag)
    _in_flight.add(tmp)
    try:
        _write_synced(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        _in_flight.discard(tmp)


def create_exclusive(path: Path, data: bytes, tag: str | None = None) -> bool:
    """Create ``path`` holding ``data`` only if it does not exist, atomically: the data goes to a temporary that is
    then hard-linked into place (``os.link`` fails when ``path`` exists), so of two creators exactly one wins and
    nobody reads a part of the file. Returns False when ``path`` already existed."""
    path = Path(path)
    tmp = temporary_name(path, tag)
    _in_flight.add(tmp)
    try:
        _write_synced(tmp, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: exclusive create, then the bytes
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        return True
    finally:
        tmp.unlink(missing_ok=True)
        _in_flight.discard(tmp)


def write_json(path: Path, obj, tag: str | None = None) -> None:
    atomic_write(path, json_bytes(obj), tag)


def write_text(path: Path, text: str, tag: str | None = None) -> None:
    atomic_write(path, text.encode(), tag)


def json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode()


def clean_temporaries(folder: Path, tag: str) -> int:
    """Remove the temporaries named with ``tag`` (a run's id) directly in ``folder``: what killed processes of that
    run left. Nothing else: not other names, not subfolders. Returns how many."""
    if not tag or not re.fullmatch(r"[0-9a-f]+", tag):
        raise ValueError(f"clean_temporaries: tag must be a run id (hex), got {tag!r}")
    n = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for p in folder.glob(f".*{TMP_MARK}{tag}-*"):
        if p.is_file() and not p.is_symlink():
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


# ------------------------------------------------------------------------------------------------------------- lock
try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

_WIN_LOCK_AT = 1 << 30  # Windows locks bytes: one far past the holder's text, so that the text stays readable


class RunLock:
    """An exclusive lock on a run folder: an OS lock (``fcntl.flock``; ``msvcrt.locking`` on Windows) on
    ``<folder>/.negdelay.lock``, whose text names the holder (process id, host, command, since when). The operating
    system drops the lock when the holding process ends, however it ends (``kill -9`` too): the file may stay, a
    stale lock cannot. Local file systems only (NFS without working ``flock`` is not supported)."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_NAME
        self.fd: int | None = None

    @staticmethod
    def _try(fd: int) -> bool:
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:
                os.lseek(fd, _WIN_LOCK_AT, 0)
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    @staticmethod
    def _unlock(fd: int) -> None:
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            else:
                os.lseek(fd, _WIN_LOCK_AT, 0)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass

    def holder(self) -> str:
        """Who holds the lock, in words (from the lock file's text)."""
        for _ in range(20):  # the holder writes its text right after it got the lock
            try:
                info = json.loads(self.path.read_text() or "null")
            except (OSError, ValueError):
                info = None
            if isinstance(info, dict) and "pid" in info:
                host = "" if info.get("host") == socket.gethostname() else f" on host {info.get('host')}"
                return f"process {info['pid']}{host} ({info.get('command', 'negdelay')}, since {info.get('since', '?')})"
            time.sleep(0.05)
        return "another process"

    def acquire(self, command: str, wait: bool = False, say: Callable[[str], None] | None = None,
                where: str = "") -> None:
        """Take the lock, or raise ``LabError`` naming the holder; with ``wait``, say so (``say``) and wait."""
        from .models import LabError

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            said = False
            while not self._try(fd):
                who = self.holder()
                if not wait:
                    raise LabError(
                        f"out: {where or str(self.path.parent)!r} is in use by {who}; wait for it to finish, or pass "
                        "--wait-lock to wait for it (two runs in one folder would render every image twice)"
                    )
                if not said and say is not None:
                    say(f"waiting for {who} to finish with {where or str(self.path.parent)!r} (--wait-lock)")
                    said = True
                time.sleep(0.2)
            text = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                               "since": time.strftime("%Y-%m-%d %H:%M:%S")})
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, 0)
            os.write(fd, text.encode())
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def wait_free(self, say: Callable[[str], None] | None = None, where: str = "") -> None:
        """Wait until nobody holds the lock (taking it for a moment), if the lock file exists; writes nothing."""
        if not self.path.is_file():
            return
        try:
            fd = os.open(self.path, os.O_RDWR)
        except OSError:
            return
        try:
            said = False
            while not self._try(fd):
                if not said and say is not None:
                    say(f"waiting for {self.holder()} to finish with {where or str(self.path.parent)!r} (--wait-lock)")
                    said = True
                time.sleep(0.2)
            self._unlock(fd)
        finally:
            os.close(fd)

    def busy(self) -> str | None:
        """The holder in words when another process holds the lock; None when it is free. Writes nothing."""
        if not self.path.is_file():
            return None
        try:
            fd = os.open(self.path, os.O_RDWR)
        except OSError:
            return None
        try:
            if self._try(fd):
                self._unlock(fd)
                return None
            return self.holder()
        finally:
            os.close(fd)

    def release(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            self._unlock(fd)
            os.close(fd)


# ------------------------------------------------------------------------------------------------- run folder, records
def run_id(command: str, settings: dict) -> str:
    """A run's id: a hash of its command and settings, so every process of one run (and every resume of it) names
    its temporaries alike, and no other run's names match."""
    text = json.dumps({"command": command, "settings": settings}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _run_json(path: Path):
    """The contents of a run folder's ``run.json``: a dict with a command and settings; None if absent; raises
    ``ValueError`` when there is a file that negdelay did not write."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ValueError(f"cannot be read ({e.strerror or e})") from None
    try:
        run = json.loads(text)
    except ValueError:
        raise ValueError("is not JSON") from None
    if not (isinstance(run, dict) and isinstance(run.get("command"), str) and isinstance(run.get("settings"), dict)):
        raise ValueError("does not hold a negdelay command and its settings")
    return run


class RunFolder:
    """An output folder negdelay made: ``prepare`` takes its lock and creates (or checks) ``run.json``; writes go
    through ``write``/``write_json``/``write_text`` (temporaries named with the run's id); ``release`` frees the
    lock (also as a context manager)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.records = self.root / "records"
        self.id: str | None = None
        self.lock = RunLock(self.root)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    # -- before anything is written ----------------------------------------------------------------------------
    def refuse_foreign(self) -> None:
        """Raise ``LabError`` when ``root`` cannot be a run folder: a file, or an existing non-empty folder that
        negdelay did not make (no ``run.json`` of negdelay's). Writes nothing."""
        from .models import LabError

        where = str(self.root)
        if self.root.exists() and not self.root.is_dir():
            raise LabError(f"out: cannot write to {where!r}: it is a file, not a folder")
        if not self.root.is_dir():
            return
        try:
            run = _run_json(self.root / RUN_FILE)
        except ValueError as e:
            raise LabError(
                f"out: {where!r} has a run.json that negdelay did not write (it {e}); negdelay writes only into a new "
                "or empty folder or one of its own runs: choose another --out"
            ) from None
        if run is not None:
            return
        try:
            others = sorted(set(os.listdir(self.root)) - {LOCK_NAME})
        except OSError as e:
            raise LabError(f"out: cannot read {where!r}: {e.strerror or e}") from None
        if others:
            shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
            raise LabError(
                f"out: {where!r} is not empty ({shown}) and is not a negdelay run folder (no run.json); negdelay "
                "writes only into a new or empty folder, or one of its own runs (to resume it), so that no file of "
                "yours is replaced or removed: choose another --out"
            )

    def check(self, command: str, settings: dict, wait: bool = False,
              say: Callable[[str], None] | None = None) -> None:
        """The checks ``prepare`` will make, before the model is loaded and without writing anything: not a
        foreign folder, not a different run, and not in use by another process (with ``wait``: wait until it is
        free)."""
        from .models import LabError

        self.refuse_foreign()
        if (self.root / RUN_FILE).is_file():
            self._same_run(command, settings, create=False)
        if wait:
            self.lock.wait_free(say, str(self.root))
            return
        who = self.lock.busy()
        if who is not None:
            raise LabError(
                f"out: {str(self.root)!r} is in use by {who}; wait for it to finish, or pass --wait-lock to wait "
                "for it (two runs in one folder would render every image twice)"
            )

    # -- the run ------------------------------------------------------------------------------------------------
    def prepare(self, command: str, settings: dict, main: bool = True, wait: bool = False,
                say: Callable[[str], None] | None = None) -> bool:
        """Take the folder for this run: refuse a folder negdelay did not make, take the lock (the main process;
        ``wait``: wait for another holder), create ``run.json`` (atomically, once) or check that it holds the same
        run. Returns True when the folder already held this run (a resume). ``main=False`` (the other processes
        of an ``accelerate launch``): only the check, after the main process prepared the folder."""
        from .models import LabError

        self.refuse_foreign()
        if not main:
            return self._same_run(command, settings, create=False)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LabError(f"out: cannot write to {str(self.root)!r}: {e.strerror or e}") from None
        try:
            self.lock.acquire(f"negdelay {command}", wait, say, str(self.root))
        except OSError as e:
            raise LabError(f"out: cannot write to {str(self.root)!r}: {e.strerror or e}") from None
        try:
            self.refuse_foreign()  # again, now that no other negdelay process can write here
            resumed = self._same_run(command, settings, create=True)
            self.records.mkdir(exist_ok=True)
        except BaseException:
            self.release()
            raise
        return resumed

    def _same_run(self, command: str, settings: dict, create: bool) -> bool:
        from .models import LabError

        run = {"command": command, "settings": settings}
        path = self.root / RUN_FILE
        while True:
            old = _run_json(path) if path.exists() else None
            if old is not None:
                mine = {"command": old["command"], "settings": old["settings"]}
                if mine != run:
                    raise LabError(
                        f"out: {str(self.root)!r} holds a different run ({_diff(mine, run)}); use another --out to "
                        "start a new run, or the same settings to resume it"
                    )
                self.id = old.get("id") or run_id(command, settings)
                return True
            if not create:
                raise LabError(f"out: the main process could not prepare {str(self.root)!r} (see its error)")
            self.id = run_id(command, settings)
            try:
                if create_exclusive(path, json_bytes({**run, "id": self.id}), self.id):
                    return False
            except OSError as e:
                raise LabError(f"out: cannot write to {str(self.root)!r}: {e.strerror or e}") from None

    def release(self) -> None:
        self.lock.release()

    def clean_temporaries(self, folders=()) -> int:
        """Remove this run's leftover temporaries (named with its id) in its own folders: the root, ``records``
        and ``folders`` (relative to the root: where this run writes). Call while holding the lock."""
        if self.id is None:
            raise RuntimeError("clean_temporaries before prepare")
        return sum(clean_temporaries(self.root / f, self.id) for f in (".", "records", *folders))

    # -- files ----------------------------------------------------------------------------------------------
    def write(self, rel: str | Path, data: bytes) -> None:
        """Atomically write the file ``rel`` (a path relative to the run folder)."""
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise ValueError(f"RunFolder.write: give a path inside the run folder, relative to it; got {str(rel)!r}")
        atomic_write(self.root / rel, data, self.id)

    def write_json(self, rel: str | Path, obj) -> None:
        self.write(rel, json_bytes(obj))

    def write_text(self, rel: str | Path, text: str) -> None:
        self.write(rel, text.encode())

    def done(self) -> dict[str, dict]:
        out = {}
        for p in sorted(self.records.glob("*.json")):
            try:
                out[p.stem] = json.loads(p.read_text())
            except (OSError, ValueError):
                continue  # cannot happen with atomic writes; an unreadable record means: not done
        return out

    def save_record(self, unit: str, record: dict) -> None:
        self.write_json(f"records/{unit}.json", record)

    def log_done(self, rank: int, unit: str) -> None:
        """Append to ``processes/<rank>.log``: an audit of which process rendered which unit, run after run."""
        logs = self.root / "processes"
        logs.mkdir(exist_ok=True)
        fd = os.open(logs / f"{rank}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, (unit + "\n").encode())  # one write: a line is in the log whole or not at all
        finally:
            os.close(fd)

    def write_manifest(self, files: list[dict], extra: dict | None = None) -> None:
        self.write_json("manifest.json", {**(extra or {}), "files": files})


def _diff(old: dict, new: dict) -> str:
    if old.get("command") != new.get("command"):
        return f"command {old.get('command')!r}, not {new.get('command')!r}"
    a, b = old.get("settings", {}), new.get("settings", {})
    keys = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return "different " + ", ".join(keys[:6])
