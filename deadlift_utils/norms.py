"""Good-form ranges of every rule's metric, learned from many lifters and sources.

A threshold set by eye on one lifter's clips flags the next lifter's normal technique (or
misses their fault). Here each rule's threshold is the edge of the range its metric takes on
**good-form reps of every shared source** (the study's good files, the other OpenPose lifters'
correct sets, the yfgd_small good clips, the kettlebell lifter's correct sets, the coaching
clips' good lifts): the `PERCENTILE`th percentile on the side the rule flags (the
100 - PERCENTILE th for "below" rules). Each source weighs the same, split evenly between its
clips and each clip's reps between its reps, so a source with many reps does not set the norm
alone. A rule whose metric reads the same from every view (heights and their ratios) gets
one norm over all views; the others get a norm per camera view where good reps from at least
MIN_SOURCES sources were measured in that view, else one over all the views they are valid in.

`fit_norms(rows)` -> the norms dict. `scripts/evaluate_form.py` fits them on all shared data
into `deadlift_utils/norms.json` (packaged; `load_norms()` reads it), refits them without each
source in turn for the evaluation, and writes the tables to docs/form_results.md.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

NORMS_JSON = Path(__file__).with_name("norms.json")
PERCENTILE = 97.5       # the threshold: this percentile of good reps on the flagged side
MIN_SOURCES = 2         # a per-view norm needs good reps from this many sources
MIN_REPS = 8            # ... and this many reps
SCHEMA = "deadlift-norms/1"


def weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The q-th percentile (0-100) of values under weights (linear between sorted points)."""
    v = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    ok = np.isfinite(v) & (w > 0)
    v, w = v[ok], w[ok]
    if v.size == 0:
        return float("nan")
    order = np.argsort(v)
    v, w = v[order], w[order]
    cum = np.cumsum(w) - 0.5 * w
    cum /= w.sum()
    return float(np.interp(q / 100.0, cum, v))


def rep_weights(rows: list[dict]) -> np.ndarray:
    """Each source weighs 1, split evenly between its clips, each clip's evenly between its reps."""
    by_source: dict[str, set] = {}
    by_clip: dict[tuple, int] = {}
    for r in rows:
        by_source.setdefault(r["source"], set()).add(r["clip"])
        key = (r["source"], r["clip"])
        by_clip[key] = by_clip.get(key, 0) + 1
    return np.array([1.0 / len(by_source[r["source"]]) / by_clip[(r["source"], r["clip"])] for r in rows])


def edge_of_range(vals: np.ndarray, w: np.ndarray, q: float, method: str = "percentile") -> float:
    """The edge of the good-form range at percentile q: the weighted percentile itself, or
    ("robust") the weighted median plus z(q) robust standard deviations (1.4826 x the weighted
    median absolute deviation), which is steadier than an extreme percentile of few clips."""
    if method == "percentile":
        return weighted_percentile(vals, w, q)
    from statistics import NormalDist

    med = weighted_percentile(vals, w, 50)
    mad = weighted_percentile(np.abs(vals - med), w, 50)
    z = NormalDist().inv_cdf(q / 100.0)
    return float(med + z * 1.4826 * mad)


def fit_norms(rows: list[dict], percentile: float = PERCENTILE, exclude_sources=(),
              method: str = "percentile") -> dict:
    """Fit the good-form norms.

    rows: one dict per rep: {"source", "clip", "view", "label", "values": {rule: value}}; only
    label "good" rows (and sources not in exclude_sources) are used.
    Returns {"schema", "percentile", "sources", "rules": {rule: {view or "all": norm}}} where a
    norm is {"threshold", "median", "p25", "p75", "n_reps", "n_clips", "sources": {source:
    median}, "percentile", "view"}.
    """
    from .rules import EXTRA_NORMS, RULES, RULES_BY_NAME

    good = [r for r in rows if r["label"] == "good" and r["source"] not in set(exclude_sources)]
    out = {"schema": SCHEMA, "percentile": percentile, "method": method,
           "sources": sorted({r["source"] for r in good}), "rules": {}}
    # The rules' own norms, then the extra ones (e.g. bar_drift measured on the tracked bar
    # instead of the hands: its own good-form range, from the good reps where the bar was tracked).
    specs = [(rule.name, rule, rule.name, None) for rule in RULES]
    specs += [(name, RULES_BY_NAME[base], key, srcs) for name, (base, key, srcs) in EXTRA_NORMS.items()]
    for norm_name, rule, key, only in specs:
        q = percentile if rule.direction == "above" else 100.0 - percentile
        per_view = {}
        pooled = [r for r in good if r["view"] in rule.valid_views and r["values"].get(key) is not None
                  and (only is None or r["source"] in only)]
        candidates = [] if rule.view_invariant else [(v, [r for r in pooled if r["view"] == v])
                                                     for v in rule.valid_views]
        candidates.append(("all", pooled))
        for view, rs in candidates:
            srcs = {r["source"] for r in rs}
            if view != "all" and (len(srcs) < MIN_SOURCES or len(rs) < MIN_REPS):
                continue
            if not rs:
                continue
            vals = np.array([r["values"][key] for r in rs], dtype=float)
            w = rep_weights(rs)
            per_source = {}
            for s in sorted(srcs):
                sv = np.array([r["values"][key] for r in rs if r["source"] == s], dtype=float)
                per_source[s] = round(float(np.median(sv)), 4)
            per_view[view] = {
                "threshold": round(edge_of_range(vals, w, q, method), 4),
                "median": round(weighted_percentile(vals, w, 50), 4),
                "p25": round(weighted_percentile(vals, w, 25), 4),
                "p75": round(weighted_percentile(vals, w, 75), 4),
                "n_reps": int(len(rs)), "n_clips": len({(r["source"], r["clip"]) for r in rs}),
                "sources": per_source, "percentile": q, "view": view,
            }
        if per_view:
            out["rules"][norm_name] = per_view
    return out


def norm_for(norms: dict | None, rule_name: str, view: str) -> dict | None:
    """The norm of a rule for a view (the pooled one when the view has none), or None."""
    if not norms:
        return None
    r = norms.get("rules", {}).get(rule_name)
    if not r:
        return None
    return r.get(view) or r.get("all")


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> dict:
    data = json.loads(Path(path).read_text())
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a norms file (schema {data.get('schema')!r}); "
                         f"refit it with python scripts/evaluate_form.py")
    return data


def load_norms(path=None) -> dict:
    """The packaged good-form norms (or those in `path`); {} when there are none (the rules
    then use their fallback thresholds and say so)."""
    p = Path(path) if path else NORMS_JSON
    if not p.is_file():
        if path:
            raise FileNotFoundError(f"{p}: norms file not found; fit one with python scripts/evaluate_form.py")
        return {}
    return _load(str(p), p.stat().st_mtime)


def save_norms(norms: dict, path=None) -> Path:
    from .io_utils import atomic_write_text

    p = Path(path) if path else NORMS_JSON
    atomic_write_text(p, json.dumps(norms, indent=1, sort_keys=True))
    return p


# ----------------------------------------------------------------------------- joint positions

# The moments of a rep where a joint's place is compared with good form, and the joints.
MOMENTS = {"start of the pull": "bottom", "mid-pull": "mid", "lockout": "top"}
JOINTS = {"hips": ("r_hip", "l_hip"), "shoulders": ("r_shoulder", "l_shoulder"),
          "knees": ("r_knee", "l_knee"), "hands": ("r_wrist", "l_wrist"), "head": ("r_ear", "l_ear")}
JOINT_Z = 2.0           # a joint is reported when it is more than this many good-form SDs off
JOINT_MIN_TORSO = 0.05  # ... and at least this far (torso lengths): smaller is measurement noise


def joint_positions(sig, seq, rep, chain: str = "both") -> dict:
    """{moment: {joint: [forward, up]}} for one rep: each joint's place relative to mid-foot
    (the ankles), in standing torso lengths; forward is along the lifter's facing direction
    (meaningless in a front view, where only `up` is kept), up is up."""
    import warnings

    from .keypoints import KP
    from .rules import _bottom_index, _standing

    kp = np.asarray(seq.keypoints_xy, dtype=float)
    stand = _standing(sig, sig.torso_rise_px, rep)
    if not np.isfinite(stand) or stand <= 0:
        return {}
    b = _bottom_index(sig, rep)
    top = rep.top_start
    mid = (b + top) // 2
    at = {"bottom": b, "mid": mid, "top": (rep.top_start + rep.top_end) // 2}
    out = {}
    for moment, key in MOMENTS.items():
        k = at[key]
        if not (0 <= k < len(kp)) or not sig.trusted[k]:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ankle = np.nanmean(kp[k, [KP["r_ankle"], KP["l_ankle"]]], axis=0)
            pos = {}
            for j, (r, l) in JOINTS.items():
                if chain == "right":
                    p = kp[k, KP[r]] if np.isfinite(kp[k, KP[r]]).all() else kp[k, KP[l]]
                elif chain == "left":
                    p = kp[k, KP[l]] if np.isfinite(kp[k, KP[l]]).all() else kp[k, KP[r]]
                else:
                    p = np.nanmean(kp[k, [KP[r], KP[l]]], axis=0)
                d = p - ankle
                if np.isfinite(d).all():
                    pos[j] = [round(float(d[0] * sig.facing / stand), 4), round(float(-d[1] / stand), 4)]
        if pos:
            out[moment] = pos
    return out


def fit_joint_norms(rows: list[dict], exclude_sources=()) -> dict:
    """{view: {moment: {joint: {"mean": [f, u], "sd": [f, u], "n"}}}} from good reps' joint
    positions (rows as fit_norms, each with "joints" from joint_positions)."""
    good = [r for r in rows if r["label"] == "good" and r["source"] not in set(exclude_sources) and r.get("joints")]
    out: dict = {}
    for view in ("front", "middle", "side"):
        rs = [r for r in good if r["view"] == view]
        if len({r["source"] for r in rs}) < MIN_SOURCES:
            continue
        w_all = rep_weights(rs)
        for moment in MOMENTS:
            for joint in JOINTS:
                pts, ws = [], []
                for r, w in zip(rs, w_all):
                    p = r["joints"].get(moment, {}).get(joint)
                    if p is not None:
                        pts.append(p)
                        ws.append(w)
                if len(pts) < MIN_REPS:
                    continue
                P, W = np.array(pts, dtype=float), np.array(ws, dtype=float)
                mean = (P * W[:, None]).sum(0) / W.sum()
                sd = np.sqrt(((P - mean) ** 2 * W[:, None]).sum(0) / W.sum())
                out.setdefault(view, {}).setdefault(moment, {})[joint] = {
                    "mean": [round(float(v), 4) for v in mean], "sd": [round(float(v), 4) for v in sd],
                    "n": int(len(pts))}
    return out


def joint_deviations(positions_by_rep: list[dict], view: str, joint_norms: dict | None) -> list[dict]:
    """The joints outside the good-form spread, in the lifter's terms.

    positions_by_rep: [joint_positions(...)] of the judged reps. A joint at a moment is
    reported when the reps' median position is more than JOINT_Z good-form SDs and
    JOINT_MIN_TORSO torso lengths from the good-form mean along an axis (in a front view only
    the height). Returns [{"joint", "moment", "dx", "dy", "z", "units", "direction",
    "magnitude"}], largest first; dx + = further forward, dy + = higher.
    """
    vn = (joint_norms or {}).get(view)
    if not vn or not positions_by_rep:
        return []
    out = []
    for moment, joints in vn.items():
        for joint, n in joints.items():
            pts = [p[moment][joint] for p in positions_by_rep if moment in p and joint in p[moment]]
            if not pts:
                continue
            med = np.median(np.array(pts, dtype=float), axis=0)
            d = med - np.array(n["mean"])
            sd = np.maximum(np.array(n["sd"]), 1e-6)
            z = d / sd
            axes = (1,) if view == "front" else (0, 1)
            words = []
            for a in axes:
                if abs(z[a]) > JOINT_Z and abs(d[a]) >= JOINT_MIN_TORSO:
                    if a == 0:
                        words.append(f"{abs(d[a]):.2f} torso lengths {'further forward' if d[a] > 0 else 'further back'}")
                    else:
                        words.append(f"{abs(d[a]):.2f} torso lengths {'higher' if d[a] > 0 else 'lower'}")
            if not words:
                continue
            zz = max(abs(z[a]) for a in axes)
            out.append({"joint": joint, "moment": moment, "dx": None if view == "front" else round(float(d[0]), 3),
                        "dy": round(float(d[1]), 3), "z": round(float(zz), 1), "units": "torso lengths",
                        "direction": f"{joint} {' and '.join(words)} than good form at the {moment}",
                        "magnitude": round(float(np.hypot(*(d if view != 'front' else [0, d[1]]))), 3),
                        "reps": len(pts)})
    return sorted(out, key=lambda d: -d["z"])
