"""Rep segmentation with hysteresis, and the phases of each rep.

The lift signal is the height of the shoulders above the ankles (image y grows downwards),
in torso lengths, so it is the same in every camera view (a turn of the camera about the
vertical axis does not change heights) and does not need the hip angle, which a front view
cannot see. The signal is high when the lifter stands (lockout) and low at the floor.

A rep is counted when the signal climbs from the bottom zone into the top zone. Two
thresholds (hysteresis) between the video's low and high levels keep jitter from adding
reps: the signal has to fall all the way back into the bottom zone before another pull
can count. Works on any sampling (every frame, or every 5th frame) because it uses time_s.

Phases of a rep (times in seconds, from the same thresholds):
  setup    - in the bottom zone before the pull (from the rep start to leaving the bottom),
  pull     - leaving the bottom zone until reaching the top zone,
  lockout  - in the top zone,
  lowering - leaving the top zone until back in the bottom zone (or the end of the clip).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .keypoints import KP, shoulder_centre, torso_length

# Share of the video's low-to-high range: below BOTTOM is the floor zone, above TOP lockout.
BOTTOM_FRACTION = 0.3
TOP_FRACTION = 0.7
# The video's floor and lockout levels: robust percentiles of the smoothed signal (a pose
# glitch when the lifter re-enters the frame must not define the floor).
LOW_PERCENTILE = 3
HIGH_PERCENTILE = 97
# The smallest rise (torso lengths) that counts as a pull; anything less is swaying.
MIN_RANGE_TORSO = 0.25
# Moving-median window applied to the signal before thresholding (seconds).
SMOOTH_S = 0.3
# A shoulder cannot rise or fall faster than this (torso lengths per second); faster jumps
# are detection glitches (a limb swapped, another person) and are dropped.
MAX_SPEED_TORSO_PER_S = 4.0
JUMP_TOLERANCE_TORSO = 0.2
# After this long with every sample rejected, the gate re-anchors on the new level.
REANCHOR_S = 1.0
# However long the gap, the level never moves more than this between accepted samples.
MAX_JUMP_TORSO = 1.0
# Feet further than this from the floor level (torso lengths) mean a wrong skeleton.
MAX_FOOT_OFF_FLOOR_TORSO = 0.5
# A gap at least this long, entered while rising, is read as the lifter out of frame at the top.
MIN_TOP_GAP_S = 0.3
# Gaps in the signal up to this long are bridged by linear interpolation (seconds).
MAX_GAP_S = 0.6
PHASES = ("setup", "pull", "lockout", "lowering")


@dataclass
class Rep:
    """One repetition: sample indices and times (s) of its phases."""

    index: int                  # 1-based rep number
    start: int                  # sample index where the rep starts (start of setup)
    pull_start: int             # leaves the bottom zone
    top_start: int              # enters the top zone (the rep is counted here)
    top_end: int                # last sample in the top zone
    end: int                    # back in the bottom zone, or the last sample
    start_s: float = 0.0
    pull_start_s: float = 0.0
    top_start_s: float = 0.0
    top_end_s: float = 0.0
    end_s: float = 0.0
    complete: bool = True       # False when the clip ends before the lowering is over
    top_inferred: bool = False  # the lockout was out of frame (lifter lost while rising)
    phases: dict = field(default_factory=dict)  # phase -> (start_s, end_s)

    def to_dict(self) -> dict:
        return asdict(self)

    def phase_mask(self, n: int, phase: str | None = None) -> np.ndarray:
        """(n,) bool: the samples of this rep (or of one of its phases)."""
        bounds = {
            None: (self.start, self.end),
            "setup": (self.start, self.pull_start),
            "pull": (self.pull_start, self.top_start),
            "lockout": (self.top_start, self.top_end),
            "lowering": (self.top_end, self.end),
        }
        if phase not in bounds:
            raise ValueError(f"unknown phase {phase!r}; use one of {PHASES} or None")
        a, b = bounds[phase]
        m = np.zeros(n, dtype=bool)
        m[a:b + 1] = True
        return m


def _interpolate_gaps(t: np.ndarray, y: np.ndarray, max_gap_s: float) -> np.ndarray:
    """Fill NaN runs no longer than max_gap_s by linear interpolation in time."""
    y = y.copy()
    ok = np.isfinite(y)
    if ok.sum() < 2:
        return y
    filled = np.interp(t, t[ok], y[ok])
    # Only fill inside short gaps; long gaps (lifter out of frame) stay missing.
    idx = np.flatnonzero(ok)
    for a, b in zip(idx[:-1], idx[1:]):
        if b - a > 1 and t[b] - t[a] <= max_gap_s:
            y[a + 1:b] = filled[a + 1:b]
    return y


def _reject_jumps(t: np.ndarray, y: np.ndarray) -> np.ndarray:
    """NaN out samples that jump away from the last accepted one faster than a body can move.

    Starts from the median of the first second so a glitch in frame 0 cannot anchor the gate.
    """
    y = y.copy()
    ok = np.flatnonzero(np.isfinite(y))
    if ok.size < 3:
        return y
    first = ok[t[ok] <= t[ok[0]] + 1.0]
    anchor_v, anchor_t = float(np.median(y[first])), float(t[ok[0]])
    rejected_since = None
    for i in ok:
        limit = min(MAX_SPEED_TORSO_PER_S * (t[i] - anchor_t) + JUMP_TOLERANCE_TORSO, MAX_JUMP_TORSO)
        if abs(y[i] - anchor_v) <= limit or (rejected_since is not None and t[i] - rejected_since >= REANCHOR_S):
            anchor_v, anchor_t, rejected_since = float(y[i]), float(t[i]), None
        else:
            if rejected_since is None:
                rejected_since = float(t[i])
            y[i] = np.nan
    return y


def _moving_median(t: np.ndarray, y: np.ndarray, window_s: float) -> np.ndarray:
    """Centred moving median over a time window, ignoring NaN."""
    out = np.full_like(y, np.nan)
    half = window_s / 2
    lo = np.searchsorted(t, t - half, side="left")
    hi = np.searchsorted(t, t + half, side="right")
    for i in range(len(y)):
        w = y[lo[i]:hi[i]]
        w = w[np.isfinite(w)]
        if w.size and np.isfinite(y[i]):
            out[i] = np.median(w)
    return out


def lift_signal(keypoints_xy: np.ndarray, time_s: np.ndarray | None = None) -> np.ndarray:
    """(T,) height of the shoulders above the feet in torso lengths (NaN where unknown).

    Feet = mean of the ankles seen in a frame; where no ankle is seen the video's median
    ankle height is used (the feet stay on the floor in a deadlift). Scale = the video's
    90th-percentile torso length, so the signal does not shrink when the torso leans.
    """
    kp = np.asarray(keypoints_xy, dtype=float)
    if kp.ndim != 3 or kp.shape[1:] != (18, 2):
        raise ValueError(f"keypoints_xy should have shape (T, 18, 2), got {kp.shape}")
    T = len(kp)
    if T == 0:
        return np.zeros(0)
    sh_y = shoulder_centre(kp)[:, 1]
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ankle_y = np.nanmean(kp[:, [KP["r_ankle"], KP["l_ankle"]], 1], axis=1)
            foot_level = np.nanmedian(ankle_y) if np.isfinite(ankle_y).any() else np.nan
    tl = torso_length(kp)
    tl = tl[np.isfinite(tl) & (tl > 0)]
    if tl.size == 0:
        return np.full(T, np.nan)
    scale = float(np.percentile(tl, 90))
    if np.isfinite(foot_level):
        # Feet far off the floor: the skeleton is another person or a glitch; drop the frame.
        glitch = np.abs(ankle_y - foot_level) > MAX_FOOT_OFF_FLOOR_TORSO * scale
        # The floor does not move: the per-video level is steadier than per-frame ankles.
        ankle_y = np.full(T, foot_level)
        ankle_y[glitch] = np.nan
    else:
        # No feet at all (tight framing): heights relative to the image's bottom edge.
        ankle_y = np.full(T, 0.0)
    sig = (ankle_y - sh_y) / scale
    if not np.isfinite(foot_level):
        sig = -sh_y / scale
    return sig


@dataclass
class RepResult:
    """The outcome of segment_reps: the reps plus the signal and thresholds behind them."""

    reps: list
    signal: np.ndarray           # (T,) smoothed lift signal, torso lengths
    time_s: np.ndarray           # (T,)
    low: float
    high: float
    bottom_threshold: float
    top_threshold: float
    reason: str | None = None    # why no reps could be counted, when that is the case

    @property
    def count(self) -> int:
        return len(self.reps)

    def phase_labels(self) -> np.ndarray:
        """(T,) object array: phase name of each sample, '' outside any rep."""
        lab = np.full(len(self.signal), "", dtype=object)
        for r in self.reps:
            for ph in PHASES:
                lab[r.phase_mask(len(lab), ph)] = ph
        return lab

    def rep_of_sample(self) -> np.ndarray:
        """(T,) int: rep number (1-based) of each sample, 0 outside any rep."""
        out = np.zeros(len(self.signal), dtype=int)
        for r in self.reps:
            out[r.phase_mask(len(out))] = r.index
        return out


def segment_reps(keypoints_xy: np.ndarray, time_s: np.ndarray, *,
                 bottom_fraction: float = BOTTOM_FRACTION, top_fraction: float = TOP_FRACTION,
                 min_range_torso: float = MIN_RANGE_TORSO, smooth_s: float = SMOOTH_S,
                 signal: np.ndarray | None = None) -> RepResult:
    """Count reps and split them into phases.

    keypoints_xy: (T, 18, 2) pixels, NaN = missing; time_s: (T,) increasing seconds.
    `signal` overrides the lift signal (T,) (higher = more upright), e.g. for tests.
    Returns a RepResult; reps is empty (with `reason`) when the lift is not visible.
    Raises ValueError for a time axis that is not 1-D, finite and strictly increasing, or
    for keypoints/signal whose shape does not match it.
    """
    t = np.asarray(time_s, dtype=float)
    if t.ndim != 1:
        raise ValueError(f"time_s should be a 1-D series of seconds, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("time_s has NaN or infinite times; every sample needs a real time")
    if signal is None:
        raw = lift_signal(keypoints_xy, t)
    else:
        raw = np.asarray(signal, dtype=float)
    if raw.shape != t.shape:
        raise ValueError(f"signal has {raw.shape} samples but time_s has {t.shape}")
    if len(t) > 1 and np.any(np.diff(t) <= 0):
        raise ValueError("time_s must be strictly increasing (sorted frames)")
    if len(t) < 3 or np.isfinite(raw).sum() < 3:
        return RepResult([], raw, t, np.nan, np.nan, np.nan, np.nan,
                         reason="too few frames with a visible lifter to follow the lift")
    sig = _interpolate_gaps(t, _reject_jumps(t, raw), MAX_GAP_S)
    sig = _moving_median(t, sig, smooth_s)
    ok = np.isfinite(sig)
    low, high = np.percentile(sig[ok], [LOW_PERCENTILE, HIGH_PERCENTILE])
    rng = high - low
    bot_th = low + bottom_fraction * rng
    top_th = low + top_fraction * rng
    if not np.isfinite(rng) or rng < min_range_torso:
        return RepResult([], sig, t, float(low), float(high), float(bot_th), float(top_th),
                         reason=f"the shoulders moved only {rng:.2f} torso lengths up and down "
                                f"(a pull needs >= {min_range_torso}); no rep seen")

    # Close framing loses the lifter at lockout (head and shoulders leave the frame, the
    # pose model drops the person). A gap entered while rising through the upper half is
    # taken as time spent at the top, so such a rep still counts (flagged top_inferred).
    inferred = np.zeros(len(sig), dtype=bool)
    mid = low + 0.5 * rng
    k = 0
    while k < len(sig):
        if ok[k]:
            k += 1
            continue
        j = k
        while j < len(sig) and not ok[j]:
            j += 1
        before = np.flatnonzero(ok[:k])
        if before.size >= 2 and t[min(j, len(t) - 1)] - t[k] >= MIN_TOP_GAP_S:
            last = before[-1]
            prev = before[t[before] >= t[last] - 0.4][0]
            if sig[last] >= mid and sig[last] > sig[prev] + 0.05:
                sig[k:j] = top_th + 0.01 * rng
                inferred[k:j] = True
        k = j
    ok = np.isfinite(sig)

    # Zone per sample: -1 bottom, +1 top, 0 between, None unknown (NaN).
    zone = np.zeros(len(sig), dtype=int)
    zone[sig <= bot_th] = -1
    zone[sig >= top_th] = 1
    reps: list[Rep] = []
    state = None            # last zone reached: -1 or +1
    bottom_enter = None     # first sample of the current bottom stay
    bottom_last = None      # last sample in the bottom zone before the pull
    first = int(np.flatnonzero(ok)[0])
    if sig[first] < low + 0.5 * rng:
        # The clip opens with the lifter low (set up at the bar): that is the floor position
        # even if a later glitch reads lower.
        state, bottom_enter, bottom_last = -1, first, first
    for i in range(len(sig)):
        if not ok[i]:
            continue
        z = zone[i]
        if z == -1:
            if state != -1:
                bottom_enter = i
                if reps and state == 1:
                    # The previous rep's lowering ends where the bottom zone is reached.
                    reps[-1].end = i
            state = -1
            bottom_last = i
        elif z == 1:
            if state == -1:
                start = bottom_enter if bottom_enter is not None else 0
                # A rep's setup begins after the previous rep ended.
                if reps:
                    start = max(start, reps[-1].end)
                reps.append(Rep(index=len(reps) + 1, start=start, pull_start=bottom_last,
                                top_start=i, top_end=i, end=len(sig) - 1, complete=False))
            elif state == 1 and reps and reps[-1].end == len(sig) - 1 and not reps[-1].complete:
                reps[-1].top_end = i
            state = 1
    # Close reps: complete when the lowering reached the bottom zone.
    last = int(np.flatnonzero(ok)[-1])
    for k, r in enumerate(reps):
        nxt = reps[k + 1] if k + 1 < len(reps) else None
        # end was set when the bottom zone was reached after the top; otherwise clip end.
        if r.end != len(sig) - 1 or (nxt is not None):
            r.complete = True
        else:
            r.end = last
            r.complete = bool(zone[last] == -1)
        # Last top-zone sample before the lowering starts.
        tops = np.flatnonzero((zone == 1) & ok)
        tops = tops[(tops >= r.top_start) & (tops <= r.end)]
        if tops.size:
            # The lockout lasts until the signal last leaves the top zone before the bottom.
            run_end = r.top_start
            for j in range(r.top_start, r.end + 1):
                if ok[j] and zone[j] == -1:
                    break
                if ok[j] and zone[j] == 1:
                    run_end = j
            r.top_end = run_end
        r.top_inferred = bool(inferred[r.top_start:r.top_end + 1].any())
        r.start_s, r.pull_start_s = float(t[r.start]), float(t[r.pull_start])
        r.top_start_s, r.top_end_s, r.end_s = float(t[r.top_start]), float(t[r.top_end]), float(t[r.end])
        r.phases = {
            "setup": (r.start_s, r.pull_start_s), "pull": (r.pull_start_s, r.top_start_s),
            "lockout": (r.top_start_s, r.top_end_s), "lowering": (r.top_end_s, r.end_s),
        }
    return RepResult(reps, sig, t, float(low), float(high), float(bot_th), float(top_th))


def count_reps(seq, **kwargs) -> RepResult:
    """segment_reps on a PoseSequence (uses its keypoints_xy and time_s)."""
    return segment_reps(seq.keypoints_xy, seq.time_s, **kwargs)
