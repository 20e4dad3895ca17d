"""The pose JSON contract (`deadlift-pose/1`) and a loader that also reads the study's format.

`deadlift-pose/1` (what extraction writes and every later stage reads):
    {"schema": "deadlift-pose/1", "video", "fps", "width", "height", "frame_stride",
     "smoothing_window", "backend", "keypoint_names": [18 names],
     "frames": [{"frame_index", "time_s",
                 "keypoints": [18 x ([x_px, y_px, confidence] or null)],
                 "world_keypoints": [18 x ([x_m, y_m, z_m] or null)],  # optional
                 <field>: ...   # optional per-frame measurements, see FRAME_FIELDS
                }]}
The study's format (../shared/data/esap_pose): a JSON list of frames, each a list of 18
`[x, y]` or null (or [-1, -1]), sampled every 5th frame with 5-frame smoothing.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .io_utils import atomic_write_text
from .keypoints import KEYPOINT_NAMES, LIFT_JOINTS, KP, N_KEYPOINTS

SCHEMA = "deadlift-pose/1"

# Optional per-frame fields beside the keypoints (written by extraction's frame analyzers,
# absent in older files, which load unchanged). Each value is an object or null.
FRAME_FIELDS = {
    "shot": "shot-cut detection: {'diff': content change from the previous sampled frame, "
            "'cut': true when a new shot starts here}",
    "spine": "dorsal contour from the segmentation mask (spine.SpineAnalyzer), null where it "
             "cannot be traced: {'sagitta': largest signed distance of the back's edge from the "
             "chord through its ends (15%-80% of the hip->shoulder axis), in torso lengths, "
             "+ rounded (flexion) / - arched (extension); 'curvature': parabola-fit curvature x "
             "torso length, same sign; 'contour': [[x_px, y_px], ...] 13 points along the back, "
             "hip end first; 'chord': [[x_px, y_px], [x_px, y_px]]; 'torso_px': shoulder-hip "
             "distance in px}",
    "bar": "barbell plate tracking (bar.BarTracker): {'x', 'y' (px, the bar: the centre of the plate's face, "
           "Kalman-smoothed), 'r' (px plate radius), 'source': 'detected' (plate circle found) | "
           "'tracked' (template match) | 'smoothed' (short gap bridged, no measurement), 'edge': "
           "true when the plate reaches the frame border, 'rivals': other plate-sized circles near "
           "the hands}, {'dropped': reason} (a circle track that is not the barbell's plate: it did not "
           "move with the hands, had no plate rim and hub, or was the other piece of a track that "
           "jumped between plates; no position) or null (no plate: kettlebell, front view, out of frame)",
}


@dataclass
class PoseSequence:
    """A video's poses as arrays (T sampled frames).

    keypoints_xy (T, 18, 2) pixels, NaN = missing; confidence (T, 18), NaN = missing;
    world_xyz (T, 18, 3) metres or None; frame_index (T,) int; time_s (T,) float.
    """

    keypoints_xy: np.ndarray
    confidence: np.ndarray
    frame_index: np.ndarray
    time_s: np.ndarray
    world_xyz: np.ndarray | None = None
    video: str | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    frame_stride: int = 1
    smoothing_window: int = 1
    backend: str = "unknown"
    source_path: str | None = None
    extra: dict = field(default_factory=dict)
    frame_extras: dict = field(default_factory=dict)   # {field: [T values or None]}, FRAME_FIELDS

    def __len__(self) -> int:
        return len(self.keypoints_xy)

    @property
    def present(self) -> np.ndarray:
        """(T, 18) bool: the point was found."""
        return ~np.isnan(self.keypoints_xy[..., 0])

    def lifter_found_rate(self) -> float:
        """Share of frames in which the lifter was found at all (any keypoint)."""
        return float(self.present.any(axis=1).mean()) if len(self) else 0.0

    def detection_rate(self, joints=LIFT_JOINTS) -> float:
        """Share of frames in which every lift joint was found on at least one side.

        A side view hides the far limb, so a joint pair (r/l) counts as found if either
        side is present.
        """
        if len(self) == 0:
            return 0.0
        pres = self.present
        pairs = sorted({j[2:] for j in joints})
        ok = np.ones(len(self), dtype=bool)
        for part in pairs:
            ok &= pres[:, KP["r_" + part]] | pres[:, KP["l_" + part]]
        return float(ok.mean())

    def mean_confidence(self) -> float:
        """Mean confidence of the present points (NaN when nothing was found)."""
        c = self.confidence[self.present]
        return float(np.nanmean(c)) if c.size and not np.all(np.isnan(c)) else float("nan")

    def to_dict(self) -> dict:
        """The `deadlift-pose/1` JSON object."""
        frames = []
        for t in range(len(self)):
            kps = []
            for j in range(N_KEYPOINTS):
                x, y = self.keypoints_xy[t, j]
                if np.isnan(x) or np.isnan(y):
                    kps.append(None)
                else:
                    c = self.confidence[t, j]
                    kps.append([round(float(x), 2), round(float(y), 2),
                                round(float(c), 4) if not np.isnan(c) else 1.0])
            frame = {"frame_index": int(self.frame_index[t]), "time_s": round(float(self.time_s[t]), 4),
                     "keypoints": kps}
            if self.world_xyz is not None:
                frame["world_keypoints"] = [
                    None if np.any(np.isnan(p)) else [round(float(v), 4) for v in p]
                    for p in self.world_xyz[t]
                ]
            for name, values in self.frame_extras.items():
                if t < len(values) and values[t] is not None:
                    frame[name] = values[t]
            frames.append(frame)
        return {
            "schema": SCHEMA, "video": self.video, "fps": self.fps, "width": self.width,
            "height": self.height, "frame_stride": int(self.frame_stride),
            "smoothing_window": int(self.smoothing_window), "backend": self.backend,
            "keypoint_names": list(KEYPOINT_NAMES), "frames": frames, **self.extra,
        }


def save_pose_json(seq: PoseSequence, path: str | os.PathLike) -> Path:
    """Write `seq` as `deadlift-pose/1` JSON atomically; returns the path."""
    path = Path(path)
    atomic_write_text(path, json.dumps(seq.to_dict(), separators=(",", ":")))
    return path


def _bad(path, msg: str) -> ValueError:
    return ValueError(f"{path}: {msg}. Re-extract the poses (python -m deadlift_utils extract VIDEO) "
                      f"or fix the file; see the pose JSON format in deadlift_utils/pose.py.")


def _short(v, n: int = 60) -> str:
    r = repr(v)
    return r if len(r) <= n else r[:n] + "..."


def _parse_point(path, t, j, p, dims, allow_conf):
    """One keypoint -> list of floats, or None when missing."""
    if p is None:
        return None
    if not isinstance(p, (list, tuple)) or len(p) < dims or len(p) > dims + (1 if allow_conf else 0):
        raise _bad(path, f"frame {t} keypoint {j} should be {'[x, y, confidence]' if allow_conf else f'{dims} numbers'} or null, got {_short(p)}")
    vals = []
    for v in p:
        # JSON numbers only: true/false and "12" are not coordinates.
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _bad(path, f"frame {t} keypoint {j} has a non-number: {_short(p)}")
        try:
            vals.append(float(v))
        except OverflowError:  # an integer too large for a float
            raise _bad(path, f"frame {t} keypoint {j} is out of range: {_short(p)}") from None
    if not all(math.isfinite(v) for v in vals):
        raise _bad(path, f"frame {t} keypoint {j} is NaN or infinite: {_short(p)}")
    return vals


def _header_number(path, what: str, v, *, integer: bool = False, positive: bool = True):
    """A numeric header/frame field -> float (or int); ValueError naming the field otherwise."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _bad(path, f"{what} should be a number, got {_short(v)}")
    try:
        f = float(v)
    except OverflowError:
        raise _bad(path, f"{what} is out of range: {_short(v)}") from None
    if not math.isfinite(f):
        raise _bad(path, f"{what} is NaN or infinite")
    if integer and abs(f) > 2 ** 53:
        raise _bad(path, f"{what} is out of range: {_short(v)}")
    if integer and f != int(f):
        raise _bad(path, f"{what} should be a whole number, got {_short(v)}")
    if positive and f <= 0:
        raise _bad(path, f"{what} should be above 0, got {_short(v)}")
    return int(f) if integer else f


def _frames_to_arrays(path, frames_kps, world=None, allow_conf=True, image_coords=True):
    T = len(frames_kps)
    xy = np.full((T, N_KEYPOINTS, 2), np.nan)
    conf = np.full((T, N_KEYPOINTS), np.nan)
    for t, kps in enumerate(frames_kps):
        if not isinstance(kps, list) or len(kps) != N_KEYPOINTS:
            n = len(kps) if isinstance(kps, list) else type(kps).__name__
            raise _bad(path, f"frame {t} has {n} keypoints, expected {N_KEYPOINTS} (OpenPose COCO-18 order)")
        for j, p in enumerate(kps):
            v = _parse_point(path, t, j, p, 2, allow_conf)
            if v is None:
                continue
            # Negative pixel coordinates mean "not found" in OpenPose tooling ([-1, -1]) or a
            # point off the image; either way it was not seen.
            if image_coords and (v[0] < 0 or v[1] < 0):
                continue
            xy[t, j] = v[:2]
            conf[t, j] = v[2] if len(v) > 2 else 1.0
    world_xyz = None
    if world is not None:
        world_xyz = np.full((T, N_KEYPOINTS, 3), np.nan)
        for t, w in enumerate(world):
            if w is None:
                continue
            if not isinstance(w, list) or len(w) != N_KEYPOINTS:
                raise _bad(path, f"frame {t} world_keypoints should hold {N_KEYPOINTS} points")
            for j, p in enumerate(w):
                v = _parse_point(path, t, j, p, 3, False)
                if v is not None:
                    world_xyz[t, j] = v
    return xy, conf, world_xyz


def load_pose_json(path: str | os.PathLike, default_fps: float = 30.0) -> PoseSequence:
    """Load a `deadlift-pose/1` file or the study's list-of-frames file.

    Raises FileNotFoundError for a missing file and ValueError (naming the file, the
    frame and the fix) for malformed content: bad JSON, an empty file, wrong keypoint
    counts, NaN/inf or non-number coordinates, a mix of both formats, header fields of the
    wrong type (fps, frame_stride, smoothing_window, width, height, video, keypoint_names),
    bad frame_index/time_s, or frames out of time order. No other exception type escapes
    for any file content (tests/test_properties.py fuzzes it). Negative pixel coordinates
    mean "not found" (OpenPose's [-1, -1]).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pose file not found. Extract it first: "
                                f"python -m deadlift_utils extract VIDEO --out DIR")
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise _bad(path, "the file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise _bad(path, f"not valid JSON ({e.msg} at line {e.lineno})") from None
    except RecursionError:
        raise _bad(path, "not a pose file (JSON nested too deeply)") from None
    except ValueError as e:  # e.g. an integer with more digits than Python converts
        raise _bad(path, f"not valid JSON ({_short(str(e), 80)})") from None

    if isinstance(data, list):  # the study's format
        if not data:
            raise _bad(path, "holds no frames")
        if isinstance(data[0], dict):
            raise _bad(path, "is a list of frame objects without the deadlift-pose/1 header (mixed formats)")
        xy, conf, _ = _frames_to_arrays(path, data, allow_conf=True)
        stride = 5
        n = len(data)
        return PoseSequence(
            keypoints_xy=xy, confidence=conf, frame_index=np.arange(n) * stride,
            time_s=np.arange(n) * stride / default_fps, fps=default_fps, frame_stride=stride,
            smoothing_window=5, backend="openpose-coco (ESAP study)", source_path=str(path),
        )
    if not isinstance(data, dict):
        raise _bad(path, f"expected a JSON object or list, got {type(data).__name__}")
    if data.get("schema") != SCHEMA:
        raise _bad(path, f"unknown schema {data.get('schema')!r}, expected {SCHEMA!r}")
    names = data.get("keypoint_names")
    if names is not None and names != KEYPOINT_NAMES:
        raise _bad(path, "keypoint_names are not the 18 OpenPose COCO names in order")
    frames = data.get("frames")
    if not isinstance(frames, list):
        raise _bad(path, "has no 'frames' list")
    for t, f in enumerate(frames):
        if not isinstance(f, dict) or "keypoints" not in f:
            raise _bad(path, f"frame {t} is not an object with 'keypoints' (mixed formats?)")
    video = data.get("video")
    if video is not None and not isinstance(video, str):
        raise _bad(path, f"video should be a file name or null, got {_short(video)}")
    # 0 or null mean "not known" for these header fields.
    fps = _header_number(path, "fps", data["fps"]) if data.get("fps") not in (None, 0) else default_fps
    stride = (_header_number(path, "frame_stride", data["frame_stride"], integer=True)
              if data.get("frame_stride") not in (None, 0) else 1)
    smoothing = (_header_number(path, "smoothing_window", data["smoothing_window"], integer=True)
                 if data.get("smoothing_window") not in (None, 0) else 1)
    size = {k: _header_number(path, k, data[k], integer=True) if data.get(k) not in (None, 0) else None
            for k in ("width", "height")}
    has_world = any("world_keypoints" in f for f in frames)
    xy, conf, world = _frames_to_arrays(
        path, [f["keypoints"] for f in frames],
        world=[f.get("world_keypoints") for f in frames] if has_world else None,
    )
    frame_index = np.array([
        t * stride if f.get("frame_index") is None
        else _header_number(path, f"frame {t} frame_index", f["frame_index"], integer=True, positive=False)
        for t, f in enumerate(frames)], dtype=int)
    time_s = np.array([
        frame_index[t] / fps if f.get("time_s") is None
        else _header_number(path, f"frame {t} time_s", f["time_s"], positive=False)
        for t, f in enumerate(frames)], dtype=float)
    if len(time_s) > 1 and np.any(np.diff(time_s) <= 0):
        t = int(np.flatnonzero(np.diff(time_s) <= 0)[0]) + 1
        raise _bad(path, f"frame {t} (time_s {time_s[t]:g}) is not after frame {t - 1} ({time_s[t - 1]:g}): "
                         f"frames must be in time order without repeats")
    frame_extras = {name: [f.get(name) for f in frames] for name in FRAME_FIELDS
                    if any(f.get(name) is not None for f in frames)}
    for name, values in frame_extras.items():
        bad = next((t for t, v in enumerate(values) if v is not None and not isinstance(v, dict)), None)
        if bad is not None:
            raise _bad(path, f"frame {bad} field {name!r} should be an object or null, got {_short(values[bad])}")
    return PoseSequence(
        keypoints_xy=xy, confidence=conf, frame_index=frame_index, time_s=time_s, world_xyz=world,
        video=video, fps=float(fps), width=size["width"], height=size["height"],
        frame_stride=stride, smoothing_window=smoothing,
        backend=str(data.get("backend", "unknown")), source_path=str(path), frame_extras=frame_extras,
    )
