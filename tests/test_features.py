"""Features: invariance to translation/scale (property test), canonical facing, views, windows."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from deadlift_utils import config
from deadlift_utils.features import (canonical_pose, facing_sign, frame_features, infer_view,
                                     judgeable, video_scale, window_features)
from deadlift_utils.keypoints import mirror_pose
from deadlift_utils.pose import load_pose_json

SIDE = config.ESAP_POSE_DIR / "good_side" / "deadlift_3.json"
FRONT = config.ESAP_POSE_DIR / "bad_front" / "Bad7.json"  # has missing points
BLOCKS = ["norm_xy", "angles", "robust"]


@pytest.fixture(scope="module")
def side_kp():
    return load_pose_json(SIDE).keypoints_xy


@pytest.fixture(scope="module")
def front_kp():
    return load_pose_json(FRONT).keypoints_xy


def _same(a, b, tol=1e-6):
    assert a.shape == b.shape
    assert np.array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(a)
    np.testing.assert_allclose(a[ok], b[ok], atol=tol, rtol=1e-6)


@settings(max_examples=25, deadline=None)
@given(tx=st.floats(-2000, 2000), ty=st.floats(-2000, 2000), scale=st.floats(0.1, 8.0),
       which=st.sampled_from(["side", "front"]))
def test_normalised_features_invariant_to_translation_and_scale(side_kp, front_kp, tx, ty, scale, which):
    kp = side_kp if which == "side" else front_kp
    moved = kp * scale + np.array([tx, ty])
    X0, names = frame_features(kp, BLOCKS)
    X1, _ = frame_features(moved, BLOCKS)
    _same(X0, X1, tol=1e-6)
    assert len(names) == X0.shape[1]


def test_raw_pixels_are_not_invariant(side_kp):
    """The study's input changes with camera distance, which is why it transfers badly."""
    X0, _ = frame_features(side_kp, ["raw_xy"])
    X1, _ = frame_features(side_kp * 2, ["raw_xy"])
    assert not np.allclose(np.nan_to_num(X0), np.nan_to_num(X1))


def test_mirrored_video_has_same_canonical_features(side_kp):
    """A lifter filmed facing left gets the same features as facing right (canonical facing)."""
    assert facing_sign(side_kp) == 1
    flipped = mirror_pose(side_kp, width=1920)
    assert facing_sign(flipped) == -1
    canon, sign = canonical_pose(flipped)
    assert sign == -1
    X0, _ = frame_features(side_kp, ["norm_xy", "angles", "mask"])
    X1, _ = frame_features(flipped, ["norm_xy", "angles", "mask"])
    _same(X0, X1, tol=1e-9)


def test_study_side_videos_face_right_and_are_seen_as_side():
    files = sorted((config.ESAP_POSE_DIR / "good_side").glob("*.json"))
    kps = [load_pose_json(f).keypoints_xy for f in files]
    assert sum(facing_sign(k) == 1 for k in kps) == len(kps)
    assert sum(infer_view(k) == "side" for k in kps) == len(kps)
    fronts = [load_pose_json(f).keypoints_xy for f in sorted((config.ESAP_POSE_DIR / "good_front").glob("*.json"))]
    assert sum(infer_view(k) == "side" for k in fronts) == 0


def test_mask_marks_missing_points_and_unjudgeable_frames(front_kp):
    kp = front_kp.copy()
    kp[3, 8] = np.nan   # r_hip
    kp[3, 11] = np.nan  # l_hip
    X, names = frame_features(kp, ["norm_xy", "mask"])
    mask = X[:, names.index("r_hip_present")]
    assert mask[3] == 0 and np.nanmax(mask) == 1
    assert not judgeable(kp)[3] and judgeable(kp).sum() >= len(kp) - 2
    assert np.isnan(X[3, names.index("nose_x_norm")])  # no hips -> no normalised pose


def test_video_scale_is_the_standing_torso(side_kp):
    s = video_scale(side_kp)
    assert s > 0 and np.isfinite(s)
    assert video_scale(side_kp * 3) == pytest.approx(3 * s)


def test_window_features_give_motion_and_clamp_at_ends():
    X = np.arange(10, dtype=float)[:, None] * np.array([[1.0, 0.0]])
    W, names = window_features(X, ["a", "b"], half_width=2, step=1)
    assert W.shape == (10, 2 * 5)
    assert names[:2] == ["a", "b"]
    prev1 = W[:, names.index("a_dprev1")]
    assert prev1[0] == 0 and np.all(prev1[1:] == -1)
    assert np.all(W[:, names.index("b_dnext2")] == 0)


def test_unknown_block_is_a_clear_error(side_kp):
    with pytest.raises(ValueError, match="unknown feature block"):
        frame_features(side_kp, ["pixels"])
    with pytest.raises(ValueError, match=r"\(T, 18, 2\)"):
        frame_features(side_kp[:, :10], ["norm_xy"])
