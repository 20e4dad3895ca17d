"""Pose quality flags (review) and the machine line written into results tables."""
import os

import numpy as np

from deadlift_utils import config
from deadlift_utils.keypoints import KP
from deadlift_utils.pose import load_pose_json
from deadlift_utils.quality import REVIEW_MIN_LIFT_JOINTS_RATE, assess

BAD_SIDE = config.ESAP_POSE_DIR / "bad_side" / "Bad3.json"


def test_lift_joint_flag_names_the_joints_not_the_lifter():
    seq = load_pose_json(BAD_SIDE)
    seq.keypoints_xy[: len(seq) // 2, [KP["r_knee"], KP["l_knee"]]] = np.nan   # knees hidden in half the frames
    q = assess(seq)
    assert q.lifter_found_rate == 1.0 and q.detection_rate < REVIEW_MIN_LIFT_JOINTS_RATE
    assert f"shoulders, hips, knees and ankles all found in only {q.detection_rate:.0%} of frames" in q.flags
    assert not any("lifter found" in f for f in q.flags)


def test_no_hips_and_no_person_are_told_apart():
    seq = load_pose_json(BAD_SIDE)
    seq.keypoints_xy[:, [KP["r_hip"], KP["l_hip"]]] = np.nan
    assert "hips never found" in assess(seq).flags and "no person found" not in assess(seq).flags
    seq.keypoints_xy[:] = np.nan
    assert "no person found" in assess(seq).flags


def test_gpus_are_detected_not_assumed(tmp_path):
    info = tmp_path / "nvidia" / "gpus" / "0000:01:00.0" / "information"
    info.parent.mkdir(parents=True)
    info.write_text("Model: \t\t NVIDIA A100-SXM4-40GB\nIRQ:   \t 42\n")
    assert config.detect_gpus(tmp_path / "nvidia", nvidia_smi="no-such-tool") == ["NVIDIA A100-SXM4-40GB"]
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text("#!/bin/sh\necho 'Tesla T4'\necho 'Tesla T4'\n")
    smi.chmod(0o755)
    assert config.detect_gpus(tmp_path / "none", nvidia_smi=str(smi)) == ["Tesla T4", "Tesla T4"]
    assert config.detect_gpus(tmp_path / "none", nvidia_smi="no-such-tool") == []
    line = config.describe_machine()
    found = config.detect_gpus()
    assert ("no NVIDIA GPU found" in line) == (not found) and all(name in line for name in found)
    assert f"{os.cpu_count()}-core" in line
