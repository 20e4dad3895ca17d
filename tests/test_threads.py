"""The threaded extraction pipeline (threads.py): same frames and poses as one thread, errors
from a background thread reach the caller, nothing is left running or half-written."""
import threading
import time

import cv2
import numpy as np
import pytest

from deadlift_utils.extract import FrameAnalyzer, extract_video
from deadlift_utils.threads import Worker, prefetch
from deadlift_utils.video import FrameFile, iter_frames


def _threads_settle(before: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    return threading.active_count()


def test_prefetch_yields_the_same_frames_in_order_as_decoding_directly(side_clip):
    direct = [(i, f.copy()) for i, f in iter_frames(side_clip, 3)]
    ahead = list(prefetch(iter_frames(side_clip, 3), size=2))
    assert [i for i, _ in ahead] == [i for i, _ in direct]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(ahead, direct))


def test_stopping_early_stops_the_decoding_thread(side_clip):
    before = threading.active_count()
    gen = prefetch(iter_frames(side_clip, 1), size=2)
    for k, _ in enumerate(gen):
        if k == 3:
            break
    gen.close()
    assert _threads_settle(before) == before


def test_an_error_in_the_background_reaches_the_caller():
    def frames():
        yield 0
        yield 1
        raise ValueError("clip.mp4: the file ends inside its mdat box")

    got = []
    with pytest.raises(ValueError, match="mdat"):
        for x in prefetch(frames(), size=4):
            got.append(x)
    assert got == [0, 1]

    seen = []

    def fn(x):
        if x == 5:
            raise RuntimeError("analyzer failed on sample 5")
        seen.append(x)

    w = Worker(fn, size=2)
    with pytest.raises(RuntimeError, match="sample 5"):
        for x in range(50):
            w.put(x)
        w.close()
    w.close(wait=False)
    assert seen == [0, 1, 2, 3, 4]  # in order, and nothing after the failure


class _Fails(FrameAnalyzer):
    name = "fails"

    def analyze(self, frame_index, frame_bgr, person):
        if frame_index >= 20:
            raise RuntimeError(f"measurement failed at frame {frame_index}")
        return None


def test_a_failing_analyzer_fails_the_extraction_without_writing_or_hanging(side_clip, tmp_path):
    before = threading.active_count()
    with pytest.raises(RuntimeError, match="frame 2[05]"):
        extract_video(side_clip, tmp_path, frame_stride=5, frame_analyzers=[_Fails()],
                      frames_path=tmp_path / "frames")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no JSON, no videos, no kept or temp files
    assert _threads_settle(before) == before


def test_the_kept_small_frames_are_the_sampled_frames(side_clip, tmp_path):
    res = extract_video(side_clip, tmp_path, frame_stride=4, write_videos=False, frames_path=tmp_path / "small")
    small = list(FrameFile.read(tmp_path / "small"))
    assert len(small) == len(res.sequence) == FrameFile.count(tmp_path / "small") and small[0].shape[0] == 720
    for k in (0, len(small) // 2, len(small) - 1):
        full = next(f for i, f in iter_frames(side_clip, 1) if i == res.sequence.frame_index[k])
        expected = cv2.resize(full, small[k].shape[1::-1], interpolation=cv2.INTER_LINEAR)
        assert np.abs(small[k].astype(int) - expected).mean() < 2.0  # only JPEG loss


def test_parallel_pose_threads_give_the_same_people_in_order_as_one_thread(side_clip):
    from deadlift_utils.estimators import BlazePoseEstimator

    frames = [(i, f, int(i * 1000 / 30)) for i, f in iter_frames(side_clip, 6)]
    with BlazePoseEstimator(threads=1, segmentation=True) as one:
        a = list(one.detect_stream(iter(frames)))
    before = threading.active_count()
    with BlazePoseEstimator(threads=2, segmentation=True) as two:
        b = list(two.detect_stream(iter(frames)))
        assert len(two._all) == 2  # both landmarkers worked
    assert _threads_settle(before) == before  # the pool's and the landmarkers' threads are gone
    assert [i for i, _, _ in b] == [i for i, _, _ in frames] == [i for i, _, _ in a]
    assert sum(len(p) for _, _, p in a) >= len(frames)  # the lifter is found
    for (_, fa, pa), (_, fb, pb) in zip(a, b):
        assert fa is fb or np.array_equal(fa, fb)
        assert len(pa) == len(pb)
        for x, y in zip(pa, pb):
            np.testing.assert_array_equal(x.keypoints, y.keypoints)
            np.testing.assert_array_equal(x.mask, y.mask)  # each mask its own copy, not a reused buffer


def test_stopping_a_parallel_pose_stream_early_leaves_no_thread(side_clip):
    from deadlift_utils.estimators import BlazePoseEstimator

    before = threading.active_count()
    with BlazePoseEstimator(threads=2) as est:
        stream = est.detect_stream((i, f, 0) for i, f in iter_frames(side_clip, 3))
        for k, _ in enumerate(stream):
            if k == 2:
                break
        stream.close()
    assert _threads_settle(before) == before


def test_a_lazy_estimator_loads_no_model_for_a_video_without_frames():
    from deadlift_utils.estimators import LazyEstimator

    loads = []
    est = LazyEstimator("blazepose", "full", {}, on_load=loads.append)
    assert list(est.detect_stream(iter(()))) == [] and loads == []
