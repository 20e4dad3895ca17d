# %% [markdown]
# # 03 · Train the form classifier, and evaluate it honestly
#
# Reproduces the ESAP 2024 study's frame classifier (18 keypoints -> Dense 128-64-32, BatchNorm,
# Dropout 0.5, LeakyReLU(0.01), sigmoid), then tries to beat it with features that mean the same
# thing whatever the pose backend and camera: body-normalised coordinates (hip-centred, torso
# units, mirrored so the lifter faces right), joint angles, missing-point masks, and the motion of
# neighbouring frames.
#
# Three evaluation protocols, side by side:
# * **(a) random frame split** (the study's): frames of one video land on both sides, so it leaks. Shown only to measure how much it flatters.
# * **(b) grouped cross-validation**: all frames of a recording on one side (the study's release holds some clips of one recording under two names; they are merged into one group).
# * **(c) transfer**: trained on the study's data, tested on poses from other lifters and another pose backend. This is the number that tells you whether the model works on *your* video.
#
# Everything here is a call into `deadlift_utils`; the logic is tested in `tests/`.

# %% tags=["parameters"]
run_dir: str = "outputs/runs/manual"  # results go to {run_dir}/classifier
seed: int = 0  # numpy / python / TensorFlow seed
tf_threads: int = 2  # CPU threads for TensorFlow (the machine is shared)
esap_dir: str = "../shared/data/esap_pose"  # the study's pose files ({good,bad}_{view}/*.json), relative to the project
openpose_dir: str = "../shared/data/openpose_sequences"  # 5 other lifters, OpenPose (transfer test)
include_user_videos: bool = True  # add videos labelled and approved in notebooks 01-02
labels_csv: str = "data/interim/labels.csv"  # labels saved by notebook 01
approvals_csv: str = "data/interim/approvals.csv"  # review decisions saved by notebook 02
epochs: int = 40  # epochs per classifier fit
folds: int = 5  # grouped cross-validation folds
lifter_holdout: bool = True  # (c) also leave-one-lifter-out over the 5 OpenPose lifters (5 more fits per spec)
ablation: str = "study_mlp_raw,study_mlp_norm,mlp_norm_angles,mlp_norm_angles_mask,mlp_norm_angles_mask_win2,mlp_robust,mlp_robust_win2,hgb_norm_angles_win2"  # specs compared in (b)
final_spec: str = "mlp_norm_angles_mask_win2"  # the spec saved as the model (best in (b) and on the OpenPose lifters)
transfer_pose_dirs: str = "data/interim/poses/yfgd_small|../shared/data/videos/yfgd_small/labels.csv;data/interim/poses/kettlebell_errors|../shared/data/videos/kettlebell_errors/labels.csv"  # POSE_DIR|LABELS_CSV pairs, ';'-separated (skipped when absent)

# %%
import time, json
from pathlib import Path
import numpy as np
import pandas as pd
import matplotlib
import matplotlib.pyplot as plt
from IPython.display import display, Markdown
from deadlift_utils import config
from deadlift_utils.models import configure_tensorflow, machine_info
# Paths in parameters: absolute as given, else relative to the project root (wherever the kernel starts).
run_dir = config.resolve(run_dir)
esap_dir = config.resolve(esap_dir)
configure_tensorflow(seed, threads=tf_threads)
t_notebook = time.perf_counter()

from deadlift_utils.dataset import load_training_videos, load_openpose_sequences, video_table
from deadlift_utils.train import (STUDY_SPEC, spec_by_name, cross_validate, summarise, plot_histories,
                                  results_markdown, train_and_predict_other, leave_one_lifter_out,
                                  train_final, evaluate_transfer_folder, video_scores)
out_dir = run_dir / "classifier"
out_dir.mkdir(parents=True, exist_ok=True)
specs = [spec_by_name(s) for s in ablation.split(",")]
print(machine_info())

# %% [markdown]
# ## The data
# The study's 56 videos (plus any you labelled and approved). Note how view and form are confounded: most bad videos are side views.

# %%
videos = load_training_videos(esap_dir, include_user=include_user_videos,
                              labels_csv=config.resolve(labels_csv), approvals_csv=config.resolve(approvals_csv))
vt = video_table(videos)
display(pd.crosstab(vt["view"], vt["form"], margins=True))
print(f"{len(vt)} videos in {vt['group'].nunique()} recordings; merged near-duplicates:")
display(vt[vt.duplicated("group", keep=False)].sort_values("group")[["video_id", "group"]])

# %% [markdown]
# ## (a) vs (b): the study's random frame split against grouped cross-validation (study model)

# %%
results, rows = {}, []
def add(name, protocol, res):
    s = summarise(res["pred"]); s.insert(0, "protocol", protocol); s.insert(0, "model", name)
    s["train_s"] = res.get("seconds", float("nan")); rows.append(s)
    return s
r = cross_validate(videos, STUDY_SPEC, "random_frames", folds, epochs, seed, progress=True)
add(STUDY_SPEC["name"], "(a) random frames", r)
fig = plot_histories(r["histories"], out_dir / "curves_study_random_frames.png", "Study model, (a) random frame split")
plt.show()

# %% [markdown]
# ## (b) Grouped cross-validation: the ablation
# Each row adds or swaps one ingredient. `balance` weights frames so that good and bad weigh the same within every view: the view then carries no information about the label, so the model cannot score by spotting side views.

# %%
for spec in specs:
    r = cross_validate(videos, spec, "grouped", folds, epochs, seed, progress=True)
    results[spec["name"]] = r
    add(spec["name"], "(b) grouped", r)
    if r["histories"] and r["histories"][0]:
        plot_histories(r["histories"], out_dir / f"curves_{spec['name']}_grouped.png", f"{spec['name']}, (b) grouped")
        plt.show()
table = pd.concat(rows, ignore_index=True)
display(table[table["view"] == "all"].round(3))

# %% [markdown]
# ### Per view (front / middle / side)

# %%
display(table[table["view"] != "all"].round(3))

# %% [markdown]
# ## (c) Transfer: other lifters, other pose backends
# Trained on the study's data only, then tested on the 5 OpenPose lifters; then leave-one-lifter-out with the other lifters joining training. Finally any BlazePose pose folders from our extractor (yfgd_small, kettlebell), if present; videos the model was trained on (approved in notebook 02 with `include_user_videos=True`) are left out of that figure.

# %%
others = load_openpose_sequences(config.resolve(openpose_dir))
transfer_specs = [STUDY_SPEC] + [s for s in specs if s["name"] == final_spec and s["name"] != STUDY_SPEC["name"]]
for spec in transfer_specs:
    add(spec["name"], "(c) ESAP -> OpenPose lifters", train_and_predict_other(videos, others, spec, epochs, seed))
    if lifter_holdout:
        add(spec["name"], "(c) leave-one-lifter-out", leave_one_lifter_out(videos, others, spec, epochs, seed))
table = pd.concat(rows, ignore_index=True)
display(table[table["protocol"].str.startswith("(c)")].round(3))

# %% [markdown]
# ## Train the chosen model on all the data and save it
# Saved as `model.keras` (or `model.joblib` for the gradient-boosting spec) with `config.json` (inputs, normalisation, parameters, video rule) and `metrics.json` beside it.

# %%
final = spec_by_name(final_spec)
model, cfg, hist, secs = train_final(videos, final, epochs, seed)
b = table[(table["model"] == final_spec) & (table["protocol"] == "(b) grouped") & (table["view"] == "all")]
# The video rule: the study's 60%-of-frames rule unless the mean probability did better in (b).
rule = {"name": "good_frame_fraction", "threshold": 0.6, "frame_threshold": 0.5}
if len(b) and b["video_acc_mean_prob"].iloc[0] > b["video_acc_study_60pct"].iloc[0]:
    rule = {"name": "mean_probability", "threshold": 0.5}
cfg.update({"video_rule": rule, "run_dir": str(run_dir), "folds": folds})
metrics = {**machine_info(), "final_train_seconds": secs,
           "results": table.to_dict(orient="records"), "spec": final_spec}
from deadlift_utils.models import save_model_bundle
save_model_bundle(model, out_dir, cfg, metrics)
print("saved", sorted(p.name for p in out_dir.iterdir()))

# %% [markdown]
# ### Transfer to BlazePose poses of real clips (when extracted)

# %%
from deadlift_utils.models import load_classifier
clf = load_classifier(out_dir)
for item in [s for s in transfer_pose_dirs.split(";") if s.strip()]:
    t_pose_dir, t_labels = item.split("|", 1)
    t_labels, t_pose_dir = config.resolve(t_labels), config.resolve(t_pose_dir)
    if not t_pose_dir.is_dir():
        print(f"skipped {t_pose_dir}: no poses yet (python -m deadlift_utils extract VIDEO_FOLDER --out {t_pose_dir})")
        continue
    res = evaluate_transfer_folder(out_dir, t_pose_dir, t_labels, Path(t_pose_dir).name)
    if res["in_training"]:  # approved in notebook 02 and so trained on: scoring them would leak
        print(f"{t_pose_dir.name}: {res['in_training']} videos left out, the model was trained on them "
              f"(include_user_videos=False holds them all out)")
    if res["summary"] is None:
        print(f"skipped {t_pose_dir.name}: no held-out videos")
        continue
    s = res["summary"]; s.insert(0, "protocol", f"(c) ESAP -> {t_pose_dir.name} (saved model)"); s.insert(0, "model", final_spec)
    rows.append(s)
    display(s.round(3)); display(res["videos"].round(3))
table = pd.concat(rows, ignore_index=True)
# Which pose backends the saved model may be trusted on (analyze.py reads this from config.json).
from deadlift_utils.train import trusted_backends
from deadlift_utils.models import write_json
cfg["trusted_backends"] = trusted_backends(table, final_spec)
write_json(out_dir / "config.json", cfg)
print("trusted backends:", cfg["trusted_backends"])

# %% [markdown]
# ## Results table (written to `results.csv` / `results.md`)

# %%
from deadlift_utils.io_utils import atomic_write_text
info = machine_info()
atomic_write_text(out_dir / "results.csv", table.to_csv(index=False))
atomic_write_text(out_dir / "results.md", f"Date: {info['date_utc']}; machine: {info['machine']}; "
                  f"{folds} folds, {epochs} epochs\n\n" + results_markdown(table))
display(Markdown(results_markdown(table[table["view"] == "all"].drop(columns=["view"]))))
import json
m = json.loads((out_dir / "metrics.json").read_text()); m["results"] = table.to_dict(orient="records")
m["notebook_seconds"] = time.perf_counter() - t_notebook
from deadlift_utils.models import write_json
write_json(out_dir / "metrics.json", m)
print(f"notebook time {m['notebook_seconds']:.0f} s")

# %% [markdown]
# ## Check: the saved model reloads and classifies a pose file

# %%
from deadlift_utils.models import classify_pose_file
example = vt["video_id"].iloc[0]
pose_file = next(v.seq.source_path for v in videos if v.video_id == example)
res = classify_pose_file(pose_file, out_dir)
print(example, res["verdict"], round(res["good_frame_fraction"], 3), res["video_rule"])
