import json

import numpy as np
import pytest

from deadlift_utils.keypoints import KEYPOINT_NAMES
from deadlift_utils.pose import SCHEMA, PoseSequence, load_pose_json, save_pose_json


def test_loads_the_study_format(shared):
    seq = load_pose_json(shared / "esap_pose" / "bad_side" / "Bad1.json")
    raw = json.loads((shared / "esap_pose" / "bad_side" / "Bad1.json").read_text())
    assert len(seq) == len(raw) == 63
    assert seq.keypoints_xy.shape == (63, 18, 2)
    # nulls become NaN, numbers are kept as given
    assert raw[0][15] is None and np.isnan(seq.keypoints_xy[0, 15]).all()
    assert tuple(seq.keypoints_xy[0, 0]) == tuple(raw[0][0])
    assert seq.frame_stride == 5 and seq.smoothing_window == 5
    assert list(seq.frame_index[:3]) == [0, 5, 10]


def test_loads_every_study_file(shared):
    files = sorted((shared / "esap_pose").glob("*/*.json"))
    assert len(files) == 56
    for f in files:
        seq = load_pose_json(f)
        assert len(seq) > 0 and seq.present.any(), f


def test_loads_openpose_sequences(shared):
    seq = load_pose_json(shared / "openpose_sequences" / "A_knee_fault_middle.json")
    assert seq.backend == "openpose-body25"
    assert seq.frame_stride == 1
    assert len(seq) > 500
    assert np.nanmax(seq.confidence) <= 1.0


def test_round_trip_keeps_points_confidence_world_and_gaps(tmp_path):
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1000, size=(7, 18, 2)).round(2)
    conf = rng.uniform(0, 1, size=(7, 18)).round(4)
    world = rng.normal(size=(7, 18, 3)).round(4)
    xy[2, 5] = np.nan
    conf[2, 5] = np.nan
    world[2, 5] = np.nan
    seq = PoseSequence(xy, conf, np.arange(7) * 5, np.arange(7) * 5 / 30, world_xyz=world, video="v.mp4",
                       fps=30.0, width=1920, height=1080, frame_stride=5, smoothing_window=5, backend="test")
    path = save_pose_json(seq, tmp_path / "p.json")
    data = json.loads(path.read_text())
    assert data["schema"] == SCHEMA and data["keypoint_names"] == KEYPOINT_NAMES
    assert data["frames"][2]["keypoints"][5] is None
    back = load_pose_json(path)
    np.testing.assert_allclose(back.keypoints_xy, xy, equal_nan=True)
    np.testing.assert_allclose(back.confidence, conf, equal_nan=True)
    np.testing.assert_allclose(back.world_xyz, world, equal_nan=True)
    assert (back.fps, back.width, back.height, back.frame_stride) == (30.0, 1920, 1080, 5)


def test_real_extraction_round_trips(extracted, tmp_path):
    seq = extracted.sequence
    copy = save_pose_json(load_pose_json(extracted.pose_path), tmp_path / "copy.json")
    again = load_pose_json(copy)
    np.testing.assert_allclose(again.keypoints_xy, seq.keypoints_xy, atol=0.01, equal_nan=True)
    assert again.world_xyz is not None


BAD = [
    ("", "empty"),
    ("{not json", "not valid JSON"),
    ("[]", "no frames"),
    ('[[[1, 2]]]', "expected 18"),
    ('[' + json.dumps([[1, 2]] * 17 + [["x", 2]]) + ']', "non-number"),
    ('{"schema": "deadlift-pose/1", "frames": [{"keypoints": [[1, 2, 0.5]]}]}', "expected 18"),
    ('{"schema": "deadlift-pose/1", "frames": [{"keypoints": ' + json.dumps([[1, 2, 1]] * 17 + [[float("nan"), 1, 1]]).replace("NaN", "NaN") + '}]}', "NaN or infinite"),
    ('{"schema": "other/1", "frames": []}', "unknown schema"),
    ('[{"keypoints": []}]', "mixed formats"),
    ('{"schema": "deadlift-pose/1", "frames": [[[1, 2]]]}', "mixed formats"),
    ('"just a string"', "expected a JSON object"),
]


@pytest.mark.parametrize("text,message", BAD)
def test_malformed_pose_files_name_the_file_and_the_fix(tmp_path, text, message):
    f = tmp_path / "bad.json"
    f.write_text(text)
    with pytest.raises(ValueError, match=message) as e:
        load_pose_json(f)
    assert str(f) in str(e.value) and "extract" in str(e.value)


def test_negative_coordinates_mean_not_found(tmp_path):
    f = tmp_path / "neg.json"
    f.write_text(json.dumps([[[-1, -1]] + [[10, 20]] * 17]))
    seq = load_pose_json(f)
    assert np.isnan(seq.keypoints_xy[0, 0]).all() and seq.present[0, 1:].all()


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="extract"):
        load_pose_json(tmp_path / "nope.json")
