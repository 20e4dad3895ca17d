"""Pose speed benchmark (issue 14): the project's estimator against the bare library, paired.

Both run in one process on the same decoded frames, alternating frame by frame (the order of
the arms rotates each frame), so load from other jobs on this shared 2-core machine falls on
both alike. Figures are medians of per-frame times and the ratio of the medians.
Arms: `bare` = MediaPipe PoseLandmarker, same model and confidences, VIDEO mode, num_poses=1,
fed the full decoded frame, BGR->RGB included; `estimator` = deadlift_utils BlazePoseEstimator
as extraction uses it (with the LifterTracker); `*_seg` = the same with segmentation masks on
(extraction's analyzers need them). Two clips: a plain side view (good_001) and a close-framed
gym clip whose tracked pose often lacks the feet (bad_005), where the multi-person pass runs most.

Also compares the per-video detection table of issue 3 (scripts/benchmark_extraction.py)
with one saved before the change (`--before`, a CSV written by `--detection-csv` at the old commit).

The `before` table is main's code on the same clips (docs/detection_before_speed.csv, written by
`--detection-csv` with main's deadlift_utils on PYTHONPATH).

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
    """The library alone: one VIDEO-mode PoseLandmarker, num_poses=1, nothing else."""

    def __init__(self, path: Path, segmentation: bool):
        import mediapipe as mp

        BaseOptions, vision = _import_mediapipe_tasks()
        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path), delegate=BaseOptions.Delegate.CPU),
            running_mode=vision.RunningMode.VIDEO, num_poses=1, min_pose_detection_confidence=0.3,
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
    arms = {"bare": BareLandmarker(path, False), "estimator": ProjectEstimator(variant, False),
            "bare_seg": BareLandmarker(path, True), "estimator_seg": ProjectEstimator(variant, True)}
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
    counts = {k: dict(a.est.counts) for k, a in arms.items() if isinstance(a, ProjectEstimator)}
    rows = []
    for k, t in times.items():
        med = statistics.median(t) * 1000
        base_t = times[k.replace("estimator", "bare")]
        base = statistics.median(base_t) * 1000
        pair = [b / e for b, e in zip(base_t, t)]
        rows.append({"clip": clip.stem, "arm": k, "frames": len(t), "median_ms_per_frame": round(med, 1),
                     "mean_ms_per_frame": round(1000 * sum(t) / len(t), 1),
                     "frames_per_s_at_median": round(1000 / med, 1),
                     "frames_per_s_at_mean": round(len(t) / sum(t), 1),
                     "speed_vs_bare_median": round(base / med, 2),
                     "speed_vs_bare_paired_median": round(statistics.median(pair), 2),
                     "speed_vs_bare_total": round(sum(times[k.replace("estimator", "bare")]) / sum(t), 2)})
    for a in arms.values():
        (a.lm if isinstance(a, BareLandmarker) else a.est).close()
    return pd.DataFrame(rows), counts


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
    parts = [pose_speed(c, rounds=args.rounds) for c in clips]
    speed = pd.concat([p[0] for p in parts], ignore_index=True)
    counts = {c.stem: p[1] for c, p in zip(clips, parts)}
    print(speed.to_string(index=False))
    print("passes of the estimator arms:", counts)
    stamp = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {config.describe_machine()}"
    text = (f"# Pose speed (issue 14)\n\nMeasured {stamp} by `scripts/benchmark_speed.py`, "
            f"while other jobs ran on the machine (so the paired ratio is the figure to read).\n\n"
            f"## Paired: bare library vs the project's estimator (1920x1080 clips, every 5th "
            f"frame, BlazePose full, {args.rounds} rounds after one warm-up round, arms alternating frame by frame)\n\n"
            f"{results_markdown(speed, '.2f')}\n\n"
            "`speed_vs_bare_median`: the bare arm's median ms / this arm's; `speed_vs_bare_paired_median`: the "
            "median of the per-frame ratios (same frame, adjacent in time); `speed_vs_bare_total`: summed time.\n\n"
            f"Passes run by the estimator arms over all rounds (warm-up included): `{counts}`. "
            "`single` = one-pose VIDEO tracking on the frame reduced to 540 px high, `multi` = multi-person IMAGE "
            "pass on the full frame, `reseed` = track re-pointed at the lifter.\n")
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
