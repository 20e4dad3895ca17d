"""Project paths in one place, relative to the project root.

Every notebook can override these from its parameters cell; the defaults here
are what the CLI and the tests use.
"""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DATA_DIR = PROJECT_ROOT / "data"
INTERIM_DIR = DATA_DIR / "interim"      # pose JSON, labels.csv, approvals.csv
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


def detect_gpus(nvidia_proc: str | os.PathLike = "/proc/driver/nvidia", nvidia_smi: str = "nvidia-smi") -> list[str]:
    """Names of the NVIDIA GPUs the driver reports; [] when there are none.

    Cheap: the driver's /proc files first, then `nvidia-smi` (5 s timeout) when it is on PATH;
    TensorFlow is not imported (that takes seconds and prints start-up lines).
    """
    import shutil
    import subprocess

    names = []
    for info in sorted(Path(nvidia_proc).glob("gpus/*/information")):
        try:
            lines = info.read_text(errors="replace").splitlines()
        except OSError:
            continue
        names += [line.split(":", 1)[1].strip() for line in lines if line.startswith("Model:")]
    smi = shutil.which(nvidia_smi)
    if not names and smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            return []
        if out.returncode == 0:
            names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return names


def _describe_gpus() -> str:
    from importlib import metadata

    gpus = detect_gpus()
    if not gpus:
        return "no NVIDIA GPU found"
    try:  # the CPU-only TensorFlow wheel never uses a GPU, whatever the machine has
        metadata.version("tensorflow-cpu")
        unused = " (unused: TensorFlow is the CPU-only build)"
    except metadata.PackageNotFoundError:
        unused = ""
    return f"GPU: {', '.join(gpus)}{unused}"


def describe_machine() -> str:
    """One line for result tables: cores, CPU model, RAM, GPU found, OS, Python (figures mean
    little without it)."""
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
    return (f"{os.cpu_count()}-core {cpu}{mem}, {_describe_gpus()}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")
