"""Named deadlift errors as rules over joint angles, ratios and the back's shape.

Each rule is a `Rule`: a per-rep metric (a number with units, measured at a stated moment of
the rep), a direction, and the camera views where the metric means what it says. Its
threshold is not set by eye: it is the edge of the **good-form range** of that metric, learned
from the good reps of every shared source (norms.py, `deadlift_utils/norms.json`, written by
`scripts/evaluate_form.py`; each threshold is a stated percentile of that range). A rep is flagged
when its metric crosses the threshold; the finding carries the rep, the time and the evidence
(value, threshold, units, the percentile, which keypoints). Rules whose view is not valid for
the video, or that the lift style makes meaningless (an upright torso is normal in a sumo
pull), are reported as "not checked" with the reason, never guessed.

Metrics prefer quantities that mean the same whatever the camera and the pose model: heights
(a turn of the camera about the vertical axis does not change them), ratios of a segment's
height now to its height standing (the cosine of its lean), angles between body segments, and
the back's curvature from the segmentation mask (spine.py). Only frames that `trust.frame_trust`
accepts are measured (the rest are NaN here), and in side and 45-degree views the angles come
from the side nearer the camera (the far limbs are hidden and guessed).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .keypoints import KP, angle_deg, hip_centre, shoulder_centre, torso_length

ALL_VIEWS = ("front", "middle", "side")
LIFT_PARTS = ("shoulder", "hip", "knee", "ankle")


def _nanmean_pair(a, b):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.stack([a, b]), axis=0)


# ----------------------------------------------------------------------------- signals

@dataclass
class Signals:
    """Per-frame measurements (T,) used by the rules; NaN where not measurable or not trusted."""

    time_s: np.ndarray
    method: str                      # "3d_world" or "2d_image" (for the angles)
    hip_angle_deg: np.ndarray        # shoulder-hip-knee, 180 = straight
    hip_angle_2d_deg: np.ndarray     # the same from the image (BlazePose's 3D hips read
                                     # ~165 deg when standing straight, so lockout uses 2D)
    knee_angle_deg: np.ndarray       # hip-knee-ankle, 180 = straight
    knee_angle_2d_deg: np.ndarray    # the same in the image (near side in side views): reads
                                     # the same for OpenPose and BlazePose poses
    elbow_angle_deg: np.ndarray      # shoulder-elbow-wrist, mean of the arms seen
    elbow_angle_2d_deg: np.ndarray   # the same from the image (BlazePose's 3D elbows read
                                     # ~155 deg on straight arms, so the rule uses 2D)
    torso_incline_deg: np.ndarray    # hip->shoulder from vertical in the image; + = forward,
                                     # - = leaning back (2D: the world frame tilts with the phone)
    torso_vs_thigh_deg: np.ndarray   # torso direction relative to the thigh line in the image;
                                     # + = torso ahead (hip flexed), - = behind (hyperextended).
    head_torso_deg: np.ndarray       # angle between torso line and shoulder->ear line (0 = in line)
    head_signed_deg: np.ndarray      # the same in the image, signed: + head dropped forward
                                     # (neck flexed), - head thrown back (neck extended)
    hip_height: np.ndarray           # image, torso lengths above the lowest hip position
    shoulder_height: np.ndarray      # image, torso lengths
    torso_rise_px: np.ndarray        # hip y - shoulder y (px): the torso's height in the image
    thigh_rise_px: np.ndarray        # knee y - hip y (px): the thigh's height in the image
    wrist_rise_px: np.ndarray        # ankle y - wrist y (px): the hands' height above the feet
    shin_rise_px: np.ndarray         # ankle y - knee y (px)
    grip_ratio: np.ndarray           # wrist distance / shoulder distance
    knee_ratio: np.ndarray           # knee distance / ankle distance
    stance_ratio: np.ndarray         # ankle distance / shoulder distance (3D when present)
    bar_offset: np.ndarray           # the wrists ahead of the ankles, torso lengths
    spine_sagitta: np.ndarray        # back's bulge over its chord, torso lengths; + rounded
    facing: int                      # +1 lifter faces image right, -1 left
    scale_px: float                  # the video's torso length in pixels
    trusted: np.ndarray = None       # (T,) bool: frames measured
    chain: str = "both"              # "right"/"left": the near side used in side views
    plate_forward: np.ndarray = None  # the tracked plate centre (the bar) along the facing
                                      # direction, torso lengths, from the image's left edge (only
                                      # differences mean anything); NaN where not tracked (or None)
    plate_r: float = None            # the tracked plate's median radius, torso lengths (or None)


def _pair_angle(P, a, b, c, chain: str = "both"):
    """Angle a-b-c (names without r_/l_): the mean of both sides, or the `chain` side with
    the other as fallback where it is missing."""
    r = angle_deg(P[:, KP["r_" + a]], P[:, KP["r_" + b]], P[:, KP["r_" + c]])
    l = angle_deg(P[:, KP["l_" + a]], P[:, KP["l_" + b]], P[:, KP["l_" + c]])
    if chain == "right":
        return np.where(np.isfinite(r), r, l)
    if chain == "left":
        return np.where(np.isfinite(l), l, r)
    return _nanmean_pair(r, l)


def near_side(seq) -> str:
    """"right" or "left": the side whose shoulder..ankle chain the pose model saw best
    (highest median confidence, then most found); the far side in a side view is guessed."""
    conf = np.asarray(seq.confidence, dtype=float)
    score = {}
    for side, p in (("right", "r_"), ("left", "l_")):
        idx = [KP[p + part] for part in LIFT_PARTS]
        c = conf[:, idx]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            score[side] = (float(np.nan_to_num(np.nanmedian(c), nan=0.0)), float(np.isfinite(c).mean()))
    return "right" if score["right"] >= score["left"] else "left"


def facing_sign(kp: np.ndarray) -> int:
    """+1 when the lifter faces image right, -1 left: features.facing_sign (the face's offset
    from the body's midline; else knees ahead of the ankles), the one the training uses too."""
    from .features import facing_sign as _facing_sign

    return _facing_sign(kp)


def _side_point(kp, part: str, chain: str):
    r, l = kp[:, KP["r_" + part]], kp[:, KP["l_" + part]]
    if chain == "right":
        return np.where(np.isfinite(r), r, l)
    if chain == "left":
        return np.where(np.isfinite(l), l, r)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.stack([r, l]), axis=0)


def compute_signals(seq, use_world: bool = True, trusted: np.ndarray | None = None,
                    view: str | None = None, joint_drop: np.ndarray | None = None) -> Signals:
    """Per-frame angles and ratios of a PoseSequence (see Signals for the units).

    trusted: (T,) bool frames to measure (the others come out NaN); default all.
    joint_drop: (T, 18) bool single keypoints not to use (trust.FrameTrust.joint_drop).
    view: in "side"/"middle" the angles and heights come from the near side's chain.
    The tracked barbell (Signals.plate_forward) is read from the pose's "bar" field (bar.py)
    when it has one. It is not referred to the ankles: at lift-off in a side view the plate
    hides them.
    """
    kp = np.asarray(seq.keypoints_xy, dtype=float).copy()
    T = len(kp)
    trusted = np.ones(T, dtype=bool) if trusted is None else np.asarray(trusted, dtype=bool)
    kp[~trusted] = np.nan
    if joint_drop is not None:
        kp[np.asarray(joint_drop, dtype=bool)] = np.nan
    tl = torso_length(kp)
    good_tl = tl[np.isfinite(tl) & (tl > 0)]
    scale = float(np.percentile(good_tl, 90)) if good_tl.size else float("nan")
    world = getattr(seq, "world_xyz", None)
    use3d = bool(use_world and world is not None and np.isfinite(world).any())
    P = np.asarray(world, dtype=float).copy() if use3d else kp
    if use3d:
        P[~trusted] = np.nan
        if joint_drop is not None:
            P[np.asarray(joint_drop, dtype=bool)] = np.nan
    facing = facing_sign(kp)
    chain = near_side(seq) if view in ("side", "middle") else "both"

    hip = _pair_angle(P, "shoulder", "hip", "knee", chain)
    knee = _pair_angle(P, "hip", "knee", "ankle", chain)
    knee2d = _pair_angle(kp, "hip", "knee", "ankle", chain)
    elbow = _pair_angle(P, "shoulder", "elbow", "wrist", chain)
    elbow2d = _pair_angle(kp, "shoulder", "elbow", "wrist", chain)
    hip2d = _pair_angle(kp, "shoulder", "hip", "knee", chain)

    v2 = shoulder_centre(kp) - hip_centre(kp)
    incline = np.degrees(np.arctan2(v2[:, 0] * facing, -v2[:, 1]))
    knee_c = _side_point(kp, "knee", chain)
    hip_c = _side_point(kp, "hip", chain)
    sh_c = _side_point(kp, "shoulder", chain)
    ankle_c = _side_point(kp, "ankle", chain)
    wrist_c = _side_point(kp, "wrist", chain)
    thigh_up = hip_centre(kp) - knee_c
    thigh_incline = np.degrees(np.arctan2(thigh_up[:, 0] * facing, -thigh_up[:, 1]))
    torso_vs_thigh = incline - thigh_incline
    sc, hc = shoulder_centre(P), hip_centre(P)
    v = sc - hc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ear = np.nanmean(P[:, [KP["r_ear"], KP["l_ear"]]], axis=1)
        ear2 = np.nanmean(kp[:, [KP["r_ear"], KP["l_ear"]]], axis=1)
    head = angle_deg(ear, sc, sc + v)  # angle between shoulder->ear and the torso extension
    # Signed in the image: + ear ahead of the torso line (facing side), - behind it.
    sc2 = shoulder_centre(kp)
    e = ear2 - sc2
    cross = v2[:, 0] * e[:, 1] - v2[:, 1] * e[:, 0]
    dot = v2[:, 0] * e[:, 0] + v2[:, 1] * e[:, 1]
    head_signed = np.degrees(np.arctan2(cross * facing, dot))


    # Heights from the image (y down), in torso lengths above the lowest position seen.
    with np.errstate(all="ignore"):
        hh = -hip_centre(kp)[:, 1] / scale
        sh = -shoulder_centre(kp)[:, 1] / scale
    hh = hh - (np.nanmin(hh) if np.isfinite(hh).any() else 0)
    sh = sh - (np.nanmin(sh) if np.isfinite(sh).any() else 0)

    def dist(A, a, b):
        return np.linalg.norm(A[:, KP[a]] - A[:, KP[b]], axis=-1)

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        grip = dist(P, "r_wrist", "l_wrist") / dist(P, "r_shoulder", "l_shoulder")
        kneer = dist(P, "r_knee", "l_knee") / dist(P, "r_ankle", "l_ankle")
        stance = dist(P, "r_ankle", "l_ankle") / dist(P, "r_shoulder", "l_shoulder")
        wrist_x = np.nanmean(kp[:, [KP["r_wrist"], KP["l_wrist"]], 0], axis=1)
        ankle_x = np.nanmean(kp[:, [KP["r_ankle"], KP["l_ankle"]], 0], axis=1)
        bar = (wrist_x - ankle_x) * facing / scale
    plate = plate_r = None
    if "bar" in (getattr(seq, "frame_extras", None) or {}) and np.isfinite(scale) and scale > 0:
        from .bar import bar_positions

        plate_xy, plate_rad, _ = bar_positions(seq)
        plate_x = plate_xy[:, 0]
        if np.isfinite(plate_x).any():
            plate = np.where(trusted, plate_x * facing / scale, np.nan)
            plate_r = float(np.nanmedian(plate_rad)) / scale
    spine = np.full(T, np.nan)
    spine_vals = (getattr(seq, "frame_extras", None) or {}).get("spine")
    if spine_vals:
        try:
            from .spine import sagitta_series

            spine = np.asarray(sagitta_series(seq), dtype=float)
        except ImportError:
            spine = np.array([np.nan if not v or v.get("sagitta") is None else float(v["sagitta"])
                              for v in spine_vals], dtype=float)
        spine = np.where(trusted, spine, np.nan)
    return Signals(
        np.asarray(seq.time_s, dtype=float), "3d_world" if use3d else "2d_image",
        hip, hip2d, knee, knee2d, elbow, elbow2d, incline, torso_vs_thigh, head, head_signed, hh, sh,
        hip_c[:, 1] - sh_c[:, 1], knee_c[:, 1] - hip_c[:, 1], ankle_c[:, 1] - wrist_c[:, 1],
        ankle_c[:, 1] - knee_c[:, 1], grip, kneer, stance, bar, spine, facing, scale,
        trusted=trusted, chain=chain, plate_forward=plate, plate_r=plate_r)


# ----------------------------------------------------------------------------- rules

@dataclass
class Rule:
    """A named error: metric(signals, rep) -> (value, time_s) or None; flagged when the value
    is beyond the threshold in `direction` ("below" or "above"). The threshold comes from the
    good-form norms (norms.py) for the view; `fallback_threshold` serves only when no norm was
    fitted for the rule (stated in the evidence)."""

    name: str
    description: str                 # what the error is, for the report and the coaching
    metric_name: str
    units: str
    fallback_threshold: float
    direction: str                   # "below" or "above"
    valid_views: tuple
    metric: Callable
    advice: str = ""
    severity: float = 1.0            # ranks findings for the coaching text
    not_for_styles: tuple = ()       # lift styles whose normal technique this rule would flag
    uses_world: bool = False         # the metric reads the 3D world keypoints when present
    needs: str = ""                  # what the metric needs that a pose may lack (for the reason)
    view_invariant: bool = False     # the metric reads the same from every view (heights,
                                     # height ratios): one norm over all views, not one per view

    def flagged(self, value: float, threshold: float | None = None) -> bool:
        th = self.fallback_threshold if threshold is None else threshold
        return value < th if self.direction == "below" else value > th

    def doc(self, norm: dict | None = None) -> dict:
        d = {"name": self.name, "description": self.description, "metric": self.metric_name,
             "units": self.units, "threshold": self.fallback_threshold, "flag_when": self.direction,
             "valid_views": list(self.valid_views), "threshold_source": "fallback (no norm fitted)"}
        if norm:
            d.update(threshold=norm["threshold"], good_median=norm["median"],
                     threshold_source=f"good-form norm: {norm['percentile']:g}th percentile of "
                                      f"{norm['n_reps']} good reps from {len(norm['sources'])} sources"
                                      f" ({norm['view']})")
        return d


def _window(sig: Signals, a: int, b: int) -> slice:
    return slice(max(a, 0), max(b, a) + 1)


def _at(sig: Signals, values: np.ndarray, sl: slice, pick: str, min_share: float = 0.0):
    """(value, time_s) of the min / max / median of values over the slice; None when fewer
    than `min_share` of its samples can be measured (a max over the few frames left when the
    hips were hidden for most of the lockout is not the lockout)."""
    w = values[sl]
    t = sig.time_s[sl]
    ok = np.isfinite(w)
    if ok.sum() == 0 or ok.mean() < min_share:
        return None
    w, t = w[ok], t[ok]
    if pick == "min":
        i = int(np.argmin(w))
    elif pick == "max":
        i = int(np.argmax(w))
    else:
        med = float(np.median(w))
        i = int(np.argmin(np.abs(w - med)))
        return med, float(t[i])
    return float(w[i]), float(t[i])


def _bottom_index(sig: Signals, rep) -> int:
    """Sample where the shoulders are lowest between the rep start and the lockout."""
    sl = _window(sig, rep.start, rep.top_start)
    w = sig.shoulder_height[sl]
    if not np.isfinite(w).any():
        return rep.pull_start
    return sl.start + int(np.nanargmin(w))


def _standing(sig: Signals, values: np.ndarray, rep) -> float:
    """The rep's standing value of a segment's image height: its 90th percentile over the
    lockout (the segment is upright there), else over the whole rep."""
    for sl in (_window(sig, rep.top_start, rep.top_end), _window(sig, rep.start, rep.end)):
        w = values[sl]
        w = w[np.isfinite(w)]
        if w.size:
            return float(np.percentile(w, 90))
    return float("nan")


def lean_from_height(rise: np.ndarray, standing: float) -> np.ndarray:
    """Lean from vertical (deg) of a segment from its image height over its standing height:
    arccos(rise / standing). A turn of the camera about the vertical axis changes neither
    height, so the lean reads the same from the front, the side or 45 degrees."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.degrees(np.arccos(np.clip(rise / standing, -1.0, 1.0)))


def metric_hips_first(sig: Signals, rep):
    """Shoulder rise / hip rise over the first half of the hip's rise off the bottom.

    ~1 or more: shoulders and hips rise together (back angle held). Well below 1: the hips
    shoot up while the shoulders stay down (the back does the lifting).
    """
    b = _bottom_index(sig, rep)
    top = rep.top_start
    h, s = sig.hip_height, sig.shoulder_height
    if not (np.isfinite(h[b]) and np.isfinite(s[b])):
        return None
    seg = np.arange(b, top + 1)
    hs = h[seg] - h[b]
    total = np.nanmax(hs) if np.isfinite(hs).any() else np.nan
    if not np.isfinite(total) or total <= 0.05:
        return None
    k = seg[np.flatnonzero(hs >= 0.5 * total)[0]]
    dh, ds = h[k] - h[b], s[k] - s[b]
    if not np.isfinite(ds) or dh <= 0:
        return None
    return float(ds / dh), float(sig.time_s[k])


def _hinge_frames(sig: Signals, rep, min_lean_deg: float = 35.0) -> np.ndarray:
    """Sample indices of the rep from its start to the lockout where the torso leans more
    than min_lean_deg from vertical (the hinge, where a rounded back shows)."""
    sl = _window(sig, rep.start, rep.top_start)
    lean = lean_from_height(sig.torso_rise_px[sl], _standing(sig, sig.torso_rise_px, rep))
    idx = np.arange(sl.start, sl.stop)[: len(lean)]
    return idx[np.isfinite(lean) & (lean > min_lean_deg)]


def _hinge_median(sig: Signals, rep, sign: float):
    """(median of sign x the back's bulge over the rep's hinge frames, time of its largest
    value), or None with fewer than two measured hinge frames."""
    idx = _hinge_frames(sig, rep)
    v = sign * sig.spine_sagitta[idx]
    ok = np.isfinite(v)
    if ok.sum() < 2:
        return None
    k = idx[ok][int(np.argmax(v[ok]))]
    return float(np.median(v[ok])), float(sig.time_s[k])


def metric_back_flexion(sig: Signals, rep):
    """Bulge of the back between shoulders and hips over the straight line through its ends,
    in torso lengths (+ = rounded), median over the hinge frames of the setup and pull (torso
    more than 35 deg from vertical). From the segmentation mask's dorsal contour (spine.py)."""
    return _hinge_median(sig, rep, +1.0)


def metric_back_extension(sig: Signals, rep):
    """How arched the back is during the hinge (torso lengths, + = arched: the negative of the
    bulge), median over the same hinge frames as `metric_back_flexion`: an over-extended lower
    back held through the setup and the pull."""
    return _hinge_median(sig, rep, -1.0)


def metric_torso_lean_bottom(sig: Signals, rep):
    """Torso lean from vertical (deg) at the bottom of the rep, from the torso's image height
    over its standing height (the same in every view). A hip hinge leans the torso well
    forward; squatting the weight up keeps it upright."""
    b = _bottom_index(sig, rep)
    lean = lean_from_height(sig.torso_rise_px, _standing(sig, sig.torso_rise_px, rep))
    return _at(sig, lean, _window(sig, b - 1, b + 1), "median")


def metric_hip_above_knee_bottom(sig: Signals, rep):
    """Height of the hips above the knees at the bottom of the rep, over the thigh's standing
    height (1 = thigh vertical, 0 = thigh horizontal, hips level with the knees)."""
    b = _bottom_index(sig, rep)
    stand = _standing(sig, sig.thigh_rise_px, rep)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = sig.thigh_rise_px / stand
    return _at(sig, ratio, _window(sig, b - 1, b + 1), "median")


LOCKOUT_COVERAGE = 0.5


def metric_lockout_hip(sig: Signals, rep):
    """Largest hip angle in the image during the lockout (deg); 180 = fully extended. Needs
    half the lockout's frames measured."""
    return _at(sig, sig.hip_angle_2d_deg, _window(sig, rep.top_start, rep.top_end), "max", LOCKOUT_COVERAGE)


def metric_lean_back(sig: Signals, rep):
    """Largest torso lean behind the thigh line during the lockout (deg; + = leaning back,
    i.e. the hips pushed through into hyperextension). Measured against the thigh rather
    than the image vertical, so a phone tilted up from the floor does not read as a lean."""
    return _at(sig, -sig.torso_vs_thigh_deg, _window(sig, rep.top_start, rep.top_end), "max", LOCKOUT_COVERAGE)


def metric_bar_drift(sig: Signals, rep):
    """Largest distance of the hands (the wrists) ahead of the ankles (mid-foot) during the
    pull, in torso lengths: the bar's stand-in when the plate is not tracked."""
    return _at(sig, sig.bar_offset, _window(sig, rep.pull_start, rep.top_start), "max")


BAR_START_SAMPLES = 3  # the bar's lift-off position: its first samples of the pull


def metric_bar_drift_plate(sig: Signals, rep):
    """How far the bar itself (the tracked plate's centre) moves forward, away from the lifter,
    during the pull, from the closest-in position it had reached since it left the floor (torso
    lengths). The bar's own path is the reference, not the ankles: where the plate sits against
    the ankle keypoint differs by camera and source (good yfgd_small reps 0.21-0.40 torso
    lengths ahead at lift-off, good tutorial_dev reps 0.05-0.15: the near plate is closer to the
    camera than the feet), and at lift-off the plate hides the ankles in a side view. None when
    the plate was not tracked at lift-off (in none of the pull's first BAR_START_SAMPLES samples)
    or in fewer than bar.MIN_TRACKED_SHARE of the pull's samples (the share below which the
    report gives the rep no bar figures either), and when the path moves sideways more than
    bar.MAX_DRIFT_R plate radii (not the bar: the report withholds that rep's figures too)."""
    from .bar import MAX_DRIFT_R, MIN_TRACKED_SHARE

    if sig.plate_forward is None:
        return None
    sl = _window(sig, rep.pull_start, rep.top_start)
    x = sig.plate_forward[sl]
    if not np.isfinite(x[:BAR_START_SAMPLES]).any():
        return None
    start = x[np.isfinite(x)][0]
    if sig.plate_r and np.nanmax(np.abs(x - start)) > MAX_DRIFT_R * sig.plate_r:
        return None   # more sideways travel than a loaded bar has: not the bar (see bar.MAX_DRIFT_R)
    # Forward of the closest-in point so far: pulling the bar in to the shins after lift-off is
    # the technique, not a drift, and must not set the reference.
    closest = np.fmin.accumulate(np.where(np.isfinite(x), x, np.inf))
    away = np.full(len(sig.time_s), np.nan)
    away[sl] = np.where(np.isfinite(x), x - closest, np.nan)
    return _at(sig, away, sl, "max", MIN_TRACKED_SHARE)


def bar_drift_source(values: dict, norms: dict | None, view: str) -> str:
    """Which measure the bar_drift rule judges in a rep: "bar" when the plate was tracked in
    the rep (a "bar_drift_bar" value) and a good-form norm for bar-measured drift exists
    (BAR_DRIFT_MEASURE allowing), else "wrists"."""
    from .norms import norm_for

    if BAR_DRIFT_MEASURE != "bar" or values.get("bar_drift_bar") is None:
        return "wrists"
    return "bar" if norm_for(norms, BAR_DRIFT_NORM, view) else "wrists"


def metric_knee_cave(sig: Signals, rep):
    """Smallest knee distance / ankle distance during the pull (< 1: knees inside the feet)."""
    return _at(sig, sig.knee_ratio, _window(sig, rep.pull_start, rep.top_start), "min")


def metric_elbow(sig: Signals, rep):
    """Median elbow angle (deg) from the pull to the end of the lockout (arms should hang
    straight, ~170-180)."""
    return _at(sig, sig.elbow_angle_2d_deg, _window(sig, rep.pull_start, rep.top_end), "median")


def metric_grip(sig: Signals, rep):
    """Median wrist distance / shoulder distance during the lockout."""
    return _at(sig, sig.grip_ratio, _window(sig, rep.top_start, rep.top_end), "median")


def metric_head_torso_bottom(sig: Signals, rep):
    """Angle (deg) between the torso line and the shoulder->ear line around the bottom.
    Supporting evidence only (it did not see a rounded spine on real barbell clips)."""
    b = _bottom_index(sig, rep)
    return _at(sig, sig.head_torso_deg, _window(sig, b - 2, b + 2), "median")


def metric_knee_bottom(sig: Signals, rep):
    """Knee angle (deg, 180 = straight) at the bottom of the rep, in the image from the near
    side's chain (a side view sees it in its plane; the same for OpenPose and BlazePose): a
    squat-style pull bends the knees far more than a hip hinge."""
    b = _bottom_index(sig, rep)
    return _at(sig, sig.knee_angle_2d_deg, _window(sig, b - 1, b + 1), "median")


RULES: list[Rule] = [
    Rule("hips_first", "hips rise faster than the shoulders off the floor",
         "shoulder rise / hip rise over the first half of the hip rise", "ratio", 0.80, "below",
         ("front", "middle", "side"), metric_hips_first,
         "Push the floor away with the legs and keep your chest rising at the same speed as "
         "your hips; the back angle should not change in the first half of the pull.", 1.0,
         not_for_styles=("romanian",), view_invariant=True),
    Rule("rounded_back", "the back rounds (the spine flexes between the hips and the shoulders)",
         "bulge of the back over its chord during the hinge (segmentation mask)", "torso lengths",
         0.03, "above", ("side", "middle"), metric_back_flexion,
         "Brace before each pull: chest up, shoulder blades back, and hinge from the hips with a "
         "long, flat back; lower the weight if the back still rounds.", 1.2,
         needs="the back's outline (segmentation mask), which needs the video and BlazePose"),
    Rule("overextension", "the back over-arches (lumbar or neck hyperextension)",
         "how arched the back is during the hinge (negative bulge)", "torso lengths",
         0.02, "above", ("side", "middle"), metric_back_extension,
         "Keep a neutral spine: ribs down, glutes tight, and stand tall at the top instead of "
         "arching back; look a few metres ahead, not up.", 1.0,
         needs="the back's outline (segmentation mask), which needs the video and BlazePose"),
    Rule("knee_dominant", "squatting the weight up (torso too upright at the start of the pull)",
         "torso lean from vertical at the bottom (image height / standing height)", "deg", 25.0,
         "below", ("front", "middle", "side"), metric_torso_lean_bottom,
         "Hinge: push the hips back until the torso leans well forward, shins near vertical, "
         "then drive the hips forward to stand up.", 0.9, not_for_styles=("sumo",), view_invariant=True),
    Rule("hips_too_low", "hips too low at the start of the pull (a squat-style deadlift: knees bent too far)",
         "knee angle at the bottom of the rep", "deg", 75.0, "below",
         ("side",), metric_knee_bottom,
         "Set the hips higher: between the knees and the shoulders, shins near vertical, "
         "shoulders just in front of the bar.", 0.9, not_for_styles=("sumo",)),
    Rule("incomplete_lockout", "hips not fully extended at the top",
         "largest hip angle during the lockout", "deg", 160.0, "below",
         ("side",), metric_lockout_hip,
         "Finish each rep standing tall: squeeze the glutes until hips and knees are straight.",
         0.8, not_for_styles=("partial",)),
    Rule("leaning_back", "leaning back / hyperextending at the lockout",
         "torso lean behind the thigh line at the lockout", "deg", 15.0, "above",
         ("side",), metric_lean_back,
         "Stop at upright: stand tall with ribs down instead of leaning back.", 0.7),
    Rule("bar_drift", "the bar drifts away from the mid-foot line",
         "bar (or hands) ahead of the ankles during the pull", "torso lengths", 0.55, "above",
         ("side",), metric_bar_drift,
         "Keep the weight close: drag it up the legs over the middle of the foot.", 0.9),
    Rule("knees_cave", "knees cave inwards during the pull",
         "smallest knee distance / ankle distance during the pull", "ratio", 0.65, "below",
         ("front",), metric_knee_cave,
         "Push the knees out over the toes as you drive up.", 0.9, uses_world=True),
    Rule("bent_elbows", "pulling with bent elbows",
         "median elbow angle from the pull to the lockout", "deg", 160.0, "below",
         ("front", "middle"), metric_elbow,
         "Let the arms hang straight like hooks; lock the elbows before the weight leaves the floor.",
         0.8),
    Rule("grip_too_wide", "hands much wider than the shoulders",
         "wrist distance / shoulder distance at the lockout", "ratio", 2.25, "above",
         ("front",), metric_grip,
         "Grip just outside the legs, about shoulder width.", 0.6, not_for_styles=("sumo",), uses_world=True),
    Rule("grip_too_narrow", "hands much closer than shoulder width",
         "wrist distance / shoulder distance at the lockout", "ratio", 1.00, "below",
         ("front",), metric_grip,
         "Grip just outside the legs, about shoulder width, so the arms hang straight down.", 0.6,
         uses_world=True),
]
RULES_BY_NAME = {r.name: r for r in RULES}
# Measured per rep and reported, but never decide (supporting evidence).
SUPPORTING = {"head_torso_deg": metric_head_torso_bottom, "thigh_height_bottom": metric_hip_above_knee_bottom}
# What bar_drift judges. "bar": the bar itself where the plate was tracked from lift-off (how
# far it moves forward of the closest-in point it had reached) against its own good-form norm
# (BAR_DRIFT_NORM, fitted on bar-measured good reps of the barbell videos), else the hands.
# "wrists": the hands everywhere, the bar's figure reported beside them (evidence "bar_value").
# The hands it is, on the leave-one-source-out evidence (2026-11-30): judged on the bar, 87/125
# against 88/125 (yfgd_small 15/20 vs 16/20, its held-out norm coming from 3 bar-tracked good
# tutorial_dev reps; measured from the median lift-off position instead: tutorial_dev 12/14 vs
# 13/14), the norm resting on 13 good reps of two sources. Measured against the ankles, it was
# 82/125: the plate's place ahead of the ankle keypoint differs by camera and source.
BAR_DRIFT_MEASURE = "wrists"
BAR_DRIFT_NORM = "bar_drift_bar"
# Norms fitted beside the rules' own: name -> (rule whose direction and views it takes, value
# key, the sources it is fitted on: a kettlebell has no plate, so its "bar" is a false circle).
EXTRA_NORMS = {BAR_DRIFT_NORM: ("bar_drift", "bar_drift_bar", ("yfgd_small", "tutorial_dev"))}


def rule_applies(rule: Rule, view: str, method: str = "", style: str = "conventional") -> tuple[bool, str | None]:
    """Whether `rule` can be judged in `view` for this lift style (and why not)."""
    if view not in ALL_VIEWS:
        return False, f"view is {view!r}; this rule needs a known view ({', '.join(rule.valid_views)})"
    if view not in rule.valid_views:
        return False, f"not measurable in the {view} view (valid: {', '.join(rule.valid_views)})"
    if style in rule.not_for_styles:
        return False, f"does not apply to a {style} deadlift (its normal technique would be flagged)"
    return True, None


def measure_reps(seq, reps, view: str, signals: Signals | None = None, use_world: bool = True) -> list[dict]:
    """Every rule's metric (and the supporting measurements) for every rep, without judging.

    Returns [{"index", "values": {name: value or None}, "times": {name: time_s}}] per rep.
    """
    sig = signals if signals is not None else compute_signals(seq, use_world=use_world, view=view)
    out = []
    for rep in reps:
        values, times = {}, {}
        for r in RULES:
            res = r.metric(sig, rep)
            ok = res is not None and np.isfinite(res[0])
            values[r.name] = round(float(res[0]), 4) if ok else None
            times[r.name] = round(float(res[1]), 2) if ok else None
        for name, fn in SUPPORTING.items():
            res = fn(sig, rep)
            values[name] = round(float(res[0]), 2) if res is not None and np.isfinite(res[0]) else None
        res = metric_bar_drift_plate(sig, rep)
        ok = res is not None and np.isfinite(res[0])
        values["bar_drift_bar"] = round(float(res[0]), 4) if ok else None
        times["bar_drift_bar"] = round(float(res[1]), 2) if ok else None
        out.append({"index": rep.index, "values": values, "times": times})
    return out


def rule_margin(rule: Rule, value: float, norm: dict | None) -> float:
    """How far `value` is towards (1.0) and past (> 1) the threshold from the good-form median
    (0.0), in units of the distance between them; values on the good side of the median are 0."""
    th = norm["threshold"] if norm else rule.fallback_threshold
    med = norm["median"] if norm else None
    if med is None or not np.isfinite(med) or th == med:
        # No norm: the threshold alone; 1 at the threshold, scaled by its size.
        span = abs(th) if th else 1.0
        past = (th - value) if rule.direction == "below" else (value - th)
        return max(0.0, 1.0 + past / span)
    m = (value - med) / (th - med)
    return float(max(0.0, m))


def evaluate_rules(seq, reps, view: str, signals: Signals | None = None, rules=None,
                   use_world: bool = True, norms: dict | None = None, style: str = "conventional",
                   rep_trust: dict | None = None) -> dict:
    """Apply every rule to every rep.

    seq: PoseSequence; reps: list of reps.Rep; view: "front"/"middle"/"side" (or "unknown").
    norms: the good-form norms (norms.load_norms(); default the packaged ones); style: the
    lift style (lift_style.classify); rep_trust: {rep index: confidence 0..1}.
    Returns {"method", "checked": [rule names], "not_checked": {name: reason},
             "per_rep": [{"index", "errors": [finding], "measurements": {name: value} (the checked
                          rules), "values": {name: value} (every rule and supporting measure,
                          checked or not), "margins": {name: margin}, "score"}],
             "rules": [rule docs]}. A finding is {"name", "description", "rep", "time_s",
             "evidence": {"metric", "value", "threshold", "units", "flag_when", "method",
             "threshold_source"}, "severity"}.
    """
    from .norms import load_norms, norm_for

    rules = RULES if rules is None else rules
    norms = load_norms() if norms is None else norms
    sig = signals if signals is not None else compute_signals(seq, use_world=use_world, view=view)
    checked, not_checked = [], {}
    for r in rules:
        ok, why = rule_applies(r, view, sig.method, style)
        if ok:
            checked.append(r)
        else:
            not_checked[r.name] = why
    measured = measure_reps(seq, reps, view, signals=sig)
    per_rep = []
    seen_any: set = set()
    for rep, m in zip(reps, measured):
        errors, meas, margins = [], {}, {}
        bar_src = None
        for r in checked:
            value, t = m["values"][r.name], m["times"][r.name]
            norm_name = r.name
            if r.name == "bar_drift":
                bar_src = bar_drift_source(m["values"], norms, view)
                if bar_src == "bar":
                    value, t, norm_name = m["values"]["bar_drift_bar"], m["times"]["bar_drift_bar"], BAR_DRIFT_NORM
            meas[r.name] = None if value is None else round(float(value), 3)
            if value is None:
                continue
            seen_any.add(r.name)
            norm = norm_for(norms, norm_name, view)
            th = norm["threshold"] if norm else r.fallback_threshold
            margins[r.name] = round(rule_margin(r, value, norm), 3)
            if r.flagged(value, th):
                errors.append({
                    "name": r.name, "description": r.description, "rep": rep.index,
                    "time_s": None if t is None else round(float(t), 2),
                    "evidence": {"metric": _metric_text(r, bar_src, m["values"]), "value": round(float(value), 3),
                                 "threshold": round(float(th), 3), "units": r.units,
                                 "flag_when": r.direction,
                                 "method": (sig.method if r.uses_world else "2d_image")
                                 if r.name not in ("rounded_back", "overextension") else "segmentation mask",
                                 "threshold_source": r.doc(norm)["threshold_source"],
                                 **({"source": bar_src, "bar_value": m["values"]["bar_drift_bar"]}
                                    if r.name == "bar_drift" else {})},
                    "severity": _severity(r, margins[r.name]),
                })
        for name in SUPPORTING:
            meas[name] = m["values"][name]
        conf = 1.0 if rep_trust is None else float(rep_trust.get(rep.index, 1.0))
        score = max(margins.values()) if margins else None
        per_rep.append({"index": rep.index, "errors": errors, "measurements": meas, "margins": margins,
                        "values": m["values"], "bar_drift_source": bar_src,
                        "score": None if score is None else round(score, 3), "confidence": round(conf, 3)})
    for r in checked:
        if r.name not in seen_any and reps:
            not_checked[r.name] = ("could not be measured on any rep"
                                   + (f" (needs {r.needs})" if r.needs else " (the joints it needs were not found)"))
    really_checked = [r.name for r in checked if r.name in seen_any or not reps]
    return {"method": sig.method, "checked": really_checked, "not_checked": not_checked,
            "per_rep": per_rep, "rules": [r.doc(norm_for(norms, r.name, view)) for r in rules],
            "chain": sig.chain, "bar_source": _bar_source(per_rep)}


def _bar_source(per_rep: list[dict]) -> str | None:
    """What bar_drift measured over the set: "bar", "wrists", "bar and wrists" (by rep), or
    None when it was not judged."""
    srcs = {r["bar_drift_source"] for r in per_rep if r.get("bar_drift_source")}
    return " and ".join(sorted(srcs)) if srcs else None


def _metric_text(rule: Rule, bar_src: str | None, values: dict) -> str:
    if bar_src == "bar":
        return ("the bar (tracked plate centre): how far it moves forward, during the pull, of the closest-in "
                "point it had reached since lift-off")
    if bar_src == "wrists" and values.get("bar_drift_bar") is None:
        return ("the hands (wrists; the bar was not tracked from lift-off through the pull in this rep) "
                "ahead of the ankles during the pull")
    if bar_src == "wrists":
        return ("the hands (wrists) ahead of the ankles during the pull (the tracked bar's own forward "
                "drift is given beside it as bar_value)")
    return rule.metric_name


def _severity(rule: Rule, margin: float) -> float:
    """The rule's weight times how far past the edge of the good-form range (margin >= 1)."""
    return round(float(rule.severity * max(margin, 1.0)), 3)
