import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deadlift_utils.keypoints import (
    KEYPOINT_NAMES, KP, MIRROR_INDEX, angle_deg, blazepose_to_coco, mirror_pose, normalise_pose,
    smooth_keypoints,
)


def test_blazepose_mapping_picks_the_right_landmarks():
    # Landmark i carries the value i, so each COCO point shows which landmark it came from.
    landmarks = np.repeat(np.arange(33, dtype=float)[:, None], 3, axis=1)
    coco = blazepose_to_coco(landmarks)
    expected = {"nose": 0, "r_shoulder": 12, "r_elbow": 14, "r_wrist": 16, "l_shoulder": 11, "l_elbow": 13,
                "l_wrist": 15, "r_hip": 24, "r_knee": 26, "r_ankle": 28, "l_hip": 23, "l_knee": 25,
                "l_ankle": 27, "r_eye": 5, "l_eye": 2, "r_ear": 8, "l_ear": 7}
    for name, blaze in expected.items():
        assert coco[KP[name], 0] == blaze, name
    assert coco[KP["neck"], 0] == pytest.approx(11.5)  # shoulder midpoint
    assert len(KEYPOINT_NAMES) == 18


def test_blazepose_mapping_rejects_wrong_count():
    with pytest.raises(ValueError, match="33"):
        blazepose_to_coco(np.zeros((18, 3)))


def test_smoothing_ignores_missing_points_and_never_invents_them():
    x = np.array([1.0, np.nan, 3.0, 5.0, 7.0])
    out = smooth_keypoints(x, 3)
    assert out[0] == pytest.approx(1.0)       # neighbours: itself only (the other is missing)
    assert np.isnan(out[1])                    # missing stays missing
    assert out[2] == pytest.approx(4.0)        # mean of 3 and 5; the gap is ignored
    assert out[3] == pytest.approx(5.0)
    assert out[4] == pytest.approx(6.0)        # edge: window clipped


def test_smoothing_window_one_is_identity_and_constant_is_unchanged():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 18, 2))
    np.testing.assert_array_equal(smooth_keypoints(x, 1), x)
    c = np.full((10, 18, 2), 4.2)
    np.testing.assert_allclose(smooth_keypoints(c, 5), c)


def test_mirror_swaps_sides_and_is_an_involution():
    rng = np.random.default_rng(1)
    kp = rng.uniform(0, 100, size=(5, 18, 2))
    m = mirror_pose(kp, width=100)
    assert m[0, KP["l_hip"], 0] == pytest.approx(100 - kp[0, KP["r_hip"], 0])
    np.testing.assert_allclose(mirror_pose(m, width=100), kp)
    assert sorted(MIRROR_INDEX) == list(range(18))


@settings(max_examples=50, deadline=None)
@given(dx=st.floats(-2000, 2000), dy=st.floats(-2000, 2000), s=st.floats(0.05, 20))
def test_normalisation_is_invariant_to_translation_and_scale(dx, dy, s):
    rng = np.random.default_rng(2)
    kp = rng.uniform(100, 900, size=(4, 18, 2))
    moved = kp * s + np.array([dx, dy])
    np.testing.assert_allclose(normalise_pose(moved), normalise_pose(kp), atol=1e-7)


def test_angle():
    a, b, c = np.array([1.0, 0]), np.array([0.0, 0]), np.array([0.0, 1])
    assert angle_deg(a, b, c) == pytest.approx(90)
    assert np.isnan(angle_deg(np.array([np.nan, 0]), b, c))
