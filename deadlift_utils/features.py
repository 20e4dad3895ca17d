"""Per-frame features that mean the same thing whatever the pose backend or camera.

Every function takes a whole video's keypoints, because the steadiest references (the
lifter's facing direction, the torso length used as the unit, the view) are per-video
quantities; a single frame's torso looks shorter when the lifter bends towards the camera.

Conventions:
  keypoints_xy  (T, 18, 2) pixels, NaN = missing, image y grows downwards.
  canonical     the pose mirrored (if needed) so the lifter faces +x (image right); most of
                the study's side videos already face right, every yfgd_small clip faces left.
  torso unit    the video's 90th-percentile hip-centre -> shoulder-centre distance (the
                standing torso), so normalised values are invariant to translation and scale.

Feature blocks (pick with `frame_features(..., blocks=[...])`):
  raw_xy   36  pixel coordinates, missing -> NaN (the study's input)
  norm_xy  36  canonical, hip-centred coordinates in torso lengths
  angles   15  per-side hip/knee/elbow/shoulder angles, trunk/shin/head inclination (degrees / 180)
  mask     18  1 where the point was found (backend-specific: BlazePose and OpenPose differ)
  robust   13  near-side/side-mean angles, trunk and shin inclination, hip and shoulder height,
               bar (wrist) position over the mid-foot, hip phase within the video; no face
               points, no masks, nothing a backend's missing-point habits change
Temporal context: `window_features` stacks a block's values at neighbouring frames and their
changes, with neighbour spacing set in seconds so 30 fps / stride 1 and the study's stride 5
see the same motion.
"""
from __future__ import annotations

import warnings

import numpy as np

from .keypoints import (KP, N_KEYPOINTS, angle_deg, hip_centre, mirror_pose, normalise_pose,
                        shoulder_centre, smooth_keypoints, torso_length)
from .keypoints import nanmedian as _nanmedian

FEATURE_BLOCKS = ("raw_xy", "norm_xy", "angles", "mask", "robust")
# A face offset (nose from the body's midline) under this many torso lengths means the
# lifter faces the camera, and no left/right facing can be read from the pose.
FACING_MIN_OFFSET = 0.15
# Shoulder width under this share of the torso length = side view (shoulders overlap).
SIDE_VIEW_MAX_SHOULDER_RATIO = 0.3
# Seconds between neighbouring frames in a temporal window: the study's sampling
# (every 5th frame of 30 fps video).
WINDOW_STEP_S = 5 / 30


def _nanmean(a, axis=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


def video_scale(keypoints_xy: np.ndarray) -> float:
    """The video's torso length in pixels (90th percentile over frames; NaN if never seen)."""
    tl = torso_length(np.asarray(keypoints_xy, dtype=float))
    tl = tl[np.isfinite(tl) & (tl > 0)]
    return float(np.percentile(tl, 90)) if tl.size else float("nan")


def facing_offset(keypoints_xy: np.ndarray) -> float:
    """Median horizontal offset of the face from the body midline, in torso lengths.

    Positive = the lifter faces image right (+x). Uses the nose, else the mean of eyes and
    ears, relative to the midpoint of hip centre and shoulder centre. NaN if no face is seen.
    """
    kp = np.asarray(keypoints_xy, dtype=float)
    face = kp[:, KP["nose"], 0]
    others = _nanmean(kp[:, [KP["r_eye"], KP["l_eye"], KP["r_ear"], KP["l_ear"]], 0], axis=1)
    face = np.where(np.isnan(face), others, face)
    mid = (hip_centre(kp)[:, 0] + shoulder_centre(kp)[:, 0]) / 2
    scale = video_scale(kp)
    off = _nanmedian(face - mid)
    if not np.isfinite(off) or not np.isfinite(scale):
        # No face: knees travel forward of the ankles at the bottom of a pull.
        knee = _nanmean(kp[:, [KP["r_knee"], KP["l_knee"]], 0], axis=1)
        ankle = _nanmean(kp[:, [KP["r_ankle"], KP["l_ankle"]], 0], axis=1)
        off = _nanmedian(knee - ankle)
        if not np.isfinite(off) or not np.isfinite(scale):
            return float("nan")
    return float(off / scale)


def facing_sign(keypoints_xy: np.ndarray) -> int:
    """+1 if the lifter faces image right (or the camera), -1 if they face image left."""
    off = facing_offset(keypoints_xy)
    return -1 if np.isfinite(off) and off < -FACING_MIN_OFFSET else 1


def infer_view(keypoints_xy: np.ndarray) -> str:
    """'front', 'middle' or 'side' from 2D keypoints alone, for training rows without a view
    label: the analysis' own estimator (view.predict_view on the image keypoints), so training
    and analysis tell views the same way; 'front' when it cannot tell."""
    from types import SimpleNamespace

    from .view import predict_view

    view = predict_view(SimpleNamespace(keypoints_xy=np.asarray(keypoints_xy, dtype=float)), use_world=False)["view"]
    return view if view != "unknown" else "front"


def canonical_pose(keypoints_xy: np.ndarray, sign: int | None = None) -> tuple[np.ndarray, int]:
    """Mirror the video so the lifter faces +x. Returns (keypoints (T,18,2), sign used).

    sign=-1 mirrors (x -> -x, left/right joints swapped); +1 returns a copy. Mirroring
    around x=0 is fine because every later feature is hip-centred.
    """
    kp = np.asarray(keypoints_xy, dtype=float)
    if sign is None:
        sign = facing_sign(kp)
    return (mirror_pose(kp) if sign < 0 else kp.copy()), int(sign)


def step_frames(fps: float | None, frame_stride: int | None, step_s: float = WINDOW_STEP_S) -> int:
    """How many sampled frames make `step_s` seconds (at least 1)."""
    fps = float(fps) if fps else 30.0
    stride = int(frame_stride) if frame_stride else 1
    return max(1, int(round(step_s * fps / stride)))


def prepare_keypoints(keypoints_xy: np.ndarray, fps: float | None, frame_stride: int | None,
                      smoothing_window: int | None = None) -> np.ndarray:
    """Smooth densely sampled poses as the study's were (a window of ~1/6 s).

    The study sampled every 5th frame of a 5-frame moving average; a stride-1, unsmoothed
    OpenPose/BlazePose sequence gets the same moving average so its jitter matches.
    """
    kp = np.asarray(keypoints_xy, dtype=float)
    step = step_frames(fps, frame_stride)
    if step > 1 and (smoothing_window or 1) <= 1:
        kp = smooth_keypoints(kp, step if step % 2 else step + 1)
    return kp


def judgeable(keypoints_xy: np.ndarray) -> np.ndarray:
    """(T,) bool: hips and shoulders (or neck) are present, so the pose can be normalised."""
    kp = np.asarray(keypoints_xy, dtype=float)
    return np.isfinite(hip_centre(kp)[:, 0]) & np.isfinite(shoulder_centre(kp)[:, 0])


def _incline_deg(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """Signed angle of bottom->top from vertical, degrees; + = leaning forward (+x)."""
    v = top - bottom
    return np.degrees(np.arctan2(v[..., 0], -v[..., 1]))


def _near_side(kp: np.ndarray) -> str | None:
    """'r' or 'l': the side seen more often (the near side in a side view), None if equal-ish."""
    parts = ["shoulder", "elbow", "wrist", "hip", "knee", "ankle"]
    pr = np.mean([np.isfinite(kp[:, KP["r_" + p], 0]).mean() for p in parts])
    pl = np.mean([np.isfinite(kp[:, KP["l_" + p], 0]).mean() for p in parts])
    if abs(pr - pl) < 0.05:
        return None
    return "r" if pr > pl else "l"


def angle_features(canon_xy: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(T, 15) joint angles of a canonical pose, degrees / 180 (NaN where a point is missing)."""
    kp = canon_xy
    cols, names = [], []
    for side in ("r", "l"):
        j = {p: kp[:, KP[f"{side}_{p}"]] for p in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")}
        for name, (a, b, c) in {
            "hip": ("shoulder", "hip", "knee"), "knee": ("hip", "knee", "ankle"),
            "elbow": ("shoulder", "elbow", "wrist"), "shoulder": ("hip", "shoulder", "elbow"),
        }.items():
            cols.append(angle_deg(j[a], j[b], j[c]))
            names.append(f"{side}_{name}_angle")
    hc, sc = hip_centre(kp), shoulder_centre(kp)
    knee = _nanmean(kp[:, [KP["r_knee"], KP["l_knee"]]], axis=1)
    ankle = _nanmean(kp[:, [KP["r_ankle"], KP["l_ankle"]]], axis=1)
    cols += [_incline_deg(sc, hc), _incline_deg(knee, ankle), _incline_deg(kp[:, KP["nose"]], sc)]
    names += ["trunk_incline", "shin_incline", "head_incline"]
    # Torso bend seen as the angle neck-hip-knee on the mean side (robust to one missing side).
    cols += [angle_deg(sc, hc, knee), angle_deg(hc, knee, ankle)]
    names += ["mean_hip_angle", "mean_knee_angle"]
    cols.append(np.abs(cols[0] - cols[4]))  # r/l hip asymmetry
    names.append("hip_angle_asymmetry")
    return np.stack(cols, axis=1) / 180.0, names


def robust_features(canon_xy: np.ndarray, scale: float, near: str | None) -> tuple[np.ndarray, list[str]]:
    """(T, 13) backend-independent features of a canonical pose (see the module docstring).

    near: 'r'/'l' to read limbs from that side only (side view: the far side is guessed by
    OpenPose and dropped by BlazePose), None to average both sides.
    """
    kp = canon_xy

    def joint(part):
        if near is not None:
            p = kp[:, KP[f"{near}_{part}"]]
            other = kp[:, KP[f"{'l' if near == 'r' else 'r'}_{part}"]]
            return np.where(np.isnan(p), other, p)
        return _nanmean(kp[:, [KP["r_" + part], KP["l_" + part]]], axis=1)

    sh, el, wr, hp, kn, an = (joint(p) for p in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"))
    hc, sc = hip_centre(kp), shoulder_centre(kp)
    hip_h = (an[:, 1] - hp[:, 1]) / scale           # hip height above the ankle
    sh_h = (an[:, 1] - sh[:, 1]) / scale            # shoulder height above the ankle
    lo, hi = np.nanpercentile(hip_h, 5) if np.isfinite(hip_h).any() else np.nan, \
        np.nanpercentile(hip_h, 95) if np.isfinite(hip_h).any() else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        phase = (hip_h - lo) / (hi - lo) if hi - lo > 1e-6 else np.full_like(hip_h, np.nan)
    cols = [
        angle_deg(sh, hp, kn) / 180, angle_deg(hp, kn, an) / 180, angle_deg(sh, el, wr) / 180,
        _incline_deg(sc, hc) / 180, _incline_deg(kn, an) / 180,
        hip_h, sh_h, (sh_h - hip_h),
        (wr[:, 0] - an[:, 0]) / scale,              # bar (hands) ahead of the mid-foot
        (sh[:, 0] - wr[:, 0]) / scale,              # shoulders ahead of the bar
        (hp[:, 0] - an[:, 0]) / scale,              # hips behind the feet
        (kn[:, 0] - an[:, 0]) / scale,              # knees ahead of the feet
        phase,
    ]
    names = ["hip_angle", "knee_angle", "elbow_angle", "trunk_incline", "shin_incline", "hip_height",
             "shoulder_height", "shoulder_over_hip", "bar_ahead_of_foot", "shoulder_ahead_of_bar",
             "hip_behind_foot", "knee_ahead_of_foot", "hip_phase"]
    return np.stack(cols, axis=1), names


def frame_features(keypoints_xy: np.ndarray, blocks=("norm_xy", "angles", "mask"), *,
                   fps: float | None = 30.0, frame_stride: int | None = 5,
                   smoothing_window: int | None = 5, view: str | None = None,
                   mirror: bool = False) -> tuple[np.ndarray, list[str]]:
    """Features for every frame of one video.

    keypoints_xy (T, 18, 2) pixels. blocks: names from FEATURE_BLOCKS. mirror=True builds the
    features of the mirror image (augmentation: a lifter facing the other way). view: the
    video's view if known, else inferred (decides near-side limbs in `robust`).
    Returns (X (T, F) float with NaN where undefined, feature names (F,)).
    """
    unknown = [b for b in blocks if b not in FEATURE_BLOCKS]
    if unknown:
        raise ValueError(f"unknown feature block(s) {unknown}; choose from {FEATURE_BLOCKS}")
    kp = np.asarray(keypoints_xy, dtype=float)
    if kp.ndim != 3 or kp.shape[1:] != (N_KEYPOINTS, 2):
        raise ValueError(f"keypoints_xy must be (T, 18, 2), got {kp.shape}")
    kp = prepare_keypoints(kp, fps, frame_stride, smoothing_window)
    if mirror:
        kp = mirror_pose(kp)
    canon, _ = canonical_pose(kp)
    scale = video_scale(canon)
    if view is None:
        view = infer_view(kp)
    cols, names = [], []
    for b in blocks:
        if b == "raw_xy":
            raw = kp if not mirror else mirror_pose(kp)  # the study saw the unmirrored image
            cols.append(raw.reshape(len(kp), N_KEYPOINTS * 2))  # (not -1: a 0-frame video has no size to infer)
            names += [f"{n}_{a}_px" for n in _kp_names() for a in "xy"]
        elif b == "norm_xy":
            cols.append(normalise_pose(canon, scale=np.full(len(canon), scale)).reshape(len(kp), N_KEYPOINTS * 2))
            names += [f"{n}_{a}_norm" for n in _kp_names() for a in "xy"]
        elif b == "angles":
            a, n = angle_features(canon)
            cols.append(a)
            names += n
        elif b == "mask":
            cols.append(np.isfinite(canon[..., 0]).astype(float))
            names += [f"{n}_present" for n in _kp_names()]
        elif b == "robust":
            near = _near_side(canon) if view == "side" else None
            r, n = robust_features(canon, scale, near)
            cols.append(r)
            names += n
    # 'angles' and 'robust' both have trunk_incline and shin_incline: when both blocks are
    # used, the second copy gets its block's prefix so every column name is unique.
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n in seen:
            names[i] = f"{_block_of(i, blocks, cols)}_{n}"
        seen.add(names[i])
    return np.concatenate(cols, axis=1), names


def _block_of(col: int, blocks, cols) -> str:
    """The block that column `col` of the concatenated features comes from."""
    end = 0
    for b, c in zip(blocks, cols):
        end += c.shape[1]
        if col < end:
            return b
    return "dup"


def window_features(X: np.ndarray, names: list[str], half_width: int, step: int = 1) -> tuple[np.ndarray, list[str]]:
    """Temporal context: each frame's features plus those at t +- k*step (k=1..half_width)
    as differences from frame t (motion), clamped at the ends of the video.

    X (T, F) -> (T, F * (1 + 2*half_width)).
    """
    if half_width <= 0:
        return X, list(names)
    T = len(X)
    out, out_names = [X], list(names)
    idx = np.arange(T)
    for k in range(1, half_width + 1):
        for sgn, tag in ((-1, "prev"), (1, "next")):
            j = np.clip(idx + sgn * k * step, 0, T - 1)
            out.append(X[j] - X)
            out_names += [f"{n}_d{tag}{k}" for n in names]
    return np.concatenate(out, axis=1), out_names


def _kp_names():
    from .keypoints import KEYPOINT_NAMES
    return KEYPOINT_NAMES
