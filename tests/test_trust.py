"""Trusted frames: shot cuts in real footage, and skeletons that are implausible for the lifter."""
from __future__ import annotations

import copy

import cv2
import numpy as np

from deadlift_utils.extract import extract_video
from deadlift_utils.form import judge_form
from deadlift_utils.keypoints import KP
from deadlift_utils.trust import ShotCutAnalyzer, frame_trust, shot_cuts
from synthetic_lift import synthetic_lift


def _splice(paths_and_seconds, out_path, size=(640, 360), fps=30.0):
    """Write a clip made of the first N seconds of several real videos (hard cuts between)."""
    writer = cv2.VideoWriter(str(out_path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for path, seconds in paths_and_seconds:
        cap = cv2.VideoCapture(str(path))
        for _ in range(int(seconds * fps)):
            ok, frame = cap.read()
            if not ok:
                break
            writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
        cap.release()
    writer.release()
    return out_path


def test_shot_cut_found_at_the_splice_and_nowhere_else(tmp_path, shared):
    a = shared / "videos" / "yfgd_small" / "good" / "good_001.mp4"
    b = shared / "videos" / "tutorial_dev" / "good" / "good_05.mp4"
    clip = _splice([(a, 1.0), (b, 1.5)], tmp_path / "spliced.mp4")
    res = extract_video(clip, tmp_path / "poses", frame_stride=2, write_videos=False,
                        frame_analyzers=[ShotCutAnalyzer()])
    shots = res.sequence.frame_extras["shot"]
    cuts = [int(res.sequence.frame_index[k]) for k, v in enumerate(shots) if v and v.get("cut")]
    assert cuts == [30], cuts          # the first frame of the second clip (1.0 s at 30 fps)
    # A camera moving through one shot (the orbiting tutorial clip) has no cut.
    res2 = extract_video(shared / "videos" / "tutorial_dev" / "good" / "good_01.mp4", tmp_path / "p2",
                         frame_stride=2, write_videos=False, frame_analyzers=[ShotCutAnalyzer()])
    assert not any(v and v.get("cut") for v in res2.sequence.frame_extras["shot"])


def test_shot_cut_levels():
    d = np.array([np.nan, 3, 4, 3, 60, 4, 3, 5])
    assert shot_cuts(d).tolist() == [False, False, False, False, True, False, False, False]
    # A steadily changing view (orbit, hand-held) raises the level with it.
    assert not shot_cuts(np.array([np.nan, 25, 30, 28, 31, 29])).any()


def test_the_shot_with_the_lift_is_analysed_and_the_other_dropped():
    lift = synthetic_lift("conventional", "side", reps=2)
    T = len(lift)
    # Prepend 1 s of another shot: a bigger, static person elsewhere in the frame.
    other = np.repeat(lift.keypoints_xy[:1] * 1.8 + np.array([300.0, -700.0]), 30, axis=0)
    seq = copy.copy(lift)
    seq.keypoints_xy = np.concatenate([other, lift.keypoints_xy])
    seq.confidence = np.concatenate([np.ones((30, 18)), lift.confidence])
    seq.time_s = np.arange(T + 30) / 30.0
    seq.frame_index = np.arange(T + 30)
    seq.frame_extras = {"shot": [{"diff": 2.0} for _ in range(T + 30)]}
    seq.frame_extras["shot"][30] = {"diff": 80.0, "cut": True}
    tr = frame_trust(seq, "side")
    assert tr.n_shots == 2 and tr.main_shot == 1
    assert not tr.trusted[:30].any() and tr.trusted[30:].mean() > 0.95
    assert tr.reasons["another shot (the clip cuts away from the lift)"] == 30
    res = judge_form(seq, "side")
    assert res["reps"].count == 2 and res["verdict"] == "good"


def test_a_skeleton_snapped_onto_the_plate_counts_as_a_missing_frame():
    """Frames where the skeleton shrank onto the plate are dropped: the judgement equals the one
    with those frames simply missing, whatever the rules would have read from them."""
    from test_reps import shared_pose

    clean = shared_pose("yfgd_small/good/good_004.mp4")
    r = judge_form(clean, "side")["reps"].reps[0]
    ks = list(range(r.pull_start, r.pull_start + 4))
    kp = np.array(clean.keypoints_xy, copy=True)
    ankle = kp[ks][:, [KP["r_ankle"]], :]
    kp[ks] = ankle + (kp[ks] - ankle) * 0.35
    broken = copy.copy(clean)
    broken.keypoints_xy = kp
    missing = copy.copy(clean)
    gone = np.array(clean.keypoints_xy, copy=True)
    gone[ks] = np.nan
    missing.keypoints_xy = gone
    tr = frame_trust(broken, "side")
    assert not tr.trusted[ks].any() and all(tr.reason_of[k] for k in ks)
    a, b = judge_form(missing, "side"), judge_form(broken, "side")
    assert a["verdict"] == b["verdict"] and a["flagged_reps"] == b["flagged_reps"]
    assert a["rules"]["per_rep"][0]["measurements"] == b["rules"]["per_rep"][0]["measurements"]
    assert b["trust"].summary(broken.time_s)["dropped"]
    # Without the trust step the broken frames would be measured: the hip angle reads differently.
    from deadlift_utils.rules import compute_signals

    raw = compute_signals(broken, view="side")
    assert np.isfinite(raw.hip_angle_2d_deg[ks]).any()


def test_no_trusted_rep_gives_unknown_with_the_reason():
    seq = synthetic_lift("conventional", "side", reps=1)
    kp = np.array(seq.keypoints_xy, copy=True)
    kp[::2, [KP["r_hip"], KP["l_hip"]]] = np.nan       # hips lost in every other frame
    kp[1::4, :, :] *= 0.3                                 # and the rest half broken
    seq.keypoints_xy = kp
    res = judge_form(seq, "side")
    if res["reps"].count:
        assert res["verdict"] == "unknown"
        assert "trusted frames" in res["verdict_reason"] and "dropped because" in res["verdict_reason"]
    else:
        assert "no complete pull" in res["verdict_reason"]
