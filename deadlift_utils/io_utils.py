"""Crash-safe writes: every file a user depends on is written to a temp file, then renamed.

The temp file is `.<name>.XXXXXXXX.tmp` in the same folder (so the rename stays on one file
system); it is fsynced before `os.replace`, and the folder is fsynced after it, so after a
crash (a killed process, or a power cut once the OS has flushed) the file is the old or the
new complete version. A writer killed mid-save leaves its temp file behind; readers never
look at it, and the next successful save of the same file removes such leftovers once they
are older than STALE_TEMP_AGE_S (a younger one may belong to a writer still running).
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from pathlib import Path

# A leftover temp file older than this (seconds) cannot belong to a save still in progress.
STALE_TEMP_AGE_S = 600.0

# The process umask, read once: reading it means setting it, which must not happen while other
# threads may be creating files.
_UMASK = os.umask(0)
os.umask(_UMASK)


def _temp_pattern(name: str) -> re.Pattern:
    # tempfile.mkstemp's random part: 8 characters of [a-z0-9_].
    return re.compile(rf"^\.{re.escape(name)}\.[A-Za-z0-9_]{{8}}\.tmp$")


def temp_files_for(path: str | os.PathLike) -> list[Path]:
    """The temp files atomic writes of `path` have left in its folder (any age)."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    rx = _temp_pattern(path.name)
    return sorted(path.parent / e.name for e in os.scandir(path.parent)
                  if e.name.startswith(".") and rx.match(e.name))


def remove_stale_temp_files(path: str | os.PathLike, older_than_s: float = STALE_TEMP_AGE_S) -> list[Path]:
    """Delete leftover temp files of `path` older than `older_than_s`; returns those removed."""
    removed = []
    now = time.time()
    for f in temp_files_for(path):
        try:
            if now - f.stat().st_mtime >= older_than_s:
                f.unlink()
                removed.append(f)
        except FileNotFoundError:  # another writer finished or cleaned it meanwhile
            pass
    return removed


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` so a reader sees the old or the new file, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes the file private (0600); give it the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)
    remove_stale_temp_files(path)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Text version of atomic_write_bytes (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def to_jsonable(obj, digits: int | None = None):
    """Numbers, numpy arrays and scalars, tuples and paths -> plain JSON types; NaN/inf -> None.
    `digits` rounds floats (reports round to 4; model files keep full precision)."""
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {str(k): to_jsonable(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, digits) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v, digits) for v in obj.tolist()]
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        if not math.isfinite(f):
            return None
        return round(f, digits) if digits is not None else f
    if isinstance(obj, Path):
        return str(obj)
    return obj


def save_figure(fig, path: str | os.PathLike, dpi: int = 90, close: bool = True) -> Path:
    """Save a matplotlib figure as PNG atomically (a killed save never leaves half an image);
    `close` it unless a notebook still shows it. Returns the path."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    if close:
        plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
