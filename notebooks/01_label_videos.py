# %% [markdown]
# # 01 · Label videos
#
# Give each video its **form** (good / bad) and **camera view** (front ~0°, middle 30-60°, side ~90°).
# Every click is saved at once to `labels.csv`; reopen the notebook and it resumes at the first
# unlabelled video. The study's own labels (its `esap_pose` folder names) and the sample datasets'
# `labels.csv` files are imported first; an import never overwrites a label you gave.
#
# Under papermill (`batch = True`) nothing waits for clicks: the notebook imports and validates labels.

# %% tags=["parameters"]
data_dir: str = "../shared/data/videos/yfgd_small"  # folder of videos to label (relative to the project root)
labels_csv: str = "data/interim/labels.csv"  # where labels are saved
import_esap: bool = True  # import the study's labels from its folder names
esap_dir: str = "../shared/data/esap_pose"  # the study's pose files {good,bad}_{front,middle,side}/*.json
import_label_csvs: str = "../shared/data/videos/yfgd_small/labels.csv;../shared/data/videos/kettlebell_errors/labels.csv"  # dataset labels.csv files to import, ';'-separated
relabel: bool = False  # start at the first video instead of the first unlabelled one
batch: bool = False  # True under papermill: import and validate only, no widget
run_dir: str = "outputs/runs/manual"  # where this run's record goes

# %%
from pathlib import Path

import pandas as pd

from deadlift_utils import config, labels
from deadlift_utils.widgets import LabelWidget

store = labels.LabelStore(config.resolve(labels_csv))
before = len(store)
if import_esap:
    store.add_missing(labels.esap_label_rows(config.resolve(esap_dir)))
for csv in filter(None, import_label_csvs.split(";")):
    store.add_missing(labels.csv_label_rows(config.resolve(csv), source=config.resolve(csv).parent.name))
print(f"{store.path}: {len(store)} labels ({len(store) - before} imported now)")

# %% [markdown]
# ## What is labelled
# Counts by source, form and view (blank view = not known yet).

# %%
summary = (store.df.assign(view=store.df["view"].replace("", "(unknown)"))
           .groupby(["source", "form", "view"]).size().unstack(fill_value=0))
summary

# %% [markdown]
# ## Label
# Pick form and view, add a note if useful, then **Save** (saves and moves on). **Skip** moves on without saving; **Undo** steps back; a label that click saved goes back to what it was.

# %%
videos = labels.videos_to_label(config.resolve(data_dir))
widget = LabelWidget(videos, store)
if relabel:
    widget.index = 0
    widget._refresh()
if batch:
    print(f"batch mode: {len(videos)} videos in {data_dir}, "
          f"{sum(store.get(v) is not None for v, _ in videos)} labelled")
else:
    display(widget)

# %%
out = config.resolve(run_dir)
out.mkdir(parents=True, exist_ok=True)
summary.to_csv(out / "labels_summary.csv")
print("labels:", store.path)
