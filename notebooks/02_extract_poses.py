# %% [markdown]
# # 02 · Extract poses and review them
#
# For every video: the lifter's 18 COCO keypoints on every `frame_stride`-th frame (the study: 5),
# smoothed over `smoothing_window` samples, saved as pose JSON, plus a skeleton video and an overlay
# video. The default backend is MediaPipe BlazePose, whose model files `make models` unpacks from
# registry packages; the study's OpenPose model works too if you supply its files.
#
# Then **review**: watch each overlay and skeleton, and approve or reject the video's pose quality.
# Videos with quality problems are flagged in red. Only approved videos feed training (notebooks 03-04).
# Under papermill (`batch = True`) undecided videos are approved automatically when their detection
# rate reaches `auto_approve_min_detection_rate` and they carry no flag; that is recorded as `auto`.

# %% tags=["parameters"]
data_dirs: str = "../shared/data/videos/yfgd_small;../shared/data/videos/kettlebell_errors"  # video folders, ';'-separated
poses_dir: str = "data/interim/poses"  # pose JSON + videos go to {poses_dir}/{folder name}/...
approvals_csv: str = "data/interim/approvals.csv"  # review decisions
frame_stride: int = 5  # process every Nth frame (study: 5)
smoothing_window: int = 5  # centred smoothing window in samples (study: 5)
backend: str = "blazepose"  # 'blazepose' (default, offline) or 'openpose' (needs the two files below)
model_variant: str = "full"  # BlazePose 'lite', 'full' or 'heavy'
openpose_prototxt: str = ""  # OpenPose COCO pose_deploy_linevec.prototxt (backend 'openpose')
openpose_weights: str = ""  # OpenPose COCO pose_iter_440000.caffemodel (backend 'openpose')
video_format: str = "mp4"  # 'mp4' (H.264) or 'webm' (VP8)
max_videos: int = 0  # per folder (0: all; smoke runs use a few)
batch: bool = False  # True under papermill: no widget, auto-approve by threshold
auto_approve_min_detection_rate: float = 0.9  # batch mode threshold
run_dir: str = "outputs/runs/manual"  # where the table and contact sheet go

# %%
import pandas as pd
from IPython.display import Image, display

from deadlift_utils import config
from deadlift_utils.drawing import contact_sheet
from deadlift_utils.extract import extract_folder
from deadlift_utils.labels import ApprovalStore
from deadlift_utils.quality import assess
from deadlift_utils.widgets import ReviewWidget, auto_review, review_items

out = config.resolve(run_dir)
out.mkdir(parents=True, exist_ok=True)
poses_root = config.resolve(poses_dir)

# %% [markdown]
# ## Extract
# Finished videos are reused (same parameters, newer than the video); a video that cannot be read is listed and the others go on.

# %%
rows, failures = [], []
for folder in filter(None, data_dirs.split(";")):
    folder = config.require_dir(config.resolve(folder), "video folder")
    result = extract_folder(folder, poses_root / folder.name, frame_stride=frame_stride,
                            smoothing_window=smoothing_window, backend=backend, model_variant=model_variant,
                            video_format=video_format, max_videos=max_videos or None,
                            openpose_prototxt=openpose_prototxt or None, openpose_weights=openpose_weights or None)
    failures += result.failed
    for r in result.done:
        q = assess(r.sequence)
        rows.append({"video_id": r.pose_path.relative_to(poses_root).with_suffix("").as_posix(),
                     "frames": q.frames, "lifter_found": round(q.lifter_found_rate, 3),
                     "detection_rate": round(q.detection_rate, 3), "mean_confidence": round(q.mean_confidence, 3),
                     "flags": "; ".join(q.flags), "seconds": round(r.seconds, 1), "reused": r.skipped,
                     "overlay": str(r.overlay_path or "")})
table = pd.DataFrame(rows)
table.to_csv(out / "extraction.csv", index=False)
for video, message in failures:
    print("FAILED:", message)
table.drop(columns=["overlay"])

# %% [markdown]
# ## Contact sheet
# The middle frame of every overlay, to check at a glance that the skeleton sits on the lifter.

# %%
with_video = table[table["overlay"] != ""]
if len(with_video):
    sheet = contact_sheet(list(zip(with_video["video_id"], with_video["overlay"])), out / "contact_sheet.png")
    display(Image(filename=str(sheet)))

# %% [markdown]
# ## Review
# **Approve** if the skeleton follows the lifter through the lift; **Reject** if it is lost, jumps to someone else or misses limbs that matter. Add a reason; every click is saved to `approvals.csv`.

# %%
items = review_items(poses_root)
store = ApprovalStore(config.resolve(approvals_csv))
if batch:
    print(auto_review(items, store, min_detection_rate=auto_approve_min_detection_rate))
else:
    review = ReviewWidget(items, store)
    display(review)

# %%
store = ApprovalStore(config.resolve(approvals_csv))
store.df.to_csv(out / "approvals_snapshot.csv", index=False)
print(store.df["decision"].value_counts().to_string() if len(store) else "no decisions yet")
