import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from deadlift_utils import config
from deadlift_utils.estimators import OpenPoseEstimator, heatmaps_to_keypoints, make_estimator
from deadlift_utils.extract import extract_folder, extract_video
from deadlift_utils.keypoints import KP, smooth_keypoints
from deadlift_utils.pose import load_pose_json
from deadlift_utils.quality import assess
from deadlift_utils.video import probe_video


def _frames(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


def test_real_side_clip_finds_the_lifter_and_writes_three_files(extracted, side_clip):
    seq = extracted.sequence
    info = probe_video(side_clip)
    assert len(seq) == (info.frame_count + 4) // 5
    assert seq.detection_rate() >= 0.95
    assert not assess(seq).flagged
    # Anatomy in image coordinates (y down), on whichever side faces the camera: hips above
    # ankles in every frame, shoulders above hips at the top of the lift.
    y = seq.keypoints_xy[..., 1]
    hip_y = np.nanmean(y[:, [KP["r_hip"], KP["l_hip"]]], axis=1)
    ankle_y = np.nanmean(y[:, [KP["r_ankle"], KP["l_ankle"]]], axis=1)
    shoulder_y = np.nanmean(y[:, [KP["r_shoulder"], KP["l_shoulder"]]], axis=1)
    assert (hip_y < ankle_y).all()
    assert (shoulder_y < hip_y).mean() > 0.5
    assert seq.world_xyz is not None and np.isfinite(seq.world_xyz[..., 0]).any(axis=1).all()
    # the JSON on disk is the contract
    data = json.loads(extracted.pose_path.read_text())
    assert data["frame_stride"] == 5 and data["smoothing_window"] == 5 and data["backend"] == "blazepose-full"
    assert data["width"] == 1920 and data["height"] == 1080
    # both videos exist, hold one frame per sample, and are H.264 (plays in browsers)
    for p in (extracted.skeleton_path, extracted.overlay_path):
        assert p.is_file() and _frames(p) == len(seq)
        cap = cv2.VideoCapture(str(p))
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
        assert fourcc in ("avc1", "h264", "H264"), fourcc


def test_streamed_smoothing_equals_smoothing_the_raw_series(kettlebell_clip, tmp_path):
    raw = extract_video(kettlebell_clip, tmp_path / "w1", frame_stride=20, smoothing_window=1, write_videos=False)
    smooth = extract_video(kettlebell_clip, tmp_path / "w5", frame_stride=20, smoothing_window=5, write_videos=False)
    expected = smooth_keypoints(raw.sequence.keypoints_xy, 5)
    np.testing.assert_allclose(smooth.sequence.keypoints_xy, expected, atol=0.02, equal_nan=True)


def test_second_run_reuses_a_valid_result_and_redo_recomputes(extracted, side_clip, tmp_path):
    import shutil

    work = tmp_path / "poses"
    shutil.copytree(extracted.pose_path.parent, work)   # the shared fixture's files stay untouched
    again = extract_video(side_clip, work, frame_stride=5, smoothing_window=5)
    assert again.skipped
    np.testing.assert_array_equal(again.sequence.keypoints_xy, load_pose_json(extracted.pose_path).keypoints_xy)
    other = extract_video(side_clip, work, frame_stride=5, smoothing_window=3,
                          write_videos=False)
    assert not other.skipped and other.sequence.smoothing_window == 3


def test_webm_output(kettlebell_clip, tmp_path):
    r = extract_video(kettlebell_clip, tmp_path, frame_stride=30, video_format="webm")
    assert r.overlay_path.suffix == ".webm" and _frames(r.overlay_path) == len(r.sequence)


def test_video_without_a_person_gives_missing_keypoints_and_a_flag(tmp_path):
    path = tmp_path / "empty_room.mp4"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (320, 240))
    rng = np.random.default_rng(0)
    background = rng.integers(0, 255, size=(240, 320, 3), dtype=np.uint8)
    for _ in range(30):
        w.write(background)
    w.release()
    r = extract_video(path, tmp_path / "out", frame_stride=5)
    assert len(r.sequence) == 6 and not r.sequence.present.any()
    assert "no person found" in assess(r.sequence).flags


@pytest.fixture()
def bad_videos(tmp_path, side_clip):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(side_clip.read_bytes()[:10_000])
    return {"text": text, "empty": empty, "truncated": truncated}


@pytest.mark.parametrize("kind", ["text", "empty", "truncated"])
def test_unusable_videos_raise_a_clear_error(bad_videos, kind, tmp_path):
    with pytest.raises(ValueError) as e:
        extract_video(bad_videos[kind], tmp_path / "out")
    assert str(bad_videos[kind]) in str(e.value)


def test_missing_video(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        extract_video(tmp_path / "nope.mp4", tmp_path)


def test_folder_run_carries_on_past_bad_files(bad_videos, kettlebell_clip, tmp_path):
    folder = bad_videos["text"].parent
    (folder / "good.mp4").symlink_to(kettlebell_clip)
    result = extract_folder(folder, tmp_path / "poses", frame_stride=30, write_videos=False, progress=False)
    assert [r.video_path.name for r in result.done] == ["good.mp4"]
    assert sorted(v.name for v, _ in result.failed) == ["empty.mp4", "notes.mp4", "truncated.mp4"]


def test_cli_reports_bad_files_in_one_line_without_traceback(bad_videos, tmp_path):
    p = subprocess.run([sys.executable, "-m", "deadlift_utils", "extract", str(bad_videos["text"]),
                        "--out", str(tmp_path / "o"), "--quiet"], capture_output=True, text=True,
                       cwd=config.PROJECT_ROOT)
    assert p.returncode != 0
    assert "Traceback" not in p.stderr
    errors = [l for l in p.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and "notes.mp4" in errors[0]


def test_cli_missing_path(tmp_path):
    p = subprocess.run([sys.executable, "-m", "deadlift_utils", "extract", str(tmp_path / "none"), "--quiet"],
                       capture_output=True, text=True, cwd=config.PROJECT_ROOT)
    assert p.returncode == 2 and "no such file" in p.stderr and "Traceback" not in p.stderr


def test_openpose_heatmap_postprocessing_on_synthetic_heatmaps():
    heat = np.zeros((57, 46, 46), dtype=np.float32)
    heat[KP["nose"], 10, 20] = 0.9       # row 10, column 20
    heat[KP["r_hip"], 30, 5] = 0.05      # below the 0.1 threshold: not found
    kp = heatmaps_to_keypoints(heat, frame_width=920, frame_height=460)
    assert kp[KP["nose"], 0] == pytest.approx(20.5 * 920 / 46)
    assert kp[KP["nose"], 1] == pytest.approx(10.5 * 460 / 46)
    assert kp[KP["nose"], 2] == pytest.approx(0.9)
    assert np.isnan(kp[KP["r_hip"]]).all()
    assert np.isnan(kp[KP["neck"]]).all()


def test_openpose_without_weights_says_what_to_supply(tmp_path):
    with pytest.raises(FileNotFoundError, match="no longer downloadable") as e:
        make_estimator("openpose", openpose_prototxt=None, openpose_weights=str(tmp_path / "w.caffemodel"))
    assert "--openpose-weights" in str(e.value)


def test_openpose_needs_opencv_with_caffe(tmp_path, monkeypatch):
    proto, weights = tmp_path / "p.prototxt", tmp_path / "w.caffemodel"
    proto.write_text("x")
    weights.write_bytes(b"x")
    monkeypatch.delattr(cv2.dnn, "readNetFromCaffe")
    with pytest.raises(RuntimeError, match="OpenCV 5"):
        OpenPoseEstimator(proto, weights)


def test_unknown_backend():
    with pytest.raises(ValueError, match="blazepose"):
        make_estimator("yolo")
