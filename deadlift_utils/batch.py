"""Batch stage: pose extraction (and analysis) over many videos on Dask.

    run_batch(INPUT_FOLDER, OUT_DIR)               # a LocalCluster on this machine
    run_batch(INPUT_FOLDER, OUT_DIR, scheduler="tcp://HOST:8786")   # an existing cluster

One Dask task per video. Each task writes its video's outputs itself (the same files as
`extract_folder`, mirroring the input's sub-folders; with `analyze` also the analysis
report) as soon as it finishes, so a killed batch resumes by skipping videos whose outputs
are valid: the pose JSON passes `extract_video`'s own check (schema, parameters, newer than
the video, both videos present) and, with `analyze`, `<stem>_report.json` parses and was made
from that pose file with the same parameters. A video that fails is recorded with its error
and the others carry on. `out_dir/batch_summary.json` holds every video's row, rewritten
atomically while the batch runs.

The pose model loads once per worker thread (a cache inside the worker process, see
`_cached_estimator`), not once per video; each row carries the worker's load count so the
claim can be checked (`BatchResult.model_loads`).

The CLI entry is cli.cmd_batch:
    python -m deadlift_utils batch INPUT_FOLDER --out DIR [--workers N] [--scheduler tcp://HOST:PORT] [--analyze]
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .estimators import ESTIMATOR_OPTIONS, LazyEstimator
from .io_utils import atomic_write_text
from .quiet import QUIET_ENV, quiet_environment

SUMMARY_NAME = "batch_summary.json"
SUMMARY_SCHEMA = "deadlift-batch/1"
STATUSES = ("done", "skipped", "failed")
# Keyword options run_batch passes on: to extract_video, and to the pose estimator.
EXTRACT_OPTIONS = ("smoothing_window", "backend", "write_videos", "video_format", "max_video_height")
ANALYZE_OPTIONS = ("use_openai", "openai_model")
SUMMARY_EVERY_S = 2.0          # rewrite batch_summary.json at most this often while running
EXPECTED_ERRORS = (FileNotFoundError, ValueError, RuntimeError)

log = logging.getLogger(__name__)


@dataclass
class VideoRow:
    video: str                  # path of the input video
    status: str                 # "done" | "skipped" | "failed"
    seconds: float = 0.0        # time spent on this video inside its worker
    frames: int = 0             # sampled frames in its pose sequence
    error: str | None = None    # the failure message (status "failed")
    pose_path: str | None = None
    report_path: str | None = None
    worker: str | None = None   # Dask worker address
    pid: int | None = None      # worker process id
    model_loads: int = 0        # pose models loaded so far by that worker process


@dataclass
class BatchResult:
    rows: list[VideoRow]
    wall_seconds: float                   # first task submitted -> last result in
    cluster_seconds: float = 0.0          # starting / connecting to the cluster
    n_workers: int = 0
    scheduler: str | None = None
    dashboard_link: str | None = None
    summary_path: Path | None = None
    params: dict = field(default_factory=dict)

    def by_status(self, status: str) -> list[VideoRow]:
        return [r for r in self.rows if r.status == status]

    @property
    def done(self) -> list[VideoRow]:
        return self.by_status("done")

    @property
    def skipped(self) -> list[VideoRow]:
        return self.by_status("skipped")

    @property
    def failed(self) -> list[VideoRow]:
        return self.by_status("failed")

    @property
    def frames_per_second(self) -> float:
        """Sampled frames processed by this run (skipped videos excluded) per wall second."""
        return sum(r.frames for r in self.done) / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def videos_per_minute(self) -> float:
        return len(self.done) * 60.0 / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def model_loads(self) -> dict[str, int]:
        """{"worker address (pid N)": pose models loaded by that worker process}."""
        loads: dict[str, int] = {}
        for r in self.rows:
            if r.worker is not None:
                key = f"{r.worker} (pid {r.pid})"
                loads[key] = max(loads.get(key, 0), r.model_loads)
        return loads

    def table(self) -> str:
        """The final table: videos, sampled frames and worker seconds per status, then rates."""
        lines = [f"{'status':<8} {'videos':>7} {'frames':>8} {'seconds':>9}"]
        for status in STATUSES:
            rows = self.by_status(status)
            lines.append(f"{status:<8} {len(rows):>7} {sum(r.frames for r in rows):>8} "
                         f"{sum(r.seconds for r in rows):>9.1f}")
        lines.append(f"{'total':<8} {len(self.rows):>7}")
        lines.append(f"wall {self.wall_seconds:.1f} s on {self.n_workers} worker(s) "
                     f"(+{self.cluster_seconds:.1f} s cluster start): {self.videos_per_minute:.1f} videos/min, "
                     f"{self.frames_per_second:.1f} frames/s overall")
        return "\n".join(lines)

    def to_records(self) -> list[dict]:
        """One dict per video (e.g. for pandas.DataFrame)."""
        return [asdict(r) for r in self.rows]

    def __repr__(self) -> str:
        return (f"BatchResult(done={len(self.done)}, skipped={len(self.skipped)}, failed={len(self.failed)}, "
                f"wall_seconds={self.wall_seconds:.1f}, frames_per_second={self.frames_per_second:.1f})")


# ----------------------------------------------------------------------------- worker side
# Everything below up to run_batch runs inside the Dask worker processes.

_ESTIMATORS: dict = {}
_CACHE_LOCK = threading.Lock()
_MODEL_LOADS = 0  # pose models loaded by this process (the "once per worker" proof)


def _count_load(est: LazyEstimator) -> None:
    global _MODEL_LOADS
    with _CACHE_LOCK:
        _MODEL_LOADS += 1
    log.info("pose model %s/%s loaded in pid %d (load #%d)", est.backend, est.variant, os.getpid(), _MODEL_LOADS)


def _cached_estimator(backend: str, variant: str, options: dict) -> LazyEstimator:
    """This worker thread's estimator for (backend, variant, options), made on first call.

    Keyed by thread too: a MediaPipe VIDEO-mode landmarker is stateful (increasing
    timestamps), so two threads of one worker must not share it.
    """
    key = (backend, variant, tuple(sorted(options.items())), threading.get_ident())
    with _CACHE_LOCK:
        est = _ESTIMATORS.get(key)
        if est is None:
            # Dask keeps its executor threads, but a thread that did end must not keep a model.
            alive = {t.ident for t in threading.enumerate()}
            gone = [k for k in _ESTIMATORS if k[-1] not in alive]
            for k in gone:
                _ESTIMATORS.pop(k).close()
            est = _ESTIMATORS[key] = LazyEstimator(backend, variant, options, on_load=_count_load)
    return est


def _drop_estimator(est: LazyEstimator) -> None:
    """Forget an estimator after an unexpected error (its native state is suspect)."""
    with _CACHE_LOCK:
        for k, v in list(_ESTIMATORS.items()):
            if v is est:
                del _ESTIMATORS[k]
    try:
        est.close()
    except Exception as e:  # closing a broken model must not hide the video's own error
        log.warning("closing a pose model after an error failed: %s", e)


def close_cached_estimators() -> int:
    """Close every cached estimator of this process; returns how many were open."""
    with _CACHE_LOCK:
        ests = list(_ESTIMATORS.values())
        _ESTIMATORS.clear()
    from .estimators import _quiet_native_stderr

    with _quiet_native_stderr():  # LiteRT logs each accelerator it frees
        for est in ests:
            est.close()
    return len(ests)


try:
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # dask not installed: run_batch says so when called
    WorkerPlugin = object


class PoseModelPlugin(WorkerPlugin):
    """Quiets TF/MediaPipe start-up logging on each worker and closes its cached pose models
    when the worker shuts down (MediaPipe otherwise complains from __del__ at exit)."""

    name = "deadlift-pose-models"

    def setup(self, worker=None):
        quiet_environment()

    def teardown(self, worker=None):
        close_cached_estimators()


def _stale_temp_files(out_dir: Path, names: list[str]) -> list[Path]:
    """Temp files a killed run may have left for these output names: atomic_write_text's
    `.<name>.XXXXXXXX.tmp` and VideoWriter's `.<stem>.partial.<ext>`."""
    if not out_dir.is_dir():
        return []
    patterns = []
    for name in names:
        p = Path(name)
        patterns.append(re.compile(rf"^\.{re.escape(name)}\.[A-Za-z0-9_]{{8}}\.tmp$"))
        patterns.append(re.compile(rf"^\.{re.escape(p.stem)}\.partial{re.escape(p.suffix)}$"))
    return [f for f in out_dir.iterdir() if f.name.startswith(".") and any(rx.match(f.name) for rx in patterns)]


def _output_names(stem: str, video_format: str) -> list[str]:
    return [f"{stem}.json", f"{stem}_skeleton.{video_format}", f"{stem}_overlay.{video_format}",
            f"{stem}_report.json", f"{stem}_report.html", f"{stem}_annotated.mp4"]


def report_is_valid(report_path: Path, pose_path: Path, frame_stride: int, backend_name: str) -> bool:
    """An analysis report counts as finished if it parses, has the analysis schema, was made
    from pose data with these parameters, and is not older than the pose file."""
    from .analyze import REPORT_SCHEMA

    if not report_path.is_file() or not pose_path.is_file():
        return False
    if report_path.stat().st_mtime < pose_path.stat().st_mtime:
        return False
    try:
        data = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return (isinstance(data, dict) and data.get("schema") == REPORT_SCHEMA
            and data.get("frame_stride") == frame_stride and data.get("pose_backend") == backend_name)


def _worker_identity() -> str | None:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):  # called outside a Dask worker (e.g. directly in a test)
        return None


def process_video(video: str, out_dir: str, options: dict) -> dict:
    """One batch task: extract (and analyse) one video into `out_dir`; never raises.

    options: frame_stride, model_variant, redo, analyze, the EXTRACT_OPTIONS, and
    "estimator" (dict of ESTIMATOR_OPTIONS) and "analysis" (dict of ANALYZE_OPTIONS).
    Returns a VideoRow as a dict.
    """
    from .extract import extract_video

    t0 = time.perf_counter()
    video_path, out_path = Path(video), Path(out_dir)
    row = VideoRow(video=video, status="failed", worker=_worker_identity(), pid=os.getpid())
    opts = dict(options)
    analyze = opts.pop("analyze", False)
    analysis = opts.pop("analysis", {})
    est_opts = opts.pop("estimator", {})
    backend = opts.get("backend", "blazepose")
    variant = opts.get("model_variant", "full")
    if analyze and backend == "blazepose":
        est_opts = {**est_opts, "segmentation": True}   # the back's outline needs the mask
    est = _cached_estimator(backend, variant, est_opts)
    try:
        for f in _stale_temp_files(out_path, _output_names(video_path.stem, opts.get("video_format", "mp4"))):
            f.unlink(missing_ok=True)
        if analyze:  # the analysis reads the shot cuts, the back's outline and the bar
            from .extract import analysis_frame_analyzers

            opts["frame_analyzers"] = analysis_frame_analyzers(spine=backend == "blazepose")
        res = extract_video(video_path, out_path, estimator=est, progress=False, **opts)
        row.pose_path, row.frames = str(res.pose_path), len(res.sequence)
        row.status = "skipped" if res.skipped else "done"
        if analyze:
            report_path = out_path / f"{video_path.stem}_report.json"
            row.report_path = str(report_path)
            if opts.get("redo") or not report_is_valid(report_path, res.pose_path, res.sequence.frame_stride,
                                                       res.sequence.backend):
                _analyze(res, out_path, write_video=opts.get("write_videos", True), **analysis)
                row.status = "done"
    except EXPECTED_ERRORS as e:
        row.status, row.error = "failed", str(e) if str(video_path) in str(e) else f"{video_path}: {e}"
    except Exception as e:  # an unforeseen failure is recorded too: one video must not stop the batch
        row.status, row.error = "failed", f"{video_path}: {type(e).__name__}: {e}"
        _drop_estimator(est)
    row.seconds = round(time.perf_counter() - t0, 3)
    row.model_loads = _MODEL_LOADS
    return asdict(row)


def _analyze(res, out_dir: Path, write_video: bool = True, use_openai: bool = False,
             openai_model: str = "gpt-4o-mini") -> None:
    """analyze_video's steps after extraction, on the pose this worker just made or reused."""
    from .analyze import analyze_pose
    from .report import finish_report

    t0 = time.perf_counter()
    report = analyze_pose(res.sequence, openai_model=openai_model, use_openai=use_openai,
                          cache_path=out_dir / "feedback_cache.json" if use_openai else None,
                          video=str(res.video_path))
    finish_report(report, out_dir, Path(res.video_path).stem, res.video_path, res.sequence.frame_stride,
                  res.pose_path, pose_seconds=res.seconds, started=t0, write_video=write_video)


# ----------------------------------------------------------------------------- client side


def _plan(input_folder: Path, out_dir: Path) -> tuple[list[tuple[Path, Path]], list[VideoRow]]:
    """(video, its output folder) for every video, largest first (so the long ones do not
    finish last), plus failed rows for videos whose outputs would overwrite another's."""
    from .video import list_videos

    videos = list_videos(input_folder)
    jobs, clashes, owner = [], [], {}
    for v in videos:
        sub = out_dir / v.parent.relative_to(input_folder)
        key = sub / v.stem
        if key in owner:
            clashes.append(VideoRow(str(v), "failed", error=f"{v}: has the same name stem as {owner[key]}, so "
                                    f"their outputs would overwrite each other. Rename one of them."))
            continue
        if sub == out_dir and v.stem == Path(SUMMARY_NAME).stem:
            clashes.append(VideoRow(str(v), "failed", error=f"{v}: its pose file would overwrite the batch "
                                    f"summary {SUMMARY_NAME}. Rename the video."))
            continue
        owner[key] = v
        jobs.append((v, sub))
    jobs.sort(key=lambda j: -j[0].stat().st_size)
    return jobs, clashes


def _start_client(workers: int, scheduler: str | None, worker_wait_s: float):
    """(client, cluster or None, dashboard link or None)."""
    import importlib.util

    # Without bokeh a local dashboard would only say "install bokeh": then show no link. A
    # remote scheduler's link is shown as it reports it (its host may have bokeh).
    has_bokeh = importlib.util.find_spec("bokeh") is not None
    try:
        from distributed import Client, LocalCluster
    except ImportError as e:
        raise RuntimeError(f"Dask is not installed ({e}). Install the project's requirements "
                           f"(dask[distributed]).") from None
    if scheduler:
        try:
            client = Client(scheduler, timeout="15s")
        except (OSError, TimeoutError) as e:
            raise RuntimeError(f"cannot reach the Dask scheduler at {scheduler} ({e}). Start it with "
                               f"`dask scheduler` and pass the address it prints.") from None
        cluster = None
        try:
            client.wait_for_workers(1, timeout=worker_wait_s)
        except TimeoutError:
            client.close()
            raise RuntimeError(f"no Dask workers joined the scheduler at {scheduler} within {worker_wait_s:.0f} s. "
                               f"Start some: dask worker {scheduler} --nthreads 1") from None
    else:
        # One thread per process: pose models are CPU-bound and hold the GIL at times, so
        # processes (not threads) give the parallelism. The environment hides TF/MediaPipe/FFmpeg
        # chatter in the workers (a failing video's error is recorded in its row anyway).
        cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address="127.0.0.1:8787" if has_bokeh else None,
                               silence_logs=logging.ERROR,
                               env={k: os.environ.get(k, v) for k, v in QUIET_ENV.items()})
        client = Client(cluster)
    dashboard = None
    if (scheduler or has_bokeh) and "dashboard" in client.scheduler_info().get("services", {}):
        dashboard = client.dashboard_link
    client.register_plugin(PoseModelPlugin())
    return client, cluster, dashboard


def _summary(result: BatchResult, input_folder: Path, out_dir: Path, state: str, started: str,
             pending: int) -> str:
    return json.dumps({
        "schema": SUMMARY_SCHEMA, "state": state, "started": started,
        "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input_folder": str(input_folder), "out_dir": str(out_dir), "params": result.params,
        "scheduler": result.scheduler, "dashboard_link": result.dashboard_link, "n_workers": result.n_workers,
        "totals": {s: len(result.by_status(s)) for s in STATUSES} | {"pending": pending},
        "wall_seconds": round(result.wall_seconds, 3), "cluster_seconds": round(result.cluster_seconds, 3),
        "frames_per_second": round(result.frames_per_second, 3),
        "videos_per_minute": round(result.videos_per_minute, 3),
        "model_loads": result.model_loads,
        "failed": [{"video": r.video, "error": r.error} for r in result.failed],
        "videos": result.to_records(),
    }, indent=1)


def run_batch(
    input_folder: str | os.PathLike,
    out_dir: str | os.PathLike,
    workers: int = 2,
    scheduler: str | None = None,
    analyze: bool = False,
    frame_stride: int = 5,
    model_variant: str = "full",
    redo: bool = False,
    progress: bool = True,
    worker_wait_s: float = 60.0,
    **extract_options,
) -> BatchResult:
    """Extract the pose of every video under `input_folder` (and analyse it) on Dask.

    workers: local worker processes (one thread each) when no `scheduler` is given;
    scheduler: "tcp://HOST:PORT" of a running Dask scheduler (its workers are used, `workers`
    is ignored; they must see `input_folder` and `out_dir` at the same paths and have the
    project and the pose models installed). analyze: also write the analysis report per video
    (offline coaching text unless use_openai=True). redo: recompute valid results too.
    extract_options: smoothing_window, backend, write_videos, video_format, max_video_height
    (as extract_video), the estimator options (num_poses, min_confidence, keypoint_threshold,
    models_dir, threads: pose-model threads per worker, by default the machine's cores shared
    out between local workers) and use_openai / openai_model for the analysis.
    Writes per video the files extract_folder writes (sub-folders mirrored), with `analyze`
    also `<stem>_report.json/.html` and plots, and `out_dir/batch_summary.json`.
    Raises FileNotFoundError / ValueError for a missing or empty folder or unknown options and
    RuntimeError when the cluster cannot be reached; a failing video is a "failed" row.
    """
    input_folder, out_dir = Path(input_folder), Path(out_dir)
    unknown = set(extract_options) - set(EXTRACT_OPTIONS) - set(ESTIMATOR_OPTIONS) - set(ANALYZE_OPTIONS)
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))}; run_batch accepts "
                         f"{', '.join(EXTRACT_OPTIONS + ESTIMATOR_OPTIONS + ANALYZE_OPTIONS)}")
    if int(frame_stride) != frame_stride or frame_stride < 1:
        raise ValueError(f"frame_stride must be a whole number >= 1, got {frame_stride!r}")
    if not scheduler and (int(workers) != workers or workers < 1):
        raise ValueError(f"workers must be a whole number >= 1, got {workers!r}")
    if out_dir.resolve() == input_folder.resolve():
        raise ValueError(f"{out_dir}: the output folder is the input folder; pass another --out.")
    jobs, clashes = _plan(input_folder, out_dir)
    backend = extract_options.get("backend", "blazepose")
    est_opts = {k: extract_options[k] for k in ESTIMATOR_OPTIONS if k in extract_options}
    if backend == "blazepose" and not scheduler and "threads" not in est_opts:
        # Local workers share this machine's cores: the pose threads of all of them fill it once.
        est_opts["threads"] = max(1, (os.cpu_count() or 1) // int(workers))
    if backend == "blazepose" and not scheduler:
        # Every video would fail with the same message: say it once, before starting workers.
        from .pose_models import task_path

        path = task_path(model_variant, est_opts.get("models_dir"))
        if not path.is_file():
            raise FileNotFoundError(f"{path}: BlazePose model not installed. Run `make models` "
                                    f"(or python -m deadlift_utils models).")
    options = {"frame_stride": int(frame_stride), "model_variant": model_variant, "redo": bool(redo),
               "analyze": bool(analyze), "estimator": est_opts,
               "analysis": {k: extract_options[k] for k in ANALYZE_OPTIONS if k in extract_options},
               **{k: extract_options[k] for k in EXTRACT_OPTIONS if k in extract_options}}

    out_dir.mkdir(parents=True, exist_ok=True)
    summary_path = out_dir / SUMMARY_NAME
    for f in _stale_temp_files(out_dir, [SUMMARY_NAME]):
        f.unlink(missing_ok=True)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    client, cluster, dashboard = _start_client(workers, scheduler, worker_wait_s)
    result = BatchResult(rows=list(clashes), wall_seconds=0.0, cluster_seconds=time.perf_counter() - t0,
                         n_workers=len(client.scheduler_info().get("workers", {})),
                         scheduler=client.scheduler.address, dashboard_link=dashboard, summary_path=summary_path,
                         params={k: v for k, v in options.items() if k != "estimator"} | est_opts)
    if progress:
        where = scheduler or f"a local cluster of {result.n_workers} worker(s)"
        note = f"Dask dashboard: {dashboard}" if dashboard else "no Dask dashboard (pip install 'bokeh>=3.1' for one)"
        print(f"batch: {len(jobs)} video(s) on {where}; {note}", flush=True)
    state = "interrupted"
    bar = None
    try:
        from distributed import as_completed

        atomic_write_text(summary_path, _summary(result, input_folder, out_dir, "running", started, len(jobs)))
        t_submit = time.perf_counter()
        batch_id = uuid.uuid4().hex[:8]
        futures = {client.submit(process_video, str(v), str(sub), options, key=f"deadlift-{batch_id}-{i}",
                                 retries=0): v for i, (v, sub) in enumerate(jobs)}
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(futures), desc="videos", unit="video")
        last_write = time.perf_counter()
        counts = {st: len(result.by_status(st)) for st in STATUSES}
        for fut, value in as_completed(futures, with_results=True, raise_errors=False):
            if isinstance(value, dict):
                row = VideoRow(**value)
            else:  # the task itself did not run to the end: a killed worker, a lost connection
                row = VideoRow(str(futures[fut]), "failed", error=f"{futures[fut]}: {type(value).__name__}: {value}")
            result.rows.append(row)
            counts[row.status] += 1
            result.wall_seconds = time.perf_counter() - t_submit
            if bar is not None:
                bar.set_postfix(counts, refresh=False)
                bar.update(1)
            if time.perf_counter() - last_write >= SUMMARY_EVERY_S:
                atomic_write_text(summary_path, _summary(result, input_folder, out_dir, "running", started,
                                                         len(futures) + len(clashes) - len(result.rows)))
                last_write = time.perf_counter()
        result.wall_seconds = time.perf_counter() - t_submit
        state = "finished"
    finally:
        if bar is not None:
            bar.close()
        result.rows.sort(key=lambda r: r.video)
        try:
            atomic_write_text(summary_path, _summary(result, input_folder, out_dir, state, started,
                                                     len(jobs) + len(clashes) - len(result.rows)))
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    return result
