"""The form verdict of a set: trusted frames -> reps -> style -> rules -> per-rep and set scores.

`judge_form(seq, view)` is the one path from a pose to a verdict, shared by `analyze` and by
the norms and evaluation scripts (so what is measured is what users get):

1. `trust.frame_trust`: the shot that holds the lift; skeletons implausible for this lifter
   are dropped (with the reason).
2. Reps are counted on the trusted frames of the analysed shot (`reps.count_reps`).
3. Each rep gets a **confidence**: the share of its frames (start to end of lockout) that are
   trusted. A rep below MIN_REP_CONFIDENCE, or not complete, is listed but not judged.
4. `lift_style.classify_style`: conventional / romanian / partial / sumo; rules whose norms do
   not fit the style are "not checked".
5. `rules.evaluate_rules` with the good-form norms: per rep, each rule's value, its margin (0
   = the good-form median, 1 = the edge of the good-form range, the threshold) and findings.
6. **Scores.** A rep's score is its largest margin. For each rule, the set's margin is the
   margin that the worst ceil(RULE_BAD_REP_SHARE x judged reps) reps reach; the set's
   `form_score` is the largest of those, capped at FORM_SCORE_CAP. 0 = textbook, < 1 = within
   the good-form range, >= 1 = outside it: the verdict is "bad" exactly when form_score >= 1
   (a named error in at least that many reps), "good" otherwise, "unknown" when no complete
   rep could be judged (with the reason).
"""
from __future__ import annotations

import math

import numpy as np

RULE_BAD_REP_SHARE = 0.3       # an error in >= 30% of the judged reps (at least one) makes the set bad
MIN_REP_CONFIDENCE = 0.5       # share of a rep's frames that must be trusted to judge it
FORM_SCORE_CAP = 3.0


def _masked(seq, keep: np.ndarray):
    """A copy of seq whose frames outside `keep` have no keypoints (for the rep counter)."""
    import copy

    out = copy.copy(seq)
    kp = np.array(seq.keypoints_xy, dtype=float, copy=True)
    kp[~keep] = np.nan
    out.keypoints_xy = kp
    return out


def rep_confidence(rep, trusted: np.ndarray) -> float:
    sl = slice(rep.start, max(rep.top_end, rep.start) + 1)
    t = trusted[sl]
    return float(t.mean()) if t.size else 0.0


def set_margins(per_rep: list[dict], judged: set) -> dict:
    """{rule: the margin the worst ceil(share x n) judged reps reach}."""
    reps = [r for r in per_rep if r["index"] in judged]
    n = len(reps)
    if not n:
        return {}
    need = max(1, math.ceil(RULE_BAD_REP_SHARE * n))
    names = sorted({k for r in reps for k in r["margins"]})
    out = {}
    for name in names:
        vals = sorted((r["margins"][name] for r in reps if name in r["margins"]), reverse=True)
        out[name] = float(vals[need - 1]) if len(vals) >= need else 0.0
    return out


def judge_form(seq, view: str, norms: dict | None = None, use_world: bool = True,
               reps_res=None, trust=None) -> dict:
    """Judge the form of a PoseSequence seen from `view` (front/middle/side).

    Returns {"trust": FrameTrust, "reps": RepResult, "signals": Signals, "style": {...},
    "rules": evaluate_rules output, "rep_confidence": {index: c}, "judged": [indices],
    "set_margins": {rule: m}, "form_score", "verdict", "verdict_reason", "flagged_reps":
    {rule: n}, "reps_needed": k}.
    """
    from .lift_style import classify_style
    from .reps import count_reps
    from .rules import compute_signals, evaluate_rules
    from .trust import frame_trust

    trust = trust if trust is not None else frame_trust(seq, view)
    if reps_res is None:
        # Reps are counted on the trusted frames only: a skeleton on the plate or another shot
        # must not move the floor or the lockout (the counter bridges short gaps).
        reps_res = count_reps(seq if trust.trusted.all() else _masked(seq, trust.trusted))
    sig = compute_signals(seq, use_world=use_world, trusted=trust.trusted, view=view,
                          joint_drop=trust.joint_drop)
    out = {"trust": trust, "reps": reps_res, "signals": sig, "style": None, "rules": None,
           "rep_confidence": {}, "judged": [], "set_margins": {}, "form_score": None,
           "verdict": "unknown", "verdict_reason": None, "flagged_reps": {}, "reps_needed": None,
           "joint_deviations": []}
    if reps_res.count == 0:
        out["verdict_reason"] = f"no complete pull was seen: {reps_res.reason or 'the lift did not reach lockout'}"
        return out
    conf = {r.index: rep_confidence(r, trust.trusted) for r in reps_res.reps}
    out["rep_confidence"] = conf
    judged = [r.index for r in reps_res.reps if conf[r.index] >= MIN_REP_CONFIDENCE]
    out["judged"] = judged
    style = classify_style(sig, [r for r in reps_res.reps if r.index in judged] or reps_res.reps, view)
    out["style"] = style
    rule_res = evaluate_rules(seq, reps_res.reps, view, signals=sig, norms=norms, style=style["style"],
                              rep_trust=conf)
    out["rules"] = rule_res
    if not judged:
        worst = max(trust.reasons.items(), key=lambda kv: kv[1])[0] if trust.reasons else "frames not trusted"
        out["verdict_reason"] = (f"no rep had enough trusted frames to judge (need {MIN_REP_CONFIDENCE:.0%} of a "
                                 f"rep's frames; most were dropped because {worst})")
        return out
    if not rule_res["checked"]:
        out["verdict_reason"] = "no rule could be measured in this view on this pose"
        return out
    margins = set_margins(rule_res["per_rep"], set(judged))
    out["set_margins"] = margins
    n = len(judged)
    need = max(1, math.ceil(RULE_BAD_REP_SHARE * n))
    out["reps_needed"] = need
    counts: dict[str, int] = {}
    for r in rule_res["per_rep"]:
        if r["index"] in judged:
            for e in r["errors"]:
                counts[e["name"]] = counts.get(e["name"], 0) + 1
    out["flagged_reps"] = counts
    score = max(margins.values()) if margins else 0.0
    out["form_score"] = round(min(score, FORM_SCORE_CAP), 3)
    out["joint_deviations"] = _joint_deviations(seq, sig, reps_res, judged, view, norms)
    decisive = sorted(((k, v) for k, v in counts.items() if v >= need), key=lambda kv: -kv[1])
    if decisive:
        out["verdict"] = "bad"
        out["verdict_reason"] = "; ".join(f"{k.replace('_', ' ')} in {v}/{n} judged reps" for k, v in decisive)
    else:
        out["verdict"] = "good"
        out["verdict_reason"] = (f"no named error in {need} or more of {n} judged reps "
                                 f"(rules checked: {', '.join(rule_res['checked'])})")
    return out


def _joint_deviations(seq, sig, reps_res, judged, view, norms) -> list[dict]:
    from .norms import joint_deviations, joint_positions, load_norms

    norms = load_norms() if norms is None else norms
    pos = [joint_positions(sig, seq, r, sig.chain) for r in reps_res.reps if r.index in judged]
    return joint_deviations(pos, view, (norms or {}).get("joints"))


def measure_clip(seq, view: str, use_world: bool = True) -> list[dict]:
    """Every rule's metric on every judged rep of a clip, before any threshold (for fitting
    the norms): [{"rep", "confidence", "style", "values": {rule: value}, "joints"}]."""
    from .norms import joint_positions

    res = judge_form(seq, view, norms={}, use_world=use_world)
    if res["reps"].count == 0 or res["rules"] is None:
        return []
    judged = set(res["judged"])
    style = (res["style"] or {}).get("style")
    sig = res["signals"]
    by_index = {r.index: r for r in res["reps"].reps}
    return [{"rep": m["index"], "confidence": res["rep_confidence"][m["index"]], "style": style,
             "values": m["values"], "joints": joint_positions(sig, seq, by_index[m["index"]], sig.chain)}
            for m in res["rules"]["per_rep"] if m["index"] in judged]
