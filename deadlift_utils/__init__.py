"""Deadlift form analysis: one module per stage (see README.md)."""
import os as _os

from .quiet import quiet_environment as _quiet_environment

# Before anything imports TensorFlow or MediaPipe: their C++ start-up lines read these once.
_quiet_environment()
# OpenMP threads (scikit-learn's gradient boosting) busy-wait between tasks; on a shared 2-core
# machine that made one fit 3x slower (38.8 s; 13.6 s passive; 18.1 s on one thread).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
