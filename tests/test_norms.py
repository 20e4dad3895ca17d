"""Good-form norms: weighting, percentiles, per-view fallback, the packaged norms file, and joint
deviations in the lifter's terms."""
from __future__ import annotations

import numpy as np
import pytest

from deadlift_utils.norms import (fit_joint_norms, fit_norms, joint_deviations, load_norms, norm_for,
                                  rep_weights, weighted_percentile)
from deadlift_utils.rules import RULES, RULES_BY_NAME


def test_weighted_percentile_matches_numpy_with_equal_weights():
    x = np.random.default_rng(0).normal(size=501)
    for q in (2.5, 50, 97.5):
        assert weighted_percentile(x, np.ones_like(x), q) == pytest.approx(np.percentile(x, q, method="hazen"), abs=1e-9)
    assert np.isnan(weighted_percentile(np.array([]), np.array([]), 50))


def test_each_source_weighs_the_same_whatever_its_number_of_reps():
    rows = [{"source": "a", "clip": "a1"}] * 100 + [{"source": "b", "clip": "b1"}, {"source": "b", "clip": "b2"}]
    w = rep_weights(rows)
    assert w[:100].sum() == pytest.approx(1.0) and w[100:].sum() == pytest.approx(1.0)


def _rows(values_by_source, view="side", label="good", rule="hips_first"):
    rows = []
    for src, vals in values_by_source.items():
        for i, v in enumerate(vals):
            rows.append({"source": src, "clip": f"{src}{i}", "view": view, "label": label, "values": {rule: v}})
    return rows


def test_threshold_is_the_stated_percentile_on_the_flagged_side():
    rng = np.random.default_rng(1)
    rows = _rows({"a": rng.normal(1.6, 0.2, 40), "b": rng.normal(1.5, 0.2, 40)})
    rows += _rows({"a": [0.2, 0.3]}, label="bad")        # bad reps never shape the norm
    n = norm_for(fit_norms(rows), "hips_first", "side")
    assert n["view"] == "all"                              # hips_first reads the same from every view
    assert n["percentile"] == 2.5 and n["threshold"] < n["p25"] < n["median"] < n["p75"]
    assert n["threshold"] == pytest.approx(1.55 - 1.96 * 0.21, abs=0.12)
    assert set(n["sources"]) == {"a", "b"}


def test_a_view_needs_two_sources_else_the_pooled_norm():
    rng = np.random.default_rng(2)
    rows = _rows({"a": rng.normal(170, 3, 20), "b": rng.normal(172, 3, 20)}, view="side", rule="incomplete_lockout")
    norms = fit_norms(rows)
    assert "side" in norms["rules"]["incomplete_lockout"]
    only_one = fit_norms(_rows({"a": rng.normal(170, 3, 20)}, view="side", rule="incomplete_lockout"))
    assert set(only_one["rules"]["incomplete_lockout"]) == {"all"}
    assert norm_for(only_one, "incomplete_lockout", "side")["view"] == "all"
    # Leaving a source out removes it from every norm.
    assert set(fit_norms(rows, exclude_sources=["a"])["rules"]["incomplete_lockout"]["all"]["sources"]) == {"b"}


def test_packaged_norms_cover_every_rule_from_several_sources():
    norms = load_norms()
    assert norms, "deadlift_utils/norms.json missing: run python scripts/evaluate_form.py"
    assert len(norms["sources"]) == 5
    for rule in RULES:
        views = norms["rules"].get(rule.name)
        assert views, rule.name
        for view, n in views.items():
            # the threshold lies beyond the good median on the side the rule flags
            if rule.direction == "below":
                assert n["threshold"] < n["median"], (rule.name, view)
            else:
                assert n["threshold"] > n["median"], (rule.name, view)
    # The back's shape comes from BlazePose videos of three sources, never from the OpenPose files.
    assert {"kettlebell_errors", "tutorial_dev", "yfgd_small"} <= set(norm_for(norms, "rounded_back", "side")["sources"])
    assert "esap_pose" not in norm_for(norms, "rounded_back", "side")["sources"]


def test_joint_deviation_is_reported_only_outside_the_good_spread_in_words():
    rows = []
    rng = np.random.default_rng(3)
    for src in ("a", "b"):
        for i in range(12):
            rows.append({"source": src, "clip": f"{src}{i}", "view": "side", "label": "good", "values": {},
                         "joints": {"start of the pull": {"hips": [-0.3 + rng.normal(0, 0.03), 1.0 + rng.normal(0, 0.03)]}}})
    jn = fit_joint_norms(rows)
    low = [{"start of the pull": {"hips": [-0.3, 0.78]}}]
    d = joint_deviations(low, "side", jn)
    assert len(d) == 1 and d[0]["joint"] == "hips" and d[0]["dy"] == pytest.approx(-0.22, abs=0.03)
    assert d[0]["direction"] == "hips 0.22 torso lengths lower than good form at the start of the pull"
    assert joint_deviations([{"start of the pull": {"hips": [-0.31, 1.01]}}], "side", jn) == []
    # From the front, forward/back cannot be seen: only heights are compared.
    assert fit_joint_norms([dict(r, view="front") for r in rows]) and \
        joint_deviations(low, "front", fit_joint_norms([dict(r, view="front") for r in rows]))[0]["dx"] is None


def test_rule_thresholds_in_the_evidence_name_their_source():
    from test_reps import shared_pose
    from deadlift_utils.form import judge_form

    res = judge_form(shared_pose("kettlebell_errors/hips_first_side.mp4"), "side")
    errs = [e for r in res["rules"]["per_rep"] for e in r["errors"] if e["name"] == "hips_first"]
    assert errs
    ev = errs[0]["evidence"]
    assert ev["threshold"] == pytest.approx(norm_for(load_norms(), "hips_first", "side")["threshold"], abs=1e-3)
    assert "percentile" in ev["threshold_source"] and "sources" in ev["threshold_source"]
    assert RULES_BY_NAME["hips_first"].direction == "below" and ev["value"] < ev["threshold"]
