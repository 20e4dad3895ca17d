"""The bad-input catalogue (issue 7): every input a user can get wrong, and what they see.

Each entry of CASES is one bad input, run BOTH through the command line (a real subprocess,
`python -m deadlift_utils ...`) and through the Python API:
  - an error: exit code non-zero, exactly one line on stderr, starting `error:`, naming the file
    and saying what to do, no traceback; the API raises the documented exception type with
    the same kind of message;
  - a graceful result (a video with no person, one frame, papermill-style string numbers,
    duplicate label rows): exit 0 and the documented outcome (e.g. verdict "unknown" with the
    reason).
Separate tests below: the rotated phone video (keypoints upright), folder runs with a mix of
good and bad files (`extract FOLDER`, `batch FOLDER`), and "never destroys saved state".

scripts/reliability_catalogue.py runs the same CASES through the CLI and writes
docs/reliability_catalogue.md, so the table there is what a real run printed.

Related tests not repeated here: tests/test_pose_io.py (more malformed pose JSON variants
through load_pose_json), tests/test_labels_widgets.py (LabelStore/ApprovalStore values),
tests/test_extract.py and tests/test_analyze.py (bad videos through extract_video /
analyze_command in-process), tests/test_batch.py (a broken file in a batch with analysis).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest

from deadlift_utils import config

STRIDE, MODEL = 15, "lite"          # fast extraction settings for every case
FIX_POSE = "Re-extract the poses"   # the fix every pose-file message gives


# ----------------------------------------------------------------------------- helpers

def run_cli(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m deadlift_utils ARGS` as a user runs it (no OpenAI key: offline coaching)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return subprocess.run([sys.executable, "-m", "deadlift_utils", *map(str, args)], capture_output=True,
                          text=True, cwd=config.PROJECT_ROOT, env=env, timeout=timeout)


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one line a failed command printed on stderr (asserts there is exactly one)."""
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def write_video(path: Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    h, w = frames[0].shape[:2] if frames else (240, 320)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        out.write(f)
    out.release()
    return path


def scene(w: int = 320, h: int = 240) -> np.ndarray:
    """A static scene without a person: coloured rectangles on grey."""
    img = np.full((h, w, 3), 200, np.uint8)
    cv2.rectangle(img, (20, 20), (120, 200), (0, 0, 255), -1)
    cv2.rectangle(img, (180, 60), (300, 220), (255, 0, 0), -1)
    cv2.circle(img, (160, 40), 25, (0, 200, 0), -1)
    return img


def ffmpeg(*args) -> None:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *map(str, args)],
                   check=True, capture_output=True, timeout=120)


def real_segment(src: Path, dst: Path, seconds: float = 2.0, rotate_stored: bool = False) -> Path:
    """The first `seconds` of a real clip, re-encoded (H.264). rotate_stored: store the frames
    turned 90 degrees clockwise and tag the file to be shown turned back (display rotation
    90 degrees counter-clockwise), as a phone stores a portrait clip."""
    if not rotate_stored:
        ffmpeg("-t", seconds, "-i", src, "-an", "-c:v", "libx264", "-preset", "ultrafast", dst)
        return dst
    stored = dst.with_name(dst.stem + "_stored.mp4")
    ffmpeg("-t", seconds, "-i", src, "-an", "-vf", "transpose=1", "-c:v", "libx264", "-preset", "ultrafast", stored)
    ffmpeg("-display_rotation", 90, "-i", stored, "-c", "copy", dst)   # tag only, no re-encode
    stored.unlink()
    return dst


def esap_frames(n: int = 20) -> list:
    """The first n frames of a real study pose file (18 [x, y] points or null each)."""
    return json.loads((config.ESAP_POSE_DIR / "bad_side" / "Bad1.json").read_text())[:n]


def labels_csv(rows: list[str], header: str = "video_id,path,form,view,note,source,labelled_at") -> str:
    return "\n".join([header, *rows]) + "\n"


def params_yaml(body: str) -> str:
    return body.strip() + "\n"


class Sources:
    """Inputs shared by many cases: the real clips, plus a saved classifier made once."""

    def __init__(self, work: Path):
        self.work = work
        self.side_clip = config.YFGD_DIR / "good" / "good_001.mp4"
        self.kettlebell = config.KETTLEBELL_DIR / "correct_side.mp4"
        self._classifier: Path | None = None

    @property
    def classifier(self) -> Path:
        """A saved classifier folder (model.keras + config.json), random weights: enough to
        carry a pose file through `classify`; the verdict itself means nothing."""
        if self._classifier is None:
            from deadlift_utils.models import build_study_classifier, save_model_bundle

            folder = self.work / "classifier"
            cfg = {"kind": "classifier", "feature_blocks": ["raw_xy"], "window": 0,
                   "feature_mean": [0.0] * 36, "feature_std": [500.0] * 36}
            save_model_bundle(build_study_classifier(36), folder, cfg, {"note": "test bundle, untrained"})
            self._classifier = folder
        return self._classifier


# ----------------------------------------------------------------------------- the catalogue

@dataclass
class Cli:
    """One command of a case. args may use {path} (the bad input), {out} (a fresh output
    folder), {model} (the saved classifier) and {clip} (a good video)."""
    args: list[str]
    exit: int
    expect: list[str]                    # substrings of the line the user sees
    check: Callable[[str], bool] | None = None   # extra check on stdout (graceful results)


@dataclass
class Case:
    id: str
    group: str
    what: str                            # the bad input, in words
    make: Callable[[Path, Sources], Path]
    cli: list[Cli]
    api: Callable[[Path, Path, Sources], object]   # the Python API call; returns or raises
    api_text: str                        # that call, as written in the table
    raises: type | None = None           # the documented exception type, or None: graceful result
    api_expect: list[str] = field(default_factory=list)   # substrings of the message / result text
    check: Callable[[object], None] | None = None          # extra checks on a graceful result


def _write(name: str, content: str | bytes):
    def make(d: Path, src: Sources) -> Path:
        p = d / name
        (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
        return p
    return make


def _make_truncated(d, src):
    p = d / "truncated.mp4"
    p.write_bytes(src.side_clip.read_bytes()[:10_000])
    return p


def _make_empty_folder(d, src):
    p = d / "no_videos"
    p.mkdir()
    (p / "notes.txt").write_text("videos go here\n")
    (p / "photo.jpg").write_bytes(cv2.imencode(".jpg", scene())[1].tobytes())
    return p


def _make_image(name, ext):
    def make(d, src):
        p = d / name
        p.write_bytes(cv2.imencode(ext, scene())[1].tobytes())
        return p
    return make


def _api_extract(path, out, src):
    from deadlift_utils.extract import extract_video

    return extract_video(path, out, frame_stride=STRIDE, model_variant=MODEL, write_videos=False)


def _api_extract_folder(path, out, src):
    from deadlift_utils.extract import extract_folder

    return extract_folder(path, out, progress=False, frame_stride=STRIDE, model_variant=MODEL, write_videos=False)


def _api_batch(path, out, src):
    from deadlift_utils.batch import run_batch

    return run_batch(path, out, progress=False)


def _api_analyze(stride):
    def call(path, out, src):
        from deadlift_utils.analyze import analyze_video

        rep = analyze_video(path, out, frame_stride=stride, model_variant=MODEL, use_openai=False, write_video=False)
        return f"report: verdict {rep['verdict']!r}, reason {rep['verdict_reason']!r}"
    return call


def _api_pose(path, out, src):
    from deadlift_utils.pose import load_pose_json

    return load_pose_json(path)


def _api_classify(path, out, src):
    from deadlift_utils.models import classify_pose_file

    return classify_pose_file(path, src.classifier)


def _api_load_classifier(path, out, src):
    from deadlift_utils.models import load_classifier

    return load_classifier(path)


def _api_labels(path, out, src):
    """LabelStore (notebook 01) and the training loader of notebooks 03/04 on the same file."""
    from deadlift_utils.dataset import load_user_videos
    from deadlift_utils.labels import ApprovalStore, LabelStore

    approvals = path.parent / "approvals_for_this_case.csv"     # never the output folder's own
    ApprovalStore(approvals).decide("x/a", "approved", pose_path="")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = LabelStore(path)
        load_user_videos(labels_csv=path, approvals_csv=approvals)
    return f"labels {store.df[['video_id', 'form']].values.tolist()}; warnings: " + \
        " | ".join(dict.fromkeys(str(w.message) for w in caught))    # both readers warn: show it once


def _api_import_labels(path, out, src):
    from deadlift_utils.labels import csv_label_rows

    return csv_label_rows(path, source="import")


def _api_params(path, out, src):
    from deadlift_utils.pipeline import build_parameters

    p = build_parameters(path)
    return f"03_train_classifier: {p['03_train_classifier']}"


CLASSIFIER_HINT = "notebooks/03_train_classifier.ipynb"
DEVIATION_HINT = "notebooks/04_train_deviation_model.ipynb"


def _model_folder(kind: str):
    """Saved-model folders with one thing wrong (built from the test classifier)."""
    def make(d, src):
        p = d / f"model_{kind}"
        if kind != "missing":
            shutil.copytree(src.classifier, p)
        if kind == "no_config":
            (p / "config.json").unlink()
        elif kind == "no_model_file":
            (p / "model.keras").unlink()
        elif kind == "damaged":
            (p / "model.keras").write_bytes(b"half a model")
        elif kind == "wrong_kind":
            (p / "config.json").write_text(json.dumps({"kind": "deviation"}))
        elif kind == "other_save":  # config.json of another save beside this model.keras
            cfg = json.loads((p / "config.json").read_text())
            cfg["model_sha256"] = "0" * 64
            (p / "config.json").write_text(json.dumps(cfg))
        return p
    return make


def _bad_model_case(kind: str, what: str, message: str, exc) -> "Case":
    """A classifier folder with one thing wrong, through classify, analyze --classifier and the API."""
    return Case(f"model_{kind}", "model", what, _model_folder(kind),
                [Cli(["classify", "{pose}", "--model", "{path}"], 2, [message, CLASSIFIER_HINT]),
                 Cli(["analyze", "{clip}", "--out", "{out}", "--classifier", "{path}"], 2, [message, CLASSIFIER_HINT])],
                _api_load_classifier, "load_classifier(path)", exc, [message, CLASSIFIER_HINT])


def _pose_file(name: str, obj=None, text: str | None = None):
    return _write(name, text if text is not None else json.dumps(obj))


_NEG = esap_frames(12)
for _t in range(3):                 # the lifter not found in the first three frames
    _NEG[_t] = [[-1, -1]] * 18
_NAN_FRAME = [[100.0, 200.0, 0.9]] * 17 + [[float("nan"), 1.0, 0.9]]

CASES: list[Case] = [
    # ------------------------------------------------------------------ paths and videos
    Case("missing_path", "video", "a path that does not exist",
         lambda d, src: d / "no_such_clip.mp4",
         [Cli(["extract", "{path}", "--out", "{out}"], 2, ["no such file or folder", "Pass a video"]),
          Cli(["analyze", "{path}", "--out", "{out}"], 2, ["no such video", "Check the path"]),
          Cli(["batch", "{path}", "--out", "{out}"], 2, ["no such folder", "Pass the folder"])],
         _api_extract, "extract_video(path, out)", FileNotFoundError, ["no such file", "Check the path"]),
    Case("empty_folder", "video", "a folder with no videos in it (a .txt and a .jpg)",
         _make_empty_folder,
         [Cli(["extract", "{path}", "--out", "{out}"], 2, ["holds no videos", "Copy your videos there"]),
          Cli(["batch", "{path}", "--out", "{out}"], 2, ["holds no videos", "Copy your videos there"]),
          Cli(["analyze", "{path}", "--out", "{out}"], 2, ["is a folder, not a video", "extract FOLDER"])],
         _api_extract_folder, "extract_folder(path, out)", ValueError, ["holds no videos", "Copy your videos"]),
    Case("file_to_batch", "video", "a single video passed where a folder is expected (batch)",
         lambda d, src: write_video(d / "one_clip.mp4", [scene()] * 3),
         [Cli(["batch", "{path}", "--out", "{out}"], 2, ["is a file, not a folder", "pass the folder"])],
         _api_batch,
         "run_batch(path, out)", ValueError, ["is a file, not a folder", "extract and analyze take a single video"]),
    Case("text_as_mp4", "video", "a text file renamed .mp4",
         _write("notes.mp4", "these are my notes, not a video\n"),
         [Cli(["extract", "{path}", "--out", "{out}", "--quiet"], 1, ["match no video format", "re-export"]),
          Cli(["analyze", "{path}", "--out", "{out}"], 2, ["match no video format", "re-export"])],
         _api_extract, "extract_video(path, out)", ValueError, ["cannot be opened as a video: its contents match no video format", "re-export"]),
    Case("truncated_mp4", "video", "a truncated mp4 (the first 10 KB of a real clip)",
         _make_truncated,
         [Cli(["extract", "{path}", "--out", "{out}", "--quiet"], 1, ["is cut short", "did not finish", "complete video"]),
          Cli(["analyze", "{path}", "--out", "{out}"], 2, ["is cut short", "did not finish", "complete video"])],
         _api_extract, "extract_video(path, out)", ValueError, ["cannot be opened as a video: it is cut short", "complete video"]),
    Case("empty_file", "video", "an empty file (0 bytes) named .mp4",
         _write("empty.mp4", b""),
         [Cli(["extract", "{path}", "--out", "{out}", "--quiet"], 1, ["the file is empty (0 bytes)", "re-copy"]),
          Cli(["analyze", "{path}", "--out", "{out}"], 2, ["the file is empty (0 bytes)", "re-copy"])],
         _api_extract, "extract_video(path, out)", ValueError, ["the file is empty", "re-copy"]),
    Case("zero_frames", "video", "a video container with zero frames",
         lambda d, src: write_video(d / "zero_frames.mp4", []),
         [Cli(["extract", "{path}", "--out", "{out}", "--quiet"], 1, ["holds no frames", "re-export"]),
          Cli(["analyze", "{path}", "--out", "{out}"], 2, ["holds no frames", "re-export"])],
         _api_extract, "extract_video(path, out)", ValueError, ["cannot be opened as a video: it holds no frames"]),
    Case("one_frame", "video", "a one-frame video",
         lambda d, src: write_video(d / "one_frame.mp4", [scene()]),
         [Cli(["extract", "{path}", "--out", "{out}", "--quiet", "--stride", STRIDE, "--model", MODEL], 0,
              ["one_frame.json", "frames=1", "lifter_found=0%"]),
          Cli(["analyze", "{path}", "--out", "{out}", "--stride", STRIDE], 0,
              ["verdict unknown", "too short to judge (1 sampled frame; need at least 5)"])],
         _api_analyze(STRIDE), "analyze_video(path, out)", None,
         ["verdict 'unknown'", "too short to judge (1 sampled frame"]),
    Case("no_person", "video", "a 2 s video of a static scene with no person (coloured shapes)",
         lambda d, src: write_video(d / "empty_scene.mp4", [scene()] * 60),
         [Cli(["extract", "{path}", "--out", "{out}", "--quiet", "--stride", STRIDE, "--model", MODEL], 0,
              ["empty_scene.json", "frames=4", "lifter_found=0%"]),
          Cli(["analyze", "{path}", "--out", "{out}", "--stride", 5], 0,
              ["verdict unknown", "no person was found in the video"])],
         _api_analyze(5), "analyze_video(path, out, frame_stride=5)", None,
         ["verdict 'unknown'", "no person was found in the video"]),
    Case("image_jpg", "video", "a photo (.jpg) passed as a video",
         _make_image("photo.jpg", ".jpg"),
         [Cli(["extract", "{path}", "--out", "{out}", "--quiet"], 1, ["is a still image (JPEG), not a video", "pass the video file"]),
          Cli(["analyze", "{path}", "--out", "{out}"], 2, ["is a still image (JPEG), not a video", "pass the video file"])],
         _api_extract, "extract_video(path, out)", ValueError, ["still image (JPEG)", "pass the video file"]),
    Case("image_renamed_mp4", "video", "a PNG image renamed .mp4",
         _make_image("frame.mp4", ".png"),
         [Cli(["extract", "{path}", "--out", "{out}", "--quiet"], 1, ["is a still image (PNG), not a video", "pass the video file"]),
          Cli(["analyze", "{path}", "--out", "{out}"], 2, ["is a still image (PNG), not a video", "pass the video file"])],
         _api_extract, "extract_video(path, out)", ValueError, ["still image (PNG)", "pass the video file"]),

    # ------------------------------------------------------------------ pose JSON (classify reads one)
    Case("pose_missing", "pose", "a pose JSON path that does not exist",
         lambda d, src: d / "nope.json",
         [Cli(["classify", "{path}", "--model", "{model}"], 2, ["pose file not found", "extract VIDEO"])],
         _api_pose, "load_pose_json(path)", FileNotFoundError, ["pose file not found", "extract"]),
    Case("pose_malformed", "pose", "pose JSON cut short (not valid JSON)",
         _pose_file("cut.json", text='{"schema": "deadlift-pose/1", "frames": [{"keypoints": [[1, 2'),
         [Cli(["classify", "{path}", "--model", "{model}"], 2, ["not valid JSON", FIX_POSE])],
         _api_pose, "load_pose_json(path)", ValueError, ["not valid JSON", FIX_POSE]),
    Case("pose_empty", "pose", "an empty pose JSON file",
         _pose_file("empty.json", text=""),
         [Cli(["classify", "{path}", "--model", "{model}"], 2, ["the file is empty", FIX_POSE])],
         _api_pose, "load_pose_json(path)", ValueError, ["the file is empty", FIX_POSE]),
    Case("pose_no_frames", "pose", "pose JSON with no frames ([])",
         _pose_file("no_frames.json", []),
         [Cli(["classify", "{path}", "--model", "{model}"], 2, ["holds no frames", FIX_POSE])],
         _api_pose, "load_pose_json(path)", ValueError, ["holds no frames", FIX_POSE]),
    Case("pose_wrong_count", "pose", "pose JSON with 17 keypoints in a frame (COCO-18 expected)",
         _pose_file("seventeen.json", [f[:17] for f in esap_frames(5)]),
         [Cli(["classify", "{path}", "--model", "{model}"], 2, ["frame 0 has 17 keypoints, expected 18", FIX_POSE])],
         _api_pose, "load_pose_json(path)", ValueError, ["has 17 keypoints, expected 18", FIX_POSE]),
    Case("pose_nan", "pose", "pose JSON with a NaN coordinate",
         _pose_file("nan.json", text=json.dumps({"schema": "deadlift-pose/1", "frames": [{"keypoints": _NAN_FRAME}]})),
         [Cli(["classify", "{path}", "--model", "{model}"], 2, ["frame 0 keypoint 17 is NaN or infinite", FIX_POSE])],
         _api_pose, "load_pose_json(path)", ValueError, ["keypoint 17 is NaN or infinite", FIX_POSE]),
    Case("pose_inf", "pose", "pose JSON with an infinite coordinate (Infinity)",
         _pose_file("inf.json", [[[float("inf"), 5.0]] + f[1:] for f in esap_frames(3)]),
         [Cli(["classify", "{path}", "--model", "{model}"], 2, ["frame 0 keypoint 0 is NaN or infinite", FIX_POSE])],
         _api_pose, "load_pose_json(path)", ValueError, ["keypoint 0 is NaN or infinite", FIX_POSE]),
    Case("pose_mixed_formats", "pose", "pose JSON mixing both formats (frame objects without the header)",
         _pose_file("mixed.json", [{"frame_index": 0, "keypoints": esap_frames(1)[0]}]),
         [Cli(["classify", "{path}", "--model", "{model}"], 2, ["mixed formats", FIX_POSE])],
         _api_pose, "load_pose_json(path)", ValueError, ["mixed formats", FIX_POSE]),
    Case("pose_negative", "pose", "pose JSON with negative coordinates ([-1, -1] in frames 0-2)",
         _pose_file("negative.json", _NEG),
         [Cli(["classify", "{path}", "--model", "{model}"], 0, ['"frame_probabilities": [\n    null,\n    null,\n    null,'],
              check=lambda out: (len(json.loads(out)["frame_probabilities"]) == 12
                                 and None not in json.loads(out)["frame_probabilities"][3:]))],
         _api_classify, "classify_pose_file(path, model)", None, ["'frame_probabilities': [None, None, None, 0."],
         check=lambda r: (len(r["frame_probabilities"]) == 12
                          and all(p is not None for p in r["frame_probabilities"][3:]))),

    Case("pose_json_as_video", "pose", "a pose JSON passed to analyze (which takes the video)",
         _pose_file("lift.json", esap_frames(5)),
         [Cli(["analyze", "{path}", "--out", "{out}"], 2, ["is a pose file, not a video", "classify lift.json"]),
          Cli(["extract", "{path}", "--out", "{out}", "--quiet"], 1, ["is a pose file, not a video"])],
         _api_analyze(STRIDE), "analyze_video(path, out)", ValueError, ["is a pose file, not a video"]),

    # ------------------------------------------------------------------ labels.csv
    Case("labels_unknown_form", "labels", "labels.csv with an unknown label (form 'great')",
         _write("labels.csv", labels_csv(["x/a,,great,side,,user,"])),
         [Cli(["run", "--params", "{params}", "--check"], 2, ["row for 'x/a' has form 'great'", "Fix that row"])],
         _api_labels, "LabelStore(path); load_user_videos(path, approvals)", ValueError,
         ["has form 'great'", "Fix that row; the file is not overwritten"]),
    Case("labels_unknown_view", "labels", "labels.csv with an unknown view ('top')",
         _write("labels.csv", labels_csv(["x/a,,good,top,,user,"])),
         [Cli(["run", "--params", "{params}", "--check"], 2, ["row for 'x/a' has view 'top'", "Fix that row"])],
         _api_labels, "LabelStore(path); load_user_videos(path, approvals)", ValueError,
         ["has view 'top'", "or leave it blank"]),
    Case("labels_missing_column", "labels", "labels.csv without its 'form' column",
         _write("labels.csv", labels_csv(["x/a,,side"], header="video_id,path,view")),
         [Cli(["run", "--params", "{params}", "--check"], 2, ["missing column(s) ['form']", "Fix the header"])],
         _api_labels, "LabelStore(path); load_user_videos(path, approvals)", ValueError,
         ["missing column(s) ['form']", "Fix the header"]),
    Case("labels_duplicate_rows", "labels", "labels.csv with two rows for one video",
         _write("labels.csv", labels_csv(["x/a,,good,side,,user,", "x/a,,bad,side,,user,"])),
         [Cli(["run", "--params", "{params}", "--check"], 0, ["warning: ", "duplicate rows for ['x/a']",
                                                               "the last row of each counts"])],
         _api_labels, "LabelStore(path); load_user_videos(path, approvals)", None,
         ["labels [['x/a', 'bad']]", "duplicate rows for ['x/a']; the last row of each counts"]),
    Case("dataset_labels_unknown_view", "labels", "a dataset labels.csv to import (video,label,view) with view 'overhead'",
         _write("dataset_labels.csv", "video,label,view\nclip.mp4,good,overhead\n"),
         [Cli(["run", "--params", "{params}", "--check"], 2, ["'clip.mp4' has view 'overhead'", "leave it blank"])],
         _api_import_labels, "csv_label_rows(path, source)", ValueError, ["has view 'overhead'", "leave it blank"]),

    # ------------------------------------------------------------------ model folders
    Case("model_folder_missing", "model", "--classifier / --deviation / --model naming a folder that does not exist",
         _model_folder("missing"),
         [Cli(["classify", "{pose}", "--model", "{path}"], 2, ["classifier folder not found", CLASSIFIER_HINT]),
          Cli(["analyze", "{clip}", "--out", "{out}", "--deviation", "{path}"], 2,
              ["deviation model folder not found", DEVIATION_HINT])],
         _api_load_classifier, "load_classifier(path)", FileNotFoundError, ["classifier folder not found", CLASSIFIER_HINT]),
    _bad_model_case("no_config", "a model folder whose config.json was deleted",
                    "config.json is missing", FileNotFoundError),
    _bad_model_case("no_model_file", "a model folder without model.keras", "model.keras is missing", FileNotFoundError),
    _bad_model_case("damaged", "a model folder whose model.keras is damaged", "is not a Keras model file", ValueError),
    _bad_model_case("wrong_kind", "the deviation model's folder passed as the classifier",
                    "holds a deviation model, not a classifier", ValueError),
    _bad_model_case("other_save", "a model folder whose model.keras and config.json come from different saves",
                    "model.keras and config.json come from different saves", ValueError),

    # ------------------------------------------------------------------ pipeline parameters (papermill)
    Case("param_wrong_type", "params", "a parameter of the wrong type (epochs: many)",
         _write("params.yaml", params_yaml("notebooks:\n  03_train_classifier:\n    epochs: many")),
         [Cli(["run", "--params", "{path}", "--check"], 2, ["parameter 'epochs' of 03_train_classifier should be int, got 'many'",
                                                            "fix it in that file"])],
         _api_params, "build_parameters(path)", ValueError, ["should be int, got 'many'", "fix it in that file"]),
    Case("param_string_numbers", "params", "papermill-style strings for numbers and flags (epochs: \"20\", lifter_holdout: \"true\")",
         _write("params.yaml", params_yaml('notebooks:\n  03_train_classifier:\n    epochs: "20"\n    lifter_holdout: "true"')),
         [Cli(["run", "--params", "{path}", "--check"], 0, ["epochs: 20", "lifter_holdout: true", "parameters and input files OK"])],
         _api_params, "build_parameters(path)", None, ["'epochs': 20", "'lifter_holdout': True"]),
    Case("param_unknown_key", "params", "a parameter the notebook does not have (epoch: 20)",
         _write("params.yaml", params_yaml("notebooks:\n  03_train_classifier:\n    epoch: 20")),
         [Cli(["run", "--params", "{path}", "--check"], 2, ["03_train_classifier has no parameter 'epoch'", "it has: "])],
         _api_params, "build_parameters(path)", ValueError, ["has no parameter 'epoch'", "epochs"]),
    Case("param_unknown_notebook", "params", "a misspelt notebook name (03_train_classifer)",
         _write("params.yaml", params_yaml("notebooks:\n  03_train_classifer:\n    epochs: 20")),
         [Cli(["run", "--params", "{path}", "--check"], 2, ["unknown notebook '03_train_classifer'", "use one of 01_label_videos"])],
         _api_params, "build_parameters(path)", ValueError, ["unknown notebook '03_train_classifer'"]),
    Case("param_not_yaml", "params", "a params file that is not valid YAML",
         _write("params.yaml", "notebooks:\n  03_train_classifier:\n    epochs: [20\n"),
         [Cli(["run", "--params", "{path}", "--check"], 2, ["not valid YAML", "at line 4", "fix that line"])],
         _api_params, "build_parameters(path)", ValueError, ["not valid YAML", "fix that line"]),
]
CASES_BY_ID = {c.id: c for c in CASES}
assert len(CASES_BY_ID) == len(CASES)


def fill(args: list, path: Path, out: Path, src: Sources, d: Path) -> list[str]:
    """Substitute a Cli's placeholders; builds the params YAML that points the label cases at the file."""
    needs = " ".join(map(str, args))
    subst = {"path": str(path), "out": str(out)}
    if "{model}" in needs:
        subst["model"] = str(src.classifier)
    if "{clip}" in needs:
        subst["clip"] = str(d / "any_clip.mp4")           # never read: the folder check comes first
    if "{pose}" in needs:
        subst["pose"] = str(config.ESAP_POSE_DIR / "bad_side" / "Bad1.json")
    if "{params}" in needs:
        key = "import_label_csvs" if path.name == "dataset_labels.csv" else "labels_csv"
        yaml_path = d / "params.yaml"
        yaml_path.write_text(f"notebooks:\n  01_label_videos:\n    {key}: {path}\n")
        subst["params"] = str(yaml_path)
    return [str(a).format(**subst) for a in args]


def api_outcome(case: Case, path: Path, out: Path, src: Sources) -> tuple[object, str]:
    """(exception or result, the text of it) from the case's Python API call."""
    try:
        result = case.api(path, out, src)
    except Exception as e:  # noqa: BLE001 - the catalogue records whatever happens
        return e, f"{type(e).__name__}: {e}"
    return result, result if isinstance(result, str) else repr(result)


# ----------------------------------------------------------------------------- the tests

@pytest.fixture(scope="module")
def src(tmp_path_factory):
    return Sources(tmp_path_factory.mktemp("sources"))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, src, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    path = case.make(d, src)
    before = path.read_bytes() if path.is_file() else None

    # Command line: the exit code and the one line the user sees.
    for k, cli in enumerate(case.cli):
        proc = run_cli(*fill(cli.args, path, tmp_path / f"out{k}", src, d))
        assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
        assert proc.returncode == cli.exit, (cli.args, proc.returncode, proc.stdout, proc.stderr)
        if cli.exit != 0:
            line = error_line(proc)
            assert str(path) in line, f"the message does not name the file: {line}"
        else:
            assert "error:" not in proc.stderr, proc.stderr
            line = proc.stdout + proc.stderr
        for e in cli.expect:
            assert e in line, f"{e!r} not in {line!r}"
        if cli.check:
            assert cli.check(proc.stdout), proc.stdout

    # Python API: the documented exception (naming the file and the fix) or graceful result.
    result, text = api_outcome(case, path, tmp_path / "api_out", src)
    if case.raises is not None:
        assert isinstance(result, case.raises), text
        assert str(path) in str(result), text
    else:
        assert not isinstance(result, Exception), text
        if case.check:
            assert case.check(result), text
    for e in case.api_expect:
        assert e in text, f"{e!r} not in {text!r}"

    # The bad input itself is never rewritten (a bad labels.csv stays as the user left it).
    if before is not None:
        assert path.read_bytes() == before


def test_catalogue_covers_every_entry_of_the_issue():
    """Issue 7's list, entry by entry: each has at least one case, and every case runs through
    the CLI (as a subprocess) and the API."""
    issue = {"missing path": ["missing_path"], "folder with no videos": ["empty_folder"],
             "text file renamed .mp4": ["text_as_mp4"], "truncated mp4": ["truncated_mp4"],
             "zero-frame and one-frame videos": ["zero_frames", "one_frame"], "no person": ["no_person"],
             "image passed as a video": ["image_jpg", "image_renamed_mp4"],
             "pose JSON malformed/empty/counts/NaN-inf-negative/mixed": [
                 "pose_malformed", "pose_empty", "pose_wrong_count", "pose_nan", "pose_inf", "pose_negative",
                 "pose_mixed_formats"],
             "labels.csv unknown label/view, duplicates, missing column": [
                 "labels_unknown_form", "labels_unknown_view", "labels_duplicate_rows", "labels_missing_column"],
             "model folder missing its config": ["model_no_config", "model_no_model_file"],
             "parameters with wrong types (papermill strings)": ["param_wrong_type", "param_string_numbers"]}
    for entry, ids in issue.items():
        for i in ids:
            assert i in CASES_BY_ID, (entry, i)
    assert all(c.cli and c.api for c in CASES)
    # the portrait phone video and the folder runs are the dedicated tests below


# ----------------------------------------------------------------------------- rotated phone video

@pytest.fixture(scope="module")
def rotated_clip(src, tmp_path_factory):
    """2 s of a real upright portrait clip (a person standing, 360x640), stored turned 90
    degrees (640x360) with a display-rotation tag, as a phone writes a portrait video."""
    return real_segment(src.kettlebell, tmp_path_factory.mktemp("rot") / "phone_portrait.mp4", rotate_stored=True)


def _assert_upright_skeleton(xy: np.ndarray, width: int, height: int) -> None:
    from deadlift_utils.keypoints import KP

    def mean_y(*names):
        return np.nanmedian(np.nanmean(xy[:, [KP[n] for n in names], 1], axis=1))

    def spread(axis, *names):
        return np.nanmedian(np.ptp(xy[:, [KP[n] for n in names], axis], axis=1))

    shoulders, hips, ankles = (mean_y("r_shoulder", "l_shoulder"), mean_y("r_hip", "l_hip"),
                               mean_y("r_ankle", "l_ankle"))
    assert shoulders < hips < ankles, (shoulders, hips, ankles)        # image y grows downwards
    # The body is tall in the picture: shoulder-to-ankle runs along y, not x.
    body = np.c_[np.nanmean(xy[:, [KP["r_shoulder"], KP["l_shoulder"]]], axis=1),
                 np.nanmean(xy[:, [KP["r_ankle"], KP["l_ankle"]]], axis=1)]
    dy = np.nanmedian(body[:, 3] - body[:, 1])
    dx = np.nanmedian(np.abs(body[:, 2] - body[:, 0]))
    assert dy > 3 * dx and dy > 0.3 * height, (dx, dy)
    assert np.nanmax(xy[..., 0]) <= width and np.nanmax(xy[..., 1]) <= height


def test_portrait_phone_video_with_rotation_metadata_is_read_upright(rotated_clip, tmp_path):
    from deadlift_utils.extract import extract_video
    from deadlift_utils.video import probe_video

    # The file really is stored landscape and tagged: without auto-rotation OpenCV reads 640x360.
    cap = cv2.VideoCapture(str(rotated_clip))
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
    ok, raw = cap.read()
    cap.release()
    assert ok and raw.shape[:2] == (360, 640)

    info = probe_video(rotated_clip)
    assert (info.width, info.height) == (360, 640) and info.rotation in (90, 270)

    # API: keypoints in the upright (displayed) frame; the overlay video upright too.
    res = extract_video(rotated_clip, tmp_path / "api", frame_stride=STRIDE, model_variant=MODEL)
    seq = res.sequence
    assert (seq.width, seq.height) == (360, 640) and seq.detection_rate() >= 0.75
    _assert_upright_skeleton(seq.keypoints_xy, 360, 640)
    for video in (res.overlay_path, res.skeleton_path):
        cap = cv2.VideoCapture(str(video))
        ok, frame = cap.read()
        cap.release()
        assert ok and frame.shape[0] > frame.shape[1], frame.shape      # portrait

    # CLI: the same, from the JSON it wrote.
    proc = run_cli("extract", rotated_clip, "--out", tmp_path / "cli", "--quiet", "--stride", STRIDE,
                   "--model", MODEL, "--no-videos")
    assert proc.returncode == 0 and "error" not in proc.stderr, proc.stderr
    data = json.loads((tmp_path / "cli" / "phone_portrait.json").read_text())
    assert (data["width"], data["height"]) == (360, 640)
    from deadlift_utils.pose import load_pose_json

    _assert_upright_skeleton(load_pose_json(tmp_path / "cli" / "phone_portrait.json").keypoints_xy, 360, 640)


# ----------------------------------------------------------------------------- folder runs

BAD_IN_FOLDER = {"notes.mp4": "match no video format", "truncated.mp4": "is cut short",
                 "zero_frames.mp4": "holds no frames", "sub/photo.mp4": "is a still image (JPEG)",
                 "empty.mp4": "the file is empty"}
GOOD_IN_FOLDER = ["clip.mp4", "sub/one_frame.mp4"]


@pytest.fixture(scope="module")
def mixed_folder(src, tmp_path_factory):
    """A folder with two usable videos (a real 2 s clip and a one-frame video) and five bad
    files, one of each kind, some in a sub-folder."""
    d = tmp_path_factory.mktemp("mixed") / "videos"
    (d / "sub").mkdir(parents=True)
    real_segment(src.kettlebell, d / "clip.mp4")
    write_video(d / "sub" / "one_frame.mp4", [scene()])
    (d / "notes.mp4").write_text("not a video\n")
    _make_truncated(d, src)
    write_video(d / "zero_frames.mp4", [])
    (d / "sub" / "photo.mp4").write_bytes(cv2.imencode(".jpg", scene())[1].tobytes())
    (d / "empty.mp4").write_bytes(b"")
    (d / "readme.txt").write_text("not a video either, and ignored: not a video extension\n")
    return d


def _check_failure_lines(stderr: str, folder: Path) -> None:
    assert "Traceback" not in stderr
    lines = [l for l in stderr.strip().splitlines() if l.strip()]
    assert len(lines) == len(BAD_IN_FOLDER) and all(l.startswith("error: ") for l in lines), stderr
    for name, msg in BAD_IN_FOLDER.items():
        assert sum(str(folder / name) in l and msg in l for l in lines) == 1, (name, stderr)


def _check_good_outputs(out: Path) -> None:
    from deadlift_utils.pose import load_pose_json

    clip = load_pose_json(out / "clip.json")
    assert len(clip) == 8 and clip.detection_rate() > 0.75      # 120 frames at stride 15
    assert len(load_pose_json(out / "sub" / "one_frame.json")) == 1
    assert not (out / "notes.json").exists() and not (out / "sub" / "photo.json").exists()


def test_extract_folder_keeps_going_past_bad_files_and_lists_them(mixed_folder, tmp_path):
    from deadlift_utils.extract import extract_folder

    proc = run_cli("extract", mixed_folder, "--out", tmp_path / "cli", "--quiet", "--stride", STRIDE,
                   "--model", MODEL, "--no-videos")
    assert proc.returncode == 1, proc.stderr
    _check_failure_lines(proc.stderr, mixed_folder)
    assert proc.stdout.strip().splitlines()[-1] == f"done: 2, reused: 0, failed: {len(BAD_IN_FOLDER)}"
    _check_good_outputs(tmp_path / "cli")

    res = extract_folder(mixed_folder, tmp_path / "api", progress=False, frame_stride=STRIDE,
                         model_variant=MODEL, write_videos=False)
    assert sorted(str(r.video_path.relative_to(mixed_folder)) for r in res.done) == sorted(GOOD_IN_FOLDER)
    failed = {str(v.relative_to(mixed_folder)): m for v, m in res.failed}
    assert failed.keys() == BAD_IN_FOLDER.keys()
    assert all(BAD_IN_FOLDER[k] in m and str(mixed_folder / k) in m for k, m in failed.items())
    _check_good_outputs(tmp_path / "api")


def test_batch_folder_keeps_going_past_bad_files_and_lists_them(mixed_folder, tmp_path):
    from deadlift_utils.batch import SUMMARY_NAME, run_batch

    proc = run_cli("batch", mixed_folder, "--out", tmp_path / "cli", "--workers", 1, "--quiet", "--stride", STRIDE,
                   "--model", MODEL, "--no-videos")
    assert proc.returncode == 1, proc.stderr
    _check_failure_lines(proc.stderr, mixed_folder)
    assert "done           2" in proc.stdout and f"failed         {len(BAD_IN_FOLDER)}" in proc.stdout
    _check_good_outputs(tmp_path / "cli")
    summary = json.loads((tmp_path / "cli" / SUMMARY_NAME).read_text())
    assert {Path(f["video"]).relative_to(mixed_folder).as_posix() for f in summary["failed"]} == BAD_IN_FOLDER.keys()

    res = run_batch(mixed_folder, tmp_path / "api", workers=1, frame_stride=STRIDE, model_variant=MODEL,
                    progress=False, write_videos=False)
    assert sorted(Path(r.video).relative_to(mixed_folder).as_posix() for r in res.done) == sorted(GOOD_IN_FOLDER)
    failed = {Path(r.video).relative_to(mixed_folder).as_posix(): r.error for r in res.failed}
    assert failed.keys() == BAD_IN_FOLDER.keys()
    assert all(BAD_IN_FOLDER[k] in m for k, m in failed.items())
    _check_good_outputs(tmp_path / "api")


# ----------------------------------------------------------------------------- saved state

def test_bad_inputs_never_touch_saved_state(src, tmp_path):
    """Every failing case, re-run against an output folder that already holds a user's labels,
    approvals and an earlier valid pose file and report for a video of the same name: all of
    them stay byte-identical, and no run folder is left behind by a rejected pipeline run."""
    from deadlift_utils.labels import ApprovalStore, LabelStore
    from deadlift_utils.pipeline import run_pipeline
    from deadlift_utils.pose import PoseSequence, save_pose_json

    out = tmp_path / "out"
    labels, approvals = LabelStore(out / "labels.csv"), ApprovalStore(out / "approvals.csv")
    labels.set("my/lift", "good", "side", note="checked by hand")
    approvals.decide("my/lift", "approved", pose_path=str(out / "lift.json"), reason="looks right")
    xy = np.random.default_rng(0).uniform(10, 300, (6, 18, 2))
    save_pose_json(PoseSequence(xy, np.full((6, 18), 0.9), np.arange(6) * 5, np.arange(6) / 6, fps=30.0,
                                width=320, height=240, frame_stride=5, backend="earlier"), out / "lift.json")
    (out / "lift_report.json").write_text(json.dumps({"schema": "deadlift-analysis/1", "verdict": "good"}))
    (out / "poses").mkdir()
    shutil.copy(out / "lift.json", out / "poses" / "lift.json")   # where analyze keeps its pose file
    saved = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert len(saved) == 5

    # The cases whose commands write into an output folder (pose, label, model and parameter
    # files are only read; that the bad file itself is left as it was is checked in test_bad_input).
    failing = [c for c in CASES if any(k.exit != 0 and "{out}" in k.args for k in c.cli)]
    assert len(failing) >= 12
    for case in failing:
        d = tmp_path / "in" / case.id
        d.mkdir(parents=True)
        path = case.make(d, src)
        if path.suffix == ".mp4" and path.exists():       # the bad video has the saved result's name
            path = path.rename(d / "lift.mp4")
        for cli in case.cli:
            if cli.exit != 0 and "{out}" in cli.args:
                proc = run_cli(*fill(cli.args, path, out, src, d))
                assert proc.returncode == cli.exit and "Traceback" not in proc.stderr, (case.id, proc.stderr)
        result, _ = api_outcome(case, path, out, src)
        assert case.raises is None or isinstance(result, case.raises), case.id
    # A rejected pipeline run: nothing written, not even an empty run folder.
    bad = CASES_BY_ID["param_wrong_type"].make(tmp_path, src)
    with pytest.raises(ValueError, match="should be int"):
        run_pipeline(bad, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())

    now = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p in saved}
    assert now == saved
    assert not [p for p in out.rglob("*") if p.name.startswith(".") and "tmp" in p.name]   # no stray temp files
