"""Bar path and bar speed: track the barbell's plate, not only the body.

Side and 45-degree views show the plate as a large circle (an ellipse at 45 degrees) whose
centre is the bar. `BarTracker` runs during extraction (a `FrameAnalyzer`, so the frame is
decoded once): on every sampled frame it looks for a circle of plate size near the lifter's
hands (the bar is in the hands from lift-off to lockout), follows the plate by template
matching when the circle is not found, and in `finish` smooths the track with a
constant-velocity Kalman filter (forward filter + Rauch-Tung-Striebel smoother). Gaps longer
than `MAX_GAP_FRAMES` video frames are never bridged.

Per sampled frame it writes (pose JSON field "bar", `seq.frame_extras["bar"]`) either None
or {"x", "y": plate centre (px, full-size frame), "r": plate radius (px), "source":
"detected" (a circle was found) | "tracked" (template match from the last circle) |
"smoothed" (no measurement: a short gap bridged by the smoother), "edge": true when the
plate reaches the frame border (only when true), "rivals": number of other plate-sized circles
seen near the hands (only when > 0)}.

Analysis helpers (called by analyze): `bar_summary`, `bar_offset_series`, `draw_bar_path`,
`plot_bar_speed`. Units: centimetres and m/s when the scale is known (a standard plate is
PLATE_DIAMETER_CM across: assumed, not measured), otherwise torso lengths (and per second).
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import cv2
import numpy as np

from .extract import FrameAnalyzer
from .keypoints import KP, hip_centre, shoulder_centre, torso_length

# A standard competition / bumper plate (IWF, IPF 20-25 kg plates): 45 cm across. Assumed.
PLATE_DIAMETER_CM = 45.0
# Plate radius as a share of the lifter's torso length (shoulder-hip, ~50 cm on adults, so a
# 45 cm plate is ~0.45); the range allows for short and long torsos and 45-degree ellipses.
PLATE_RADIUS_TORSO = (0.25, 0.80)
# The plate centre (the bar) lies within this many torso lengths of the hands.
HAND_RADIUS_TORSO = 0.55
# Hough works on the search window scaled so the expected plate radius is about this many px.
WORK_RADIUS_PX = 26.0
# Template tracking: the lowest normalised correlation that counts, and how many sampled
# frames in a row may be tracked without a fresh circle.
TRACK_MIN_SCORE = 0.55
MAX_TRACKED_SAMPLES = 8
# The smoother never bridges a gap (no measurement) longer than this many video frames.
MAX_GAP_FRAMES = 6
# Kalman filter: measurement noise (share of the plate radius) by source, and the process
# noise (acceleration spectral density, plate radii per frame^2).
MEAS_SIGMA_R = {"detected": 0.05, "tracked": 0.10}
ACCEL_SIGMA_R = 0.04
# A measurement further than this (Mahalanobis, squared) from the prediction is an outlier.
GATE_CHI2 = 25.0
# The bar is "at rest" within this share of the plate diameter of its lowest / highest level.
REST_TOL_DIAM = 0.06
# Share of pull frames with a bar position below which the bar is not used for the rules.
MIN_TRACKED_SHARE = 0.6


def _wrist_centre(kp: np.ndarray) -> np.ndarray | None:
    """(2,) mean of the visible wrists, or None."""
    w = kp[[KP["r_wrist"], KP["l_wrist"]], :2]
    ok = np.isfinite(w[:, 0])
    return w[ok].mean(axis=0) if ok.any() else None


class BarTracker(FrameAnalyzer):
    """Plate detection (Hough circles near the hands) + template tracking + Kalman smoothing.

    analyze(frame_index, frame_bgr, person) -> {"x", "y", "r", "source", ...} or None (raw);
    finish(values, keypoints_xy) -> the smoothed list (see the module docstring).
    """

    name = "bar"

    def __init__(self):
        self.start(None, None)

    def start(self, video_path, info) -> None:
        self._torso_px: list[float] = []
        self._last = None              # last raw measurement dict
        self._last_frame = None        # frame index of the last measurement
        self._template = None          # (patch gray at work scale, scale)
        self._tracked_run = 0
        self._radius_hist: list[float] = []
        self._frame_indices: list[int] = []
        self._size = None if info is None else (info.width, info.height)

    # ------------------------------------------------------------------ per frame
    def _torso(self, kp) -> float | None:
        tl = float(torso_length(kp[None, :, :2])[0]) if kp is not None else float("nan")
        if np.isfinite(tl) and tl > 0:
            self._torso_px.append(tl)
            self._torso_px = self._torso_px[-60:]
        if not self._torso_px:
            return None
        return float(np.percentile(self._torso_px, 90))

    def _radius_range(self, torso_px: float | None) -> tuple[float, float]:
        if len(self._radius_hist) >= 5:
            r = float(np.median(self._radius_hist[-15:]))
            return 0.75 * r, 1.3 * r
        return PLATE_RADIUS_TORSO[0] * torso_px, PLATE_RADIUS_TORSO[1] * torso_px

    def analyze(self, frame_index: int, frame_bgr: np.ndarray, person):
        self._frame_indices.append(int(frame_index))
        h, w = frame_bgr.shape[:2]
        kp = None if person is None else np.asarray(person.keypoints, dtype=float)
        torso_px = self._torso(kp)
        hands = None if kp is None else _wrist_centre(kp)
        if torso_px is None:
            return None
        rmin, rmax = self._radius_range(torso_px)
        # Where to look: around the hands, or around the last plate when the hands are lost.
        centre = hands
        if centre is None and self._last is not None and frame_index - self._last_frame <= MAX_GAP_FRAMES:
            centre = np.array([self._last["x"], self._last["y"]])
        if centre is None:
            return None
        reach = HAND_RADIUS_TORSO * torso_px + rmax
        x0, x1 = int(max(0, centre[0] - reach)), int(min(w, centre[0] + reach))
        y0, y1 = int(max(0, centre[1] - reach)), int(min(h, centre[1] + reach))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        s = WORK_RADIUS_PX / ((rmin + rmax) / 2)
        roi = cv2.cvtColor(frame_bgr[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
        if s < 1:
            roi = cv2.resize(roi, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        else:
            s = 1.0
        roi = cv2.GaussianBlur(roi, (5, 5), 1.2)
        found = self._detect(roi, s, (x0, y0), rmin, rmax, centre, torso_px, (w, h))
        if found is not None:
            self._remember(roi, s, (x0, y0), found, frame_index)
            self._tracked_run = 0
            return found
        tracked = self._track(frame_bgr, frame_index)
        if tracked is not None:
            self._tracked_run += 1
            self._last, self._last_frame = tracked, frame_index
        return tracked

    def _detect(self, roi, s, origin, rmin, rmax, hands, torso_px, size):
        minr, maxr = max(4, int(rmin * s)), max(6, int(math.ceil(rmax * s)))
        circles = cv2.HoughCircles(roi, cv2.HOUGH_GRADIENT, dp=1, minDist=max(4, minr // 2),
                                   param1=120, param2=22, minRadius=minr, maxRadius=maxr)
        if circles is None:
            return None
        cands = []
        for rank, (cx, cy, r) in enumerate(circles[0][:12]):
            x, y, rr = origin[0] + cx / s, origin[1] + cy / s, r / s
            d = float(np.hypot(x - hands[0], y - hands[1])) / torso_px
            if d > HAND_RADIUS_TORSO:
                continue
            score = -rank * 0.1 - d
            if self._last is not None:
                # Continuity: prefer the circle near the last plate position.
                jump = float(np.hypot(x - self._last["x"], y - self._last["y"])) / max(self._last["r"], 1)
                score -= 0.3 * min(jump, 3.0)
            cands.append((score, x, y, rr))
        if not cands:
            return None
        cands.sort(reverse=True)
        _, x, y, rr = cands[0]
        # Concentric circles (the rim and the hub of one plate) are one plate: keep the largest.
        same = [c for c in cands if np.hypot(c[1] - x, c[2] - y) < 0.25 * rr]
        rr = max(c[3] for c in same)
        rivals = sum(1 for c in cands if np.hypot(c[1] - x, c[2] - y) > 1.5 * rr)
        out = {"x": round(float(x), 1), "y": round(float(y), 1), "r": round(float(rr), 1), "source": "detected"}
        if x - rr < 0 or y - rr < 0 or x + rr > size[0] or y + rr > size[1]:
            out["edge"] = True
        if rivals:
            out["rivals"] = int(rivals)
        return out

    def _remember(self, roi, s, origin, found, frame_index):
        self._radius_hist.append(found["r"])
        self._last, self._last_frame = found, frame_index
        cx, cy, r = (found["x"] - origin[0]) * s, (found["y"] - origin[1]) * s, found["r"] * s
        a = int(round(0.8 * r))
        x, y = int(round(cx)), int(round(cy))
        if y - a >= 0 and x - a >= 0 and y + a < roi.shape[0] and x + a < roi.shape[1]:
            self._template = (roi[y - a:y + a + 1, x - a:x + a + 1].copy(), s)
        else:
            self._template = None

    def _track(self, frame_bgr, frame_index):
        if (self._template is None or self._last is None or self._tracked_run >= MAX_TRACKED_SAMPLES
                or frame_index - self._last_frame > MAX_GAP_FRAMES):
            return None
        tpl, s = self._template
        h, w = frame_bgr.shape[:2]
        r = self._last["r"]
        reach = 1.0 * r + tpl.shape[0] / (2 * s)
        x0, x1 = int(max(0, self._last["x"] - reach)), int(min(w, self._last["x"] + reach))
        y0, y1 = int(max(0, self._last["y"] - reach)), int(min(h, self._last["y"] + reach))
        roi = cv2.cvtColor(frame_bgr[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
        roi = cv2.resize(roi, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else roi
        roi = cv2.GaussianBlur(roi, (5, 5), 1.2)
        if roi.shape[0] <= tpl.shape[0] or roi.shape[1] <= tpl.shape[1]:
            return None
        res = cv2.matchTemplate(roi, tpl, cv2.TM_CCOEFF_NORMED)
        _, score, _, loc = cv2.minMaxLoc(res)
        if score < TRACK_MIN_SCORE:
            return None
        x = x0 + (loc[0] + tpl.shape[1] / 2) / s
        y = y0 + (loc[1] + tpl.shape[0] / 2) / s
        out = {"x": round(float(x), 1), "y": round(float(y), 1), "r": self._last["r"], "source": "tracked"}
        if x - r < 0 or y - r < 0 or x + r > w or y + r > h:
            out["edge"] = True
        return out

    # ------------------------------------------------------------------ whole track
    def finish(self, values: list, keypoints_xy: np.ndarray) -> list:
        frames = self._frame_indices if len(self._frame_indices) == len(values) else list(range(len(values)))
        return smooth_track(values, frames)


def _rts_segment(t: np.ndarray, z: np.ndarray, sig: np.ndarray, q: float) -> np.ndarray:
    """Constant-velocity Kalman filter + RTS smoother on one segment.

    t (n,) frame indices (increasing), z (n, 2) measurements (NaN = none), sig (n,) their
    standard deviation (px), q acceleration noise (px/frame^2). Returns (n, 2) smoothed
    positions and a (n,) bool of measurements rejected by the gate.
    """
    n = len(t)
    xs, Ps, xp, Pp = np.zeros((n, 4)), np.zeros((n, 4, 4)), np.zeros((n, 4)), np.zeros((n, 4, 4))
    Fs = np.zeros((n, 4, 4))
    H = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], float)
    rejected = np.zeros(n, dtype=bool)
    first = int(np.flatnonzero(np.isfinite(z[:, 0]))[0])
    x = np.array([z[first, 0], z[first, 1], 0.0, 0.0])
    P = np.diag([sig[first] ** 2, sig[first] ** 2, (5 * sig[first]) ** 2 + 100.0, (5 * sig[first]) ** 2 + 100.0])
    prev_t = t[0]
    for i in range(n):
        dt = float(t[i] - prev_t)
        F = np.array([[1, 0, dt, 0], [0, 1, 0, dt], [0, 0, 1, 0], [0, 0, 0, 1]], float)
        G = np.array([[dt ** 2 / 2, 0], [0, dt ** 2 / 2], [dt, 0], [0, dt]])
        Q = G @ G.T * q ** 2 if dt > 0 else np.zeros((4, 4))
        if i > 0:
            x, P = F @ x, F @ P @ F.T + Q
        Fs[i], xp[i], Pp[i] = F, x, P
        prev_t = t[i]
        if np.isfinite(z[i, 0]):
            R = np.eye(2) * sig[i] ** 2
            S = H @ P @ H.T + R
            innov = z[i] - H @ x
            if i > first and float(innov @ np.linalg.solve(S, innov)) > GATE_CHI2:
                rejected[i] = True
            else:
                K = P @ H.T @ np.linalg.inv(S)
                x = x + K @ innov
                P = (np.eye(4) - K @ H) @ P
        xs[i], Ps[i] = x, P
    out = xs.copy()
    for i in range(n - 2, -1, -1):
        C = Ps[i] @ Fs[i + 1].T @ np.linalg.inv(Pp[i + 1])
        out[i] = xs[i] + C @ (out[i + 1] - xp[i + 1])
        Ps[i] = Ps[i] + C @ (Ps[i + 1] - Pp[i + 1]) @ C.T
    return out[:, :2], rejected


def smooth_track(values: list, frame_index) -> list:
    """Kalman-smooth raw per-sample bar measurements (dicts or None) at video frames
    `frame_index`; returns the list written to the pose JSON (see the module docstring).

    A segment ends at a gap longer than MAX_GAP_FRAMES frames or at a jump the gate rejects
    twice in a row (a shot cut, another plate); gaps inside a segment are filled ("smoothed"),
    outliers are dropped, positions before the first and after the last measurement of a
    segment are not extrapolated.
    """
    n = len(values)
    t = np.asarray(frame_index, dtype=float)
    meas = [i for i, v in enumerate(values) if isinstance(v, dict) and v.get("x") is not None]
    out: list = [None] * n
    if not meas:
        return out
    # Segments: runs of measurements whose gaps stay within MAX_GAP_FRAMES.
    segments, cur = [], [meas[0]]
    for i in meas[1:]:
        if t[i] - t[cur[-1]] > MAX_GAP_FRAMES:
            segments.append(cur)
            cur = [i]
        else:
            cur.append(i)
    segments.append(cur)
    queue = list(segments)
    while queue:
        seg = queue.pop(0)
        if len(seg) < 2:
            continue   # a lone detection is not a track
        a, b = seg[0], seg[-1]
        idx = np.arange(a, b + 1)
        z = np.full((len(idx), 2), np.nan)
        sig = np.ones(len(idx))
        r_med = float(np.median([values[i]["r"] for i in seg]))
        for i in seg:
            z[i - a] = values[i]["x"], values[i]["y"]
            sig[i - a] = MEAS_SIGMA_R.get(values[i].get("source"), 0.1) * r_med
        sig[~np.isfinite(z[:, 0])] = r_med
        pos, rejected = _rts_segment(t[idx], z, sig, ACCEL_SIGMA_R * r_med)
        # Two rejected measurements in a row: the track jumped (shot cut); split there.
        rej = set((np.flatnonzero(rejected) + a).tolist())
        pos_in_seg = {i: k for k, i in enumerate(seg)}
        split = next((i for i in sorted(rej) if pos_in_seg[i] + 1 < len(seg) and seg[pos_in_seg[i] + 1] in rej), None)
        if split is not None:
            queue[:0] = [[i for i in seg if i < split], [i for i in seg if i >= split]]
            continue
        radii = np.array([values[i]["r"] if i in seg and not rejected[i - a] else np.nan for i in idx], float)
        for k, i in enumerate(idx):
            v = values[i] if isinstance(values[i], dict) else None
            if v is not None and rejected[k]:
                v = None
            lo, hi = max(0, k - 7), min(len(idx), k + 8)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                r = float(np.nanmedian(radii[lo:hi]))
            if not np.isfinite(r):
                r = r_med
            rec = {"x": round(float(pos[k, 0]), 1), "y": round(float(pos[k, 1]), 1), "r": round(r, 1),
                   "source": v["source"] if v is not None else "smoothed"}
            for key in ("edge", "rivals"):
                if v is not None and v.get(key):
                    rec[key] = v[key]
            out[i] = rec
        # Rejected outliers can leave a gap too long to bridge: no invented positions there.
        kept = [i for i in seg if not rejected[i - a]]
        for p, q in zip(kept[:-1], kept[1:]):
            if t[q] - t[p] > MAX_GAP_FRAMES:
                for i in range(p + 1, q):
                    out[i] = None
    return out


def track_bar(video_path, seq, tracker: BarTracker | None = None) -> list:
    """Run a BarTracker over the sampled frames of an existing PoseSequence (its smoothed
    keypoints stand in for the raw ones), for pose files extracted without the "bar" field.
    Returns the per-sample list (len(seq)) that extraction would have written.
    """
    from .estimators import Person
    from .video import iter_frames, probe_video

    tracker = tracker or BarTracker()
    info = probe_video(video_path)
    tracker.start(video_path, info)
    wanted = {int(f): k for k, f in enumerate(seq.frame_index)}
    stride = int(seq.frame_stride or 1)
    values: list = [None] * len(seq)
    seen = np.zeros(len(seq), dtype=bool)
    for index, frame in iter_frames(video_path, stride):
        k = wanted.get(int(index))
        if k is None:
            continue
        kp = np.concatenate([seq.keypoints_xy[k], np.ones((len(seq.keypoints_xy[k]), 1))], axis=1)
        values[k] = tracker.analyze(int(index), frame, Person(kp))
        seen[k] = True
    tracker._frame_indices = [int(f) for f in seq.frame_index]
    return tracker.finish(values, seq.keypoints_xy)
