"""Named-error rules and view prediction on the shared data (kettlebell_errors from both camera
views, openpose_sequences front/middle)."""
from __future__ import annotations

import copy
import csv

import numpy as np
import pytest

from deadlift_utils.config import OPENPOSE_SEQUENCES_DIR
from deadlift_utils.pose import load_pose_json
from deadlift_utils.form import judge_form
from deadlift_utils.norms import load_norms, norm_for
from deadlift_utils.rules import RULES, RULES_BY_NAME, compute_signals, rule_applies
from deadlift_utils.view import predict_view

from test_reps import shared_pose

OP_LABELS = list(csv.DictReader(open(OPENPOSE_SEQUENCES_DIR / "labels.csv")))


def flagged(seq, view=None, use_world=True):
    """(rule name -> flagged judged reps, n judged reps, evaluate_rules output), judged as
    analyze judges (form.judge_form: trusted frames, good-form norms)."""
    view = view or predict_view(seq)["view"]
    out = judge_form(seq, view, use_world=use_world)
    res = out["rules"]
    judged = set(out["judged"])
    counts: dict[str, int] = {}
    for r in res["per_rep"]:
        if r["index"] in judged:
            for e in r["errors"]:
                counts[e["name"]] = counts.get(e["name"], 0) + 1
    return counts, len(judged), res


def test_every_rule_is_documented():
    for r in RULES:
        d = r.doc()
        assert d["description"] and d["metric"] and d["units"]
        assert d["flag_when"] in ("below", "above")
        assert set(d["valid_views"]) <= {"front", "middle", "side"} and d["valid_views"]
        assert r.metric.__doc__, r.name
        assert r.advice, r.name


@pytest.mark.parametrize("take", ["correct", "hips_first", "knee_dominant", "rounded_back"])
def test_kettlebell_views_are_predicted(take):
    assert predict_view(shared_pose(f"kettlebell_errors/{take}_side.mp4"))["view"] == "side"
    assert predict_view(shared_pose(f"kettlebell_errors/{take}_middle.mp4"))["view"] == "middle"


def test_openpose_views_are_predicted():
    wrong = [(r["file"], r["view"], predict_view(load_pose_json(OPENPOSE_SEQUENCES_DIR / r["file"]))["view"])
             for r in OP_LABELS]
    wrong = [w for w in wrong if w[1] != w[2]]
    assert len(wrong) <= 2, wrong


@pytest.mark.parametrize("view", ["side", "middle"])
@pytest.mark.parametrize("error", ["hips_first", "rounded_back", "knee_dominant"])
def test_named_error_flagged_in_its_video_and_not_in_correct(error, view):
    bad, n_bad, res = flagged(shared_pose(f"kettlebell_errors/{error}_{view}.mp4"))
    ok, n_ok, _ = flagged(shared_pose(f"kettlebell_errors/correct_{view}.mp4"))
    assert res["method"] == "3d_world"  # BlazePose poses carry world keypoints
    # Half the reps at least (the verdict needs 30%): with the norms refitted from the cached
    # poses, the middle-view rounded-back take has 5 of 10 reps past the good-form P97.5.
    assert bad.get(error, 0) >= 0.5 * n_bad, (error, view, bad, n_bad)
    assert ok.get(error, 0) == 0, (error, view, ok)
    # The error of this take is the main finding, not a side effect of another rule.
    assert max(bad, key=bad.get) == error


@pytest.mark.parametrize("take", ["correct", "hips_first", "knee_dominant", "rounded_back"])
def test_both_views_give_the_same_answer(take):
    """The same set filmed at once from the side and at ~45 deg gets the same verdict, and the
    take's own error is found from both cameras (an error counts when it is in >= 30% of the
    reps, as for the verdict). A borderline second rule may differ between the views."""
    answers, verdicts = [], []
    for view in ("side", "middle"):
        seq = shared_pose(f"kettlebell_errors/{take}_{view}.mp4")
        res = judge_form(seq, predict_view(seq)["view"])
        verdicts.append(res["verdict"])
        answers.append({k for k, v in res["flagged_reps"].items() if v >= res["reps_needed"]})
    assert verdicts[0] == verdicts[1] == ("good" if take == "correct" else "bad"), (verdicts, answers)
    if take != "correct":
        assert take in answers[0] and take in answers[1], answers


def test_evidence_carries_rep_time_value_and_threshold():
    _, _, res = flagged(shared_pose("kettlebell_errors/hips_first_side.mp4"))
    errs = [e for r in res["per_rep"] for e in r["errors"]]
    assert errs
    for e in errs:
        ev = e["evidence"]
        assert e["rep"] >= 1 and e["time_s"] >= 0
        norm = norm_for(load_norms(), e["name"], "side")
        assert np.isfinite(ev["value"]) and ev["threshold"] == pytest.approx(norm["threshold"], abs=1e-3)
        assert RULES_BY_NAME[e["name"]].flagged(ev["value"], ev["threshold"])
        assert ev["method"] in ("2d_image", "3d_world", "segmentation mask")
        assert "percentile" in ev["threshold_source"]


def test_rounded_back_comes_from_the_backs_outline_whatever_the_keypoints():
    """rounded_back reads the segmentation mask's dorsal contour: the same answer with the 3D
    world keypoints or the image keypoints, and not checked on a pose without the outline."""
    seq = shared_pose("kettlebell_errors/rounded_back_middle.mp4")
    c3, n, r3 = flagged(seq, use_world=True)
    c2, _, r2 = flagged(seq, use_world=False)
    assert r3["method"] == "3d_world" and r2["method"] == "2d_image"
    assert c3.get("rounded_back", 0) == c2.get("rounded_back", 0) >= 0.5 * n
    import copy

    bare = copy.copy(seq)
    bare.frame_extras = {}
    _, _, r0 = flagged(bare)
    assert "segmentation mask" in r0["not_checked"]["rounded_back"]


def _op(error):
    return [r["file"] for r in OP_LABELS if r["error"] == error]


def test_grip_width_rules_on_openpose_front_views():
    """grip_too_wide / grip_too_narrow flagged in most reps of their files, never in the correct
    files; the last 'rep' of these files is the lifter standing up without the bar."""
    for f in _op("grip_too_wide"):
        c, n, _ = flagged(load_pose_json(OPENPOSE_SEQUENCES_DIR / f), view="front")
        assert c.get("grip_too_wide", 0) >= n - 1 and "grip_too_narrow" not in c, (f, c, n)
    for f in _op("grip_too_narrow"):
        c, n, _ = flagged(load_pose_json(OPENPOSE_SEQUENCES_DIR / f), view="front")
        assert c.get("grip_too_narrow", 0) >= n - 1 and "grip_too_wide" not in c, (f, c, n)
    for f in ["C_correct_front.json", "E_correct_front.json"]:
        c, _, _ = flagged(load_pose_json(OPENPOSE_SEQUENCES_DIR / f), view="front")
        assert not ({"grip_too_wide", "grip_too_narrow", "bent_elbows"} & set(c)), (f, c)


def test_bent_elbows_on_openpose_front_views():
    hits = {}
    for f in _op("bent_elbows"):
        c, n, _ = flagged(load_pose_json(OPENPOSE_SEQUENCES_DIR / f), view="front")
        hits[f] = c.get("bent_elbows", 0) >= 0.5 * n
    # Lifter E's bent elbows are not visible in the 2D front-view angles (documented miss).
    assert sum(hits.values()) >= 4, hits
    for f in _op("grip_too_wide"):
        c, n, _ = flagged(load_pose_json(OPENPOSE_SEQUENCES_DIR / f), view="front")
        assert c.get("bent_elbows", 0) <= 1, (f, c)


def test_rules_outside_their_views_are_not_checked():
    seq = load_pose_json(OPENPOSE_SEQUENCES_DIR / "C_correct_middle.json")
    _, _, res = flagged(seq, view="middle")
    assert "grip_too_wide" in res["not_checked"] and "middle" in res["not_checked"]["grip_too_wide"]
    assert "hips_first" in res["checked"]
    ok, why = rule_applies(RULES_BY_NAME["incomplete_lockout"], "unknown", "2d_image")
    assert not ok and "unknown" in why


def test_signals_use_world_keypoints_when_present():
    seq = shared_pose("kettlebell_errors/correct_side.mp4")
    assert compute_signals(seq).method == "3d_world"
    assert compute_signals(seq, use_world=False).method == "2d_image"
    op = load_pose_json(OPENPOSE_SEQUENCES_DIR / "C_correct_front.json")
    assert compute_signals(op).method == "2d_image"


def _forced(norms: dict, name: str, threshold: float) -> dict:
    """A copy of the norms whose `name` norm flags everything above `threshold`."""
    out = copy.deepcopy(norms)
    for n in out["rules"][name].values():
        n["threshold"] = threshold
    return out


def test_bar_drift_reports_the_bar_beside_the_wrists_and_can_judge_it(tmp_path, monkeypatch):
    # A real side-view clip whose plate is tracked through the pull. Switched to the bar, the
    # rule judges how far the plate centre moves forward of the closest-in point it had reached
    # since lift-off, against the bar-measured norm, saying so in the evidence; as shipped
    # (wrists), it judges the hands and gives the bar's figure beside them; the same pose
    # without the bar field falls back to the wrists, saying the bar was not tracked.
    import deadlift_utils.rules as rules_mod
    from test_bar import _extract

    from deadlift_utils.bar import bar_positions
    from deadlift_utils.keypoints import KP
    from deadlift_utils.pose import PoseSequence

    seq = _extract("yfgd_small/good/good_001.mp4", tmp_path)
    norms = load_norms()
    assert "bar_drift_bar" in norms["rules"], "norms.json has no bar-measured bar_drift norm: refit it"
    monkeypatch.setattr(rules_mod, "BAR_DRIFT_MEASURE", "bar")
    out = judge_form(seq, "side", norms=_forced(norms, "bar_drift_bar", -10.0))
    sig, reps = out["signals"], out["reps"].reps
    rep, res = reps[0], out["rules"]["per_rep"][0]
    pull = slice(rep.pull_start, rep.top_start + 1)
    plate_x = np.where(sig.trusted[pull], bar_positions(seq)[0][pull, 0], np.nan)
    plate = plate_x * sig.facing / sig.scale_px
    closest = np.fmin.accumulate(np.where(np.isfinite(plate), plate, np.inf))
    travel = float(np.nanmax(plate - closest))
    assert np.isfinite(plate[0]) and 0 <= travel < 0.1   # a good rep: the bar leaves the floor and goes up
    ankle_x = np.nanmean(seq.keypoints_xy[pull][:, [KP["r_ankle"], KP["l_ankle"]], 0], axis=1)
    assert np.nanmax((plate_x - ankle_x) * sig.facing / sig.scale_px) > 0.2   # ahead of the ankles: not judged
    assert res["values"]["bar_drift_bar"] == pytest.approx(travel, abs=1e-3)
    assert out["rules"]["bar_source"] == "bar" and res["bar_drift_source"] == "bar"
    assert res["measurements"]["bar_drift"] == pytest.approx(travel, abs=1e-3)
    ev = next(e["evidence"] for e in res["errors"] if e["name"] == "bar_drift")
    assert ev["source"] == "bar" and "tracked plate" in ev["metric"]

    # The finding's still shows the bar: a vertical through the closest-in point it reached
    # after its lowest point (where it left the floor), yellow, where the hands' version draws
    # the wrists' and ankles' verticals.
    from deadlift_utils.report import draw_measurement

    k = rep.top_start
    xy = bar_positions(seq)[0][:k + 1]
    lowest = int(np.nanargmax(np.where(np.isfinite(xy[:, 0]), xy[:, 1], -np.inf)))
    after = np.where(np.isfinite(xy[lowest:, 0]), xy[lowest:, 0] * sig.facing, np.inf)
    x0 = int(xy[lowest + int(np.argmin(after)), 0])
    blank = np.zeros((seq.height, seq.width, 3), np.uint8)
    yellow = np.array([0, 230, 255])

    def column_is_yellow(img, x):
        return (np.abs(img[:, x].astype(int) - yellow).sum(axis=1) < 60).mean() > 0.5
    assert column_is_yellow(draw_measurement(blank.copy(), seq, k, "bar_drift", ev), x0)
    wrists_still = draw_measurement(blank.copy(), seq, k, "bar_drift", {"source": "wrists"})
    assert not column_is_yellow(wrists_still, x0)

    monkeypatch.setattr(rules_mod, "BAR_DRIFT_MEASURE", "wrists")   # as shipped
    out = judge_form(seq, "side", norms=_forced(norms, "bar_drift", -10.0))
    res = out["rules"]["per_rep"][0]
    assert res["values"]["bar_drift"] != pytest.approx(travel, abs=1e-3)   # the hands are not the plate
    ev = next(e["evidence"] for e in res["errors"] if e["name"] == "bar_drift")
    assert ev["source"] == "wrists" and ev["bar_value"] == pytest.approx(travel, abs=1e-3)

    # The same pose with the plate jumping 2 radii sideways mid-pull (a track that went to another
    # object, as on yfgd_small bad_004): not a bar path, so the bar's value is not measured.
    vals = [dict(v) if isinstance(v, dict) else v for v in seq.frame_extras["bar"]]
    for v in vals[(rep.pull_start + rep.top_start) // 2:]:
        if isinstance(v, dict) and v.get("x") is not None:
            v["x"] += 2 * v["r"]
    jumped = copy.copy(seq)
    jumped.frame_extras = dict(seq.frame_extras, bar=vals)
    res = judge_form(jumped, "side", norms=norms)["rules"]["per_rep"][0]
    assert res["values"].get("bar_drift_bar") is None
    assert res["measurements"]["bar_drift"] == pytest.approx(res["values"]["bar_drift"], abs=1e-3)

    bare = PoseSequence(keypoints_xy=seq.keypoints_xy, confidence=seq.confidence, frame_index=seq.frame_index,
                        time_s=seq.time_s, world_xyz=seq.world_xyz, fps=seq.fps, width=seq.width,
                        height=seq.height, frame_stride=seq.frame_stride)
    out = judge_form(bare, "side", norms=_forced(norms, "bar_drift", -10.0))
    res = out["rules"]["per_rep"][0]
    assert res["bar_drift_source"] == "wrists" and res["values"]["bar_drift_bar"] is None
    ev = next(e["evidence"] for e in res["errors"] if e["name"] == "bar_drift")
    assert ev["source"] == "wrists" and "not tracked" in ev["metric"]
