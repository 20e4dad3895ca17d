"""Which kind of deadlift this is, so that one style's norms are not applied to another.

- **romanian**: a hip hinge that never bends the knees much: at the bottom the thighs stay
  near vertical (hips high above the knees) while the torso leans well forward. The bar
  stops somewhere on the shins; there is no floor start, so `hips_first` does not apply.
- **partial**: the hands never get below the knees (a rack pull or a top-half rep): the
  lockout rules apply, the floor-start rules do not.
- **sumo**: feet much wider than the shoulders; an upright torso and low hips are normal
  there, so `knee_dominant` and `hips_too_low` do not apply. The stance is measurable from
  the front, or in any view from BlazePose's 3D keypoints; a 2D side view cannot see it and
  says so.
- **conventional** otherwise.

All measures are ratios of heights or widths, so they read the same across cameras and pose
models. There is no labelled sumo or Romanian clip in the shared data: the thresholds below
are biomechanical (stated with each) and tests/test_lift_style.py checks them on constructed
sequences and on the shared conventional lifts.
"""
from __future__ import annotations

import numpy as np

from .keypoints import nanmedian


def _med(a) -> float:
    return float(nanmedian(a))


# Romanian: hips above the knees by more than this share of the thigh's standing height at
# the bottom (thigh within ~30 deg of vertical), with the torso leaning more than ROMANIAN_LEAN.
ROMANIAN_THIGH = 0.85
ROMANIAN_LEAN_DEG = 40.0
# Partial: the hands' lowest height above the ankles over the shin's standing height;
# above 1.0 the hands never went below the knees.
PARTIAL_HANDS_OVER_SHIN = 1.05
# Sumo: ankle distance / shoulder distance; a conventional stance is about hip width (0.6-1.2).
SUMO_STANCE = 1.6


def classify_style(sig, reps, view: str) -> dict:
    """{"style", "evidence": {measure: value}, "notes": [...]} from the Signals and reps."""
    from .rules import _standing, _window, metric_hip_above_knee_bottom, metric_torso_lean_bottom

    notes: list[str] = []
    thighs, leans, hands = [], [], []
    for rep in reps:
        t = metric_hip_above_knee_bottom(sig, rep)
        lean = metric_torso_lean_bottom(sig, rep)
        if t is not None:
            thighs.append(t[0])
        if lean is not None:
            leans.append(lean[0])
        sl = _window(sig, rep.start, rep.top_start)
        shin = _standing(sig, sig.shin_rise_px, rep)
        w = sig.wrist_rise_px[sl]
        if np.isfinite(w).any() and np.isfinite(shin) and shin > 0:
            hands.append(float(np.nanmin(w) / shin))
    stance_vals = sig.stance_ratio[np.isfinite(sig.stance_ratio)]
    stance = _med(stance_vals)
    # Width along the camera's line of sight is what monocular 3D estimates worst: the stance
    # is read in a front view (2D or 3D) or at 45 degrees from 3D, never from the side.
    stance_ok = view == "front" or (view == "middle" and sig.method == "3d_world")
    ev = {"thigh_height_bottom": round(_med(thighs), 3) if thighs else None,
          "torso_lean_bottom_deg": round(_med(leans), 1) if leans else None,
          "hands_lowest_over_shin": round(_med(hands), 3) if hands else None,
          "stance_over_shoulders": round(stance, 3) if np.isfinite(stance) and stance_ok else None}
    style = "conventional"
    if ev["stance_over_shoulders"] is not None and ev["stance_over_shoulders"] > SUMO_STANCE:
        style = "sumo"
    elif (ev["thigh_height_bottom"] is not None and ev["thigh_height_bottom"] > ROMANIAN_THIGH
          and ev["torso_lean_bottom_deg"] is not None and ev["torso_lean_bottom_deg"] > ROMANIAN_LEAN_DEG):
        style = "romanian"
    elif ev["hands_lowest_over_shin"] is not None and ev["hands_lowest_over_shin"] > PARTIAL_HANDS_OVER_SHIN:
        style = "partial"
    if not stance_ok:
        notes.append(f"stance width is not measurable in this view ({view}): sumo could not be checked")
    return {"style": style, "evidence": ev, "notes": notes}
