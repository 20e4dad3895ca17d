"""Pose-extraction benchmark: speed per model variant, wall time per clip, detection per video.

Prints the tables and writes them to docs/extraction_results.md (+ a contact sheet PNG).
Run: .venv/bin/python scripts/benchmark_extraction.py [--data ../shared/data] [--out outputs/benchmarks/extraction]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from deadlift_utils import config
from deadlift_utils.drawing import contact_sheet
from deadlift_utils.estimators import make_estimator
from deadlift_utils.extract import extract_folder, extract_video
from deadlift_utils.quality import assess
from deadlift_utils.train import results_markdown
from deadlift_utils.video import iter_frames


def variant_speed(clip: Path, stride: int = 5) -> pd.DataFrame:
    """Sampled frames per second of pose inference alone (frames decoded beforehand), as
    extraction drives the estimator: `detect_stream`, whose landmarkers run in
    `threads` threads (one and the default, min(2, cores))."""
    frames = list(iter_frames(clip, stride))
    rows = []
    for variant in ("lite", "full", "heavy"):
        for threads in sorted({1, min(2, os.cpu_count() or 1)}):
            with make_estimator("blazepose", variant, threads=threads) as est:
                list(est.detect_stream((i, f, 0) for i, f in frames[:threads]))  # warm-up, every landmarker
                t0 = time.perf_counter()
                n = sum(1 for _ in est.detect_stream((i, f, 0) for i, f in frames[1:]))
                dt = time.perf_counter() - t0
            rows.append({"variant": variant, "threads": threads, "frames": n, "ms_per_frame": round(1000 * dt / n, 1),
                         "sampled_frames_per_s": round(n / dt, 1)})
    return pd.DataFrame(rows)


def clip_wall_time(clip: Path) -> pd.DataFrame:
    """Whole extraction of one clip (model load excluded: a loaded estimator is reused), JSON + both videos."""
    rows = []
    with make_estimator("blazepose", "full") as est:
        for stride in (5, 1):
            with tempfile.TemporaryDirectory() as tmp:
                r = extract_video(clip, tmp, frame_stride=stride, estimator=est, redo=True)
                rows.append({"clip": clip.name, "stride": stride, "sampled_frames": len(r.sequence),
                             "wall_s": round(r.seconds, 2), "videos_written": r.overlay_path is not None})
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        extract_video(clip, tmp, frame_stride=5)
    rows.append({"clip": clip.name, "stride": 5, "sampled_frames": "", "wall_s": round(time.perf_counter() - t0, 2),
                 "videos_written": "True (incl. model load)"})
    return pd.DataFrame(rows)


def detection_table(data: Path, out: Path) -> pd.DataFrame:
    rows, sheet = [], []
    for name in ("yfgd_small", "kettlebell_errors"):
        res = extract_folder(data / "videos" / name, out / "poses" / name, frame_stride=5, progress=False)
        for r in res.done:
            q = assess(r.sequence)
            vid = f"{name}/{r.video_path.relative_to(data / 'videos' / name).with_suffix('').as_posix()}"
            rows.append({"video": vid, "frames": q.frames, "lifter_found": f"{q.lifter_found_rate:.0%}",
                         "all_lift_joints": f"{q.detection_rate:.0%}", "confidence": round(q.mean_confidence, 2),
                         "pre_flagged": "; ".join(q.flags) or "-"})
            sheet.append((vid, r.overlay_path))
        for v, msg in res.failed:
            rows.append({"video": str(v), "frames": 0, "lifter_found": "failed", "all_lift_joints": msg,
                         "confidence": "", "pre_flagged": ""})
    contact_sheet(sheet, out / "contact_sheet.png", columns=7, tile_width=300)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(config.SHARED_DATA_DIR))
    ap.add_argument("--out", default="outputs/benchmarks/extraction")
    ap.add_argument("--doc", default="docs/extraction_results.md")
    args = ap.parse_args()
    data, out = config.require_dir(config.resolve(args.data)), config.resolve(args.out)
    clip = data / "videos" / "yfgd_small" / "good" / "good_001.mp4"
    speed = variant_speed(clip)
    print(speed.to_string(index=False))
    wall = clip_wall_time(clip)
    print(wall.to_string(index=False))
    det = detection_table(data, out)
    print(det.to_string(index=False))
    stamp = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {config.describe_machine()}"
    doc = config.resolve(args.doc)
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(
        f"# Pose extraction results\n\nMeasured {stamp} by `scripts/benchmark_extraction.py`.\n\n"
        f"## Inference speed per BlazePose variant ({clip.name}, 1920x1080, every 5th frame, CPU, "
        "pose model alone on decoded frames, in 1 and 2 threads as extraction runs it)\n\n"
        f"{results_markdown(speed, '.1f')}\n\n"
        f"## Wall time for one 1080p clip ({clip.name}, 4.8 s), JSON + skeleton + overlay video\n\n"
        f"{results_markdown(wall, '.2f')}\n\n"
        f"## Detection per video (BlazePose full, stride 5)\n\n"
        "`lifter_found`: sampled frames where the lifter was found at all; `all_lift_joints`: frames where a "
        "shoulder, hip, knee and ankle were all found (the review's detection rate). The contact sheet is "
        f"`{out.relative_to(config.PROJECT_ROOT) if out.is_relative_to(config.PROJECT_ROOT) else out}/contact_sheet.png`.\n\n"
        f"{results_markdown(det, '.2f')}\n")
    print("wrote", doc)


if __name__ == "__main__":
    main()
