"""Pose estimators behind one interface, and the tracker that follows the lifter.

`PoseEstimator.detect(frame_bgr, timestamp_ms)` returns a list of `Person`, each with
COCO-18 `keypoints` (18, 3) = x_px, y_px, confidence (NaN where not found) and optional
`world` (18, 3) metres. Backends:
  - "blazepose": MediaPipe PoseLandmarker (Tasks API, IMAGE mode, CPU), model bundles from
    `make models` (lite / full / heavy). Several people per frame; `detect_stream` runs
    frames in parallel threads.
  - "openpose": the study's OpenPose COCO Caffe model through cv2.dnn, with prototxt and
    caffemodel paths the user supplies (the weights are no longer downloadable). One person.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import queue
import tempfile
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .keypoints import N_KEYPOINTS, blazepose_to_coco

BACKENDS = ("blazepose", "openpose")
# Options a caller may pass through to an estimator (extract_folder, the batch, make_estimator).
BLAZEPOSE_OPTIONS = ("num_poses", "min_confidence", "keypoint_threshold", "models_dir", "segmentation",
                     "threads")
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

    def detect_stream(self, frames: Iterable[tuple[int, np.ndarray, int]]):
        """(index, frame, people) for each (index, frame, timestamp_ms) of `frames`, in order.
        One frame at a time here; an estimator that can run frames in parallel overrides it."""
        for index, frame, timestamp_ms in frames:
            yield index, frame, self.detect(frame, timestamp_ms)

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
    """MediaPipe BlazePose (33 landmarks mapped to COCO-18), CPU, IMAGE running mode.

    Every frame is searched for people afresh (the person detector runs on every frame, as
    it did in VIDEO mode with `num_poses` > 1; VIDEO mode also returned nobody on 4-12% of the
    frames of some yfgd_small side views, which needed a second, IMAGE-mode pass). Having no
    state from frame to frame, frames can be split between several landmarkers running in
    threads (`detect_stream`): `threads` of them (default: 2, or 1 on a one-core machine).
    keypoint_threshold: a landmark whose visibility is below it counts as not found
    (BlazePose always guesses occluded limbs; a guess is not a measurement).
    """

    name = "blazepose"

    def __init__(self, model_variant: str = "full", num_poses: int = 3, min_confidence: float = 0.3,
                 keypoint_threshold: float = 0.3, models_dir: str | os.PathLike | None = None,
                 segmentation: bool = False, threads: int | None = None):
        from .pose_models import task_path

        path = task_path(model_variant, Path(models_dir) if models_dir else None)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: BlazePose model not installed. Run `make models` (it unpacks the model "
                f"from the mediapipe wheel on PyPI and the @mediapipe/pose npm package).")
        with _quiet_native_stderr():
            BaseOptions, vision = _import_mediapipe_tasks()
        # The GPU delegate aborts the process on this class of machine: CPU only.
        self._options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path), delegate=BaseOptions.Delegate.CPU),
            running_mode=vision.RunningMode.IMAGE, num_poses=num_poses,
            min_pose_detection_confidence=min_confidence,
            # 0.5 (the default) drops frames on occluded side views; 0.3 keeps them.
            min_pose_presence_confidence=min_confidence,
            output_segmentation_masks=bool(segmentation),
        )
        self._vision = vision
        self.threads = max(1, int(threads if threads is not None else min(2, os.cpu_count() or 1)))
        self._idle: queue.SimpleQueue = queue.SimpleQueue()   # landmarkers not in use
        self._all: list = []
        self._warm: set[int] = set()  # ids of landmarkers past their first inference
        self._lock = threading.Lock()
        self.model_variant = model_variant
        self.segmentation = bool(segmentation)
        self.keypoint_threshold = keypoint_threshold
        self._idle.put(self._landmarker())  # a broken model fails here, not in a worker thread

    def _landmarker(self):
        """A landmarker nobody is using (a new one when all are busy, up to `threads`; else
        wait for one). Give it back with `self._idle.put`."""
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if len(self._all) < self.threads:
                with _quiet_native_stderr():  # start-up chatter of the model loader
                    lm = self._vision.PoseLandmarker.create_from_options(self._options)
                self._all.append(lm)
                return lm
        return self._idle.get()

    def _run(self, frame_bgr: np.ndarray) -> list[Person]:
        import cv2
        import mediapipe as mp

        image = mp.Image(image_format=mp.ImageFormat.SRGB,
                         data=np.ascontiguousarray(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)))
        lm = self._landmarker()
        try:
            if id(lm) not in self._warm:
                # A landmarker's first inference prints native warnings (tensor alignment, ROI
                # projection); one at a time, as hiding them redirects the process's stderr.
                with self._lock, _quiet_native_stderr():
                    result = lm.detect(image)
                self._warm.add(id(lm))
            else:
                result = lm.detect(image)
            # The masks are copied out in _people: their buffers belong to this landmarker.
            return self._people(result, frame_bgr.shape[:2])
        finally:
            self._idle.put(lm)

    def _people(self, result, shape) -> list[Person]:
        h, w = shape
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
                # A copy: the view points into MediaPipe's buffer, which the landmarker's next
                # detect() reuses while extraction's measuring thread may still read this mask.
                mask = np.array(masks[i].numpy_view(), dtype=np.float32, copy=True).reshape(h, w)
            people.append(Person(kp, world, mask))
        return people

    def detect(self, frame_bgr: np.ndarray, timestamp_ms: int) -> list[Person]:
        return self._run(frame_bgr)

    def detect_stream(self, frames: Iterable[tuple[int, np.ndarray, int]]):
        """`detect` on each (index, frame, timestamp_ms), `threads` frames at a time, in order."""
        if self.threads == 1:
            yield from super().detect_stream(frames)
            return
        with ThreadPoolExecutor(self.threads, thread_name_prefix="pose") as pool:
            pending: deque = deque()
            try:
                for index, frame, _ in frames:
                    pending.append((index, frame, pool.submit(self._run, frame)))
                    if len(pending) > self.threads:  # bounded: at most threads + 1 frames in flight
                        index0, frame0, fut = pending.popleft()
                        yield index0, frame0, fut.result()
                while pending:
                    index0, frame0, fut = pending.popleft()
                    yield index0, frame0, fut.result()
            finally:
                for _, _, fut in pending:
                    fut.cancel()

    def close(self) -> None:
        # Closing prints LiteRT "DestroyAccelerator" INFO lines to fd 2; keep stderr for errors.
        with self._lock:
            landmarkers, self._all = self._all, []
            self._warm.clear()
        for lm in landmarkers:
            with _quiet_native_stderr():
                lm.close()
        self._idle = queue.SimpleQueue()

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

    def _loaded(self) -> PoseEstimator:
        if self._est is None:
            self._est = make_estimator(self.backend, self.variant, **self.options)
            if self.on_load is not None:
                self.on_load(self)
        return self._est

    def detect(self, frame_bgr, timestamp_ms):
        return self._loaded().detect(frame_bgr, timestamp_ms)

    def detect_stream(self, frames):
        frames = iter(frames)
        first = next(frames, None)  # no frame (an empty video): no model loaded
        if first is None:
            return
        yield from self._loaded().detect_stream(itertools.chain([first], frames))

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

    The other people are followed too, each at its own constant velocity: a person first
    seen clearly apart from the lifter (beyond `max_jump`) keeps that identity while it
    moves. When someone walks between the camera and the lifter, the lifter is hidden and
    the walker is where the lifter was; the walker's own track predicts them there better
    than the lifter's last position does, so the frame counts as lifter-not-found instead
    of the walker taking over the track.
    """

    def __init__(self, frame_width: int, frame_height: int, max_jump: float = 0.5, reacquire_after: int = 15):
        self.w, self.h = frame_width, frame_height
        self.max_jump = max_jump
        self.reacquire_after = reacquire_after
        self.last_centre: np.ndarray | None = None
        self.last_size: float | None = None
        self.missed = 0
        self.others: list[_OtherTrack] = []
        self.sample = 0

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
        self.sample += 1
        people = [p for p in people if p.bbox() is not None]
        self.others = [o for o in self.others if self.sample - o.seen <= self.reacquire_after]
        claimed = self._claimed(people)
        best = None
        if self.last_centre is None or self.missed >= self.reacquire_after:
            free = [p for i, p in enumerate(people) if i not in claimed] or people
            if free:
                best = max(free, key=self._initial_score)
        elif people:
            dists = [np.linalg.norm(p.centre() - self.last_centre) for p in people]
            for i in claimed:  # someone else's track predicts this one better: not the lifter
                dists[i] = np.inf
            i = int(np.argmin(dists))
            if dists[i] <= self.max_jump * self.last_size:
                best = people[i]
        if best is None:
            self.missed += 1
        else:
            self.last_centre, self.last_size, self.missed = best.centre(), self._size(best), 0
        self._follow_others(people, best, claimed)
        return best

    def _claimed(self, people: list[Person]) -> dict[int, "_OtherTrack"]:
        """{index in people: other track} for people nearer another person's predicted
        position than the lifter's last position (each track claims at most one)."""
        claimed: dict[int, _OtherTrack] = {}
        if not self.others or not people:
            return claimed
        pairs = []
        for o in self.others:
            pred = o.predict(self.sample)
            for i, p in enumerate(people):
                d = float(np.linalg.norm(p.centre() - pred))
                if d <= o.size:  # within one body height of where it should be
                    pairs.append((d, i, o))
        used = set()
        for d, i, o in sorted(pairs, key=lambda t: t[0]):
            if i in claimed or id(o) in used:
                continue
            d_lifter = (np.inf if self.last_centre is None
                        else float(np.linalg.norm(people[i].centre() - self.last_centre)))
            # A track seen once may be a false detection: it takes only people who cannot be
            # the lifter anyway; a person seen again takes whoever it predicts best.
            if d < d_lifter and (o.hits >= 2 or d_lifter > self.max_jump * self.last_size):
                claimed[i] = o
                used.add(id(o))
        return claimed

    def _follow_others(self, people, lifter, claimed) -> None:
        for i, p in enumerate(people):
            if p is lifter:
                continue
            if i in claimed:
                claimed[i].update(p.centre(), self._size(p), self.sample)
            elif lifter is not None and np.linalg.norm(p.centre() - self.last_centre) > self.last_size:
                # the lifter's body length or more away from them: someone else, not a second
                # (partial) detection of the lifter
                self.others.append(_OtherTrack(p.centre(), self._size(p), self.sample))


class _OtherTrack:
    """Someone who is not the lifter: last centre, size, velocity (px per sample)."""

    def __init__(self, centre: np.ndarray, size: float, sample: int):
        self.centre, self.size, self.seen = np.asarray(centre, float), float(size), sample
        self.velocity = np.zeros(2)
        self.hits = 1

    def predict(self, sample: int) -> np.ndarray:
        return self.centre + self.velocity * (sample - self.seen)

    def update(self, centre: np.ndarray, size: float, sample: int) -> None:
        v = (np.asarray(centre, float) - self.centre) / max(sample - self.seen, 1)
        self.velocity = 0.5 * self.velocity + 0.5 * v if self.hits > 1 else v
        self.centre, self.size, self.seen = np.asarray(centre, float), float(size), sample
        self.hits += 1
