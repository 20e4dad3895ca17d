"""Training loops and evaluation protocols for the form classifier.

Protocols (see notebooks/03_train_classifier.ipynb):
  (a) random_frames  the study's random frame split; leaks (near-duplicate frames of one video
                     on both sides) and is reported only to show how much it flatters.
  (b) grouped        StratifiedGroupKFold by recording: every frame of a video (and of any
                     near-duplicate clip of the same recording) on one side.
  (c) transfer       train on the study's data, test on another source (OpenPose sequences of
                     5 other lifters; BlazePose poses of yfgd_small / kettlebell clips), and
                     leave-one-lifter-out when the other source joins training.

A model spec is a dict: name, model ('study_mlp' | 'improved_mlp' | 'hgb' | 'logreg'),
blocks (feature blocks), window (half-width of the temporal window), mirror_augment, balance
(weights that make view carry no label information).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .dataset import (Video, balanced_weights, frame_table, grouped_folds, leave_one_group_out,
                      random_frame_folds)
from .models import (STUDY_VIDEO_RULE, FeatureScaler, apply_video_rule, build_improved_classifier,
                     build_study_classifier, configure_tensorflow)

MEAN_PROB_RULE = {"name": "mean_probability", "threshold": 0.5}
VIDEO_RULES = {"study_60pct": STUDY_VIDEO_RULE, "mean_prob": MEAN_PROB_RULE}

# The specs compared in the ablation; the study's baseline first.
STUDY_SPEC = {"name": "study_mlp_raw", "model": "study_mlp", "blocks": ["raw_xy"], "window": 0,
              "mirror_augment": False, "balance": False}
ABLATION_SPECS = [
    STUDY_SPEC,
    {"name": "study_mlp_norm", "model": "study_mlp", "blocks": ["norm_xy"], "window": 0,
     "mirror_augment": False, "balance": False},
    {"name": "mlp_norm_angles", "model": "improved_mlp", "blocks": ["norm_xy", "angles"], "window": 0,
     "mirror_augment": True, "balance": True},
    {"name": "mlp_norm_angles_mask", "model": "improved_mlp", "blocks": ["norm_xy", "angles", "mask"],
     "window": 0, "mirror_augment": True, "balance": True},
    {"name": "mlp_norm_angles_mask_win2", "model": "improved_mlp", "blocks": ["norm_xy", "angles", "mask"],
     "window": 2, "mirror_augment": True, "balance": True},
    {"name": "mlp_robust", "model": "improved_mlp", "blocks": ["robust"], "window": 0,
     "mirror_augment": True, "balance": True},
    {"name": "mlp_robust_win2", "model": "improved_mlp", "blocks": ["robust"], "window": 2,
     "mirror_augment": True, "balance": True},
    {"name": "hgb_norm_angles_win2", "model": "hgb", "blocks": ["norm_xy", "angles"], "window": 2,
     "mirror_augment": True, "balance": True},
]


def spec_by_name(name: str) -> dict:
    for s in ABLATION_SPECS:
        if s["name"] == name:
            return dict(s)
    raise ValueError(f"unknown model spec {name!r}; choose from {[s['name'] for s in ABLATION_SPECS]}")


# ---------------------------------------------------------------- fitting

def fit_model(spec: dict, X_tr, y_tr, w_tr=None, X_va=None, y_va=None, *, epochs: int = 60,
              batch_size: int = 32, seed: int = 0):
    """Fit one model. Returns (predict_fn(X) -> p_good (N,), history dict, fitted model (Keras,
    or scikit-learn for 'hgb' / 'logreg'), scaler or None). history: {'loss', 'val_loss',
    'accuracy', 'val_accuracy'} lists per epoch (empty for scikit-learn models)."""
    y_tr = np.asarray(y_tr, dtype="float32")
    if spec["model"] in ("hgb", "logreg"):
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.linear_model import LogisticRegression

        if spec["model"] == "hgb":
            clf = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                                 l2_regularization=1.0, random_state=seed)
            clf.fit(X_tr, y_tr, sample_weight=w_tr)
            return (lambda X: clf.predict_proba(X)[:, 1]), {}, clf, None
        scaler = FeatureScaler().fit(X_tr)
        clf = LogisticRegression(C=0.1, max_iter=2000)
        clf.fit(scaler.transform(X_tr), y_tr, sample_weight=w_tr)
        return (lambda X: clf.predict_proba(scaler.transform(X))[:, 1]), {}, clf, scaler

    configure_tensorflow(seed)
    scaler = FeatureScaler().fit(X_tr)
    Z_tr = scaler.transform(X_tr)
    if spec["model"] == "study_mlp":
        model = build_study_classifier(Z_tr.shape[1])
    elif spec["model"] == "improved_mlp":
        model = build_improved_classifier(Z_tr.shape[1])
    else:
        raise ValueError(f"unknown model type {spec['model']!r}")
    val = None
    if X_va is not None and len(X_va):
        val = (scaler.transform(X_va), np.asarray(y_va, dtype="float32"))
    h = model.fit(Z_tr, y_tr, sample_weight=None if w_tr is None else np.asarray(w_tr, dtype="float32"),
                  validation_data=val, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0)

    def predict(X):
        return np.asarray(model.predict(scaler.transform(X), verbose=0, batch_size=2048), dtype=float).reshape(-1)

    return predict, {k: [float(v) for v in vals] for k, vals in h.history.items()}, model, scaler


# ---------------------------------------------------------------- metrics

def video_scores(pred: pd.DataFrame) -> pd.DataFrame:
    """Per video: label, view, good_frame_fraction, mean_probability and each rule's verdict."""
    rows = []
    for vid, g in pred.groupby("video_id", sort=False):
        r = {"video_id": vid, "label": int(g["label"].iloc[0]), "view": g["view"].iloc[0],
             "source": g["source"].iloc[0], "frames": len(g)}
        for rule_name, rule in VIDEO_RULES.items():
            v = apply_video_rule(g["p_good"].to_numpy(), rule)
            r[f"pred_{rule_name}"] = int(v["verdict"] == "good")
            r["good_frame_fraction"] = v["good_frame_fraction"]
            r["mean_probability"] = v["mean_probability"]
        rows.append(r)
    return pd.DataFrame(rows)


def _auc(y, s):
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, s))


def summarise(pred: pd.DataFrame, by_view: bool = True) -> pd.DataFrame:
    """Metrics of frame-level predictions (columns label, p_good, video_id, view):
    frame accuracy / F1 (good = positive) / ROC AUC, video accuracy under each rule, video
    ROC AUC of the mean probability, and the video confusion matrix (study rule) as
    tn/fp/fn/tp with good = positive. One row 'all' plus one per view."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    parts = [("all", pred)]
    if by_view:
        parts += [(v, g) for v, g in pred.groupby("view", sort=True)]
    rows = []
    for name, g in parts:
        yhat = (g["p_good"].to_numpy() >= 0.5).astype(int)
        y = g["label"].to_numpy().astype(int)
        vs = video_scores(g)
        r = {"view": name, "videos": len(vs), "bad_videos": int((vs["label"] == 0).sum()), "frames": len(g),
             "frame_acc": accuracy_score(y, yhat), "frame_f1": f1_score(y, yhat, zero_division=0),
             "frame_auc": _auc(y, g["p_good"])}
        for rule in VIDEO_RULES:
            r[f"video_acc_{rule}"] = accuracy_score(vs["label"], vs[f"pred_{rule}"])
        r["video_f1_study_60pct"] = f1_score(vs["label"], vs["pred_study_60pct"], zero_division=0)
        r["video_auc"] = _auc(vs["label"], vs["mean_probability"])
        cm = confusion_matrix(vs["label"], vs["pred_study_60pct"], labels=[0, 1])
        r.update({"video_tn": int(cm[0, 0]), "video_fp": int(cm[0, 1]), "video_fn": int(cm[1, 0]),
                  "video_tp": int(cm[1, 1])})
        rows.append(r)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- protocols

def cross_validate(videos: list[Video], spec: dict, protocol: str = "grouped", n_splits: int = 5,
                   epochs: int = 60, seed: int = 0, progress: bool = False) -> dict:
    """Out-of-fold predictions for one spec under protocol 'grouped' (b) or 'random_frames' (a).

    Returns {'pred': DataFrame (meta + p_good + fold), 'histories': [per-fold history],
             'seconds': training time, 'spec': spec, 'protocol', 'n_features'}.
    """
    mirror = bool(spec.get("mirror_augment")) and protocol == "grouped"
    X, meta, names = frame_table(videos, spec["blocks"], spec.get("window", 0), mirror_augment=mirror)
    base = np.flatnonzero(~meta["mirrored"].to_numpy())
    if protocol == "grouped":
        folds = grouped_folds(meta.iloc[base], n_splits, seed)
    elif protocol == "random_frames":
        folds = random_frame_folds(meta.iloc[base], n_splits, seed)
    else:
        raise ValueError(f"unknown protocol {protocol!r}; use 'grouped' or 'random_frames'")
    weights = balanced_weights(meta) if spec.get("balance") else None
    pred = meta.iloc[base].copy()
    pred["p_good"] = np.nan
    pred["fold"] = -1
    histories = []
    t0 = time.perf_counter()
    it = enumerate(folds)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(list(it), desc=f"{spec['name']} ({protocol})")
    for k, (tr_b, te_b) in it:
        tr_rows, te_rows = fold_rows(meta, base, tr_b, te_b, mirror)
        w = None if weights is None else balanced_weights(meta.iloc[tr_rows])
        predict, hist, _, _ = fit_model(spec, X[tr_rows], meta["label"].to_numpy()[tr_rows], w,
                                        X[te_rows], meta["label"].to_numpy()[te_rows],
                                        epochs=epochs, seed=seed + k)
        pred.iloc[te_b, pred.columns.get_loc("p_good")] = predict(X[te_rows])
        pred.iloc[te_b, pred.columns.get_loc("fold")] = k
        histories.append(hist)
    return {"pred": pred, "histories": histories, "seconds": time.perf_counter() - t0, "spec": spec,
            "protocol": protocol, "n_features": X.shape[1], "feature_names": names}


def fold_rows(meta: pd.DataFrame, base: np.ndarray, tr_b: np.ndarray, te_b: np.ndarray, mirror: bool):
    """Rows of `meta` to train and test on for one fold given on the unmirrored rows `base`.

    Test rows are unmirrored frames only; with mirror augmentation the mirrored copies of the
    training groups join training, and those of the test groups never do.
    """
    tr_rows, te_rows = base[tr_b], base[te_b]
    if mirror:
        tr_groups = set(meta["group"].iloc[tr_rows])
        tr_rows = np.flatnonzero(meta["group"].isin(tr_groups).to_numpy())
    return tr_rows, te_rows


def train_final(videos: list[Video], spec: dict, epochs: int = 60, seed: int = 0):
    """Fit a spec on all of `videos`. Returns (model, config dict, history, seconds); the model
    is Keras or scikit-learn by spec, and save_model_bundle saves either."""
    X, meta, names = frame_table(videos, spec["blocks"], spec.get("window", 0),
                                 mirror_augment=bool(spec.get("mirror_augment")))
    w = balanced_weights(meta) if spec.get("balance") else None
    t0 = time.perf_counter()
    _, hist, model, scaler = fit_model(spec, X, meta["label"].to_numpy(), w, epochs=epochs, seed=seed)
    seconds = time.perf_counter() - t0
    config = {"kind": "classifier", "spec_name": spec["name"], "model_type": spec["model"],
              "feature_blocks": list(spec["blocks"]), "window": int(spec.get("window", 0)),
              "window_step_s": 5 / 30, "mirror_augment": bool(spec.get("mirror_augment")),
              "balance_view_and_form": bool(spec.get("balance")), "epochs": epochs, "seed": seed,
              "feature_names": names, "n_features": len(names),
              "normalisation": "canonical facing (+x), hip-centred, unit = video's 90th-pct torso length; "
                               "then per-feature standardisation with the mean/std below, missing -> 0",
              "training_videos": sorted({v.video_id for v in videos}), "training_frames": int(len(X)),
              # which pose files it learned from, so a transfer test never scores them (see below)
              "training_pose_files": sorted({_resolved(v.seq.source_path) for v in videos if v.seq.source_path}),
              **(scaler.to_dict() if scaler is not None else {})}
    return model, config, hist, seconds


def transfer_predictions(clf, videos: list[Video]) -> pd.DataFrame:
    """Frame predictions of a FormClassifier on other-source videos (meta + p_good), judged frames
    only, one per ~1/6 s as in training."""
    from .features import step_frames

    rows = []
    for v in videos:
        p = clf.predict_frames(v.seq, view=v.view)
        idx = np.flatnonzero(np.isfinite(p))[::step_frames(v.seq.fps, v.seq.frame_stride)]
        rows.append(pd.DataFrame({"video_id": v.video_id, "group": v.group or v.video_id, "lifter": v.lifter,
                                  "view": v.view, "label": v.label, "source": v.source, "frame": idx,
                                  "p_good": p[idx]}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["video_id", "group", "lifter", "view", "label", "source", "frame", "p_good"])


def _resolved(path) -> str:
    return os.path.realpath(str(path))


def evaluate_transfer_folder(model_dir, pose_dir, labels_csv, source: str = "transfer") -> dict:
    """Protocol (c) on any folder of pose JSONs + labels CSV: accuracy and ROC AUC of the clip
    score for a saved classifier.

    Pose files the model was trained on (its config's `training_pose_files`, e.g. videos the user
    approved in notebook 02) are left out: scoring them would be the study's leak again.
    Returns {'summary', 'videos', 'pred'} (None when every video was in training) and
    'held_out' / 'in_training' counts.
    """
    from .dataset import load_labelled_folder
    from .models import load_classifier

    clf = load_classifier(model_dir)
    videos = load_labelled_folder(pose_dir, labels_csv, source)
    if not videos:
        raise FileNotFoundError(f"{pose_dir}: no pose JSON matching the rows of {labels_csv}. "
                                "Extract poses first: python -m deadlift_utils extract VIDEO_FOLDER --out DIR")
    seen = set(clf.config.get("training_pose_files") or [])
    held_out = [v for v in videos if _resolved(v.seq.source_path) not in seen]
    out = {"summary": None, "videos": None, "pred": None,
           "held_out": len(held_out), "in_training": len(videos) - len(held_out)}
    if held_out:
        pred = transfer_predictions(clf, held_out)
        out.update(summary=summarise(pred), videos=video_scores(pred), pred=pred)
    return out


def leave_one_lifter_out(base_videos: list[Video], other_videos: list[Video], spec: dict,
                         epochs: int = 60, seed: int = 0) -> dict:
    """Protocol (c), second half: train on base + all other-source lifters but one, test on
    that lifter. Returns {'pred', 'seconds'}."""
    X, meta, _ = frame_table(base_videos + other_videos, spec["blocks"], spec.get("window", 0),
                             mirror_augment=bool(spec.get("mirror_augment")))
    is_other = meta["source"].to_numpy() == other_videos[0].source
    preds = []
    t0 = time.perf_counter()
    for k, (lifter, _, _) in enumerate(leave_one_group_out(meta[is_other], "lifter")):
        test = is_other & (meta["lifter"].to_numpy() == lifter) & ~meta["mirrored"].to_numpy()
        train = ~(is_other & (meta["lifter"].to_numpy() == lifter))
        w = balanced_weights(meta[train]) if spec.get("balance") else None
        predict, _, _, _ = fit_model(spec, X[train], meta["label"].to_numpy()[train], w, epochs=epochs,
                                     seed=seed + k)
        p = meta[test].copy()
        p["p_good"] = predict(X[test])
        preds.append(p)
    return {"pred": pd.concat(preds, ignore_index=True), "seconds": time.perf_counter() - t0}


def train_and_predict_other(base_videos: list[Video], other_videos: list[Video], spec: dict,
                            epochs: int = 60, seed: int = 0) -> dict:
    """Protocol (c), first half: train on base only, predict every other-source video."""
    X, meta, _ = frame_table(base_videos, spec["blocks"], spec.get("window", 0),
                             mirror_augment=bool(spec.get("mirror_augment")))
    Xo, mo, _ = frame_table(other_videos, spec["blocks"], spec.get("window", 0))
    w = balanced_weights(meta) if spec.get("balance") else None
    t0 = time.perf_counter()
    predict, _, _, _ = fit_model(spec, X, meta["label"].to_numpy(), w, epochs=epochs, seed=seed)
    mo = mo.copy()
    mo["p_good"] = predict(Xo)
    return {"pred": mo, "seconds": time.perf_counter() - t0}


def trusted_backends(table: pd.DataFrame, model_name: str, min_auc: float = 0.7, min_acc: float = 0.7) -> list[str]:
    """Pose backends a model may be trusted on, from its measured results.

    'openpose' (the training data's backend, measured by protocol (b)) always; 'blazepose'
    only when every transfer row on BlazePose poses (protocol (c), saved model, rows whose
    protocol names a pose folder other than the OpenPose lifters) reaches video ROC AUC >=
    min_auc and video accuracy >= min_acc. analyze.py reads this list from config.json.
    """
    rows = table[(table["model"] == model_name) & (table["view"] == "all")
                 & table["protocol"].str.contains("saved model", regex=False)]
    ok = len(rows) > 0 and bool(((rows["video_auc"].fillna(0) >= min_auc)
                                 & (rows["video_acc_study_60pct"] >= min_acc)).all())
    return ["openpose", "blazepose"] if ok else ["openpose"]


# ---------------------------------------------------------------- plots

def plot_histories(histories: list[dict], path=None, title: str = ""):
    """Loss and accuracy per epoch, train and validation on one axis, one colour per fold.
    Saves a PNG when `path` is given; returns the matplotlib figure."""
    import matplotlib

    if path is not None and matplotlib.get_backend().lower() == "agg":
        pass
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for k, h in enumerate(histories):
        if not h:
            continue
        c = f"C{k % 10}"
        ep = np.arange(1, len(h["loss"]) + 1)
        for ax, key in zip(axes, ("loss", "accuracy")):
            if key in h:
                ax.plot(ep, h[key], color=c, lw=1, label=f"fold {k} train")
            if f"val_{key}" in h:
                ax.plot(ep, h[f"val_{key}"], color=c, lw=1, ls="--", label=f"fold {k} validation")
    for ax, key in zip(axes, ("binary cross-entropy loss", "frame accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2)
    fig.suptitle(title + " (solid = train, dashed = held-out fold)")
    fig.tight_layout()
    if path is not None:
        from .io_utils import save_figure

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_figure(fig, path, dpi=110, close=False)
    return fig


def results_markdown(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A DataFrame as a GitHub markdown table (no tabulate dependency)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if isinstance(v, (float, np.floating)):
                cells.append("" if not np.isfinite(v) else format(v, floatfmt))
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
