"""Fit the good-form norms and measure the form verdict, leave-one-source-out.

    python scripts/evaluate_form.py                 # fit norms.json on all sources + the LOSO tables
    python scripts/evaluate_form.py --baseline e92579f   # + the same table for that commit's rules

For every shared source S (esap_pose, openpose_sequences, yfgd_small, kettlebell_errors,
tutorial_dev): the norms are refitted without S, then every clip of S is judged exactly as
`analyze` judges it (predicted view, trusted frames, rules with those norms). Per source and
overall: verdict accuracy on clips with a full rep (unknown counts as wrong), ROC AUC of the
set's form_score (bad = positive), per-error recall on the labelled errors, and each rule's
false-alarm rate on judged good reps. The video sources' poses are extracted once with
analyze's settings and cached (outputs/cache/eval_poses).

Writes deadlift_utils/norms.json (fitted on all sources: what `analyze` uses) and
docs/form_results.md (the tables), and prints the summary.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from deadlift_utils import config  # noqa: E402
from deadlift_utils.sources import SOURCES  # noqa: E402

# Which rules should find a labelled error (any of them counts as found).
ERROR_RULES = {
    "rounded_back": {"rounded_back"},
    "overextension": {"overextension", "leaning_back"},
    "hips_too_low": {"hips_too_low", "knee_dominant"},
    "knee_dominant": {"knee_dominant", "hips_too_low"},
    "hips_first": {"hips_first"},
    "bent_elbows": {"bent_elbows"},
    "grip_too_wide": {"grip_too_wide"},
    "grip_too_narrow": {"grip_too_narrow"},
    # openpose_sequences: "the exact knee error is not documented"; mixed: any named error.
    "knee_fault": {"knees_cave", "knee_dominant", "hips_too_low", "hips_first"},
}


def auc(labels_bad: list[int], scores: list[float]) -> float | None:
    y = np.asarray(labels_bad)
    s = np.asarray(scores, dtype=float)
    ok = np.isfinite(s)
    y, s = y[ok], s[ok]
    pos, neg = s[y == 1], s[y == 0]
    if not len(pos) or not len(neg):
        return None
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def rows_for_norms(clips, measured) -> list[dict]:
    rows = []
    for c, m in zip(clips, measured):
        for r in m:
            rows.append({"source": c.source, "clip": c.name, "view": c.view, "label": c.label,
                         "values": r["values"], "joints": r.get("joints")})
    return rows


def judge_all(clips, views, norms_by_source):
    from deadlift_utils.form import judge_form

    out = []
    for c, v in zip(clips, views):
        res = judge_form(c.seq, v, norms=norms_by_source[c.source])
        judged = set(res["judged"])
        flagged_decisive = {k for k, n in res["flagged_reps"].items() if n >= (res["reps_needed"] or 1)}
        good_rep_flags = {}
        if res["rules"]:
            for r in res["rules"]["per_rep"]:
                if r["index"] in judged:
                    for e in r["errors"]:
                        good_rep_flags[e["name"]] = good_rep_flags.get(e["name"], 0) + 1
        out.append({"source": c.source, "group": c.group, "clip": c.name, "label": c.label, "error": c.error,
                    "view": v, "reps": res["reps"].count, "judged_reps": len(judged),
                    "verdict": res["verdict"], "form_score": res["form_score"],
                    "decisive": sorted(flagged_decisive), "rep_flags": good_rep_flags,
                    "checked": (res["rules"] or {}).get("checked", []),
                    "style": (res["style"] or {}).get("style"), "reason": res["verdict_reason"]})
    return out


def baseline_verdicts(rev: str, clips, views) -> list[dict] | None:
    """Today's (rev's) rules on the same poses: run that commit's analyze_pose in a worktree."""
    tmp = Path(tempfile.mkdtemp(prefix="baseline_"))
    wt = tmp / "code"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(wt), rev], check=True)
    try:
        poses = tmp / "poses"
        poses.mkdir()
        items = []
        from deadlift_utils.pose import save_pose_json

        for k, (c, v) in enumerate(zip(clips, views)):
            p = poses / f"{k}.json"
            save_pose_json(c.seq, p)
            items.append({"pose": str(p), "view": v})
        (tmp / "items.json").write_text(json.dumps(items))
        code = (
            "import json,sys\n"
            "from deadlift_utils.pose import load_pose_json\n"
            "from deadlift_utils.analyze import analyze_pose\n"
            "items=json.load(open(sys.argv[1])); out=[]\n"
            "for it in items:\n"
            "    r=analyze_pose(load_pose_json(it['pose']), view=it['view'], use_openai=False)\n"
            "    flags={}\n"
            "    for rep in r['reps']:\n"
            "        for e in rep['errors']: flags[e['name']]=flags.get(e['name'],0)+1\n"
            "    need=(r.get('evidence') or {}).get('reps_needed_to_call_bad') or 1\n"
            "    out.append({'verdict':r['verdict'],'reps':len(r['reps']),'rep_flags':flags,"
            "'decisive':sorted(k for k,n in flags.items() if n>=need),"
            "'score': (max(flags.values())/max(len(r['reps']),1)) if flags else 0.0})\n"
            "json.dump(out, open(sys.argv[2],'w'))\n")
        env = dict(os.environ, PYTHONPATH=str(wt))
        subprocess.run([sys.executable, "-c", code, str(tmp / "items.json"), str(tmp / "out.json")],
                       check=True, env=env, cwd=str(wt))
        res = json.loads((tmp / "out.json").read_text())
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(wt)], check=False)
    out = []
    for c, v, r in zip(clips, views, res):
        out.append({"source": c.source, "group": c.group, "clip": c.name, "label": c.label, "error": c.error,
                    "view": v, "reps": r["reps"], "judged_reps": r["reps"], "verdict": r["verdict"],
                    "form_score": r["score"], "decisive": r["decisive"], "rep_flags": r["rep_flags"]})
    return out


def summarise(results: list[dict], sources=SOURCES) -> tuple[list[dict], dict, dict]:
    """Per-source rows, per-error recall, per-rule false-alarm rate on good reps."""
    rows = []
    for s in list(sources) + ["overall"]:
        rs = [r for r in results if s == "overall" or r["source"] == s]
        full = [r for r in rs if r["reps"] > 0]
        right = sum(1 for r in full if r["verdict"] == r["label"])
        unknown = sum(1 for r in full if r["verdict"] == "unknown")
        good = [r for r in full if r["label"] == "good"]
        bad = [r for r in full if r["label"] == "bad"]
        a = auc([1 if r["label"] == "bad" else 0 for r in full],
                [np.nan if r["form_score"] is None else r["form_score"] for r in full])
        rows.append({"source": s, "clips": len(rs), "full_rep_clips": len(full), "right": right,
                     "accuracy": right / len(full) if full else None, "unknown": unknown,
                     "good_right": sum(1 for r in good if r["verdict"] == "good"), "good": len(good),
                     "bad_right": sum(1 for r in bad if r["verdict"] == "bad"), "bad": len(bad), "auc": a})
    recall = {}
    for r in results:
        if r["label"] != "bad" or not r["error"] or r["reps"] == 0:
            continue
        want = ERROR_RULES.get(r["error"])
        found = bool(set(r["decisive"]) & want) if want else r["verdict"] == "bad"
        key = r["error"]
        d = recall.setdefault(key, {"clips": 0, "found": 0, "sources": set()})
        d["clips"] += 1
        d["found"] += int(found)
        d["sources"].add(r["source"])
    fa = {}
    good_reps = sum(r["judged_reps"] for r in results if r["label"] == "good")
    for r in results:
        if r["label"] == "good":
            for k, n in r["rep_flags"].items():
                fa[k] = fa.get(k, 0) + n
    return rows, recall, {"good_reps": good_reps, "flags": fa}


def table_md(rows, recall, fa) -> list[str]:
    L = ["| source | clips (with a full rep) | verdict right | good right | bad right | unknown | set-score ROC AUC |",
         "|---|---|---|---|---|---|---|"]
    for r in rows:
        acc = "-" if r["accuracy"] is None else f"{r['right']}/{r['full_rep_clips']} ({r['accuracy']:.0%})"
        a = "-" if r["auc"] is None else f"{r['auc']:.2f}"
        name = f"**{r['source']}**" if r["source"] == "overall" else r["source"]
        L.append(f"| {name} | {r['clips']} ({r['full_rep_clips']}) | {acc} | {r['good_right']}/{r['good']} | "
                 f"{r['bad_right']}/{r['bad']} | {r['unknown']} | {a} |")
    L += ["", "| labelled error | clips | found | recall | sources |", "|---|---|---|---|---|"]
    for k, d in sorted(recall.items()):
        L.append(f"| {k} | {d['clips']} | {d['found']} | {d['found'] / d['clips']:.0%} | {', '.join(sorted(d['sources']))} |")
    L += ["", f"False alarms on judged good reps ({fa['good_reps']} reps):", "",
          "| rule | good reps flagged | rate |", "|---|---|---|"]
    for k, n in sorted(fa["flags"].items(), key=lambda kv: -kv[1]):
        L.append(f"| {k} | {n} | {n / max(fa['good_reps'], 1):.1%} |")
    return L


def norms_table(norms: dict) -> list[str]:
    from deadlift_utils.rules import EXTRA_NORMS, RULES_BY_NAME

    L = ["| rule | view | threshold | flag when | good median (p25-p75) | good reps (clips) | per-source good medians |",
         "|---|---|---|---|---|---|---|"]
    for name, views in norms["rules"].items():
        r = RULES_BY_NAME[EXTRA_NORMS[name][0] if name in EXTRA_NORMS else name]
        for view, n in views.items():
            src = ", ".join(f"{s} {v:g}" for s, v in n["sources"].items())
            L.append(f"| {name} | {view} | {n['threshold']:g} {r.units} (P{n['percentile']:g}) | {r.direction} | "
                     f"{n['median']:g} ({n['p25']:g}-{n['p75']:g}) | {n['n_reps']} ({n['n_clips']}) | {src} |")
    return L


def disagreement(norms: dict) -> list[str]:
    """Rules whose per-source good medians differ by more than the pooled interquartile range."""
    out = []
    for name, views in norms["rules"].items():
        for view, n in views.items():
            if len(n["sources"]) < 2:
                continue
            meds = list(n["sources"].values())
            iqr = max(n["p75"] - n["p25"], 1e-9)
            spread = max(meds) - min(meds)
            if spread > iqr:
                lo = min(n["sources"], key=n["sources"].get)
                hi = max(n["sources"], key=n["sources"].get)
                out.append(f"- `{name}` ({view}): good medians range {min(meds):g} ({lo}) to {max(meds):g} ({hi}), "
                           f"wider than the pooled interquartile range {n['p25']:g}-{n['p75']:g}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=str(config.SHARED_DATA_DIR))
    ap.add_argument("--cache-dir", default=str(config.OUTPUTS_DIR / "cache" / "eval_poses"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "form_results.md"))
    ap.add_argument("--baseline", default=None, help="a git revision whose rules to score beside (e.g. e92579f)")
    ap.add_argument("--no-save-norms", action="store_true", help="do not rewrite deadlift_utils/norms.json")
    args = ap.parse_args(argv)

    from deadlift_utils.config import describe_machine
    from deadlift_utils.form import measure_clip
    from deadlift_utils.norms import fit_joint_norms, fit_norms, save_norms
    from deadlift_utils.sources import load_clips
    from deadlift_utils.view import predict_view

    t0 = time.time()
    clips = load_clips(args.data_dir, args.cache_dir)
    t_load = time.time() - t0
    print(f"{len(clips)} clips loaded in {t_load:.0f} s")
    measured = [measure_clip(c.seq, c.view) for c in clips]
    rows = rows_for_norms(clips, measured)
    norms_all = fit_norms(rows)
    norms_all["joints"] = fit_joint_norms(rows)
    if not args.no_save_norms:
        save_norms(norms_all)
    views = [predict_view(c.seq)["view"] for c in clips]
    loso = {s: dict(fit_norms(rows, exclude_sources=[s]), joints=fit_joint_norms(rows, exclude_sources=[s]))
            for s in SOURCES}
    results = judge_all(clips, views, loso)
    in_sample = judge_all(clips, views, {s: norms_all for s in SOURCES})
    base = baseline_verdicts(args.baseline, clips, views) if args.baseline else None

    rows_l, rec_l, fa_l = summarise(results)
    rows_i, rec_i, fa_i = summarise(in_sample)
    L = ["# Form verdicts: good-form norms and leave-one-source-out evaluation", "",
         f"Written by `python scripts/evaluate_form.py{' --baseline ' + args.baseline if args.baseline else ''}` "
         f"on {time.strftime('%Y-%m-%d')}, {describe_machine()}. {len(clips)} clips from {len(SOURCES)} sources; "
         f"videos extracted as `analyze` does (BlazePose full, frame stride 2, shot cuts, segmentation mask).", "",
         "How a clip is judged: `deadlift_utils/form.py` (trusted frames -> reps -> lift style -> rules with "
         "the good-form norms -> per-rep margins -> `form_score`, verdict bad when form_score >= 1). "
         "The view is predicted from the pose, as `analyze` does.", "",
         "## Leave-one-source-out (the honest figure)", "",
         "Norms refitted without the source, then every clip of the source judged.", ""]
    L += table_md(rows_l, rec_l, fa_l)
    if base:
        rows_b, rec_b, fa_b = summarise(base)
        L += ["", f"## Beside it: the rules of {args.baseline} (thresholds set by eye), same poses, same views", "",
              "Its set score for the AUC is the share of reps flagged by the most frequent rule.", ""]
        L += table_md(rows_b, rec_b, fa_b)
    L += ["", "## In-sample (norms fitted on all sources; for comparison only)", ""]
    L += table_md(rows_i, rec_i, fa_i)
    L += ["", f"## The good-form norms (`deadlift_utils/norms.json`, all sources, {norms_all['percentile']:g}th "
              f"percentile on the flagged side)", ""]
    L += norms_table(norms_all)
    dis = disagreement(norms_all)
    L += ["", "### Where sources disagree on the good-form range", ""]
    L += dis or ["- none: every rule's per-source good medians lie within the pooled interquartile range"]
    L += ["", "## Per clip (leave-one-source-out)", "",
          "| source | group | clip | label | error | view (pred.) | reps (judged) | style | verdict | form_score | decisive rules |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        sc = "-" if r["form_score"] is None else f"{r['form_score']:.2f}"
        L.append(f"| {r['source']} | {r['group']} | {r['clip']} | {r['label']} | {r['error'] or '-'} | {r['view']} | "
                 f"{r['reps']} ({r['judged_reps']}) | {r['style'] or '-'} | {r['verdict']} | {sc} | "
                 f"{', '.join(r['decisive']) or '-'} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(L) + "\n")
    for r in rows_l:
        acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.0%}"
        a = "-" if r["auc"] is None else f"{r['auc']:.2f}"
        print(f"LOSO {r['source']:20s} verdict {r['right']}/{r['full_rep_clips']} ({acc})  AUC {a}  unknown {r['unknown']}")
    for k, d in sorted(rec_l.items()):
        print(f"  recall {k:16s} {d['found']}/{d['clips']}")
    for k, n in sorted(fa_l["flags"].items(), key=lambda kv: -kv[1]):
        print(f"  false alarms {k:18s} {n}/{fa_l['good_reps']} good reps")
    print(f"wrote {args.out}; {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
