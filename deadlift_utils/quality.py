"""Pose quality per video: detection rate, confidence, and the flags shown in review."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .keypoints import KP
from .pose import PoseSequence

# Review flag and batch auto-approval: the share of sampled frames in which a shoulder, hip, knee
# and ankle were all found (PoseSequence.detection_rate). Not analyze.py's gate, which is looser.
REVIEW_MIN_LIFT_JOINTS_RATE = 0.90
MIN_MEAN_CONFIDENCE = 0.5
MAX_CUT_OFF_SHARE = 0.10     # frames where the lifter's feet or head are missing (out of frame)


@dataclass
class PoseQuality:
    detection_rate: float        # frames with shoulders, hips, knees and ankles all found
    lifter_found_rate: float     # frames with the lifter found at all
    mean_confidence: float
    frames: int
    flags: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


def assess(seq: PoseSequence) -> PoseQuality:
    """Measure a video's pose quality and list what a reviewer should look at.

    Flags: too few frames; the lift joints (shoulder, hip, knee, ankle) not all found often
    enough; low confidence; the lifter cut off by the frame edge (ankles or head missing while
    the hips are found); no hips (or no person) found at all.
    """
    rate = seq.detection_rate()
    conf = seq.mean_confidence()
    flags = []
    n = len(seq)
    if n < 5:
        flags.append(f"only {n} sampled frames")
    if rate < REVIEW_MIN_LIFT_JOINTS_RATE:
        flags.append(f"shoulders, hips, knees and ankles all found in only {rate:.0%} of frames")
    if not np.isnan(conf) and conf < MIN_MEAN_CONFIDENCE:
        flags.append(f"low keypoint confidence ({conf:.2f})")
    if n:
        pres = seq.present
        hips = pres[:, KP["r_hip"]] | pres[:, KP["l_hip"]]
        if hips.any():
            ankles = pres[:, KP["r_ankle"]] | pres[:, KP["l_ankle"]]
            head = pres[:, [KP["nose"], KP["r_eye"], KP["l_eye"], KP["r_ear"], KP["l_ear"]]].any(axis=1)
            feet_cut = float((hips & ~ankles).sum() / hips.sum())
            head_cut = float((hips & ~head).sum() / hips.sum())
            if feet_cut > MAX_CUT_OFF_SHARE:
                flags.append(f"feet out of frame or hidden in {feet_cut:.0%} of frames")
            if head_cut > MAX_CUT_OFF_SHARE:
                flags.append(f"head out of frame or hidden in {head_cut:.0%} of frames")
        else:
            flags.append("no person found" if not pres.any() else "hips never found")
    return PoseQuality(rate, seq.lifter_found_rate(), conf, n, flags)
