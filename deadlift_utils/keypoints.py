"""The 18 COCO keypoints (OpenPose order), BlazePose mapping, smoothing, normalisation, angles.

Arrays follow one convention throughout the package:
  keypoints_xy  float (T, 18, 2), NaN where a point is missing;
  confidence    float (T, 18), NaN where a point is missing;
  world_xyz     float (T, 18, 3) metres (BlazePose only), NaN where missing.
Image y grows downwards, as in the videos.
"""
from __future__ import annotations

import numpy as np

KEYPOINT_NAMES = [
    "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear", "l_ear",
]
N_KEYPOINTS = len(KEYPOINT_NAMES)
KP = {name: i for i, name in enumerate(KEYPOINT_NAMES)}

# Bones drawn on skeleton videos (OpenPose COCO pairs).
SKELETON_EDGES = [
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (8, 11),
]

# Left/right swap used to mirror a pose (e.g. to a canonical facing direction).
MIRROR_INDEX = [0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16]

# The joints a deadlift judgement needs; used for the detection rate of a video.
LIFT_JOINTS = ["r_shoulder", "l_shoulder", "r_hip", "l_hip", "r_knee", "l_knee", "r_ankle", "l_ankle"]

# BlazePose's 33 landmarks -> COCO-18. The neck (1) is the midpoint of the shoulders (11, 12).
BLAZEPOSE_TO_COCO = {
    0: 0, 2: 12, 3: 14, 4: 16, 5: 11, 6: 13, 7: 15, 8: 24, 9: 26, 10: 28,
    11: 23, 12: 25, 13: 27, 14: 5, 15: 2, 16: 8, 17: 7,
}
BLAZEPOSE_NECK_FROM = (11, 12)


def blazepose_to_coco(landmarks: np.ndarray) -> np.ndarray:
    """Map BlazePose landmarks (33, C) to COCO-18 (18, C).

    C is any number of channels (x, y[, z], confidence); the neck is the channel-wise
    mean of the two shoulders, so its confidence is their mean too.
    """
    landmarks = np.asarray(landmarks, dtype=float)
    if landmarks.shape[0] != 33:
        raise ValueError(f"BlazePose gives 33 landmarks, got {landmarks.shape[0]}")
    out = np.full((N_KEYPOINTS, landmarks.shape[1]), np.nan)
    for coco, blaze in BLAZEPOSE_TO_COCO.items():
        out[coco] = landmarks[blaze]
    out[1] = landmarks[list(BLAZEPOSE_NECK_FROM)].mean(axis=0)
    return out


def smooth_keypoints(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over time that ignores missing (NaN) points.

    values: (T, ...) array. A point missing in frame t stays missing (nothing is
    invented), but a present point is averaged only with the present neighbours in the
    window. window <= 1 returns a copy.
    """
    values = np.asarray(values, dtype=float)
    if window is None or window <= 1 or len(values) == 0:
        return values.copy()
    if int(window) != window or window < 1:
        raise ValueError(f"smoothing_window must be a positive whole number, got {window!r}")
    half = int(window) // 2
    present = ~np.isnan(values)
    filled = np.where(present, values, 0.0)
    # Cumulative sums along time make every window sum O(1).
    pad = [(half + 1, half)] + [(0, 0)] * (values.ndim - 1)
    csum = np.cumsum(np.pad(filled, pad), axis=0)
    ccnt = np.cumsum(np.pad(present.astype(float), pad), axis=0)
    n = len(values)
    idx = np.arange(n)
    win = int(window)
    total = csum[idx + win] - csum[idx]
    count = ccnt[idx + win] - ccnt[idx]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / count
    out[~present] = np.nan
    return out


def mirror_pose(keypoints_xy: np.ndarray, width: float | None = None) -> np.ndarray:
    """Mirror poses left-right: x -> -x (or width - x) and swap left/right joints.

    keypoints_xy: (..., 18, 2). Returns the same shape.
    """
    kp = np.asarray(keypoints_xy, dtype=float)[..., MIRROR_INDEX, :].copy()
    kp[..., 0] = (width - kp[..., 0]) if width is not None else -kp[..., 0]
    return kp


def _mid(kp: np.ndarray, a: str, b: str) -> np.ndarray:
    """Midpoint of two joints, falling back to whichever one is present."""
    with _quiet():
        return np.nanmean(np.stack([kp[..., KP[a], :], kp[..., KP[b], :]]), axis=0)


def hip_centre(kp: np.ndarray) -> np.ndarray:
    """(..., 2) midpoint of the hips (either hip alone when one is missing)."""
    return _mid(kp, "r_hip", "l_hip")


def shoulder_centre(kp: np.ndarray) -> np.ndarray:
    """(..., 2) midpoint of the shoulders (the neck when both are missing)."""
    mid = _mid(kp, "r_shoulder", "l_shoulder")
    neck = kp[..., KP["neck"], :]
    return np.where(np.isnan(mid), neck, mid)


def torso_length(kp: np.ndarray) -> np.ndarray:
    """(...,) distance from hip centre to shoulder centre, in the units of kp."""
    return np.linalg.norm(shoulder_centre(kp) - hip_centre(kp), axis=-1)


def normalise_pose(keypoints_xy: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
    """Body-normalised coordinates: origin at the hip centre, unit = torso length.

    keypoints_xy: (..., 18, 2). Invariant to translation and uniform scaling of the image.
    `scale` overrides the per-frame torso length (e.g. a per-video median, steadier than a
    frame's own). Frames without hips or shoulders come out all-NaN.
    """
    kp = np.asarray(keypoints_xy, dtype=float)
    centre = hip_centre(kp)[..., None, :]
    if scale is None:
        scale = torso_length(kp)
    scale = np.asarray(scale, dtype=float)
    scale = np.where(scale > 0, scale, np.nan)
    return (kp - centre) / scale[..., None, None]


def angle_deg(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Angle ABC in degrees at vertex b, for points (..., D). NaN when a point is missing."""
    v1, v2 = a - b, c - b
    n1, n2 = np.linalg.norm(v1, axis=-1), np.linalg.norm(v2, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.sum(v1 * v2, axis=-1) / (n1 * n2)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def nanmedian(a, axis=None):
    """np.nanmedian without the all-NaN warnings (NaN where nothing was seen). One helper for
    every module that summarises keypoint series."""
    with _quiet():
        return np.nanmedian(np.asarray(a, dtype=float), axis=axis)


class _quiet:
    """Silence numpy's 'mean of empty slice' warnings for all-NaN midpoints."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", category=RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)
