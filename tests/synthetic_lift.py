"""Constructed deadlift sequences from a 3D stick figure, for the styles the shared data lacks.

A lifter facing +z (forward), x to the lifter's left, y up; the ankles stay on the floor. A
pose is three angles from vertical (shin forward, thigh, torso), interpolated between the
bottom of the rep and standing tall; arms hang straight down from the shoulders. The figure
is projected orthographically for a side view (image x = forward) or a front view (image x =
lateral), in pixels with y down, into a deadlift-pose/1 PoseSequence.
"""
from __future__ import annotations

import numpy as np

from deadlift_utils.keypoints import KP, N_KEYPOINTS
from deadlift_utils.pose import PoseSequence

SHIN, THIGH, TORSO, ARM, HEAD = 0.45, 0.45, 0.55, 0.62, 0.22
PX = 600.0

STYLES = {
    # (shin deg forward, thigh deg from vertical, torso lean deg) at the bottom; half stance (m)
    "conventional": ((15.0, 68.0, 55.0), 0.14),
    "squat_pull": ((30.0, 88.0, 30.0), 0.14),
    "romanian": ((4.0, 18.0, 72.0), 0.14),
    "sumo": ((10.0, 80.0, 35.0), 0.42),
}


def _pose3d(shin_deg, thigh_deg, torso_deg, half_stance):
    """(18, 3) world points (x lateral, y up, z forward) for one pose."""
    P = np.full((N_KEYPOINTS, 3), np.nan)
    s, t, o = np.radians([shin_deg, thigh_deg, torso_deg])
    for side, sign in (("r", -1.0), ("l", 1.0)):
        ankle = np.array([sign * half_stance, 0.08, 0.0])
        knee = ankle + [sign * 0.02, SHIN * np.cos(s), SHIN * np.sin(s)]
        hip = knee + [0.0, THIGH * np.cos(t), -THIGH * np.sin(t)]
        hip[0] = sign * 0.15
        P[KP[f"{side}_ankle"]], P[KP[f"{side}_knee"]], P[KP[f"{side}_hip"]] = ankle, knee, hip
    hc = (P[KP["r_hip"]] + P[KP["l_hip"]]) / 2
    sc = hc + [0.0, TORSO * np.cos(o), TORSO * np.sin(o)]
    for side, sign in (("r", -1.0), ("l", 1.0)):
        sh = sc + [sign * 0.2, 0.0, 0.0]
        P[KP[f"{side}_shoulder"]] = sh
        P[KP[f"{side}_elbow"]] = sh + [0.0, -ARM / 2, 0.0]
        P[KP[f"{side}_wrist"]] = sh + [0.0, -ARM, 0.0]
        P[KP[f"{side}_ear"]] = sc + [sign * 0.07, HEAD * np.cos(o), HEAD * np.sin(o) - 0.02]
        P[KP[f"{side}_eye"]] = sc + [sign * 0.03, HEAD * np.cos(o), HEAD * np.sin(o) + 0.06]
    P[KP["neck"]] = sc
    P[KP["nose"]] = sc + [0.0, (HEAD - 0.03) * np.cos(o), (HEAD - 0.03) * np.sin(o) + 0.1]
    return P


def synthetic_lift(style: str = "conventional", view: str = "side", reps: int = 3, fps: float = 30.0,
                   bottom=None, half_stance=None) -> PoseSequence:
    """A PoseSequence of `reps` reps of `style` seen from `view` ("side" or "front")."""
    b, hs = STYLES[style]
    b = bottom or b
    hs = half_stance if half_stance is not None else hs
    # setup at the bottom, pull, lockout, lowering (seconds)
    plan = [(0.6, 0.0, 0.0), (1.0, 0.0, 1.0), (0.8, 1.0, 1.0), (1.0, 1.0, 0.0)]
    u = []
    for _ in range(reps):
        for dur, a, c in plan:
            n = int(round(dur * fps))
            u.extend(a + (c - a) * (0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)))
    u.append(0.0)
    u = np.array(u)
    frames = np.array([_pose3d(*(np.array(b) * (1 - x)), hs) for x in u])
    if view == "side":
        img = np.stack([frames[..., 2], -frames[..., 1]], axis=-1)   # facing image right
    elif view == "front":
        img = np.stack([frames[..., 0], -frames[..., 1]], axis=-1)
    else:
        raise ValueError(view)
    img = img * PX + np.array([640.0, 900.0])
    T = len(img)
    if view == "side":  # the far (left) limbs are hidden behind the near ones
        conf = np.ones((T, N_KEYPOINTS))
        for name in ("l_shoulder", "l_elbow", "l_wrist", "l_hip", "l_knee", "l_ankle", "l_ear", "l_eye"):
            conf[:, KP[name]] = 0.4
    else:
        conf = np.ones((T, N_KEYPOINTS))
    world = frames - frames[:, [KP["r_hip"], KP["l_hip"]]].mean(axis=1, keepdims=True)
    world = world * np.array([1.0, -1.0, 1.0])  # BlazePose's world y points down
    return PoseSequence(keypoints_xy=img, confidence=conf, frame_index=np.arange(T),
                        time_s=np.arange(T) / fps, world_xyz=None, fps=fps, width=1280, height=1000,
                        backend=f"synthetic-{style}")
