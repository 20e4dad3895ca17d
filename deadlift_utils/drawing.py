"""Drawing skeletons on frames (shared by extraction and the annotated analysis video)."""
from __future__ import annotations

import os
from pathlib import Path

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


def contact_sheet(videos: list[tuple[str, os.PathLike]], out_png: os.PathLike, columns: int = 5,
                  tile_width: int = 360, frames_per_video: int = 1) -> Path:
    """Tile frames of several videos (e.g. overlays) into one PNG a person checks at a glance.

    videos: (caption, path) pairs. Takes `frames_per_video` evenly spaced frames of each
    (1 = the middle frame). Videos that cannot be read get a grey tile with the caption.
    """
    tiles = []
    tile_h = int(tile_width * 3 / 4)
    for caption, path in videos:
        cap = cv2.VideoCapture(str(path))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        picks = [n // 2] if frames_per_video == 1 else np.linspace(0, max(n - 1, 0), frames_per_video).astype(int)
        for k, idx in enumerate(picks):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(idx))
            ok, frame = cap.read()
            if not ok:
                frame = np.full((tile_h, tile_width, 3), 90, np.uint8)
            # Fit into a fixed box (letterboxed) so portrait and landscape clips tile evenly.
            scale = min(tile_width / frame.shape[1], tile_h / frame.shape[0])
            small = cv2.resize(frame, (max(1, int(frame.shape[1] * scale)), max(1, int(frame.shape[0] * scale))),
                               interpolation=cv2.INTER_AREA)
            tile = np.zeros((tile_h, tile_width, 3), np.uint8)
            y0, x0 = (tile_h - small.shape[0]) // 2, (tile_width - small.shape[1]) // 2
            tile[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
            put_label(tile, caption if k == 0 else "")
            tiles.append(tile)
        cap.release()
    if not tiles:
        raise ValueError("contact_sheet: no videos given")
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)]
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", np.vstack(rows))
    from .io_utils import atomic_write_bytes

    atomic_write_bytes(out_png, buf.tobytes())
    return out_png
