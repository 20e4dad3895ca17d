"""Analyse a new video: reps, named errors, deviations with direction, verdict, coaching.

    pose (extract, with shot cuts and the back's outline) -> quality + view
      -> form.judge_form: trusted frames -> reps -> lift style -> rules with good-form norms
      -> [classifier P(good) per frame] -> [deviation model per joint] -> verdict -> coaching

`analyze_pose(seq, ...)` does the analysis of a PoseSequence and returns the report dict;
`analyze_video(video_path, out_dir, ...)` extracts the pose and writes the report files
(report.py: JSON, HTML with stills of each finding, plots, annotated video) into out_dir.
The command line (`python -m deadlift_utils analyze VIDEO --out DIR`) is cli.cmd_analyze.

How the verdict is decided (the report's "decided_by" says which applied):
  1. "unknown" when the pose cannot support a judgement: too few frames, no person, the view
     cannot be told, no complete pull was seen, or no rep had enough trusted frames.
  2. The named-error rules decide (form.py): each rule's threshold is the edge of the
     good-form range learned from every shared source (norms.py); "bad" when one error is
     flagged in at least 30% of the judged reps, i.e. when the set's `form_score` >= 1.
     form_score: 0 = the good-form median, 1 = the edge of the good-form range, capped at 3.
  3. The per-frame classifier (optional) is reported beside the rules. It can only turn a
     rules-"good" into "bad" when the pose comes from the backend it was trained on
     (OpenPose): a classifier trained on the study's OpenPose data judged other sources'
     clips no better than chance (the training issue's "transfer trap").
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .report import finish_report, render_html, write_report  # noqa: F401  (the report's writers live in report.py)
from .reps import PHASES
from .form import MIN_REP_CONFIDENCE, judge_form
from .norms import load_norms
from .view import VIEWS, predict_view

MIN_FRAMES = 5                 # sampled frames needed to follow a lift at all
CLASSIFIER_GOOD_FRACTION = 0.6  # the study's video rule: good when >= 60% of frames are good
CLASSIFIER_TRUSTED_BACKENDS = ("openpose",)
REPORT_SCHEMA = "deadlift-analysis/1"


# ----------------------------------------------------------------------------- helpers

def _unknown(reason: str, **extra) -> dict:
    return {"verdict": "unknown", "verdict_reason": reason, "decided_by": "pose quality", **extra}


def pose_quality(seq) -> dict:
    """{frames, detection_rate, mean_confidence, flags, ok, reason} for a PoseSequence.

    Only a pose that cannot be followed at all stops the analysis here (too few frames, no
    person); a lifter partly hidden (a plate over the ankle, an overlay) is judged on the
    frames and reps that can be measured (form.py), not refused as a whole.
    """
    from .quality import assess

    q = assess(seq)
    out = {"frames": len(seq), "detection_rate": q.detection_rate, "mean_confidence": q.mean_confidence,
           "flags": list(q.flags), "ok": True, "reason": None}
    if len(seq) < MIN_FRAMES:
        out.update(ok=False, reason=f"the video is too short to judge ({len(seq)} sampled frame"
                                    f"{'s' if len(seq) != 1 else ''}; need at least {MIN_FRAMES})")
    elif not seq.present.any():
        out.update(ok=False, reason="no person was found in the video")
    return out


def _load_optional(kind: str, model_dir):
    """(model, note) for the classifier or deviation model; model None with a note when absent."""
    if not model_dir:
        return None, f"no {kind} folder given; verdict from the named-error rules only" if kind == "classifier" \
            else f"no {kind} folder given; deviations skipped"
    try:
        if kind == "classifier":
            from .models import load_classifier as loader
        else:
            from .deviation import load_deviation_model as loader
    except ImportError as e:
        return None, f"{kind} code not available ({e}); skipped"
    try:
        return loader(model_dir), None
    except (FileNotFoundError, ValueError, OSError, ImportError) as e:
        return None, f"{kind} not loaded: {e}"


# ----------------------------------------------------------------------------- analysis

def analyze_pose(seq, view: str | None = None, classifier=None, deviation_model=None,
                 classifier_dir=None, deviation_dir=None, openai_model: str = "gpt-4o-mini",
                 feedback_client=None, use_openai: bool = True, cache_path=None,
                 use_world: bool = True, video: str | None = None, norms: dict | None = None) -> dict:
    """Analyse a PoseSequence and return the report dict (see the module docstring).

    norms: good-form norms (default: the packaged deadlift_utils/norms.json). The tracked bar
    is read from the pose's "bar" field (else the wrists stand in).
    view: "front"/"middle"/"side" or None to predict it from the pose. classifier /
    deviation_model: loaded objects, or give classifier_dir / deviation_dir to load them
    (missing ones are skipped with a note). feedback_client: OpenAI-like client (tests pass
    a fake); use_openai=False forces the offline coaching text. cache_path: feedback cache.
    The report has at least: video, view, verdict, good_frame_fraction, reps, deviations,
    feedback; plus verdict_reason, decided_by, evidence, quality, rules, notes, timing.
    The private key "_internal" holds arrays for plotting (dropped when written to JSON).
    """
    t0 = time.perf_counter()
    notes: list[str] = []
    report: dict = {"schema": REPORT_SCHEMA, "video": video or seq.video or seq.source_path,
                    "pose_backend": seq.backend, "fps": seq.fps, "frame_stride": seq.frame_stride,
                    "duration_s": float(seq.time_s[-1] - seq.time_s[0]) if len(seq) else 0.0}
    quality = pose_quality(seq)
    report["quality"] = quality

    # View: the user's, else predicted.
    if view is not None and view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS} or None, got {view!r}")
    vp = predict_view(seq) if len(seq) else {"view": "unknown", "yaw_deg": None, "method": None,
                                              "reason": "no frames"}
    report["view_prediction"] = vp
    report["view"] = view or vp["view"]
    report["view_source"] = "user" if view else "predicted"

    report.update({"verdict": None, "verdict_reason": None, "decided_by": None,
                   "good_frame_fraction": None, "good_frame_fraction_source": None,
                   "form_score": None, "style": None, "frame_trust": None,
                   "reps": [], "deviations": [], "rules": {}, "classifier": None, "evidence": {}})
    # Trusted frames -> reps -> style -> rules with the good-form norms -> scores (form.py).
    internal = {"seq": seq}
    report["_internal"] = internal
    form = None
    if not quality["ok"]:
        report.update(_unknown(quality["reason"]))
    elif report["view"] not in VIEWS:
        report.update(_unknown(f"the camera view could not be told from the pose ({vp.get('reason')}); "
                               f"pass the view (front/middle/side)", decided_by="view"))
    if quality["ok"]:
        form = judge_form(seq, report["view"] if report["view"] in VIEWS else "unknown", norms=norms,
                          use_world=use_world)
        internal.update(reps=form["reps"], signals=form["signals"], trust=form["trust"], form=form)
        report["frame_trust"] = form["trust"].summary(seq.time_s)
        if report["view"] in VIEWS:
            report.update(verdict=form["verdict"], verdict_reason=form["verdict_reason"],
                          decided_by="rules" if form["verdict"] != "unknown" else (
                              "rep segmentation" if form["reps"].count == 0 else "frame trust"),
                          form_score=form["form_score"], style=form["style"])
            if form["rules"]:
                rr = form["rules"]
                report["rules"] = {"method": rr["method"], "checked": rr["checked"], "not_checked": rr["not_checked"],
                                   "definitions": rr["rules"], "side_used": rr["chain"], "bar_source": rr["bar_source"],
                                   "norms": "good-form norms (deadlift_utils/norms.json)" if (norms or load_norms())
                                   else "no norms file: fallback thresholds"}
    reps_res = form["reps"] if form is not None else None
    judge = bool(form is not None and form["verdict"] in ("good", "bad"))
    report["bar"] = None
    if reps_res is not None and reps_res.count and "bar" in (seq.frame_extras or {}):
        from .bar import bar_summary

        report["bar"] = bar_summary(seq, reps_res.reps, report["view"])
        src = (report.get("rules") or {}).get("bar_source")
        if src == "wrists":
            report["bar"]["notes"].append(
                "the bar_drift verdict judges the hands (wrists), with the bar's own drift beside them in the "
                "rule's evidence: judged on the bar, the verdicts were no better on other people's clips "
                "(its good-form range rests on 13 good reps of two sources)")
        elif src:
            report["bar"]["notes"].append(
                f"the bar_drift rule measured the {src} (the bar: how far the plate moves forward of the "
                "closest-in point it had reached since lift-off, where it was tracked from lift-off, against a "
                "good-form range learned from bar-tracked good reps; else the hands, ahead of the ankles)")

    classifier, probs, clf_summary = _score_with_classifier(seq, classifier, classifier_dir, notes)
    internal["probs"] = probs
    report["classifier"] = clf_summary
    report["models"] = {"classifier": str(classifier_dir) if classifier_dir and classifier is not None else
                        ("given as an object" if classifier is not None else None),
                        "deviation": str(deviation_dir) if deviation_dir else
                        ("given as an object" if deviation_model is not None else None)}

    _learned_deviations(report, seq, reps_res, deviation_model, deviation_dir, judge, notes)

    rep_of = _rep_entries(report, form, judge, probs)
    if judge:
        report["evidence"] = {"rules_flagged_reps": form["flagged_reps"], "reps_needed_to_call_bad": form["reps_needed"],
                              "rules_checked": form["rules"]["checked"], "set_margins": form["set_margins"],
                              "classifier": clf_summary}
        report["deviations"] = form["joint_deviations"]
        report["deviations_source"] = ("good-form joint positions (norms.json): joints outside the good-form "
                                       "spread for this view and moment of the rep")
        if clf_summary and clf_summary["verdict"] == "bad" and clf_summary["trusted_for_this_backend"] \
                and report["verdict"] == "good":
            report.update(verdict="bad", decided_by="classifier",
                          verdict_reason=(f"the rules found no error, but the classifier judged only "
                                          f"{clf_summary['good_frame_fraction']:.0%} of frames good "
                                          f"(needs {CLASSIFIER_GOOD_FRACTION:.0%})"))
        if clf_summary:
            report["evidence"]["classifier_agrees"] = clf_summary["verdict"] == report["verdict"]
        if clf_summary:
            report["good_frame_fraction"] = clf_summary["good_frame_fraction"]
            report["good_frame_fraction_source"] = "classifier"
        else:
            in_rep = rep_of > 0
            bad_reps = {e["index"] for e in report["reps"] if e["errors"]}
            good = in_rep & ~np.isin(rep_of, list(bad_reps))
            report["good_frame_fraction"] = float(good.sum() / in_rep.sum()) if in_rep.any() else None
            report["good_frame_fraction_source"] = "rules (share of rep frames in reps without errors)"

    report["notes"] = notes
    # Coaching text.
    from .feedback import generate_feedback

    report["feedback"] = generate_feedback(report, model=openai_model, client=feedback_client,
                                           cache_path=cache_path, use_openai=use_openai)
    report["timing_s"] = {"analysis": round(time.perf_counter() - t0, 3)}
    return report


def _score_with_classifier(seq, classifier, classifier_dir, notes: list):
    """(classifier, per-frame P(good) or None, summary or None); a classifier given by folder is
    loaded here (a missing or broken one becomes a note)."""
    if classifier is None and classifier_dir:
        classifier, note = _load_optional("classifier", classifier_dir)
        if note:
            notes.append(note)
    elif classifier is None:
        notes.append("no classifier given; verdict from the named-error rules only")
    probs = None
    if classifier is not None and len(seq):
        try:
            probs = np.asarray(classifier.predict_frames(seq), dtype=float)
        except (ValueError, KeyError) as e:
            notes.append(f"classifier could not score this pose ({e}); skipped")
            probs = None
    clf_summary = None
    if probs is not None and np.isfinite(probs).any():
        fin = probs[np.isfinite(probs)]
        frac = float(np.mean(fin >= 0.5))
        # A classifier shown to transfer can list more backends in its config.json.
        backends = (getattr(classifier, "config", None) or {}).get("trusted_backends", CLASSIFIER_TRUSTED_BACKENDS)
        trusted = any(str(seq.backend).lower().startswith(str(b).lower()) for b in backends)
        clf_summary = {"good_frame_fraction": frac, "mean_probability": float(fin.mean()),
                       "verdict": "good" if frac >= CLASSIFIER_GOOD_FRACTION else "bad",
                       "frames_judged": int(fin.size), "trusted_for_this_backend": trusted,
                       "note": None if trusted else
                       f"trained on OpenPose data; on {seq.backend} poses it is reported but does "
                       f"not decide (it judged other sources' clips no better than chance)"}
    return classifier, probs, clf_summary


def _learned_deviations(report: dict, seq, reps_res, deviation_model, deviation_dir, judge: bool,
                        notes: list) -> None:
    """The learned deviation model's per-joint deviations into report["model_deviations"]
    (and by phase); they are reported beside the good-form joint deviations ("deviations")
    and do not drive the coaching: on other people's clips they were noise-sized."""
    if deviation_model is None and deviation_dir:
        deviation_model, note = _load_optional("deviation", deviation_dir)
        if note:
            notes.append(note)
    elif deviation_model is None:
        notes.append("no deviation model given; the learned per-joint deviations skipped "
                     "(the good-form joint deviations are reported)")
    if deviation_model is not None and judge:
        mask = np.zeros(len(seq), dtype=bool)
        for r in reps_res.reps:
            mask |= r.phase_mask(len(seq), "pull") | r.phase_mask(len(seq), "lockout")
        try:
            devs = deviation_model.summarise(seq, frame_mask=mask)
            report["model_deviations"] = [dict(d) for d in devs]
            report["model_deviations_frames"] = "pull and lockout phases of every rep"
            by_phase = {}
            for ph in PHASES:
                m = np.zeros(len(seq), dtype=bool)
                for r in reps_res.reps:
                    m |= r.phase_mask(len(seq), ph)
                if m.any():
                    by_phase[ph] = [dict(d) for d in deviation_model.summarise(seq, frame_mask=m)]
            report["model_deviations_by_phase"] = by_phase
        except (ValueError, KeyError) as e:
            notes.append(f"deviation model could not score this pose ({e}); skipped")


def _rep_entries(report: dict, form, judge: bool, probs) -> np.ndarray | None:
    """Append one entry per counted rep to report["reps"] (judged or not, with its confidence);
    returns the rep number of every sample (None without reps)."""
    reps_res = form["reps"] if form is not None else None
    rep_of = None
    if reps_res is not None and reps_res.count:
        rep_of = reps_res.rep_of_sample()
        per_rep = {r["index"]: r for r in ((form.get("rules") or {}).get("per_rep") or [])}
        judged = set(form["judged"])
        for r in reps_res.reps:
            rr = per_rep.get(r.index)
            ok = judge and r.index in judged and rr is not None
            entry = {"index": r.index, "start_s": r.start_s, "end_s": r.end_s,
                     "verdict": ("bad" if rr["errors"] else "good") if ok else "unknown",
                     "confidence": round(form["rep_confidence"].get(r.index, 0.0), 2),
                     "judged": bool(ok), "score": rr["score"] if ok else None,
                     "errors": [{"name": e["name"], "description": e["description"], "time_s": e["time_s"],
                                 "evidence": e["evidence"], "severity": e["severity"]} for e in rr["errors"]] if ok else [],
                     "phases": {k: list(v) for k, v in r.phases.items()}, "complete": r.complete,
                     "measurements": rr["measurements"] if rr else {}, "margins": rr["margins"] if ok else {}}
            if not ok and report["verdict"] in ("good", "bad"):
                entry["why_not_judged"] = (f"only {form['rep_confidence'].get(r.index, 0.0):.0%} of its frames "
                                           f"could be trusted (need {MIN_REP_CONFIDENCE:.0%})")
            if probs is not None:
                p = probs[rep_of == r.index]
                p = p[np.isfinite(p)]
                entry["classifier_good_fraction"] = float(np.mean(p >= 0.5)) if p.size else None
            report["reps"].append(entry)
    return rep_of


def analyze_video(video_path, out_dir, frame_stride: int = 2, view: str | None = None,
                  classifier_dir=None, deviation_dir=None, openai_model: str = "gpt-4o-mini",
                  feedback_client=None, use_openai: bool = True, write_video: bool = True,
                  smoothing_window: int = 5, backend: str = "blazepose", model_variant: str = "full",
                  progress: bool = False) -> dict:
    """Extract the pose of `video_path`, analyse it and write the outputs into `out_dir`.

    Raises FileNotFoundError for a missing video and ValueError (naming the file and the fix)
    for a file that is not a readable video; a video without a person, or too short to
    judge, gives a report with verdict "unknown" and the reason. Returns the report dict
    (without the plotting internals) with report["files"] naming what was written.
    """
    from .extract import analysis_frame_analyzers, extract_video

    video_path, out_dir = Path(video_path), Path(out_dir)
    if not video_path.exists():
        raise FileNotFoundError(f"{video_path}: no such video. Check the path (and the video_path parameter).")
    t0 = time.perf_counter()
    # The sampled frames, scaled down, kept for the annotated video (no second full-size decode).
    small = out_dir / "poses" / f".{video_path.stem}.frames" if write_video else None
    try:
        res = extract_video(video_path, out_dir / "poses", frame_stride=frame_stride,
                            smoothing_window=smoothing_window, backend=backend, model_variant=model_variant,
                            write_videos=False, progress=progress, frames_path=small,
                            frame_analyzers=analysis_frame_analyzers(spine=backend == "blazepose"))
        t1 = time.perf_counter()
        report = analyze_pose(res.sequence, view=view, classifier_dir=classifier_dir, deviation_dir=deviation_dir,
                              openai_model=openai_model, feedback_client=feedback_client, use_openai=use_openai,
                              cache_path=out_dir / "feedback_cache.json", video=str(video_path))
        finish_report(report, out_dir, video_path.stem, video_path, frame_stride, res.pose_path,
                      pose_seconds=t1 - t0, started=t1, write_video=write_video,
                      frames_video=None if res.skipped else small)
    finally:
        if small is not None:
            small.unlink(missing_ok=True)
    report.pop("_internal", None)
    return report


def load_or_extract_pose(video_path, pose_dirs=(), cache_dir=None, frame_stride: int = 5,
                         relative_to=None):
    """The PoseSequence of a video: from `<pose_dir>/<relative path>.json` in the first of
    `pose_dirs` that has it, else extracted (BlazePose) into `cache_dir` (reused next time).

    relative_to: the folder the relative path is taken from (default: the video's folder,
    so `<pose_dir>/<stem>.json`). Used by the benchmark and the tests, which read the shared
    pose files when another stage has made them and extract otherwise.
    """
    from .extract import analysis_frame_analyzers, extract_video
    from .pose import load_pose_json

    video_path = Path(video_path)
    rel = video_path.relative_to(relative_to) if relative_to else Path(video_path.name)
    for d in pose_dirs:
        cand = Path(d) / rel.with_suffix(".json")
        if cand.is_file():
            return load_pose_json(cand)
    if cache_dir is None:
        raise FileNotFoundError(f"{video_path}: no pose file under {', '.join(map(str, pose_dirs)) or '(none)'} "
                                f"and no cache_dir to extract into; run python -m deadlift_utils extract first")
    out = Path(cache_dir) / rel.parent
    return extract_video(video_path, out, frame_stride=frame_stride, write_videos=False,
                         frame_analyzers=analysis_frame_analyzers()).sequence


def latest_trained_models(runs_dir=None) -> dict:
    """{"classifier": folder or None, "deviation": folder or None, "run": run id or None}: the
    models of the newest run under outputs/runs/ (where `make demo` and notebooks 03/04 save
    them as <run>/classifier and <run>/deviation) whose folders hold a complete saved model."""
    from .config import RUNS_DIR
    from .models import check_model_folder

    runs_dir = Path(runs_dir or RUNS_DIR)
    out = {"classifier": None, "deviation": None, "run": None}
    if not runs_dir.is_dir():
        return out
    runs = sorted((p for p in runs_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for run in runs:
        found = {}
        for kind, what in (("classifier", "classifier"), ("deviation", "deviation model")):
            try:
                check_model_folder(run / kind, what)
                found[kind] = run / kind
            except (FileNotFoundError, ValueError):
                pass
        if found:
            out.update(found, run=run.name)
            return out
    return out
