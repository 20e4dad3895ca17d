"""Camera view (front / middle / side) from the pose alone.

The view is the angle between the camera's line of sight and the lifter's facing direction:
front ~0 deg, middle ~30-60 deg, side ~90 deg. It is estimated from how wide the shoulders
and hips look:

- With 3D world keypoints (BlazePose), the yaw of the shoulder and hip lines in the
  horizontal (x, z) plane of the camera-aligned world frame gives the angle directly.
- In 2D, the apparent shoulder + hip width relative to the torso length shrinks as the
  lifter turns side-on: width_ratio = (shoulder width + hip width) / (2 * torso length).
  Front-on lifters in the openpose_sequences measure 0.5-0.62; the yaw is
  arccos(ratio / 0.62). Only frames near lockout (standing) are used, because a bent torso
  is foreshortened in a front view and would look wider.

Thresholds (calibrated on the labelled openpose_sequences and esap_pose views, where "front"
clips are often turned 20-35 deg): yaw < 40 deg -> front, 40-68 -> middle, > 68 -> side.
"""
from __future__ import annotations

import warnings

import numpy as np

from .keypoints import KP, torso_length
from .keypoints import nanmedian as _nanmedian

FRONT_MAX_YAW_DEG = 40.0
SIDE_MIN_YAW_DEG = 68.0
# Shoulder+hip width over 2 torso lengths for a front-on adult (2D yaw model).
FRONT_WIDTH_RATIO = 0.62
VIEWS = ("front", "middle", "side")


def _standing_frames(keypoints_xy: np.ndarray) -> np.ndarray:
    """(T,) bool: frames in the upper 40% of the shoulder-height range (near lockout)."""
    kp = keypoints_xy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sh = np.nanmean(kp[:, [KP["r_shoulder"], KP["l_shoulder"]], 1], axis=1)
    ok = np.isfinite(sh)
    if ok.sum() < 3:
        return ok
    lo, hi = np.percentile(sh[ok], [5, 95])
    # y grows downwards: standing = small y.
    return ok & (sh <= lo + 0.4 * (hi - lo))


def yaw_from_world(world_xyz: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Median yaw (deg, 0 = facing the camera, 90 = side-on) of the shoulder and hip lines.

    world_xyz: (T, 18, 3) metres, camera-aligned (x right, y down, z away from camera).
    """
    w = np.asarray(world_xyz, dtype=float)
    if mask is not None:
        w = w[mask]
    yaws = []
    for a, b in (("r_shoulder", "l_shoulder"), ("r_hip", "l_hip")):
        v = w[:, KP[a]] - w[:, KP[b]]
        yaws.append(np.degrees(np.arctan2(np.abs(v[:, 2]), np.abs(v[:, 0]))))
    return _nanmedian(np.concatenate(yaws))


def width_ratio_2d(keypoints_xy: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Median (shoulder width + hip width) / (2 * torso length) over the frames in `mask`."""
    kp = np.asarray(keypoints_xy, dtype=float)
    if mask is not None:
        kp = kp[mask]
    sw = np.linalg.norm(kp[:, KP["r_shoulder"]] - kp[:, KP["l_shoulder"]], axis=-1)
    hw = np.linalg.norm(kp[:, KP["r_hip"]] - kp[:, KP["l_hip"]], axis=-1)
    tl = torso_length(kp)
    with np.errstate(all="ignore"):
        r = (sw + hw) / (2 * tl)
    return _nanmedian(r)


def view_from_yaw(yaw_deg: float) -> str:
    if yaw_deg < FRONT_MAX_YAW_DEG:
        return "front"
    if yaw_deg <= SIDE_MIN_YAW_DEG:
        return "middle"
    return "side"


def predict_view(seq, use_world: bool = True) -> dict:
    """Predict the camera view of a PoseSequence.

    Returns {"view": "front"|"middle"|"side"|"unknown", "yaw_deg", "method", "reason"}.
    "unknown" when neither shoulders nor hips are seen in enough frames.
    """
    kp = np.asarray(seq.keypoints_xy, dtype=float)
    if len(kp) == 0:
        return {"view": "unknown", "yaw_deg": None, "method": None, "reason": "no frames"}
    standing = _standing_frames(kp)
    if standing.sum() < 3:
        standing = np.ones(len(kp), dtype=bool)
    world = getattr(seq, "world_xyz", None)
    if use_world and world is not None:
        yaw = yaw_from_world(world, standing)
        if np.isfinite(yaw):
            return {"view": view_from_yaw(yaw), "yaw_deg": round(yaw, 1), "method": "3d_world",
                    "reason": "yaw of the shoulder and hip lines in BlazePose world coordinates"}
    ratio = width_ratio_2d(kp, standing)
    if not np.isfinite(ratio):
        return {"view": "unknown", "yaw_deg": None, "method": "2d_width",
                "reason": "shoulders and hips not seen together in enough frames"}
    yaw = float(np.degrees(np.arccos(np.clip(ratio / FRONT_WIDTH_RATIO, 0.0, 1.0))))
    return {"view": view_from_yaw(yaw), "yaw_deg": round(yaw, 1), "method": "2d_width",
            "width_ratio": round(ratio, 3),
            "reason": "apparent shoulder+hip width relative to torso length near lockout"}
