"""Pose estimators behind one interface, and the tracker that follows the lifter.

`PoseEstimator.detect(frame_bgr, timestamp_ms)` returns a list of `Person`, each with
COCO-18 `keypoints` (18, 3) = x_px, y_px, confidence (NaN where not found) and optional
`world` (18, 3) metres. Backends:
  - "blazepose": MediaPipe PoseLandmarker (Tasks API, CPU), model bundles from
    `make models` (lite / full / heavy). Follows one lifter and returns only the lifter; other
    people are looked for when it matters (see BlazePoseEstimator).
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

from .keypoints import KP, N_KEYPOINTS, blazepose_to_coco

BACKENDS = ("blazepose", "openpose")
# Options a caller may pass through to an estimator (extract_folder, the batch, make_estimator).
BLAZEPOSE_OPTIONS = ("num_poses", "min_confidence", "keypoint_threshold", "models_dir", "retry_missed",
                     "segmentation", "recheck_interval_ms", "max_input_height")
ESTIMATOR_OPTIONS = BLAZEPOSE_OPTIONS + ("openpose_prototxt", "openpose_weights")


@dataclass
class Person:
    keypoints: np.ndarray          # (18, 3): x_px, y_px, confidence; NaN = not found
    world: np.ndarray | None = None  # (18, 3) metres, hip-centred (BlazePose only)
    mask: np.ndarray | None = None   # (h, w) float32 person probability 0..1 over the frame at
                                     # `mask_scale` (BlazePose with segmentation=True only)
    mask_scale: float = 1.0          # mask pixels per frame pixel (BlazePose runs on a reduced frame)
    tracked: bool = False            # already chosen as the lifter by the estimator's tracker

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

    def mask_crop(self, box: tuple[int, int, int, int]) -> np.ndarray | None:
        """The mask over the frame-pixel box (x0, y0, x1, y1), at frame resolution (float32;
        a reduced mask is interpolated bilinearly, pixel centres aligned)."""
        import cv2

        if self.mask is None:
            return None
        x0, y0, x1, y1 = (int(v) for v in box)
        s = float(self.mask_scale)
        if s == 1.0:
            return self.mask[y0:y1, x0:x1]
        # frame pixel (x, y) -> mask pixel ((x + 0.5) s - 0.5, ...), the crop's (0, 0) at (x0, y0)
        m = np.array([[s, 0.0, (x0 + 0.5) * s - 0.5], [0.0, s, (y0 + 0.5) * s - 0.5]])
        return cv2.warpAffine(np.asarray(self.mask, dtype=np.float32), m, (x1 - x0, y1 - y0),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)

    def frame_shape(self) -> tuple[int, int] | None:
        """(H, W) of the frame the mask covers."""
        if self.mask is None:
            return None
        return (int(round(self.mask.shape[0] / self.mask_scale)), int(round(self.mask.shape[1] / self.mask_scale)))


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
    """MediaPipe BlazePose (33 landmarks mapped to COCO-18), CPU, following one lifter.

    `detect` returns the lifter only (a list of one `Person` with `tracked=True`, or empty): the
    estimator keeps its own `LifterTracker`, because it must know whom it follows to decide when
    to look for other people. A caller's `LifterTracker.choose` passes such a person through.

    Speed (issue 14): a VIDEO-mode landmarker with one pose follows the lifter from frame to
    frame, so its person detector runs only when that track is lost (with num_poses=3 the
    detector ran on every frame: ~40% of the pose time). It is fed the frame reduced by a whole
    factor to at most `max_input_height` pixels high (1080p -> 540p): the same cost without
    masks, and the segmentation mask, returned at input size, becomes almost free. Keypoints
    are mapped back to full-frame pixels; the mask stays reduced (`Person.mask_scale`).
    Other people are looked for only when it matters, by a multi-person pass (IMAGE mode on the
    full frame, up to `num_poses` people, detector run afresh; the tracker then picks the lifter):
      - on the first frames of a video and then every `recheck_interval_ms` of video time;
      - when the single-pose track is lost (VIDEO mode sometimes returns nobody while the
        lifter is plainly visible: 4-12% of the frames of some yfgd_small side views);
      - when it jumps or its size changes by 2x at once (someone walked into it);
      - when the tracked pose lacks a lift joint (shoulder, hip, knee or ankle): a track can keep
        a cropped region on a close-framed lifter whose legs a fresh detection finds (yfgd
        bad_001/005/006); the pose with more lift joints is kept.
    When the lifter the multi-person pass found is not the one the track follows, the track is
    re-seeded: one blank frame drops the tracked region, and the next frame is shown to the
    single-pose landmarker with everything but the lifter's surroundings greyed out (only when
    other people were seen), so its detector starts on the lifter.

    keypoint_threshold: a landmark whose visibility is below it counts as not found
    (BlazePose always guesses occluded limbs; a guess is not a measurement).
    retry_missed: run the multi-person pass when the track is lost (else such a frame has nobody).
    segmentation: each Person carries `mask`, the person probability at `mask_scale` of the frame.
    `counts` tallies the passes run (single, multi, reseed), for benchmarks.
    """

    name = "blazepose"

    def __init__(self, model_variant: str = "full", num_poses: int = 3, min_confidence: float = 0.3,
                 keypoint_threshold: float = 0.3, models_dir: str | os.PathLike | None = None,
                 retry_missed: bool = True, segmentation: bool = False,
                 recheck_interval_ms: float = 1000.0, max_input_height: int | None = 720):
        from .pose_models import task_path

        path = task_path(model_variant, Path(models_dir) if models_dir else None)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: BlazePose model not installed. Run `make models` (it unpacks the model "
                f"from the mediapipe wheel on PyPI and the @mediapipe/pose npm package).")
        with _quiet_native_stderr():
            BaseOptions, vision = _import_mediapipe_tasks()
        self._vision, self._base_options, self._path = vision, BaseOptions, path
        self.num_poses = max(1, int(num_poses))
        self.min_confidence = min_confidence
        self.retry_missed = retry_missed
        self.model_variant = model_variant
        self.segmentation = bool(segmentation)
        self.keypoint_threshold = keypoint_threshold
        self.recheck_interval_ms = float(recheck_interval_ms)
        self.max_input_height = max_input_height
        self._landmarker = self._make_landmarker(video=True)
        self._image_landmarker = None
        self._quiet_next = {"video": True, "image": True}   # first inferences print native warnings
        self._last_ts = -1       # last timestamp handed out (caller's + offset)
        self._video_ts = -1      # last timestamp given to the VIDEO landmarker
        self._offset = 0
        self.counts = {"single": 0, "multi": 0, "reseed": 0}
        self.trace: list | None = None   # set to a list to record (timestamp, what ran and why, kept pose)
        self._reset_track()

    def _make_landmarker(self, video: bool):
        vision = self._vision
        # The GPU delegate aborts the process on this class of machine: CPU only.
        options = vision.PoseLandmarkerOptions(
            base_options=self._base_options(model_asset_path=str(self._path),
                                            delegate=self._base_options.Delegate.CPU),
            running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
            num_poses=1 if video else self.num_poses,
            min_pose_detection_confidence=self.min_confidence,
            # 0.5 (the default) drops frames on occluded side views; 0.3 keeps them.
            min_pose_presence_confidence=self.min_confidence, min_tracking_confidence=self.min_confidence,
            output_segmentation_masks=self.segmentation,
        )
        with _quiet_native_stderr():
            return vision.PoseLandmarker.create_from_options(options)

    def _reset_track(self) -> None:
        self._tracker: LifterTracker | None = None   # built on the first frame (needs its size)
        self._track: Person | None = None             # last person the single-pose track returned
        self._track_kept = False                      # ... and it was kept as the lifter
        self._next_check_ts = -1
        self._seed: tuple | None = ("region", None)   # re-seed the track before its next frame

    def start_video(self) -> None:
        # VIDEO mode needs timestamps that keep increasing across videos. A timestamp gap does
        # not drop the previous video's tracked region: the first single-pose frame is re-seeded.
        self._offset = self._last_ts + 10_000 if self._last_ts >= 0 else 0
        self._reset_track()

    def input_factor(self, height: int) -> int:
        """The whole factor the frame is reduced by for the single-pose landmarker."""
        if not self.max_input_height or height <= self.max_input_height:
            return 1
        return int(np.ceil(height / self.max_input_height))

    def detect(self, frame_bgr: np.ndarray, timestamp_ms: int) -> list[Person]:
        import cv2

        ts = max(int(timestamp_ms) + self._offset, self._last_ts + 1)
        self._last_ts = ts
        h, w = frame_bgr.shape[:2]
        f = self.input_factor(h)
        small = frame_bgr if f == 1 else cv2.resize(frame_bgr, (int(round(w / f)), int(round(h / f))),
                                                    interpolation=cv2.INTER_AREA)
        if self._tracker is None or (self._tracker.w, self._tracker.h) != (w, h):
            self._reset_track()
            self._tracker = LifterTracker(w, h)
        t = self._tracker
        if t.last_centre is None or t.missed >= t.reacquire_after or ts >= self._next_check_ts:
            return self._multi_pass(frame_bgr, small, ts, None, "check")
        single, fresh = self._single_pass(small, ts, w, h)
        if single is None:
            if self.retry_missed:
                return self._multi_pass(frame_bgr, small, ts, None, "lost")
            t.choose([])
            return self._out(ts, "single lost", None)
        if t.distance(single) > 0.8 * t.max_jump or not 0.5 <= t.size_ratio(single) <= 2.0:
            # Jumped or changed size at once: maybe someone else took over the track; look at everybody.
            self._track = None
            return self._multi_pass(frame_bgr, small, ts, None, "jump")
        if not fresh and lift_joint_score(single)[0] < 4:
            return self._multi_pass(frame_bgr, small, ts, single, "partial")
        return self._keep(ts, "single" + (" fresh" if fresh else ""), single)

    def _keep(self, ts: int, what: str, person: Person) -> list[Person]:
        self._tracker.update(person)
        person.tracked = True
        self._track_kept = person is self._track
        return self._out(ts, what, person)

    def _out(self, ts: int, what: str, person: Person | None) -> list[Person]:
        if self.trace is not None:
            self.trace.append((ts, what, None if person is None else person.keypoints.copy()))
        return [] if person is None else [person]

    def _single_pass(self, small: np.ndarray, ts: int, w: int, h: int) -> tuple[Person | None, bool]:
        """One-pose VIDEO landmarker on the reduced frame; (person or None, whether the pose
        comes from a fresh detection rather than from the tracked region)."""
        import cv2
        import mediapipe as mp

        self.counts["single"] += 1
        rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        fresh = self._seed is not None
        if fresh:
            _, box = self._seed
            self._seed = None
            self.counts["reseed"] += 1
            # A blank frame: the track is lost, so the next frame runs the person detector.
            blank = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.full((64, 64, 3), 127, np.uint8))
            self._video_call(blank, max(self._video_ts + 1, ts - 1))
            if box is not None:       # others around: show the detector only the lifter's surroundings
                s = small.shape[0] / h
                x0, y0, x1, y1 = (int(round(v * s)) for v in box)
                seed = np.full_like(rgb, 127)
                seed[y0:y1, x0:x1] = rgb[y0:y1, x0:x1]
                rgb = seed
        result = self._video_call(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)),
                                  max(self._video_ts + 1, ts))
        people = self._people(result, w, h, small)
        self._track = people[0] if people else None
        self._track_kept = False
        if self._track is not None and self.segmentation:
            self._attach_mask(self._track, result, 0, small.shape[0] / h)
        return self._track, fresh

    def _video_call(self, image, ts: int):
        self._video_ts = ts
        if self._quiet_next["video"]:
            self._quiet_next["video"] = False
            with _quiet_native_stderr():
                return self._landmarker.detect_for_video(image, ts)
        return self._landmarker.detect_for_video(image, ts)

    def _multi_pass(self, frame_bgr: np.ndarray, small: np.ndarray, ts: int,
                    partial: Person | None, why: str) -> list[Person]:
        """Everybody in the full frame (IMAGE mode); the tracker picks the lifter. `partial`: the
        track's pose of the lifter lacking a lift joint; the fuller of the two poses is kept."""
        import cv2
        import mediapipe as mp

        self.counts["multi"] += 1
        if self._image_landmarker is None:
            self._image_landmarker = self._make_landmarker(video=False)
        h, w = frame_bgr.shape[:2]
        image = mp.Image(image_format=mp.ImageFormat.SRGB,
                         data=np.ascontiguousarray(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)))
        if self._quiet_next["image"]:
            self._quiet_next["image"] = False
            with _quiet_native_stderr():
                result = self._image_landmarker.detect(image)
        else:
            result = self._image_landmarker.detect(image)
        people = self._people(result, w, h, small)
        self._next_check_ts = ts + self.recheck_interval_ms
        t = self._tracker
        on_track = self._track is not None and self._track_kept   # the track followed the lifter
        last = t.last_centre, t.last_size
        lifter = t.choose(people)
        what = f"multi[{len(people)}] {why}"
        if partial is not None and (lifter is None or not same_person(lifter, partial)
                                    or lift_joint_score(partial) >= lift_joint_score(lifter)):
            return self._keep(ts, what + ", kept single", partial)   # its mask, if any, came with it
        if lifter is None:
            return self._out(ts, what, None)
        if self.segmentation:
            self._attach_mask(lifter, result, next(i for i, p in enumerate(people) if p is lifter), 1.0)
        if on_track and partial is None and last[0] is not None:
            # the track's last pose was the lifter; it still is unless the lifter found now is far from it
            on_track = np.linalg.norm(lifter.centre() - self._track.centre()) <= t.max_jump * last[1]
        if partial is None and not on_track:
            # The single-pose track is not on the lifter: re-seed it before its next frame.
            what += ", re-seed"
            box = None
            if len(people) > 1:
                x0, y0, x1, y1 = lifter.bbox()
                m = 0.5 * t._size(lifter)
                box = (max(0.0, x0 - m), max(0.0, y0 - m), min(float(w), x1 + m), min(float(h), y1 + m))
            self._seed = ("region", box)
        lifter.tracked = True
        return self._out(ts, what, lifter)

    def _people(self, result, w: int, h: int, small: np.ndarray) -> list[Person]:
        """Result landmarks (normalised, so any input size) -> Person in full-frame pixels."""
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
            people.append(Person(kp, world))
        return people

    @staticmethod
    def _attach_mask(person: Person, result, i: int, scale: float) -> None:
        masks = getattr(result, "segmentation_masks", None)
        if masks and i < len(masks):
            m = masks[i].numpy_view()
            # A copy: the view points into MediaPipe's buffer, which the next detect() reuses
            # while extraction's measuring thread may still read this frame's mask.
            person.mask = np.array(m, dtype=np.float32, copy=True).reshape(m.shape[0], m.shape[1])
            person.mask_scale = scale

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


def lift_joint_score(p: Person) -> tuple[int, int]:
    """(lift joints found on either side: shoulder, hip, knee, ankle - 0..4, keypoints found)."""
    pres = ~np.isnan(p.keypoints[:, 0])
    groups = sum(bool(pres[KP["r_" + j]] or pres[KP["l_" + j]]) for j in ("shoulder", "hip", "knee", "ankle"))
    return groups, int(pres.sum())


def same_person(a: Person, b: Person) -> bool:
    """Same body in two poses of one frame: centres within a quarter of the body size (two
    passes find slightly different joints, so their boxes differ at the edges)."""
    if a.bbox() is None or b.bbox() is None:
        return False
    x0, y0, x1, y1 = a.bbox()
    return bool(np.linalg.norm(a.centre() - b.centre()) <= 0.25 * max(x1 - x0, y1 - y0, 1.0))


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
    person nearest the previous lifter position (relative to the lifter's size). A candidate
    further than `max_jump` body heights from the last position is someone else (the frame
    counts as lifter-not-found), unless its box covers most of the lifter's last box: a
    single-pose track can drift onto part of the body (yfgd bad_002: its box shrank to half
    the lifter's), and the full body found afresh is then off-centre from it. After
    `reacquire_after` frames without the lifter, the tracker picks afresh.
    A list of people all marked `tracked` (chosen by the estimator's own tracker) is passed through.
    Known limit: someone who covers the lifter and walks on in steps shorter than `max_jump` is
    followed (position cannot tell them apart; size cannot either: the lifter's box changes 2.5x
    within a side-view lift; torso colour was tried and rejected real lifters in shade, see
    docs/speed_results.md).
    """

    def __init__(self, frame_width: int, frame_height: int, max_jump: float = 0.5, reacquire_after: int = 15):
        self.w, self.h = frame_width, frame_height
        self.max_jump = max_jump
        self.reacquire_after = reacquire_after
        self.last_centre: np.ndarray | None = None
        self.last_size: float | None = None
        self.last_box: tuple | None = None
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

    def distance(self, p: Person) -> float:
        """How far p is from the lifter's last position, in the lifter's body sizes (0 if no lifter yet)."""
        if self.last_centre is None or p.bbox() is None:
            return 0.0
        return float(np.linalg.norm(p.centre() - self.last_centre) / self.last_size)

    def size_ratio(self, p: Person) -> float:
        """p's body size / the lifter's last (1 if no lifter yet)."""
        return 1.0 if self.last_size is None or p.bbox() is None else self._size(p) / self.last_size

    def near(self, p: Person) -> bool:
        """Within max_jump of the lifter's last position, or covering most of its last box (a
        drifting track can leave the last position off-centre on a partly found body)."""
        if self.distance(p) <= self.max_jump:
            return True
        if self.last_box is None or p.bbox() is None:
            return False
        a, b = self.last_box, p.bbox()
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        area = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
        return area > 0 and iw * ih >= 0.5 * area

    def update(self, p: Person) -> None:
        """p is the lifter in this frame."""
        self.last_centre, self.last_size, self.last_box, self.missed = p.centre(), self._size(p), p.bbox(), 0

    def choose(self, people: list[Person]) -> Person | None:
        people = [p for p in people if p.bbox() is not None]
        if not people:
            self.missed += 1
            return None
        if all(p.tracked for p in people):
            best = people[0]
        elif self.last_centre is None or self.missed >= self.reacquire_after:
            best = max(people, key=self._initial_score)
        else:
            ok = [p for p in people if self.near(p)]
            if not ok:
                self.missed += 1
                return None
            best = min(ok, key=self.distance)
        self.update(best)
        return best
