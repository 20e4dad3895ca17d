"""Lift style (conventional / romanian / partial / sumo) on constructed sequences (the shared data
holds no labelled sumo or Romanian clip), and on the shared conventional lifts."""
from __future__ import annotations

import numpy as np
import pytest

from deadlift_utils.form import judge_form
from synthetic_lift import synthetic_lift


@pytest.mark.parametrize("view", ["side", "front"])
def test_conventional_and_squat_pull_are_conventional(view):
    for style in ("conventional", "squat_pull"):
        res = judge_form(synthetic_lift(style, view), view, norms={})
        assert res["reps"].count == 3
        assert res["style"]["style"] == "conventional", (style, res["style"])


@pytest.mark.parametrize("view", ["side", "front"])
def test_romanian_is_recognised_and_floor_start_rules_are_not_applied(view):
    res = judge_form(synthetic_lift("romanian", view), view, norms={})
    assert res["style"]["style"] == "romanian", res["style"]
    assert "hips_first" in res["rules"]["not_checked"]
    assert "romanian" in res["rules"]["not_checked"]["hips_first"]


def test_partial_range_when_the_hands_never_pass_the_knees():
    # A rack pull: hips and torso only half way down, the hands stay above the knees.
    res = judge_form(synthetic_lift("conventional", "side", bottom=(5.0, 30.0, 35.0)), "side", norms={})
    assert res["style"]["style"] == "partial", res["style"]
    assert res["style"]["evidence"]["hands_lowest_over_shin"] > 1.0
    assert "incomplete_lockout" in res["rules"]["not_checked"]


def test_sumo_from_the_front_skips_the_upright_torso_rules():
    sumo = judge_form(synthetic_lift("sumo", "front"), "front", norms={})
    assert sumo["style"]["style"] == "sumo"
    assert sumo["style"]["evidence"]["stance_over_shoulders"] > 1.6
    assert {"knee_dominant", "grip_too_wide"} <= set(sumo["rules"]["not_checked"])
    assert sumo["verdict"] == "good"
    # The same upright torso in a conventional stance is a fault (squatting the weight up).
    narrow = judge_form(synthetic_lift("sumo", "front", half_stance=0.14), "front")
    assert narrow["style"]["style"] == "conventional"
    assert narrow["verdict"] == "bad" and "knee_dominant" in narrow["flagged_reps"]


def test_stance_is_not_read_from_the_side():
    res = judge_form(synthetic_lift("sumo", "side"), "side", norms={})
    assert res["style"]["evidence"]["stance_over_shoulders"] is None
    assert any("stance" in n for n in res["style"]["notes"])


def test_squat_pull_is_flagged_in_both_views_with_the_same_rules():
    side = judge_form(synthetic_lift("squat_pull", "side"), "side")
    front = judge_form(synthetic_lift("squat_pull", "front"), "front")
    assert side["verdict"] == front["verdict"] == "bad"
    assert "hips_too_low" in side["flagged_reps"] or "knee_dominant" in side["flagged_reps"]
    assert "knee_dominant" in front["flagged_reps"]
    ok = judge_form(synthetic_lift("conventional", "side"), "side")
    assert ok["verdict"] == "good", ok["flagged_reps"]


def test_shared_conventional_lifts_are_not_called_another_style():
    from test_reps import shared_pose

    for rel in ("yfgd_small/good/good_001.mp4", "kettlebell_errors/correct_side.mp4"):
        res = judge_form(shared_pose(rel), "side")
        assert res["style"]["style"] == "conventional", (rel, res["style"])
        assert np.isfinite(res["style"]["evidence"]["torso_lean_bottom_deg"])
