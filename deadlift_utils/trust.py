"""Which frames can be measured: shot cuts, and skeletons that are not plausible for this lifter.

Shared footage is edited: a coaching clip cuts between shots, zooms in, draws captions and
highlights over the body. A rule measured on a frame where the skeleton snapped onto the plate
or shrank during a zoom flags an error the lifter never made. So, before any rule measures
anything:

1. **Shot cuts** (`ShotCutAnalyzer`, run during extraction on the frames it decodes anyway):
   the content change between consecutive sampled frames, PySceneDetect's ContentDetector
   measure (mean absolute change of hue, saturation and value on a small thumbnail, 0-255),
   with a cut where it exceeds both an absolute level and several times the clip's typical
   change (an orbiting or hand-held camera changes the content steadily, a cut at once).
   The same algorithm as `scenedetect`, without its second decode of the video (and without
   its opencv-python dependency, which would clash with the pinned opencv-contrib-python).
2. **The shot that holds the lift** (`frame_trust`): the longest shot in which the lifter is
   followed and the reps are counted; frames of other shots are dropped, with the reason.
3. **Plausible skeletons**, per frame, against the video's own segment lengths: the torso and
   thigh within a factor of their length in the shot (a side view also checks they are not far
   too short: a torso that collapses onto the plate); no sudden jump of the whole body or of its
   size (a zoom). Frames that fail are dropped from the rules, with the reason. A wrong forearm,
   upper arm or shin only drops the joints at its far end (wrists, elbows, ankles).

`frame_trust(seq)` returns a `FrameTrust`: `trusted` (T,) bool, `reasons` {reason: count},
`shot_of` (T,) int, `main_shot`, and a summary for the report.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .extract import FrameAnalyzer
from .keypoints import KP, hip_centre, shoulder_centre
from .keypoints import nanmedian as _nanmedian

# A cut: content change above CUT_MIN_DIFF (0-255, PySceneDetect's default threshold is 27)
# and above CUT_RELATIVE x the clip's median change between sampled frames.
CUT_MIN_DIFF = 27.0
CUT_RELATIVE = 4.0
THUMB_WIDTH = 96
# A segment more than SEGMENT_FACTOR times longer than its length in the shot (its 90th
# percentile) is not this lifter's limb (a keypoint on the plate, a swapped side).
SEGMENT_FACTOR = 1.4
# In a side view, the torso (shoulder-hip distance) shorter than this share of its length: collapsed.
TORSO_COLLAPSE = 0.45
# The body's size (median of its segment lengths) more than SIZE_JUMP times off its running
# median is a wrong skeleton; the body's centre moving faster than JUMP_TORSO_PER_S torso
# lengths per second is a jump (a deadlift moves the hips far less than that).
SIZE_JUMP = 1.3
JUMP_TORSO_PER_S = 3.0
# A rep needs at least this share of its frames trusted to be judged (else low confidence).
MIN_TRUSTED_SHARE = 0.5

# The joints a wrong limb segment spoils (the two sides are not told apart: both are dropped).
LIMB_DISTAL_JOINTS = {"upper arm": ("r_elbow", "l_elbow", "r_wrist", "l_wrist"),
                      "forearm": ("r_wrist", "l_wrist"), "shin": ("r_ankle", "l_ankle")}
SEGMENTS = {
    "upper arm": ("shoulder", "elbow"), "forearm": ("elbow", "wrist"),
    "thigh": ("hip", "knee"), "shin": ("knee", "ankle"),
}


class ShotCutAnalyzer(FrameAnalyzer):
    """Per sampled frame: {"diff": content change from the previous sampled frame (0-255)};
    `finish` adds "cut": true where a new shot starts."""

    name = "shot"

    def start(self, video_path, info) -> None:
        self._prev = None

    def analyze(self, frame_index, frame_bgr, person):
        import cv2

        h, w = frame_bgr.shape[:2]
        th = max(1, int(round(h * THUMB_WIDTH / max(w, 1))))
        hsv = cv2.cvtColor(cv2.resize(frame_bgr, (THUMB_WIDTH, th), interpolation=cv2.INTER_AREA),
                           cv2.COLOR_BGR2HSV).astype(np.int16)
        diff = None if self._prev is None else float(np.abs(hsv - self._prev).mean())
        self._prev = hsv
        return {"diff": None if diff is None else round(diff, 2)}

    def finish(self, values, keypoints_xy):
        diffs = np.array([np.nan if not v or v.get("diff") is None else v["diff"] for v in values], dtype=float)
        cuts = shot_cuts(diffs)
        out = []
        for k, v in enumerate(values):
            v = dict(v or {})
            if cuts[k]:
                v["cut"] = True
            out.append(v)
        return out


def shot_cuts(diffs: np.ndarray) -> np.ndarray:
    """(T,) bool: a new shot starts at this sample. diffs: (T,) content change, NaN first."""
    diffs = np.asarray(diffs, dtype=float)
    fin = diffs[np.isfinite(diffs)]
    if fin.size == 0:
        return np.zeros(len(diffs), dtype=bool)
    typical = float(np.median(fin))
    level = max(CUT_MIN_DIFF, CUT_RELATIVE * typical)
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(diffs, nan=0.0) > level


def _shot_ids(seq) -> np.ndarray:
    shots = (seq.frame_extras or {}).get("shot")
    T = len(seq)
    if not shots:
        return np.zeros(T, dtype=int)
    cut = np.array([bool(v and v.get("cut")) for v in shots], dtype=bool)
    return np.cumsum(cut)


def _running_median(x: np.ndarray, half: int) -> np.ndarray:
    """Centred running median over +-half samples, ignoring NaN."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    pad = np.concatenate([np.full(half, np.nan), x, np.full(half, np.nan)])
    win = np.lib.stride_tricks.sliding_window_view(pad, 2 * half + 1)[:n]
    return _nanmedian(win, axis=1)


def segment_lengths(kp: np.ndarray) -> dict[str, np.ndarray]:
    """{name: (T,) px} for each limb segment (the longer of the two sides seen, since a side
    view foreshortens nothing on the near side) and the torso (shoulder centre - hip centre)."""
    out = {}
    for name, (a, b) in SEGMENTS.items():
        r = np.linalg.norm(kp[:, KP["r_" + a]] - kp[:, KP["r_" + b]], axis=-1)
        l = np.linalg.norm(kp[:, KP["l_" + a]] - kp[:, KP["l_" + b]], axis=-1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[name] = np.fmax(r, l)
    out["torso"] = np.linalg.norm(shoulder_centre(kp) - hip_centre(kp), axis=-1)
    return out


@dataclass
class FrameTrust:
    trusted: np.ndarray                   # (T,) bool
    reason_of: list                       # (T,) str or None: why a frame was dropped
    shot_of: np.ndarray                   # (T,) int shot number (0-based)
    main_shot: int
    n_shots: int
    reasons: dict = field(default_factory=dict)   # {reason: frames}
    joint_drop: np.ndarray | None = None          # (T, 18) bool: single joints not measured
    joint_reasons: dict = field(default_factory=dict)  # {reason: frames}

    def summary(self, time_s: np.ndarray | None = None) -> dict:
        T = len(self.trusted)
        out = {"frames": T, "trusted_frames": int(self.trusted.sum()),
               "trusted_share": round(float(self.trusted.mean()), 3) if T else 0.0,
               "shots": int(self.n_shots), "analysed_shot": int(self.main_shot) + 1,
               "dropped": {k: int(v) for k, v in sorted(self.reasons.items(), key=lambda kv: -kv[1])},
               "joints_dropped": dict(self.joint_reasons)}
        if time_s is not None and T:
            dropped = [(float(time_s[k]), self.reason_of[k]) for k in range(T) if not self.trusted[k]
                       and self.reason_of[k] is not None]
            out["dropped_times"] = _time_ranges(dropped)
        return out


def _time_ranges(items: list[tuple[float, str]], gap: float = 0.25) -> list[dict]:
    """Merge consecutive dropped samples with the same reason into time ranges."""
    out: list[dict] = []
    for t, why in items:
        if out and out[-1]["reason"] == why and t - out[-1]["end_s"] <= gap:
            out[-1]["end_s"] = round(t, 2)
        else:
            out.append({"start_s": round(t, 2), "end_s": round(t, 2), "reason": why})
    return out


def choose_main_shot(seq, shot_of: np.ndarray) -> int:
    """The shot that holds the lift: the one with the most complete reps, then the most
    frames with the lifter's lift joints found."""
    from .reps import segment_reps

    n = int(shot_of.max()) + 1 if len(shot_of) else 1
    if n == 1:
        return 0
    best, best_key = 0, None
    for s in range(n):
        idx = np.flatnonzero(shot_of == s)
        found = int(np.isfinite(seq.keypoints_xy[idx][:, [KP["r_hip"], KP["l_hip"]], 0]).any(axis=1).sum())
        reps = 0
        if len(idx) >= 5:
            try:
                reps = segment_reps(seq.keypoints_xy[idx], seq.time_s[idx]).count
            except ValueError:
                reps = 0
        key = (reps, found)
        if best_key is None or key > best_key:
            best, best_key = s, key
    return best


def frame_trust(seq, view: str | None = None, segment_factor: float = SEGMENT_FACTOR) -> FrameTrust:
    """Decide, per sampled frame, whether the skeleton can be measured (see the module doc).
    view: "side" adds the too-short segment checks (meaningless where segments foreshorten)."""
    kp = np.asarray(seq.keypoints_xy, dtype=float)
    T = len(kp)
    t = np.asarray(seq.time_s, dtype=float)
    shot_of = _shot_ids(seq)
    main = choose_main_shot(seq, shot_of) if T else 0
    reason: list = [None] * T
    in_main = shot_of == main

    def drop(mask, why):
        for k in np.flatnonzero(mask):
            if reason[k] is None:
                reason[k] = why

    drop(~in_main, "another shot (the clip cuts away from the lift)")
    seg = segment_lengths(kp)
    hips_found = np.isfinite(hip_centre(kp)).all(axis=1)
    drop(~hips_found, "the lifter's hips not found")
    # A segment's true length is about its 90th percentile in the shot: turning away from the
    # camera only shortens it. Longer than that by SEGMENT_FACTOR is never this lifter's limb;
    # much shorter is a wrong skeleton only in a side view, where the lift moves the segments
    # in the image plane (from the front a bent torso or thigh is foreshortened by design).
    side_view = view == "side"
    joint_drop = np.zeros(kp.shape[:2], dtype=bool)
    joint_reasons: dict[str, int] = {}
    for name, L in seg.items():
        ref = np.nanpercentile(L[in_main], 90) if np.isfinite(L[in_main]).any() else np.nan
        if not np.isfinite(ref) or ref <= 0:
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = L / ref
        fin = np.isfinite(ratio)
        too_long = fin & (ratio > segment_factor)
        short = TORSO_COLLAPSE if name == "torso" else 1 / (segment_factor * 1.5)
        too_short = fin & (ratio < short) if side_view else np.zeros(T, dtype=bool)
        if name in LIMB_DISTAL_JOINTS:
            # A wrong forearm, upper arm or shin (a wrist on the plate, an ankle behind it) spoils
            # only the joints at its far end: those are dropped, the rest of the frame is measured.
            bad = too_long | too_short
            for j in LIMB_DISTAL_JOINTS[name]:
                joint_drop[bad, KP[j]] = True
            if bad.any():
                joint_reasons[f"the {name} implausible for this lifter (its far joints not measured)"] = int(bad.sum())
            continue
        what = "the torso" if name == "torso" else f"the {name}"
        drop(too_long, f"{what} is too long for this lifter")
        drop(too_short, "the torso collapsed (keypoints on the plate or a wrong person)" if name == "torso"
             else f"the {name} is too short for this lifter (a wrong skeleton)")
    # Body size and position: jumps between samples (zoom, re-detection on something else).
    size = _nanmedian(np.stack([seg[k] for k in ("thigh", "shin", "torso")]), axis=0)
    centre = hip_centre(kp)
    torso_ref = _nanmedian(seg["torso"][in_main]) if np.isfinite(seg["torso"][in_main]).any() else np.nan
    if T > 1 and np.isfinite(torso_ref):
        dt = np.diff(t)
        dt[dt <= 0] = np.nan
        with np.errstate(invalid="ignore", divide="ignore"):
            speed = np.linalg.norm(np.diff(centre, axis=0), axis=-1) / torso_ref / dt
        same_shot = shot_of[1:] == shot_of[:-1]
        bad_jump = np.zeros(T, dtype=bool)
        bad_jump[1:] = same_shot & np.isfinite(speed) & (speed > JUMP_TORSO_PER_S)
        # Size against its own running median (+-3 samples): one frame whose skeleton shrank
        # or swelled (keypoints on the plate, a limb swapped) stands out; steady noise not.
        local = _running_median(size, 3)
        with np.errstate(invalid="ignore", divide="ignore"):
            off = np.abs(np.log(size / local))
        drop(np.isfinite(off) & (off > np.log(SIZE_JUMP)), "the body's size jumped (a wrong skeleton)")
        drop(bad_jump, "the whole body jumped between frames")
        # A zoom shows as a lasting change of size: frames whose size is far from the shot's
        # median are not measured in the same pixels as the rest.
        ref_size = _nanmedian(size[in_main]) if np.isfinite(size[in_main]).any() else np.nan
        if np.isfinite(ref_size):
            with np.errstate(invalid="ignore"):
                zoomed = np.isfinite(size) & ((size > ref_size * 1.45) | (size < ref_size / 1.45))
            drop(zoomed, "the camera zoomed (the body's size differs from the rest of the shot)")
    trusted = np.array([r is None for r in reason], dtype=bool)
    counts: dict[str, int] = {}
    for r in reason:
        if r is not None:
            counts[r] = counts.get(r, 0) + 1
    return FrameTrust(trusted, reason, shot_of, int(main), int(shot_of.max()) + 1 if T else 1, counts,
                      joint_drop=joint_drop, joint_reasons=joint_reasons)
