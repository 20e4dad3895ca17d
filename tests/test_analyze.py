"""End-to-end analysis: report contents, verdict logic, outputs on a real clip, bad input."""
from __future__ import annotations

import json
from argparse import Namespace

import cv2
import numpy as np
import pytest

from deadlift_utils.analyze import analyze_pose, analyze_video
from deadlift_utils.cli import cmd_analyze as analyze_command
from deadlift_utils.config import OPENPOSE_SEQUENCES_DIR, YFGD_DIR
from deadlift_utils.pose import load_pose_json

from test_feedback import FakeClient
from test_reps import manual_counts, shared_pose

REQUIRED = {"video", "view", "verdict", "form_score", "style", "frame_trust", "good_frame_fraction", "reps",
            "deviations", "feedback"}


class FakeClassifier:
    def __init__(self, p):
        self.p = p

    def predict_frames(self, seq):
        return np.full(len(seq), self.p)


class FakeDeviation:
    def __init__(self):
        self.masks = []

    def summarise(self, seq, frame_mask=None):
        self.masks.append(frame_mask)
        return [{"joint": "r_hip", "dx": 0.05, "dy": -0.12, "units": "torso lengths", "dx_px": 3.0,
                 "dy_px": -8.0, "magnitude": 0.13, "direction": "too high by 0.12 torso lengths"}]


def _op(name):
    return load_pose_json(OPENPOSE_SEQUENCES_DIR / name)


def test_report_contract_and_rules_verdict():
    rep = analyze_pose(_op("A_grip_too_wide_front.json"), use_openai=False)
    assert REQUIRED <= set(rep)
    assert rep["view"] == "front" and rep["view_source"] == "predicted"
    assert rep["verdict"] == "bad" and rep["decided_by"] == "rules"
    assert "grip too wide" in rep["verdict_reason"]
    assert rep["reps"] and all({"index", "start_s", "end_s", "verdict", "errors"} <= set(r) for r in rep["reps"])
    e = rep["reps"][0]["errors"][0]
    assert {"name", "evidence"} <= set(e) and e["evidence"]["threshold"] is not None
    assert rep["feedback"]["source"] == "offline" and "Hands much wider" in rep["feedback"]["text"]
    assert 0.0 <= rep["good_frame_fraction"] <= 1.0
    assert rep["good_frame_fraction_source"].startswith("rules")
    assert any("no classifier" in n for n in rep["notes"])
    good = analyze_pose(_op("C_correct_front.json"), use_openai=False)
    assert good["verdict"] == "good" and good["decided_by"] == "rules"
    # the HTML report says why the coaching is the offline text, not only that it is
    from deadlift_utils.analyze import render_html
    assert "OpenAI disabled by the caller; offline coaching text" in render_html(rep, {})


def test_classifier_decides_only_on_the_backend_it_was_trained_on():
    # OpenPose pose + a classifier that calls every frame bad -> the classifier decides.
    rep = analyze_pose(_op("C_correct_front.json"), classifier=FakeClassifier(0.1), use_openai=False)
    assert rep["verdict"] == "bad" and rep["decided_by"] == "classifier"
    assert rep["good_frame_fraction"] == 0.0 and rep["good_frame_fraction_source"] == "classifier"
    # BlazePose pose (another source): the same classifier is reported but does not decide.
    rep = analyze_pose(shared_pose("kettlebell_errors/correct_side.mp4"), classifier=FakeClassifier(0.1),
                       use_openai=False)
    assert rep["verdict"] == "good" and rep["decided_by"] == "rules"
    assert rep["classifier"]["trusted_for_this_backend"] is False
    assert rep["evidence"]["classifier_agrees"] is False


def test_learned_deviations_use_pull_and_lockout_frames_and_stay_beside_the_good_form_ones():
    dev = FakeDeviation()
    seq = shared_pose("kettlebell_errors/hips_first_side.mp4")
    rep = analyze_pose(seq, deviation_model=dev, use_openai=False)
    assert rep["model_deviations"][0]["joint"] == "r_hip" and rep["model_deviations"][0]["direction"]
    mask = dev.masks[0]
    assert mask.shape == (len(seq),) and 0 < mask.sum() < len(seq)
    # Then once per phase, each a subset of the rep frames.
    assert set(rep["model_deviations_by_phase"]) == {"setup", "pull", "lockout", "lowering"}
    assert all(m.sum() < len(seq) for m in dev.masks[1:]) and len(dev.masks) == 5
    # The coaching uses the good-form joint deviations (outside the good spread), not the model's.
    assert "r_hip" not in rep["feedback"]["text"]
    for d in rep["deviations"]:
        assert d["direction"].endswith(d["moment"]) and "than good form" in d["direction"]


def test_missing_model_dirs_are_notes_not_errors(tmp_path):
    rep = analyze_pose(_op("C_correct_front.json"), classifier_dir=tmp_path / "nope",
                       deviation_dir=tmp_path / "nope2", use_openai=False)
    assert rep["verdict"] == "good"
    assert any("classifier" in n for n in rep["notes"]) and any("deviation" in n for n in rep["notes"])


def test_user_view_overrides_and_unknown_view_rejected():
    rep = analyze_pose(_op("C_correct_middle.json"), view="side", use_openai=False)
    assert rep["view"] == "side" and rep["view_source"] == "user"
    with pytest.raises(ValueError, match="view must be one of"):
        analyze_pose(_op("C_correct_middle.json"), view="top", use_openai=False)


def test_partly_hidden_lifter_is_judged_on_the_trusted_frames():
    """A close gym clip where the plate hides the hips in some frames: the rep is judged on the
    frames that can be measured, with its confidence and the dropped frames in the report."""
    rep = analyze_pose(shared_pose("yfgd_small/bad/bad_004.mp4"), use_openai=False)
    assert rep["verdict"] == "bad" and rep["form_score"] >= 1
    r = rep["reps"][0]
    assert r["judged"] and 0.5 <= r["confidence"] < 1.0
    assert rep["frame_trust"]["dropped"]["the lifter's hips not found"] > 0
    assert rep["frame_trust"]["dropped_times"]


def test_no_rep_with_enough_trusted_frames_is_unknown_with_reason_but_counts_reps():
    import copy

    from deadlift_utils.keypoints import KP

    seq = copy.copy(shared_pose("kettlebell_errors/correct_side.mp4"))
    kp = np.array(seq.keypoints_xy, copy=True)
    kp[np.arange(len(kp)) % 3 != 0][:, [KP["r_hip"], KP["l_hip"]]] = np.nan
    hide = np.arange(len(kp)) % 3 != 0
    kp[np.ix_(hide, [KP["r_hip"], KP["l_hip"]])] = np.nan
    seq.keypoints_xy = kp
    rep = analyze_pose(seq, use_openai=False)
    assert rep["reps"], "reps are still counted"
    assert rep["verdict"] == "unknown" and "trusted frames" in rep["verdict_reason"]
    assert "hips not found" in rep["verdict_reason"]
    assert all(r["verdict"] == "unknown" for r in rep["reps"])
    assert "could not be judged" in rep["feedback"]["text"]


def test_end_to_end_real_clip_writes_all_outputs(tmp_path):
    video = YFGD_DIR / "good" / "good_005.mp4"
    if not video.is_file():
        pytest.skip("shared video missing")
    client = FakeClient(text="Nice lift. Keep the bar close.")
    rep = analyze_video(video, tmp_path, frame_stride=3, feedback_client=client)
    expected = dict(manual_counts())["yfgd_small/good/good_005.mp4"]
    assert len(rep["reps"]) == expected
    assert rep["view"] == "side" and rep["verdict"] == "good" and 0 <= rep["form_score"] < 1
    assert rep["feedback"]["source"] == "openai" and rep["feedback"]["text"].startswith("Nice lift")
    for key in ("report_json", "report_html", "angles_png", "margins_png", "annotated_video"):
        assert (tmp_path / rep["files"][key]).is_file(), key
    data = json.loads((tmp_path / "good_005_report.json").read_text())
    assert REQUIRED <= set(data) and data["verdict"] == "good"
    assert "_internal" not in data and data["timing_s"]["total"] > 0
    html = (tmp_path / "good_005_report.html").read_text()
    assert "data:image/png;base64" in html and "good_005_annotated.mp4" in html
    cap = cv2.VideoCapture(str(tmp_path / "good_005_annotated.mp4"))
    ok, frame = cap.read()
    assert ok and frame.shape[0] <= 720
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(json.loads((tmp_path / "poses" / "good_005.json").read_text())["frames"])
    cap.release()
    assert sorted(p.name for p in (tmp_path / "poses").iterdir()) == ["good_005.json"]  # the kept frames are gone
    # A rerun serves the coaching from the cache: no second API call.
    analyze_video(video, tmp_path, frame_stride=3, feedback_client=client, write_video=False)
    assert len(client.chat.completions.calls) == 1


def _write_video(path, frames):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (frames[0].shape[1], frames[0].shape[0]))
    for f in frames:
        w.write(f)
    w.release()


def test_video_without_a_person_is_unknown(tmp_path):
    rng = np.random.default_rng(0)
    frames = [np.full((240, 320, 3), 90, np.uint8) + rng.integers(0, 20, (240, 320, 3), dtype=np.uint8)
              for _ in range(20)]
    video = tmp_path / "empty_room.mp4"
    _write_video(video, frames)
    rep = analyze_video(video, tmp_path / "out", frame_stride=1, use_openai=False)
    assert rep["verdict"] == "unknown" and "no person" in rep["verdict_reason"]
    assert (tmp_path / "out" / "empty_room_report.json").is_file()


def test_one_frame_video_is_unknown(tmp_path):
    video = tmp_path / "one.mp4"
    _write_video(video, [np.full((240, 320, 3), 120, np.uint8)])
    rep = analyze_video(video, tmp_path / "out", frame_stride=1, use_openai=False)
    assert rep["verdict"] == "unknown" and "too short" in rep["verdict_reason"]


def test_cli_bad_input_is_one_line_error_no_traceback(tmp_path, capsys):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is a text file, not a video\n")
    args = Namespace(video=str(fake), out=str(tmp_path / "out"), classifier=None, deviation=None,
                     view=None, openai_model="gpt-4o-mini", stride=2)
    assert analyze_command(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "notes.mp4" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    args.video = str(tmp_path / "missing.mp4")
    assert analyze_command(args) == 2
    assert "no such video" in capsys.readouterr().err
