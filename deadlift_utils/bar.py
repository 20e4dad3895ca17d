"""Bar path and bar speed: track the barbell's plate, not only the body.

Side and 45-degree views show the plate as a large circle (an ellipse at 45 degrees) whose
centre is the bar. `BarTracker` runs during extraction (a `FrameAnalyzer`, so the frame is
decoded once): on every sampled frame it looks for a circle of plate size near the lifter's
hands (the bar is in the hands from lift-off to lockout), follows the plate by template
matching when the circle is not found, and in `finish` smooths the track with a
constant-velocity Kalman filter (forward filter + Rauch-Tung-Striebel smoother). Gaps longer
than `MAX_GAP_FRAMES` video frames are never bridged.

Per sampled frame it writes (pose JSON field "bar", `seq.frame_extras["bar"]`) either None
or {"x", "y": the bar, the centre of the plate's face (px, full-size frame; see FACE_*),
"r": plate radius (px), "source":
"detected" (a circle was found) | "tracked" (template match from the last circle) |
"smoothed" (no measurement: a short gap bridged by the smoother), "edge": true when the
plate reaches the frame border (only when true), "rivals": number of other plate-sized circles
seen near the hands (only when > 0)}, or {"dropped": reason} where a track was found but is
not the barbell's plate (no position): it did not move with the hands (`drop_uncoupled_tracks`),
its circles had no plate rim and hub (`drop_plateless_tracks`), or it was the other piece of a
track that jumped from one plate to another (`drop_plate_switches`).

Analysis helpers (called by analyze): `bar_summary`, `bar_positions`, `BarTrail`, `draw_bar_path`,
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
from .keypoints import KP, torso_length

# A standard competition / bumper plate (IWF, IPF 20-25 kg plates): 45 cm across. Assumed.
PLATE_DIAMETER_CM = 45.0
# Plate radius as a share of the lifter's torso length (shoulder-hip, ~50 cm on adults, so a
# 45 cm plate is ~0.45); the range allows for short and long torsos and 45-degree ellipses.
PLATE_RADIUS_TORSO = (0.25, 0.80)
PLATE_RADIUS_TORSO_TYPICAL = 0.45
# The plate centre (the bar) lies within this many torso lengths of the hands.
HAND_RADIUS_TORSO = 0.55
# Hough works on the search window scaled so the expected plate radius is about this many px.
WORK_RADIUS_PX = 26.0
# Hough candidates scored per frame; a circle whose radius is off the track's median radius
# by more than RADIUS_TOL (share) is another object (the hub, a rack plate, a knee).
MAX_CIRCLES = 30
RADIUS_TOL = 0.2
# Share of rim points with a strong radial gradient below which a circle is not a plate.
MIN_RIM_SUPPORT = 0.35
LOCK_RIM_SUPPORT = 0.5
# Circles whose centres lie within CONCENTRIC_R of the larger one's radius are concentric: one
# plate's rim, rings and hub.
CONCENTRIC_R = 0.25
# A plate's outer rim is the largest circle about its centre: a track that locked onto an inner
# ring (the lettering band, the insert) never sees the rim, which is larger than its size band.
# A circle above the band (up to the largest plausible plate, PLATE_RADIUS_TORSO[1]) concentric
# with where the track expects the plate, with a clear rim (>= LOCK_RIM_SUPPORT) stronger than
# the track's own recent circles and than every circle in the band, is that rim: the track takes
# it and its size.
# A plate's outer rim seen only in colour: a red rim on a grey wall of the same brightness has no
# edge in the grey image the Hough search uses, so a track on a bright inner ring (the white ring
# of a Captain-America plate, tutorial_dev B2 and G2) never sees the rim, and its radius sets a
# scale that is too small (0.77 of the plate's: speeds ~30% high). About the centre of each
# detected circle, the clearest circle (rim support >= LOCK_RIM_SUPPORT on the colour gradient:
# per pixel the channel whose gradient is strongest) between RIM_RATIO[0] and RIM_RATIO[1] times
# the tracked circle's radius, and no larger than the largest plausible plate
# (PLATE_RADIUS_TORSO[1]), is the plate's rim when RIM_PERSIST of the track's last RIM_WINDOW
# detections find it at one ratio (within RIM_RATIO_TOL): the track keeps following the ring (a
# clear, steady edge) and reports the rim's radius (ratio x the ring's) as the plate's, on the
# whole track (its samples before the ratio was established too). RIM_RATIO[1]: painted and
# lettering rings lie at 0.7-0.85 of the rim; a smaller insert (a hub insert at ~0.4) shows in
# grey and is left to the outer-rim switch above (allowing up to 2.5 x found circles at ~2.2 x
# the far plate on the 45-degree yfgd_small clips, where the near plate overlaps it).
RIM_RATIO = (1.15, 1.6)
# The rim is a circle apart from the tracked one: between the two the support falls by at least
# RIM_DIP (a quarter of the rim points lose their edge). A plate's thickness seen a little off
# its axis draws a second edge hugging the rim (1.15-1.25 r), with no such dip (on the dev clips'
# bumper plates the dip was <= 0.08, on the painted rings' rims 0.3-0.9).
RIM_DIP = 0.25
RIM_RATIO_TOL = 0.05
RIM_PERSIST, RIM_WINDOW = 3, 5
# A plate's hub: a small circle (radius HUB_R x the plate's) centred on it, looked for on the
# frame scaled so the plate radius is HUB_WORK_R px (see `_hub_support`).
HUB_R = (0.06, 0.45)
HUB_WORK_R = 40.0
# Track-level plate evidence (finish): over a track's detected circles, the median of rim support
# + hub support (each 0..1) must reach PLATE_EVIDENCE_MIN, from at least PLATE_EVIDENCE_MIN_DET
# detections. Barbell plates (42 clips, 3 sources): track medians 1.08-1.88; the circles a
# kettlebell lifter's outline, the kettlebell and the floor make near the hands: 0.55-0.89
# (tracks with >= 3 detections).
PLATE_EVIDENCE_MIN = 1.0
PLATE_EVIDENCE_MIN_DET = 3
# The bar is the centre of the plate's face: its hub (the sleeve end) and its rings are
# concentric about it. The detected circle can be the plate's silhouette instead, which seen a
# little off the plate's axis takes in the plate's thickness on one side: its centre is then off
# the bar (yfgd_small's light plates: 0.1-0.25 plate diameters from the hand-marked centres, which
# sit on the sleeve end). About each detected circle, within FACE_SPAN radii, the point where
# the most radial edges are concentric (mean over FACE_RHO radii x r of the share of 48 points
# with a strong radial gradient, on the frame scaled so r is FACE_WORK_R px) is the face's centre
# when it beats the circle's own centre by FACE_GAIN, else the circle's centre stands
# (`_face_offset`). A track whose detections find such an offset on at least FACE_MIN_SHARE of
# them (and FACE_MIN_DET) is moved by it, fitted as a straight line in the plate's height
# (`_to_face_centre`): the offset changes smoothly as the plate rises through the camera's view.
# On the 62 hand-marked frames (8 clips, 2 sources): 90th-percentile error 0.135 -> 0.091 plate
# diameters, median 0.038 -> 0.038, largest 0.247 -> 0.220; the displacement between marked
# frames (what speeds and drifts are made of) 0.10-0.18 -> 0.07-0.14 of the marked displacement
# on three of the four yfgd_small clips (bad_003, whose track sits on the man behind the lifter
# mid-pull, 0.11 -> 0.16). The painted plates of tutorial_dev, whose tracked ring is concentric
# with the face, do not move (gain 0.01-0.03). Tried: a running median of the offsets over 5
# samples each side (p90 0.070), not kept: where the window's mix of moved and unmoved
# detections changes, the offset steps by up to 14 px in one sample, a speed as large as the
# bar's own.
FACE_RHO = (0.08, 0.9, 24)
FACE_SPAN = 0.3
FACE_GAIN = 0.04
FACE_WORK_R = 40.0
FACE_MIN_SHARE = 0.3
FACE_MIN_DET = 5
# The plate centre lies within this many plate radii of the wrists' line (in a side view the
# plate hides the hands and the wrist keypoints land above the bar, inside the disc). Not applied
# to a circle in the track's size band concentric with where the track expects the plate
# (CONCENTRIC_R): that is the plate the track follows, whose coupling with the hands the
# track-level checks judge (`drop_uncoupled_tracks`), while the wrists guessed behind the plate
# can sit 1.5-1.8 radii of its inner ring above the bar for a few samples (tutorial_dev bad_02,
# bad_03), which used to break the track there.
WRIST_MAX_R = 1.3
# The bar hangs from the hands: the plate centre is never more than this many plate radii above
# the wrists (on the barbell clips the wrist keypoints sit 0.2-1.2 r above the plate centre in
# side views and within 0.25 r of its height at 45 degrees, 95% of samples). Plate-sized circles
# drawn by the lifter's outline (hips, thighs, the back of a kettlebell lifter) are centred
# 0.5-1.3 r above the wrists.
ABOVE_WRIST_MAX_R = 0.4
# Shot cut: a thumbnail's mean absolute change (0-255) above CUT_MIN_DIFF and above
# CUT_RELATIVE x the clip's median change between samples (as trust.ShotCutAnalyzer).
CUT_MIN_DIFF = 27.0
CUT_RELATIVE = 4.0
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
# Robust smoothing: measurements further than ROBUST_R plate radii from the smoothed path get
# their noise inflated ROBUST_INFLATE times, and the segment is smoothed again (ROBUST_ITER times).
ROBUST_R = 0.12
ROBUST_INFLATE = 8.0
ROBUST_ITER = 3
# Track-level check (finish): a barbell plate moves rigidly with the hands, so over a track the
# plate centre's height follows the wrists' (plate y = wrist y + a constant offset). Samples
# whose offset is within COUPLE_INLIER_R plate radii of the track's median offset are inliers
# (the wrist keypoints glitch when the plate hides the hands); a track whose inlier wrists
# rise and fall by >= COUPLE_MOVE_R radii must have >= COUPLE_MIN_INLIERS inliers, a height
# correlation >= COUPLE_MIN_CORR over them, and the plate centre not more than
# COUPLE_ABOVE_R radii above the wrists where the hands are lowest (the bar hangs from the
# hands; a circle on the hips or thighs sits ~0.5-1.3 r above them; the "45-degree views put
# the wrist keypoints up to ~0.8 r below a real plate's centre" once measured here were circles
# on the thighs, see ABOVE_WRIST_MAX_R). A still-hands track that just
# continues a checked track of the same plate (the bar at rest before/after the pull) is kept. A track over which the hands hardly
# move cannot show the coupling: it is kept only if it lasts >= COUPLE_STILL_S seconds with
# the offset steady (sd <= COUPLE_STILL_SD radii in x and y). Kettlebell clips gave circles on
# the lifter's hips/thighs and on the floor that pass the per-frame checks.
COUPLE_INLIER_R = 0.5
COUPLE_MIN_INLIERS = 0.6
COUPLE_MOVE_R = 1.0
COUPLE_MIN_CORR = 0.8
COUPLE_ABOVE_R = ABOVE_WRIST_MAX_R
COUPLE_STILL_S = 1.0
COUPLE_STILL_SD = 0.25
# When the pose loses the hands behind the plate (a close, low camera: the wrist keypoints stay
# put or vanish while the plate rises), "the hands hardly move" says nothing about the circle.
# A piece with at least LOST_HANDS_MIN_DET detected circles whose median rim + hub support
# (see PLATE_EVIDENCE_MIN) is at least LOST_HANDS_EVIDENCE, rising or falling by at least
# LOST_HANDS_TRAVEL_R plate radii, is the plate. Dropped "hands hardly move" pieces on the 42
# shared clips: with >= 8 detections and >= 1 radius of travel the kettlebell clips' circles
# (the lifter's outline, the bell) reach an evidence of 1.02 at most; tutorial_dev bad_01's
# plate 1.55-1.75.
LOST_HANDS_MIN_DET = 8
LOST_HANDS_EVIDENCE = 1.3
LOST_HANDS_TRAVEL_R = 1.0
# A track is split where this many samples in a row leave its offset from the hands.
COUPLE_SPLIT_RUN = 3
# A track that switches plates: on the close, low camera of yfgd_small bad_004-007 both plates
# are seen side by side (the far plate, r ~140-150 px, and the near plate's white inner ring,
# r ~120-125 px, within RADIUS_TOL of each other); when the near plate hides the far one the
# track jumps to the other (bad_004, bad_005, bad_007 at lift-off to lockout, bad_006 when
# lowering) and the smoother joined the two into one path (bad_004's 48 cm 'max from start'
# was that jump). Such a switch: two detections within MAX_GAP_FRAMES of each other more than
# SWITCH_JUMP_R plate radii apart, each side steady (its SWITCH_RUN detections within
# SWITCH_STEADY_R radii of the detection next to the jump). Over the 42 clips' raw detections
# inside kept tracks the switches were 1.99-3.04 r jumps with sides steady to <= 0.77 r (the
# four clips above, nowhere else); other jumps there are single wrong circles or jitter whose
# sides move by 1.02-2.66 r (bad_002, bad_003, tutorial_dev good_01, yfgd good_010) or jumps of
# <= 1.19 r (bad_001). The track is cut there and only the piece with the most detections is
# kept (`drop_plate_switches`): one path on one plate; after the track-level hand and plate
# checks, so no other verdict changes.
SWITCH_JUMP_R = 1.5
SWITCH_STEADY_R = 1.0
SWITCH_RUN = 3
# The bar is "at rest" within this share of the plate diameter of its lowest / highest level.
REST_TOL_DIAM = 0.03
# A loaded bar moves sideways only a few centimetres in a deadlift (it starts over mid-foot and
# the arms hang straight; a bad drift is ~10-15 cm): a tracked path that moves more than
# MAX_DRIFT_R plate radii (22.5 cm for a 45 cm plate) sideways between lift-off and lockout is
# not the bar. On the shared clips the rep figures above it were all tracks diagnosed wrong from
# the frames (yfgd_small bad_003 1.2 r: the man behind the lifter; bad_004 / bad_005 2.1 / 2.0 r:
# the far plate, then the near plate's ring; tutorial_dev good_01 1.5 r: the orbiting camera);
# the largest elsewhere was 0.78 r (yfgd_small bad_007, a real drift).
MAX_DRIFT_R = 1.0
# Peak bar speed: displacement over this long a window (s).
PEAK_WINDOW_S = 0.2
# Share of pull frames with a bar position below which the bar is not used for the rules.
MIN_TRACKED_SHARE = 0.6
MIN_PATH_SHARE = 0.25     # below this share of all pull frames with a plate, no bar path is reported


def _wrists(kp: np.ndarray) -> np.ndarray | None:
    """(n, 2) the visible wrists (n = 1 or 2), or None."""
    w = kp[[KP["r_wrist"], KP["l_wrist"]], :2]
    ok = np.isfinite(w[:, 0])
    return w[ok] if ok.any() else None


def _dist_to_segment(p: np.ndarray, ends: np.ndarray) -> float:
    """Distance (px) from point p (2,) to the segment between the wrists ends (n, 2), n = 1 or 2."""
    a, b = ends[0], ends[-1]
    ab = b - a
    L2 = float(ab @ ab)
    u = 0.0 if L2 == 0 else min(1.0, max(0.0, float((p - a) @ ab) / L2))
    return float(np.linalg.norm(p - (a + u * ab)))


def _rim_support(gx, gy, mag, strong, cx, cy, r, n=48) -> float:
    """Share of n rim points (inside the image) of circle (cx, cy, r) where the gradient is
    strong (> 0.5 * strong) and radial (|cos| > 0.7), looking 1 px either side of the rim.
    Fewer than half the rim points inside the image gives 0."""
    h, w = mag.shape
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, sn = np.cos(ang), np.sin(ang)
    best = np.zeros(n)
    inside_any = np.zeros(n, dtype=bool)
    for dr in (-1.0, 0.0, 1.0):
        xs = np.round(cx + (r + dr) * c).astype(int)
        ys = np.round(cy + (r + dr) * sn).astype(int)
        inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
        inside_any |= inside
        xi, yi = np.clip(xs, 0, w - 1), np.clip(ys, 0, h - 1)
        m = mag[yi, xi]
        radial = np.abs(gx[yi, xi] * c + gy[yi, xi] * sn) / np.maximum(m, 1e-6)
        ok = inside & (m > 0.5 * strong) & (radial > 0.7)
        best = np.maximum(best, ok)
    if inside_any.sum() < n / 2:
        return 0.0
    return float(best[inside_any].mean())


def _gradients_about(frame_bgr, x: float, y: float, r: float, a: int, work_r: float):
    """The grey frame within a px of (x, y) (full-frame px), scaled so that a plate radius r is
    work_r px and lightly blurred, with its Sobel gradients: (roi, gx, gy, magnitude, strong (the
    magnitude's 90th percentile, at least 8), scale, x, y in the roi); None when that square
    leaves the frame."""
    x0, y0 = int(round(x)) - a, int(round(y)) - a
    h, w = frame_bgr.shape[:2]
    if x0 < 0 or y0 < 0 or x0 + 2 * a >= w or y0 + 2 * a >= h or r <= 0:
        return None
    roi = cv2.cvtColor(frame_bgr[y0:y0 + 2 * a + 1, x0:x0 + 2 * a + 1], cv2.COLOR_BGR2GRAY)
    s = min(1.0, work_r / r)
    if s < 1:
        roi = cv2.resize(roi, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    roi = cv2.GaussianBlur(roi, (3, 3), 0.8).astype(np.float32)
    gx = cv2.Sobel(roi, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(roi, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.hypot(gx, gy)
    strong = max(float(np.percentile(mag, 90)), 8.0)
    return roi, gx, gy, mag, strong, s, (x - x0) * s, (y - y0) * s


def _hub_support(frame_bgr, x: float, y: float, r: float, n: int = 32) -> float:
    """How clearly a small circle is centred on (x, y) (full-frame px) inside a plate of radius
    r: the best rim support (share of n rim points with a strong radial gradient, as
    `_rim_support`) of a circle of radius HUB_R[0]..HUB_R[1] x r about that centre (within
    1 px), on the frame scaled so that r is HUB_WORK_R px. A barbell plate has its hub there
    (the sleeve end, the metal insert, the inner rings); a circle drawn by a lifter's outline or
    the floor has none. NaN when the plate's middle is not inside the frame."""
    a = int(math.ceil(HUB_R[1] * r * 1.4)) + 3
    grads = _gradients_about(frame_bgr, x, y, r, a, HUB_WORK_R)
    if grads is None:
        return float("nan")
    roi, gx, gy, mag, strong, s, cx, cy = grads
    yy, xx = np.mgrid[0:roi.shape[0], 0:roi.shape[1]].astype(np.float32)
    dx, dy = xx - cx, yy - cy
    dist = np.maximum(np.hypot(dx, dy), 1e-3)
    radial = np.abs(gx * dx + gy * dy) / (dist * np.maximum(mag, 1e-6))
    ok = ((mag > 0.5 * strong) & (radial > 0.7)).astype(np.uint8)
    ok = cv2.dilate(ok, np.ones((3, 3), np.uint8))   # the centre may be off by a pixel
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    best = 0.0
    for rho in np.arange(max(2.0, HUB_R[0] * r * s), HUB_R[1] * r * s + 1e-6, 1.0):
        xs = np.clip(np.round(cx + rho * np.cos(ang)).astype(int), 0, roi.shape[1] - 1)
        ys = np.clip(np.round(cy + rho * np.sin(ang)).astype(int), 0, roi.shape[0] - 1)
        best = max(best, float(ok[ys, xs].mean()))
    return best


def _face_offset(frame_bgr, x: float, y: float, r: float) -> list[float] | None:
    """[dx, dy] (full-frame px) from the detected circle's centre (x, y), radius r, to the
    centre of the plate's face (see FACE_*): [0, 0] when no point within FACE_SPAN radii is
    clearly more concentric than (x, y) itself; None when the search area leaves the frame."""
    rho = np.linspace(*FACE_RHO[:2], FACE_RHO[2])
    a = int(math.ceil((FACE_SPAN + rho[-1]) * r)) + 4
    grads = _gradients_about(frame_bgr, x, y, r, a, FACE_WORK_R)
    if grads is None:
        return None
    roi, gx, gy, mag, strong, s, cx0, cy0 = grads
    R = r * s
    ang = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    cos_a, sin_a = np.cos(ang), np.sin(ang)
    ring_x, ring_y = (rho * R)[None, :, None] * cos_a, (rho * R)[None, :, None] * sin_a

    def support(cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
        """Mean concentric support about each centre (cx[i], cy[i])."""
        xi = np.clip(np.round(cx[:, None, None] + ring_x).astype(int), 0, roi.shape[1] - 1)
        yi = np.clip(np.round(cy[:, None, None] + ring_y).astype(int), 0, roi.shape[0] - 1)
        m = mag[yi, xi]
        radial = np.abs(gx[yi, xi] * cos_a + gy[yi, xi] * sin_a) / np.maximum(m, 1e-6)
        return ((m > 0.5 * strong) & (radial > 0.85)).mean(axis=2).mean(axis=1)

    c0 = np.array([cx0, cy0])
    base = float(support(c0[:1], c0[1:])[0])
    best, best_c = base, c0
    for step, half in ((0.075 * R, 4), (0.025 * R, 2)):   # coarse grid, then finer about the best
        g = np.arange(-half, half + 1) * step
        dxs, dys = np.meshgrid(g, g, indexing="ij")
        cx, cy = best_c[0] + dxs.ravel(), best_c[1] + dys.ravel()
        keep = np.hypot(cx - c0[0], cy - c0[1]) <= FACE_SPAN * R
        if keep.any():
            sc = support(cx[keep], cy[keep])
            k = int(np.argmax(sc))
            if sc[k] > best:
                best, best_c = float(sc[k]), np.array([cx[keep][k], cy[keep][k]])
    if best - base < FACE_GAIN:
        return [0.0, 0.0]
    return [round(float((best_c[0] - c0[0]) / s), 1), round(float((best_c[1] - c0[1]) / s), 1)]


def _to_face_centre(values: list, raw: list, track_of: dict) -> list:
    """Each position of `values` (the finished track) moved onto the plate's face: per track,
    when at least FACE_MIN_SHARE of its detections (and FACE_MIN_DET) found the face off the
    circle's centre (`_face_offset`: the raw detections' "face" not [0, 0]), the offset is
    fitted as a straight line in the plate's height over those detections, and every position
    of the track is moved by it (within the fitted heights: no extrapolation). Applied last, so
    that which samples have a position, and every check on the track, are as the circles gave
    them."""
    out = list(values)
    tracks: dict = {}
    for k, v in enumerate(raw):
        if isinstance(v, dict) and v.get("face") is not None:
            tracks.setdefault(track_of.get(k), []).append(k)
    for tid, det in tracks.items():
        off = [k for k in det if raw[k]["face"] != [0.0, 0.0]]
        if len(off) < FACE_MIN_DET or len(off) < FACE_MIN_SHARE * len(det):
            continue
        y = np.array([raw[k]["y"] for k in off], float)
        d = np.array([raw[k]["face"] for k in off], float)
        fit = [np.polyfit(y, d[:, c], 1) if np.ptp(y) > 0 else np.array([0.0, float(np.median(d[:, c]))])
               for c in (0, 1)]
        for k, v in enumerate(values):
            if isinstance(v, dict) and v.get("x") is not None and track_of.get(k) == tid:
                yk = float(np.clip(v["y"], y.min(), y.max()))
                out[k] = dict(v, x=round(v["x"] + float(np.polyval(fit[0], yk)), 1),
                              y=round(v["y"] + float(np.polyval(fit[1], yk)), 1))
    return out


def _refine_circle(gx, gy, strong, cx, cy, r, n=64) -> tuple[float, float, float] | None:
    """Sub-pixel circle (cx, cy, r) fitted (least squares) to the strongest radial edge on
    each of n rays within 3 px of the Hough circle's rim; None when fewer than half the rays
    find an edge or the fit moves far from the Hough circle (then keep the Hough circle)."""
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False).astype(np.float32)
    dr = np.arange(-3.0, 3.01, 0.5, dtype=np.float32)
    c, sn = np.cos(ang)[:, None], np.sin(ang)[:, None]
    rad = (r + dr)[None, :]
    mx, my = (cx + rad * c).astype(np.float32), (cy + rad * sn).astype(np.float32)
    sx = cv2.remap(gx, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    sy = cv2.remap(gy, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    g = np.abs(sx * c + sy * sn)
    k = np.argmax(g, axis=1)
    ok = g[np.arange(n), k] > 0.5 * strong
    if ok.sum() < n / 2:
        return None
    px, py = mx[np.arange(n), k][ok].astype(float), my[np.arange(n), k][ok].astype(float)
    A = np.stack([px, py, np.ones_like(px)], axis=1)
    sol, *_ = np.linalg.lstsq(A, px ** 2 + py ** 2, rcond=None)
    fx, fy = sol[0] / 2, sol[1] / 2
    fr2 = sol[2] + fx ** 2 + fy ** 2
    if fr2 <= 0:
        return None
    fr = math.sqrt(fr2)
    if math.hypot(fx - cx, fy - cy) > 0.15 * r or abs(fr / r - 1) > 0.15:
        return None
    return float(fx), float(fy), float(fr)


def _colour_rim_ratio(frame_bgr, s: float, x: float, y: float, r: float, r_max: float,
                      strong: float) -> float | None:
    """The plate's outer rim about a detected circle (x, y, r: full-frame px), seen on the colour
    gradient: the radius, as a multiple of r, of the clearest circle about (x, y) between
    RIM_RATIO[0] and RIM_RATIO[1] x r and no larger than r_max, with rim support (as
    `_rim_support`: share of 48 rim points, 1 px either side, with a gradient above 0.5 x strong
    and radial) >= LOCK_RIM_SUPPORT, beyond the tail of the circle's own edge (the support
    falling from the range's lower end) by RIM_DIP; None when there is none. Works on the frame
    around the circle scaled by s (the Hough work scale); strong: the search window's
    strong-gradient level (its grey gradient's 90th percentile, as for the Hough circles). Per
    pixel the colour channel with the strongest gradient counts, so a rim that differs from its
    background in colour but not in brightness is seen."""
    hi = min(RIM_RATIO[1] * r, r_max)
    if hi <= RIM_RATIO[0] * r:
        return None
    h, w = frame_bgr.shape[:2]
    a = hi + 4 / s
    x0, y0 = int(max(0, x - a)), int(max(0, y - a))
    img = frame_bgr[y0:int(min(h, y + a + 1)), x0:int(min(w, x + a + 1))]
    if s < 1:
        img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    if min(img.shape[:2]) < 8:
        return None
    img = cv2.GaussianBlur(img, (5, 5), 1.2).astype(np.float32)
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
    m2 = gx * gx + gy * gy
    k = np.argmax(m2, axis=2)[..., None]
    gx, gy = np.take_along_axis(gx, k, 2)[..., 0], np.take_along_axis(gy, k, 2)[..., 0]
    mag = np.sqrt(np.take_along_axis(m2, k, 2)[..., 0])
    cx, cy = (x - x0) * s, (y - y0) * s
    yy, xx = np.mgrid[0:mag.shape[0], 0:mag.shape[1]].astype(np.float32)
    dx, dy = xx - cx, yy - cy
    radial = np.abs(gx * dx + gy * dy) / (np.maximum(np.hypot(dx, dy), 1e-3) * np.maximum(mag, 1e-6))
    ok = (mag > 0.5 * strong) & (radial > 0.7)
    hh, ww = ok.shape
    ang = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    rho = np.arange(RIM_RATIO[0] * r * s, hi * s + 1e-6, 0.5)
    hit = np.zeros((len(rho), len(ang)), dtype=bool)
    inside = np.zeros_like(hit)
    for dr in (-1.0, 0.0, 1.0):
        xs = np.round(cx + (rho[:, None] + dr) * np.cos(ang)).astype(int)
        ys = np.round(cy + (rho[:, None] + dr) * np.sin(ang)).astype(int)
        ins = (xs >= 0) & (xs < ww) & (ys >= 0) & (ys < hh)
        inside |= ins
        hit |= ins & ok[np.clip(ys, 0, hh - 1), np.clip(xs, 0, ww - 1)]
    n_in = inside.sum(axis=1)
    support = np.where(n_in >= len(ang) / 2, hit.sum(axis=1) / np.maximum(n_in, 1), 0.0)
    # Skip the tail of the circle's own edge: the support falling from the range's lower end.
    i = 0
    while i + 1 < len(support) and support[i + 1] <= support[i]:
        i += 1
    if i + 1 >= len(support):
        return None
    best = i + int(np.argmax(support[i:]))
    if support[best] < LOCK_RIM_SUPPORT or support[best] - support[i] < RIM_DIP:
        return None
    end = best   # a clear rim holds the best support over a few radii: take the middle
    while end + 1 < len(support) and support[end + 1] >= support[best]:
        end += 1
    return float((rho[best] + rho[end]) / 2 / s / r)


def _with_ratio(m: dict, ratio: float, size) -> dict:
    """Measurement m (with "ring_r", the tracked circle's radius) reporting the plate's rim:
    r = ring_r x ratio, "edge" when that circle reaches the border of a frame of size (w, h)."""
    out = dict(m, r=round(m["ring_r"] * ratio, 1))
    x, y, r = out["x"], out["y"], out["r"]
    if size is not None and (x - r < 0 or y - r < 0 or x + r > size[0] or y + r > size[1]):
        out["edge"] = True
    return out


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
        self._last_detected = None     # frame index of the last detected circle
        self._prev = None              # (frame index, (2,) position) before the last one
        self._support = 0.0
        self._rim_hist: list[float] = []   # rim support of the track's detected circles
        self._ratio_hist: list = []        # outer rim / tracked circle per detection (None: none)
        self._rim_ratio = None             # the track's established outer rim / tracked circle
        self._track_id = 0                 # which track (ring) each measurement came from:
        self._sample_track: dict = {}      # sample index -> track id
        self._track_ratio: dict = {}       # track id -> its established rim ratio
        self._thumb = None             # previous sample's thumbnail (shot cuts)
        self._diffs: list[float] = []
        self._cuts: set[int] = set()   # frame indices where a new shot starts
        self._size = None if info is None else (info.width, info.height)
        self._info = info

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
        if len(self._radius_hist) >= 3:
            r = float(np.median(self._radius_hist[-15:]))
            return (1 - RADIUS_TOL) * r, (1 + RADIUS_TOL) * r
        return PLATE_RADIUS_TORSO[0] * torso_px, PLATE_RADIUS_TORSO[1] * torso_px

    def _shot_cut(self, frame_bgr) -> bool:
        """A new shot starts here: the whole frame changed at once (a thumbnail's mean
        absolute change above CUT_MIN_DIFF and CUT_RELATIVE x the clip's typical change)."""
        h, w = frame_bgr.shape[:2]
        step = max(1, w // 64)
        thumb = frame_bgr[::step, ::step].astype(np.int16)   # a strided view: no resize cost
        prev, self._thumb = self._thumb, thumb
        if prev is None or prev.shape != thumb.shape:
            return False
        diff = float(np.abs(thumb - prev).mean())
        typical = float(np.median(self._diffs)) if len(self._diffs) >= 3 else 0.0
        self._diffs.append(diff)
        return diff > max(CUT_MIN_DIFF, CUT_RELATIVE * typical)

    def _reset(self) -> None:
        """Forget the plate (after a shot cut: another position, maybe another zoom)."""
        self._last = self._last_frame = self._template = self._last_detected = self._prev = None
        self._tracked_run = 0
        self._radius_hist = []
        self._rim_hist = []
        self._ratio_hist = []
        self._rim_ratio = None
        self._track_id += 1

    def analyze(self, frame_index: int, frame_bgr: np.ndarray, person):
        self._frame_indices.append(int(frame_index))
        if self._shot_cut(frame_bgr):
            self._cuts.add(int(frame_index))
            self._reset()
        h, w = frame_bgr.shape[:2]
        kp = None if person is None else np.asarray(person.keypoints, dtype=float)
        torso_px = self._torso(kp)
        wrists = None if kp is None else _wrists(kp)
        if torso_px is None:
            return None
        if self._last_detected is not None and frame_index - self._last_detected > 2 * MAX_GAP_FRAMES:
            self._reset()   # the plate was lost: re-acquire it at any plausible size
        rmin, rmax = self._radius_range(torso_px)
        # Where to look: around the hands, or around the last plate when the hands are lost.
        if wrists is not None:
            centre = wrists.mean(axis=0)
        elif self._last is not None and frame_index - self._last_frame <= MAX_GAP_FRAMES:
            centre = np.array([self._last["x"], self._last["y"]])
        else:
            return None
        reach = HAND_RADIUS_TORSO * torso_px + rmax
        x0, x1 = int(max(0, centre[0] - reach)), int(min(w, centre[0] + reach))
        y0, y1 = int(max(0, centre[1] - reach)), int(min(h, centre[1] + reach))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        s = min(1.0, WORK_RADIUS_PX / ((rmin + rmax) / 2))
        roi = cv2.cvtColor(frame_bgr[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
        if s < 1:
            roi = cv2.resize(roi, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        roi = cv2.GaussianBlur(roi, (5, 5), 1.2)
        found = self._detect(roi, s, (x0, y0), rmin, rmax, wrists, (w, h), frame_index, torso_px)
        if found is not None:
            found["rim"] = round(self._support, 2)
            found["hub"] = round(_hub_support(frame_bgr, found["x"], found["y"], found["r"]), 2)
            if int(frame_index) in self._cuts:
                found["cut"] = True
            self._remember(roi, s, (x0, y0), found, frame_index)
            self._tracked_run = 0
            ratio = _colour_rim_ratio(frame_bgr, s, found["x"], found["y"], found["r"],
                                      PLATE_RADIUS_TORSO[1] * torso_px, self._strong)
            self._note_ratio(ratio)
            # About the plate's outer rim when the track follows an inner ring (see _note_ratio).
            found["face"] = _face_offset(frame_bgr, found["x"], found["y"], found["r"] * (self._rim_ratio or 1.0))
            return self._as_plate(found, (w, h))
        tracked = self._track(frame_bgr, frame_index, wrists)
        if tracked is not None:
            self._tracked_run += 1
            self._last, self._last_frame = tracked, frame_index
            return self._as_plate(tracked, (w, h))
        return tracked

    def _note_ratio(self, ratio: float | None) -> None:
        """A detection's outer rim / tracked circle (None: no rim seen). The track's ratio is
        established once RIM_PERSIST of its last RIM_WINDOW detections agree (see RIM_RATIO);
        it then holds for the whole track, the samples before it too (see `finish`): one
        plate, one ring."""
        self._ratio_hist = (self._ratio_hist + [ratio])[-RIM_WINDOW:]
        found = [x for x in self._ratio_hist if x is not None]
        if len(found) >= RIM_PERSIST:
            ratio = float(np.median(found))
            agree = [x for x in found if abs(x / ratio - 1) <= RIM_RATIO_TOL]
            if len(agree) >= RIM_PERSIST:
                self._rim_ratio = float(np.median(agree))
                self._track_ratio[self._track_id] = self._rim_ratio

    def _as_plate(self, m: dict, size) -> dict:
        """The measurement as reported: with the plate's outer rim's radius when the track
        follows an inner ring and its ratio is established (`_note_ratio`); else as it is.
        "ring_r" keeps the tracked circle's radius."""
        self._sample_track[len(self._frame_indices) - 1] = self._track_id
        out = dict(m, ring_r=m["r"])
        return out if self._rim_ratio is None else _with_ratio(out, self._rim_ratio, size)

    def _detect(self, roi, s, origin, rmin, rmax, wrists, size, frame_index, torso_px):
        """The plate among the Hough circles of the (work-scale) ROI, or None.

        Each circle is scored by its rim support (share of rim points with a strong radial
        gradient: a real plate's rim is a whole circle, a knee or a shadow gives an arc);
        circles of the wrong size for this track, or whose centre is far from the wrists'
        line (the bar is in the hands), are rejected; the rest prefer the wrists and the
        last plate position. A clear circle above the size band, concentric with the track, is
        the plate's outer rim when the track sat on an inner ring (see CONCENTRIC_R).
        """
        minr, maxr = max(4, int(rmin * s)), max(6, int(math.ceil(rmax * s)))
        circles = cv2.HoughCircles(roi, cv2.HOUGH_GRADIENT, dp=1, minDist=max(3, minr // 3),
                                   param1=100, param2=18, minRadius=minr, maxRadius=maxr)
        gx = cv2.Sobel(roi, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(roi, cv2.CV_32F, 0, 1, ksize=3)
        mag = np.hypot(gx, gy)
        strong = max(float(np.percentile(mag, 90)), 8.0)
        r_track = float(np.median(self._radius_hist[-15:])) if len(self._radius_hist) >= 3 else None
        recent = self._last is not None and frame_index - self._last_frame <= MAX_GAP_FRAMES
        expected = self._predict(frame_index) if recent else None
        circles = [] if circles is None else [(cx, cy, r, False) for cx, cy, r in circles[0][:MAX_CIRCLES]]
        outer_max = PLATE_RADIUS_TORSO[1] * torso_px
        if r_track is not None and recent and outer_max > rmax:
            # The plate's outer rim, when the track sits on an inner ring (see CONCENTRIC_R):
            # looked for apart, so that the circles in the band stay as they were.
            outer = cv2.HoughCircles(roi, cv2.HOUGH_GRADIENT, dp=1, minDist=max(3, maxr // 3), param1=100,
                                     param2=18, minRadius=maxr, maxRadius=int(math.ceil(outer_max * s)))
            if outer is not None:
                circles += [(cx, cy, r, True) for cx, cy, r in outer[0][:MAX_CIRCLES]]
        if not circles:
            return None
        cands, outers = [], []
        for cx, cy, r, is_outer in circles:
            x, y, rr = origin[0] + cx / s, origin[1] + cy / s, r / s
            # How far from where the track expects the plate (no recent track: infinitely far).
            off = float(np.hypot(x - expected[0], y - expected[1])) if recent else math.inf
            if is_outer:
                if rr <= (1 + RADIUS_TOL) * r_track or rr > outer_max or off > CONCENTRIC_R * rr:
                    continue
            elif r_track is not None and abs(rr / r_track - 1) > RADIUS_TOL:
                continue
            d = _dist_to_segment(np.array([x, y]), wrists) / rr if wrists is not None else 0.0
            if d > WRIST_MAX_R and off > CONCENTRIC_R * rr:   # off the wrists' line, and not on the track
                continue
            if wrists is not None and (float(wrists[:, 1].mean()) - y) / rr > ABOVE_WRIST_MAX_R:
                continue   # above the hands: the lifter's hips or thighs, not the bar's plate
            support = _rim_support(gx, gy, mag, strong, cx, cy, r)
            if support < MIN_RIM_SUPPORT:
                continue
            # A plate is ~PLATE_RADIUS_TORSO_TYPICAL torso lengths in radius (45 cm on a ~50 cm torso).
            size_off = abs(math.log(rr / (PLATE_RADIUS_TORSO_TYPICAL * torso_px)))
            score = support - 0.25 * max(0.0, d - 0.5) - 0.5 * size_off
            if recent:
                score -= 0.4 * min(off / max(self._last["r"], 1), 1.5)
            if is_outer:
                outers.append((support, score, x, y, rr, cx, cy, r))
                continue
            cands.append((score, x, y, rr, support, cx, cy, r))
        if outers:
            support, score, x, y, rr, cx, cy, r = max(outers)
            track_rim = float(np.median(self._rim_hist[-5:])) if self._rim_hist else 1.0
            if support >= LOCK_RIM_SUPPORT and support > track_rim and all(support > c[4] for c in cands):
                # The track was on an inner ring: take the rim, and its size as the track's at once
                # (a search over every plate size would let the largest concentric circle, the
                # lifter's outline, grow it).
                self._radius_hist, self._rim_hist = [rr] * 3, []
                self._ratio_hist, self._rim_ratio = [], None
                self._track_id += 1
                cands = [(score, x, y, rr, support, cx, cy, r)]
        if not cands:
            return None
        cands.sort(reverse=True)
        _, x, y, rr, support, cx, cy, r = cands[0]
        fit = _refine_circle(gx, gy, strong, cx, cy, r)
        if fit is not None:
            x, y = origin[0] + fit[0] / s, origin[1] + fit[1] / s
        # Concentric circles (the rim and the hub of one plate) are one plate: keep the largest.
        same = [c for c in cands if np.hypot(c[1] - x, c[2] - y) < CONCENTRIC_R * rr]
        rr = max(c[3] for c in same)
        rivals = sum(1 for c in cands if np.hypot(c[1] - x, c[2] - y) > 1.5 * rr)
        out = {"x": round(float(x), 1), "y": round(float(y), 1), "r": round(float(rr), 1), "source": "detected"}
        if x - rr < 0 or y - rr < 0 or x + rr > size[0] or y + rr > size[1]:
            out["edge"] = True
        if rivals:
            out["rivals"] = int(rivals)
        self._support, self._strong = support, strong
        return out

    def _predict(self, frame_index) -> np.ndarray:
        """Where the plate should be now: the last position moved on at the velocity between
        the last two positions (constant velocity)."""
        p = np.array([self._last["x"], self._last["y"]], float)
        if self._prev is not None and self._last_frame > self._prev[0]:
            v = (p - self._prev[1]) / (self._last_frame - self._prev[0])
            p = p + v * (frame_index - self._last_frame)
        return p

    def _remember(self, roi, s, origin, found, frame_index):
        if self._last is not None and self._last_frame is not None:
            self._prev = (self._last_frame, np.array([self._last["x"], self._last["y"]], float))
        # Only clear plates set the track's radius (a doubtful first circle must not lock it).
        if self._support >= LOCK_RIM_SUPPORT:
            self._radius_hist.append(found["r"])
        self._rim_hist.append(self._support)
        self._last_detected = frame_index
        self._last, self._last_frame = found, frame_index
        cx, cy, r = (found["x"] - origin[0]) * s, (found["y"] - origin[1]) * s, found["r"] * s
        a = int(round(0.8 * r))
        x, y = int(round(cx)), int(round(cy))
        if y - a >= 0 and x - a >= 0 and y + a < roi.shape[0] and x + a < roi.shape[1]:
            self._template = (roi[y - a:y + a + 1, x - a:x + a + 1].copy(), s)
        else:
            self._template = None

    def _track(self, frame_bgr, frame_index, wrists=None):
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
        if wrists is not None and (_dist_to_segment(np.array([x, y]), wrists) > WRIST_MAX_R * r
                                   or float(wrists[:, 1].mean()) - y > ABOVE_WRIST_MAX_R * r):
            return None   # the template slid off the bar (onto the background or the body)
        out = {"x": round(float(x), 1), "y": round(float(y), 1), "r": self._last["r"], "source": "tracked"}
        if x - r < 0 or y - r < 0 or x + r > w or y + r > h:
            out["edge"] = True
        return out

    # ------------------------------------------------------------------ whole track
    def finish(self, values: list, keypoints_xy: np.ndarray) -> list:
        frames = self._frame_indices if len(self._frame_indices) == len(values) else list(range(len(values)))
        fps = getattr(self._info, "fps", None) or 30.0
        # A track's rim ratio, once established, holds for its samples before that too.
        values = [_with_ratio(v, self._track_ratio[self._sample_track[k]], self._size)
                  if isinstance(v, dict) and "ring_r" in v and self._sample_track.get(k) in self._track_ratio
                  else v for k, v in enumerate(values)]
        out = smooth_track(values, frames, cuts=self._cuts)
        out = drop_uncoupled_tracks(out, keypoints_xy, frames, fps, raw=values)
        out = drop_plateless_tracks(out, values)
        out = drop_plate_switches(out, values, frames, self._cuts)
        return _to_face_centre(out, values, self._sample_track)


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


def smooth_track(values: list, frame_index, cuts=()) -> list:
    """Kalman-smooth raw per-sample bar measurements (dicts or None) at video frames
    `frame_index`; returns the list written to the pose JSON (see the module docstring).

    A segment ends at a shot cut (`cuts`: video frame indices where a new shot starts), at a
    gap longer than MAX_GAP_FRAMES frames or at a jump the gate rejects
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
    # Neighbouring samples always connect (a frame_stride above MAX_GAP_FRAMES is no gap).
    stride = float(np.min(np.diff(t))) if n > 1 else 1.0
    max_gap = max(MAX_GAP_FRAMES, stride)
    segments, cur = [], [meas[0]]
    cut_at = np.isin(t, np.asarray(sorted(cuts), dtype=float))
    for i in meas[1:]:
        if t[i] - t[cur[-1]] > max_gap or cut_at[cur[-1] + 1:i + 1].any():
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
        # Robust pass: a measurement off the smoothed path by more than ROBUST_R plate radii
        # while its neighbours agree with the path is a wrong circle (an inner ring, a
        # background arc, a template slid off), not the plate; down-weight it and smooth again
        # (a short run of such circles can pull the Kalman path without being gated).
        base_sig = sig.copy()
        for _ in range(ROBUST_ITER):
            res = np.hypot(*(z - pos).T) / r_med
            bad = np.isfinite(res) & (res > ROBUST_R)
            if not bad.any():
                break
            sig = np.where(bad, base_sig * ROBUST_INFLATE, base_sig)
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
            for key in ("edge", "rivals", "cut"):
                if v is not None and v.get(key):
                    rec[key] = v[key]
            out[i] = rec
        # Rejected outliers can leave a gap too long to bridge: no invented positions there.
        kept = [i for i in seg if not rejected[i - a]]
        for p, q in zip(kept[:-1], kept[1:]):
            if t[q] - t[p] > max_gap:
                for i in range(p + 1, q):
                    out[i] = None
    return out


def _tracks(values: list) -> list[list[int]]:
    """Runs of samples with a position, split where the tracker saw a shot cut."""
    runs, cur = [], []
    for i, v in enumerate(values):
        has = isinstance(v, dict) and v.get("x") is not None
        if not has or (v.get("cut") and cur):
            if cur:
                runs.append(cur)
            cur = [i] if has else []
        else:
            cur.append(i)
    if cur:
        runs.append(cur)
    return runs


def hand_coupling(values: list, keypoints_xy: np.ndarray, frame_index, fps: float,
                  idx: list[int]) -> tuple[str, str] | None:
    """None when the track (sample indices idx of `values`) moves with the hands like a
    barbell plate, else (code, why not) (see COUPLE_*). Code "still_short": the hands hardly
    move over a track too short to tell, the one verdict the hand checks cannot settle (the
    plate at rest before a pull, or a pose that lost the hands behind the plate)."""
    kp = np.asarray(keypoints_xy, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        wr = np.nanmean(kp[idx][:, [KP["r_wrist"], KP["l_wrist"]], :], axis=1)
    p = np.array([[values[i]["x"], values[i]["y"]] for i in idx], float)
    r = float(np.median([values[i]["r"] for i in idx]))
    ok = np.isfinite(wr[:, 1])
    if ok.sum() < 3 or r <= 0:
        return "short", "too short to check against the hands"
    p, wr = p[ok], wr[ok]
    off = (p - wr) / r
    inl = np.abs(off[:, 1] - np.median(off[:, 1])) <= COUPLE_INLIER_R
    wy = wr[inl, 1]
    move = float(np.ptp(wy)) / r if inl.sum() >= 3 else 0.0   # inliers: keypoint glitches are out
    t = np.asarray(frame_index, dtype=float)
    dur = (t[idx[-1]] - t[idx[0]]) / fps
    if move >= COUPLE_MOVE_R:
        if inl.mean() < COUPLE_MIN_INLIERS:
            return "inliers", f"its height follows the hands on only {inl.mean():.0%} of the samples"
        corr = float(np.corrcoef(p[inl, 1], wy)[0, 1])
        if not corr >= COUPLE_MIN_CORR:
            return "uncorrelated", f"its height does not follow the hands (correlation {corr:.2f})"
        low = inl & (wr[:, 1] >= np.percentile(wy, 75))
        above = -float(np.median(off[low, 1]))
        if above > COUPLE_ABOVE_R:
            return "above", f"it sits {above:.1f} plate radii above the hands where they are lowest"
        return None
    sd = np.std(off, axis=0)
    if dur < COUPLE_STILL_S:
        return "still_short", f"the hands hardly move over its {dur:.1f} s, too short to tell"
    if sd.max() > COUPLE_STILL_SD:
        return "unsteady", f"its offset from the hands is not steady (sd {sd.max():.2f} plate radii)"
    if -float(np.median(off[:, 1])) > COUPLE_ABOVE_R:
        return "above", "it sits above the hands"
    return None


def split_by_hand_offset(values: list, keypoints_xy: np.ndarray, idx: list[int]) -> list[list[int]]:
    """Split a track (sample indices idx) where its height offset from the wrists changes for
    good: the tracker moved from the plate to something else (or back) without a gap.

    The offset (plate y - wrist y, in plate radii) of a plate stays put while the hands carry
    it. Walking the track, a piece ends where COUPLE_SPLIT_RUN samples in a row lie more
    than COUPLE_INLIER_R radii from the piece's median offset (shorter runs are wrist
    keypoint glitches, common where the plate hides the hands). Samples without wrists join
    the current piece. Returns the pieces (each a list of sample indices, in order).
    """
    kp = np.asarray(keypoints_xy, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        wy = np.nanmean(kp[idx][:, [KP["r_wrist"], KP["l_wrist"]], 1], axis=1)
    r = float(np.median([values[i]["r"] for i in idx]))
    py = np.array([values[i]["y"] for i in idx], float)
    off = (py - wy) / max(r, 1e-6)
    # Wrist keypoint glitches: the offset jumps because the wrists jumped (by more than
    # COUPLE_INLIER_R radii in one sample, twice as far as the plate moved). Such samples say
    # nothing about the plate until the offset comes back to where it was before the jump.
    before = None
    for k in range(1, len(idx)):
        if not (np.isfinite(off[k]) and np.isfinite(wy[k - 1])):
            continue
        if before is not None:
            if abs(off[k] - before) <= COUPLE_INLIER_R:
                before = None
            else:
                off[k] = np.nan
            continue
        dw, dp = wy[k] - wy[k - 1], py[k] - py[k - 1]
        if abs(dw) > COUPLE_INLIER_R * r and abs(dw) > 2 * abs(dp) and np.isfinite(off[k - 1]):
            before, off[k] = off[k - 1], np.nan
    at = {i: k for k, i in enumerate(idx)}
    pieces, cur, cur_off, run = [], [], [], []
    for k, i in enumerate(idx):
        o = off[k]
        if not np.isfinite(o) and run:
            run.append(i)   # between samples that left the piece: goes where they go
            continue
        if not np.isfinite(o) or len(cur_off) < COUPLE_SPLIT_RUN:
            cur.append(i)
            if np.isfinite(o):
                cur_off.append(o)
            continue
        if abs(o - float(np.median(cur_off))) <= COUPLE_INLIER_R:
            cur += run + [i]
            cur_off.append(o)
            run = []
            continue
        run.append(i)
        if sum(np.isfinite(off[at[j]]) for j in run) >= COUPLE_SPLIT_RUN:
            pieces.append(cur)
            cur, run = list(run), []
            cur_off = [off[at[j]] for j in cur if np.isfinite(off[at[j]])]
    cur += run
    if cur:
        pieces.append(cur)
    return pieces


def _plate_evidence(raw: list, idx: list[int]) -> list[float] | None:
    """Rim + hub support (each 0..1, see `_hub_support`) of every detected circle among the raw
    measurements of samples idx that has a hub measure; None when the raw values carry no "rim"
    (older callers: not judged)."""
    det = [raw[i] for i in idx if isinstance(raw[i], dict) and raw[i].get("source") == "detected"]
    if any("rim" not in v for v in det):
        return None
    return [v["rim"] + v["hub"] for v in det if v.get("hub") is not None and np.isfinite(v["hub"])]


def _lifted_plate(values: list, raw: list | None, idx: list[int]) -> bool:
    """Whether the piece idx is a clear plate that rises or falls by itself: at least
    LOST_HANDS_MIN_DET detected circles with a median rim + hub support of at least
    LOST_HANDS_EVIDENCE, travelling LOST_HANDS_TRAVEL_R plate radii up or down."""
    ev = None if raw is None else _plate_evidence(raw, idx)
    if not ev or len(ev) < LOST_HANDS_MIN_DET or float(np.median(ev)) < LOST_HANDS_EVIDENCE:
        return False
    y = np.array([values[i]["y"] for i in idx], float)
    r = float(np.median([values[i]["r"] for i in idx]))
    return float(np.ptp(y)) >= LOST_HANDS_TRAVEL_R * r


def drop_uncoupled_tracks(values: list, keypoints_xy: np.ndarray, frame_index, fps: float,
                          raw: list | None = None) -> list:
    """Replace every stretch of a track (run of positions) that does not move with the hands
    by {"dropped": reason} per sample: not a barbell plate (a kettlebell clip's hips, thighs or
    floor; a circle on the body next to the bar). A track is first split where its offset from
    the hands changes for good (`split_by_hand_offset`: the tracker slid from the plate onto
    the body or the background, or back), and each piece is checked on its own, so a good
    stretch is kept when another stretch of the same track is not."""
    out = list(values)
    pieces = [(n, piece) for n, idx in enumerate(_tracks(values))
              for piece in split_by_hand_offset(values, keypoints_xy, idx)]
    why = [hand_coupling(values, keypoints_xy, frame_index, fps, idx) for _, idx in pieces]
    t = np.asarray(frame_index, dtype=float)
    kept = [(n, idx) for (n, idx), w in zip(pieces, why) if w is None]
    for (n, idx), w in zip(pieces, why):
        if w is None:
            continue
        code, text = w
        # The plate at rest just before / after a checked pull of the same plate, in another
        # track (a piece of the same track was split off because its offset changed).
        if code == "still_short" and any(m != n and _continues(values, t, fps, idx, k) for m, k in kept):
            continue
        # The wrist keypoints stay put while a clear plate rises or falls by more than its radius:
        # the pose lost the hands behind the plate, not the tracker the bar (see LOST_HANDS_*).
        if code == "still_short" and _lifted_plate(values, raw, idx):
            continue
        for i in idx:
            out[i] = {"dropped": text}
    return out


def drop_plateless_tracks(values: list, raw: list) -> list:
    """Replace every track (run of positions in `values`) whose circles do not look like a
    plate by {"dropped": reason} per sample: fewer than PLATE_EVIDENCE_MIN_DET detected
    circles, or their median rim + hub support (the raw measurements' "rim" and "hub", see
    `_hub_support`) below PLATE_EVIDENCE_MIN. A plate shows a clear rim and a hub at its
    centre; a circle put together from a lifter's outline, a kettlebell and the floor has a
    weak rim and nothing at its centre. Raw values without "rim" (older callers) are not judged."""
    out = list(values)
    for idx in _tracks(values):
        ev = _plate_evidence(raw, idx)
        if ev is None:
            continue
        if len(ev) < PLATE_EVIDENCE_MIN_DET:
            why = f"only {len(ev)} clear circle(s) in the track, too few to tell a plate"
        elif float(np.median(ev)) < PLATE_EVIDENCE_MIN:
            why = f"no plate rim and hub (evidence {float(np.median(ev)):.2f} < {PLATE_EVIDENCE_MIN})"
        else:
            continue
        for i in idx:
            out[i] = {"dropped": why}
    return out


def drop_plate_switches(values: list, raw: list, frame_index, cuts=()) -> list:
    """Cut every kept track (run of positions in `values`) where its raw detections switch
    from one plate to another (see SWITCH_JUMP_R) and keep only the piece with the most
    detections: the others become {"dropped": reason}, and the kept piece is smoothed again
    without them (the smoother had joined the two plates into one path)."""
    t = np.asarray(frame_index, dtype=float)
    drop = {}
    for idx in _tracks(values):
        det = [i for i in idx if isinstance(raw[i], dict) and raw[i].get("source") == "detected"]
        at = []
        for j in range(SWITCH_RUN, len(det) - SWITCH_RUN + 1):
            p, k = det[j - 1], det[j]
            a, b = raw[p], raw[k]
            r = min(a["r"], b["r"])
            if t[k] - t[p] > MAX_GAP_FRAMES or math.hypot(a["x"] - b["x"], a["y"] - b["y"]) < SWITCH_JUMP_R * r:
                continue
            steady = all(math.hypot(raw[i]["x"] - c["x"], raw[i]["y"] - c["y"]) <= SWITCH_STEADY_R * r
                         for side, c in ((det[j - SWITCH_RUN:j], a), (det[j:j + SWITCH_RUN], b)) for i in side)
            if steady:
                at.append(k)
        if not at:
            continue
        bounds = [idx[0]] + at + [idx[-1] + 1]
        pieces = [[i for i in idx if lo <= i < hi] for lo, hi in zip(bounds[:-1], bounds[1:])]
        detected = set(det)
        keep = max(pieces, key=lambda pc: len(detected.intersection(pc)))
        for pc in pieces:
            if pc is not keep:
                for i in pc:
                    drop[i] = (f"the track jumped from one plate to another at sample {at[0]}: only its "
                               "longer piece is kept")
    if not drop:
        return values
    again = smooth_track([None if i in drop else v for i, v in enumerate(raw)], frame_index, cuts=cuts)
    out = list(values)
    # The kept pieces of the tracks that were cut take the new smoothing; other tracks stay.
    cut = {i for idx in _tracks(values) if not drop.keys().isdisjoint(idx) for i in idx}
    for i in cut:
        out[i] = {"dropped": drop[i]} if i in drop else again[i]
    return out


def _continues(values, t, fps, idx, other) -> bool:
    """Track idx (hands still) ends within COUPLE_STILL_S of track `other` (which passed the
    check), at the same place (within one plate radius) and size (RADIUS_TOL): one plate,
    broken by a short gap."""
    for a, b in ((idx[-1], other[0]), (other[-1], idx[0])):
        if 0 < t[b] - t[a] <= COUPLE_STILL_S * fps:
            va, vb = values[a], values[b]
            r = max(va["r"], vb["r"])
            if math.hypot(va["x"] - vb["x"], va["y"] - vb["y"]) <= r and abs(va["r"] / vb["r"] - 1) <= RADIUS_TOL:
                return True
    return False


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


# ----------------------------------------------------------------------------- analysis

def bar_positions(seq) -> tuple[np.ndarray, np.ndarray, list]:
    """(T, 2) plate centre px (NaN = none), (T,) radius px (NaN = none), and the raw values
    of seq.frame_extras["bar"] (a list of None when the pose file has no bar field)."""
    values = list((getattr(seq, "frame_extras", None) or {}).get("bar") or [None] * len(seq))
    if len(values) != len(seq):
        raise ValueError(f"bar field has {len(values)} values for {len(seq)} frames; re-extract the video")
    xy = np.full((len(seq), 2), np.nan)
    r = np.full(len(seq), np.nan)
    for k, v in enumerate(values):
        if isinstance(v, dict) and v.get("x") is not None:
            xy[k] = v["x"], v["y"]
            r[k] = v.get("r", np.nan)
    return xy, r, values


def _torso_scale(seq) -> float:
    tl = torso_length(np.asarray(seq.keypoints_xy, dtype=float))
    tl = tl[np.isfinite(tl) & (tl > 0)]
    return float(np.percentile(tl, 90)) if tl.size else float("nan")


def _plate_scale(seq, xy, r, values) -> tuple[float | None, str]:
    """Pixels per cm from the detected plate's diameter (PLATE_DIAMETER_CM assumed), or None
    with the reason. Only circles fully inside the frame count."""
    rr = np.array([v["r"] for v in values if isinstance(v, dict) and v.get("source") == "detected"
                   and not v.get("edge")], float)
    if rr.size < 5:
        return None, "too few full plate detections to set the scale"
    torso = _torso_scale(seq)
    ratio = float(np.median(rr)) / torso if np.isfinite(torso) else float("nan")
    if np.isfinite(ratio) and not (PLATE_RADIUS_TORSO[0] <= ratio <= PLATE_RADIUS_TORSO[1]):
        return None, f"plate radius {ratio:.2f} torso lengths is not a standard plate's size"
    return 2 * float(np.median(rr)) / PLATE_DIAMETER_CM, "ok"


def _concentric(y: np.ndarray, t: np.ndarray, a: int, b: int, tol_px: float) -> tuple[int, int] | None:
    """Lift-off and lockout sample indices of the bar in samples a..b (inclusive): the last
    sample near the lowest bar level before the highest point, and the first sample near the
    highest level. None when the bar was not seen enough."""
    idx = np.arange(a, b + 1)
    ok = idx[np.isfinite(y[idx])]
    if ok.size < 3:
        return None
    top = ok[np.argmin(y[ok])]               # image y grows downwards: min y = highest
    before = ok[ok <= top]
    low = np.percentile(y[before], 90)      # not the max: one low outlier would set lift-off
    lift = before[np.flatnonzero(y[before] >= low - tol_px)[-1]]
    high = float(y[top])
    lock = ok[(ok >= lift) & (y[ok] <= high + tol_px)][0]
    if lock <= lift:
        return None
    return int(lift), int(lock)


def _lockout_seen(y: np.ndarray, seen: np.ndarray, lock: int, last: int, end: int, tol_px: float) -> bool:
    """Whether the bar's highest point in samples ..last (its lockout sample `lock`, from
    `_concentric`) is the rep's real top: the bar is seen again after it, within the rep (..end),
    and no higher than tol_px above it. A track that breaks off while the bar rises (the
    plate lost mid-pull) would otherwise give a short pull and a wrong speed."""
    top = lock + int(np.argmin(np.where(seen[lock:last + 1], y[lock:last + 1], np.inf)))
    after = np.flatnonzero(seen[top + 1:end + 1])
    return after.size > 0 and y[top + 1 + after[0]] >= y[top] - tol_px


def bar_summary(seq, reps, view: str | None = None) -> dict:
    """The report's "bar" section for a PoseSequence with a bar track and its reps.

    reps: deadlift_utils.reps.Rep list. view: the camera view ("front" | "middle" | "side"),
    used only for notes. Returns {"measured": bool, "units": {"distance", "speed"},
    "scale": {...}, "tracked_share_pull": share of pull samples (rep.pull_start..top_start)
    with a bar position, "reps": [{"rep", "concentric_s", "mean_speed", "peak_speed",
    "max_from_start", "max_from_midfoot", "sway", "tracked_share"}...], "notes": [...]}.
    Distances in cm and speeds in m/s when the plate gives the scale, else torso lengths and
    torso lengths per second. Speeds are along the path (2D), mean = path length / time.
    """
    notes: list[str] = []
    xy, r, values = bar_positions(seq)
    has_field = "bar" in (getattr(seq, "frame_extras", None) or {})
    T = len(seq)
    t = np.asarray(seq.time_s, dtype=float)
    out = {"measured": False, "units": None, "scale": None, "tracked_share_pull": 0.0, "reps": [],
           "source_counts": {}, "notes": notes}
    if not has_field:
        notes.append("the pose file has no bar track (extracted without BarTracker): the bar "
                     "is approximated by the wrists")
        return out
    pull = np.zeros(T, dtype=bool)
    for rep in reps:
        pull[rep.pull_start:rep.top_start + 1] = True
    seen = np.isfinite(xy[:, 0])
    out["tracked_share_pull"] = round(float(seen[pull].mean()), 3) if pull.any() else round(float(seen.mean()), 3)
    srcs = [v.get("source") for v in values if isinstance(v, dict)]
    out["source_counts"] = {s: srcs.count(s) for s in ("detected", "tracked", "smoothed") if s in srcs}
    if view == "front":
        # Seen from the front the plates are edge-on and the bar is a horizontal line: its path
        # towards / away from the camera cannot be seen, and a left/right tilt was not measured
        # (no front-view barbell clip to check it on). Say so rather than report a path.
        notes.append("bar path not measured in front view (the plates are edge-on; the bar's "
                     "tilt is not measured either): the wrists stand in for the bar")
        return out
    if not seen.any():
        if any(isinstance(v, dict) and v.get("dropped") for v in values):
            # Circles were seen and judged not a plate: a kettlebell lifter's outline, or a plate
            # the detector could not tell from its background (tutorial_dev good_06/07: a grey
            # plate on a grey wall under drawn overlays). Say both, not "no barbell".
            notes.append("no barbell plate followed: plate-like circles near the hands were seen, but none "
                         "moved with the hands like a bar's plate (a kettlebell or dumbbell has no plate; a "
                         "plate that blends into the background can be missed): the wrists stand in for the bar")
        else:
            notes.append("no barbell found (no plate-sized circle near the hands): the wrists "
                         "stand in for the bar (a kettlebell or dumbbell lift has no plate)")
        _note_dropped(values, notes)
        return out
    _note_dropped(values, notes)
    # Share of each rep's pull samples with a bar position (None: a rep with no pull samples).
    pulls = [seen[rep.pull_start:rep.top_start + 1] for rep in reps]
    rep_shares = [round(float(p.mean()), 3) if p.size else None for p in pulls]
    judged = [x for x in rep_shares if x is not None]
    if judged and (max(judged) < MIN_TRACKED_SHARE or out["tracked_share_pull"] < MIN_PATH_SHARE):
        # A barbell is in the hands through every pull. Plate-like circles in a few frames, through
        # no rep's pull or in under a quarter of all pull frames, are not a path to show (on
        # kettlebell clips such stray circles are the lifter's outline or the floor).
        notes.append(f"no barbell path: a plate-like circle was found in only {out['tracked_share_pull']:.0%} "
                     f"of pull frames: the wrists stand in for the bar")
        return out
    if view == "middle":
        notes.append("45-degree view: horizontal distances are foreshortened (about x0.7)")
    if any(isinstance(v, dict) and v.get("edge") for v in values):
        notes.append("the plate reaches the frame border in some frames (partly out of frame): "
                     "those positions are less certain")
    riv = [v.get("rivals", 0) for v in values if isinstance(v, dict) and v.get("x") is not None]
    if riv and np.mean([x > 0 for x in riv]) > 0.2:
        notes.append("other plate-sized circles near the hands (a second plate, a rack behind the "
                     "lifter): the one nearest the track was kept")
    if pull.any() and out["tracked_share_pull"] < MIN_TRACKED_SHARE:
        notes.append(f"the bar was found in only {out['tracked_share_pull']:.0%} of pull frames")

    px_per_cm, why = _plate_scale(seq, xy, r, values)
    torso = _torso_scale(seq)
    if px_per_cm is not None:
        unit_px, dist_unit, speed_unit = px_per_cm, "cm", "m/s"
        speed_factor = 0.01   # cm/s -> m/s
        out["scale"] = {"px_per_cm": round(px_per_cm, 3), "plate_diameter_cm": PLATE_DIAMETER_CM,
                        "assumed": True, "method": "detected plate diameter; plate size assumed "
                        f"{PLATE_DIAMETER_CM:.0f} cm (standard 20-25 kg plate)"}
    else:
        unit_px, dist_unit, speed_unit, speed_factor = torso, "torso lengths", "torso lengths/s", 1.0
        out["scale"] = {"torso_px": round(torso, 1) if np.isfinite(torso) else None, "assumed": False,
                        "method": f"torso length ({why})"}
        notes.append(f"scale unknown ({why}): distances in torso lengths")
    out["units"] = {"distance": dist_unit, "speed": speed_unit}
    out["measured"] = True
    facing = _facing(seq)
    kp = np.asarray(seq.keypoints_xy, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ankle_x = np.nanmean(kp[:, [KP["r_ankle"], KP["l_ankle"]], 0], axis=1)
    r_med = float(np.nanmedian(r))
    for rep, share in zip(reps, rep_shares):
        row = {"rep": int(rep.index), "tracked_share": share, "concentric_s": None, "mean_speed": None,
               "peak_speed": None, "max_from_start": None, "max_from_midfoot": None, "sway": None}
        out["reps"].append(row)
        if row["tracked_share"] is not None and row["tracked_share"] < MIN_TRACKED_SHARE:
            # A kept stretch before or after the pull (the bar at rest) has no pull speed to give.
            notes.append(f"rep {row['rep']}: the bar was found in only {row['tracked_share']:.0%} of its "
                         "pull frames: no bar figures for it")
            continue
        tol = REST_TOL_DIAM * 2 * r_med
        conc = _concentric(xy[:, 1], t, rep.start, min(rep.top_end, T - 1), tol)
        if conc is None:
            continue
        a, b = conc
        k = np.flatnonzero(seen[rep.start:b + 1]) + rep.start
        if k[0] > rep.start and xy[k[0], 1] - xy[k[1], 1] > 2 * tol:
            # The track begins after the rep did, with the bar already rising at its first two
            # positions: lift-off was not seen (tutorial_dev bad_01: the plate found mid-pull).
            notes.append(f"rep {row['rep']}: the bar's track starts after lift-off: no bar speed or "
                         "distances for it")
            continue
        if not _lockout_seen(xy[:, 1], seen, b, min(rep.top_end, T - 1), min(rep.end, T - 1), tol):
            notes.append(f"rep {row['rep']}: the bar's track breaks off before lockout (the plate "
                         "was lost while it may still have been rising): no bar speed or distances for it")
            continue
        seg = np.arange(a, b + 1)
        ok = seg[np.isfinite(xy[seg, 0])]
        if ok.size < 3 or t[b] <= t[a]:
            continue
        side_px = xy[ok, 0] - xy[ok[0], 0]    # sideways from the start, px
        reach = float(np.max(np.abs(side_px)))
        if reach > MAX_DRIFT_R * r_med:
            notes.append(f"rep {row['rep']}: the tracked bar moves {reach / r_med:.1f} plate radii sideways during "
                         "the pull, more than a loaded deadlift allows (the track likely went from the plate to "
                         "another object, or the camera moved): no bar speed or distances for it")
            continue
        p = xy[ok] / unit_px
        tt = t[ok]
        step = np.linalg.norm(np.diff(p, axis=0), axis=1)
        # Peak speed over a window of >= PEAK_WINDOW_S: frame-to-frame steps amplify jitter.
        h = max(1, int(np.ceil(PEAK_WINDOW_S / 2 / max(float(np.median(np.diff(tt))), 1e-6))))
        v = (np.linalg.norm(p[2 * h:] - p[:-2 * h], axis=1) / (tt[2 * h:] - tt[:-2 * h])
             if len(p) > 2 * h else np.array([]))
        # Lift-off and lockout happen between the last sample at rest and the first one
        # moving (and the other way round at the top); the window a..b ends on samples that
        # already moved, so its length is short by about half a sample at each end (at
        # stride 2 on a 1 s pull that alone made the mean speed ~6% high). Add that half.
        ext = 0.5 * ((t[a] - t[a - 1] if a > 0 else 0.0) + (t[b + 1] - t[b] if b + 1 < T else 0.0))
        row["concentric_s"] = round(float(t[b] - t[a] + ext), 3)
        row["mean_speed"] = round(float(step.sum() / (tt[-1] - tt[0] + ext) * speed_factor), 3)
        row["peak_speed"] = round(float(np.max(v) * speed_factor), 3) if v.size else None
        dx = side_px * facing / unit_px
        row["max_from_start"] = round(float(np.max(np.abs(dx))), 2)
        row["sway"] = round(float(np.max(dx) - np.min(dx)), 2)
        mf = (xy[ok, 0] - ankle_x[ok]) * facing / unit_px
        if np.isfinite(mf).any():
            row["max_from_midfoot"] = round(float(mf[np.nanargmax(np.abs(mf))]), 2)
        row["lift_off_s"], row["lockout_s"] = round(float(t[a]), 3), round(float(t[b]), 3)
    speeds = [x["mean_speed"] for x in out["reps"] if x["mean_speed"] is not None]
    if len(speeds) >= 2:
        out["speed_change"] = round((speeds[-1] - speeds[0]) / speeds[0], 3) if speeds[0] else None
    if not reps:
        notes.append("no reps counted: no per-rep bar figures")
    return out


def _note_dropped(values: list, notes: list) -> None:
    dropped = [v["dropped"] for v in values if isinstance(v, dict) and v.get("dropped")]
    if dropped:
        notes.append(f"{len(dropped)} sample(s) of plate-like circles were dropped as not the barbell's "
                     f"plate (e.g. {dropped[0]})")


def _facing(seq) -> int:
    from .rules import facing_sign

    return facing_sign(np.asarray(seq.keypoints_xy, dtype=float))


_REP_COLOURS = [(0, 255, 255), (255, 0, 255), (0, 200, 0), (255, 160, 0), (0, 128, 255), (200, 200, 255)]


class BarTrail:
    """The plate centre's trail, drawn sample by sample onto successive frames (the annotated
    video), coloured by rep. Each segment is drawn once onto a layer that is copied onto every
    frame, so a frame of a long set costs what a frame of a short one does (redrawing the whole
    trail on every frame grows with the square of the video's length: ~3.5 ms a frame at 900
    samples, ~35 ms at 9000).

    size: (w, h) of the frames; scale: multiplies the positions (a resized frame); rep_of: (T,)
    int rep number per sample (0 = outside any rep, drawn grey), e.g. from `rep_of_samples`;
    None draws one colour. A gap breaks the line. The current position gets a dot and a circle
    of the plate's size.
    """

    def __init__(self, seq, size: tuple[int, int], scale: float = 1.0, rep_of=None):
        self.xy, self.r, _ = bar_positions(seq)
        self.scale, self.rep_of = float(scale), rep_of
        w, h = int(size[0]), int(size[1])
        self.layer = np.zeros((h, w, 3), np.uint8)
        self.mask = np.zeros((h, w), np.uint8)
        self.th = max(2, round(min(h, w) / 250))
        self.drawn = 0   # segments up to this sample are on the layer

    def _point(self, i: int) -> tuple[int, int]:
        p = (self.xy[i] * self.scale).astype(int)
        return int(p[0]), int(p[1])

    def draw(self, frame_bgr: np.ndarray, k: int) -> np.ndarray:
        """Draw the trail from the first sample up to sample k onto `frame_bgr` (in place;
        k must not go back) and return it."""
        k = min(int(k), len(self.xy) - 1)
        for i in range(max(self.drawn, 1), k + 1):
            if np.isfinite(self.xy[i - 1, 0]) and np.isfinite(self.xy[i, 0]):
                n = 1 if self.rep_of is None else int(self.rep_of[i])
                col = (160, 160, 160) if n <= 0 else _REP_COLOURS[(n - 1) % len(_REP_COLOURS)]
                p, q = self._point(i - 1), self._point(i)
                cv2.line(self.layer, p, q, col, self.th, cv2.LINE_AA)
                cv2.line(self.mask, p, q, 255, self.th, cv2.LINE_8)
        self.drawn = max(self.drawn, k + 1)
        cv2.copyTo(self.layer, self.mask, frame_bgr)
        if k >= 0 and np.isfinite(self.xy[k, 0]):
            c = self._point(k)
            cv2.circle(frame_bgr, c, self.th + 2, (255, 255, 255), -1, cv2.LINE_AA)
            if np.isfinite(self.r[k]):
                cv2.circle(frame_bgr, c, int(self.r[k] * self.scale), (255, 255, 255), 1, cv2.LINE_AA)
        return frame_bgr


def draw_bar_path(frame_bgr: np.ndarray, seq, k: int, scale: float = 1.0, rep_of=None) -> np.ndarray:
    """Draw the plate centre's trail from the first sample up to sample k onto `frame_bgr`
    (in place), as `BarTrail` draws it; for one picture (a contact sheet). Returns the frame."""
    h, w = frame_bgr.shape[:2]
    return BarTrail(seq, (w, h), scale, rep_of).draw(frame_bgr, k)


def rep_of_samples(reps, n: int) -> np.ndarray:
    """(n,) int: the rep number of each sample (rep.start..rep.end), 0 outside reps."""
    out = np.zeros(n, dtype=int)
    for rep in reps:
        out[rep.start:rep.end + 1] = rep.index
    return out


def plot_bar_speed(summary: dict, path) -> Path | None:
    """Mean and peak concentric bar speed per rep (does the bar slow down across the set?),
    saved as a PNG at `path`. Returns the path, or None when no rep has a speed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [x for x in summary.get("reps", []) if x.get("mean_speed") is not None]
    if not rows:
        return None
    unit = (summary.get("units") or {}).get("speed", "")
    n = [x["rep"] for x in rows]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(n, [x["mean_speed"] for x in rows], "o-", label="mean concentric speed")
    ax.plot(n, [x["peak_speed"] for x in rows], "s--", alpha=0.7, label="peak speed")
    ax.set_xlabel("rep")
    ax.set_ylabel(f"bar speed ({unit})")
    ax.set_xticks(n)
    ax.set_ylim(bottom=0)
    ax.set_title("Bar speed per rep")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
