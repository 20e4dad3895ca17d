"""Training data: videos -> per-frame feature tables with the grouping that keeps evaluation honest.

Sources:
  esap      ../shared/data/esap_pose/{good,bad}_{front,middle,side}/*.json (56 videos)
  openpose  ../shared/data/openpose_sequences/*.json + labels.csv (29 sequences, 5 lifters)
  user      videos labelled and approved in notebooks 01-02 (deadlift_utils.labels)
  transfer  any folder of pose JSONs + a labels CSV (e.g. BlazePose poses of yfgd_small)

A `Video` holds one pose file's keypoints and its labels. `frame_table` turns a list of videos
into X (N, F) plus a meta DataFrame with one row per frame: video_id, group, lifter, view,
label (1 = good form), form, source, frame (index within the video), mirrored.

Grouping: frames of a video are near-duplicates, and the study's release also holds several
clips cut from the same recording under two file names (e.g. bad_side/Bad18 and
Side-Badform2 are identical; good_front/deadlift_1 and deadlift_2 overlap), so `group` is the
recording (connected near-duplicate videos), not just the file. Every split here is by group.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import config
from .features import frame_features, infer_view, judgeable, step_frames, window_features
from .pose import PoseSequence, load_pose_json

VIEWS = ("front", "middle", "side")


@dataclass
class Video:
    """One labelled pose sequence. label: 1 good, 0 bad, None unknown."""

    video_id: str
    seq: PoseSequence
    label: int | None
    view: str
    source: str
    lifter: str
    group: str = ""
    error: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def form(self) -> str:
        return {1: "good", 0: "bad"}.get(self.label, "unknown")


def _form_to_label(form: str, where) -> int:
    f = str(form).strip().lower()
    if f in ("good", "1", "true"):
        return 1
    if f in ("bad", "0", "false"):
        return 0
    raise ValueError(f"{where}: form/label must be 'good' or 'bad', got {form!r}. Fix the labels CSV.")


def load_esap(esap_dir: str | os.PathLike = config.ESAP_POSE_DIR) -> list[Video]:
    """The study's 56 videos; label and view come from the folder name ({form}_{view})."""
    root = config.require_dir(esap_dir, "ESAP pose folder (../shared/data/esap_pose)")
    videos = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        parts = folder.name.split("_")
        if len(parts) != 2 or parts[0] not in ("good", "bad") or parts[1] not in VIEWS:
            continue
        for f in sorted(folder.glob("*.json")):
            vid = f"esap/{folder.name}/{f.stem}"
            videos.append(Video(vid, load_pose_json(f), _form_to_label(parts[0], f), parts[1],
                                "esap", lifter=vid))
    if not videos:
        raise FileNotFoundError(f"{root}: no pose JSON in {{good,bad}}_{{front,middle,side}}/ folders. "
                                "Point esap_dir at ../shared/data/esap_pose.")
    return videos


def load_labelled_folder(pose_dir: str | os.PathLike, labels_csv: str | os.PathLike,
                         source: str) -> list[Video]:
    """Pose JSONs + a labels CSV (columns: file or video, label, optional view/subject/error).

    The CSV's file/video column may name the pose file, or the video it came from
    (`good/good_001.mp4` matches `good/good_001.json` under pose_dir). A missing view is
    inferred from the pose. Rows without a pose file are skipped (reported in `.extra`).
    """
    pose_dir = config.require_dir(pose_dir, f"{source} pose folder")
    labels_csv = Path(labels_csv)
    if not labels_csv.is_file():
        raise FileNotFoundError(f"{labels_csv}: labels CSV not found. It needs columns file (or video) and label.")
    df = pd.read_csv(labels_csv, dtype=str, keep_default_na=False)
    key = "file" if "file" in df.columns else "video" if "video" in df.columns else None
    if key is None or "label" not in df.columns:
        raise ValueError(f"{labels_csv}: needs a 'file' or 'video' column and a 'label' column, "
                         f"has {list(df.columns)}")
    videos = []
    for _, row in df.iterrows():
        rel = Path(row[key])
        cands = [pose_dir / rel.with_suffix(".json"), pose_dir / (rel.stem + ".json"),
                 pose_dir / rel.parent / (rel.stem + ".pose.json"), pose_dir / (rel.stem + ".pose.json")]
        path = next((c for c in cands if c.is_file()), None)
        if path is None:
            continue
        seq = load_pose_json(path)
        view = (row.get("view") or "").strip().lower()
        if view and view not in VIEWS:
            raise ValueError(f"{labels_csv}: view {row.get('view')!r} for {row[key]} is not one of "
                             f"{', '.join(VIEWS)}; fix it or leave it blank to infer it from the pose.")
        view = view or infer_view(seq.keypoints_xy)
        vid = f"{source}/{rel.with_suffix('').as_posix()}"
        lifter = (row.get("subject") or "").strip()
        videos.append(Video(vid, seq, _form_to_label(row["label"], labels_csv), view, source,
                            lifter=f"{source}/{lifter}" if lifter else vid,
                            error=(row.get("error") or "").strip()))
    return videos


def load_openpose_sequences(seq_dir: str | os.PathLike = config.OPENPOSE_SEQUENCES_DIR) -> list[Video]:
    """The 29 OpenPose sequences of 5 lifters; group = lifter (leave-one-lifter-out)."""
    seq_dir = Path(seq_dir)
    videos = load_labelled_folder(seq_dir, seq_dir / "labels.csv", "openpose")
    for v in videos:
        v.group = v.lifter
    return videos


def load_user_videos(labels_csv=config.LABELS_CSV, approvals_csv=config.APPROVALS_CSV) -> list[Video]:
    """Videos the user labelled and approved in notebooks 01-02; [] when there are none.

    Uses deadlift_utils.labels.approved_training_rows when that module exists.
    """
    try:
        from .labels import approved_training_rows
    except ImportError:
        return []
    rows = approved_training_rows(labels_csv=labels_csv, approvals_csv=approvals_csv)
    videos = []
    if rows is None or len(rows) == 0:
        return videos
    for _, r in rows.iterrows():
        path = Path(r["pose_path"])
        if not path.is_absolute():
            path = config.PROJECT_ROOT / path
        if not path.is_file():
            continue
        seq = load_pose_json(path)
        view = str(r.get("view") or "") or infer_view(seq.keypoints_xy)
        vid = f"user/{r['video_id']}"
        videos.append(Video(vid, seq, _form_to_label(r["form"], path), view,
                            str(r.get("source") or "user"), lifter=vid))
    return videos


def assign_recording_groups(videos: list[Video], px_tol: float = 15.0, min_share: float = 0.15) -> list[Video]:
    """Set `group` so near-duplicate videos (clips of one recording) share a group.

    Two videos are linked when at least `min_share` of one's frames have a frame in the
    other whose mean joint distance is under `px_tol` pixels. Groups are the connected
    components; a video already carrying a group keeps it.
    """
    n = len(videos)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in itertools.combinations(range(n), 2):
        a, b = videos[i].seq.keypoints_xy, videos[j].seq.keypoints_xy
        if videos[i].source != videos[j].source or len(a) == 0 or len(b) == 0:
            continue
        if len(a) * len(b) > 4_000_000:
            continue
        with np.errstate(invalid="ignore"):
            d = np.linalg.norm(a[:, None] - b[None], axis=-1)
        with np.errstate(invalid="ignore"), __import__("warnings").catch_warnings():
            __import__("warnings").simplefilter("ignore", RuntimeWarning)
            d = np.nanmean(d, axis=-1)
        d = np.where(np.isnan(d), np.inf, d)
        close = d < px_tol
        if close.any(axis=1).mean() >= min_share or close.any(axis=0).mean() >= min_share:
            parent[find(i)] = find(j)
    roots: dict[int, str] = {}
    for i, v in enumerate(videos):
        if v.group:
            continue
        r = find(i)
        roots.setdefault(r, videos[r].video_id)
        v.group = roots[r]
    return videos


def load_training_videos(esap_dir=config.ESAP_POSE_DIR, include_user: bool = True,
                         labels_csv=config.LABELS_CSV, approvals_csv=config.APPROVALS_CSV) -> list[Video]:
    """ESAP videos + the user's approved videos, with recording groups assigned."""
    videos = load_esap(esap_dir)
    if include_user:
        videos += load_user_videos(labels_csv, approvals_csv)
    return assign_recording_groups(videos)


def video_table(videos: list[Video]) -> pd.DataFrame:
    """One row per video: video_id, group, lifter, view, form, source, frames."""
    return pd.DataFrame([{"video_id": v.video_id, "group": v.group or v.video_id, "lifter": v.lifter,
                          "view": v.view, "form": v.form, "label": v.label, "source": v.source,
                          "error": v.error, "frames": len(v.seq)} for v in videos])


def video_features(v: Video, blocks, window: int = 0, mirror: bool = False) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(X (T, F), names, judgeable (T,)) for one video; window = half-width in ~1/6 s steps."""
    s = v.seq
    X, names = frame_features(s.keypoints_xy, blocks, fps=s.fps, frame_stride=s.frame_stride,
                              smoothing_window=s.smoothing_window, view=v.view, mirror=mirror)
    step = step_frames(s.fps, s.frame_stride)
    X, names = window_features(X, names, window, step)
    return X, names, judgeable(s.keypoints_xy)


def frame_table(videos: list[Video], blocks, window: int = 0, mirror_augment: bool = False,
                subsample_dense: bool = True) -> tuple[np.ndarray, pd.DataFrame, list[str]]:
    """Stack every judgeable frame of `videos`.

    mirror_augment adds a mirrored copy of each video (meta `mirrored`=True; keep copies
    on the training side only). subsample_dense keeps one frame per ~1/6 s for densely
    sampled sequences so a 900-frame OpenPose file does not outweigh a 30-frame study video.
    Returns X (N, F), meta (N rows), feature names.
    """
    Xs, metas, names = [], [], None
    for v in videos:
        for mirrored in ((False, True) if mirror_augment else (False,)):
            X, names, ok = video_features(v, blocks, window, mirror=mirrored)
            idx = np.flatnonzero(ok)
            if subsample_dense:
                idx = idx[::step_frames(v.seq.fps, v.seq.frame_stride)]
            if idx.size == 0:
                continue
            Xs.append(X[idx])
            metas.append(pd.DataFrame({
                "video_id": v.video_id, "group": v.group or v.video_id, "lifter": v.lifter,
                "view": v.view, "label": -1 if v.label is None else v.label, "form": v.form,
                "source": v.source, "frame": idx, "mirrored": mirrored}))
    if not Xs:
        raise ValueError("no judgeable frames (hips and shoulders found) in the given videos")
    return np.concatenate(Xs), pd.concat(metas, ignore_index=True), names


def grouped_folds(meta: pd.DataFrame, n_splits: int = 5, seed: int = 0, group_col: str = "group"):
    """Protocol (b): [(train_idx, test_idx)] with every group wholly on one side.

    Stratified by form x view where the groups allow it (StratifiedGroupKFold), so each
    test fold holds good and bad videos of every view when possible.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    groups = meta[group_col].to_numpy()
    n_groups = len(np.unique(groups))
    if n_groups < n_splits:
        raise ValueError(f"{n_splits} folds need at least {n_splits} groups (videos/recordings), have {n_groups}")
    strat = (meta["label"].astype(str) + "_" + meta["view"].astype(str)).to_numpy()
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in cv.split(np.zeros(len(meta)), strat, groups)]


def random_frame_folds(meta: pd.DataFrame, n_splits: int = 5, seed: int = 0):
    """Protocol (a), the study's split: frames shuffled with no regard to video. Leaks; shown
    only to measure how much it flatters a model."""
    from sklearn.model_selection import StratifiedKFold

    cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in cv.split(np.zeros(len(meta)), meta["label"].to_numpy())]


def leave_one_group_out(meta: pd.DataFrame, group_col: str = "lifter"):
    """[(group, train_idx, test_idx)] holding out one group (e.g. one lifter) at a time."""
    out = []
    g = meta[group_col].to_numpy()
    for name in sorted(np.unique(g)):
        out.append((name, np.flatnonzero(g != name), np.flatnonzero(g == name)))
    return out


def balanced_weights(meta: pd.DataFrame) -> np.ndarray:
    """Sample weights that give good and bad equal total weight within every view, and every
    video equal weight within its (view, form) cell.

    With these weights the view carries no information about the label, so a model cannot
    score by recognising side views (11 of the study's 16 bad videos are side views).
    """
    w = np.ones(len(meta))
    vids = meta["video_id"].to_numpy()
    frames_per_video = meta.groupby("video_id")["video_id"].transform("size").to_numpy()
    w = w / frames_per_video
    cell = meta["view"].astype(str) + "_" + meta["label"].astype(str)
    cell_total = pd.Series(w).groupby(cell.to_numpy()).transform("sum").to_numpy()
    w = w / cell_total
    # Each view counts as much as its number of videos, split evenly between good and bad.
    n_vid_view = meta.groupby("view")["video_id"].transform("nunique").to_numpy()
    n_cells = meta.groupby("view")["label"].transform("nunique").to_numpy()
    w = w * n_vid_view / n_cells
    del vids
    return w * len(w) / w.sum()
