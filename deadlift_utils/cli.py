"""Command line: `python -m deadlift_utils COMMAND ...` (see `--help`).

Expected problems (missing file, unreadable video, malformed JSON) print one line naming
the file and the fix, and exit non-zero; no traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

EXPECTED_ERRORS = (FileNotFoundError, ValueError, RuntimeError)


def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def _warn(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one `warning: ...` line (no source location, which means nothing to users)."""
    print(f"warning: {message}", file=sys.stderr)


def cmd_extract(args) -> int:
    from .extract import extract_folder

    src = Path(args.video)
    if not src.exists():
        _err(f"{src}: no such file or folder. Pass a video or a folder of videos.")
        return 2
    options = dict(frame_stride=args.stride, smoothing_window=args.smoothing, backend=args.backend,
                   model_variant=args.model, write_videos=not args.no_videos, video_format=args.format,
                   redo=args.redo, openpose_prototxt=args.openpose_prototxt, openpose_weights=args.openpose_weights)
    result = extract_folder(src, Path(args.out), progress=not args.quiet, **options)
    for r in result.done:
        seq = r.sequence
        state = "reused" if r.skipped else f"{r.seconds:.1f} s"
        # lifter_found: any keypoint; all_lift_joints: a shoulder, hip, knee and ankle (review's rate)
        print(f"{r.pose_path}  frames={len(seq)}  lifter_found={seq.lifter_found_rate():.0%}  "
              f"all_lift_joints={seq.detection_rate():.0%}  ({state})")
    for video, msg in result.failed:
        _err(msg if str(video) in msg else f"{video}: {msg}")
    print(f"done: {len(result.done) - len(result.skipped)}, reused: {len(result.skipped)}, failed: {len(result.failed)}")
    return 1 if result.failed else 0


def cmd_classify(args) -> int:
    from .models import classify_pose_file

    print(json.dumps(classify_pose_file(args.pose_json, args.model), indent=2))
    return 0


def cmd_analyze(args) -> int:
    """CLI: `python -m deadlift_utils analyze VIDEO --out DIR [...]`. Returns the exit status;
    expected problems print one line on stderr (no traceback).

    A --classifier / --deviation folder the user names must be a saved model: a wrong one is
    an error here, before the slow extraction (the Python API skips it with a note instead).
    """
    try:
        from .analyze import analyze_video, latest_trained_models
        from .models import check_model_folder

        clf, dev = getattr(args, "classifier", None), getattr(args, "deviation", None)
        for what, folder in (("classifier", clf), ("deviation model", dev)):
            if folder:
                check_model_folder(folder, what)
        used = "none (--no-models)"
        if not getattr(args, "no_models", False) and not (clf or dev):
            latest = latest_trained_models()
            clf, dev = latest["classifier"], latest["deviation"]
            used = (f"the latest run's ({latest['run']}): {clf or '-'}, {dev or '-'}" if latest["run"]
                    else "none found under outputs/runs (train them with make demo, or pass --classifier/--deviation)")
        elif clf or dev:
            used = f"{clf or '-'}, {dev or '-'}"
        report = analyze_video(
            args.video, args.out, frame_stride=int(getattr(args, "stride", None) or 2),
            view=getattr(args, "view", None), classifier_dir=clf, deviation_dir=dev,
            openai_model=getattr(args, "openai_model", None) or "gpt-4o-mini",
        )
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    stem = Path(args.video).stem
    n = len(report["reps"])
    print(f"{Path(args.video).name}: verdict {report['verdict']} ({report.get('verdict_reason')}); "
          f"{n} rep{'s' if n != 1 else ''}; view {report['view']}; coaching: {report['feedback']['source']}; "
          f"report: {Path(args.out) / (stem + '_report.html')}")
    print(f"trained models used: {used}")
    return 0


def cmd_run(args) -> int:
    """`run`: execute notebooks 01-05 (or only check their parameters with --check)."""
    import yaml

    from .pipeline import build_parameters, check_inputs, format_summary, run_pipeline

    if getattr(args, "check", False):
        params = build_parameters(args.params, smoke=args.smoke, data_dir=args.data_dir)
        check_inputs(params)
        print(yaml.safe_dump(params, sort_keys=False).rstrip())
        print(f"{args.params}: parameters and input files OK (nothing was run)")
        return 0
    summary = run_pipeline(args.params, smoke=args.smoke, resume=args.resume, data_dir=args.data_dir)
    print(format_summary(summary))
    return 0 if summary["status"] == "ok" else 1


def cmd_batch(args) -> int:
    """`batch INPUT_FOLDER --out DIR [--workers N] [--scheduler tcp://HOST:PORT] [--analyze]`.
    Prints the final table; returns 1 when a video failed, 2 for an unusable folder or cluster
    (one line, no traceback), else 0.

    Optional args attributes (when the parser has them): stride, model, no_videos, redo, quiet.
    """
    from .batch import run_batch

    folder = Path(args.input_folder)
    if folder.is_file():
        _err(f"{folder}: is a file, not a folder; pass the folder that holds your videos "
             f"(extract and analyze take a single video).")
        return 2
    if not folder.is_dir():
        _err(f"{folder}: no such folder. Pass the folder that holds your videos.")
        return 2
    options = {}
    if getattr(args, "no_videos", False):
        options["write_videos"] = False
    try:
        result = run_batch(folder, Path(args.out), workers=getattr(args, "workers", None) or 2,
                           scheduler=getattr(args, "scheduler", None), analyze=bool(getattr(args, "analyze", False)),
                           frame_stride=getattr(args, "stride", None) or 5,
                           model_variant=getattr(args, "model", None) or "full",
                           redo=bool(getattr(args, "redo", False)), progress=not getattr(args, "quiet", False),
                           **options)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        _err(str(e))
        return 2
    print(result.table())
    for row in result.failed:
        _err(row.error or f"{row.video}: failed")
    print(f"summary: {result.summary_path}")
    return 1 if result.failed else 0


def cmd_models(args) -> int:
    from .pose_models import install_pose_models

    for variant, path in install_pose_models(force=args.force).items():
        print(f"pose model {variant}: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m deadlift_utils", description="Deadlift form analysis from video.")
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("extract", help="poses (+ skeleton and overlay videos) from a video or a folder")
    e.add_argument("video", help="a video file or a folder of videos (searched recursively)")
    e.add_argument("--out", default="data/interim/poses", help="output folder (sub-folders mirror the input)")
    e.add_argument("--stride", type=int, default=5, help="process every Nth frame (study: 5)")
    e.add_argument("--smoothing", type=int, default=5, help="centred smoothing window in samples (study: 5)")
    e.add_argument("--backend", default="blazepose", choices=["blazepose", "openpose"])
    e.add_argument("--model", default="full", choices=["lite", "full", "heavy"], help="BlazePose variant")
    e.add_argument("--format", default="mp4", choices=["mp4", "webm"], help="skeleton/overlay video format")
    e.add_argument("--no-videos", action="store_true", help="write only the pose JSON")
    e.add_argument("--redo", action="store_true", help="redo videos that already have a valid result")
    e.add_argument("--openpose-prototxt", help="OpenPose COCO pose_deploy_linevec.prototxt (backend openpose)")
    e.add_argument("--openpose-weights", help="OpenPose COCO pose_iter_440000.caffemodel (backend openpose)")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=cmd_extract)

    c = sub.add_parser("classify", help="good/bad verdict for a pose JSON with a trained classifier")
    c.add_argument("pose_json")
    c.add_argument("--model", required=True, help="folder of a trained classifier (model.keras or model.joblib + config.json)")
    c.set_defaults(func=cmd_classify)

    a = sub.add_parser("analyze", help="full analysis of a video: reps, errors, deviations, coaching")
    a.add_argument("video")
    a.add_argument("--out", default="outputs/analysis", help="output folder")
    a.add_argument("--classifier", help="trained classifier folder (default: the latest run's, see --no-models)")
    a.add_argument("--deviation", help="trained deviation model folder (default: the latest run's)")
    a.add_argument("--no-models", action="store_true",
                   help="use no trained model (the verdict comes from the rules either way; faster)")
    a.add_argument("--view", choices=["front", "middle", "side"], help="camera view, if known")
    a.add_argument("--openai-model", default="gpt-4o-mini", help="OpenAI model for coaching text")
    a.add_argument("--stride", type=int, default=2, help="process every Nth frame")
    a.set_defaults(func=cmd_analyze)

    r = sub.add_parser("run", help="rerun notebooks 01-05 with papermill")
    r.add_argument("--params", default="params/demo.yaml", help="YAML with one parameters dict per notebook")
    r.add_argument("--smoke", action="store_true", help="tiny settings (CI)")
    r.add_argument("--resume", help="run id to resume (finished steps are kept)")
    r.add_argument("--data-dir", help="override the shared data folder")
    r.add_argument("--check", action="store_true",
                   help="only check the parameters and the label/approval files, run nothing")
    r.set_defaults(func=cmd_run)

    b = sub.add_parser("batch", help="extraction (and analysis) over many videos with Dask")
    b.add_argument("input_folder")
    b.add_argument("--out", required=True)
    b.add_argument("--workers", type=int, default=2, help="local worker processes (ignored with --scheduler)")
    b.add_argument("--scheduler", help="tcp://HOST:PORT of an existing Dask scheduler")
    b.add_argument("--analyze", action="store_true", help="also write the analysis report per video")
    b.add_argument("--stride", type=int, default=5, help="process every Nth frame")
    b.add_argument("--model", default="full", choices=["lite", "full", "heavy"], help="BlazePose variant")
    b.add_argument("--no-videos", action="store_true", help="write only the pose JSON (and reports)")
    b.add_argument("--redo", action="store_true", help="redo videos that already have a valid result")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=cmd_batch)

    m = sub.add_parser("models", help="install the BlazePose model files from their registry packages")
    m.add_argument("--force", action="store_true")
    m.set_defaults(func=cmd_models)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    shown, warnings.showwarning = warnings.showwarning, _warn
    try:
        return args.func(args)
    except EXPECTED_ERRORS as e:
        _err(str(e))
        return 2
    except KeyboardInterrupt:
        _err("interrupted; finished results are kept and the next run resumes from them")
        return 130
    finally:
        warnings.showwarning = shown
