"""Keras models: the study's frame classifier, the improved classifier, the deviation networks,
the masked Euclidean loss, and saving/loading a model with its config and metrics JSON.

A saved model is a folder:
    model.keras    the Keras model, or model.joblib for a scikit-learn one (a gradient-boosting
                   spec); config.json's `model_file` names which
    config.json    what the model needs to be used again: inputs (feature blocks, window),
                   normalisation (feature mean/std), training parameters, the video rule
    metrics.json   how well it did (cross-validation / transfer), with date and machine
`load_classifier(folder)` and `classify_pose_file(pose_json, folder)` are what the evaluation
step and the CLI call.
"""
from __future__ import annotations

import json
import os
import platform
import random
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import config
from .io_utils import atomic_write_text, file_sha256, to_jsonable

MODEL_FILE, CONFIG_FILE, METRICS_FILE = "model.keras", "config.json", "metrics.json"
SKLEARN_MODEL_FILE = "model.joblib"  # scikit-learn models (pickled): load only folders you trust
# The study's rule: a video is good when at least 60% of its frames are judged good.
STUDY_VIDEO_RULE = {"name": "good_frame_fraction", "threshold": 0.6, "frame_threshold": 0.5}

_TF_CONFIGURED = False


def configure_tensorflow(seed: int = 0, threads: int = 2, deterministic: bool = True) -> None:
    """Seed python/numpy/TF, cap TF at `threads` CPU threads, and ask for deterministic ops.

    Call before building models; the thread cap only takes effect before TF's first op.
    """
    global _TF_CONFIGURED
    import tensorflow as tf
    import keras

    if not _TF_CONFIGURED:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            pass  # TF already initialised in this process: keep its thread pools
        if deterministic:
            try:
                tf.config.experimental.enable_op_determinism()
            except Exception:  # noqa: BLE001 - optional speed/determinism trade, not required
                pass
        _TF_CONFIGURED = True
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


def machine_info() -> dict:
    """Date and machine for result tables."""
    return {"date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": config.describe_machine(), "python": platform.python_version()}


# ---------------------------------------------------------------- classifiers

def build_study_classifier(n_inputs: int = 36, learning_rate: float = 1e-3):
    """The study's frame classifier: Dense 128-64-32, each with BatchNorm, LeakyReLU(0.01)
    and Dropout 0.5; sigmoid output; binary cross-entropy; Adam."""
    import keras
    from keras import layers

    inp = keras.Input((n_inputs,), name="features")
    x = inp
    for units in (128, 64, 32):
        x = layers.Dense(units)(x)
        x = layers.BatchNormalization()(x)
        x = layers.LeakyReLU(negative_slope=0.01)(x)
        x = layers.Dropout(0.5)(x)
    out = layers.Dense(1, activation="sigmoid", name="p_good")(x)
    model = keras.Model(inp, out, name="study_mlp")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy",
                  metrics=["accuracy"])
    return model


def build_improved_classifier(n_inputs: int, hidden=(64, 32), dropout: float = 0.3,
                              l2: float = 1e-3, learning_rate: float = 1e-3):
    """Smaller MLP for engineered features: fewer frames than the study's network wants,
    so narrower layers, L2 and lighter dropout."""
    import keras
    from keras import layers, regularizers

    inp = keras.Input((n_inputs,), name="features")
    x = inp
    for units in hidden:
        x = layers.Dense(units, kernel_regularizer=regularizers.l2(l2))(x)
        x = layers.BatchNormalization()(x)
        x = layers.LeakyReLU(negative_slope=0.01)(x)
        x = layers.Dropout(dropout)(x)
    out = layers.Dense(1, activation="sigmoid", name="p_good")(x)
    model = keras.Model(inp, out, name="improved_mlp")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy",
                  metrics=["accuracy"])
    return model


class FeatureScaler:
    """Standardise features with training statistics; missing values (NaN) -> 0 (the mean)."""

    def __init__(self, mean=None, std=None):
        self.mean = None if mean is None else np.asarray(mean, dtype=float)
        self.std = None if std is None else np.asarray(std, dtype=float)

    def fit(self, X, sample_weight=None):
        X = np.asarray(X, dtype=float)
        with np.errstate(invalid="ignore"):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                self.mean = np.nan_to_num(np.nanmean(X, axis=0))
                std = np.nan_to_num(np.nanstd(X, axis=0))
        self.std = np.where(std > 1e-8, std, 1.0)
        return self

    def transform(self, X):
        Z = (np.asarray(X, dtype=float) - self.mean) / self.std
        return np.nan_to_num(np.clip(Z, -10, 10), nan=0.0).astype("float32")

    def to_dict(self):
        return {"feature_mean": self.mean.tolist(), "feature_std": self.std.tolist()}


def _is_sklearn(model) -> bool:
    return hasattr(model, "predict_proba")


class FormClassifier:
    """A trained frame classifier plus everything needed to use it on a new PoseSequence.

    `model` is a Keras model (fed standardised features: config's feature_mean/std) or a
    scikit-learn classifier; one trained without a scaler (gradient boosting) gets the raw
    features, missing values as NaN, as at training.
    """

    def __init__(self, model, config: dict, metrics: dict | None = None, model_dir=None):
        self.model = model
        self.config = config
        self.metrics = metrics or {}
        self.model_dir = model_dir
        self.scaler = (FeatureScaler(config["feature_mean"], config["feature_std"])
                       if "feature_mean" in config else None)

    def features(self, seq, view: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(X (T, F) unscaled, judgeable (T,)) for a PoseSequence, as at training."""
        from .dataset import Video, video_features

        v = Video("predict", seq, None, view or "", "predict", "predict")
        if not v.view:
            from .features import infer_view
            v.view = infer_view(seq.keypoints_xy)
        X, _, ok = video_features(v, self.config["feature_blocks"], self.config.get("window", 0))
        return X, ok

    def predict_frames(self, seq, view: str | None = None) -> np.ndarray:
        """(T,) probability of GOOD form per sampled frame; NaN where the frame cannot be
        judged (no hips or no shoulders)."""
        out = np.full(len(seq), np.nan)
        if len(seq) == 0:
            return out
        X, ok = self.features(seq, view)
        if ok.any():
            out[ok] = self.p_good(X[ok])
        return out

    def p_good(self, X: np.ndarray) -> np.ndarray:
        """(N,) probability of GOOD form for unscaled features X (N, F)."""
        Z = self.scaler.transform(X) if self.scaler is not None else np.asarray(X, dtype=float)
        if _is_sklearn(self.model):
            p = self.model.predict_proba(Z)[:, 1]
        else:
            p = self.model.predict(Z, verbose=0, batch_size=1024)
        return np.asarray(p, dtype=float).reshape(-1)

    def video_verdict(self, probs: np.ndarray) -> dict:
        """Apply the saved video rule to frame probabilities -> verdict dict."""
        return apply_video_rule(probs, self.config.get("video_rule", STUDY_VIDEO_RULE))


def apply_video_rule(probs: np.ndarray, rule: dict) -> dict:
    """rule 'good_frame_fraction': good when the share of judged frames with p >= frame_threshold
    is >= threshold (the study: 0.6). rule 'mean_probability': good when the mean p >= threshold."""
    p = np.asarray(probs, dtype=float)
    p = p[np.isfinite(p)]
    if p.size == 0:
        return {"verdict": "unknown", "good_frame_fraction": None, "mean_probability": None}
    frac = float(np.mean(p >= rule.get("frame_threshold", 0.5)))
    mean = float(p.mean())
    score = frac if rule["name"] == "good_frame_fraction" else mean
    return {"verdict": "good" if score >= rule["threshold"] else "bad",
            "good_frame_fraction": frac, "mean_probability": mean}


# ---------------------------------------------------------------- deviation nets

def masked_euclidean_loss(y_true, y_pred):
    """Mean Euclidean distance over the points that exist.

    y_true (B, 18, 3): x, y and a 0/1 weight (0 = missing point or not to be scored);
    y_pred (B, 18, 2). Missing points contribute nothing, whatever their coordinates.
    """
    from keras import ops

    w = y_true[..., 2]
    diff = y_pred - y_true[..., :2]
    dist = ops.sqrt(ops.sum(ops.square(diff), axis=-1) + 1e-9)
    return ops.sum(dist * w) / ops.maximum(ops.sum(w), 1.0)


def build_deviation_net(kind: str = "study_conv", learning_rate: float = 1e-3):
    """Predict the full (18, 2) normalised pose from a pose with some joints hidden.

    Input (B, 18, 3): x, y (0 where hidden/missing) and a presence flag.
      study_conv: the study's Conv2D 64-128-256-512 then Dense 512-256-128, L2 0.01,
                  Dropout 0.5.
      mlp:        Dense 256-256 (a simpler net).
      linear:     one linear layer (a regression baseline).
    """
    import keras
    from keras import layers, regularizers

    inp = keras.Input((18, 3), name="masked_pose")
    reg = regularizers.l2(0.01)
    if kind == "study_conv":
        x = layers.Reshape((18, 3, 1))(inp)
        x = layers.Conv2D(64, (3, 3), padding="valid", activation="relu", kernel_regularizer=reg)(x)
        for filters in (128, 256, 512):
            x = layers.Conv2D(filters, (3, 1), padding="same", activation="relu", kernel_regularizer=reg)(x)
        x = layers.MaxPooling2D((2, 1))(x)
        x = layers.Flatten()(x)
        for units in (512, 256, 128):
            x = layers.Dense(units, activation="relu", kernel_regularizer=reg)(x)
            x = layers.Dropout(0.5)(x)
    elif kind == "mlp":
        x = layers.Flatten()(inp)
        for units in (256, 256):
            x = layers.Dense(units, activation="relu", kernel_regularizer=regularizers.l2(1e-4))(x)
            x = layers.Dropout(0.1)(x)
    elif kind == "linear":
        x = layers.Flatten()(inp)
    else:
        raise ValueError(f"unknown deviation net {kind!r}; use 'study_conv', 'mlp' or 'linear'")
    out = layers.Reshape((18, 2), name="pose")(layers.Dense(36)(x))
    model = keras.Model(inp, out, name=f"deviation_{kind}")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=masked_euclidean_loss)
    return model


# ---------------------------------------------------------------- save / load

def write_json(path, obj) -> Path:
    """Atomic, NaN-free JSON write."""
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2))


def save_model_bundle(model, out_dir, config: dict, metrics: dict) -> Path:
    """Write the model (model.keras, or model.joblib for a scikit-learn model), metrics.json
    and config.json into out_dir, each atomically.

    config gets `model_file` and `model_sha256` (set in the dict passed, so later rewrites of
    config.json keep them) and is written last: a save killed half-way leaves a model file that
    does not match config.json, which check_model_folder reports instead of loading a
    mismatched pair. A model file of the other kind left by an earlier save is removed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = SKLEARN_MODEL_FILE if _is_sklearn(model) else MODEL_FILE
    tmp = out_dir / f".{name}.tmp{Path(name).suffix}"
    if name == SKLEARN_MODEL_FILE:
        import joblib

        joblib.dump(model, tmp)
    else:
        model.save(tmp)
    config["model_file"] = name
    config["model_sha256"] = file_sha256(tmp)
    os.replace(tmp, out_dir / name)
    write_json(out_dir / METRICS_FILE, metrics)
    write_json(out_dir / CONFIG_FILE, config)
    for other in {MODEL_FILE, SKLEARN_MODEL_FILE} - {name}:
        (out_dir / other).unlink(missing_ok=True)
    return out_dir


_RETRAIN_HINT = {
    "classifier": "re-run notebooks/03_train_classifier.ipynb (it saves outputs/runs/<run id>/classifier) "
                  "or pass that folder",
    "deviation model": "re-run notebooks/04_train_deviation_model.ipynb (it saves outputs/runs/<run id>/deviation) "
                       "or pass that folder",
}


def check_model_folder(model_dir, what: str = "model") -> tuple[dict, str]:
    """(config dict, fix hint) when `model_dir` looks like a saved model, without loading it
    (fast: no Keras import). Raises FileNotFoundError when the folder, the model file
    (config's `model_file`, model.keras by default) or config.json is missing and ValueError
    when config.json or the model file is unreadable, each naming the folder and the fix."""
    model_dir = Path(model_dir)
    hint = _RETRAIN_HINT.get(what, "train one with notebook 03 (classifier) or 04 (deviation model) "
                                   "and pass the folder it saves")
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir}: {what} folder not found; {hint}.")
    if not (model_dir / CONFIG_FILE).is_file():
        # An empty folder names the usual model file; one with a model names config.json.
        has_model = any((model_dir / n).is_file() for n in (MODEL_FILE, SKLEARN_MODEL_FILE))
        name = CONFIG_FILE if has_model else MODEL_FILE
        raise FileNotFoundError(f"{model_dir}: {name} is missing, so this is not a saved {what}; {hint}.")
    try:
        config = json.loads((model_dir / CONFIG_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{model_dir / CONFIG_FILE}: not valid JSON ({e}); {hint}.") from None
    if not isinstance(config, dict):
        raise ValueError(f"{model_dir / CONFIG_FILE}: should hold a JSON object, not {type(config).__name__}; {hint}.")
    model_file = config.get("model_file", MODEL_FILE)
    if model_file not in (MODEL_FILE, SKLEARN_MODEL_FILE):
        raise ValueError(f"{model_dir / CONFIG_FILE}: model_file {model_file!r} is neither {MODEL_FILE} nor "
                         f"{SKLEARN_MODEL_FILE}; {hint}.")
    if not (model_dir / model_file).is_file():
        raise FileNotFoundError(f"{model_dir}: {model_file} is missing, so this is not a saved {what}; {hint}.")
    expected = {"classifier": (None, "classifier"), "deviation model": ("deviation",)}.get(what)
    if expected and config.get("kind") not in expected:
        raise ValueError(f"{model_dir / CONFIG_FILE}: holds a {config.get('kind') or 'classifier'} model, not a "
                         f"{what}; {hint}.")
    import zipfile

    if model_file == MODEL_FILE and not zipfile.is_zipfile(model_dir / MODEL_FILE):  # a .keras file is a zip
        raise ValueError(f"{model_dir / MODEL_FILE}: is not a Keras model file (damaged or cut short); {hint}.")
    if config.get("model_sha256") and config["model_sha256"] != file_sha256(model_dir / model_file):
        raise ValueError(f"{model_dir}: {model_file} and config.json come from different saves (a save was "
                         f"interrupted, or one file was copied over); {hint}.")
    return config, hint


def load_model_bundle(model_dir, what: str = "model"):
    """(model, config dict, metrics dict) from a saved folder: a Keras model, or the
    scikit-learn model of a model.joblib bundle; clear errors if incomplete (see
    check_model_folder)."""
    model_dir = Path(model_dir)
    config, hint = check_model_folder(model_dir, what)
    metrics = {}
    if (model_dir / METRICS_FILE).is_file():
        try:
            metrics = json.loads((model_dir / METRICS_FILE).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            metrics = {}  # only shown to people; the model works without it
    if config.get("model_file", MODEL_FILE) == SKLEARN_MODEL_FILE:
        import joblib

        try:  # the sha256 check above already matched the file to its config.json
            return joblib.load(model_dir / SKLEARN_MODEL_FILE), config, metrics
        except Exception as e:  # noqa: BLE001 - unpickling raises anything; report it as a bad file
            raise ValueError(f"{model_dir / SKLEARN_MODEL_FILE}: cannot be loaded ({type(e).__name__}: "
                             f"{str(e)[:200]}); the file is damaged or from another scikit-learn version; "
                             f"{hint}.") from None
    import keras  # after the checks: importing it takes seconds

    try:
        model = keras.models.load_model(model_dir / MODEL_FILE,
                                        custom_objects={"masked_euclidean_loss": masked_euclidean_loss},
                                        compile=False)
    except (ValueError, OSError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{model_dir / MODEL_FILE}: cannot be loaded ({first[:200]}); the file is damaged or "
                         f"from another Keras version; {hint}.") from None
    return model, config, metrics


def load_classifier(model_dir) -> FormClassifier:
    """Load a classifier saved by the training notebook (folder with model.keras or
    model.joblib + config.json)."""
    model, config, metrics = load_model_bundle(model_dir, "classifier")
    # A Keras model needs its training scaler; gradient boosting was trained on raw features.
    needed = ("feature_blocks",) if _is_sklearn(model) and config.get("model_type") == "hgb" \
        else ("feature_blocks", "feature_mean", "feature_std")
    missing = [k for k in needed if k not in config]
    if missing or config.get("kind") not in (None, "classifier"):
        raise ValueError(f"{Path(model_dir) / CONFIG_FILE}: not a form-classifier config (missing {missing}, "
                         f"kind={config.get('kind')!r}). Pass the {{run_dir}}/classifier folder.")
    return FormClassifier(model, config, metrics, model_dir=str(model_dir))


def classify_pose_file(pose_json, model_dir) -> dict:
    """Classify one pose file: verdict ('good'/'bad'/'unknown'), good_frame_fraction,
    frame_probabilities (None where a frame cannot be judged), video_rule, pose_file."""
    from .pose import load_pose_json

    seq = load_pose_json(pose_json)  # first: a bad pose file is reported before the slow model load
    clf = load_classifier(model_dir)
    probs = clf.predict_frames(seq)
    verdict = clf.video_verdict(probs)
    return {
        "pose_file": str(pose_json),
        "verdict": verdict["verdict"],
        "good_frame_fraction": verdict["good_frame_fraction"],
        "mean_probability": verdict["mean_probability"],
        "video_rule": clf.config.get("video_rule", STUDY_VIDEO_RULE),
        "frame_probabilities": [None if not np.isfinite(p) else round(float(p), 4) for p in probs],
        "model_dir": str(model_dir),
    }
