"""Pose speed benchmark (issue 14): the project's estimator against the bare library, paired.

All arms run in one process on the same decoded frames, alternating frame by frame (the order
of the arms rotates each frame), so load from other jobs on this shared 2-core machine falls on
all alike. Figures are medians of per-frame times and ratios.
Arms: `bare` = MediaPipe PoseLandmarker, same model and confidences, VIDEO mode, num_poses=1
(one-pose tracking: the person detector runs only when the track is lost), fed the full decoded
frame, BGR->RGB included; `bare_multi` = the same with num_poses=3 (the detector runs on every
frame while fewer than 3 people are tracked: what the estimator asks of the library);
`estimator` = deadlift_utils BlazePoseEstimator + LifterTracker as extraction drives them;
`*_seg` = the same with segmentation masks on (extraction's analyzers need them).

Why the estimator does not use one-pose tracking (`--tracking-check`, also run by default): the
tracked poses are a different measurement from per-frame detection. The check extracts the same
clips with VIDEO num_poses=1 and with IMAGE-mode num_poses=1 (detector every frame, no tracking)
and compares each with the estimator's mode (VIDEO num_poses=3): per-joint RMSE in pixels, and
the time shift (in samples) at which the two series line up best.

Also compares the per-video detection table of issue 3 (scripts/benchmark_extraction.py)
with one saved before the change (`--before`, a CSV written by `--detection-csv` at the old commit).

Run: .venv/bin/python scripts/benchmark_speed.py [--rounds 3] [--before docs/detection_before_speed.csv]
     .venv/bin/python scripts/benchmark_speed.py --detection-csv out.csv   (table only)
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from deadlift_utils import config
from deadlift_utils.estimators import BlazePoseEstimator, LifterTracker, _import_mediapipe_tasks, _quiet_native_stderr
from deadlift_utils.train import results_markdown
from deadlift_utils.video import iter_frames

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_extraction import detection_table  # noqa: E402  (the issue-3 table, unchanged)


class BareLandmarker:
    """The library alone: one VIDEO-mode PoseLandmarker (num_poses=1 unless told), nothing else."""

    def __init__(self, path: Path, segmentation: bool, num_poses: int = 1):
        import mediapipe as mp

        BaseOptions, vision = _import_mediapipe_tasks()
        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path), delegate=BaseOptions.Delegate.CPU),
            running_mode=vision.RunningMode.VIDEO, num_poses=num_poses, min_pose_detection_confidence=0.3,
            min_pose_presence_confidence=0.3, min_tracking_confidence=0.3,
            output_segmentation_masks=segmentation)
        with _quiet_native_stderr():
            self.lm = vision.PoseLandmarker.create_from_options(options)
        self.mp, self.ts = mp, 0

    def run(self, frame_bgr, timestamp_ms):
        self.ts = max(self.ts + 1, timestamp_ms)
        rgb = np.ascontiguousarray(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB))
        return self.lm.detect_for_video(self.mp.Image(image_format=self.mp.ImageFormat.SRGB, data=rgb), self.ts)


class ProjectEstimator:
    """The estimator plus the tracker, as extract_video drives them."""

    def __init__(self, variant: str, segmentation: bool):
        self.est = BlazePoseEstimator(variant, segmentation=segmentation)
        self.tracker = None

    def new_round(self, w, h):
        self.est.start_video()
        self.tracker = LifterTracker(w, h)

    def run(self, frame_bgr, timestamp_ms):
        return self.tracker.choose(self.est.detect(frame_bgr, timestamp_ms))


def pose_speed(clip: Path, variant: str = "full", stride: int = 5, rounds: int = 3) -> tuple[pd.DataFrame, dict]:
    from deadlift_utils.pose_models import task_path

    frames = list(iter_frames(clip, stride))
    fps = cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FPS) or 30.0
    h, w = frames[0][1].shape[:2]
    path = task_path(variant)
    arms = {"bare": BareLandmarker(path, False), "bare_multi": BareLandmarker(path, False, 3),
            "estimator": ProjectEstimator(variant, False),
            "bare_seg": BareLandmarker(path, True), "bare_multi_seg": BareLandmarker(path, True, 3),
            "estimator_seg": ProjectEstimator(variant, True)}
    times = {k: [] for k in arms}
    offset = 0
    for r in range(rounds + 1):            # round 0 warms up (first inferences, lazy landmarkers)
        for a in arms.values():
            if isinstance(a, ProjectEstimator):
                a.new_round(w, h)
        for n, (i, f) in enumerate(frames):
            names = list(arms)
            names = names[n % len(names):] + names[:n % len(names)]   # rotate the order
            ts = offset + int(round(i * 1000 / fps))
            for k in names:
                t0 = time.perf_counter()
                arms[k].run(f, ts)
                if r:
                    times[k].append(time.perf_counter() - t0)
        offset += int(round(frames[-1][0] * 1000 / fps)) + 10_000
    rows = []
    for k, t in times.items():
        med = statistics.median(t) * 1000
        base_t = times["bare_seg" if k.endswith("_seg") else "bare"]
        base = statistics.median(base_t) * 1000
        pair = [b / e for b, e in zip(base_t, t)]
        rows.append({"clip": clip.stem, "arm": k, "frames": len(t), "median_ms_per_frame": round(med, 1),
                     "mean_ms_per_frame": round(1000 * sum(t) / len(t), 1),
                     "frames_per_s_at_median": round(1000 / med, 1),
                     "frames_per_s_at_mean": round(len(t) / sum(t), 1),
                     "speed_vs_bare_median": round(base / med, 2),
                     "speed_vs_bare_paired_median": round(statistics.median(pair), 2),
                     "speed_vs_bare_total": round(sum(base_t) / sum(t), 2)})
    for a in arms.values():
        (a.lm if isinstance(a, BareLandmarker) else a.est).close()
    return pd.DataFrame(rows)


def tracking_check(clips: list[Path], stride: int = 2) -> pd.DataFrame:
    """Per joint: RMSE (px) of one-pose VIDEO tracking and of per-frame IMAGE detection against
    the estimator's mode (VIDEO, num_poses=3), at no shift and at the best shift (samples)."""
    import mediapipe as mp

    from deadlift_utils.keypoints import KP, blazepose_to_coco
    from deadlift_utils.pose_models import task_path

    BaseOptions, vision = _import_mediapipe_tasks()
    V, I = vision.RunningMode.VIDEO, vision.RunningMode.IMAGE

    def run(clip, n, mode):
        opts = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(task_path("full")), delegate=BaseOptions.Delegate.CPU),
            running_mode=mode, num_poses=n, min_pose_detection_confidence=0.3,
            min_pose_presence_confidence=0.3, min_tracking_confidence=0.3)
        with _quiet_native_stderr():
            lm = vision.PoseLandmarker.create_from_options(opts)
        fps = cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FPS) or 30.0
        out = []
        for i, f in iter_frames(clip, stride):
            h, w = f.shape[:2]
            im = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(cv2.cvtColor(f, cv2.COLOR_BGR2RGB)))
            r = lm.detect_for_video(im, int(round(i * 1000 / fps))) if mode == V else lm.detect(im)
            if r.pose_landmarks:   # the tallest person (these clips have one lifter)
                best = max(r.pose_landmarks, key=lambda l: max(p.y for p in l) - min(p.y for p in l))
                out.append(blazepose_to_coco(np.array([[p.x * w, p.y * h, 1.0] for p in best]))[:, :2])
            else:
                out.append(np.full((18, 2), np.nan))
        with _quiet_native_stderr():
            lm.close()
        return np.array(out)

    def rmse(a, b, shift):
        x, y = (a[:len(a) - shift], b[shift:]) if shift >= 0 else (a[-shift:], b[:len(b) + shift])
        m = np.isfinite(x) & np.isfinite(y)
        return float(np.sqrt(np.mean((x[m] - y[m]) ** 2))) if m.any() else np.nan

    rows = []
    for clip in clips:
        ref = run(clip, 3, V)
        for name, n, mode in (("VIDEO num_poses=1 (tracking)", 1, V), ("IMAGE num_poses=1 (detect every frame)", 1, I)):
            got = run(clip, n, mode)
            for joint in ("r_shoulder", "r_hip", "r_knee"):
                a, b = ref[:, KP[joint], 1], got[:, KP[joint], 1]
                by_shift = {sh: rmse(a, b, sh) for sh in range(-3, 4)}
                best = min(by_shift, key=lambda k: by_shift[k])
                rows.append({"clip": clip.stem, "mode": name, "joint": joint, "rmse_px_no_shift": round(by_shift[0], 1),
                             "best_shift_samples": best, "rmse_px_at_best_shift": round(by_shift[best], 1)})
    return pd.DataFrame(rows)


def compare_detection(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    def pct(s):
        return pd.to_numeric(s.astype(str).str.rstrip("%"), errors="coerce")

    m = before.merge(after, on="video", suffixes=("_before", "_after"))
    out = pd.DataFrame({"video": m["video"],
                        "lifter_found": m["lifter_found_before"] + " -> " + m["lifter_found_after"],
                        "all_lift_joints": m["all_lift_joints_before"] + " -> " + m["all_lift_joints_after"],
                        "pre_flagged_after": m["pre_flagged_after"]})
    ok = (pct(m["lifter_found_after"]) >= pct(m["lifter_found_before"])) & \
         (pct(m["all_lift_joints_after"]) >= pct(m["all_lift_joints_before"]))
    out["equal_or_better"] = np.where(ok, "yes", "NO")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(config.SHARED_DATA_DIR))
    ap.add_argument("--out", default="outputs/benchmarks/speed")
    ap.add_argument("--doc", default="docs/speed_results.md")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--before", default="docs/detection_before_speed.csv")
    ap.add_argument("--detection-csv", help="only compute the detection table and write it here")
    ap.add_argument("--skip-detection", action="store_true")
    args = ap.parse_args()
    data, out = config.require_dir(config.resolve(args.data)), config.resolve(args.out)
    if args.detection_csv:
        det = detection_table(data, out)
        det.to_csv(args.detection_csv, index=False)
        print(det.to_string(index=False))
        return
    clips = [data / "videos" / "yfgd_small" / "good" / "good_001.mp4", data / "videos" / "yfgd_small" / "bad" / "bad_005.mp4"]
    speed = pd.concat([pose_speed(c, rounds=args.rounds) for c in clips], ignore_index=True)
    print(speed.to_string(index=False))
    check = tracking_check([data / "videos" / "yfgd_small" / "good" / f"good_00{k}.mp4" for k in (5, 7)])
    print(check.to_string(index=False))
    stamp = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {config.describe_machine()}"
    text = (f"# Pose speed (issue 14)\n\nMeasured {stamp} by `scripts/benchmark_speed.py`, "
            f"while other jobs ran on the machine (so the paired ratio is the figure to read).\n\n"
            f"## Paired: the bare library vs the project's estimator (1920x1080 clips, every 5th "
            f"frame, BlazePose full, {args.rounds} rounds after one warm-up round, arms alternating frame by frame)\n\n"
            f"{results_markdown(speed, '.2f')}\n\n"
            "`speed_vs_bare_median`: the bare one-pose arm's median ms / this arm's (`bare` for the arms "
            "without masks, `bare_seg` for those with); `speed_vs_bare_paired_median`: the median of the per-frame "
            "ratios (same frame, adjacent in time); `speed_vs_bare_total`: summed time.\n\n"
            "## One-pose tracking is a different measurement (stride 2, the estimator's mode as reference)\n\n"
            f"{results_markdown(check, '.1f')}\n\n"
            "The y coordinate (px, 1080p) of each joint. Detecting in every frame (IMAGE mode) reproduces the "
            "estimator's poses within a few pixels at no shift; one-pose tracking differs by 10-20 px and its "
            "joints line up best at different time shifts, which moves exactly what the rules time (hips against "
            "shoulders). Measured by scripts/evaluate_form.py with the tracked poses (one-pose VIDEO tracking with "
            "a multi-person pass once a second, 2026-11-30): leave-one-source-out verdicts 84/125 against 88/125 "
            "(yfgd_small 13/20 vs 16/20, kettlebell_errors 6/8 vs 7/8, tutorial_dev 12/14 vs 13/14). So the "
            "estimator keeps detecting in every frame, and the library's own speed for that work is `bare_multi`.\n")
    if not args.skip_detection:
        det = detection_table(data, out)
        det.to_csv(out / "detection_after.csv", index=False)
        before_path = config.resolve(args.before)
        if before_path.is_file():
            cmp = compare_detection(pd.read_csv(before_path, dtype=str).fillna(""), det.astype(str))
            print(cmp.to_string(index=False))
            text += (f"\n## Detection per video before -> after (stride 5, full; before = `{args.before}`, "
                     "the same table computed at the commit before this change)\n\n"
                     f"{results_markdown(cmp, '.2f')}\n\nClips equal or better on both measures: "
                     f"{(cmp['equal_or_better'] == 'yes').sum()} of {len(cmp)}.\n")
        else:
            text += f"\n## Detection per video\n\n{results_markdown(det, '.2f')}\n"
    doc = config.resolve(args.doc)
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
    print("wrote", doc)


if __name__ == "__main__":
    main()
