"""Batch extraction on Dask over real shared videos: kill + resume, an external scheduler with
two worker processes, a bad file, and the pose model loading once per worker.

The videos are the 8 kettlebell clips (360x640, 60 fps, ~20 s) at frame_stride 30 without
skeleton/overlay videos, so each takes a few seconds. Only 127.0.0.1 is used.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deadlift_utils import config
from deadlift_utils.batch import SUMMARY_NAME, run_batch
from deadlift_utils.cli import cmd_batch
from deadlift_utils.pose import load_pose_json
from deadlift_utils.video import list_videos, probe_video

STRIDE = 30
FAST = dict(frame_stride=STRIDE, write_videos=False, progress=False)


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(config.PROJECT_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(TF_CPP_MIN_LOG_LEVEL="2", GLOG_minloglevel="2")
    return env


def _link_videos(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).symlink_to(config.KETTLEBELL_DIR / name)
    return folder


def _valid_pose(path: Path, video: Path) -> bool:
    """The pose file loads, was made from `video` at STRIDE, and holds every sampled frame."""
    try:
        seq = load_pose_json(path)
    except (FileNotFoundError, ValueError):
        return False
    return (seq.video == str(video) and seq.frame_stride == STRIDE and seq.backend == "blazepose-full"
            and len(seq) == (probe_video(video).frame_count + STRIDE - 1) // STRIDE)


def _pose_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*.json") if p.name != SUMMARY_NAME)


def _stop_group(proc: subprocess.Popen, sig=signal.SIGKILL, wait_s: float = 15.0) -> None:
    """Signal the whole process group (the batch's LocalCluster workers are in it) and wait
    until no process of the group is left."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        proc.poll()
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(5)


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    """A batch over the 8 kettlebell clips with 2 local workers, SIGKILLed (whole process
    group) once its first result is written, then resumed in this process."""
    videos = list_videos(config.KETTLEBELL_DIR)
    assert len(videos) == 8
    out = tmp_path_factory.mktemp("batch") / "out"
    code = (f"from deadlift_utils.batch import run_batch\n"
            f"run_batch({str(config.KETTLEBELL_DIR)!r}, {str(out)!r}, workers=2, frame_stride={STRIDE}, "
            f"write_videos=False, progress=False)\n")
    log = out.parent / "killed_run.log"
    with open(log, "wb") as log_f:
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=config.PROJECT_ROOT, env=_env(),
                                stdout=log_f, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 150
            while not (out.exists() and _pose_files(out)):
                assert proc.poll() is None, f"batch ended before any result: {log.read_text()[-2000:]}"
                assert time.monotonic() < deadline, f"no result within 150 s: {log.read_text()[-2000:]}"
                time.sleep(0.1)
        finally:
            _stop_group(proc)
    before = {p: p.stat().st_mtime_ns for p in _pose_files(out)}
    summary_before = json.loads((out / SUMMARY_NAME).read_text())
    # What a kill during a write leaves behind, for a video that has no result yet.
    unfinished = [v for v in videos if out / f"{v.stem}.json" not in before]
    stale = [out / f".{unfinished[0].stem}.json.k1lled00.tmp", out / f".{unfinished[0].stem}_skeleton.partial.mp4"]
    for p in stale:
        p.write_bytes(b"half a file")
    resumed = run_batch(config.KETTLEBELL_DIR, out, workers=2, **FAST)
    return dict(videos=videos, out=out, before=before, summary_before=summary_before, resumed=resumed,
                unfinished=unfinished, stale=stale)


def test_killed_batch_resumes_and_every_video_has_exactly_one_valid_result(killed_and_resumed):
    k = killed_and_resumed
    videos, out, before, resumed = k["videos"], k["out"], k["before"], k["resumed"]
    # The kill came midway: some results existed, not all, and the summary said "running".
    assert 1 <= len(before) < len(videos)
    assert k["summary_before"]["state"] == "running"
    # The resumed run skipped exactly the videos finished before the kill (their files
    # untouched) and did the rest; nothing failed.
    assert len(resumed.rows) == len(videos) and not resumed.failed
    assert {Path(r.pose_path) for r in resumed.skipped} == set(before)
    assert {r.video for r in resumed.done} == {str(v) for v in k["unfinished"]}
    for p, mtime in before.items():
        assert p.stat().st_mtime_ns == mtime, f"{p} was rewritten"
    # Exactly one valid result per video, and nothing else: no temp/partial files, no duplicates.
    for v in videos:
        assert _valid_pose(out / f"{v.stem}.json", v), v
    files = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert files == sorted([f"{v.stem}.json" for v in videos] + [SUMMARY_NAME])
    summary = json.loads((out / SUMMARY_NAME).read_text())
    assert summary["state"] == "finished"
    assert summary["totals"] == {"done": len(k["unfinished"]), "skipped": len(before), "failed": 0, "pending": 0}
    assert sorted(r["video"] for r in summary["videos"]) == sorted(str(v) for v in videos)


def test_pose_model_loads_once_per_worker_not_once_per_video(killed_and_resumed):
    resumed = killed_and_resumed["resumed"]
    done_per_worker: dict[str, int] = {}
    for r in resumed.done:
        key = f"{r.worker} (pid {r.pid})"
        done_per_worker[key] = done_per_worker.get(key, 0) + 1
    loads = resumed.model_loads
    # Every worker that extracted anything loaded the model exactly once, and at least one
    # of them extracted several videos with it.
    assert done_per_worker and max(done_per_worker.values()) >= 2
    assert {w: loads[w] for w in done_per_worker} == {w: 1 for w in done_per_worker}
    assert sum(loads.values()) < len(resumed.done)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_batch_runs_through_a_scheduler_and_two_worker_processes_started_with_the_dask_cli(tmp_path):
    from distributed import Client

    folder = _link_videos(tmp_path / "in", ["correct_side.mp4", "knee_dominant_side.mp4",
                                            "knee_dominant_middle.mp4", "correct_middle.mp4"])
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask_cli = [sys.executable, "-m", "dask"]
    procs = []
    logs = []
    try:
        def start(name, args):
            f = open(tmp_path / f"{name}.log", "wb")
            logs.append(f)
            procs.append(subprocess.Popen(dask_cli + args, cwd=tmp_path, env=_env(), stdout=f,
                                          stderr=subprocess.STDOUT, start_new_session=True))

        start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"])
        for i in (1, 2):
            start(f"worker{i}", ["worker", address, "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard",
                                 "--name", f"w{i}", "--local-directory", str(tmp_path / f"w{i}")])
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=90)
            worker_addresses = set(client.scheduler_info()["workers"])
        result = run_batch(folder, tmp_path / "out", scheduler=address, **FAST)
        assert result.scheduler == address and result.n_workers == 2
        assert len(result.done) == 4 and not result.failed and not result.skipped
        # Both external workers did work, each loading its model once.
        assert {r.worker for r in result.done} == worker_addresses
        assert sorted(result.model_loads.values()) == [1, 1]
        for v in folder.iterdir():
            assert _valid_pose(tmp_path / "out" / f"{v.stem}.json", v), v
    finally:
        for p in reversed(procs):
            _stop_group(p, signal.SIGTERM)
        for f in logs:
            f.close()


def test_a_bad_file_is_recorded_as_failed_and_the_rest_finish_with_analysis(tmp_path, capsys):
    folder = _link_videos(tmp_path / "in", ["correct_side.mp4"])
    _link_videos(folder / "sub", ["knee_dominant_side.mp4"])  # outputs mirror sub-folders
    (folder / "broken.mp4").write_text("this is not a video\n")
    out = tmp_path / "out"
    args = argparse.Namespace(input_folder=str(folder), out=str(out), workers=2, scheduler=None, analyze=True,
                              stride=STRIDE, no_videos=True, quiet=True)
    assert cmd_batch(args) == 1
    printed = capsys.readouterr()
    assert "failed         1" in printed.out and "done           2" in printed.out
    err_lines = printed.err.strip().splitlines()
    assert len(err_lines) == 1 and "broken.mp4: cannot be opened as a video" in err_lines[0]
    assert "Traceback" not in printed.err
    summary = json.loads((out / SUMMARY_NAME).read_text())
    assert summary["totals"]["failed"] == 1 and summary["totals"]["done"] == 2
    assert summary["failed"][0]["video"] == str(folder / "broken.mp4")
    assert "cannot be opened as a video" in summary["failed"][0]["error"]
    for stem in ("correct_side", "sub/knee_dominant_side"):
        assert _valid_pose(out / f"{stem}.json", folder / f"{stem}.mp4")
        report = json.loads((out / f"{stem}_report.json").read_text())
        assert report["schema"] == "deadlift-analysis/1" and report["frame_stride"] == STRIDE

    # A report cut short (killed while being written by an older tool) is redone from the
    # existing pose file: that video's worker extracts nothing and loads no model.
    pose_mtime = (out / "correct_side.json").stat().st_mtime_ns
    (out / "correct_side_report.json").write_text('{"schema": "deadlift-analysis/1", "verd')
    again = run_batch(folder, out, workers=2, analyze=True, **FAST)
    rows = {Path(r.video).name: r for r in again.rows}
    assert rows["correct_side.mp4"].status == "done" and rows["correct_side.mp4"].model_loads == 0
    assert rows["knee_dominant_side.mp4"].status == "skipped"
    assert rows["broken.mp4"].status == "failed"
    assert (out / "correct_side.json").stat().st_mtime_ns == pose_mtime
    assert json.loads((out / "correct_side_report.json").read_text())["pose_backend"] == "blazepose-full"


def test_cli_missing_folder_is_one_line_error_without_starting_a_cluster(tmp_path):
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "deadlift_utils", "batch", str(tmp_path / "nope"), "--out",
                           str(tmp_path / "out")], cwd=config.PROJECT_ROOT, env=_env(), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope'}: no such folder. "
                                                f"Pass the folder that holds your videos."]
    assert not (tmp_path / "out").exists()
    assert time.monotonic() - t0 < 30
