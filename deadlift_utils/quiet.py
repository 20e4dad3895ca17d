"""Library start-up noise, in one place: the environment that silences it and the lines it prints.

TensorFlow, absl, oneDNN, MediaPipe and FFmpeg write C++ log lines straight to stderr when
they load (a CLI run, every notebook kernel: red stderr boxes in JupyterLab that read as
failure). Only environment variables set before the libraries load stop them, so:
  - `deadlift_utils/__init__.py` applies QUIET_ENV to os.environ on import (the CLI, the
    notebooks and the tests all import the package before TensorFlow or MediaPipe);
  - the papermill runner applies it before starting kernels (they inherit the environment);
  - batch's Dask workers get it in their environment.
Every value is a default (setdefault): a variable the user set wins, e.g.
`TF_CPP_MIN_LOG_LEVEL=0` to see TensorFlow's own log again. Python warnings and exceptions
are untouched.

NOISE_PATTERNS are the lines these settings remove; the tests assert none of them appears in
a CLI run or an executed notebook.
"""
from __future__ import annotations

import os
import re
from collections.abc import MutableMapping

QUIET_ENV = {
    # TensorFlow's C++ log at every level (INFO cpu_feature_guard, and ERROR-level lines such as
    # "NodeDef mentions attribute use_unbounded_threadpool" that are not errors of ours; a real
    # failure still raises a Python exception).
    "TF_CPP_MIN_LOG_LEVEL": "3",
    # The "oneDNN custom operations are on" notice (and absl's "before InitializeLog" preamble)
    # ignores the log level; it goes only with oneDNN off. The plain Eigen kernels that run
    # instead give the standard float results. Measured on the shared 2-core machine: smoke
    # notebook 04 (MLP nets) 30.1 / 20.8 s off vs 46.2 / 27.1 s on; a 2-epoch fit of the study's
    # conv deviation net (params/full.yaml only) 23.4 s off vs 17.4 s on (one run each).
    "TF_ENABLE_ONEDNN_OPTS": "0",
    # MediaPipe / glog INFO and WARNING lines (TFLite delegate, landmark model notes).
    "GLOG_minloglevel": "2",
    # FFmpeg's per-frame decoder warnings through OpenCV.
    "OPENCV_FFMPEG_LOGLEVEL": "-8",
}

# One regex per kind of start-up line (searched per line).
NOISE_PATTERNS = (
    r"All log messages before absl::InitializeLog\(\) is called",
    r"oneDNN custom operations are on",
    r"NodeDef mentions attribute",
    r"Sparsity tensors may not yet be fully supported",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"rebuild TensorFlow with the appropriate compiler flags",
    r"Created TensorFlow Lite XNNPACK delegate",
    r"inference_feedback_manager",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    # any other glog/absl C++ line: "I0000 00:00:1796008379.382655   12408 port.cc:153] ..."
    r"^[IWEF]\d{4} [\d:.]+\s+\d+ [\w./-]+:\d+\]",
)
_NOISE = re.compile("|".join(f"(?:{p})" for p in NOISE_PATTERNS), re.MULTILINE)


def quiet_environment(env: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Set QUIET_ENV's variables in `env` (default os.environ) where they are not set yet.
    Returns `env`."""
    env = os.environ if env is None else env
    for key, value in QUIET_ENV.items():
        env.setdefault(key, value)
    return env


def noise_lines(text: str) -> list[str]:
    """The lines of `text` that are library start-up noise (NOISE_PATTERNS)."""
    return [line for line in text.splitlines() if _NOISE.search(line)]
