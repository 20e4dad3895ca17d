"""Measure the analysis stage on the shared data and print Markdown tables.

    python scripts/benchmark_analysis.py [--pose-dir data/interim/poses] [--timing-video V]
                                         [--stride 2] [--skip-timing] [--out docs/analysis_results.md]

1. Rep counts on the 20 yfgd_small + 8 kettlebell_errors videos vs the manual counts in
   tests/fixtures/rep_counts.csv (poses from --pose-dir, else extracted into a temp cache).
2. Named errors x video: flagged reps / reps, for kettlebell_errors (BlazePose, both views)
   and openpose_sequences (front / middle views); "-" where the rule's view does not allow it.
3. End-to-end time of `analyze_video` on one ~5 s 1080p clip (pose extraction at --stride,
   rules, plots, annotated video, offline feedback).
"""
from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deadlift_utils.analyze import analyze_pose, analyze_video, load_or_extract_pose  # noqa: E402
from deadlift_utils import config  # noqa: E402
from deadlift_utils.config import OPENPOSE_SEQUENCES_DIR, SHARED_DATA_DIR  # noqa: E402
from deadlift_utils.io_utils import atomic_write_text  # noqa: E402
from deadlift_utils.pose import load_pose_json  # noqa: E402
from deadlift_utils.reps import count_reps  # noqa: E402
from deadlift_utils.rules import RULES  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "rep_counts.csv"
VIDEOS = SHARED_DATA_DIR / "videos"


def manual_counts():
    lines = [l for l in FIXTURE.read_text().splitlines() if l.strip() and not l.startswith("#")]
    return [(r["video"], int(r["reps"])) for r in csv.DictReader(lines)]


def rep_table(pose_dirs, cache):
    rows, exact = [], 0
    for rel, manual in manual_counts():
        seq = load_or_extract_pose(VIDEOS / rel, pose_dirs, cache, frame_stride=5, relative_to=VIDEOS)
        got = count_reps(seq).count
        exact += got == manual
        rows.append(f"| {rel} | {seq.frame_stride} | {manual} | {got} | {'yes' if got == manual else '**no**'} |")
    head = ["| video | frame stride | manual count | counted | exact |", "|---|---|---|---|---|"]
    return exact, len(rows), head + rows


def error_table(seqs: dict, views: dict, names):
    head = ["| video | view | reps | verdict | " + " | ".join(names) + " |",
            "|---|---|---|---|" + "---|" * len(names)]
    rows = []
    for label, seq in seqs.items():
        rep = analyze_pose(seq, view=views.get(label), use_openai=False)
        n = len(rep["reps"])
        counts = {}
        for r in rep["reps"]:
            for e in r["errors"]:
                counts[e["name"]] = counts.get(e["name"], 0) + 1
        checked = set((rep.get("rules") or {}).get("checked", []))
        cells = [f"{counts.get(nm, 0)}/{n}" if nm in checked else "-" for nm in names]
        cells = [f"**{c}**" if c != "-" and not c.startswith("0/") else c for c in cells]
        rows.append(f"| {label} | {rep['view']} | {n} | {rep['verdict']} | " + " | ".join(cells) + " |")
    return head + rows


def timing(video: Path, stride: int, runs: int = 2):
    out = []
    for k in range(runs):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            rep = analyze_video(video, d, frame_stride=stride, use_openai=False)
            total = time.perf_counter() - t0
            out.append((total, rep["timing_s"]))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pose-dir", action="append", default=None,
                    help="folder(s) with <relative video path>.json poses (default data/interim/poses, where notebook 02 writes; missing poses are extracted)")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "deadlift_test_poses"),
                    help="where missing poses are extracted")
    ap.add_argument("--timing-video", default=str(VIDEOS / "yfgd_small" / "bad" / "bad_003.mp4"))
    ap.add_argument("--stride", type=int, default=2, help="frame stride for the timing run (CLI default 2)")
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--out", help="also write the Markdown here")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore", RuntimeWarning)
    pose_dirs = args.pose_dir or [str(config.POSES_DIR)]

    md = [f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {config.describe_machine()}.", ""]
    exact, n, rows = rep_table(pose_dirs, args.cache)
    md += [f"### Rep counts vs manual counts: {exact}/{n} exact", ""] + rows + [""]

    kb = {}
    for f in sorted((VIDEOS / "kettlebell_errors").glob("*.mp4")):
        kb[f.stem] = load_or_extract_pose(f, pose_dirs, args.cache, frame_stride=5, relative_to=VIDEOS)
    names = [r.name for r in RULES]
    md += ["### Named errors x video: kettlebell_errors (BlazePose with 3D world keypoints; view predicted)",
           "", "Cells: flagged reps / reps; `-` = rule not valid in this view.", ""]
    md += error_table(kb, {}, names) + [""]

    labels = list(csv.DictReader(open(OPENPOSE_SEQUENCES_DIR / "labels.csv")))
    op = {f"{r['file'][:-5]} ({r['error'] or 'correct'})": load_pose_json(OPENPOSE_SEQUENCES_DIR / r["file"])
          for r in labels}
    op_views = {f"{r['file'][:-5]} ({r['error'] or 'correct'})": r["view"] for r in labels}
    md += ["### Named errors x video: openpose_sequences (2D OpenPose; labelled view)", ""]
    md += error_table(op, op_views, names) + [""]

    if not args.skip_timing:
        video = Path(args.timing_video)
        from deadlift_utils.video import probe_video

        info = probe_video(video)
        runs = timing(video, args.stride)
        md += [f"### End-to-end time: {video.name} ({info.width}x{info.height}, {info.duration_s:.1f} s, "
               f"{info.fps:.0f} fps), frame stride {args.stride}, offline feedback", "",
               "| run | total s | pose extraction s | analysis s | plots s | annotated video s |",
               "|---|---|---|---|---|---|"]
        for k, (total, t) in enumerate(runs, 1):
            md.append(f"| {k} | {total:.1f} | {t.get('pose_extraction', 0):.1f} | {t.get('analysis', 0):.2f} | "
                      f"{t.get('plots', 0):.1f} | {t.get('annotated_video', 0):.1f} |")
        md.append("")
    text = "\n".join(md)
    print(text)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
