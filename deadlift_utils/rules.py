"""Named deadlift errors as documented rules over joint angles and trajectories.

Each rule is a `Rule`: a per-rep metric (a number with units, measured at a stated moment of
the rep), a threshold and a direction, and the camera views where the metric means what it
says. A rep is flagged when its metric crosses the threshold; the finding carries the rep,
the time and the evidence (value, threshold, units, which keypoints: 3D world or 2D image).
Rules whose view is not valid for the video are reported as "not checked" with the reason,
never guessed.

Angles come from the 3D world keypoints when the pose has them (BlazePose), which depend far
less on the camera angle; otherwise from the 2D image keypoints. Heights (which rise first,
hips or shoulders) always come from the image y axis: a turn of the camera about the vertical
axis does not change heights, and BlazePose's world frame is centred on the hips.

Thresholds were set on the shared data (kettlebell_errors: one lifter, correct vs named
errors, side and ~45 deg views; openpose_sequences: five lifters, front/middle views) and are
listed in RULES below; docs/analysis_results.md gives the measured flag rates.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .keypoints import KP, angle_deg, hip_centre, shoulder_centre, torso_length

ALL_VIEWS = ("front", "middle", "side")


def _nanmedian(a):
    a = np.asarray(a, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmedian(a)) if a.size else float("nan")


def _nanmean_pair(a, b):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.stack([a, b]), axis=0)


# ----------------------------------------------------------------------------- signals

@dataclass
class Signals:
    """Per-frame measurements (T,) used by the rules; NaN where not measurable."""

    time_s: np.ndarray
    method: str                      # "3d_world" or "2d_image" (for the angles)
    hip_angle_deg: np.ndarray        # shoulder-hip-knee, 180 = straight
    hip_angle_2d_deg: np.ndarray     # the same from the image (BlazePose's 3D hips read
                                     # ~165 deg when standing straight, so lockout uses 2D)
    knee_angle_deg: np.ndarray       # hip-knee-ankle, 180 = straight
    elbow_angle_deg: np.ndarray      # shoulder-elbow-wrist, mean of the arms seen
    elbow_angle_2d_deg: np.ndarray   # the same from the image (BlazePose's 3D elbows read
                                     # ~155 deg on straight arms, so the rule uses 2D)
    torso_incline_deg: np.ndarray    # hip->shoulder from vertical in the image; + = forward,
                                     # - = leaning back (2D: the world frame tilts with the phone)
    torso_vs_thigh_deg: np.ndarray   # torso direction relative to the thigh line in the image;
                                     # + = torso ahead (hip flexed), - = behind (hyperextended).
                                     # Relative to the body, so a tilted phone does not bias it.
    head_torso_deg: np.ndarray       # angle between torso line and shoulder->ear line (0 = in line)
    torso_chord: np.ndarray          # hip-shoulder distance / the video's standing value
    hip_height: np.ndarray           # image, torso lengths above the lowest hip position
    shoulder_height: np.ndarray      # image, torso lengths
    grip_ratio: np.ndarray           # wrist distance / shoulder distance
    knee_ratio: np.ndarray           # knee distance / ankle distance
    bar_offset: np.ndarray           # wrist ahead of the ankle (facing direction), torso lengths
    facing: int                      # +1 lifter faces image right, -1 left
    scale_px: float                  # the video's torso length in pixels


def _pair_angle(P, a, b, c):
    """Mean over the right and left sides of angle a-b-c (names without r_/l_)."""
    r = angle_deg(P[:, KP["r_" + a]], P[:, KP["r_" + b]], P[:, KP["r_" + c]])
    l = angle_deg(P[:, KP["l_" + a]], P[:, KP["l_" + b]], P[:, KP["l_" + c]])
    return _nanmean_pair(r, l)


def facing_sign(kp: np.ndarray) -> int:
    """+1 when the lifter faces image right, -1 left (nose ahead of the ears; else knees
    ahead of the ankles)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ears = np.nanmean(kp[:, [KP["r_ear"], KP["l_ear"]], 0], axis=1)
        d = _nanmedian(kp[:, KP["nose"], 0] - ears)
        if not np.isfinite(d) or d == 0:
            knees = np.nanmean(kp[:, [KP["r_knee"], KP["l_knee"]], 0], axis=1)
            ankles = np.nanmean(kp[:, [KP["r_ankle"], KP["l_ankle"]], 0], axis=1)
            d = _nanmedian(knees - ankles)
    return -1 if np.isfinite(d) and d < 0 else 1


def compute_signals(seq, use_world: bool = True) -> Signals:
    """Per-frame angles and ratios of a PoseSequence (see Signals for the units)."""
    kp = np.asarray(seq.keypoints_xy, dtype=float)
    T = len(kp)
    tl = torso_length(kp)
    good_tl = tl[np.isfinite(tl) & (tl > 0)]
    scale = float(np.percentile(good_tl, 90)) if good_tl.size else float("nan")
    world = getattr(seq, "world_xyz", None)
    use3d = bool(use_world and world is not None and np.isfinite(world).any())
    P = np.asarray(world, dtype=float) if use3d else kp
    facing = facing_sign(kp)

    hip = _pair_angle(P, "shoulder", "hip", "knee")
    knee = _pair_angle(P, "hip", "knee", "ankle")
    elbow = _pair_angle(P, "shoulder", "elbow", "wrist")
    elbow2d = _pair_angle(kp, "shoulder", "elbow", "wrist")
    hip2d = _pair_angle(kp, "shoulder", "hip", "knee")

    v2 = shoulder_centre(kp) - hip_centre(kp)
    incline = np.degrees(np.arctan2(v2[:, 0] * facing, -v2[:, 1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        knee_c = np.nanmean(kp[:, [KP["r_knee"], KP["l_knee"]]], axis=1)
    thigh_up = hip_centre(kp) - knee_c
    thigh_incline = np.degrees(np.arctan2(thigh_up[:, 0] * facing, -thigh_up[:, 1]))
    torso_vs_thigh = incline - thigh_incline
    sc, hc = shoulder_centre(P), hip_centre(P)
    v = sc - hc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ear = np.nanmean(P[:, [KP["r_ear"], KP["l_ear"]]], axis=1)
    head = angle_deg(ear, sc, sc + v)  # angle between shoulder->ear and the torso extension

    chord = np.linalg.norm(v, axis=-1)
    with np.errstate(all="ignore"):
        chord_ref = np.nanpercentile(chord, 90) if np.isfinite(chord).any() else np.nan
        chord = chord / chord_ref

    # Heights from the image (y down), in torso lengths above the lowest position seen.
    with np.errstate(all="ignore"):
        hh = -hip_centre(kp)[:, 1] / scale
        sh = -shoulder_centre(kp)[:, 1] / scale
    hh = hh - (np.nanmin(hh) if np.isfinite(hh).any() else 0)
    sh = sh - (np.nanmin(sh) if np.isfinite(sh).any() else 0)

    def dist(a, b):
        return np.linalg.norm(P[:, KP[a]] - P[:, KP[b]], axis=-1)

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        grip = dist("r_wrist", "l_wrist") / dist("r_shoulder", "l_shoulder")
        kneer = dist("r_knee", "l_knee") / dist("r_ankle", "l_ankle")
        wrist_x = np.nanmean(kp[:, [KP["r_wrist"], KP["l_wrist"]], 0], axis=1)
        ankle_x = np.nanmean(kp[:, [KP["r_ankle"], KP["l_ankle"]], 0], axis=1)
        bar = (wrist_x - ankle_x) * facing / scale
    return Signals(np.asarray(seq.time_s, dtype=float), "3d_world" if use3d else "2d_image",
                   hip, hip2d, knee, elbow, elbow2d, incline, torso_vs_thigh, head, chord, hh, sh, grip, kneer, bar, facing, scale)


# ----------------------------------------------------------------------------- rules

@dataclass
class Rule:
    """A named error: metric(signals, rep) -> (value, time_s) or None; flagged when the value
    is beyond `threshold` in `direction` ("below" or "above")."""

    name: str
    description: str                 # what the error is, for the report and the coaching
    metric_name: str
    units: str
    threshold: float
    direction: str                   # "below" or "above"
    valid_views: tuple
    metric: Callable
    advice: str = ""
    severity: float = 1.0            # ranks findings for the coaching text
    needs_3d_for_views: tuple = field(default_factory=tuple)  # views valid only with 3D

    def flagged(self, value: float) -> bool:
        return value < self.threshold if self.direction == "below" else value > self.threshold

    def doc(self) -> dict:
        return {"name": self.name, "description": self.description, "metric": self.metric_name,
                "units": self.units, "threshold": self.threshold, "flag_when": self.direction,
                "valid_views": list(self.valid_views)}


def _window(sig: Signals, a: int, b: int) -> slice:
    return slice(max(a, 0), max(b, a) + 1)


def _at(sig: Signals, values: np.ndarray, sl: slice, pick: str):
    """(value, time_s) of the min / max / median of values over the slice."""
    w = values[sl]
    t = sig.time_s[sl]
    ok = np.isfinite(w)
    if ok.sum() == 0:
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


def metric_min_hip_angle_bottom(sig: Signals, rep):
    """Hip angle at the bottom of the rep (deg)."""
    b = _bottom_index(sig, rep)
    return _at(sig, sig.hip_angle_deg, _window(sig, b - 1, b + 1), "median")


def metric_head_torso_bottom(sig: Signals, rep):
    """Angle (deg) between the torso line (hip->shoulder, extended) and the shoulder->ear
    line, median around the bottom of the rep. The 18 points have no spine, so this is the
    best proxy they allow: a rounded upper back and neck drop the head below the torso line
    (measured 31-38 deg on the rounded_back clips vs 1-17 deg on the others)."""
    b = _bottom_index(sig, rep)
    return _at(sig, sig.head_torso_deg, _window(sig, b - 2, b + 2), "median")


def metric_torso_chord_bottom(sig: Signals, rep):
    """Hip-to-shoulder distance at the bottom / when standing (a rounded spine shortens the
    straight line between its ends)."""
    b = _bottom_index(sig, rep)
    return _at(sig, sig.torso_chord, _window(sig, b - 1, b + 1), "median")


def metric_lockout_hip(sig: Signals, rep):
    """Largest hip angle in the image during the lockout (deg); 180 = fully extended."""
    return _at(sig, sig.hip_angle_2d_deg, _window(sig, rep.top_start, rep.top_end), "max")


def metric_lockout_knee(sig: Signals, rep):
    """Largest knee angle during the lockout (deg)."""
    return _at(sig, sig.knee_angle_deg, _window(sig, rep.top_start, rep.top_end), "max")


def metric_lean_back(sig: Signals, rep):
    """Largest torso lean behind the thigh line during the lockout (deg; + = leaning back,
    i.e. the hips pushed through into hyperextension). Measured against the thigh rather
    than the image vertical, so a phone tilted up from the floor does not read as a lean."""
    return _at(sig, -sig.torso_vs_thigh_deg, _window(sig, rep.top_start, rep.top_end), "max")


def metric_bar_drift(sig: Signals, rep):
    """Largest distance of the hands ahead of the ankles (mid-foot) during the pull,
    in torso lengths."""
    return _at(sig, sig.bar_offset, _window(sig, rep.pull_start, rep.top_start), "max")


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


def metric_torso_upright_bottom(sig: Signals, rep):
    """Torso lean from vertical in the image (deg) at the bottom of the rep: a hip hinge
    leans the torso well forward (40-70 deg); squatting the weight up keeps it upright."""
    b = _bottom_index(sig, rep)
    return _at(sig, sig.torso_incline_deg, _window(sig, b - 1, b + 1), "median")


def metric_knee_bottom(sig: Signals, rep):
    """Knee angle (deg) at the bottom of the rep; a squat-style pull bends the knees far more
    than a hip hinge."""
    b = _bottom_index(sig, rep)
    return _at(sig, sig.knee_angle_deg, _window(sig, b - 1, b + 1), "median")


RULES: list[Rule] = [
    Rule("hips_first", "hips rise faster than the shoulders off the floor",
         "shoulder rise / hip rise over the first half of the hip rise", "ratio", 0.80, "below",
         ("front", "middle", "side"), metric_hips_first,
         "Push the floor away with the legs and keep your chest rising at the same speed as "
         "your hips; the back angle should not change in the first half of the pull.", 1.0),
    Rule("rounded_back", "the back rounds (head and shoulders curl down towards the hips)",
         "angle between the torso line and the shoulder-to-ear line at the bottom", "deg", 25.0,
         "above", ("side", "middle"), metric_head_torso_bottom,
         "Brace before each pull: chest up, shoulder blades back, eyes a few metres ahead, and "
         "hinge from the hips with a long, flat back.", 1.2),
    Rule("knee_dominant", "squatting the weight up (torso upright, knees doing the work)",
         "torso lean from vertical at the bottom", "deg", 25.0, "below",
         ("side", "middle"), metric_torso_upright_bottom,
         "Hinge: push the hips back until the torso leans well forward, shins near vertical, "
         "then drive the hips forward to stand up.", 0.9),
    Rule("incomplete_lockout", "hips not fully extended at the top",
         "largest hip angle during the lockout", "deg", 160.0, "below",
         ("side",), metric_lockout_hip,
         "Finish each rep standing tall: squeeze the glutes until hips and knees are straight.",
         0.8),
    Rule("leaning_back", "leaning back / hyperextending at the lockout",
         "torso lean behind the thigh line at the lockout", "deg", 15.0, "above",
         ("side",), metric_lean_back,
         "Stop at upright: stand tall with ribs down instead of leaning back.", 0.7),
    Rule("bar_drift", "the weight drifts away from the mid-foot line",
         "hands ahead of the ankles during the pull", "torso lengths", 0.55, "above",
         ("side",), metric_bar_drift,
         "Keep the weight close: drag it up the legs over the middle of the foot.", 0.9),
    Rule("knees_cave", "knees cave inwards during the pull",
         "smallest knee distance / ankle distance during the pull", "ratio", 0.65, "below",
         ("front",), metric_knee_cave,
         "Push the knees out over the toes as you drive up.", 0.9),
    Rule("bent_elbows", "pulling with bent elbows",
         "median elbow angle from the pull to the lockout", "deg", 160.0, "below",
         ("front", "middle"), metric_elbow,
         "Let the arms hang straight like hooks; lock the elbows before the weight leaves the floor.",
         0.8),
    Rule("grip_too_wide", "hands much wider than the shoulders",
         "wrist distance / shoulder distance at the lockout", "ratio", 2.25, "above",
         ("front",), metric_grip,
         "Grip just outside the legs, about shoulder width.", 0.6),
    Rule("grip_too_narrow", "hands much closer than shoulder width",
         "wrist distance / shoulder distance at the lockout", "ratio", 1.00, "below",
         ("front",), metric_grip,
         "Grip just outside the legs, about shoulder width, so the arms hang straight down.", 0.6),
]
RULES_BY_NAME = {r.name: r for r in RULES}
# Rules whose metric comes from the 3D world keypoints when the pose has them.
USES_WORLD = {"rounded_back", "knees_cave", "grip_too_wide", "grip_too_narrow"}


def rule_applies(rule: Rule, view: str, method: str) -> tuple[bool, str | None]:
    """Whether `rule` can be judged in `view` (and why not)."""
    if view not in ALL_VIEWS:
        return False, f"view is {view!r}; this rule needs a known view ({', '.join(rule.valid_views)})"
    if view in rule.valid_views:
        return True, None
    if view in rule.needs_3d_for_views and method == "3d_world":
        return True, None
    return False, f"not measurable in the {view} view (valid: {', '.join(rule.valid_views)})"


def evaluate_rules(seq, reps, view: str, signals: Signals | None = None, rules=None,
                   use_world: bool = True) -> dict:
    """Apply every rule to every rep.

    seq: PoseSequence; reps: list of reps.Rep; view: "front"/"middle"/"side" (or "unknown").
    Returns {"method", "checked": [rule names], "not_checked": {name: reason},
             "per_rep": [{"index", "errors": [finding], "measurements": {name: value}}],
             "rules": [rule docs]}. A finding is {"name", "description", "rep", "time_s",
             "evidence": {"metric", "value", "threshold", "units", "flag_when", "method"}}.
    """
    rules = RULES if rules is None else rules
    sig = signals if signals is not None else compute_signals(seq, use_world=use_world)
    checked, not_checked = [], {}
    for r in rules:
        ok, why = rule_applies(r, view, sig.method)
        if ok:
            checked.append(r)
        else:
            not_checked[r.name] = why
    per_rep = []
    for rep in reps:
        errors, meas = [], {}
        for r in checked:
            res = r.metric(sig, rep)
            if res is None or not np.isfinite(res[0]):
                meas[r.name] = None
                continue
            value, t = res
            meas[r.name] = round(float(value), 3)
            if r.flagged(value):
                errors.append({
                    "name": r.name, "description": r.description, "rep": rep.index,
                    "time_s": round(float(t), 2),
                    "evidence": {"metric": r.metric_name, "value": round(float(value), 3),
                                 "threshold": r.threshold, "units": r.units,
                                 "flag_when": r.direction,
                                 "method": sig.method if r.name in USES_WORLD else "2d_image"},
                    "severity": _severity(r, value),
                })
        per_rep.append({"index": rep.index, "errors": errors, "measurements": meas})
    return {"method": sig.method, "checked": [r.name for r in checked], "not_checked": not_checked,
            "per_rep": per_rep, "rules": [r.doc() for r in rules]}


def _severity(rule: Rule, value: float) -> float:
    """How far past the threshold, relative to the threshold, times the rule's weight."""
    th = rule.threshold if rule.threshold else 1.0
    excess = (rule.threshold - value) if rule.direction == "below" else (value - rule.threshold)
    return round(float(rule.severity * (1.0 + abs(excess / th))), 3)
