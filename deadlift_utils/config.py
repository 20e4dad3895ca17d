"""Project paths in one place, relative to the project root.

Every notebook can override these from its parameters cell; the defaults here
are what the CLI and the tests use.
"""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DATA_DIR = PROJECT_ROOT / "data"
RAW_DIR = DATA_DIR / "raw"              # the user's videos (never committed)
INTERIM_DIR = DATA_DIR / "interim"      # pose JSON, labels.csv, approvals.csv
PROCESSED_DIR = DATA_DIR / "processed"  # arrays/tables ready to train
OUTPUTS_DIR = PROJECT_ROOT / "outputs"
RUNS_DIR = OUTPUTS_DIR / "runs"

LABELS_CSV = INTERIM_DIR / "labels.csv"
APPROVALS_CSV = INTERIM_DIR / "approvals.csv"
POSES_DIR = INTERIM_DIR / "poses"

# Pose-model files unpacked from registry packages by `make models` (git-ignored).
POSE_MODELS_DIR = Path(os.environ.get("DEADLIFT_POSE_MODELS", PROJECT_ROOT / "models" / "pose"))

# The read-only reference data beside the checkout (../shared/data); tests and the demo use it.
SHARED_DATA_DIR = Path(os.path.normpath(os.environ.get("DEADLIFT_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data")))
ESAP_POSE_DIR = SHARED_DATA_DIR / "esap_pose"
OPENPOSE_SEQUENCES_DIR = SHARED_DATA_DIR / "openpose_sequences"
YFGD_DIR = SHARED_DATA_DIR / "videos" / "yfgd_small"
KETTLEBELL_DIR = SHARED_DATA_DIR / "videos" / "kettlebell_errors"

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


def require_dir(path: str | os.PathLike, what: str = "data folder") -> Path:
    """Return `path` as a Path, or raise FileNotFoundError saying how to point at a real one."""
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(
            f"{what} not found: {p}. Pass the folder that holds your videos "
            f"(e.g. DATA={p} make demo, or the data_dir parameter of the notebook)."
        )
    return p


def resolve(path: str | os.PathLike) -> Path:
    """A path from a notebook parameter or the CLI: absolute as given, else relative to the
    project root (so notebooks behave the same whatever folder papermill runs them in)."""
    p = Path(path).expanduser()
    return Path(os.path.normpath(p if p.is_absolute() else PROJECT_ROOT / p))


def describe_machine() -> str:
    """One line for result tables: cores, CPU model, RAM, OS, Python (figures mean little without it)."""
    import platform

    cpu = platform.processor() or platform.machine()
    mem = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        kb = int(next(x for x in Path("/proc/meminfo").read_text().splitlines()
                      if x.startswith("MemTotal")).split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return (f"{os.cpu_count()}-core {cpu}{mem}, no GPU, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")
