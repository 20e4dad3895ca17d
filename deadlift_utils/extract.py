"""Stage 2: poses from videos -> `<stem>.json`, `<stem>_skeleton.mp4`, `<stem>_overlay.mp4`.

Entry points: `extract_video` (one video) and `extract_folder` (every video under a folder,
mirroring its sub-folders, skipping finished work, carrying on past bad files).
"""
from __future__ import annotations

import json
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .drawing import draw_skeleton, put_label
from .estimators import ESTIMATOR_OPTIONS, LazyEstimator, LifterTracker, PoseEstimator, make_estimator
from .keypoints import N_KEYPOINTS, smooth_keypoints
from .pose import SCHEMA, PoseSequence, load_pose_json, save_pose_json
from .threads import Worker, prefetch
from .video import FrameFile, VideoWriter, iter_frames, list_videos, probe_video, scale_frame


@dataclass
class ExtractResult:
    video_path: Path
    pose_path: Path
    skeleton_path: Path | None
    overlay_path: Path | None
    sequence: PoseSequence
    seconds: float = 0.0
    skipped: bool = False  # True when an earlier valid result was reused


@dataclass
class FolderResult:
    done: list[ExtractResult] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def skipped(self) -> list[ExtractResult]:
        return [r for r in self.done if r.skipped]


class FrameAnalyzer:
    """A measurement taken on each sampled frame during extraction (the frame is decoded
    anyway, so it costs no second pass over the video).

    name: the per-frame JSON field it writes (documented in pose.FRAME_FIELDS).
    wants_mask: ask the estimator for the lifter's segmentation mask (`Person.mask`).
    start(video_path, info): called once per video (info: video.VideoInfo).
    analyze(frame_index, frame_bgr, person) -> JSON-able value or None (person: the tracked
        lifter's estimators.Person with raw, unsmoothed keypoints, or None).
    finish(values, keypoints_xy) -> the final list (same length; e.g. smoothing over time,
        with the smoothed (T, 18, 2) keypoints at hand).
    """

    name = "base"
    wants_mask = False

    def start(self, video_path, info) -> None:
        pass

    def analyze(self, frame_index: int, frame_bgr: np.ndarray, person):
        raise NotImplementedError

    def finish(self, values: list, keypoints_xy: np.ndarray) -> list:
        return values


def analysis_frame_analyzers(spine: bool = True, bar: bool = True) -> list[FrameAnalyzer]:
    """The analyzers `analyze` runs during extraction: shot cuts (trust.py), with BlazePose the
    back's outline from the segmentation mask (spine.py), and the barbell plate (bar.py)."""
    from .bar import BarTracker
    from .spine import SpineAnalyzer
    from .trust import ShotCutAnalyzer

    return [ShotCutAnalyzer()] + ([SpineAnalyzer()] if spine else []) + ([BarTracker()] if bar else [])


def output_paths(video_path: Path, out_dir: Path, video_format: str = "mp4") -> tuple[Path, Path, Path]:
    stem = Path(video_path).stem
    return (out_dir / f"{stem}.json", out_dir / f"{stem}_skeleton.{video_format}",
            out_dir / f"{stem}_overlay.{video_format}")


def _finished(video_path: Path, pose_path: Path, params: dict, need_videos: list[Path]) -> bool:
    """An earlier result counts only if it loads, was made with the same parameters, and
    is newer than the video."""
    if not pose_path.is_file() or pose_path.stat().st_mtime < Path(video_path).stat().st_mtime:
        return False
    if any(not p.is_file() or p.stat().st_size == 0 for p in need_videos):
        return False
    try:
        data = json.loads(pose_path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return data.get("schema") == SCHEMA and all(data.get(k) == v for k, v in params.items())


def extract_video(
    video_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    frame_stride: int = 5,
    smoothing_window: int = 5,
    backend: str = "blazepose",
    model_variant: str = "full",
    write_videos: bool = True,
    video_format: str = "mp4",
    max_video_height: int = 720,
    estimator: PoseEstimator | None = None,
    redo: bool = False,
    progress: bool = False,
    frame_analyzers=(),
    frames_path: str | os.PathLike | None = None,
    **backend_options,
) -> ExtractResult:
    """Extract the lifter's COCO-18 pose from every `frame_stride`-th frame of a video.

    Writes `<stem>.json` (deadlift-pose/1; smoothed over `smoothing_window` samples, centred,
    missing points ignored) and, with `write_videos`, a skeleton-on-black and an overlay
    video of the sampled frames, playing at real-time speed (fps / frame_stride), scaled down
    to at most `max_video_height` pixels high (keypoints in the JSON stay in full-size pixels).
    `estimator` lets a caller reuse a loaded model across videos (it is not closed here).
    Raises FileNotFoundError / ValueError naming the video for unusable input; a video with
    no person gives a sequence whose keypoints are all missing.

    frame_analyzers: per-frame measurements taken while the frame is decoded anyway (see
    `FrameAnalyzer`); each one's values land in `seq.frame_extras[name]` and in the JSON as
    an optional per-frame field of that name. An analyzer with `wants_mask` makes BlazePose
    return the lifter's segmentation mask (`Person.mask`).

    frames_path: also keep the sampled frames, scaled like the videos but with nothing drawn,
    in this file (video.FrameFile; frame k = sample k), so a later pass (analyze's annotated video) need not
    decode the full-size video again. Not written when an earlier result is reused.

    Decoding, the pose model (BlazePose: in two threads, `estimator.detect_stream`) and
    everything after it (analyzers, smoothing, drawing) run in threads with bounded queues
    (threads.py), so both cores work and memory stays flat.
    """
    t0 = time.perf_counter()
    video_path, out_dir = Path(video_path), Path(out_dir)
    if int(frame_stride) != frame_stride or frame_stride < 1:
        raise ValueError(f"frame_stride must be a whole number >= 1, got {frame_stride!r}")
    if int(smoothing_window) != smoothing_window or smoothing_window < 1:
        raise ValueError(f"smoothing_window must be a whole number >= 1, got {smoothing_window!r}")
    if video_format not in ("mp4", "webm"):
        raise ValueError(f"video_format must be 'mp4' or 'webm', got {video_format!r}")
    info = probe_video(video_path)
    pose_path, skel_path, over_path = output_paths(video_path, out_dir, video_format)
    backend_name = backend if backend != "blazepose" else f"blazepose-{model_variant}"
    params = {"frame_stride": int(frame_stride), "smoothing_window": int(smoothing_window), "backend": backend_name}
    frame_analyzers = list(frame_analyzers or ())
    if frame_analyzers:
        params["frame_fields"] = sorted(a.name for a in frame_analyzers)
    wants_mask = any(getattr(a, "wants_mask", False) for a in frame_analyzers)
    if wants_mask and backend == "blazepose":
        backend_options.setdefault("segmentation", True)
    if not redo and _finished(video_path, pose_path, params, [skel_path, over_path] if write_videos else []):
        return ExtractResult(video_path, pose_path, skel_path if write_videos else None,
                             over_path if write_videos else None, load_pose_json(pose_path),
                             time.perf_counter() - t0, skipped=True)

    own_estimator = estimator is None
    if own_estimator:
        estimator = make_estimator(backend, model_variant, **backend_options)
    for a in frame_analyzers:
        a.start(video_path, info)
    extras: dict[str, list] = {a.name: [] for a in frame_analyzers}
    tracker = LifterTracker(info.width, info.height)
    out_fps = info.fps / frame_stride
    writers = []
    scale = min(1.0, max_video_height / info.height) if max_video_height else 1.0
    out_w, out_h = int(round(info.width * scale)), int(round(info.height * scale))
    if write_videos:
        writers = [VideoWriter(skel_path, out_fps, out_w, out_h),
                   VideoWriter(over_path, out_fps, out_w, out_h)]

    half = int(smoothing_window) // 2
    raw: list[np.ndarray] = []       # per sample: (18, 6) x, y, conf, wx, wy, wz (NaN = missing)
    smoothed: list[np.ndarray] = []
    indices: list[int] = []
    pending: deque = deque()         # frames waiting for their smoothing window to complete
    frames_writer = None
    if frames_path is not None:  # plain scaled-down frames, for a later pass (analyze's annotated video)
        frames_writer = FrameFile(frames_path)
    need_small = (bool(writers) or frames_writer is not None) and scale < 1.0

    def emit(k: int) -> None:
        """Smooth sample k (its window is complete) and draw it."""
        lo = max(0, k - half)
        window = np.array(raw[lo:k + half + 1])
        smoothed.append(smooth_keypoints(window, smoothing_window)[k - lo])
        frame = pending.popleft()
        if writers:
            kp = smoothed[-1][:, :2] * scale
            label = f"{video_path.name}  frame {indices[k]}"
            writers[0].write(put_label(draw_skeleton(np.zeros_like(frame), kp), label))
            writers[1].write(put_label(draw_skeleton(frame, kp), label))

    def measure(item) -> None:
        """Everything after the pose model, run in a second thread while the model works on
        the next frame: the per-frame analyzers, the down-scaled copy for the videos, the
        smoothing window and drawing."""
        index, frame, person = item
        row = np.full((N_KEYPOINTS, 6), np.nan)
        if person is not None:
            row[:, :3] = person.keypoints
            if person.world is not None:
                row[:, 3:] = person.world
        raw.append(row)
        indices.append(index)
        for a in frame_analyzers:
            extras[a.name].append(a.analyze(index, frame, person))
        if need_small:
            frame = scale_frame(frame, (out_w, out_h))
        if frames_writer is not None:
            frames_writer.write(frame)
        pending.append(frame if writers else None)
        if len(raw) - 1 - half >= 0:
            emit(len(raw) - 1 - half)

    ok = False
    sink = Worker(measure, size=4, name="measure")
    try:
        decoded = prefetch(iter_frames(video_path, frame_stride), size=4)
        frames = decoded
        if progress:
            from tqdm.auto import tqdm

            frames = tqdm(frames, total=(info.frame_count + frame_stride - 1) // frame_stride,
                          desc=video_path.name, unit="frame", leave=False)
        try:
            stamped = ((index, frame, int(round(index * 1000 / info.fps))) for index, frame in frames)
            for index, frame, people in estimator.detect_stream(stamped):
                sink.put((index, frame, tracker.choose(people)))
        finally:
            decoded.close()  # stops the decoding thread and releases the capture
        sink.close()
        for k in range(len(smoothed), len(raw)):
            emit(k)
        ok = True
    finally:
        if not ok:
            sink.close(wait=False)
        for w in writers + ([frames_writer] if frames_writer is not None else []):
            w.close(keep=ok)
        if own_estimator:
            estimator.close()
    if not raw:
        raise ValueError(f"{video_path}: no frames could be decoded. Check that the video plays; re-export it if not.")

    arr = np.array(smoothed)
    has_world = not np.all(np.isnan(arr[..., 3:]))
    seq = PoseSequence(
        keypoints_xy=arr[..., :2], confidence=arr[..., 2],
        frame_index=np.array(indices), time_s=np.array(indices) / info.fps,
        world_xyz=arr[..., 3:] if has_world else None, video=str(video_path), fps=info.fps,
        width=info.width, height=info.height, frame_stride=int(frame_stride),
        smoothing_window=int(smoothing_window), backend=backend_name,
        frame_extras={a.name: a.finish(extras[a.name], arr[..., :2]) for a in frame_analyzers},
    )
    if frame_analyzers:  # recorded so that a later run with the same analyzers reuses the file
        seq.extra["frame_fields"] = params["frame_fields"]
    save_pose_json(seq, pose_path)
    # What is analysed is what was saved (keypoints rounded to 0.01 px): a later run on the
    # pose JSON, or a finished result reused, gives the same report, not one that differs in
    # the third decimal of the form score.
    seq = load_pose_json(pose_path)
    return ExtractResult(video_path, pose_path, skel_path if writers else None,
                         over_path if writers else None, seq, time.perf_counter() - t0)


def extract_folder(
    folder: str | os.PathLike,
    out_dir: str | os.PathLike,
    progress: bool = True,
    max_videos: int | None = None,
    **kwargs,
) -> FolderResult:
    """Run `extract_video` on every video under `folder`; outputs mirror its sub-folders.

    One model serves all videos. `max_videos` keeps only the first N (sorted) videos, for
    quick trial runs. A video that fails is recorded in `.failed` with its
    message and the others still run.
    """
    folder, out_dir = Path(folder), Path(out_dir)
    videos = list_videos(folder) if folder.is_dir() else [folder]
    if max_videos:
        videos = videos[:int(max_videos)]
    result = FolderResult()
    backend = kwargs.pop("backend", "blazepose")
    variant = kwargs.pop("model_variant", "full")
    est_opts = {k: kwargs.pop(k) for k in list(kwargs) if k in
                ESTIMATOR_OPTIONS}
    if any(getattr(a, "wants_mask", False) for a in kwargs.get("frame_analyzers") or ()) and backend == "blazepose":
        est_opts["segmentation"] = True
    estimator = LazyEstimator(backend, variant, est_opts)
    iterator = videos
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(videos, desc="videos", unit="video")
    try:
        for video in iterator:
            sub = video.parent.relative_to(folder) if folder.is_dir() else Path()
            try:
                result.done.append(extract_video(video, out_dir / sub, backend=backend, model_variant=variant,
                                                 estimator=estimator, **kwargs))
            except (ValueError, FileNotFoundError, RuntimeError) as e:
                result.failed.append((video, str(e)))
    finally:
        estimator.close()
    return result
