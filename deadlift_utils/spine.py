"""The shape of the back, from the lifter's segmentation mask (COCO-18 has no spine points).

Per sampled frame (`SpineAnalyzer`, run during extraction): the dorsal contour of the mask
between shoulder and hip is traced, and its bulge over the chord through its ends is measured.
Per sequence (`sagitta_series`, `back_shape`): the values the rules use.

Units and sign (everywhere in this module):
- sagitta: the signed distance of the (smoothed) dorsal contour from its chord that is largest
  in magnitude, in torso lengths (shoulder-centre to hip-centre distance in the same frame).
  + = the back bulges outward (flexion, a rounded back); - = it is hollow (extension, arched).
- curvature: 2nd-order coefficient of a parabola fitted to the contour in chord coordinates,
  as curvature x torso length (1 / torso lengths); same sign convention. A circular arc with
  sagitta s over a chord of c torso lengths has curvature ~ 8 s / c**2.
"""
from __future__ import annotations

import time

import cv2
import numpy as np

from .extract import FrameAnalyzer
from .keypoints import KP, hip_centre, shoulder_centre

# The stretch of the torso axis (0 = hip centre, 1 = shoulder centre) whose dorsal contour is
# measured. Above ~0.8 the edge climbs over the shoulder blades and traps (a chord end there
# made correct kettlebell lifts read -0.035 and hid the 45-degree rounded back); from 0.2 up it
# loses the lumbar part where the barbell clips round. 0.15-0.80 had the largest worst-case
# rounded-vs-good margin over both labelled sources (docs/spine_results.md, stretch table).
STRETCH = (0.15, 0.80)
MIN_TORSO_PX = 40.0          # shorter torsos are too few pixels to see a bend of 2% in
MAX_SHOULDER_WIDTH = 0.6     # shoulder width / torso length above this: no profile of the back
                             # (45 degrees reads ~0.52 on the kettlebell clips; front-diagonal
                             # orbiting views 0.6-0.9 gave +-0.1 noise)
MIN_SIDE_EVIDENCE = 0.15     # torso lengths: how clearly hands/knees/nose mark the front side
MASK_THRESHOLD = 0.5
N_CONTOUR_POINTS = 13        # points kept in the JSON
EXTEND = 0.06                # torso lengths traced beyond each stretch end before smoothing
SMOOTH = 0.03                # Gaussian sigma of the edge smoothing, torso lengths (fabric folds, mask jaggies)


def _present(p) -> bool:
    return p is not None and not np.any(np.isnan(p))


def torso_frame(keypoints: np.ndarray):
    """Hip centre H, shoulder centre S (px), torso length L (px), unit axis u (hip->shoulder) and
    the unit normal b pointing to the back side (away from hands, knees and nose), from (18, 2+)
    keypoints. Returns None when the torso or the side cannot be told."""
    kp = np.asarray(keypoints, dtype=float)[:, :2]
    S, H = shoulder_centre(kp), hip_centre(kp)
    if not (_present(S) and _present(H)):
        return None
    L = float(np.linalg.norm(S - H))
    if L < 1e-6:
        return None
    u = (S - H) / L
    n = np.array([-u[1], u[0]])
    front = [kp[KP[j]] for j in ("r_wrist", "l_wrist", "r_knee", "l_knee", "nose")]
    offsets = [float(np.dot(p - H, n)) / L for p in front if _present(p)]
    if not offsets:
        return None
    evidence = float(np.sum(np.clip(offsets, -1.0, 1.0)))
    if abs(evidence) < MIN_SIDE_EVIDENCE:
        return None
    b = -np.sign(evidence) * n
    return H, S, L, u, b


def shoulder_width_ratio(keypoints: np.ndarray) -> float:
    """Shoulder-to-shoulder distance / torso length (large in a front view, small in a side view)."""
    kp = np.asarray(keypoints, dtype=float)[:, :2]
    r, l = kp[KP["r_shoulder"]], kp[KP["l_shoulder"]]
    if not (_present(r) and _present(l)):
        return float("nan")
    L = float(np.linalg.norm(shoulder_centre(kp) - hip_centre(kp)))
    return float(np.linalg.norm(r - l)) / L if L > 0 else float("nan")


def torso_crop_box(keypoints: np.ndarray, shape: tuple[int, int], margin: float = 0.7):
    """(x0, y0, x1, y1) pixel box around shoulder and hip centres +- margin torso lengths,
    clipped to an image of `shape` (H, W); None when the torso is missing."""
    kp = np.asarray(keypoints, dtype=float)[:, :2]
    S, H = shoulder_centre(kp), hip_centre(kp)
    if not (_present(S) and _present(H)):
        return None
    L = float(np.linalg.norm(S - H))
    lo = np.minimum(S, H) - margin * L
    hi = np.maximum(S, H) + margin * L
    x0, y0 = max(0, int(np.floor(lo[0]))), max(0, int(np.floor(lo[1])))
    x1, y1 = min(shape[1], int(np.ceil(hi[0])) + 1), min(shape[0], int(np.ceil(hi[1])) + 1)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    return x0, y0, x1, y1


def _crossings(t: np.ndarray, level: float) -> np.ndarray:
    """Indices i where the closed polyline crosses t == level between points i and i+1."""
    s = np.sign(t - level)
    s[s == 0] = 1
    return np.nonzero(s != np.roll(s, -1))[0]


def _smooth_open(points: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of an open polyline (N, 2) along its index, ends reflected."""
    if sigma < 0.5 or len(points) < 5:
        return points
    radius = int(3 * sigma)
    x = np.arange(-radius, radius + 1)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    w /= w.sum()
    padded = np.pad(points, ((radius, radius), (0, 0)), mode="reflect")
    return np.stack([np.convolve(padded[:, k], w, mode="valid") for k in range(2)], axis=1)


def _resample(points: np.ndarray, n: int) -> np.ndarray:
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return np.repeat(points[:1], n, axis=0)
    q = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(q, s, points[:, k]) for k in range(2)], axis=1)


def measure_back(mask: np.ndarray, keypoints: np.ndarray, origin=(0, 0), stretch=STRETCH,
                 threshold: float = MASK_THRESHOLD, detail: bool = False):
    """The dorsal contour's shape in one frame.

    mask: (h, w) person probability 0..1 (float) or 0/255 (uint8) covering the image region
        whose top-left pixel is `origin` (x, y) (the full frame: origin (0, 0)).
    keypoints: (18, 2+) COCO-18 pixel keypoints of the whole image, NaN = missing.
    stretch: (t0, t1) fractions of the torso axis (0 hip, 1 shoulder) where the chord ends.
    Returns a JSON-able dict {'sagitta', 'curvature', 'contour' [[x, y], ...] (image px, hip
    end first), 'chord' [[x, y], [x, y]], 'torso_px'} or None when the dorsal contour between
    the stretch ends cannot be traced as one unbroken edge (torso missing or too short, side
    unclear, midpoint outside the mask, edge leaving the crop, a notch or spur in the edge).
    detail=True adds numpy arrays ('arc' px, 'mask_contour' px) for drawing.
    """
    frame = torso_frame(keypoints)
    if frame is None:
        return None
    H, S, L, u, b = frame
    if L < MIN_TORSO_PX:
        return None
    ox, oy = int(origin[0]), int(origin[1])
    box = torso_crop_box(np.asarray(keypoints, dtype=float)[:, :2] - [ox, oy], mask.shape[:2])
    if box is None:
        return None
    x0, y0, x1, y1 = box
    crop = mask[y0:y1, x0:x1]
    if crop.dtype == np.uint8:
        binary = (crop > int(threshold * 255)).astype(np.uint8)
    else:
        binary = (crop > threshold).astype(np.uint8)
    # Close thin gaps (caption strokes, a bar across the body); a hole does not matter since
    # only the outer contour is used.
    k = max(3, int(round(0.05 * L)) | 1)
    binary = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    shift = np.array([x0 + ox, y0 + oy], dtype=float)
    mid = (S + H) / 2 - shift
    inside = [cv2.pointPolygonTest(c, (float(mid[0]), float(mid[1])), True) for c in contours]
    best = int(np.argmax(inside))
    if inside[best] < -0.1 * L:       # the torso's middle is not on the person's mask
        return None
    contour = contours[best][:, 0, :].astype(float)
    if len(contour) < 20:
        return None
    P = contour + shift
    t = (P - H) @ u / L
    d = (P - H) @ b / L
    t0, t1 = stretch
    # Trace a little beyond the stretch so that smoothing does not pull the chord ends in.
    e0, e1 = t0 - EXTEND, t1 + EXTEND

    # The outermost back-side crossings of the two (extended) stretch ends.
    ends = []
    for level in (e0, e1):
        idx = _crossings(t, level)
        idx = idx[d[idx] > 0]
        if not len(idx):
            return None
        ends.append(int(idx[np.argmax(d[idx])]))
    i0, i1 = ends
    n = len(P)
    fwd = np.arange(i0, i0 + ((i1 - i0) % n) + 2) % n     # i0 -> i1 in contour order
    bwd = np.arange(i1, i1 + ((i0 - i1) % n) + 2) % n     # i1 -> i0 in contour order

    def on_stretch(ix):
        return np.mean((t[ix] >= e0 - 0.03) & (t[ix] <= e1 + 0.03) & (d[ix] > 0))
    arc_ix = fwd if on_stretch(fwd) >= on_stretch(bwd) else bwd[::-1]
    if on_stretch(arc_ix) < 0.95:      # the edge wanders off the back: broken or not a profile
        return None
    # Points on the crop border are the crop's edge, not the lifter's.
    cx, cy = contour[arc_ix, 0], contour[arc_ix, 1]
    if np.any((cx <= 0) | (cy <= 0) | (cx >= binary.shape[1] - 1) | (cy >= binary.shape[0] - 1)):
        return None
    arc = P[arc_ix]
    arc_len = float(np.sum(np.linalg.norm(np.diff(arc, axis=0), axis=1)))
    chord_len = float(np.linalg.norm(arc[-1] - arc[0]))
    if chord_len < 0.5 * (e1 - e0) * L or arc_len > 1.4 * chord_len:   # notch, spur or fold
        return None

    arc = _resample(arc, 80)
    arc = _smooth_open(arc, sigma=SMOOTH * L / max(arc_len / 79, 1e-6))
    # Cut the smoothed edge at the stretch ends (first crossing from each end).
    ta = (arc - H) @ u / L
    k0 = int(np.argmax(ta >= t0))
    k1 = len(ta) - 1 - int(np.argmax(ta[::-1] <= t1))
    if not (ta[k0] >= t0 and ta[k1] <= t1 and k1 - k0 >= 8):
        return None
    def at(level, j, k):             # point where the edge crosses t == level between j and k
        w = (level - ta[j]) / (ta[k] - ta[j]) if ta[k] != ta[j] else 0.0
        return arc[j] + np.clip(w, 0, 1) * (arc[k] - arc[j])
    A = at(t0, max(k0 - 1, 0), k0)
    B = at(t1, k1, min(k1 + 1, len(arc) - 1))
    arc = np.vstack([A, arc[k0:k1 + 1], B])
    c = B - A
    c_len = float(np.linalg.norm(c))
    if c_len <= 0:
        return None
    cu = c / c_len
    nb = np.array([-cu[1], cu[0]])
    if np.dot(nb, b) < 0:
        nb = -nb
    dist = (arc - A) @ nb / L
    k_ext = int(np.argmax(np.abs(dist)))
    sagitta = float(dist[k_ext])
    s = (arc - A) @ cu / L
    curvature = float(-2.0 * np.polyfit(s, dist, 2)[0])
    keep = np.linspace(0, len(arc) - 1, N_CONTOUR_POINTS).round().astype(int)
    out = {
        "sagitta": round(sagitta, 4),
        "curvature": round(curvature, 3),
        "contour": [[round(float(x), 1), round(float(y), 1)] for x, y in arc[keep]],
        "chord": [[round(float(A[0]), 1), round(float(A[1]), 1)], [round(float(B[0]), 1), round(float(B[1]), 1)]],
        "torso_px": round(L, 1),
    }
    if detail:
        out["arc"] = arc
        out["mask_contour"] = P
    return out


class SpineAnalyzer(FrameAnalyzer):
    """Per-frame dorsal-contour measurement from BlazePose's segmentation mask (field "spine").

    Each frame's value is `measure_back`'s dict or None (no lifter, no mask, front view -
    shoulder width > MAX_SHOULDER_WIDTH torso lengths - or an edge that cannot be traced).
    finish() also drops frames whose torso is < 60% of the clip's median torso length
    (foreshortened or a broken pose).
    keep_masks=True keeps each frame's torso crop of the mask (uint8) and raw keypoints in
    `.kept` {frame_index: (x0, y0, mask_crop, keypoints)}, for benchmarks and drawings.
    `.seconds` / `.frames`: time spent in analyze() and frames seen (cost per frame).
    """

    name = "spine"
    wants_mask = True

    def __init__(self, stretch=STRETCH, keep_masks: bool = False):
        self.stretch = tuple(stretch)
        self.keep_masks = keep_masks
        self.kept: dict = {}
        self.seconds = 0.0
        self.frames = 0

    def start(self, video_path, info) -> None:
        self.kept = {}

    def analyze(self, frame_index: int, frame_bgr: np.ndarray, person):
        t0 = time.perf_counter()
        try:
            if person is None or getattr(person, "mask", None) is None:
                return None
            kp = np.asarray(person.keypoints, dtype=float)
            if self.keep_masks:
                box = torso_crop_box(kp, person.mask.shape[:2], margin=0.9)
                if box is not None:
                    x0, y0, x1, y1 = box
                    crop = (np.clip(person.mask[y0:y1, x0:x1], 0, 1) * 255).astype(np.uint8)
                    self.kept[int(frame_index)] = (x0, y0, crop, kp.copy())
            if shoulder_width_ratio(kp) > MAX_SHOULDER_WIDTH:
                return None
            return measure_back(person.mask, kp, stretch=self.stretch)
        finally:
            self.seconds += time.perf_counter() - t0
            self.frames += 1

    def finish(self, values: list, keypoints_xy: np.ndarray) -> list:
        return drop_short_torsos(values)


def drop_short_torsos(values: list, min_fraction: float = 0.6) -> list:
    """None for frames whose torso_px is < min_fraction of the clip's median (foreshortened)."""
    lengths = [v["torso_px"] for v in values if v is not None]
    if not lengths:
        return list(values)
    floor = min_fraction * float(np.median(lengths))
    return [v if v is not None and v["torso_px"] >= floor else None for v in values]


def trunk_incline_deg(keypoints_xy: np.ndarray) -> np.ndarray:
    """(T,) angle of the hip->shoulder line from vertical, degrees (0 upright, 90 horizontal)."""
    kp = np.asarray(keypoints_xy, dtype=float)
    v = shoulder_centre(kp) - hip_centre(kp)
    return np.degrees(np.arctan2(np.abs(v[..., 0]), -v[..., 1]))


def _field_series(seq, key: str) -> np.ndarray:
    values = seq.frame_extras.get("spine") or []
    out = np.full(len(seq), np.nan)
    for i, v in enumerate(values[:len(seq)]):
        if isinstance(v, dict) and v.get(key) is not None:
            out[i] = float(v[key])
    return out


def _nan_median_filter(x: np.ndarray, window: int) -> np.ndarray:
    """Sliding median over `window` samples ignoring NaN; NaN stays NaN (nothing invented)."""
    half = window // 2
    out = np.full_like(x, np.nan)
    for i in np.nonzero(~np.isnan(x))[0]:
        out[i] = np.nanmedian(x[max(0, i - half):i + half + 1])
    return out


def sagitta_series(seq, window: int = 5, key: str = "sagitta") -> np.ndarray:
    """(T,) per-sample sagitta in torso lengths (+ rounded / - arched), NaN where the frame has
    no spine value; a `window`-sample running median (ignoring NaN) removes single-frame
    mask glitches. key='curvature' gives the curvature series the same way."""
    return _nan_median_filter(_field_series(seq, key), window)


def back_shape(seq, frame_mask=None, torso_incline_deg=None, min_incline_deg: float = 35.0,
               min_frames: int = 5, max_incline_deg: float = 100.0) -> dict:
    """The back's shape over a sequence's hinge frames.

    frame_mask: (T,) bool of frames to consider (e.g. trusted frames of one rep); None = all.
    torso_incline_deg: (T,) torso angle from vertical; None = computed from the keypoints.
    Only frames leaning more than min_incline_deg are used (rounding shows in the hinge), and
    less than max_incline_deg (shoulders far below the hips is a broken pose, e.g. after a
    zoom or shot cut, not a deadlift);
    with fewer than min_frames of them the medians are NaN (a few frames of a view that
    barely shows the back's profile are noise, not a measurement).
    Returns {'sagitta': median sagitta (torso lengths, + rounded / - arched; NaN if no frame),
    'curvature': median curvature (1 / torso lengths), 'frames': frames used,
    'most_flexed_sample': sample index of the largest sagitta among them (None if none),
    'most_flexed_frame': its video frame index, 'most_flexed_sagitta': its value}.
    """
    sag = sagitta_series(seq)
    curv = sagitta_series(seq, key="curvature")
    T = len(seq)
    sel = np.ones(T, bool) if frame_mask is None else np.asarray(frame_mask, bool).copy()
    if sel.shape != (T,):
        raise ValueError(f"frame_mask has shape {sel.shape}, expected ({T},)")
    incl = trunk_incline_deg(seq.keypoints_xy) if torso_incline_deg is None else np.asarray(torso_incline_deg, float)
    with np.errstate(invalid="ignore"):
        sel &= (incl > min_incline_deg) & (incl < max_incline_deg) & ~np.isnan(sag)
    if sel.sum() < max(1, min_frames):
        return {"sagitta": float("nan"), "curvature": float("nan"), "frames": int(sel.sum()),
                "most_flexed_sample": None, "most_flexed_frame": None, "most_flexed_sagitta": None}
    idx = np.nonzero(sel)[0]
    k = int(idx[np.argmax(sag[idx])])
    return {"sagitta": round(float(np.median(sag[idx])), 4),
            "curvature": round(float(np.nanmedian(curv[idx])), 3) if np.any(~np.isnan(curv[idx])) else float("nan"),
            "frames": int(len(idx)), "most_flexed_sample": k,
            "most_flexed_frame": int(seq.frame_index[k]), "most_flexed_sagitta": round(float(sag[k]), 4)}

