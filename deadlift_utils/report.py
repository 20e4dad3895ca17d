"""What a lifter reads: the analysis report as JSON, HTML, stills, plots and an annotated video.

`write_report(report, out_dir, stem, video_path)` writes, in out_dir:
  <stem>_report.json   the report (schema deadlift-analysis/1), numbers as measured
  <stem>_report.html   the verdict and the one to three findings that matter first, each with a
                       still of the moment (skeleton + what was measured drawn on it) and the
                       advice; then rep by rep; the details (plots, all measurements, dropped
                       frames, notes) folded below
  <stem>_finding_<rule>.png   those stills
  <stem>_angles.png, <stem>_margins.png, <stem>_deviations.png, <stem>_bar_speed.png
  <stem>_annotated.mp4  the sampled frames with skeleton, bar path, rep, phase, verdict, findings
The analysis itself is analyze.py / form.py; nothing here changes a verdict.
"""
from __future__ import annotations

import base64
import html
import json
import math
import time
from pathlib import Path

import numpy as np

from .io_utils import atomic_write_text, save_figure, to_jsonable

MAX_FINDINGS = 3


def _jsonable(obj):
    """The report as plain JSON types, floats rounded to 4 digits (io_utils.to_jsonable)."""
    return to_jsonable(obj, digits=4)


def fmt(value, units: str = "") -> str:
    """A measurement rounded to what it supports: angles to the degree, ratios to 0.01, small
    lengths in torso lengths to 0.01 (0.001 under 0.1), seconds to 0.1."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    v = float(value)
    if units == "deg":
        return f"{v:.0f}°"
    if units == "s":
        return f"{v:.1f} s"
    if units == "torso lengths":
        return f"{v:.3f} torso lengths" if abs(v) < 0.1 else f"{v:.2f} torso lengths"
    if units == "ratio":
        return f"{v:.2f}"
    return f"{v:.2f}{(' ' + units) if units else ''}"


def _save_fig(fig, path: Path, dpi: int = 90) -> Path:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path, dpi)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


# ----------------------------------------------------------------------------- findings

def findings(report: dict, limit: int = MAX_FINDINGS) -> list[dict]:
    """The named errors of the set, worst first: [{"name", "description", "reps", "advice",
    "evidence" (the worst rep's), "time_s", "severity"}]."""
    from .feedback import summarise_findings

    out = []
    for e in summarise_findings(report)["errors"][:limit]:
        ev = e.get("example_evidence") or {}
        t = None
        for rep in report.get("reps", []):
            for x in rep.get("errors", []):
                if x["name"] == e["name"] and x.get("evidence") == ev:
                    t = x.get("time_s")
        out.append({**e, "evidence": ev, "time_s": t})
    return out


def _sample_at(seq, time_s: float | None, reps_res=None) -> int | None:
    if time_s is None or seq is None or not len(seq):
        return None
    return int(np.argmin(np.abs(np.asarray(seq.time_s) - float(time_s))))


def _read_frame(video_path, frame_index: int):
    import cv2

    from .video import open_capture

    cap = open_capture(video_path)
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(frame_index))
        ok, frame = cap.read()
    finally:
        cap.release()
    return frame if ok else None


def draw_measurement(frame: np.ndarray, seq, k: int, rule: str, evidence: dict) -> np.ndarray:
    """Draw the skeleton and what `rule` measured at sample k onto a full-size frame."""
    import cv2

    from .drawing import draw_skeleton
    from .keypoints import KP

    kp = np.asarray(seq.keypoints_xy[k], dtype=float)
    h, w = frame.shape[:2]
    t = max(2, round(min(h, w) / 150))
    draw_skeleton(frame, kp, thickness=max(1, t // 2))
    yellow = (0, 230, 255)

    def pt(name):
        p = kp[KP[name]]
        return None if not np.isfinite(p).all() else (int(p[0]), int(p[1]))

    def mean_pt(a, b):
        pa, pb = pt(a), pt(b)
        if pa and pb:
            return ((pa[0] + pb[0]) // 2, (pa[1] + pb[1]) // 2)
        return pa or pb

    def line(p, q, colour=yellow):
        if p and q:
            cv2.line(frame, p, q, colour, t, cv2.LINE_AA)

    sh, hip = mean_pt("r_shoulder", "l_shoulder"), mean_pt("r_hip", "l_hip")
    knee, ankle = mean_pt("r_knee", "l_knee"), mean_pt("r_ankle", "l_ankle")
    wrist = mean_pt("r_wrist", "l_wrist")
    spine = ((getattr(seq, "frame_extras", None) or {}).get("spine") or [None] * len(seq))[k]
    if rule in ("rounded_back", "overextension") and spine and spine.get("contour"):
        c = np.round(np.asarray(spine["contour"], dtype=float)).astype(np.int32)
        cv2.polylines(frame, [c], False, yellow, t, cv2.LINE_AA)
        if spine.get("chord"):
            a, b = (tuple(int(v) for v in p) for p in spine["chord"])
            cv2.line(frame, a, b, (255, 255, 255), max(1, t // 2), cv2.LINE_AA)
    elif rule == "knee_dominant":
        line(hip, sh)
        if hip:
            line(hip, (hip[0], hip[1] - int(abs((sh or hip)[1] - hip[1]) + 40)), (255, 255, 255))
    elif rule == "hips_too_low":
        line(hip, knee)
        line(knee, ankle)
    elif rule in ("incomplete_lockout", "leaning_back"):
        line(sh, hip)
        line(hip, knee)
    elif rule == "bar_drift" and evidence.get("source") == "bar":
        # The bar itself, as rules.metric_bar_drift_plate measures it: its path so far, a
        # vertical through the closest-in point it reached after leaving the floor (its lowest
        # point so far) and the distance from there forward to where it is now.
        from .bar import bar_positions, draw_bar_path
        from .rules import facing_sign

        draw_bar_path(frame, seq, k)
        xy = bar_positions(seq)[0][:k + 1]
        ok = np.flatnonzero(np.isfinite(xy[:, 0]))
        if len(ok) and np.isfinite(xy[k, 0]):
            since = ok[ok >= ok[np.argmax(xy[ok, 1])]]          # from the lowest point on
            ahead = facing_sign(np.asarray(seq.keypoints_xy, dtype=float)) * xy[since, 0]
            x0 = int(xy[since[np.argmin(ahead)], 0])
            now = (int(xy[k, 0]), int(xy[k, 1]))
            cv2.line(frame, (x0, 0), (x0, h), yellow, max(1, t // 2), cv2.LINE_AA)
            line((x0, now[1]), now)
    elif rule == "bar_drift":
        for p in (wrist, ankle):
            if p:
                cv2.line(frame, (p[0], 0), (p[0], h), yellow, max(1, t // 2), cv2.LINE_AA)
    elif rule == "hips_first":
        for p in (sh, hip):
            if p:
                cv2.circle(frame, p, 3 * t, yellow, t, cv2.LINE_AA)
    elif rule == "bent_elbows":
        line(mean_pt("r_shoulder", "l_shoulder"), mean_pt("r_elbow", "l_elbow"))
        line(mean_pt("r_elbow", "l_elbow"), wrist)
    return frame


def _crop_to_lifter(frame: np.ndarray, kp: np.ndarray, max_height: int = 420, extra=None) -> np.ndarray:
    import cv2

    h, w = frame.shape[:2]
    if extra is not None and len(extra):
        kp = np.vstack([kp[:, :2], np.asarray(extra, dtype=float)[:, :2]])
    ok = np.isfinite(kp[:, 0])
    if ok.sum() >= 3:
        x0, y0 = kp[ok].min(axis=0)
        x1, y1 = kp[ok].max(axis=0)
        pad = 0.35 * max(x1 - x0, y1 - y0)
        x0, x1 = int(max(0, x0 - pad)), int(min(w, x1 + pad))
        y0, y1 = int(max(0, y0 - pad)), int(min(h, y1 + pad))
        if x1 - x0 > 20 and y1 - y0 > 20:
            frame = frame[y0:y1, x0:x1]
    s = min(1.0, max_height / frame.shape[0])
    if s < 1.0:
        frame = cv2.resize(frame, (int(frame.shape[1] * s), int(frame.shape[0] * s)), interpolation=cv2.INTER_AREA)
    return frame


def _caption(img: np.ndarray, text: str) -> np.ndarray:
    """The image with a dark band below it holding `text`."""
    import cv2

    h, w = img.shape[:2]
    scale = 0.6
    while scale > 0.3 and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > w - 16:
        scale -= 0.05
    band = np.zeros((int(28 * max(scale, 0.4) / 0.5), w, 3), np.uint8)
    cv2.putText(band, text, (8, band.shape[0] - 10), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 230, 255),
                max(1, int(scale * 2)), cv2.LINE_AA)
    return np.vstack([img, band])


def write_finding_stills(report: dict, video_path, out_dir: Path, stem: str) -> dict:
    """{rule: png path}: a still of each finding's worst moment, with what was measured drawn."""
    import cv2

    from .io_utils import atomic_write_bytes

    seq = (report.get("_internal") or {}).get("seq")
    out = {}
    if seq is None or video_path is None:
        return out
    for f in findings(report):
        k = _sample_at(seq, f.get("time_s"))
        if k is None:
            continue
        frame = _read_frame(video_path, int(seq.frame_index[k]))
        if frame is None:
            continue
        draw_measurement(frame, seq, k, f["name"], f["evidence"])
        spine = ((getattr(seq, "frame_extras", None) or {}).get("spine") or [None] * len(seq))[k]
        extra = spine.get("contour") if spine and f["name"] in ("rounded_back", "overextension") else None
        still = _crop_to_lifter(frame, np.asarray(seq.keypoints_xy[k], dtype=float), extra=extra)
        ev = f["evidence"]
        still = _caption(still, f"{fmt(ev.get('value'), ev.get('units', ''))} (good form "
                                f"{'>=' if ev.get('flag_when') == 'below' else '<='} "
                                f"{fmt(ev.get('threshold'), ev.get('units', ''))})".replace("°", " deg"))
        ok, buf = cv2.imencode(".png", still)
        if ok:
            p = Path(out_dir) / f"{stem}_finding_{f['name']}.png"
            atomic_write_bytes(p, buf.tobytes())
            out[f["name"]] = p
    return out


# ----------------------------------------------------------------------------- plots

def plot_angles(report: dict, path) -> Path | None:
    """Angle-over-time figure: lift signal with reps/phases, hip/knee/elbow angles, torso lean,
    the back's bulge; frames not trusted are marked."""
    it = report.get("_internal", {})
    seq, sig, reps_res = it.get("seq"), it.get("signals"), it.get("reps")
    if seq is None or sig is None or reps_res is None:
        return None
    plt = _pyplot()
    t = seq.time_s
    fig, axes = plt.subplots(3, 1, figsize=(10, 7.5), sharex=True)
    ax = axes[0]
    ax.plot(t, reps_res.signal, color="k", lw=1.5, label="shoulder height (torso lengths)")
    ax.axhline(reps_res.top_threshold, color="g", ls="--", lw=0.8, label="lockout level")
    ax.axhline(reps_res.bottom_threshold, color="r", ls="--", lw=0.8, label="floor level")
    colours = {"setup": "#dddddd", "pull": "#9ecae1", "lockout": "#a1d99b", "lowering": "#fdd0a2"}
    for r in reps_res.reps:
        for ph, (a, b) in r.phases.items():
            ax.axvspan(a, b, color=colours[ph], alpha=0.6, lw=0)
        entry = next((e for e in report["reps"] if e["index"] == r.index), None)
        mark = {"bad": "x", "good": "ok"}.get(entry["verdict"] if entry else "", "?")
        ax.text(r.top_start_s, reps_res.high, f"rep {r.index} {mark}", fontsize=8, va="bottom")
    trusted = getattr(sig, "trusted", None)
    if trusted is not None and (~trusted).any():
        ax.plot(t[~trusted], np.full((~trusted).sum(), reps_res.low), "|", color="#d62728", ms=8,
                label="frame not measured (see details)")
    ax.set_ylabel("height")
    ax.legend(loc="lower left", fontsize=7)
    ax.set_title(f"{Path(str(report.get('video') or 'pose')).name}: {reps_res.count} rep"
                 f"{'s' if reps_res.count != 1 else ''}, verdict {report['verdict']}")
    ax = axes[1]
    ax.plot(t, sig.hip_angle_deg, label="hip angle")
    ax.plot(t, sig.knee_angle_deg, label="knee angle")
    ax.plot(t, sig.elbow_angle_2d_deg, label="elbow angle (image)")
    ax.set_ylabel(f"deg ({sig.method.replace('_', ' ')})")
    ax.legend(loc="lower left", fontsize=7)
    ax = axes[2]
    ax.plot(t, sig.torso_incline_deg, label="torso lean from vertical (+ forward), deg")
    ax.set_ylabel("deg")
    ax.set_xlabel("time (s)")
    if np.isfinite(sig.spine_sagitta).any():
        ax2 = ax.twinx()
        ax2.plot(t, sig.spine_sagitta, color="#9467bd", label="back bulge (+ rounded), torso lengths")
        ax2.axhline(0, color="#9467bd", lw=0.5)
        ax2.set_ylabel("torso lengths")
        ax2.legend(loc="upper right", fontsize=7)
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    return _save_fig(fig, path)


def plot_margins(report: dict, path) -> Path | None:
    """Each checked rule's measurement per rep as its margin: 0 = the good-form median, 1 = the
    edge of the good-form range (the threshold). One row per rule, one dot per rep, so a
    one-rep clip reads as well as a set of ten."""
    reps = [r for r in report.get("reps", []) if r.get("judged")]
    rules = (report.get("rules") or {}).get("checked", [])
    if not reps or not rules:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rules) + 1.4))
    cap = 3.0
    for y, name in enumerate(rules):
        xs = [min(r["margins"].get(name, np.nan), cap) for r in reps]
        cols = ["#d62728" if any(e["name"] == name for e in r["errors"]) else "#2ca02c" for r in reps]
        ax.scatter(xs, [y] * len(xs), c=cols, s=40, zorder=3)
        if len(reps) > 1:
            for x, r in zip(xs, reps):
                if np.isfinite(x):
                    ax.annotate(str(r["index"]), (x, y), textcoords="offset points", xytext=(0, 6),
                                fontsize=6, ha="center")
    ax.axvspan(0, 1, color="#2ca02c", alpha=0.08)
    ax.axvline(1, color="k", ls="--", lw=1)
    ax.set_yticks(range(len(rules)), [r.replace("_", " ") for r in rules])
    ax.set_xlim(-0.05, cap + 0.1)
    ax.set_xlabel("distance from good form: 0 = median of good lifts, 1 = edge of their range (dots: reps)")
    ax.set_title("Each rule, each rep: inside the shaded band is within good form", fontsize=10)
    fig.tight_layout()
    return _save_fig(fig, path, dpi=80)


def plot_deviations(report: dict, path) -> Path | None:
    """Bar chart of the joints outside the good-form spread (forward / up, torso lengths)."""
    devs = report.get("deviations") or []
    if not devs:
        return None
    plt = _pyplot()
    labels = [f"{d['joint']} ({d.get('moment', '')})" for d in devs]
    dx = [d.get("dx") or 0 for d in devs]
    dy = [d.get("dy") or 0 for d in devs]
    y = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(labels) + 1.5))
    ax.barh(y - 0.2, dx, height=0.4, label="forward (+) / back (-)")
    ax.barh(y + 0.2, dy, height=0.4, label="higher (+) / lower (-)")
    ax.set_yticks(y, labels)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel(devs[0].get("units", ""))
    ax.set_title("Joints outside the good-form spread")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save_fig(fig, path)


# ----------------------------------------------------------------------------- video

def write_annotated_video(report: dict, video_path, out_path, frame_stride: int,
                          max_height: int = 720, frames_video=None) -> Path | None:
    """The sampled frames with skeleton, rep number, phase and verdict drawn on them.

    Written through video.VideoWriter (browser-playable H.264 .mp4 or VP8 .webm), playing at
    real-time speed (fps / frame_stride), scaled down to at most `max_height` pixels.
    frames_video: the sampled frames already scaled down (extract_video's `frames_path`, a
    video.FrameFile, frame k = sample k); read instead of decoding the full-size video again
    when it holds one frame per sample.
    """
    from .drawing import draw_skeleton, put_label
    from .threads import prefetch
    from .video import FrameFile, VideoWriter, iter_frames, scale_frame

    it = report.get("_internal", {})
    seq = it.get("seq")
    if seq is None or len(seq) == 0:
        return None
    reps_res = it.get("reps")
    trusted = getattr(it.get("signals"), "trusted", None)
    phase = reps_res.phase_labels() if reps_res is not None else np.full(len(seq), "", dtype=object)
    rep_of = reps_res.rep_of_sample() if reps_res is not None else np.zeros(len(seq), dtype=int)
    rep_verdict = {e["index"]: e["verdict"] for e in report.get("reps", [])}
    rep_errors = {e["index"]: ", ".join(x["name"].replace("_", " ") for x in e["errors"]) for e in report.get("reps", [])}
    fps = (seq.fps or 30.0) / max(frame_stride, 1)
    bar_track = bool((report.get("bar") or {}).get("measured"))
    trail = None
    try:
        use_small = (frames_video is not None and bool(seq.height)
                     and FrameFile.count(frames_video) == len(seq))
    except (OSError, ValueError):
        use_small = False
    if use_small:
        samples = enumerate(FrameFile.read(frames_video))
    else:
        by_frame = {int(f): k for k, f in enumerate(seq.frame_index)}
        samples = ((by_frame.get(int(index)), frame) for index, frame in iter_frames(video_path, frame_stride))
    samples = prefetch(samples, size=4)
    writer = None
    ok = False
    try:
        for k, frame in samples:
            if k is None:
                continue
            h, w = frame.shape[:2]
            if use_small:  # scaled by extract_video the same way (an odd size padded by a pixel)
                s = min(1.0, max_height / seq.height)
            else:
                s = min(1.0, max_height / h)
                if s < 1.0:
                    frame = scale_frame(frame, (int(round(w * s)), int(round(h * s))))
            if writer is None:
                writer = VideoWriter(out_path, fps, frame.shape[1], frame.shape[0])
            draw_skeleton(frame, seq.keypoints_xy[k] * s)
            if bar_track:
                if trail is None:
                    from .bar import BarTrail

                    trail = BarTrail(seq, frame.shape[1::-1], scale=s, rep_of=rep_of)
                trail.draw(frame, k)
            r = int(rep_of[k])
            put_label(frame, f"set: {report['verdict']}  view: {report['view']}  t={seq.time_s[k]:.1f}s", 0)
            if r:
                v = rep_verdict.get(r, "")
                colour = (80, 80, 255) if v == "bad" else (120, 255, 120)
                put_label(frame, f"rep {r}: {phase[k]}  {v}", 1, colour)
                if rep_errors.get(r):
                    put_label(frame, rep_errors[r], 2, (80, 80, 255))
            if trusted is not None and not trusted[k]:
                put_label(frame, "frame not measured", 3, (160, 160, 160))
            writer.write(frame)
        ok = True
    finally:
        samples.close()
        if writer is not None:
            writer.close(keep=ok)
    return Path(out_path) if writer is not None and writer.frames_written else None


def _img_tag(path: Path | None, alt: str, width: str = "100%") -> str:
    if not path or not Path(path).is_file():
        return ""
    b64 = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}" '
            f'style="max-width:{width}"><figcaption>{html.escape(alt)}</figcaption></figure>')


_CSS = ("body{font-family:system-ui,sans-serif;max-width:960px;margin:auto;padding:1em;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 8px;font-size:90%}"
        ".verdict{font-size:170%;font-weight:bold;margin:.2em 0}.sub{color:#555}"
        ".finding{display:flex;gap:1em;align-items:flex-start;border:1px solid #eee;border-radius:6px;"
        "padding:.6em;margin:.6em 0}.finding figure{margin:0;flex:0 0 auto}.finding img{max-height:300px}"
        "details{margin:1em 0}summary{cursor:pointer;font-weight:bold}")
_VERDICT_WORDS = {"good": ("Good form", "#2ca02c"), "bad": ("Needs work", "#d62728"),
                  "unknown": ("Could not judge", "#7f7f7f")}


def render_html(report: dict, files: dict) -> str:
    """A self-contained report a lifter can read: verdict and the findings that matter first."""
    e = html.escape
    name = Path(str(report.get("video"))).name
    words, colour = _VERDICT_WORDS.get(report["verdict"], (str(report["verdict"]), "#7f7f7f"))
    reps = report.get("reps", [])
    judged = sum(1 for r in reps if r.get("judged"))
    style = (report.get("style") or {}).get("style")
    sub = [f"{len(reps)} rep{'s' if len(reps) != 1 else ''}" + (f" ({judged} judged)" if judged != len(reps) else ""),
           f"{report['view']} view" + (" (as you said)" if report.get("view_source") == "user" else "")]
    if style:
        sub.append(f"{style} deadlift")
    if report.get("form_score") is not None:
        sub.append(f"form score {report['form_score']:.2f} (0 = textbook, under 1 = within good form)")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Deadlift analysis: {e(name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Deadlift analysis: {e(name)}</h1>",
        f"<p class='verdict' style='color:{colour}'>{e(words)}</p>",
        f"<p class='sub'>{e(' · '.join(sub))}</p>",
        f"<p>{e(str(report.get('verdict_reason') or ''))}</p>",
    ]
    stills = files.get("finding_stills") or {}
    found = findings(report)
    if found:
        parts.append("<h2>What to work on</h2>")
        for f in found:
            ev = f["evidence"]
            reps_txt = ", ".join(str(r) for r in f["reps"])
            measured = (f"{e(ev.get('metric', ''))}: <b>{e(fmt(ev.get('value'), ev.get('units', '')))}</b> "
                        f"(good form: {'at least' if ev.get('flag_when') == 'below' else 'up to'} "
                        f"{e(fmt(ev.get('threshold'), ev.get('units', '')))})")
            when = f" at {f['time_s']:.1f} s" if f.get("time_s") is not None else ""
            parts.append(
                "<div class='finding'>" + _img_tag(stills.get(f["name"]), f"rep moment{when}", "360px")
                + f"<div><h3>{e(f['description'].capitalize())}</h3>"
                  f"<p>Rep{'s' if len(f['reps']) > 1 else ''} {e(reps_txt)}{e(when)}. {measured}</p>"
                  f"<p><b>What to do:</b> {e(f.get('advice') or '')}</p></div></div>")
    elif report["verdict"] == "good":
        margins = (report.get("evidence") or {}).get("set_margins") or {}
        if margins:
            close = max(margins, key=margins.get)
            parts.append(f"<h2>What we checked</h2><p>Every checked rule is within the good-form range. "
                         f"Closest to its edge: {e(close.replace('_', ' '))} "
                         f"({margins[close]:.0%} of the way from the good-form median to the edge).</p>")
    bar = report.get("bar") or {}
    if bar.get("measured") and bar.get("reps"):
        u = bar.get("units") or {}
        dist, speed = u.get("distance", ""), u.get("speed", "")
        parts.append(f"<h2>Bar path and speed</h2><table><tr><th>rep</th><th>pull time</th>"
                     f"<th>mean / peak speed ({e(speed)})</th><th>furthest ahead of mid-foot ({e(dist)})</th>"
                     f"<th>furthest from its start ({e(dist)})</th><th>sway ({e(dist)})</th></tr>")
        for r in bar["reps"]:
            def num(v, d=2):
                return "-" if v is None else f"{v:.{d}f}"
            parts.append(f"<tr><td>{r['rep']}</td><td>{num(r.get('concentric_s'), 1)} s</td>"
                         f"<td>{num(r.get('mean_speed'))} / {num(r.get('peak_speed'))}</td>"
                         f"<td>{num(r.get('max_from_midfoot'), 1)}</td><td>{num(r.get('max_from_start'), 1)}</td>"
                         f"<td>{num(r.get('sway'), 1)}</td></tr>")
        parts.append("</table>")
        parts.append(_img_tag(files.get("bar_speed_png"), "Mean bar speed per rep"))
    if bar.get("notes"):
        parts.append("<p class='sub'>Bar: " + e("; ".join(bar["notes"])) + "</p>")
    devs = report.get("deviations") or []
    if devs and report.get("deviations_source", "").startswith("good-form"):
        parts.append("<h2>Joints away from good form</h2><ul>" + "".join(
            f"<li>{e(d['direction'])}</li>" for d in devs[:3]) + "</ul>")
    fb = report.get("feedback") or {}
    if fb:
        parts.append(f"<h2>Coaching</h2><p style='white-space:pre-wrap'>{e(fb.get('text', ''))}</p>"
                     f"<p class='sub'>written by {e(fb.get('source', ''))}"
                     + (f": {e(fb['note'])}" if fb.get("note") else "") + "</p>")
    if reps:
        parts.append("<h2>Rep by rep</h2><table><tr><th>rep</th><th>time</th><th>verdict</th>"
                     "<th>score</th><th>frames measured</th><th>findings</th></tr>")
        for r in reps:
            errs = ", ".join(x["name"].replace("_", " ") for x in r["errors"]) or "-"
            if not r.get("judged") and r.get("why_not_judged"):
                errs = f"not judged: {r['why_not_judged']}"
            score = "-" if r.get("score") is None else f"{r['score']:.2f}"
            conf = "-" if r.get("confidence") is None else f"{r['confidence']:.0%}"
            parts.append(f"<tr><td>{r['index']}</td><td>{r['start_s']:.1f}-{r['end_s']:.1f} s</td>"
                         f"<td>{e(r['verdict'])}</td><td>{score}</td><td>{conf}</td><td>{e(errs)}</td></tr>")
        parts.append("</table>")
    # The detail, folded.
    det = ["<details><summary>Details: video, plots, every measurement, frames not measured, notes</summary>"]
    if files.get("annotated_video"):
        vname = Path(files["annotated_video"]).name
        det.append(f"<h3>Annotated video</h3><video controls width='640' src='{e(vname)}'></video>"
                   f"<p><a href='{e(vname)}'>{e(vname)}</a></p>")
    det.append(_img_tag(files.get("margins_png"), "Each rule per rep against the good-form range"))
    det.append(_img_tag(files.get("angles_png"), "Angles over time (reps and phases shaded)"))
    det.append(_img_tag(files.get("deviations_png"), "Joints outside the good-form spread"))
    defs = {d["name"]: d for d in (report.get("rules") or {}).get("definitions", [])}
    checked = (report.get("rules") or {}).get("checked", [])
    if reps and checked:
        det.append("<h3>Every measurement</h3><table><tr><th>rule</th><th>measured</th><th>flag when</th>"
                   + "".join(f"<th>rep {r['index']}</th>" for r in reps) + "</tr>")
        for name in checked:
            d = defs.get(name, {})
            u = d.get("units", "")
            det.append(f"<tr><td>{e(name.replace('_', ' '))}</td><td>{e(d.get('metric', ''))}</td>"
                       f"<td>{e(d.get('flag_when', ''))} {e(fmt(d.get('threshold'), u))}</td>"
                       + "".join(f"<td>{e(fmt((r.get('measurements') or {}).get(name), u))}</td>" for r in reps)
                       + "</tr>")
        det.append("</table><p class='sub'>Thresholds: " + e("; ".join(
            sorted({d.get("threshold_source", "") for n, d in defs.items() if n in checked}))) + "</p>")
    trust = report.get("frame_trust") or {}
    if trust:
        det.append(f"<h3>Frames measured</h3><p>{trust.get('trusted_frames')} of {trust.get('frames')} sampled "
                   f"frames ({trust.get('trusted_share', 0):.0%}); shots in the clip: {trust.get('shots')}, "
                   f"analysed: shot {trust.get('analysed_shot')}.</p>")
        if trust.get("dropped_times"):
            det.append("<ul>" + "".join(f"<li>{d['start_s']:.1f}-{d['end_s']:.1f} s: {e(d['reason'])}</li>"
                                        for d in trust["dropped_times"][:20]) + "</ul>")
    rules = report.get("rules") or {}
    if rules.get("not_checked"):
        det.append("<h3>Not checked</h3><ul>" + "".join(
            f"<li>{e(k.replace('_', ' '))}: {e(v)}</li>" for k, v in rules["not_checked"].items()) + "</ul>")
    clf = report.get("classifier")
    if clf:
        det.append(f"<h3>Classifier</h3><p>{clf['good_frame_fraction']:.0%} of frames judged good-form"
                   + (f" ({e(clf['note'])})" if clf.get("note") else " (trusted for this pose model)") + "</p>")
    if report.get("notes"):
        det.append("<h3>Notes</h3><ul>" + "".join(f"<li>{e(n)}</li>" for n in report["notes"]) + "</ul>")
    det.append("</details>")
    parts.extend(det)
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


def write_report(report: dict, out_dir, stem: str, video_path=None, frame_stride: int = 1,
                 write_video: bool = True, plots: bool = True, frames_video=None) -> dict:
    """Write the JSON, HTML, stills, PNGs and annotated video for a report; returns {kind: path}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict = {}
    video_job = None
    if write_video and video_path is not None:
        # The annotated video (decoding, drawing, the pipe to ffmpeg: mostly outside the GIL)
        # is written in a thread while the plots are drawn.
        from concurrent.futures import ThreadPoolExecutor

        def annotated():
            t = time.perf_counter()
            path = write_annotated_video(report, video_path, out_dir / f"{stem}_annotated.mp4", frame_stride,
                                         frames_video=frames_video)
            return path, time.perf_counter() - t

        pool = ThreadPoolExecutor(1, thread_name_prefix="annotated-video")
        video_job = pool.submit(annotated)
        pool.shutdown(wait=False)
    t0 = time.perf_counter()
    if plots:
        files["angles_png"] = plot_angles(report, out_dir / f"{stem}_angles.png")
        files["margins_png"] = plot_margins(report, out_dir / f"{stem}_margins.png")
        files["deviations_png"] = plot_deviations(report, out_dir / f"{stem}_deviations.png")
        if (report.get("bar") or {}).get("measured"):
            from .bar import plot_bar_speed

            files["bar_speed_png"] = plot_bar_speed(report["bar"], out_dir / f"{stem}_bar_speed.png")
        if video_path is not None:
            files["finding_stills"] = write_finding_stills(report, video_path, out_dir, stem)
    t1 = time.perf_counter()
    video_s = 0.0
    if video_job is not None:
        files["annotated_video"], video_s = video_job.result()
    files = {k: v for k, v in files.items() if v}
    files["report_json"] = out_dir / f"{stem}_report.json"
    files["report_html"] = out_dir / f"{stem}_report.html"
    report.setdefault("timing_s", {}).update(plots=round(t1 - t0, 3), annotated_video=round(video_s, 3))
    report["files"] = {k: (Path(v).name if not isinstance(v, dict) else {r: Path(p).name for r, p in v.items()})
                       for k, v in files.items()}
    atomic_write_text(files["report_html"], render_html(report, files))
    public = {k: v for k, v in report.items() if not k.startswith("_")}
    atomic_write_text(files["report_json"], json.dumps(_jsonable(public), indent=1))
    return files


def finish_report(report: dict, out_dir, stem: str, video_path, frame_stride: int, pose_path,
                  pose_seconds: float, started: float, write_video: bool = True, frames_video=None) -> dict:
    """Write every output of an analysed video (write_report), then the JSON again with the total
    time; the one ending shared by `analyze_video` and the Dask batch. Returns the files."""
    report["pose_file"] = str(pose_path)
    report.setdefault("timing_s", {})["pose_extraction"] = round(pose_seconds, 3)
    files = write_report(report, out_dir, stem, video_path=video_path, frame_stride=frame_stride,
                         write_video=write_video, frames_video=frames_video)
    report["timing_s"]["total"] = round(pose_seconds + time.perf_counter() - started, 3)
    public = {k: v for k, v in report.items() if not k.startswith("_")}
    atomic_write_text(Path(out_dir) / f"{stem}_report.json", json.dumps(_jsonable(public), indent=1))
    return files
