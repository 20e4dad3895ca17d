"""Bar tracking: a synthetic plate on a real background, the hand-marked real clip, a
kettlebell clip (no plate), the pose JSON round trip and bad input."""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from deadlift_utils.bar import (BarTracker, BarTrail, bar_positions, bar_summary, draw_bar_path,
                                plot_bar_speed, rep_of_samples, smooth_track)
from deadlift_utils.estimators import Person
from deadlift_utils.keypoints import KP
from deadlift_utils.pose import PoseSequence, load_pose_json, save_pose_json
from deadlift_utils.reps import Rep
from deadlift_utils.video import iter_frames, probe_video

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "data" / "videos"
MARKS = ROOT / "tests" / "fixtures" / "bar_marks.csv"
FPS, W, H, R = 30.0, 640, 360, 40          # synthetic clip: plate radius 40 px = 22.5 cm
TORSO = 90.0                               # px: plate radius 0.44 torso lengths, like a real lifter


def _path(n, x0=300.0, y0=290.0, rise=170.0, drift=12.0, t0=0.5, t1=1.5):
    """Plate centre per frame: at rest, a pull of `rise` px up over t0..t1 s with short
    (0.15 s) speed ramps, then a hold. Returns (n, 2) and the true mean concentric speed px/s."""
    t = np.arange(n) / FPS
    ramp = 0.15
    v = rise / ((t1 - t0) - ramp)
    u = np.clip(t - t0, 0, t1 - t0)
    d = np.where(u < ramp, 0.5 * v / ramp * u ** 2,
                 np.where(u > (t1 - t0) - ramp, rise - 0.5 * v / ramp * ((t1 - t0) - u) ** 2,
                          0.5 * v * ramp + v * (u - ramp)))
    xy = np.stack([x0 + drift * d / rise, y0 - d], axis=1)
    true_mean = float(np.hypot(rise, drift) / (t1 - t0))
    return xy, true_mean, v


def _plate(img, c, r=R):
    c = (int(round(c[0])), int(round(c[1])))
    cv2.circle(img, c, r, (30, 30, 160), -1, cv2.LINE_AA)
    cv2.circle(img, c, int(r * 0.75), (230, 230, 230), -1, cv2.LINE_AA)
    cv2.circle(img, c, int(r * 0.5), (30, 30, 160), -1, cv2.LINE_AA)
    cv2.circle(img, c, int(r * 0.15), (90, 90, 90), -1, cv2.LINE_AA)


def _background() -> np.ndarray:
    cap = cv2.VideoCapture(str(VIDEOS / "yfgd_small" / "good" / "good_001.mp4"))
    ok, frame = cap.read()
    cap.release()
    if not ok:
        pytest.skip("shared video not readable")
    # The right half of the outdoor frame: bushes and sky, no plate of its own.
    return cv2.resize(frame[:, 960:], (W, H), interpolation=cv2.INTER_AREA)


def _write_clip(path, centres, still=()):
    """The plate along `centres` over the real background; `still`: plates that stay put
    (a rack behind the lifter), drawn behind it."""
    bg = _background()
    for c in still:
        _plate(bg, c)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    for c in centres:
        f = bg.copy()
        _plate(f, c)
        vw.write(f)
    vw.release()


def _person(c) -> Person:
    """A lifter whose hands hold the bar just above the plate centre, torso TORSO px."""
    kp = np.full((18, 3), np.nan)
    kp[:, 2] = 0.9
    hand = (c[0] + 3, c[1] - 8)
    kp[KP["r_wrist"], :2] = kp[KP["l_wrist"], :2] = hand
    kp[KP["r_hip"], :2] = kp[KP["l_hip"], :2] = (c[0] - 60, 150)
    kp[KP["r_shoulder"], :2] = kp[KP["l_shoulder"], :2] = (c[0] - 60 + 54, 150 - 72)
    kp[KP["r_ankle"], :2] = kp[KP["l_ankle"], :2] = (c[0] - 10, 340)
    return Person(kp)


def _run(path, centres, stride=1):
    tracker = BarTracker()
    tracker.start(path, probe_video(path))
    vals, kps, idx = [], [], []
    for i, frame in iter_frames(path, stride):
        p = _person(centres[min(i, len(centres) - 1)])
        vals.append(tracker.analyze(i, frame, p))
        kps.append(p.keypoints[:, :2])
        idx.append(i)
    kps = np.array(kps)
    out = tracker.finish(vals, kps)
    seq = PoseSequence(keypoints_xy=kps, confidence=np.full(kps.shape[:2], 0.9), frame_index=np.array(idx),
                       time_s=np.array(idx) / FPS, fps=FPS, width=W, height=H, frame_stride=stride,
                       frame_extras={"bar": out})
    return seq


def _rep(n):
    return Rep(index=1, start=0, pull_start=int(0.5 * FPS), top_start=int(1.5 * FPS), top_end=n - 1, end=n - 1)


def test_synthetic_plate_path_and_speed(tmp_path):
    n = 60
    centres, true_mean, true_peak = _path(n)
    path = tmp_path / "plate.mp4"
    _write_clip(path, centres)
    seq = _run(path, centres)
    xy, r, values = bar_positions(seq)
    assert np.isfinite(xy[:, 0]).mean() >= 0.95
    ok = np.isfinite(xy[:, 0])
    err = np.hypot(*(xy[ok] - centres[ok]).T)
    assert np.median(err) <= 0.05 * 2 * R          # within 5% of the plate diameter
    assert abs(np.nanmedian(r) - R) <= 0.05 * R
    summary = bar_summary(seq, [_rep(n)], view="side")
    assert summary["measured"] and summary["units"]["speed"] == "m/s"
    px_per_m = 2 * R / 0.45
    rep = summary["reps"][0]
    assert rep["mean_speed"] == pytest.approx(true_mean / px_per_m, rel=0.05)
    assert rep["peak_speed"] == pytest.approx(true_peak / px_per_m, rel=0.05)
    assert rep["concentric_s"] == pytest.approx(1.0, rel=0.1)
    # Drift: 12 px ahead over the pull = 6.75 cm from the start.
    assert rep["max_from_start"] == pytest.approx(12 / (2 * R) * 45, abs=1.5)


def test_speed_estimator_on_exact_positions():
    # The true plate centres as detections (no tracker): what remains is the estimator's own
    # bias. The concentric window ends on samples that already moved; without the half-sample
    # correction a perfect track read the mean speed 6% high.
    n = 60
    centres, true_mean, true_peak = _path(n)
    vals = [{"x": float(x), "y": float(y), "r": float(R), "source": "detected"} for x, y in centres]
    kps = np.array([_person(c).keypoints[:, :2] for c in centres])
    seq = PoseSequence(keypoints_xy=kps, confidence=np.full(kps.shape[:2], 0.9), frame_index=np.arange(n),
                       time_s=np.arange(n) / FPS, fps=FPS, width=W, height=H, frame_stride=1,
                       frame_extras={"bar": smooth_track(vals, np.arange(n))})
    rep = bar_summary(seq, [_rep(n)], view="side")["reps"][0]
    px_per_m = 2 * R / 0.45
    assert rep["mean_speed"] == pytest.approx(true_mean / px_per_m, rel=0.03)
    assert rep["peak_speed"] == pytest.approx(true_peak / px_per_m, rel=0.03)


def _exact_seq(centres, keep=None):
    """A PoseSequence whose bar track is the true centres (kept where `keep`), hands on the bar."""
    n = len(centres)
    vals = [{"x": float(x), "y": float(y), "r": float(R), "source": "detected"} if keep is None or keep[k]
            else None for k, (x, y) in enumerate(centres)]
    kps = np.array([_person(c).keypoints[:, :2] for c in centres])
    return PoseSequence(keypoints_xy=kps, confidence=np.full(kps.shape[:2], 0.9), frame_index=np.arange(n),
                        time_s=np.arange(n) / FPS, fps=FPS, width=W, height=H, frame_stride=1,
                        frame_extras={"bar": smooth_track(vals, np.arange(n))})


def test_no_speed_when_the_track_breaks_off_before_lockout():
    # The plate is lost halfway up the pull and found again near the top (a longer gap than the
    # smoother bridges), and the pose puts the rep's lockout inside that gap (yfgd_small bad_006,
    # bad_007): the highest point seen before the gap is not the lockout, and a speed over that
    # half pull would be wrong. No figures for the rep, and a note saying why.
    n = 60
    centres, _, _ = _path(n)
    keep = np.ones(n, dtype=bool)
    keep[30:42] = False                      # 0.4 s unseen mid-pull
    rep = Rep(index=1, start=0, pull_start=15, top_start=36, top_end=40, end=n - 1)
    seq = _exact_seq(centres, keep)
    assert not np.isfinite(bar_positions(seq)[0][33:39, 0]).any()   # the gap stays a gap
    summary = bar_summary(seq, [rep], view="side")
    assert summary["reps"][0]["mean_speed"] is None
    assert any("breaks off before lockout" in s for s in summary["notes"])
    # The same track with the gap after lockout (the bar at rest at the top): measured.
    keep = np.ones(n, dtype=bool)
    keep[50:58] = False
    summary = bar_summary(_exact_seq(centres, keep), [_rep(n)], view="side")
    assert summary["reps"][0]["mean_speed"] is not None


def test_no_figures_when_the_path_moves_sideways_more_than_a_bar_can():
    # A path that jumps 2 plate radii sideways halfway up the pull (yfgd_small bad_004/005: the far
    # plate, then the near plate's ring) is not a bar path: no speed or distances, and a note.
    # The same path without the jump is measured.
    n = 60
    centres, _, _ = _path(n)
    jumped = centres.copy()
    jumped[30:, 0] += 2 * R
    summary = bar_summary(_exact_seq(jumped), [_rep(n)], view="side")
    assert summary["reps"][0]["mean_speed"] is None and summary["reps"][0]["max_from_start"] is None
    assert any("sideways" in s for s in summary["notes"])
    assert bar_summary(_exact_seq(centres), [_rep(n)], view="side")["reps"][0]["max_from_start"] is not None


def test_no_speed_when_the_track_starts_after_lift_off():
    # The plate is found only once the bar is already rising (tutorial_dev bad_01): the pull's
    # start is not seen, so its duration and speed are not known.
    n = 60
    centres, _, _ = _path(n)
    keep = np.ones(n, dtype=bool)
    keep[:25] = False                        # the pull starts at sample 15
    summary = bar_summary(_exact_seq(centres, keep), [_rep(n)], view="side")
    assert summary["reps"][0]["mean_speed"] is None
    assert any("starts after lift-off" in s for s in summary["notes"])


def test_plate_leaving_frame_gives_a_note_not_a_crash(tmp_path):
    n = 45
    centres = np.stack([np.linspace(300, W + 3 * R, n), np.full(n, 250.0)], axis=1)
    path = tmp_path / "leaving.mp4"
    _write_clip(path, centres)
    seq = _run(path, centres)
    xy, _, values = bar_positions(seq)
    gone = centres[:, 0] - R > W
    assert not np.isfinite(xy[gone, 0]).any()        # nothing invented once it is gone
    summary = bar_summary(seq, [], view="side")
    assert any("frame border" in s for s in summary["notes"])


def test_no_bar_gives_a_note():
    n = 10
    seq = PoseSequence(keypoints_xy=np.zeros((n, 18, 2)), confidence=np.ones((n, 18)), frame_index=np.arange(n),
                       time_s=np.arange(n) / FPS, frame_extras={"bar": [None] * n})
    summary = bar_summary(seq, [_rep(n)], view="side")
    assert not summary["measured"] and "no barbell found" in summary["notes"][0]
    assert not np.isfinite(bar_positions(seq)[0]).any()
    front = bar_summary(seq, [], view="front")
    assert "front view" in front["notes"][0]
    old = PoseSequence(keypoints_xy=np.zeros((n, 18, 2)), confidence=np.ones((n, 18)), frame_index=np.arange(n),
                       time_s=np.arange(n) / FPS)
    assert "no bar track" in bar_summary(old, [], view="side")["notes"][0]


def test_smoother_never_bridges_long_gaps():
    vals = [{"x": 100.0 + i, "y": 200.0, "r": 40.0, "source": "detected"} for i in range(10)]
    vals += [None] * 6 + [{"x": 120.0 + i, "y": 200.0, "r": 40.0, "source": "detected"} for i in range(10)]
    out = smooth_track(vals, np.arange(len(vals)) * 2)   # stride 2: a 12-frame gap
    assert all(v is None for v in out[10:16])
    short = vals[:10] + [None] + vals[16:]
    out = smooth_track(short, np.arange(len(short)) * 2)  # a 4-frame gap is bridged
    assert out[10]["source"] == "smoothed"


def test_pose_json_round_trip_keeps_bar(tmp_path):
    n = 5
    bar = [None, {"x": 1.5, "y": 2.0, "r": 30.0, "source": "detected"},
           {"x": 2.5, "y": 2.5, "r": 30.0, "source": "smoothed"}, None, None]
    seq = PoseSequence(keypoints_xy=np.zeros((n, 18, 2)), confidence=np.ones((n, 18)), frame_index=np.arange(n),
                       time_s=np.arange(n) / FPS, fps=FPS, frame_extras={"bar": bar})
    save_pose_json(seq, tmp_path / "p.json")
    back = load_pose_json(tmp_path / "p.json")
    assert back.frame_extras["bar"] == bar


def test_draw_and_plot(tmp_path):
    n = 60
    centres, _, _ = _path(n)
    path = tmp_path / "plate.mp4"
    _write_clip(path, centres)
    seq = _run(path, centres, stride=2)
    rep_of = rep_of_samples([_rep(len(seq))], len(seq))
    frame = np.zeros((H, W, 3), np.uint8)
    draw_bar_path(frame, seq, len(seq) - 1, rep_of=rep_of)
    xy, _, _ = bar_positions(seq)
    ok = np.isfinite(xy[:, 0])
    assert ok.sum() > 10
    on = frame.any(axis=2)
    for x, y in xy[ok].astype(int):   # the trail passes through every tracked centre
        assert on[max(y - 2, 0):y + 3, max(x - 2, 0):x + 3].any()
    # Drawn sample by sample onto successive frames (the annotated video), each segment once,
    # the picture at every sample is the one drawn from scratch.
    trail = BarTrail(seq, (W, H), rep_of=rep_of)
    for k in range(len(seq)):
        by_step = trail.draw(np.zeros((H, W, 3), np.uint8), k)
        if k in (len(seq) // 2, len(seq) - 1):
            whole = draw_bar_path(np.zeros((H, W, 3), np.uint8), seq, k, rep_of=rep_of)
            assert np.array_equal(by_step, whole)
    rep = Rep(index=1, start=0, pull_start=7, top_start=22, top_end=len(seq) - 1, end=len(seq) - 1)
    summary = bar_summary(seq, [rep], view="side")
    assert plot_bar_speed(summary, tmp_path / "speed.png").is_file()


def _extract(clip, tmp_path, stride=2, cached=True):
    from deadlift_utils.extract import extract_video

    video = VIDEOS / clip
    if not video.is_file():
        pytest.skip(f"{video} not available")
    from deadlift_utils.sources import pose_code_version

    # scripts/benchmark_bar.py's cache, only when made by this code
    cache = ROOT / "outputs" / "cache" / "bar_poses" / f"code-{pose_code_version()}" / Path(clip).parent
    if cached and (cache / (video.stem + ".json")).is_file() and stride == 2:
        seq = load_pose_json(cache / (video.stem + ".json"))
        if "bar" in seq.frame_extras:
            return seq
    return extract_video(video, tmp_path, frame_stride=stride, write_videos=False,
                         frame_analyzers=[BarTracker()]).sequence


def _mark_errors(tmp_path, clips=None):
    """(marks, errors in plate diameters of the marked frames with a bar position, the marked
    frames without one) over the hand-mark fixture, or its marks of `clips`."""
    with open(MARKS) as f:
        marks = [m for m in csv.DictReader(line for line in f if not line.startswith("#"))
                 if clips is None or m["video"] in clips]
    seqs = {clip: _extract(clip + ".mp4", tmp_path) for clip in sorted({m["video"] for m in marks})}
    errs, missing = [], []
    for m in marks:
        seq = seqs[m["video"]]
        xy, _, _ = bar_positions(seq)
        k = int(np.flatnonzero(seq.frame_index == int(m["frame"]))[0])
        if not np.isfinite(xy[k, 0]):
            missing.append((m["video"], m["frame"]))
            continue
        errs.append(np.hypot(xy[k, 0] - float(m["x_px"]), xy[k, 1] - float(m["y_px"])) / float(m["plate_diameter_px"]))
    return marks, errs, missing


def test_real_clips_match_hand_marks(tmp_path):
    # The targets over the whole fixture (62 marks, 8 clips): median <= 0.1 and p90 <=
    # 0.25 plate diameters over the marked frames with a bar position, and a position on at
    # least 90% of the marked frames (a frame may honestly have none: no invented positions).
    marks, errs, missing = _mark_errors(tmp_path)
    assert len(marks) >= 60 and len({m["video"] for m in marks}) >= 8
    assert len(errs) >= 0.9 * len(marks), f"no bar at {missing}"
    assert np.median(errs) <= 0.1 and np.percentile(errs, 90) <= 0.25, (np.median(errs), np.percentile(errs, 90))


def test_the_bar_is_the_centre_of_the_plates_face():
    # A plate seen a little off its axis: the near face (rings, hub) and, beside it, the plate's
    # thickness. A circle fitted to the silhouette is centred off the bar; the face's concentric
    # edges put it back on the hub. A circle already on the face's centre does not move.
    from deadlift_utils.bar import _face_offset

    img = np.full((400, 400, 3), 120, np.uint8)
    cv2.circle(img, (212, 188), 80, (60, 60, 60), -1, cv2.LINE_AA)      # the far edge
    cv2.circle(img, (200, 200), 80, (200, 200, 200), -1, cv2.LINE_AA)   # the near face
    cv2.circle(img, (200, 200), 80, (90, 90, 90), 3, cv2.LINE_AA)
    cv2.circle(img, (200, 200), 48, (140, 140, 140), -1, cv2.LINE_AA)
    cv2.circle(img, (200, 200), 10, (20, 20, 20), -1, cv2.LINE_AA)      # the sleeve end
    dx, dy = _face_offset(img, 206, 194, 86)
    assert np.hypot(206 + dx - 200, 194 + dy - 200) <= 2.0
    assert _face_offset(img, 200, 200, 80) == [0.0, 0.0]
    assert _face_offset(img, 30, 200, 80) is None                         # the search leaves the frame


def test_off_axis_plates_are_measured_at_their_face(tmp_path):
    # yfgd_small good_001 / good_004: light plates filmed a little off their axis, where the
    # circle found is the silhouette (face + thickness) and the hand marks sit on the sleeve end.
    # Measured at the face's centre their 14 marked frames are 0.049 plate diameters off
    # (median; 90th percentile 0.125); at the silhouette's centre they were 0.066 (p90 0.207).
    marks, errs, missing = _mark_errors(tmp_path, ("yfgd_small/good/good_001", "yfgd_small/good/good_004"))
    assert len(errs) == len(marks) >= 14 and not missing
    assert np.median(errs) <= 0.055 and np.percentile(errs, 90) <= 0.18, (np.median(errs), np.percentile(errs, 90))


KETTLEBELL = sorted(p.name for p in (VIDEOS / "kettlebell_errors").glob("*.mp4")) or ["correct_side.mp4"]


@pytest.mark.parametrize("name", KETTLEBELL)
def test_kettlebell_clips_have_no_barbell(tmp_path, name):
    # All 8 kettlebell clips (side and 45 degrees) at the analysis stride (2), extracted afresh:
    # circles drawn by the lifter's outline, the kettlebell and the floor near the hands used to
    # give a bar path on 9-69% of the pull frames. What a user gets: no bar path, no bar figures,
    # a note saying the wrists stand in for the bar; stray circles on at most a few samples.
    from deadlift_utils.reps import count_reps

    seq = _extract("kettlebell_errors/" + name, tmp_path, stride=2, cached=False)
    xy, _, _ = bar_positions(seq)
    assert np.isfinite(xy[:, 0]).mean() <= 0.05, f"bar positions on {np.isfinite(xy[:, 0]).sum()} samples"
    view = "middle" if "middle" in name else "side"
    summary = bar_summary(seq, count_reps(seq).reps, view=view)
    notes = " ".join(summary["notes"])
    assert not summary["measured"] and not summary["reps"], notes
    assert "no barbell" in notes and "wrists stand in for the bar" in notes


def test_smoother_splits_at_a_shot_cut():
    # A camera cut moves the plate 200 px at once: no smoothed path may run across the cut.
    vals = [{"x": 100.0 + i, "y": 200.0, "r": 40.0, "source": "detected"} for i in range(10)]
    vals += [{"x": 300.0 + i, "y": 120.0, "r": 40.0, "source": "detected"} for i in range(10)]
    frames = np.arange(len(vals)) * 2
    out = smooth_track(vals, frames, cuts={int(frames[10])})
    assert abs(out[9]["x"] - 109.0) < 1.0 and abs(out[10]["x"] - 300.0) < 1.0


def test_tracks_that_do_not_move_with_the_hands_are_dropped():
    # A plate rising with the hands is kept; a circle that stays on the hips while the hands
    # rise (a kettlebell clip's false plate), and a short track beside still hands, are dropped.
    from deadlift_utils.bar import drop_uncoupled_tracks

    n = 40
    wy = np.concatenate([np.full(10, 300.0), np.linspace(300, 160, 20), np.full(10, 160.0)])
    kps = np.full((n, 18, 2), np.nan)
    kps[:, KP["r_wrist"]] = kps[:, KP["l_wrist"]] = np.stack([np.full(n, 200.0), wy], axis=1)
    frames = np.arange(n) * 2
    plate = [{"x": 203.0, "y": float(y + 8), "r": 40.0, "source": "detected"} for y in wy]
    out = drop_uncoupled_tracks(plate, kps, frames, 30.0)
    assert all(v.get("x") is not None for v in out)
    hips = [{"x": 260.0, "y": 200.0 + 3 * np.sin(i), "r": 40.0, "source": "detected"} for i in range(n)]
    out = drop_uncoupled_tracks(hips, kps, frames, 30.0)
    assert all(v.get("x") is None and v.get("dropped") for v in out)
    short = [None] * 30 + [{"x": 160.0, "y": 170.0, "r": 40.0, "source": "detected"}] * 5 + [None] * 5
    out = drop_uncoupled_tracks(short, kps, frames, 30.0)
    assert not any(isinstance(v, dict) and v.get("x") is not None for v in out)
    seq = PoseSequence(keypoints_xy=kps, confidence=np.ones((n, 18)), frame_index=frames, time_s=frames / FPS,
                       frame_extras={"bar": out})
    notes = bar_summary(seq, [], view="side")["notes"]
    # Circles were seen and judged: the note says none was followed, not that there is no barbell
    # (a plate that blends into its background is missed, tutorial_dev good_06/07).
    assert "no barbell plate followed" in notes[0] and "can be missed" in notes[0]
    assert "dropped as not the barbell's plate" in notes[1]


def _hands(wy):
    n = len(wy)
    kps = np.full((n, 18, 2), np.nan)
    kps[:, KP["r_wrist"]] = kps[:, KP["l_wrist"]] = np.stack([np.full(n, 200.0), wy], axis=1)
    return kps


def test_coupling_is_checked_on_parts_of_a_track():
    # One unbroken track that sits on the hips (still) while the hands pull, then on the plate
    # rising with the hands: the hips stretch is dropped, the plate stretch kept (the check
    # used to drop or keep the whole track).
    from deadlift_utils.bar import drop_uncoupled_tracks

    wy = np.concatenate([np.linspace(300, 160, 20), np.linspace(160, 300, 20)])
    kps = _hands(wy)
    frames = np.arange(len(wy)) * 2
    hips = [{"x": 150.0, "y": 100.0, "r": 40.0, "source": "detected"} for _ in range(20)]
    plate = [{"x": 203.0, "y": float(y + 8), "r": 40.0, "source": "detected"} for y in wy[20:]]
    out = drop_uncoupled_tracks(hips + plate, kps, frames, 30.0)
    assert all(v.get("dropped") for v in out[:20])
    assert all(v.get("x") is not None for v in out[20:])


def test_a_wrist_glitch_does_not_split_a_plate_track():
    # The wrist keypoints jump 2.5 plate radii up for 8 samples (the plate hides the hands) while
    # the plate rises smoothly with the real hands: one plate, kept whole.
    from deadlift_utils.bar import drop_uncoupled_tracks, split_by_hand_offset

    wy = np.concatenate([np.full(8, 300.0), np.linspace(300, 160, 16), np.full(16, 160.0)])
    plate = [{"x": 203.0, "y": float(y + 8), "r": 40.0, "source": "detected"} for y in wy]
    seen = wy.copy()
    seen[28:36] -= 100.0
    kps = _hands(seen)
    assert len(split_by_hand_offset(plate, kps, list(range(len(plate))))) == 1
    out = drop_uncoupled_tracks(plate, kps, np.arange(len(wy)) * 2, 30.0)
    assert all(v.get("x") is not None for v in out)


def test_pieces_of_a_track_never_interleave():
    # The tracker slides from the plate to the hips; one sample in the slide has no wrists.
    # Pieces used to interleave there (the wristless sample joined the old piece after the new
    # one had begun: tutorial_dev bad_01 had pieces of samples 9-19 and 15-25). Each piece is
    # now a run of consecutive samples, and together they are the track, in order.
    from deadlift_utils.bar import split_by_hand_offset

    wy = np.concatenate([np.linspace(300, 160, 20), np.full(20, 160.0)])
    plate = [{"x": 203.0, "y": float(y + 8), "r": 40.0, "source": "detected"} for y in wy[:20]]
    hips = [{"x": 150.0, "y": 60.0, "r": 40.0, "source": "detected"} for _ in range(20)]
    seen = wy.copy()
    seen[21] = np.nan                        # no wrists on the second sample of the slide
    kps = _hands(seen)
    idx = list(range(40))
    pieces = split_by_hand_offset(plate + hips, kps, idx)
    assert len(pieces) == 2
    assert [i for p in pieces for i in p] == idx
    assert all(p == list(range(p[0], p[-1] + 1)) for p in pieces)
    assert pieces[1][0] == 20


def test_a_clear_plate_is_kept_when_the_pose_loses_the_hands():
    # tutorial_dev bad_01: behind the plate the pose loses the lifter, the wrist keypoints stay
    # put while the plate rises 3 radii. With a clear rim and hub on its circles the piece is the
    # plate and is kept; the same path with weak circles (a kettlebell clip's outline) is not.
    from deadlift_utils.bar import drop_uncoupled_tracks

    n = 12                                   # 0.7 s at stride 2: too short for the still-hands check
    py = np.linspace(300, 180, n)
    seen = np.full(n, np.nan)
    seen[::3] = 310.0                        # wrists lost, or found stuck below the plate
    kps = _hands(seen)
    path = [{"x": 203.0, "y": float(y), "r": 40.0, "source": "detected"} for y in py]

    def raw(rim, hub):
        return [dict(v, rim=rim, hub=hub) for v in path]

    frames = np.arange(n) * 2
    kept = drop_uncoupled_tracks([dict(v) for v in path], kps, frames, 30.0, raw=raw(0.8, 0.9))
    assert all(v.get("x") is not None for v in kept)
    weak = drop_uncoupled_tracks([dict(v) for v in path], kps, frames, 30.0, raw=raw(0.5, 0.4))
    assert all(v.get("dropped") for v in weak)
    assert all(v.get("dropped") for v in drop_uncoupled_tracks([dict(v) for v in path], kps, frames, 30.0))


def test_hub_support_and_plateless_tracks_are_dropped():
    # A plate has a hub (concentric rings at its centre); a disc-sized circle of the lifter's
    # outline or the floor has nothing there. Tracks whose circles lack rim + hub are dropped.
    from deadlift_utils.bar import _hub_support, drop_plateless_tracks

    img = np.full((H, W, 3), 200, np.uint8)
    _plate(img, (200, 180))
    cv2.circle(img, (200, 180), int(R * 0.12), (220, 220, 220), -1, cv2.LINE_AA)   # the bar's sleeve end
    cv2.circle(img, (450, 180), R, (30, 30, 160), -1, cv2.LINE_AA)   # a plain disc: no hub
    assert _hub_support(img, 200, 180, R) >= 0.8
    assert _hub_support(img, 450, 180, R) <= 0.3
    assert np.isnan(_hub_support(img, 5, 180, R))                      # centre at the border

    def track(rim, hub, n=10):
        return [{"x": 100.0, "y": 100.0, "r": 40.0, "source": "detected", "rim": rim, "hub": hub}] * n

    good, weak = track(0.7, 0.9), track(0.45, 0.3)
    out = drop_plateless_tracks([dict(v) for v in good] + [None] + weak, good + [None] + weak)
    assert all(v.get("x") is not None for v in out[:10])
    assert all(v.get("dropped") for v in out[11:])


@pytest.mark.parametrize("clip", ["tutorial_dev/good/good_01.mp4", "tutorial_dev/good/good_02.mp4",
                                  "tutorial_dev/good/good_03.mp4", "tutorial_dev/good/good_06.mp4"])
def test_no_bar_on_the_lifters_hips_or_thighs(tmp_path, clip):
    # The 45-degree clips (G1) tracked the thighs and good_06 the hips: circles drawn by the
    # lifter's outline, 0.5-1.3 plate radii above the wrists. The bar hangs from the hands: no
    # position may sit more than ABOVE_WRIST_MAX_R radii above them (a glitch of the wrist
    # keypoints aside: 95% of the samples).
    from deadlift_utils.bar import ABOVE_WRIST_MAX_R

    seq = _extract(clip, tmp_path)
    xy, r, _ = bar_positions(seq)
    kp = np.asarray(seq.keypoints_xy, float)
    wy = np.nanmean(kp[:, [KP["r_wrist"], KP["l_wrist"]], 1], axis=1)
    ok = np.isfinite(xy[:, 0]) & np.isfinite(wy)
    if not ok.any():
        return   # no bar found is an honest answer
    above = (wy[ok] - xy[ok, 1]) / r[ok]
    assert np.percentile(above, 95) <= ABOVE_WRIST_MAX_R + 0.1, np.round(np.sort(above)[-5:], 2)


@pytest.mark.parametrize("clip", ["yfgd_small/bad/bad_009.mp4", "yfgd_small/bad/bad_008.mp4"])
def test_track_moves_from_an_inner_ring_to_the_plate_rim(tmp_path, clip):
    # These Eleiko plates have a lettering ring at ~0.8 of the rim's radius. The track used to
    # lock onto it at the start (~105-110 px; the rim is ~135-140 px), and the rim then failed the
    # +-20% size check against the track: bad_009 lost the plate for most of the pull (33% of
    # the pull samples) and bad_008 got a scale 1.4x too small (its speed 1.4x too high). A clear
    # concentric circle above the track's size band is the plate's outer rim (CONCENTRIC_R).
    from deadlift_utils.reps import count_reps

    seq = _extract(clip, tmp_path)
    reps = count_reps(seq).reps
    summary = bar_summary(seq, reps, view="side")
    assert summary["tracked_share_pull"] >= 0.9, summary["notes"]
    _, r, _ = bar_positions(seq)
    pull = np.concatenate([np.arange(rep.pull_start, rep.top_start + 1) for rep in reps])
    assert np.nanmedian(r[pull]) >= 125, np.nanmedian(r[pull])
    assert all(0.2 <= x["mean_speed"] <= 1.2 for x in summary["reps"]), summary["reps"]


def test_wrists_behind_the_plate_do_not_break_its_track(tmp_path):
    # tutorial_dev bad_03: early in the pull the pose guesses the hidden wrists on the plate's upper
    # part, 1.5-1.8 radii of the tracked ring above the bar, and the plate's circles failed
    # WRIST_MAX_R for a few samples (88% of the pull, one hand-marked frame without a position).
    # A circle concentric with the track is the plate the track follows: kept.
    from deadlift_utils.reps import count_reps

    clip = "tutorial_dev/bad/bad_03"
    seq = _extract(clip + ".mp4", tmp_path)
    summary = bar_summary(seq, count_reps(seq).reps, view="side")
    assert summary["tracked_share_pull"] >= 0.9, summary["notes"]
    xy, _, _ = bar_positions(seq)
    with open(MARKS) as f:
        marks = [m for m in csv.DictReader(line for line in f if not line.startswith("#")) if m["video"] == clip]
    assert len(marks) >= 8
    for m in marks:
        k = int(np.flatnonzero(seq.frame_index == int(m["frame"]))[0])
        err = np.hypot(xy[k, 0] - float(m["x_px"]), xy[k, 1] - float(m["y_px"])) / float(m["plate_diameter_px"])
        assert err <= 0.1, (m["frame"], err)   # NaN (no position) fails too


def test_colour_rim_ratio_sees_a_rim_only_colour_shows():
    # A painted plate: a red rim (grey level ~81) on a grey wall of the same brightness, a white
    # ring inside it (what the grey Hough search locks onto). The rim has no edge in grey; on
    # the colour gradient it is found at its radius (52 / 40 = 1.3 x the ring's); the same picture
    # in grey has none, and a plain disc with nothing around it has none either.
    from deadlift_utils.bar import _colour_rim_ratio

    img = np.full((240, 240, 3), 81, np.uint8)
    cv2.circle(img, (120, 120), 52, (30, 30, 200), -1, cv2.LINE_AA)     # red rim, same grey level
    cv2.circle(img, (120, 120), 40, (235, 235, 235), -1, cv2.LINE_AA)   # white ring
    cv2.circle(img, (120, 120), 30, (30, 30, 200), -1, cv2.LINE_AA)
    grey = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)

    def strong(im):
        g = cv2.GaussianBlur(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY), (5, 5), 1.2)
        mag = np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3))
        return max(float(np.percentile(mag, 90)), 8.0)

    ratio = _colour_rim_ratio(img, 1.0, 120.0, 120.0, 40.0, 100.0, strong(img))
    assert ratio is not None and abs(ratio - 1.3) < 0.05, ratio
    assert _colour_rim_ratio(grey, 1.0, 120.0, 120.0, 40.0, 100.0, strong(grey)) is None
    plain = np.full((240, 240, 3), 81, np.uint8)
    cv2.circle(plain, (120, 120), 40, (235, 235, 235), -1, cv2.LINE_AA)
    assert _colour_rim_ratio(plain, 1.0, 120.0, 120.0, 40.0, 100.0, strong(plain)) is None


@pytest.mark.parametrize("clip", ["tutorial_dev/bad/bad_03", "tutorial_dev/good/good_05",
                                  "yfgd_small/good/good_001", "yfgd_small/good/good_004"])
def test_plate_size_is_the_outer_rim(tmp_path, clip):
    # The plate's diameter sets the cm and m/s scale. On the Captain-America plates (tutorial_dev
    # B2, G2) the track follows the white ring, whose diameter is 0.77-0.81 of the plate's (the
    # red rim on a grey wall has no edge in grey): speeds came out ~30% high. The rim seen on the
    # colour gradient gives the plate's size; bumper plates (yfgd_small), tracked on their rim,
    # keep theirs. Tracked / hand-marked diameter over the marked frames.
    seq = _extract(clip + ".mp4", tmp_path)
    xy, r, _ = bar_positions(seq)
    with open(MARKS) as f:
        marks = [m for m in csv.DictReader(line for line in f if not line.startswith("#")) if m["video"] == clip]
    assert len(marks) >= 7
    sizes = []
    for m in marks:
        k = int(np.flatnonzero(seq.frame_index == int(m["frame"]))[0])
        sizes.append(2 * r[k] / float(m["plate_diameter_px"]))   # NaN (no position) fails below
    sizes = np.array(sizes)
    assert 0.9 <= np.median(sizes) <= 1.1, np.round(sizes, 2)
    assert np.mean(np.abs(sizes - 1) <= 0.15) >= 0.75, np.round(sizes, 2)


def test_plate_switch_inside_a_track_is_cut():
    """A track whose detections jump to another plate (steady on both sides: yfgd_small bad_004's
    far plate -> near plate's ring) keeps only its longer piece; a lone wrong circle is no switch."""
    from deadlift_utils.bar import drop_plate_switches, smooth_track

    frames = list(range(0, 40, 2))
    raw = [{"x": 100.0, "y": 300.0 - 3 * k, "r": 20.0, "source": "detected", "rim": 0.6, "hub": 0.6}
           for k in range(14)]
    raw += [{"x": 160.0, "y": 250.0 - 3 * k, "r": 18.0, "source": "detected", "rim": 0.9, "hub": 0.7}
            for k in range(6)]
    out = drop_plate_switches(smooth_track(raw, frames), raw, frames)
    assert all("x" in v for v in out[:14])
    assert all("dropped" in v for v in out[14:])
    assert max(abs(v["x"] - 100.0) for v in out[:14]) < 2.0   # smoothed again without the other plate
    lone = [dict(v) for v in raw[:14]] + [dict(raw[0], y=250.0)]
    lone[7] = dict(lone[7], x=160.0)
    kept = smooth_track(lone, frames[:15])
    assert drop_plate_switches(kept, lone, frames[:15]) == kept



@pytest.mark.parametrize("dx, ry", [(100, 200), (60, 200), (-60, 200), (70, 120)])
def test_a_second_plate_behind_the_lifter_is_not_followed(tmp_path, dx, ry):
    # Two bars in view: a loaded bar on a rack behind the lifter, its plate beside the lifted
    # plate's path (1.5-2.5 plate radii from it) or under it (the lifted plate passes over it).
    # The path and the speed are the lifted plate's.
    n = 60
    centres, true_mean, _ = _path(n)
    path = tmp_path / "two_bars.mp4"
    _write_clip(path, centres, still=[(centres[0, 0] + dx, ry)])
    seq = _run(path, centres)
    xy, _, _ = bar_positions(seq)
    ok = np.isfinite(xy[:, 0])
    assert ok.mean() >= 0.95
    err = np.hypot(*(xy[ok] - centres[ok]).T)
    # Never on the rack's plate. Beside it the lifted plate's circle is found up to 0.14
    # diameters off for a few samples (circles crossing its rim and its inner ring), inside the
    # issue's accuracy bound (0.25).
    assert np.median(err) <= 0.05 * 2 * R and np.max(err) <= 0.25 * 2 * R
    summary = bar_summary(seq, [_rep(n)], view="side")
    assert summary["measured"]
    assert summary["reps"][0]["mean_speed"] == pytest.approx(true_mean / (2 * R / 0.45), rel=0.05)


def test_a_second_plate_near_the_hands_is_noted(tmp_path):
    # yfgd_small bad_001: other plate-sized circles near the hands on most samples (the bar's
    # blue 20 kg plate behind its red 25 kg one, a red plate at the frame's edge). The report
    # says so, and the path stays on the track it follows.
    from deadlift_utils.reps import count_reps

    seq = _extract("yfgd_small/bad/bad_001.mp4", tmp_path)
    summary = bar_summary(seq, count_reps(seq).reps, view="side")
    assert summary["measured"] and summary["tracked_share_pull"] >= 0.9
    assert any("other plate-sized circles near the hands" in s for s in summary["notes"]), summary["notes"]
