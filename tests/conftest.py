"""Shared fixtures: the real sample data in ../shared/data and one real extraction."""
from __future__ import annotations

from pathlib import Path

import pytest

from deadlift_utils import config  # importing the package quiets TF / MediaPipe start-up (quiet.py)


def pytest_sessionstart(session):
    if not config.SHARED_DATA_DIR.is_dir():
        raise pytest.UsageError(
            f"sample data not found at {config.SHARED_DATA_DIR}; the tests need ../shared/data beside the "
            f"checkout (or set DEADLIFT_SHARED_DATA).")


@pytest.fixture(scope="session")
def shared() -> Path:
    return config.SHARED_DATA_DIR


@pytest.fixture(scope="session")
def side_clip(shared) -> Path:
    """A real 5 s 1080p side-view deadlift."""
    return shared / "videos" / "yfgd_small" / "good" / "good_001.mp4"


@pytest.fixture(scope="session")
def kettlebell_clip(shared) -> Path:
    """A real 360x640 portrait 60 fps clip, about 20 s."""
    return shared / "videos" / "kettlebell_errors" / "correct_side.mp4"


@pytest.fixture(scope="session")
def extracted(tmp_path_factory, side_clip):
    """The side clip extracted once (stride 5, smoothing 5, videos written)."""
    from deadlift_utils.extract import extract_video

    out = tmp_path_factory.mktemp("extract")
    return extract_video(side_clip, out, frame_stride=5, smoothing_window=5)
