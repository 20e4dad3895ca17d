# %% [markdown]
# # 04 · Train the good-form deviation model
#
# Trained on good-form frames only: with a joint (or a left/right pair) hidden, the network
# predicts where a good-form lifter would have it, given the rest of the pose. The deviation of a
# joint is **actual - predicted** (in torso lengths and in pixels, with a direction in words).
# The study printed the norm of the prediction itself, which says nothing about the lifter.
#
# Compared: the study's network (Conv2D 64-128-256-512, Dense 512-256-128, L2 0.01, Dropout 0.5,
# masked Euclidean loss, batch 32, learning rate x0.8 every 25 epochs), a small MLP and a linear
# model. Validation: on videos held out of training (grouped by recording), does the mean
# deviation separate bad from good form (ROC AUC)? Which joints deviate most in bad videos?

# %% tags=["parameters"]
run_dir: str = "outputs/runs/manual"  # results go to {run_dir}/deviation
seed: int = 0  # numpy / python / TensorFlow seed
tf_threads: int = 2  # CPU threads for TensorFlow (the machine is shared)
esap_dir: str = "../shared/data/esap_pose"  # the study's pose files, relative to the project
include_user_videos: bool = True  # add videos labelled and approved in notebooks 01-02
labels_csv: str = "data/interim/labels.csv"  # labels saved by notebook 01
approvals_csv: str = "data/interim/approvals.csv"  # review decisions saved by notebook 02
models: str = "linear,mlp,study_conv"  # deviation nets to compare
epochs: int = 60  # max epochs for linear / mlp (early stopping on held-out training groups)
study_conv_epochs: int = 8  # max epochs for the study's conv net (the study: 750; 7-25 s/epoch on 2 cores)
patience: int = 40  # early-stopping patience (epochs)
folds: int = 5  # grouped cross-validation folds
final_model: str = "auto"  # net to save; 'auto' picks the best video AUC in cross-validation

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

from deadlift_utils.dataset import load_training_videos, video_table
from deadlift_utils.deviation import (cross_validate_deviation, deviation_auc_table, top_deviating_joints,
                                      plot_deviation_histories, good_frames, fit_deviation_net,
                                      save_deviation_model, load_deviation_model)
from deadlift_utils.train import results_markdown
out_dir = run_dir / "deviation"
out_dir.mkdir(parents=True, exist_ok=True)
videos = load_training_videos(esap_dir, include_user=include_user_videos,
                              labels_csv=config.resolve(labels_csv), approvals_csv=config.resolve(approvals_csv))
vt = video_table(videos)
display(pd.crosstab(vt["view"], vt["form"], margins=True))

# %% [markdown]
# ## Grouped cross-validation of each net

# %%
tables, tops, cv = [], {}, {}
for kind in models.split(","):
    ep = study_conv_epochs if kind == "study_conv" else epochs
    r = cross_validate_deviation(videos, kind, folds, ep, seed, patience=patience, progress=True)
    cv[kind] = r
    t = deviation_auc_table(r["frames"]); t.insert(0, "model", kind); t["train_s"] = r["seconds"]
    tables.append(t)
    tops[kind] = top_deviating_joints(r["joint_dev"])
    plot_deviation_histories(r["histories"], out_dir / f"curves_{kind}.png", f"deviation net: {kind}")
    plt.show()
table = pd.concat(tables, ignore_index=True)
display(table.round(3))

# %% [markdown]
# ### Joints that deviate most in held-out bad videos

# %%
for kind, t in tops.items():
    print(kind); display(t.round(3))

# %% [markdown]
# ### Deviation score per frame, good vs bad (held-out videos)

# %%
best = final_model if final_model != "auto" else table[table["view"] == "all"].sort_values("video_auc", ascending=False)["model"].iloc[0]
f = cv[best]["frames"]
fig, ax = plt.subplots(figsize=(7, 4))
for lab, name in ((1, "good"), (0, "bad")):
    ax.hist(f.loc[f["label"] == lab, "score"].dropna(), bins=40, alpha=0.6, density=True, label=f"{name} form")
ax.set_xlabel("mean joint deviation (torso lengths)"); ax.set_ylabel("density"); ax.legend()
ax.set_title(f"held-out frames, {best}")
fig.savefig(out_dir / "deviation_scores.png", dpi=110); plt.show()

# %% [markdown]
# ## Train the chosen net on every good-form video and save it

# %%
import numpy as np
rng = np.random.default_rng(seed)
groups = vt["group"].unique()
val_groups = set(rng.choice(groups, max(1, int(0.15 * len(groups))), replace=False))
fit_v = [v for v in videos if v.group not in val_groups]; val_v = [v for v in videos if v.group in val_groups]
Z_tr, _ = good_frames(fit_v)
Z_va = good_frames(val_v)[0] if any(v.label == 1 for v in val_v) else None
ep = study_conv_epochs if best == "study_conv" else epochs
model, hist, secs = fit_deviation_net(Z_tr, Z_va, best, epochs=ep, seed=seed, patience=patience)
plot_deviation_histories([hist], out_dir / "curves_final.png", f"final {best}"); plt.show()
cfg = {"net": best, "epochs": ep, "epochs_run": len(hist["loss"]), "patience": patience, "seed": seed,
       "batch_size": 32, "lr_decay": "x0.8 every 25 epochs", "training_frames": int(len(Z_tr)),
       "run_dir": str(run_dir)}
metrics = {**machine_info(), "final_train_seconds": secs, "cv": table.to_dict(orient="records"),
           "top_joints_bad": tops[best].to_dict(orient="records"), "chosen": best}
save_deviation_model(model, out_dir, cfg, metrics)
from deadlift_utils.io_utils import atomic_write_text
atomic_write_text(out_dir / "results.csv", table.to_csv(index=False))
atomic_write_text(out_dir / "results.md", results_markdown(table))
print("saved", sorted(p.name for p in out_dir.iterdir()))

# %% [markdown]
# ## Example: what the model says about a bad video
# Directions: *higher/lower* in the image; *forward/back* relative to where the lifter faces (side and middle views); *the lifter's left/right* in a front view.

# %%
dm = load_deviation_model(out_dir)
bad = next(v for v in videos if v.label == 0 and v.view == "side")
for row in dm.summarise(bad.seq)[:5]:
    print(f"{row['joint']:11s} {row['direction']}  ({row['dx_px']:+.0f}, {row['dy_px']:+.0f}) px")
import json
from deadlift_utils.models import write_json
m = json.loads((out_dir / "metrics.json").read_text()); m["notebook_seconds"] = time.perf_counter() - t_notebook
write_json(out_dir / "metrics.json", m)
print(f"notebook time {m['notebook_seconds']:.0f} s")
