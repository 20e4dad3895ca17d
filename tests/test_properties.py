"""Property-based tests (hypothesis): the pose JSON loader, normalisation and the rep counter.

Contract under test:
- load_pose_json: any file either loads into a valid PoseSequence or raises ValueError whose
  message names the file (FileNotFoundError only for a missing path); no KeyError, TypeError,
  IndexError, OverflowError, RecursionError, ... leaks out. Valid documents load exactly.
- normalise_pose / frame_features: invariant to translation and uniform scale also with
  missing points (NaN), and never raise on NaN-laden, tiny or empty videos.
- segment_reps: any series either gives a valid RepResult (reps sorted, inside the series,
  phases ordered, reps not overlapping) or raises ValueError; k clean sinusoidal pulls give k.
test_features.py / test_keypoints.py already check invariance on complete poses; these extend
them to missing points and random inputs.
"""
from __future__ import annotations

import atexit
import json
import math
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from deadlift_utils.features import FEATURE_BLOCKS, frame_features
from deadlift_utils.keypoints import KEYPOINT_NAMES, KP, N_KEYPOINTS, normalise_pose
from deadlift_utils.pose import SCHEMA, PoseSequence, load_pose_json, save_pose_json
from deadlift_utils.reps import PHASES, RepResult, count_reps, segment_reps

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TMP = Path(tempfile.mkdtemp(prefix="deadlift_props_"))
atexit.register(shutil.rmtree, TMP, True)


# ============================================================================ pose loader

def _write(data: bytes, name: str = "case pose.json") -> Path:
    p = TMP / name
    p.write_bytes(data)
    return p


def _check_valid(seq: PoseSequence, path: Path) -> None:
    """Everything later stages rely on in a loaded PoseSequence."""
    T = len(seq)
    assert seq.keypoints_xy.shape == (T, N_KEYPOINTS, 2) and seq.keypoints_xy.dtype == float
    assert seq.confidence.shape == (T, N_KEYPOINTS)
    xy_nan = np.isnan(seq.keypoints_xy)
    assert np.array_equal(xy_nan[..., 0], xy_nan[..., 1]), "x and y must be missing together"
    assert np.array_equal(np.isnan(seq.confidence), xy_nan[..., 0]), "confidence missing iff point missing"
    pres = seq.keypoints_xy[~xy_nan]
    assert np.all(np.isfinite(pres)) and np.all(pres >= 0), "present points are finite image coordinates"
    assert np.all(np.isfinite(seq.confidence[~xy_nan[..., 0]]))
    assert seq.frame_index.shape == (T,) and np.issubdtype(seq.frame_index.dtype, np.integer)
    assert seq.time_s.shape == (T,) and np.all(np.isfinite(seq.time_s))
    if T > 1:
        assert np.all(np.diff(seq.time_s) > 0), "frames in time order"
    assert isinstance(seq.fps, float) and math.isfinite(seq.fps) and seq.fps > 0
    assert isinstance(seq.frame_stride, int) and seq.frame_stride >= 1
    assert isinstance(seq.smoothing_window, int) and seq.smoothing_window >= 1
    for v in (seq.width, seq.height):
        assert v is None or (isinstance(v, int) and v > 0)
    assert seq.video is None or isinstance(seq.video, str)
    if seq.world_xyz is not None:
        assert seq.world_xyz.shape == (T, N_KEYPOINTS, 3)
        w = seq.world_xyz[~np.isnan(seq.world_xyz)]
        assert np.all(np.isfinite(w))
    assert seq.source_path == str(path)
    # Later stages can use it: quality figures, and it saves and loads back the same.
    assert 0.0 <= seq.detection_rate() <= 1.0 and 0.0 <= seq.lifter_found_rate() <= 1.0
    back = load_pose_json(save_pose_json(seq, TMP / "roundtrip.json"))
    np.testing.assert_allclose(back.keypoints_xy, seq.keypoints_xy, atol=0.006, equal_nan=True)
    assert np.array_equal(back.frame_index, seq.frame_index)


def _load_or_documented_error(path: Path) -> PoseSequence | None:
    """Load; a ValueError must name the file. Any other exception fails the test."""
    try:
        seq = load_pose_json(path)
    except ValueError as e:
        assert str(path) in str(e), f"error does not name the file: {e}"
        assert "\n" not in str(e), "one-line message"
        event("ValueError")
        return None
    _check_valid(seq, path)
    event("loaded")
    return seq


# -- raw fuzzing

@SETTINGS
@given(st.binary(max_size=400))
def test_loader_raw_bytes_load_or_raise_valueerror(data):
    _load_or_documented_error(_write(data))


@SETTINGS
@given(st.text(alphabet=st.sampled_from(list('[]{},:"0123456789.-eE nulltruefalsNaIfiy\n')), max_size=300))
def test_loader_json_like_text_load_or_raise_valueerror(text):
    _load_or_documented_error(_write(text.encode()))


def test_loader_deeply_nested_json_is_a_valueerror():
    for text in ("[" * 100_000, "[" * 100_000 + "]" * 100_000, '{"a":' * 50_000):
        with pytest.raises(ValueError, match="case pose.json"):
            load_pose_json(_write(text.encode()))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=10**300, max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=20) | st.dictionaries(st.text(max_size=6), children, max_size=6),
    max_leaves=60,
)


@SETTINGS
@given(json_values)
def test_loader_any_json_document_load_or_raise_valueerror(doc):
    _load_or_documented_error(_write(json.dumps(doc).encode()))


# -- structured fuzzing: valid documents of both formats, then mutations

coord = st.floats(0, 4000, allow_nan=False)
conf = st.floats(0, 1, allow_nan=False)
good_point_study = st.one_of(st.none(), st.just([-1, -1]), st.tuples(coord, coord).map(list),
                             st.tuples(coord, coord, conf).map(list))
good_point_pose = st.one_of(st.none(), st.tuples(coord, coord, conf).map(list))
world_point = st.one_of(st.none(), st.tuples(*[st.floats(-3, 3)] * 3).map(list))
bad_values = st.sampled_from([
    float("nan"), float("inf"), -float("inf"), -5.0, "12", "x", True, None, [], [1.0], {}, {"x": 1},
    10**400, -(10**400), 1e308, [[1, 2]], 0, -1,
])
bad_points = st.one_of(
    st.sampled_from([[], [1.0], [1.0, 2.0, 0.5, 9.0], "1,2", {"x": 1, "y": 2}, 7, True, [None, None],
                     [float("nan"), 2.0], [2.0, float("inf")], ["a", "b"], [True, False], [[1, 2], [3, 4]],
                     [10**400, 1], [1e308, 1e308, 1.0], [-1, 5], [5, -0.5]]),
)


@st.composite
def study_docs(draw):
    T = draw(st.integers(1, 6))
    return [[draw(good_point_study) for _ in range(N_KEYPOINTS)] for _ in range(T)]


@st.composite
def pose_docs(draw):
    T = draw(st.integers(0, 6))
    fps = draw(st.sampled_from([30.0, 60, 29.97, 12.5]))
    stride = draw(st.integers(1, 6))
    with_world = draw(st.booleans())
    frames = []
    for t in range(T):
        f = {"frame_index": t * stride, "time_s": round(t * stride / fps, 4),
             "keypoints": [draw(good_point_pose) for _ in range(N_KEYPOINTS)]}
        if with_world:
            f["world_keypoints"] = [draw(world_point) for _ in range(N_KEYPOINTS)]
        frames.append(f)
    return {"schema": SCHEMA, "video": draw(st.sampled_from(["clip.mp4", None])), "fps": fps,
            "width": draw(st.sampled_from([1920, 360, None])), "height": draw(st.sampled_from([1080, 640, None])),
            "frame_stride": stride, "smoothing_window": draw(st.sampled_from([1, 5])),
            "backend": "test", "keypoint_names": list(KEYPOINT_NAMES), "frames": frames}


def _frames(doc):
    return doc if isinstance(doc, list) else doc["frames"]


def _mutate(draw, doc):
    """Apply one random corruption to doc (in place); return a short name for it."""
    frames = _frames(doc)
    kinds = ["point", "frame_len", "frame_type", "mix"]
    if isinstance(doc, dict):
        kinds += ["header", "drop_key", "frame_field", "drop_frame_key", "world", "names", "order"]
    kind = draw(st.sampled_from(kinds))
    if kind in ("point", "frame_len", "frame_type", "frame_field", "drop_frame_key", "world", "order") and not frames:
        kind = "header" if isinstance(doc, dict) else "mix"
    if kind == "point":
        t, j = draw(st.integers(0, len(frames) - 1)), draw(st.integers(0, N_KEYPOINTS - 1))
        kps = frames[t] if isinstance(doc, list) else frames[t]["keypoints"]
        kps[j] = draw(bad_points)
    elif kind == "frame_len":
        t = draw(st.integers(0, len(frames) - 1))
        n = draw(st.sampled_from([0, 1, 17, 19, 25, 33]))
        kps = [[10.0, 10.0, 1.0]] * n
        if isinstance(doc, list):
            frames[t] = kps
        else:
            frames[t]["keypoints"] = kps
    elif kind == "frame_type":
        t = draw(st.integers(0, len(frames) - 1))
        frames[t] = draw(st.sampled_from([None, 3, "frame", [], {}]))
    elif kind == "mix":  # the other format's frames, or the other format's header
        if isinstance(doc, list):
            pos = draw(st.integers(0, len(frames)))
            frames.insert(pos, {"frame_index": 0, "keypoints": [[1.0, 1.0, 1.0]] * N_KEYPOINTS})
        else:
            pos = draw(st.integers(0, len(frames)))
            frames.insert(pos, [[1.0, 1.0]] * N_KEYPOINTS)
    elif kind == "header":
        key = draw(st.sampled_from(["fps", "frame_stride", "smoothing_window", "width", "height", "video",
                                    "schema", "backend", "frames"]))
        doc[key] = draw(bad_values)
    elif kind == "drop_key":
        doc.pop(draw(st.sampled_from(sorted(doc))), None)
    elif kind == "frame_field":
        t = draw(st.integers(0, len(frames) - 1))
        frames[t][draw(st.sampled_from(["frame_index", "time_s"]))] = draw(bad_values)
    elif kind == "drop_frame_key":
        t = draw(st.integers(0, len(frames) - 1))
        frames[t].pop(draw(st.sampled_from(["frame_index", "time_s", "keypoints", "world_keypoints"])), None)
    elif kind == "world":
        t = draw(st.integers(0, len(frames) - 1))
        frames[t]["world_keypoints"] = draw(st.one_of(
            bad_values, st.just([[0.0, 0.0]] * N_KEYPOINTS), st.just([[0.0, 0.0, 0.0]] * 5),
            st.lists(bad_points, min_size=N_KEYPOINTS, max_size=N_KEYPOINTS)))
    elif kind == "names":
        doc["keypoint_names"] = draw(st.sampled_from([5, "nose", KEYPOINT_NAMES[::-1], KEYPOINT_NAMES[:17],
                                                      {"nose": 0}, [None] * 18, None]))
    elif kind == "order":  # frames out of time order, or a repeated frame
        if len(frames) >= 2:
            frames[0], frames[1] = frames[1], frames[0]
        else:
            frames.append(dict(frames[0]))
    return kind


@st.composite
def mutation(draw, doc):
    """A corruption of doc; an earlier one may have changed its shape (a frame replaced by
    null, the frames list dropped), in which case this one may not apply."""
    try:
        return _mutate(draw, doc)
    except (TypeError, KeyError, AttributeError, IndexError):
        return "not applicable"


@settings(SETTINGS, max_examples=300)
@given(st.data(), st.one_of(study_docs(), pose_docs()), st.integers(0, 3))
def test_loader_valid_documents_with_mutations(data, doc, n_mutations):
    original = json.loads(json.dumps(doc))
    applied = [data.draw(mutation(doc)) for _ in range(n_mutations)]
    event(f"{'study' if isinstance(original, list) else 'deadlift-pose/1'}, {len(applied)} mutation(s)")
    for m in applied:
        event(f"mutation {m}")
    text = json.dumps(doc)  # NaN/Infinity literals included, as a careless writer would produce
    path = _write(text.encode())
    seq = _load_or_documented_error(path)
    if not applied:
        # A valid document must load, and hold exactly what the file says.
        assert seq is not None
        frames = _frames(original)
        assert len(seq) == len(frames)
        for t, f in enumerate(frames):
            kps = f if isinstance(original, list) else f["keypoints"]
            for j, p in enumerate(kps):
                if p is None or (p[0] < 0 or p[1] < 0):
                    assert np.isnan(seq.keypoints_xy[t, j]).all()
                else:
                    assert tuple(seq.keypoints_xy[t, j]) == (p[0], p[1])
                    assert seq.confidence[t, j] == (p[2] if len(p) > 2 else 1.0)


def test_loader_rejects_specific_bad_headers_naming_the_fix():
    """Cases the fuzzing found. Before the fix, keypoint_names 5, frame_stride [5], frame_index [3]
    and a 400-digit coordinate leaked TypeError/OverflowError, fps "thirty" a ValueError without
    the file name, and fps -30, frame_stride 2.5, width "wide", string times and frames out of
    time order loaded as if nothing was wrong."""
    base = {"schema": SCHEMA, "frames": [{"frame_index": 0, "time_s": 0.0,
                                          "keypoints": [[1.0, 2.0, 0.9]] * N_KEYPOINTS}]}
    cases = [
        ({"keypoint_names": 5}, "keypoint_names"),
        ({"fps": "thirty"}, "fps"),
        ({"fps": -30}, "fps"),
        ({"frame_stride": [5]}, "frame_stride"),
        ({"frame_stride": 2.5}, "frame_stride"),
        ({"width": "wide"}, "width"),
        ({"frames": [{"frame_index": "3", "keypoints": [[1.0, 2.0, 0.9]] * N_KEYPOINTS}]}, "frame_index"),
        ({"frames": [{"frame_index": [3], "keypoints": [[1.0, 2.0, 0.9]] * N_KEYPOINTS}]}, "frame_index"),
        ({"frames": [{"time_s": "0.1", "keypoints": [[1.0, 2.0, 0.9]] * N_KEYPOINTS}]}, "time_s"),
        ({"frames": [{"keypoints": [[10**400, 2.0, 0.9]] * N_KEYPOINTS}]}, "keypoint 0"),
        ({"frames": [{"time_s": 1.0, "keypoints": [[1.0, 2.0, 0.9]] * N_KEYPOINTS},
                     {"time_s": 0.5, "keypoints": [[1.0, 2.0, 0.9]] * N_KEYPOINTS}]}, "time order"),
    ]
    for change, word in cases:
        path = _write(json.dumps({**base, **change}).encode(), "bad header.json")
        with pytest.raises(ValueError) as e:
            load_pose_json(path)
        assert str(path) in str(e.value) and word in str(e.value), (change, str(e.value))


# ============================================================================ normalisation

def _random_pose(rng: np.random.Generator, T: int, missing: float) -> np.ndarray:
    """A standing-ish skeleton with jitter and a share of points missing (NaN)."""
    base = np.array([[0, -2.6], [0, -2.3], [-0.3, -2.3], [-0.35, -1.8], [-0.3, -1.3], [0.3, -2.3],
                     [0.35, -1.8], [0.3, -1.3], [-0.2, -1.3], [-0.2, -0.65], [-0.2, 0], [0.2, -1.3],
                     [0.2, -0.65], [0.2, 0], [-0.05, -2.65], [0.05, -2.65], [-0.1, -2.6], [0.1, -2.6]])
    kp = base[None] * 200 + np.array([600.0, 900.0]) + rng.normal(0, 15, size=(T, N_KEYPOINTS, 2))
    drop = rng.random((T, N_KEYPOINTS)) < missing
    kp[drop] = np.nan
    return kp


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), T=st.integers(1, 40), missing=st.floats(0, 0.9),
       tx=st.floats(-3000, 3000), ty=st.floats(-3000, 3000), s=st.floats(0.05, 20))
def test_normalise_pose_invariant_with_missing_points(seed, T, missing, tx, ty, s):
    kp = _random_pose(np.random.default_rng(seed), T, missing)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning noise either
        a = normalise_pose(kp)
        b = normalise_pose(kp * s + np.array([tx, ty]))
    assert a.shape == kp.shape
    assert np.array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(a)
    np.testing.assert_allclose(a[ok], b[ok], atol=1e-6)
    # A missing point stays missing; nothing is invented.
    assert np.all(np.isnan(a[np.isnan(kp)]))
    # Frames without any hip (or without shoulders and neck) cannot be normalised: all NaN.
    no_hip = np.isnan(kp[:, KP["r_hip"], 0]) & np.isnan(kp[:, KP["l_hip"], 0])
    assert np.all(np.isnan(a[no_hip]))
    # The hip centre is the origin where both hips are present.
    both = ~np.isnan(kp[:, KP["r_hip"], 0]) & ~np.isnan(kp[:, KP["l_hip"], 0]) & ~np.isnan(a[:, KP["r_hip"], 0])
    if both.any():
        np.testing.assert_allclose((a[both, KP["r_hip"]] + a[both, KP["l_hip"]]) / 2, 0, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), T=st.integers(0, 30), missing=st.floats(0, 1),
       tx=st.floats(-3000, 3000), ty=st.floats(-3000, 3000), s=st.floats(0.1, 10),
       blocks=st.lists(st.sampled_from(FEATURE_BLOCKS), min_size=1, max_size=5, unique=True),
       stride=st.sampled_from([1, 5]), mirror=st.booleans())
def test_frame_features_never_raise_and_are_invariant_with_missing_points(seed, T, missing, tx, ty, s,
                                                                          blocks, stride, mirror):
    kp = _random_pose(np.random.default_rng(seed), T, missing)
    X0, names = frame_features(kp, blocks, frame_stride=stride, smoothing_window=stride, mirror=mirror)
    assert X0.shape == (T, len(names)) and len(set(names)) == len(names)
    assert not np.isinf(X0).any(), "missing data must come out as NaN, never inf"
    invariant = [b for b in blocks if b != "raw_xy"]
    if not invariant:
        return
    X0, n0 = frame_features(kp, invariant, frame_stride=stride, smoothing_window=stride, mirror=mirror)
    X1, _ = frame_features(kp * s + np.array([tx, ty]), invariant, frame_stride=stride,
                           smoothing_window=stride, mirror=mirror)
    assert np.array_equal(np.isnan(X0), np.isnan(X1)), [n0[i] for i in np.flatnonzero((np.isnan(X0) != np.isnan(X1)).any(0))]
    ok = ~np.isnan(X0)
    np.testing.assert_allclose(X0[ok], X1[ok], atol=1e-6, rtol=1e-6)


def test_frame_features_of_a_video_with_no_person_are_all_missing():
    for T in (0, 1, 7):
        X, names = frame_features(np.full((T, N_KEYPOINTS, 2), np.nan), list(FEATURE_BLOCKS))
        assert X.shape == (T, len(names))
        mask_cols = [i for i, n in enumerate(names) if n.endswith("_present")]
        assert np.all(X[:, mask_cols] == 0)
        assert np.all(np.isnan(np.delete(X, mask_cols, axis=1)))


# ============================================================================ rep counter

def _check_result(res: RepResult, t: np.ndarray) -> None:
    T = len(t)
    assert isinstance(res, RepResult) and res.count == len(res.reps) >= 0
    assert len(res.signal) == T
    if res.count == 0:
        assert res.reason or T >= 3  # no reps: either a reason or simply no pull in a long series
    prev_end = 0
    for k, r in enumerate(res.reps, 1):
        assert r.index == k
        assert 0 <= r.start <= r.pull_start <= r.top_start <= r.top_end <= r.end <= T - 1, r
        assert r.start >= prev_end, "reps overlap"
        prev_end = r.end
        for name in ("start", "pull_start", "top_start", "top_end", "end"):
            assert getattr(r, name + "_s") == t[getattr(r, name)]
        assert list(r.phases) == list(PHASES)
        assert all(a <= b for a, b in r.phases.values())
        assert r.complete or k == res.count, "only the last rep can be cut off by the end of the clip"
    labels = res.phase_labels()
    assert len(labels) == T and set(labels) <= set(PHASES) | {""}
    assert sorted(set(res.rep_of_sample()) - {0}) == list(range(1, res.count + 1))


def _times(draw, T):
    dt = draw(st.lists(st.floats(0.001, 1.0), min_size=T, max_size=T))
    return np.cumsum(dt) - dt[0] if T else np.zeros(0)


series_values = st.floats(allow_nan=True, allow_infinity=True, width=32) | st.floats(-5, 5) | st.just(float("nan"))


@settings(max_examples=200, deadline=None)
@given(st.data(), st.integers(0, 80))
def test_rep_counter_any_signal_gives_valid_result(data, T):
    t = _times(data.draw, T)
    kind = data.draw(st.sampled_from(["random", "constant", "nan", "steps"]))
    if kind == "random":
        sig = np.array(data.draw(st.lists(series_values, min_size=T, max_size=T)), dtype=float)
    elif kind == "constant":
        sig = np.full(T, data.draw(st.floats(-10, 10)))
    elif kind == "nan":
        sig = np.full(T, np.nan)
    else:
        sig = np.array(data.draw(st.lists(st.sampled_from([1.5, 2.5, np.nan]), min_size=T, max_size=T)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = segment_reps(None, t, signal=sig)
    event(f"{kind}: {'reps found' if res.count else 'no reps'}")
    _check_result(res, t)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=12))
def test_rep_counter_bad_time_axis_is_a_valueerror(times):
    t = np.array(times, dtype=float)
    sig = np.linspace(1, 2, len(t))
    try:
        res = segment_reps(None, t, signal=sig)
    except ValueError as e:
        assert "time_s" in str(e)
        return
    assert np.all(np.isfinite(t)) and (len(t) < 2 or np.all(np.diff(t) > 0))
    _check_result(res, t)


def test_rep_counter_wrong_shapes_are_valueerrors():
    for t, sig in [(np.float64(1.0), np.float64(2.0)), (np.zeros((2, 3)), np.zeros((2, 3))),
                   (np.arange(5.0), np.zeros(4))]:
        with pytest.raises(ValueError):
            segment_reps(None, t, signal=sig)


@settings(max_examples=60, deadline=None)
@given(st.data(), st.integers(0, 40), st.floats(0, 1))
def test_rep_counter_random_poses_give_valid_result(data, T, missing):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    kp = _random_pose(rng, T, missing) + rng.normal(0, data.draw(st.floats(0, 300)), size=(T, N_KEYPOINTS, 2))
    t = _times(data.draw, T)
    _check_result(segment_reps(kp, t), t)


def _sinusoid_reps(k, fps, rep_s, amplitude, floor, pause_s, noise, rng):
    """k pulls of a clean lift signal: floor -> floor + amplitude -> floor, pauses in between."""
    period = rep_s + pause_s
    t = np.arange(0, 1.0 + k * period + 1.0, 1 / fps)
    u = t - 1.0
    sig = np.full(t.size, floor)
    inside = (u >= 0) & (u < k * period)
    ph = np.mod(u[inside], period)
    up = ph < rep_s
    vals = np.full(ph.size, floor)
    vals[up] = floor + amplitude * 0.5 * (1 - np.cos(2 * np.pi * ph[up] / rep_s))
    sig[inside] = vals
    return t, sig + rng.normal(0, noise, t.size)


@settings(max_examples=80, deadline=None)
@given(k=st.integers(1, 8), fps=st.sampled_from([6.0, 10.0, 15.0, 30.0, 60.0]), rep_s=st.floats(1.5, 5.0),
       amplitude=st.floats(0.5, 2.0), floor=st.floats(-3, 3), pause_s=st.floats(0, 2.0),
       noise=st.floats(0, 0.02), seed=st.integers(0, 1000))
def test_k_clean_sinusoidal_reps_count_k(k, fps, rep_s, amplitude, floor, pause_s, noise, seed):
    t, sig = _sinusoid_reps(k, fps, rep_s, amplitude, floor, pause_s, noise, np.random.default_rng(seed))
    res = segment_reps(None, t, signal=sig)
    event(f"k={k}")
    assert res.count == k, (res.count, res.reason)
    _check_result(res, t)
    assert all(r.complete for r in res.reps)


@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 5), fps=st.sampled_from([6.0, 30.0]), tx=st.floats(-2000, 2000),
       ty=st.floats(-2000, 2000), s=st.floats(0.2, 5), missing=st.floats(0, 0.15), seed=st.integers(0, 1000))
def test_rep_count_from_poses_is_invariant_to_translation_and_scale(k, fps, tx, ty, s, missing, seed):
    """A synthetic lifter whose shoulders go down k times: the count is k wherever the camera is."""
    rng = np.random.default_rng(seed)
    t, h = _sinusoid_reps(k, fps, 3.0, 1.0, 0.0, 0.5, 0.0, rng)   # h: 0 standing .. 1 bent over
    T = t.size
    kp = np.tile(_random_pose(rng, 1, 0.0), (T, 1, 1))
    upper = [KP[n] for n in KEYPOINT_NAMES if n not in ("r_knee", "l_knee", "r_ankle", "l_ankle", "r_hip", "l_hip")]
    # Bend over: the upper body drops by up to ~0.9 torso lengths (torso = 200 px).
    kp[:, upper, 1] += (1.0 - h)[:, None] * 180.0
    drop = rng.random((T, N_KEYPOINTS)) < missing
    kp[drop] = np.nan
    base = count_reps(PoseSequence(kp, np.ones((T, N_KEYPOINTS)), np.arange(T), t))
    moved = count_reps(PoseSequence(kp * s + np.array([tx, ty]), np.ones((T, N_KEYPOINTS)), np.arange(T), t))
    assert base.count == moved.count == k, (base.count, moved.count, base.reason)
