"""Every shared source of labelled deadlifts as one list of clips, for norms and evaluation.

Sources (../shared/data, see its README): the study's `esap_pose` (OpenPose, 56 files),
`openpose_sequences` (5 lifters, OpenPose BODY_25 -> COCO), and three video folders whose
poses are extracted here with the same settings `analyze` uses (BlazePose full, frame stride
2, smoothing 5, shot cuts; the back's shape from the segmentation mask; the barbell plate,
which bar_drift judges where it was tracked) and cached:
`yfgd_small`, `kettlebell_errors`, `tutorial_dev`.

`load_clips()` returns a list of `Clip` (source, group, name, label, error, view, seq). Groups
keep footage of one recording / lifter together: the study's recordings (dataset.py finds the
clips cut from one recording), a lifter in openpose_sequences and kettlebell_errors, one scene
per yfgd_small folder, the labelled groups of tutorial_dev.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from . import config

SOURCES = ("esap_pose", "openpose_sequences", "yfgd_small", "kettlebell_errors", "tutorial_dev")
ANALYZE_STRIDE = 2
YFGD_DIAGONAL = {"bad_001", "bad_004", "bad_005", "bad_006", "bad_007"}


@dataclass
class Clip:
    source: str
    group: str
    name: str
    label: str             # "good" / "bad"
    error: str             # named fault or "" (unknown for the study's bad files: "unnamed")
    view: str              # "front" / "middle" / "side"
    seq: object            # pose.PoseSequence
    reps_expected: int | None = None
    video: Path | None = None


def _csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def video_pose(video: Path, cache_dir: Path, rel: Path, spine: bool = True, estimator=None, bar: bool = True):
    """The cached pose of a shared video (extracted once with analyze's settings, the bar
    tracker included: the pose file's "bar" field)."""
    from .extract import analysis_frame_analyzers, extract_video

    out = cache_dir / rel.parent
    return extract_video(video, out, frame_stride=ANALYZE_STRIDE, write_videos=False,
                         frame_analyzers=analysis_frame_analyzers(spine, bar=bar), estimator=estimator).sequence


# The modules whose code decides an extracted pose file (keypoints, shots, spine, bar).
POSE_CODE = ("estimators.py", "extract.py", "keypoints.py", "video.py", "bar.py", "spine.py", "trust.py")


def pose_code_version() -> str:
    """A short hash of the code that makes the cached pose files: a change to the estimator or an
    analyzer gets a fresh cache folder, where extract_video's own check (same parameters, newer
    than the video) would reuse files made by the old code."""
    import hashlib

    from .io_utils import file_sha256

    digests = "".join(file_sha256(Path(__file__).parent / name) for name in POSE_CODE)
    return hashlib.sha256(digests.encode()).hexdigest()[:12]


def load_clips(data_dir=None, cache_dir=None, sources=SOURCES, spine: bool = True, progress: bool = True) -> list[Clip]:
    """Every clip of the five shared sources, labelled. Video clips are extracted once with
    `analyze`'s settings into `cache_dir/code-<pose_code_version()>/` and reused from there."""
    from .dataset import assign_recording_groups, load_esap
    from .estimators import LazyEstimator
    from .pose import load_pose_json

    data_dir = Path(data_dir or config.SHARED_DATA_DIR)
    cache_dir = Path(cache_dir or config.OUTPUTS_DIR / "cache" / "eval_poses") / f"code-{pose_code_version()}"
    clips: list[Clip] = []
    if "esap_pose" in sources:
        vids = assign_recording_groups(load_esap(data_dir / "esap_pose"))
        for v in vids:
            clips.append(Clip("esap_pose", f"esap:{v.group}", v.video_id, v.form, "" if v.form == "good" else "unnamed",
                              v.view, v.seq))
    if "openpose_sequences" in sources:
        d = data_dir / "openpose_sequences"
        for r in _csv_rows(d / "labels.csv"):
            clips.append(Clip("openpose_sequences", f"op:{r['subject']}", r["file"], r["label"], r["error"] or "",
                              r["view"], load_pose_json(d / r["file"])))
    est = LazyEstimator("blazepose", "full", {"segmentation": True} if spine else {})
    try:
        for src, sub in (("yfgd_small", "videos/yfgd_small"), ("kettlebell_errors", "videos/kettlebell_errors"),
                         ("tutorial_dev", "videos/tutorial_dev")):
            if src not in sources:
                continue
            d = data_dir / sub
            rows = _csv_rows(d / "labels.csv")
            it = rows
            if progress:
                from tqdm.auto import tqdm

                it = tqdm(rows, desc=src, unit="video")
            for r in it:
                rel = Path(r["video"])
                video = d / rel
                seq = video_pose(video, cache_dir / src, rel, spine=spine, estimator=est)
                if src == "yfgd_small":
                    group = f"yfgd:{rel.parts[0]}"
                    # The README: bad_001, 004-007 are the close front-diagonal camera.
                    view = r.get("view") or ("middle" if rel.stem in YFGD_DIAGONAL else "side")
                    error = ""
                elif src == "kettlebell_errors":
                    group, view, error = "kb:S1", r["view"], r["error"] or ""
                else:
                    group, view, error = f"tut:{r['group']}", r["view"], r["error"] or ""
                reps = int(r["reps"]) if r.get("reps") else None
                clips.append(Clip(src, group, rel.as_posix(), r["label"], error, view, seq, reps, video))
    finally:
        est.close()
    return clips
