"""Measure the protocol x model table for the form classifier and the deviation-model AUCs.

    nice -n 10 .venv/bin/python scripts/benchmark_training.py            # full (~20-40 min on 2 cores)
    .venv/bin/python scripts/benchmark_training.py --quick                # 2 folds, few epochs

Writes outputs/benchmark/training_results.md (+ CSVs of every table) and prints the tables.
Protocols: (a) the study's random frame split, (b) grouped CV by recording, (c) transfer:
trained on the study's data and tested on the OpenPose sequences of 5 other lifters, and
leave-one-lifter-out with those lifters joining training; plus any BlazePose pose folders
given with --transfer DIR=LABELS_CSV (e.g. /tmp/shared_poses/yfgd_small=../shared/data/videos/yfgd_small/labels.csv).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from deadlift_utils import config  # noqa: E402
from deadlift_utils.dataset import load_labelled_folder, load_openpose_sequences, load_training_videos  # noqa: E402
from deadlift_utils.models import machine_info  # noqa: E402
from deadlift_utils.train import (ABLATION_SPECS, STUDY_SPEC, cross_validate, leave_one_lifter_out,  # noqa: E402
                                  results_markdown, spec_by_name, summarise, train_and_predict_other)

COLS = ["model", "protocol", "view", "videos", "frames", "frame_acc", "frame_f1", "frame_auc",
        "video_acc_study_60pct", "video_acc_mean_prob", "video_auc", "video_tn", "video_fp", "video_fn",
        "video_tp", "train_s"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(config.OUTPUTS_DIR / "benchmark"))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=40, help="classifier epochs per fold")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="2 folds, 3 epochs, three specs")
    ap.add_argument("--specs", default="", help="comma-separated spec names (default: all)")
    ap.add_argument("--transfer-specs", default="study_mlp_raw,mlp_norm_angles_mask_win2,mlp_robust,mlp_robust_win2")
    ap.add_argument("--transfer", action="append", default=[], help="POSE_DIR=LABELS_CSV (repeatable)")
    ap.add_argument("--deviation", default="linear,mlp,study_conv", help="deviation nets to compare ('' to skip)")
    ap.add_argument("--deviation-epochs", default="linear=150,mlp=150,study_conv=30")
    ap.add_argument("--deviation-folds", type=int, default=5)
    ap.add_argument("--skip-classifier", action="store_true", help="only the deviation nets")
    ap.add_argument("--parts", default="a,b,c", help="which protocols to run here (a,b,c); run parts in "
                    "parallel processes with different --tag, then --render merges them")
    ap.add_argument("--skip-openpose", action="store_true", help="in part c, only the --transfer folders")
    ap.add_argument("--tag", default="", help="suffix of this process's CSV (classifier_protocols{tag}.csv)")
    ap.add_argument("--render", action="store_true",
                    help="only rebuild training_results.md from the CSVs already in --out")
    args = ap.parse_args(argv)
    if args.quick:
        args.folds, args.epochs, args.deviation_folds = 2, 3, 2
        args.specs = args.specs or "study_mlp_raw,mlp_norm_angles_mask,mlp_robust"
        args.transfer_specs = "study_mlp_raw,mlp_robust"
        args.deviation_epochs = "linear=3,mlp=3,study_conv=2"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    t_all = time.perf_counter()

    videos = load_training_videos()
    if args.render:
        return render(out, args, info, videos)
    if args.skip_classifier:
        (out / "deviation.md").write_text(run_deviation(videos, args, out))
        print((out / "deviation.md").read_text())
        return 0
    specs = [spec_by_name(s) for s in args.specs.split(",")] if args.specs else [dict(s) for s in ABLATION_SPECS]
    rows, seconds = [], {}

    def add(name, protocol, pred, secs):
        s = summarise(pred)
        s.insert(0, "protocol", protocol)
        s.insert(0, "model", name)
        s["train_s"] = secs
        rows.append(s)
        # written after every row so a long run's finished parts survive an interruption
        pd.concat(rows, ignore_index=True)[COLS].to_csv(out / f"classifier_protocols{args.tag}.csv", index=False)
        print(f"{name:28s} {protocol:28s} frame_acc={s['frame_acc'].iloc[0]:.3f} "
              f"video_acc={s['video_acc_study_60pct'].iloc[0]:.3f} video_auc={s['video_auc'].iloc[0]:.3f} "
              f"({secs:.0f} s)", flush=True)

    # (a) the study's random frame split, for the baseline and the best grouped spec
    parts = set(args.parts.split(","))
    for spec in ([STUDY_SPEC] + [s for s in specs if s["name"] == "mlp_robust_win2"]) if "a" in parts else []:
        r = cross_validate(videos, spec, "random_frames", args.folds, args.epochs, args.seed)
        add(spec["name"], "(a) random frames", r["pred"], r["seconds"])
    # (b) grouped by recording, every spec (the ablation)
    for spec in specs if "b" in parts else []:
        r = cross_validate(videos, spec, "grouped", args.folds, args.epochs, args.seed)
        add(spec["name"], "(b) grouped", r["pred"], r["seconds"])
        seconds[spec["name"]] = r["seconds"]
    # (c) transfer
    others = load_openpose_sequences()
    tspecs = [spec_by_name(s) for s in args.transfer_specs.split(",") if s] if "c" in parts else []
    for spec in tspecs if not args.skip_openpose else []:
        r = train_and_predict_other(videos, others, spec, args.epochs, args.seed)
        add(spec["name"], "(c) ESAP -> OpenPose lifters", r["pred"], r["seconds"])
        r = leave_one_lifter_out(videos, others, spec, args.epochs, args.seed)
        add(spec["name"], "(c) leave-one-lifter-out", r["pred"], r["seconds"])
    for item in args.transfer if "c" in parts else []:
        pose_dir, labels = item.split("=", 1)
        tv = load_labelled_folder(pose_dir, labels, Path(pose_dir).name)
        if not tv:
            print(f"skip transfer {pose_dir}: no pose files yet", flush=True)
            continue
        for spec in tspecs:
            r = train_and_predict_other(videos, tv, spec, args.epochs, args.seed)
            add(spec["name"], f"(c) ESAP -> {Path(pose_dir).name}", r["pred"], r["seconds"])

    table = pd.concat(rows, ignore_index=True)[COLS]
    table.to_csv(out / "classifier_protocols.csv", index=False)
    overall = table[table["view"] == "all"].drop(columns=["view"])

    md = ["# Training results (measured by scripts/benchmark_training.py)\n",
          f"Date: {info['date_utc']}. Machine: {info['machine']} (shared with other jobs), "
          f"Python {info['python']}. Settings: {args.folds} folds, {args.epochs} epochs per classifier fit, "
          f"seed {args.seed}. Videos: {len({v.video_id for v in videos})} "
          f"({len({v.group for v in videos})} recordings after merging near-duplicate clips).\n",
          "## Classifier: protocol x model (all views)\n", results_markdown(overall),
          "\n## Per view\n", results_markdown(table[table["view"] != "all"])]
    if args.deviation:
        dev_md = run_deviation(videos, args, out)
        md += ["\n## Deviation model (grouped CV, trained on good-form frames of training folds)\n", dev_md]
    md.append(f"\nTotal benchmark wall time: {time.perf_counter() - t_all:.0f} s.\n")
    text = "\n".join(md)
    (out / "training_results.md").write_text(text)
    print(text)
    return 0


def render(out: Path, args, info, videos) -> int:
    """training_results.md from classifier_protocols.csv (+ deviation.md) already measured."""
    table = pd.concat([pd.read_csv(f) for f in sorted(out.glob("classifier_protocols*.csv"))], ignore_index=True)
    # parallel parts may measure the same row twice (deterministic, so identical): keep one
    table = table.drop_duplicates(["model", "protocol", "view"]).sort_values(["protocol", "model"], kind="stable")
    overall = table[table["view"] == "all"].drop(columns=["view"])
    md = ["# Training results (measured by scripts/benchmark_training.py)\n",
          f"Rendered: {info['date_utc']}. Machine: {info['machine']} (shared with other jobs), "
          f"Python {info['python']}. Settings: {args.folds} folds, {args.epochs} epochs per classifier fit, "
          f"seed {args.seed}. Videos: {len({v.video_id for v in videos})} "
          f"({len({v.group for v in videos})} recordings after merging near-duplicate clips).\n",
          "## Classifier: protocol x model (all views)\n", results_markdown(overall),
          "\n## Per view\n", results_markdown(table[table["view"] != "all"])]
    if (out / "deviation.md").is_file():
        md += ["\n## Deviation model (grouped CV, trained on good-form frames of training folds)\n",
               (out / "deviation.md").read_text()]
    elif (out / "run_dev.log").is_file():  # a deviation run still in progress: its finished tables
        lines = [ln for ln in (out / "run_dev.log").read_text().splitlines()
                 if ln.strip() and "warn" not in ln.lower() and "retracing" not in ln]
        md += ["\n## Deviation model (grouped CV; finished nets of a run still in progress, as printed)\n",
               "```", *lines, "```"]
    (out / "training_results.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


def run_deviation(videos, args, out: Path) -> str:
    from deadlift_utils.deviation import cross_validate_deviation, deviation_auc_table, top_deviating_joints

    eps = dict(kv.split("=") for kv in args.deviation_epochs.split(","))
    parts, rows = [], []
    for kind in args.deviation.split(","):
        r = cross_validate_deviation(videos, kind, args.deviation_folds, int(eps.get(kind, 100)), args.seed)
        t = deviation_auc_table(r["frames"])
        t.insert(0, "model", kind)
        t["epochs_run"] = "/".join(str(len(h["loss"])) for h in r["histories"])
        t["train_s"] = r["seconds"]
        rows.append(t)
        print(t.round(3).to_string(), flush=True)
        top = top_deviating_joints(r["joint_dev"])
        top.to_csv(out / f"deviation_top_joints_{kind}.csv", index=False)
        parts.append(f"\nJoints deviating most in held-out bad videos ({kind}):\n\n" + results_markdown(top))
    table = pd.concat(rows, ignore_index=True)
    table.to_csv(out / "deviation_auc.csv", index=False)
    return results_markdown(table) + "\n" + "\n".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
