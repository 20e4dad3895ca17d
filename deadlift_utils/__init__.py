"""Deadlift form analysis: one module per stage (see README.md)."""
from .quiet import quiet_environment as _quiet_environment

# Before anything imports TensorFlow or MediaPipe: their C++ start-up lines read these once.
_quiet_environment()
