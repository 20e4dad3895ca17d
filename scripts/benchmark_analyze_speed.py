"""How long `analyze` takes a user, end to end, against the clip's own duration.

    python scripts/benchmark_analyze_speed.py [--runs 3] [--durations 10 60] [--stride 2]
                                              [--source V] [--out docs/analyze_speed.md]
                                              [--before DIR --before-label TEXT]

Each run is the command a user types, `python -m deadlift_utils analyze CLIP --stride 2` (all
outputs: pose JSON, report JSON + HTML, plots, stills, annotated video; offline coaching, no
trained models), in a fresh process: wall time includes Python start-up and model loading.
Peak memory is the child process's peak RSS (os.wait4). Runs of the different clips alternate,
so a busy machine slows them alike; medians are reported. `--before DIR` (a checkout of an
earlier commit, e.g. `git worktree add /tmp/before ee6b1e1`) runs the same command from there
too, interleaved with this checkout's runs, for a paired before/after.

The clips are made from a real 1080p side-view deadlift of the shared data (default
yfgd_small/good/good_001.mp4, 4.8 s, 30 fps): played forwards then backwards, repeated up to the
duration, re-encoded as H.264 (the clip moves continuously, as a long set would; there are no
cuts). They are written to a temporary folder, never into the project.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from deadlift_utils import config
from deadlift_utils.config import SHARED_DATA_DIR
from deadlift_utils.io_utils import atomic_write_text
from deadlift_utils.video import probe_video

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = SHARED_DATA_DIR / "videos" / "yfgd_small" / "good" / "good_001.mp4"


def make_clip(source: Path, seconds: float, out: Path) -> Path:
    """`source` forwards then backwards, repeated, cut at `seconds`, as H.264 (crf 20)."""
    n = int(seconds // (2 * probe_video(source).duration_s)) + 1
    graph = (f"[0:v]split[a][b];[b]reverse[r];[a][r]concat=n=2:v=1[pp];"
             f"[pp]loop=loop={n}:size=32767:start=0,trim=duration={seconds},setpts=PTS-STARTPTS[v]")
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(source),
                    "-filter_complex", graph, "-map", "[v]", "-c:v", "libx264", "-preset", "veryfast",
                    "-crf", "20", "-pix_fmt", "yuv420p", str(out)], check=True)
    return out


def run_analyze(clip: Path, out_dir: Path, stride: int, code: Path = ROOT) -> tuple[float, float, float, dict]:
    """(wall seconds, peak RSS MiB, CPU seconds (user + system, the video encoder included), the
    report's timing_s) of one `analyze` run in a fresh process, with the deadlift_utils of `code`
    (a checkout)."""
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env["PYTHONPATH"] = str(code)
    cmd = [sys.executable, "-m", "deadlift_utils", "analyze", str(clip), "--out", str(out_dir),
           "--stride", str(stride), "--no-models"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=code, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"analyze failed on {clip} (exit {proc.returncode}):\n{out[-2000:]}")
    report = out_dir / f"{clip.stem}_report.json"
    timing = json.loads(report.read_text()).get("timing_s", {}) if report.is_file() else {}
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, timing


def stage_cpu(clip: Path, stride: int) -> list[tuple[str, float]]:
    """CPU ms per sample of each stage of `analyze`'s per-frame work, run one after another in
    this process on the same clip (`time.process_time`, all threads; the encoder as a child
    process): what the run must spend whatever overlaps it."""
    import resource

    from deadlift_utils.estimators import LifterTracker, make_estimator
    from deadlift_utils.extract import analysis_frame_analyzers
    from deadlift_utils.video import FrameFile, VideoWriter, iter_frames, scale_frame

    info = probe_video(clip)
    t = time.process_time()
    for _ in iter_frames(clip, stride):  # each frame dropped at once, as extraction does
        pass
    out = [("decoding (every sampled frame and the skipped ones between)", time.process_time() - t)]
    frames = [f for _, f in iter_frames(clip, stride)]
    n = len(frames)
    analyzers = analysis_frame_analyzers()
    for a in analyzers:
        a.start(clip, info)
    spent = {a.name: 0.0 for a in analyzers}
    values = {a.name: [] for a in analyzers}
    for seg, name in ((False, "pose model (BlazePose full, up to 3 people, no mask)"),
                      (True, "pose model with the segmentation mask")):
        est = make_estimator("blazepose", "full", segmentation=seg, threads=1)
        est.detect(frames[0], 0)  # the first inference warms the model up
        tracker = LifterTracker(info.width, info.height)
        pose_s, kps = 0.0, []
        for k, f in enumerate(frames):
            t = time.process_time()
            person = tracker.choose(est.detect(f, 0))
            pose_s += time.process_time() - t
            kps.append(np.full((18, 2), np.nan) if person is None else person.keypoints[:, :2])
            if seg:  # measured as extraction does, each mask dropped after its frame
                for a in analyzers:
                    t = time.process_time()
                    values[a.name].append(a.analyze(k * stride, f, person))
                    spent[a.name] += time.process_time() - t
        out.append((name, pose_s))
        est.close()
    out.append(("  of which the mask", out[-1][1] - out[-2][1]))
    for a in analyzers:
        t = time.process_time()
        a.finish(values[a.name], np.array(kps))
        out.append((f"per-frame measurement `{a.name}`", spent[a.name] + time.process_time() - t))
    scale = min(1.0, 720 / info.height)
    size = (int(round(info.width * scale)), int(round(info.height * scale)))
    with tempfile.TemporaryDirectory() as tmp:
        ff = FrameFile(Path(tmp) / "f.frames")
        t = time.process_time()
        for f in frames:
            ff.write(scale_frame(f, size))
        ff.close()
        out.append(("scaling to 720p and JPEG, kept for the annotated video", time.process_time() - t))
        t = time.process_time()
        small = list(FrameFile.read(Path(tmp) / "f.frames"))
        out.append(("reading them back (the annotated video)", time.process_time() - t))
        t, child = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
        with VideoWriter(Path(tmp) / "a.mp4", info.fps / stride, *size) as w:
            for f in small:
                w.write(f)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        enc = (after.ru_utime + after.ru_stime) - (child.ru_utime + child.ru_stime)
        out.append(("encoding the annotated video (H.264, ffmpeg)", time.process_time() - t + enc))
    return [(name, 1000 * sec / n) for name, sec in out] + [("samples", float(n))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--durations", type=float, nargs="+", default=[10.0, 60.0])
    ap.add_argument("--stride", type=int, default=2)
    ap.add_argument("--source", default=str(DEFAULT_SOURCE))
    ap.add_argument("--out", default=str(ROOT / "docs" / "analyze_speed.md"))
    ap.add_argument("--before", help="a checkout of an earlier commit, run beside this one")
    ap.add_argument("--before-label", default="before")
    ap.add_argument("--no-stages", dest="stages", action="store_false",
                    help="skip the per-stage CPU table (about a minute on the 10 s clip)")
    args = ap.parse_args(argv)
    codes = [("this checkout", ROOT)] + ([(args.before_label, Path(args.before).resolve())] if args.before else [])
    source = Path(args.source)
    if not source.is_file():
        print(f"error: {source}: no such video (the shared data folder, see README)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clips = [make_clip(source, d, tmp / f"clip_{int(d)}s.mp4") for d in args.durations]
        results: dict[tuple, list] = {(c, name): [] for c in clips for name, _ in codes}
        for r in range(args.runs):
            for clip in clips:
                for name, code in (codes if r % 2 == 0 else codes[::-1]):
                    wall, rss, cpu, timing = run_analyze(clip, tmp / f"out_{clip.stem}_{r}_{len(name)}", args.stride, code)
                    results[(clip, name)].append((wall, rss, cpu, timing))
                    print(f"run {r + 1}: {clip.name} [{name}]: {wall:.2f} s wall, {cpu:.1f} s CPU, "
                          f"peak RSS {rss:.0f} MiB", flush=True)
        stages = stage_cpu(clips[0], args.stride) if args.stages else []
        first_duration = probe_video(clips[0]).duration_s
        rows = []
        for clip in clips:
            info = probe_video(clip)
            for name, _ in codes:
                runs = results[(clip, name)]
                walls = [w for w, _, _, _ in runs]
                med = statistics.median(walls)
                cpu = statistics.median(c for _, _, c, _ in runs)

                def part(key):
                    vals = [t[key] for _, _, _, t in runs if key in t]
                    return f"{statistics.median(vals):.1f}" if vals else "-"
                rows.append(f"| {info.duration_s:.1f} s, {info.width}x{info.height}, {info.fps:.0f} fps | {name} | "
                            f"{len(walls)} | {med:.2f} | {min(walls):.2f}-{max(walls):.2f} | "
                            f"{med / info.duration_s:.2f}x | {'yes' if med <= 0.5 * info.duration_s else '**no**'} | "
                            f"{max(m for _, m, _, _ in runs):.0f} | {cpu:.1f} | {cpu / 2:.1f} | "
                            f"{part('pose_extraction')} | {part('annotated_video')} | {part('plots')} |")
    md = [
        "# `analyze` wall time against the clip's duration (issue 14)",
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {config.describe_machine()}, "
        f"by `scripts/benchmark_analyze_speed.py --runs {args.runs}` (load average at the end: "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}).",
        "",
        f"Command per run: `python -m deadlift_utils analyze CLIP --stride {args.stride} --no-models` in a fresh "
        "process (start-up and model loading included; pose JSON, report JSON + HTML, plots, stills, "
        "annotated video, offline coaching). "
        + (f"`{args.before_label}` = the same command run from `{args.before}`, interleaved. " if args.before else "")
        + "Clips: "
        f"`{source.relative_to(SHARED_DATA_DIR) if source.is_relative_to(SHARED_DATA_DIR) else source}` "
        "forwards then backwards, repeated to the duration (continuous motion, no cuts).",
        "",
        "| clip | code | runs | median wall s | min-max s | wall / duration | <= 0.5x | peak RSS MiB | CPU s | CPU / 2 cores s | pose extraction s | annotated video s | plots s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "CPU s: user + system time of the run, the video encoder included (medians). On this 2-core machine "
        "no overlap brings the wall time under half of it (`CPU / 2 cores`), so that column is the floor "
        "for this amount of work. The last three columns are the report's own `timing_s` (medians): the "
        "annotated video is written in a thread while the plots are drawn. The pose extraction runs the "
        "pose model in two threads (BlazePose detects the people in every frame afresh, so frames can be "
        "split between two landmarkers), decoding one frame ahead in a third and the per-frame "
        "measurements (shot cuts, the back's outline, the bar) in a fourth.",
        "",
    ]
    if stages:
        n = stages[-1][1]
        dur = first_duration
        per = dict(stages[:-1])
        pose_decode = (per[stages[0][0]] + per["pose model with the segmentation mask"]) * n / 1000
        md += [
            f"## Where the CPU goes ({args.durations[0]:.0f} s clip, {n:.0f} samples at stride {args.stride})",
            "",
            "Each stage run alone, one after another, on the same frames (`stage_cpu`: CPU time of all "
            "threads, the encoder included):",
            "",
            "| stage | CPU ms per sample | CPU s for the clip |",
            "|---|---|---|",
            *[f"| {name} | {ms:.1f} | {ms * n / 1000:.2f} |" for name, ms in stages[:-1]],
            "",
            f"Twice real time on this clip is {0.5 * dur:.1f} s of wall time, so at most {dur:.1f} s of CPU on "
            f"2 cores. Decoding and the pose model with its mask alone take {pose_decode:.1f} s of it, "
            "before the measurements, the outputs, start-up and the plots; the poses must stay the "
            "ones the form norms were fitted on (a smaller input moves joints by 3-5 px median, one-pose "
            "tracking cost verdicts: docs/speed_results.md).",
            "",
        ]
    atomic_write_text(Path(args.out), "\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
