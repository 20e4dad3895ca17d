"""Pose estimators behind one interface, and the tracker that follows the lifter.

`PoseEstimator.detect(frame_bgr, timestamp_ms)` returns a list of `Person`, each with
COCO-18 `keypoints` (18, 3) = x_px, y_px, confidence (NaN where not found) and optional
`world` (18, 3) metres. Backends:
  - "blazepose": MediaPipe PoseLandmarker (Tasks API, VIDEO mode, CPU), model bundles from
    `make models` (lite / full / heavy). Several people per frame.
  - "openpose": the study's OpenPose COCO Caffe model through cv2.dnn, with prototxt and
    caffemodel paths the user supplies (the weights are no longer downloadable). One person.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .keypoints import N_KEYPOINTS, blazepose_to_coco

BACKENDS = ("blazepose", "openpose")
# Options a caller may pass through to an estimator (extract_folder, the batch, make_estimator).
BLAZEPOSE_OPTIONS = ("num_poses", "min_confidence", "keypoint_threshold", "models_dir", "retry_missed",
                     "segmentation")
ESTIMATOR_OPTIONS = BLAZEPOSE_OPTIONS + ("openpose_prototxt", "openpose_weights")


@dataclass
class Person:
    keypoints: np.ndarray          # (18, 3): x_px, y_px, confidence; NaN = not found
    world: np.ndarray | None = None  # (18, 3) metres, hip-centred (BlazePose only)
    mask: np.ndarray | None = None   # (H, W) float32 person probability 0..1, frame-sized
                                     # (BlazePose with segmentation=True only)

    def bbox(self) -> tuple[float, float, float, float] | None:
        xy = self.keypoints[:, :2]
        ok = ~np.isnan(xy[:, 0])
        if ok.sum() < 2:
            return None
        x0, y0 = xy[ok].min(axis=0)
        x1, y1 = xy[ok].max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    def centre(self) -> np.ndarray | None:
        b = self.bbox()
        return None if b is None else np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])


class PoseEstimator:
    """Interface: detect people in one frame. Use as a context manager (releases the model)."""

    name = "base"

    def detect(self, frame_bgr: np.ndarray, timestamp_ms: int) -> list[Person]:
        raise NotImplementedError

    def start_video(self) -> None:
        """Called before the first frame of each video (a tracking model resets here)."""

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


@contextlib.contextmanager
def _quiet_native_stderr():
    """Hide the C++ start-up chatter MediaPipe/LiteRT print to fd 2; re-print it on error."""
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            tmp.seek(0)
            os.write(2, tmp.read()[-4000:])
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _import_mediapipe_tasks():
    """Import MediaPipe Tasks without TensorFlow.

    mediapipe imports TensorFlow (8 s here) only to fetch a documentation decorator, and
    falls back to a no-op when TensorFlow is absent. Hiding TensorFlow for the duration of
    that import makes extraction start in under a second; a later real import is unaffected.
    """
    import sys

    hide = "tensorflow" not in sys.modules
    if hide:
        sys.modules["tensorflow"] = None  # makes `import tensorflow...` raise ModuleNotFoundError
    try:
        from mediapipe.tasks.python import BaseOptions, vision
    finally:
        if hide:
            del sys.modules["tensorflow"]
    return BaseOptions, vision


class BlazePoseEstimator(PoseEstimator):
    """MediaPipe BlazePose (33 landmarks mapped to COCO-18), CPU, VIDEO running mode.

    keypoint_threshold: a landmark whose visibility is below it counts as not found
    (BlazePose always guesses occluded limbs; a guess is not a measurement).
    retry_missed: VIDEO mode sometimes returns nobody for a frame where the lifter is plainly
    visible (seen on 4-12% of the frames of some yfgd_small side views); such frames are run
    again through an IMAGE-mode landmarker, which runs the person detector afresh. This costs
    time only on missed frames.
    """

    name = "blazepose"

    def __init__(self, model_variant: str = "full", num_poses: int = 3, min_confidence: float = 0.3,
                 keypoint_threshold: float = 0.3, models_dir: str | os.PathLike | None = None,
                 retry_missed: bool = True, segmentation: bool = False):
        from .pose_models import task_path

        path = task_path(model_variant, Path(models_dir) if models_dir else None)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: BlazePose model not installed. Run `make models` (it unpacks the model "
                f"from the mediapipe wheel on PyPI and the @mediapipe/pose npm package).")
        with _quiet_native_stderr():
            BaseOptions, vision = _import_mediapipe_tasks()

            # The GPU delegate aborts the process on this class of machine: CPU only.
            options = vision.PoseLandmarkerOptions(
                base_options=BaseOptions(model_asset_path=str(path),
                                         delegate=BaseOptions.Delegate.CPU),
                running_mode=vision.RunningMode.VIDEO, num_poses=num_poses,
                min_pose_detection_confidence=min_confidence,
                # 0.5 (the default) drops frames on occluded side views; 0.3 keeps them.
                min_pose_presence_confidence=min_confidence, min_tracking_confidence=min_confidence,
                output_segmentation_masks=bool(segmentation),
            )
            self._landmarker = vision.PoseLandmarker.create_from_options(options)
        self._vision, self._base_options, self._path = vision, BaseOptions, path
        self._image_landmarker = None
        self.min_confidence = min_confidence
        self.retry_missed = retry_missed
        self.model_variant = model_variant
        self.segmentation = bool(segmentation)
        self.keypoint_threshold = keypoint_threshold
        self._last_ts = -1
        self._offset = 0
        self._first = True

    def start_video(self) -> None:
        # VIDEO mode needs timestamps that keep increasing across videos; a 10 s gap also
        # makes MediaPipe drop the previous video's tracked region and detect afresh.
        self._offset = self._last_ts + 10_000 if self._last_ts >= 0 else 0

    def detect(self, frame_bgr: np.ndarray, timestamp_ms: int) -> list[Person]:
        import cv2
        import mediapipe as mp

        ts = max(int(timestamp_ms) + self._offset, self._last_ts + 1)
        self._last_ts = ts
        h, w = frame_bgr.shape[:2]
        image = mp.Image(image_format=mp.ImageFormat.SRGB,
                         data=np.ascontiguousarray(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)))
        if self._first:
            # The first inference prints native warnings (tensor alignment, ROI projection).
            with _quiet_native_stderr():
                result = self._landmarker.detect_for_video(image, ts)
            self._first = False
        else:
            result = self._landmarker.detect_for_video(image, ts)
        if not result.pose_landmarks and self.retry_missed:
            result = self._detect_image(image)
        people = []
        for i, lms in enumerate(result.pose_landmarks):
            arr = np.array([[lm.x * w, lm.y * h, lm.visibility if lm.visibility is not None else 1.0]
                            for lm in lms], dtype=float)
            kp = blazepose_to_coco(arr)
            world = None
            if i < len(result.pose_world_landmarks):
                warr = np.array([[lm.x, lm.y, lm.z] for lm in result.pose_world_landmarks[i]], dtype=float)
                world = blazepose_to_coco(warr)
            lost = (kp[:, 2] < self.keypoint_threshold) | (kp[:, 0] < 0) | (kp[:, 1] < 0) \
                | (kp[:, 0] >= w) | (kp[:, 1] >= h)
            kp[lost] = np.nan
            if world is not None:
                world[lost] = np.nan
            mask = None
            masks = getattr(result, "segmentation_masks", None)
            if masks and i < len(masks):
                # A copy: the view points into MediaPipe's buffer, which the next detect() reuses
                # while extraction's measuring thread may still read this frame's mask.
                mask = np.array(masks[i].numpy_view(), dtype=np.float32, copy=True).reshape(h, w)
            people.append(Person(kp, world, mask))
        return people

    def _detect_image(self, image):
        if self._image_landmarker is None:
            vision = self._vision
            options = vision.PoseLandmarkerOptions(
                base_options=self._base_options(model_asset_path=str(self._path),
                                                delegate=self._base_options.Delegate.CPU),
                running_mode=vision.RunningMode.IMAGE, num_poses=3,
                min_pose_detection_confidence=self.min_confidence,
                min_pose_presence_confidence=self.min_confidence,
                output_segmentation_masks=self.segmentation)
            with _quiet_native_stderr():
                self._image_landmarker = vision.PoseLandmarker.create_from_options(options)
        return self._image_landmarker.detect(image)

    def close(self) -> None:
        # Closing prints LiteRT "DestroyAccelerator" INFO lines to fd 2; keep stderr for errors.
        for name in ("_landmarker", "_image_landmarker"):
            if getattr(self, name, None) is not None:
                with _quiet_native_stderr():
                    getattr(self, name).close()
                setattr(self, name, None)

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the C library may already be gone
            pass


def heatmaps_to_keypoints(heatmaps: np.ndarray, frame_width: int, frame_height: int,
                          threshold: float = 0.1) -> np.ndarray:
    """The study's OpenPose post-processing: one peak per keypoint heatmap.

    heatmaps: (>=18, H, W) network output (the first 18 channels are the COCO keypoints).
    Returns (18, 3) x_px, y_px, confidence in frame pixels; NaN where the peak <= threshold.
    """
    import cv2

    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    if heatmaps.ndim != 3 or heatmaps.shape[0] < N_KEYPOINTS:
        raise ValueError(f"expected (>=18, H, W) heatmaps, got shape {heatmaps.shape}")
    out = np.full((N_KEYPOINTS, 3), np.nan)
    hm_h, hm_w = heatmaps.shape[1:]
    for j in range(N_KEYPOINTS):
        _, conf, _, (px, py) = cv2.minMaxLoc(heatmaps[j])
        if conf > threshold:
            # Map the heatmap cell centre to frame pixels.
            out[j] = ((px + 0.5) * frame_width / hm_w, (py + 0.5) * frame_height / hm_h, conf)
    return out


class OpenPoseEstimator(PoseEstimator):
    """The study's OpenPose COCO model (pose_deploy_linevec.prototxt + pose_iter_440000.caffemodel).

    368x368 input blob scaled to [0, 1], one heatmap peak per keypoint, threshold 0.1.
    Needs OpenCV 4.x: OpenCV 5 removed the Caffe importer.
    """

    name = "openpose"

    def __init__(self, prototxt: str | os.PathLike | None, caffemodel: str | os.PathLike | None,
                 threshold: float = 0.1, input_size: int = 368):
        import cv2

        missing = [f"{label} ({p})" for label, p in (("prototxt", prototxt), ("caffemodel", caffemodel))
                   if not p or not Path(p).is_file()]
        if missing:
            raise FileNotFoundError(
                "OpenPose backend needs the study's model files, which are no longer downloadable: "
                f"missing {', '.join(missing)}. Pass --openpose-prototxt and --openpose-weights "
                "(pose_deploy_linevec.prototxt, pose_iter_440000.caffemodel) if you have them, "
                "or use the default backend 'blazepose'.")
        if not hasattr(cv2.dnn, "readNetFromCaffe"):
            raise RuntimeError(
                f"OpenCV {cv2.__version__} has no Caffe importer (removed in OpenCV 5), so the OpenPose "
                "backend cannot load its weights. Install the pinned opencv-contrib-python 4.x "
                "(make install) or use the 'blazepose' backend.")
        self._net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
        self.threshold = threshold
        self.input_size = input_size

    def detect(self, frame_bgr: np.ndarray, timestamp_ms: int) -> list[Person]:
        import cv2

        h, w = frame_bgr.shape[:2]
        blob = cv2.dnn.blobFromImage(frame_bgr, 1.0 / 255, (self.input_size, self.input_size),
                                     (0, 0, 0), swapRB=False, crop=False)
        self._net.setInput(blob)
        out = self._net.forward()[0]
        kp = heatmaps_to_keypoints(out, w, h, self.threshold)
        return [Person(kp)] if np.isfinite(kp[:, 0]).sum() >= 2 else []


def make_estimator(backend: str = "blazepose", model_variant: str = "full", **kwargs) -> PoseEstimator:
    """Build the estimator named by `backend` ('blazepose' or 'openpose')."""
    if backend == "blazepose":
        keep = {k: v for k, v in kwargs.items() if k in BLAZEPOSE_OPTIONS}
        return BlazePoseEstimator(model_variant=model_variant, **keep)
    if backend == "openpose":
        return OpenPoseEstimator(kwargs.get("openpose_prototxt"), kwargs.get("openpose_weights"))
    raise ValueError(f"unknown pose backend {backend!r}; choose one of {BACKENDS}")


class LazyEstimator(PoseEstimator):
    """Loads the real estimator on first use (a run over finished results loads no model) and
    keeps it for every later video. `on_load()` is called after each load (batch counts loads)."""

    def __init__(self, backend: str, variant: str, options: dict, on_load=None):
        self.backend, self.variant, self.options = backend, variant, options
        self.on_load = on_load
        self._est: PoseEstimator | None = None

    def start_video(self) -> None:
        if self._est is not None:
            self._est.start_video()

    def detect(self, frame_bgr, timestamp_ms):
        if self._est is None:
            self._est = make_estimator(self.backend, self.variant, **self.options)
            if self.on_load is not None:
                self.on_load(self)
        return self._est.detect(frame_bgr, timestamp_ms)

    def close(self) -> None:
        if self._est is not None:
            self._est.close()
            self._est = None


class LifterTracker:
    """Follow one person (the lifter) through a video with bystanders.

    The first frame with people picks the largest, most central person; after that, the
    person nearest the previous lifter position (relative to the lifter's size). A
    candidate further than `max_jump` body heights from the last position is someone else:
    the frame counts as lifter-not-found. After `reacquire_after` frames without the lifter,
    the tracker picks afresh.
    """

    def __init__(self, frame_width: int, frame_height: int, max_jump: float = 0.5, reacquire_after: int = 15):
        self.w, self.h = frame_width, frame_height
        self.max_jump = max_jump
        self.reacquire_after = reacquire_after
        self.last_centre: np.ndarray | None = None
        self.last_size: float | None = None
        self.missed = 0

    def _size(self, p: Person) -> float:
        x0, y0, x1, y1 = p.bbox()
        return max(x1 - x0, y1 - y0, 1.0)

    def _initial_score(self, p: Person) -> float:
        x0, y0, x1, y1 = p.bbox()
        area = (x1 - x0) * (y1 - y0) / (self.w * self.h)
        c = p.centre()
        off = np.hypot((c[0] - self.w / 2) / self.w, (c[1] - self.h / 2) / self.h)  # 0 centre .. 0.7 corner
        return area * (1.0 - off)

    def choose(self, people: list[Person]) -> Person | None:
        people = [p for p in people if p.bbox() is not None]
        if not people:
            self.missed += 1
            return None
        if self.last_centre is None or self.missed >= self.reacquire_after:
            best = max(people, key=self._initial_score)
        else:
            dists = [np.linalg.norm(p.centre() - self.last_centre) / self.last_size for p in people]
            i = int(np.argmin(dists))
            if dists[i] > self.max_jump:
                self.missed += 1
                return None
            best = people[i]
        self.last_centre, self.last_size, self.missed = best.centre(), self._size(best), 0
        return best
