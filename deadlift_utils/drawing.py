"""Drawing skeletons on frames (shared by extraction and the annotated analysis video)."""
from __future__ import annotations

import cv2
import numpy as np

from .keypoints import SKELETON_EDGES

# BGR colours: the lifter's right side orange, left side blue, centre line green.
_RIGHT, _LEFT, _MID = (0, 140, 255), (255, 140, 0), (80, 220, 80)
_RIGHT_JOINTS = {2, 3, 4, 8, 9, 10, 14, 16}
_LEFT_JOINTS = {5, 6, 7, 11, 12, 13, 15, 17}


def _colour(a: int, b: int):
    if a in _RIGHT_JOINTS or b in _RIGHT_JOINTS:
        return _RIGHT
    if a in _LEFT_JOINTS or b in _LEFT_JOINTS:
        return _LEFT
    return _MID


def draw_skeleton(frame: np.ndarray, keypoints_xy: np.ndarray, thickness: int | None = None) -> np.ndarray:
    """Draw the COCO-18 skeleton (18, 2+) onto `frame` in place; missing points are skipped."""
    h, w = frame.shape[:2]
    t = thickness or max(2, round(min(h, w) / 180))
    pts = np.asarray(keypoints_xy, dtype=float)[:, :2]
    ok = ~np.isnan(pts[:, 0])
    for a, b in SKELETON_EDGES:
        if ok[a] and ok[b]:
            cv2.line(frame, tuple(int(v) for v in pts[a]), tuple(int(v) for v in pts[b]),
                     _colour(a, b), t, cv2.LINE_AA)
    for j in np.flatnonzero(ok):
        cv2.circle(frame, tuple(int(v) for v in pts[j]), t + 1, (255, 255, 255), -1, cv2.LINE_AA)
    return frame


def put_label(frame: np.ndarray, text: str, row: int = 0, colour=(255, 255, 255)) -> np.ndarray:
    """Write `text` in the top-left corner on a dark band (row 0, 1, ... for more lines)."""
    h, w = frame.shape[:2]
    scale = max(0.5, min(h, w) / 700)
    th = int(30 * scale)
    y0 = row * (th + 4)
    (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(frame, (0, y0), (tw + 12, y0 + th + 4), (0, 0, 0), -1)
    cv2.putText(frame, text, (6, y0 + th - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, colour,
                max(1, int(scale * 2)), cv2.LINE_AA)
    return frame
