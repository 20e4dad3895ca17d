"""Training data on the real sample data: labels, recording groups, leak-free splits, weights."""
from __future__ import annotations

import numpy as np
import pytest

from deadlift_utils import config
from deadlift_utils.dataset import (balanced_weights, frame_table, grouped_folds, leave_one_group_out,
                                    load_esap, load_labelled_folder, load_openpose_sequences,
                                    load_training_videos, random_frame_folds, video_table)
from deadlift_utils.train import fold_rows


@pytest.fixture(scope="module")
def videos():
    return load_training_videos(include_user=False)


@pytest.fixture(scope="module")
def table(videos):
    return frame_table(videos, ["norm_xy", "angles"], window=1, mirror_augment=True)


def test_esap_labels_and_views(videos):
    vt = video_table(videos)
    assert len(vt) == 56
    assert (vt["form"] == "bad").sum() == 16
    assert vt.groupby(["view", "form"]).size().to_dict() == {
        ("front", "bad"): 3, ("front", "good"): 16, ("middle", "bad"): 2, ("middle", "good"): 10,
        ("side", "bad"): 11, ("side", "good"): 14}


def test_near_duplicate_clips_share_a_recording_group(videos):
    g = {v.video_id: v.group for v in videos}
    assert g["esap/bad_side/Bad18"] == g["esap/bad_side/Side-Badform2"]  # identical files
    assert g["esap/good_front/deadlift_1"] == g["esap/good_front/deadlift_2"]
    assert g["esap/good_front/deadlift_1"] != g["esap/good_side/deadlift_3"]
    assert 40 <= len(set(g.values())) < 56
    # a group never mixes good and bad form
    vt = video_table(videos)
    assert (vt.groupby("group")["form"].nunique() == 1).all()


@pytest.mark.parametrize("n_splits,seed", [(5, 0), (3, 1), (2, 7)])
def test_grouped_folds_never_split_a_video_or_recording(table, n_splits, seed):
    X, meta, _ = table
    base = np.flatnonzero(~meta["mirrored"].to_numpy())
    folds = grouped_folds(meta.iloc[base], n_splits, seed)
    seen = np.zeros(len(base), dtype=int)
    for tr_b, te_b in folds:
        tr, te = fold_rows(meta, base, tr_b, te_b, mirror=True)
        assert not set(meta["video_id"].iloc[tr]) & set(meta["video_id"].iloc[te])
        assert not set(meta["group"].iloc[tr]) & set(meta["group"].iloc[te])
        assert not meta["mirrored"].iloc[te].any()          # test = real frames only
        assert meta["mirrored"].iloc[tr].any()               # augmentation on the training side
        seen[te_b] += 1
    assert np.all(seen == 1)  # every frame is tested exactly once


def test_random_frame_split_does_leak(table):
    """The study's protocol puts frames of one video on both sides (why it reports ~99%)."""
    _, meta, _ = table
    base = meta[~meta["mirrored"]].reset_index(drop=True)
    tr, te = random_frame_folds(base, 5, 0)[0]
    assert len(set(base["video_id"].iloc[tr]) & set(base["video_id"].iloc[te])) > 40


def test_balanced_weights_remove_the_view_label_link(table):
    _, meta, _ = table
    w = balanced_weights(meta)
    assert np.all(w > 0)
    for view, g in meta.assign(w=w).groupby("view"):
        s = g.groupby("label")["w"].sum()
        assert s[0] == pytest.approx(s[1], rel=1e-9), view


def test_openpose_lifters_and_leave_one_lifter_out():
    ops = load_openpose_sequences()
    assert len(ops) == 29 and sum(v.label == 1 for v in ops) == 4
    _, meta, _ = frame_table(ops, ["robust"])
    assert meta["frame"].groupby(meta["video_id"]).size().max() < 250  # dense files subsampled
    splits = leave_one_group_out(meta, "lifter")
    assert [s[0] for s in splits] == [f"openpose/{x}" for x in "ABCDE"]
    for _, tr, te in splits:
        assert not set(meta["lifter"].iloc[tr]) & set(meta["lifter"].iloc[te])


def test_missing_data_gives_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="esap"):
        load_esap(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="labels CSV"):
        load_labelled_folder(config.OPENPOSE_SEQUENCES_DIR, tmp_path / "labels.csv", "x")
    (tmp_path / "labels.csv").write_text("file,label\nA_grip_too_wide_front.json,maybe\n")
    with pytest.raises(ValueError, match="good' or 'bad"):
        load_labelled_folder(config.OPENPOSE_SEQUENCES_DIR, tmp_path / "labels.csv", "x")
    (tmp_path / "labels.csv").write_text("file,label,view\nA_grip_too_wide_front.json,bad,overhead\n")
    with pytest.raises(ValueError, match="labels.csv: view 'overhead' for A_grip_too_wide_front.json"):
        load_labelled_folder(config.OPENPOSE_SEQUENCES_DIR, tmp_path / "labels.csv", "x")
    (tmp_path / "labels.csv").write_text("file,label,view\nA_grip_too_wide_front.json,bad,Front\n")
    assert load_labelled_folder(config.OPENPOSE_SEQUENCES_DIR, tmp_path / "labels.csv", "x")[0].view == "front"
