"""The back's shape from the segmentation mask (deadlift_utils.spine)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from deadlift_utils.keypoints import KP
from deadlift_utils.pose import PoseSequence, load_pose_json, save_pose_json
from deadlift_utils.spine import STRETCH, SpineAnalyzer, back_shape, measure_back, sagitta_series

ROOT = Path(__file__).resolve().parents[1]
HIP = np.array([200.0, 420.0])
SHOULDER = np.array([500.0, 270.0])      # torso leaning ~63 degrees from vertical, facing +x


def bent_torso(sagitta: float, shape=(600, 800)):
    """A filled torso whose back edge (the side away from the hands) is a circular arc with
    the given sagitta (torso lengths, + bulging out) over the chord between the stretch ends,
    and its keypoints (18, 3). Returns (mask float32 0..1, keypoints)."""
    L = float(np.linalg.norm(SHOULDER - HIP))
    u = (SHOULDER - HIP) / L
    n = np.array([-u[1], u[0]])
    back = -n                         # the hands hang on the +n side (below the torso here)
    t0, t1 = STRETCH
    half = (t1 - t0) * L / 2
    h = abs(sagitta) * L
    t = np.linspace(-0.25, 1.25, 400)
    x = (t - (t0 + t1) / 2) * L
    if h > 0:
        R = (half ** 2 + h ** 2) / (2 * h)
        bulge = np.sqrt(np.maximum(R ** 2 - x ** 2, 0)) - (R - h)
    else:
        bulge = np.zeros_like(x)
    bulge *= np.sign(sagitta) if sagitta else 0.0
    back_edge = HIP + np.outer(t * L, u) + np.outer(0.25 * L + bulge, back)
    front_edge = HIP + np.outer(t[::-1] * L, u) - np.outer(np.full_like(t, 0.2 * L), back)
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(np.vstack([back_edge, front_edge])).astype(np.int32)], 1)
    kp = np.full((18, 3), np.nan)
    for j in ("r_shoulder", "l_shoulder", "neck"):
        kp[KP[j]] = [*SHOULDER, 0.9]
    for j in ("r_hip", "l_hip"):
        kp[KP[j]] = [*HIP, 0.9]
    for j in ("r_wrist", "l_wrist"):
        kp[KP[j]] = [*(SHOULDER + [0, 0.8 * L]), 0.9]
    for j in ("r_knee", "l_knee"):
        kp[KP[j]] = [*(HIP + [0.4 * L, 0.5 * L]), 0.9]
    kp[KP["nose"]] = [*(SHOULDER + 0.3 * L * u + 0.1 * L * n), 0.9]
    return mask.astype(np.float32), kp


@pytest.mark.parametrize("sagitta", [0.05, 0.03, -0.03])
def test_known_arc_is_recovered(sagitta):
    mask, kp = bent_torso(sagitta)
    m = measure_back(mask, kp)
    assert m is not None
    assert m["sagitta"] == pytest.approx(sagitta, rel=0.10)
    assert np.sign(m["curvature"]) == np.sign(sagitta)
    assert m["torso_px"] == pytest.approx(np.linalg.norm(SHOULDER - HIP), abs=0.1)
    assert 10 <= len(m["contour"]) <= 16 and len(m["chord"]) == 2
    # The traced edge is the back: every point on the side away from the hands.
    assert all(p[1] < 420 - 0.1 for p in m["contour"])


def test_straight_back_is_near_zero_and_holes_do_not_matter():
    mask, kp = bent_torso(0.0)
    assert abs(measure_back(mask, kp)["sagitta"]) < 0.005
    # A caption drawn across the body punches holes in the mask; the outer edge is unchanged.
    mask2, _ = bent_torso(0.04)
    holed = mask2.copy()
    cv2.putText(holed, "LOWER BACK", (230, 360), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 0, 4)
    assert np.sum(holed) < np.sum(mask2)
    assert measure_back(holed, kp)["sagitta"] == pytest.approx(measure_back(mask2, kp)["sagitta"], abs=0.002)


def test_degenerate_torsos_give_none():
    mask, kp = bent_torso(0.04)
    short = kp.copy()
    short[[KP["r_shoulder"], KP["l_shoulder"], KP["neck"]], :2] = HIP + [10, -10]
    assert measure_back(mask, short) is None                # torso of 14 px
    missing = kp.copy()
    missing[[KP["r_hip"], KP["l_hip"]]] = np.nan
    assert measure_back(mask, missing) is None               # no hips
    assert measure_back(np.zeros_like(mask), kp) is None     # no person on the mask
    # A notch bitten into the back (a plate or arm crossing it) breaks the edge.
    notched = mask.copy()
    mid = ((SHOULDER + HIP) / 2).astype(int)
    cv2.rectangle(notched, (mid[0] - 8, 0), (mid[0] + 8, mid[1] + 10), 0, -1)
    assert measure_back(notched, kp) is None


class _Person:
    def __init__(self, keypoints, mask):
        self.keypoints, self.mask, self.world = keypoints, mask, None


def test_analyzer_rejects_front_view_and_sequence_helpers():
    mask, kp = bent_torso(0.04)
    a = SpineAnalyzer()
    assert a.name == "spine" and a.wants_mask
    assert a.analyze(0, None, _Person(kp, mask))["sagitta"] == pytest.approx(0.04, rel=0.1)
    front = kp.copy()
    front[KP["r_shoulder"], :2] = SHOULDER + [-0.4 * 335, 0]
    front[KP["l_shoulder"], :2] = SHOULDER + [0.4 * 335, 0]
    assert a.analyze(1, None, _Person(front, mask)) is None
    assert a.analyze(2, None, None) is None
    # A sequence: 5 hinge frames (4 x 0.04, one glitch of 0.2) and 2 upright frames of 0.0.
    values = [{"sagitta": v, "curvature": 8 * v / 0.49, "torso_px": 335.0}
              for v in (0.04, 0.04, 0.2, 0.04, 0.04, 0.0, 0.0)] + [None]
    kps = np.repeat(kp[None, :, :2], 8, axis=0)
    kps[5:, [KP["r_shoulder"], KP["l_shoulder"], KP["neck"]]] = HIP + [0, -335]   # upright
    seq = PoseSequence(keypoints_xy=kps, confidence=np.ones((8, 18)), frame_index=np.arange(8) * 2,
                       time_s=np.arange(8) / 15, frame_extras={"spine": values})
    s = sagitta_series(seq)
    assert np.isnan(s[7]) and s[2] == pytest.approx(0.04)     # glitch removed, gap kept
    shape = back_shape(seq)
    assert shape["frames"] == 5 and shape["sagitta"] == pytest.approx(0.04)
    assert shape["most_flexed_frame"] in (0, 2, 4, 6, 8) and shape["most_flexed_sagitta"] == pytest.approx(0.04)
    assert back_shape(seq, frame_mask=np.arange(8) >= 5)["frames"] == 0


def test_spine_field_survives_json_round_trip(tmp_path):
    mask, kp = bent_torso(0.04)
    value = measure_back(mask, kp)
    seq = PoseSequence(keypoints_xy=kp[None, :, :2].repeat(2, 0), confidence=np.ones((2, 18)),
                       frame_index=np.array([0, 2]), time_s=np.array([0.0, 0.1]),
                       frame_extras={"spine": [value, None]})
    back = load_pose_json(save_pose_json(seq, tmp_path / "p.json"))
    assert back.frame_extras["spine"][0] == value and back.frame_extras["spine"][1] is None
    assert back_shape(back, min_frames=1)["sagitta"] == pytest.approx(value["sagitta"], abs=1e-4)


# --- real clips: a rounded back reads above a good one --------------------------------------

def _cut(video: Path, out: Path, start_s: float, end_s: float) -> Path:
    """Frames start_s..end_s of a video as a new (upright) mp4, to keep extraction short."""
    from deadlift_utils.video import iter_frames, probe_video

    info = probe_video(video)
    writer = None
    for index, frame in iter_frames(video, 1):
        if index < start_s * info.fps:
            continue
        if index >= end_s * info.fps:
            break
        if writer is None:
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), info.fps,
                                     (frame.shape[1], frame.shape[0]))
        writer.write(frame)
    writer.release()
    return out


@pytest.fixture(scope="module")
def real_back_shapes(tmp_path_factory, shared):
    """back_shape of four real clips, extracted with the SpineAnalyzer: two kettlebell reps
    (2-6.5 s) of rounded_back_side and correct_side, and the whole of tutorial_dev bad_03
    (rounded back) and good_05 (good, side; the same camera angle)."""
    from deadlift_utils.estimators import make_estimator
    from deadlift_utils.extract import extract_video

    tmp = tmp_path_factory.mktemp("spine")
    kb = shared / "videos" / "kettlebell_errors"
    td = shared / "videos" / "tutorial_dev"
    videos = {"kb_rounded": _cut(kb / "rounded_back_side.mp4", tmp / "kb_rounded.mp4", 2.0, 6.5),
              "kb_correct": _cut(kb / "correct_side.mp4", tmp / "kb_correct.mp4", 2.0, 6.5),
              "td_rounded": td / "bad" / "bad_03.mp4", "td_good": td / "good" / "good_05.mp4"}
    shapes = {}
    with make_estimator("blazepose", "full", segmentation=True) as est:
        for name, video in videos.items():
            res = extract_video(video, tmp / name, frame_stride=2, write_videos=False, estimator=est,
                                frame_analyzers=[SpineAnalyzer()])
            shapes[name] = back_shape(res.sequence)
            shapes[name]["json"] = load_pose_json(res.pose_path).frame_extras.get("spine")
    return shapes


def test_real_rounded_backs_read_above_good_ones(real_back_shapes):
    s = real_back_shapes
    for name, shape in s.items():
        assert shape["frames"] >= 10, (name, shape)
        assert any(v is not None for v in shape["json"])            # the field is in the JSON
    # Rounded backs bulge out, good ones are about flat (benchmark: 0.026 / 0.027 vs -0.007 / 0.011).
    assert s["kb_rounded"]["sagitta"] > s["kb_correct"]["sagitta"] + 0.01, s
    assert s["td_rounded"]["sagitta"] > s["td_good"]["sagitta"] + 0.005, s
    assert s["kb_rounded"]["sagitta"] > 0.01 and s["td_rounded"]["sagitta"] > 0.01, s
