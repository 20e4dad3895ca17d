"""Models: masked loss, save/reload, the classify/deviation interfaces.

Notebooks 03/04 run in smoke mode in tests/test_pipeline.py (one chain, asserts on what they wrote)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from deadlift_utils import config
from deadlift_utils.dataset import load_training_videos
from deadlift_utils.deviation import (DeviationModel, direction_words, fit_deviation_net, good_frames,
                                      load_deviation_model, save_deviation_model)
from deadlift_utils.keypoints import hip_centre
from deadlift_utils.models import (FormClassifier, classify_pose_file, configure_tensorflow, load_classifier,
                                   masked_euclidean_loss)
from deadlift_utils.pose import load_pose_json, save_pose_json
from deadlift_utils.train import spec_by_name, train_final

BAD_SIDE = config.ESAP_POSE_DIR / "bad_side" / "Bad3.json"


@pytest.fixture(scope="module")
def videos():
    configure_tensorflow(0)
    return load_training_videos(include_user=False)


def test_masked_loss_ignores_missing_points():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(4, 18, 3)).astype("float32")
    y[..., 2] = (rng.random((4, 18)) > 0.3).astype("float32")
    p = rng.normal(size=(4, 18, 2)).astype("float32")
    base = float(masked_euclidean_loss(y, p))
    # wild values where the weight is 0 (missing points) change nothing
    y2, p2 = y.copy(), p.copy()
    miss = y[..., 2] == 0
    y2[..., :2][miss] = 1e6
    p2[miss] = -1e6
    assert float(masked_euclidean_loss(y2, p2)) == pytest.approx(base, rel=1e-5)
    # and the value is the mean distance over the present points
    d = np.linalg.norm(p - y[..., :2], axis=-1)
    assert base == pytest.approx(d[~miss].mean(), rel=1e-4)
    # all missing -> 0, not NaN
    y3 = y.copy()
    y3[..., 2] = 0
    assert float(masked_euclidean_loss(y3, p)) == 0.0


def test_classifier_saves_and_reloads_with_identical_predictions(videos, tmp_path):
    spec = spec_by_name("mlp_robust_win2")
    model, cfg, hist, _ = train_final(videos[:12] + videos[-12:], spec, epochs=2, seed=0)
    cfg["video_rule"] = {"name": "good_frame_fraction", "threshold": 0.6, "frame_threshold": 0.5}
    from deadlift_utils.models import save_model_bundle
    save_model_bundle(model, tmp_path / "clf", cfg, {"note": "test"})
    seq = load_pose_json(BAD_SIDE)
    before = FormClassifier(model, cfg).predict_frames(seq)
    clf = load_classifier(tmp_path / "clf")
    after = clf.predict_frames(seq)
    assert before.shape == (len(seq),)
    np.testing.assert_array_equal(before, after)
    assert np.all((after[np.isfinite(after)] >= 0) & (after[np.isfinite(after)] <= 1))
    assert clf.config["feature_blocks"] == ["robust"] and len(clf.config["feature_mean"]) == clf.config["n_features"]

    # frames without hips cannot be judged: NaN in predict_frames, None in the CLI payload
    seq.keypoints_xy[:3, [8, 11]] = np.nan
    pose = save_pose_json(seq, tmp_path / "pose.json")
    res = classify_pose_file(pose, tmp_path / "clf")
    # a 2-epoch model's verdict is a coin toss (the known-verdict check is the gradient-boosting
    # test's); here the payload must follow the saved 60% rule from the fraction it reports
    assert res["verdict"] == ("good" if res["good_frame_fraction"] >= 0.6 else "bad")
    assert res["frame_probabilities"][:3] == [None, None, None]
    assert len(res["frame_probabilities"]) == len(seq)
    assert 0 <= res["good_frame_fraction"] <= 1 and res["pose_file"] == str(pose)
    json.dumps(res)  # the CLI prints it


# Held-out recordings a quick gradient-boosting model judges with a wide margin (good-frame
# fraction 0.15-0.36 for the bad ones and 1.0 for the good one, over several held-out splits
# and windows), so the verdict is known, not a coin toss.
HELD_OUT = {"esap/bad_side/Bad6": "bad", "esap/bad_front/Bad12": "bad", "esap/good_front/deadlift_16": "good"}


def test_gradient_boosting_model_saves_loads_and_gets_held_out_verdicts_right(videos, tmp_path, capsys):
    """final_spec = the gradient-boosting spec (best in protocol (b)) used to crash notebook 03's
    save. Saved as model.joblib with the same config/metrics/sha256 contract, the CLI's classify
    gives the known verdict on recordings the model never saw."""
    import joblib

    from deadlift_utils.cli import main
    from deadlift_utils.models import check_model_folder, save_model_bundle

    held_groups = {v.group for v in videos if v.video_id in HELD_OUT}
    train = [v for v in videos if v.group not in held_groups]
    assert len(held_groups) == 3 and len(train) >= 45
    spec = spec_by_name("hgb_norm_angles_win2") | {"window": 0, "mirror_augment": False}   # quick
    model, cfg, _, _ = train_final(train, spec, seed=0)
    cfg["video_rule"] = {"name": "good_frame_fraction", "threshold": 0.6, "frame_threshold": 0.5}
    save_model_bundle(model, tmp_path / "clf", cfg, {"note": "test"})
    assert sorted(p.name for p in (tmp_path / "clf").iterdir()) == ["config.json", "metrics.json", "model.joblib"]
    saved = json.loads((tmp_path / "clf" / "config.json").read_text())
    assert saved["model_file"] == "model.joblib" and len(saved["model_sha256"]) == 64
    assert check_model_folder(tmp_path / "clf", "classifier")[0]["model_type"] == "hgb"   # analyze --classifier

    seq = load_pose_json(BAD_SIDE)
    np.testing.assert_array_equal(FormClassifier(model, cfg).predict_frames(seq),
                                  load_classifier(tmp_path / "clf").predict_frames(seq))
    for video_id, expected in HELD_OUT.items():
        pose = config.ESAP_POSE_DIR / (video_id.removeprefix("esap/") + ".json")
        assert main(["classify", str(pose), "--model", str(tmp_path / "clf")]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["verdict"] == expected, (video_id, printed["good_frame_fraction"])

    # the sha256 pin holds for model.joblib too
    joblib.dump({"another": "save"}, tmp_path / "clf" / "model.joblib")
    with pytest.raises(ValueError, match="model.joblib and config.json come from different saves"):
        load_classifier(tmp_path / "clf")


def test_load_classifier_errors_name_the_folder_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="classifier folder not found.*notebooks/03"):
        load_classifier(tmp_path / "nope")
    (tmp_path / "m").mkdir()
    with pytest.raises(FileNotFoundError, match="model.keras is missing"):
        load_classifier(tmp_path / "m")


def test_frame_features_beat_chance_in_a_quick_fit(videos):
    """Real behaviour: a 2-fold grouped fit of the robust features ranks held-out videos
    better than chance (a broken pipeline, e.g. shuffled labels or leaking NaNs, would not)."""
    from deadlift_utils.train import cross_validate, summarise
    r = cross_validate(videos, spec_by_name("hgb_norm_angles_win2") | {"window": 0, "mirror_augment": False},
                       "grouped", n_splits=2, seed=0)
    s = summarise(r["pred"]).set_index("view")
    assert s.loc["all", "frame_auc"] > 0.7
    assert r["pred"]["p_good"].notna().all()


class _ZeroPoseModel:
    """Predicts every joint at the hip centre (canonical normalised origin)."""

    def predict(self, x, verbose=0, batch_size=None):
        return np.zeros((len(x), 18, 2), dtype="float32")


def test_deviation_is_actual_minus_predicted_in_pixels_and_torso_lengths():
    seq = load_pose_json(BAD_SIDE)
    d = DeviationModel(_ZeroPoseModel()).deviations(seq)
    # a model that predicts the hip centre leaves deviation = joint - hip centre
    expected_px = seq.keypoints_xy - hip_centre(seq.keypoints_xy)[:, None, :]
    ok = np.isfinite(expected_px[..., 0])
    np.testing.assert_allclose(d["dx_px"][ok], expected_px[..., 0][ok], atol=1e-6)
    np.testing.assert_allclose(d["dy_px"][ok], expected_px[..., 1][ok], atol=1e-6)
    np.testing.assert_allclose(d["dy_norm"][ok] * d["scale_px"], d["dy_px"][ok], atol=1e-6)
    assert d["dx_norm"].shape == (len(seq), 18) and d["facing"] == "right"
    # the nose is above and in front of the hips in a right-facing side view
    s = {r["joint"]: r for r in DeviationModel(_ZeroPoseModel()).summarise(seq)}
    assert "higher" in s["nose"]["direction"] and "forward" in s["nose"]["direction"]
    mags = [r["magnitude"] for r in s.values()]
    assert list(s.values())[0]["units"] == "torso_lengths"
    assert mags == sorted(mags, reverse=True)


def test_direction_words():
    assert direction_words(0.08, -0.15, "right") == "0.15 torso lengths higher and 0.08 further forward than good form"
    assert direction_words(0.08, -0.15, "left") == "0.15 torso lengths higher and 0.08 further back than good form"
    assert direction_words(-0.3, 0.1, "right") == "0.30 torso lengths further back and 0.10 lower than good form"
    assert "lifter's left" in direction_words(0.3, 0.1, "camera")


def test_deviation_model_trains_saves_and_reloads(videos, tmp_path):
    Z, _ = good_frames(videos[20:30])
    model, hist, _ = fit_deviation_net(Z[:200], Z[200:260], "mlp", epochs=3, seed=0)
    assert len(hist["loss"]) == 3 and np.isfinite(hist["val_loss"]).all()
    save_deviation_model(model, tmp_path / "dev", {"net": "mlp"}, {"note": "test"})
    seq = load_pose_json(BAD_SIDE)
    a = DeviationModel(model).deviations(seq)
    dm = load_deviation_model(tmp_path / "dev")
    b = dm.deviations(seq)
    np.testing.assert_array_equal(a["dx_norm"], b["dx_norm"])
    rows = dm.summarise(seq, frame_mask=np.arange(len(seq)) < 10)
    assert {"joint", "dx", "dy", "units", "dx_px", "dy_px", "magnitude", "direction"} <= set(rows[0])
    with pytest.raises(ValueError, match="not a deviation model"):
        import shutil
        shutil.copytree(tmp_path / "dev", tmp_path / "wrong")
        (tmp_path / "wrong" / "config.json").write_text(json.dumps({"kind": "classifier"}))
        load_deviation_model(tmp_path / "wrong")


def test_transfer_figures_never_score_videos_the_model_was_trained_on(videos, tmp_path):
    """Protocol (c) on a folder the user also approved for training: those videos are left out."""
    import shutil

    from deadlift_utils.dataset import load_labelled_folder
    from deadlift_utils.models import save_model_bundle
    from deadlift_utils.train import evaluate_transfer_folder

    folder = tmp_path / "poses"
    folder.mkdir()
    picks = [v for v in videos if v.label == 1][:2] + [v for v in videos if v.label == 0][:2]
    lines = ["file,label"]
    for i, v in enumerate(picks):
        shutil.copy(v.seq.source_path, folder / f"clip{i}.json")
        lines.append(f"clip{i}.json,{v.form}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    mine = load_labelled_folder(folder, folder / "labels.csv", "mine")
    assert len(mine) == 4

    def saved(train_videos, name):
        model, cfg, _, _ = train_final(train_videos, spec_by_name("study_mlp_raw"), epochs=1, seed=0)
        cfg["video_rule"] = {"name": "good_frame_fraction", "threshold": 0.6, "frame_threshold": 0.5}
        return save_model_bundle(model, tmp_path / name, cfg, {})

    # trained on 8 study videos + clip0 (good) and clip2 (bad): only clip1 and clip3 are scored
    res = evaluate_transfer_folder(saved(videos[:4] + videos[-4:] + [mine[0], mine[2]], "some"),
                                   folder, folder / "labels.csv", "mine")
    assert (res["held_out"], res["in_training"]) == (2, 2)
    assert sorted(res["videos"]["video_id"]) == ["mine/clip1", "mine/clip3"]
    assert int(res["summary"].query("view == 'all'")["videos"].iloc[0]) == 2
    # trained on all four: nothing left to score, so no figure at all
    res = evaluate_transfer_folder(saved(videos[:4] + mine, "all"), folder, folder / "labels.csv", "mine")
    assert (res["held_out"], res["in_training"], res["summary"]) == (0, 4, None)


def test_blazepose_is_trusted_only_when_every_held_out_transfer_row_passes():
    import pandas as pd

    from deadlift_utils.train import trusted_backends

    def table(*rows):
        return pd.DataFrame([{"model": "m", "view": "all", "protocol": f"(c) ESAP -> {name} (saved model)",
                              "video_auc": auc, "video_acc_study_60pct": acc} for name, auc, acc in rows],
                            columns=["model", "view", "protocol", "video_auc", "video_acc_study_60pct"])

    assert trusted_backends(table(("yfgd", 0.9, 0.8), ("kb", 0.8, 0.75)), "m") == ["openpose", "blazepose"]
    assert trusted_backends(table(("yfgd", 0.9, 0.8), ("kb", 1.0, 0.125)), "m") == ["openpose"]
    assert trusted_backends(table(("yfgd", float("nan"), 0.9)), "m") == ["openpose"]  # one class: no AUC
    assert trusted_backends(table(), "m") == ["openpose"]  # nothing measured, nothing trusted


def test_a_model_file_from_another_save_is_refused_not_loaded(tmp_path):
    """A save killed between model.keras and config.json (or a model copied over) is caught."""
    import shutil

    import keras

    from deadlift_utils.models import check_model_folder, save_model_bundle

    def tiny(seed):
        keras.utils.set_random_seed(seed)
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])

    cfg_a, cfg_b = {"kind": "classifier"}, {"kind": "classifier"}
    save_model_bundle(tiny(0), tmp_path / "a", cfg_a, {})
    save_model_bundle(tiny(1), tmp_path / "b", cfg_b, {})
    assert len(cfg_a["model_sha256"]) == 64 and cfg_a["model_sha256"] != cfg_b["model_sha256"]
    assert check_model_folder(tmp_path / "a")[0]["model_sha256"] == cfg_a["model_sha256"]
    shutil.copy(tmp_path / "b" / "model.keras", tmp_path / "a" / "model.keras")
    with pytest.raises(ValueError, match=r"model.keras and config.json come from different saves.*re-run"):
        check_model_folder(tmp_path / "a", "classifier")
