"""Good-form deviation model: where would a good-form lifter's joint be, given the rest of the pose?

Trained on good-form frames only. For each "hide group" (a joint, or a left/right pair such as
both hips) the network sees the pose with that group hidden and predicts it; the deviation of
a joint is actual - predicted. (The study printed the norm of the prediction itself, which
says nothing about the lifter; that is the bug not to repeat.)

Coordinates: poses are mirrored to face +x (canonical), centred on the hip centre and divided
by the video's standing torso length (see features.py). Predictions are mapped back to the
image, so `deviations()` reports image axes: dx > 0 = image right, dy > 0 = image down,
in torso lengths (`dx_norm`, `dy_norm`) and pixels (`dx_px`, `dy_px`).

Direction words in `summarise()`:
  vertical  "higher" when the joint sits above where good form puts it (dy < 0), else "lower".
  side/middle view  "further forward" = towards where the lifter faces (read from the face's
            offset from the body midline; with no face, from knees vs ankles), "further back"
            = away from it.
  front view (the face on the midline, no facing to read)  "to the lifter's left/right": the
            lifter faces the camera, so their left is image right.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .features import FACING_MIN_OFFSET, facing_offset, infer_view, prepare_keypoints, video_scale
from .keypoints import KEYPOINT_NAMES, hip_centre, mirror_pose
from .models import (build_deviation_net, configure_tensorflow, load_model_bundle, save_model_bundle)

# Joints hidden together: a left/right pair is hidden as one, so the twin joint cannot give
# the answer away in a front view.
HIDE_GROUPS = [[0], [1], [2, 5], [3, 6], [4, 7], [8, 11], [9, 12], [10, 13], [14, 15], [16, 17]]
# Joints that count towards a frame's deviation score (the face points are too noisy).
SCORE_JOINTS = list(range(14))


# ---------------------------------------------------------------- geometry

def canonical_normalised(seq) -> tuple[np.ndarray, dict]:
    """Canonical, hip-centred, torso-unit pose (T, 18, 2) and what is needed to map back:
    {'sign' (+1 faces right / -1 mirrored), 'scale' (px per torso length), 'centre' (T, 2) px
    of the canonical hip centre, 'view', 'facing_offset'}."""
    kp = prepare_keypoints(seq.keypoints_xy, seq.fps, seq.frame_stride, seq.smoothing_window)
    off = facing_offset(kp)
    sign = -1 if np.isfinite(off) and off < -FACING_MIN_OFFSET else 1
    canon = mirror_pose(kp) if sign < 0 else kp.copy()
    scale = video_scale(canon)
    centre = hip_centre(canon)
    Z = (canon - centre[:, None, :]) / scale
    return Z, {"sign": sign, "scale": scale, "centre": centre, "view": infer_view(kp),
               "facing_offset": off, "keypoints_xy": kp}


def to_image(Z_pred: np.ndarray, info: dict) -> np.ndarray:
    """Map canonical normalised poses (T, 18, 2) back to image pixels (T, 18, 2)."""
    canon = Z_pred * info["scale"] + info["centre"][:, None, :]
    return mirror_pose(canon) if info["sign"] < 0 else canon


def masked_inputs(Z: np.ndarray, group_index: np.ndarray, extra_drop: np.ndarray | None = None):
    """Inputs (N, 18, 3) with group `group_index[n]` hidden, and targets (N, 18, 3) whose
    weight is 1 only on hidden joints that exist. extra_drop (N, 18) bool hides more points
    (mimics a detector missing them) without scoring them."""
    present = np.isfinite(Z[..., 0])
    hide = np.zeros(present.shape, dtype=bool)
    for g, joints in enumerate(HIDE_GROUPS):
        rows = group_index == g
        hide[np.ix_(rows, joints)] = True
    visible = present & ~hide
    if extra_drop is not None:
        visible &= ~extra_drop
    x = np.concatenate([np.where(visible[..., None], np.nan_to_num(Z), 0.0), visible[..., None]], axis=-1)
    y = np.concatenate([np.nan_to_num(Z), (present & hide)[..., None]], axis=-1)
    return x.astype("float32"), y.astype("float32")


def predict_hidden(model, Z: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """(T, 18, 2): each joint predicted with its hide group hidden (NaN for an empty T)."""
    T = len(Z)
    out = np.full((T, 18, 2), np.nan)
    if T == 0:
        return out
    G = len(HIDE_GROUPS)
    gi = np.repeat(np.arange(G), T)
    x, _ = masked_inputs(np.tile(Z, (G, 1, 1)), gi)
    p = np.asarray(model.predict(x, verbose=0, batch_size=batch_size)).reshape(G, T, 18, 2)
    for g, joints in enumerate(HIDE_GROUPS):
        out[:, joints] = p[g][:, joints]
    return out


# ---------------------------------------------------------------- training

def fit_deviation_net(Z_train: np.ndarray, Z_val: np.ndarray | None = None, kind: str = "study_conv",
                      epochs: int = 750, batch_size: int = 32, lr: float = 1e-3, decay: float = 0.8,
                      decay_every: int = 25, patience: int = 40, extra_drop_p: float = 0.05,
                      seed: int = 0, progress: bool = False):
    """Train on good-form frames (N, 18, 2). Each epoch every frame gets a random hide group
    (and a few random extra missing points). Learning rate x`decay` every `decay_every` epochs
    (the study: x0.8 every 25); stops when the validation loss has not improved for `patience`
    epochs and restores the best weights. Returns (model, history {'loss','val_loss'}, seconds)."""
    configure_tensorflow(seed)
    rng = np.random.default_rng(seed)
    model = build_deviation_net(kind, lr)
    ok = np.isfinite(Z_train[:, 8, 0]) | np.isfinite(Z_train[:, 11, 0])
    Z_train = Z_train[ok]
    val = None
    if Z_val is not None and len(Z_val):
        vr = np.random.default_rng(seed + 1)
        gi = vr.integers(0, len(HIDE_GROUPS), len(Z_val))
        val = masked_inputs(Z_val, gi)
    hist = {"loss": [], "val_loss": []}
    best, best_w, since = np.inf, None, 0
    t0 = time.perf_counter()
    it = range(epochs)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc=f"deviation {kind}")
    for ep in it:
        model.optimizer.learning_rate.assign(lr * decay ** (ep // decay_every))
        gi = rng.integers(0, len(HIDE_GROUPS), len(Z_train))
        drop = rng.random((len(Z_train), 18)) < extra_drop_p
        x, y = masked_inputs(Z_train, gi, drop)
        h = model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=True, verbose=0,
                      validation_data=val)
        hist["loss"].append(float(h.history["loss"][-1]))
        if val is not None:
            vl = float(h.history["val_loss"][-1])
            hist["val_loss"].append(vl)
            if vl < best - 1e-4:
                best, best_w, since = vl, model.get_weights(), 0
            else:
                since += 1
                if since >= patience:
                    break
    if best_w is not None:
        model.set_weights(best_w)
    return model, hist, time.perf_counter() - t0


def good_frames(videos) -> tuple[np.ndarray, np.ndarray]:
    """Stack canonical normalised poses of judgeable frames of good-form videos.
    Returns (Z (N, 18, 2), video index (N,)); dense sequences keep one frame per ~1/6 s."""
    from .features import judgeable, step_frames

    Zs, idx = [], []
    for i, v in enumerate(videos):
        if v.label != 1:
            continue
        Z, _ = canonical_normalised(v.seq)
        keep = np.flatnonzero(judgeable(v.seq.keypoints_xy))[::step_frames(v.seq.fps, v.seq.frame_stride)]
        Zs.append(Z[keep])
        idx.append(np.full(len(keep), i))
    if not Zs:
        raise ValueError("no good-form frames to train the deviation model on")
    return np.concatenate(Zs), np.concatenate(idx)


# ---------------------------------------------------------------- the model users load

class DeviationModel:
    """A trained deviation net plus its config; `deviations` and `summarise` on any PoseSequence."""

    def __init__(self, keras_model, config: dict | None = None, metrics: dict | None = None, model_dir=None):
        self.model = keras_model
        self.config = config or {}
        self.metrics = metrics or {}
        self.model_dir = model_dir

    def deviations(self, seq) -> dict:
        """Per-frame deviations, actual - predicted good form, image axes (+y = down):
        dx_norm, dy_norm (T, 18) torso lengths; dx_px, dy_px (T, 18) pixels;
        predicted_xy (T, 18, 2) pixels; score (T,) mean deviation (torso lengths) of the body
        joints; view, facing ('right'/'left'/'camera'), scale_px. NaN where a point is missing."""
        Z, info = canonical_normalised(seq)
        pred_Z = predict_hidden(self.model, Z)
        pred_px = to_image(pred_Z, info)
        d_px = info["keypoints_xy"] - pred_px
        d_norm = d_px / info["scale"]
        off = info["facing_offset"]
        facing = "camera" if info["view"] == "front" or not np.isfinite(off) or abs(off) < FACING_MIN_OFFSET \
            else ("right" if info["sign"] > 0 else "left")
        return {"dx_norm": d_norm[..., 0], "dy_norm": d_norm[..., 1], "dx_px": d_px[..., 0],
                "dy_px": d_px[..., 1], "predicted_xy": pred_px, "score": frame_scores(d_norm),
                "view": info["view"], "facing": facing, "scale_px": info["scale"]}

    def summarise(self, seq, frame_mask=None, min_frames: int = 1) -> list[dict]:
        """Per joint, the mean deviation over frames (all, or where frame_mask (T,) is True),
        sorted by magnitude (torso lengths), largest first:
        {joint, dx, dy, units, dx_px, dy_px, magnitude, direction, frames}."""
        d = self.deviations(seq)
        mask = np.ones(len(seq), dtype=bool) if frame_mask is None else np.asarray(frame_mask, dtype=bool)
        if mask.shape != (len(seq),):
            raise ValueError(f"frame_mask must have one flag per frame ({len(seq)}), got shape {mask.shape}")
        out = []
        for j, name in enumerate(KEYPOINT_NAMES):
            sel = mask & np.isfinite(d["dx_norm"][:, j])
            if sel.sum() < min_frames:
                continue
            dx, dy = float(d["dx_norm"][sel, j].mean()), float(d["dy_norm"][sel, j].mean())
            out.append({"joint": name, "dx": dx, "dy": dy, "units": "torso_lengths",
                        "dx_px": float(d["dx_px"][sel, j].mean()), "dy_px": float(d["dy_px"][sel, j].mean()),
                        "magnitude": float(np.hypot(dx, dy)),
                        "direction": direction_words(dx, dy, d["facing"]), "frames": int(sel.sum())})
        return sorted(out, key=lambda r: r["magnitude"], reverse=True)


def frame_scores(d_norm: np.ndarray) -> np.ndarray:
    """(T,) mean Euclidean deviation of the body joints in torso lengths (NaN if none seen)."""
    mag = np.linalg.norm(d_norm[:, SCORE_JOINTS], axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(mag, axis=1)


def direction_words(dx: float, dy: float, facing: str, digits: int = 2) -> str:
    """Plain words for a deviation in torso lengths, image axes (+y down).

    facing 'right'/'left' (side or middle view): forward/back relative to the lifter's facing.
    facing 'camera' (front view): left/right of the lifter (their left = image right).
    """
    fmt = f"{{:.{digits}f}}"
    vert = f"{fmt.format(abs(dy))} torso lengths {'higher' if dy < 0 else 'lower'}"
    if facing in ("right", "left"):
        fwd = dx if facing == "right" else -dx
        horiz = f"{fmt.format(abs(dx))} further {'forward' if fwd > 0 else 'back'}"
    else:
        horiz = f"{fmt.format(abs(dx))} to the lifter's {'left' if dx > 0 else 'right'}"
    first, second = (vert, horiz) if abs(dy) >= abs(dx) else (horiz.replace(" further", " torso lengths further", 1)
                                                             .replace(" to the", " torso lengths to the", 1),
                                                             vert.replace(" torso lengths", "", 1))
    return f"{first} and {second} than good form"


def load_deviation_model(model_dir) -> DeviationModel:
    """Load a deviation model saved by notebook 04 ({run_dir}/deviation)."""
    model, config, metrics = load_model_bundle(model_dir, "deviation model")
    if config.get("kind") != "deviation":
        raise ValueError(f"{Path(model_dir) / 'config.json'}: kind={config.get('kind')!r}, not a deviation "
                         "model. Pass the {run_dir}/deviation folder written by notebook 04.")
    return DeviationModel(model, config, metrics, model_dir=str(model_dir))


def save_deviation_model(model, out_dir, config: dict, metrics: dict) -> Path:
    """Save with kind='deviation' and the coordinate conventions in config.json."""
    config = {"kind": "deviation", "hide_groups": HIDE_GROUPS, "score_joints": SCORE_JOINTS,
              "coordinates": "canonical (faces +x), hip-centred, unit = video's 90th-pct torso length",
              "input": "(18, 3): x, y (0 where hidden/missing), presence flag", **config}
    return save_model_bundle(model, out_dir, config, metrics)


# ---------------------------------------------------------------- validation

def cross_validate_deviation(videos, kind: str = "study_conv", n_splits: int = 5, epochs: int = 750,
                             seed: int = 0, patience: int = 40, progress: bool = False) -> dict:
    """Grouped CV: train on the good-form videos of the training groups, score every frame of the
    held-out videos (good and bad). Returns {'frames': DataFrame (video_id, view, label, frame,
    score, fold), 'joint_dev': DataFrame (video_id, label, view, joint, magnitude),
    'histories', 'seconds'}. A separate 15% of training groups decides early stopping, so the
    held-out fold never steers training."""
    from .dataset import grouped_folds, video_table
    from .features import judgeable, step_frames

    vt = video_table(videos)
    folds = grouped_folds(vt, n_splits, seed)
    rows, jrows, hists = [], [], []
    t0 = time.perf_counter()
    for k, (tr, te) in enumerate(folds):
        tr_groups = vt["group"].iloc[tr].unique()
        rng = np.random.default_rng(seed + k)
        n_val = max(1, int(round(0.15 * len(tr_groups))))
        val_groups = set(rng.choice(tr_groups, n_val, replace=False))
        fit_v = [videos[i] for i in tr if vt["group"].iloc[i] not in val_groups]
        val_v = [videos[i] for i in tr if vt["group"].iloc[i] in val_groups]
        Z_tr, _ = good_frames(fit_v)
        Z_va = good_frames(val_v)[0] if any(v.label == 1 for v in val_v) else None
        model, hist, _ = fit_deviation_net(Z_tr, Z_va, kind, epochs=epochs, seed=seed + k, patience=patience,
                                           progress=progress)
        hists.append(hist)
        dm = DeviationModel(model)
        for i in te:
            v = videos[i]
            d = dm.deviations(v.seq)
            keep = np.flatnonzero(judgeable(v.seq.keypoints_xy))[::step_frames(v.seq.fps, v.seq.frame_stride)]
            rows.append(pd.DataFrame({"video_id": v.video_id, "view": v.view, "label": v.label, "frame": keep,
                                      "score": d["score"][keep], "fold": k}))
            mag = np.hypot(d["dx_norm"][keep], d["dy_norm"][keep])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                jm = np.nanmean(mag, axis=0)
            for j, name in enumerate(KEYPOINT_NAMES):
                jrows.append({"video_id": v.video_id, "label": v.label, "view": v.view, "joint": name,
                              "magnitude": jm[j]})
    return {"frames": pd.concat(rows, ignore_index=True), "joint_dev": pd.DataFrame(jrows),
            "histories": hists, "seconds": time.perf_counter() - t0}


def deviation_auc_table(frames: pd.DataFrame) -> pd.DataFrame:
    """ROC AUC of the deviation score for BAD form (higher deviation = bad), per frame and per
    video (mean frame score), overall and per view."""
    from sklearn.metrics import roc_auc_score

    def auc(y, s):
        y = np.asarray(y)
        ok = np.isfinite(s)
        return float(roc_auc_score(y[ok], np.asarray(s)[ok])) if len(np.unique(y[ok])) == 2 else float("nan")

    out = []
    f = frames[np.isfinite(frames["score"])]
    for name, g in [("all", f)] + list(f.groupby("view")):
        vid = g.groupby("video_id").agg(label=("label", "first"), score=("score", "mean"))
        out.append({"view": name, "videos": len(vid), "bad_videos": int((vid["label"] == 0).sum()),
                    "frames": len(g), "frame_auc": auc(g["label"] == 0, g["score"].to_numpy()),
                    "video_auc": auc(vid["label"] == 0, vid["score"].to_numpy()),
                    "mean_score_good": float(g.loc[g["label"] == 1, "score"].mean()),
                    "mean_score_bad": float(g.loc[g["label"] == 0, "score"].mean())})
    return pd.DataFrame(out)


def top_deviating_joints(joint_dev: pd.DataFrame, n: int = 6) -> pd.DataFrame:
    """Joints whose held-out deviation is largest in bad videos relative to good ones."""
    t = joint_dev.pivot_table(index="joint", columns="label", values="magnitude", aggfunc="mean")
    t = t.rename(columns={0: "bad_mean_dev", 1: "good_mean_dev"})
    t["bad_minus_good"] = t["bad_mean_dev"] - t["good_mean_dev"]
    return t.sort_values("bad_minus_good", ascending=False).head(n).reset_index()


def plot_deviation_histories(histories, path=None, title: str = ""):
    """Masked Euclidean loss per epoch, train and early-stopping validation on one axis, per fold."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for k, h in enumerate(histories):
        c = f"C{k % 10}"
        ax.plot(np.arange(1, len(h["loss"]) + 1), h["loss"], color=c, lw=1, label=f"fold {k} train")
        if h.get("val_loss"):
            ax.plot(np.arange(1, len(h["val_loss"]) + 1), h["val_loss"], color=c, lw=1, ls="--",
                    label=f"fold {k} validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("masked Euclidean loss (torso lengths)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(title + " (solid = train, dashed = validation)")
    fig.tight_layout()
    if path is not None:
        from .io_utils import save_figure

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_figure(fig, path, dpi=110, close=False)
    return fig
