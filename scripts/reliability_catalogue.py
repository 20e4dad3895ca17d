"""Run every bad input of the catalogue through the CLI and the Python API; write the table.

    python scripts/reliability_catalogue.py [--doc docs/reliability_catalogue.md]

The cases are the ones tests/test_bad_inputs.py asserts on (CASES there), so the table shows
what a real run printed, not what someone remembered: for each bad input, every command's
exit code and the line the user sees, and what the Python API raised or returned. The
portrait phone video and the folder runs (extract FOLDER, batch FOLDER) are run too. Input
files are made in a temp folder, shown as <tmp> in the table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import test_bad_inputs as T  # noqa: E402

from deadlift_utils import config  # noqa: E402


def cell(text: str, tmp: Path) -> str:
    text = str(text).replace(str(tmp), "<tmp>").replace(str(config.SHARED_DATA_DIR), "<shared data>")
    text = text.replace(str(ROOT) + "/", "")
    return text.replace("|", "\\|").replace("\n", " ")


def shown(proc, expect) -> str:
    """What the user sees: the error line; else the output lines carrying the outcome."""
    if proc.returncode != 0:
        lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
        return " / ".join(lines) or proc.stderr.strip()[-300:]
    try:  # classify prints JSON: show its verdict and the first frame probabilities
        r = json.loads(proc.stdout)
        return (f'{{"verdict": "{r["verdict"]}", "frame_probabilities": '
                f'{json.dumps(r["frame_probabilities"][:5])[:-1]}, ...]}}')
    except (ValueError, KeyError, TypeError):
        pass
    keys = [e.split("\n")[0] for e in expect]
    lines = [l for l in (proc.stderr + proc.stdout).splitlines() if any(k in l for k in keys)]
    return " / ".join(lines) or proc.stdout.strip().splitlines()[-1]


def api_text(result, text: str) -> str:
    if isinstance(result, dict) and "frame_probabilities" in result:
        return f"dict: verdict {result['verdict']!r}, frame_probabilities {result['frame_probabilities'][:5]}..."
    return text


def command(args) -> str:
    return "`" + " ".join(["python -m deadlift_utils", *args]) + "`"


TALLY = {"commands": 0, "errors": 0, "graceful": 0, "tracebacks": 0, "unexpected": 0}


def run_cases(tmp: Path, src) -> list[str]:
    rows = []
    for case in T.CASES:
        d = tmp / case.id
        d.mkdir()
        path = case.make(d, src)
        cli_parts = []
        for k, cli in enumerate(case.cli):
            args = T.fill(cli.args, path, d / f"out{k}", src, d)
            proc = T.run_cli(*args)
            mark = "" if proc.returncode == cli.exit and "Traceback" not in proc.stderr else " **(unexpected)**"
            TALLY["commands"] += 1
            TALLY["errors" if proc.returncode else "graceful"] += 1
            TALLY["tracebacks"] += "Traceback" in proc.stderr
            TALLY["unexpected"] += bool(mark)
            cli_parts.append(f"{command(args)} -> exit {proc.returncode}{mark}: `{shown(proc, cli.expect)}`")
        result, text = T.api_outcome(case, path, d / "api_out", src)
        ok = isinstance(result, case.raises) if case.raises else not isinstance(result, Exception)
        api = f"`{case.api_text}` -> {'' if ok else '**(unexpected)** '}{api_text(result, text)}"
        TALLY["unexpected"] += not ok
        rows.append(f"| {cell(case.what, tmp)} | {cell('<br>'.join(cli_parts), tmp)} | {cell(api, tmp)} |")
        print(f"{case.id}: done", flush=True)
    return rows


def run_rotated(tmp: Path, src) -> str:
    from deadlift_utils.extract import extract_video
    from deadlift_utils.keypoints import KP
    from deadlift_utils.pose import load_pose_json
    from deadlift_utils.video import probe_video

    clip = T.real_segment(src.kettlebell, tmp / "phone_portrait.mp4", rotate_stored=True)
    args = ["extract", str(clip), "--out", str(tmp / "rot_cli"), "--quiet", "--stride", str(T.STRIDE),
            "--model", T.MODEL, "--no-videos"]
    proc = T.run_cli(*args)
    seq = load_pose_json(tmp / "rot_cli" / "phone_portrait.json")

    def y(*names):
        import numpy as np
        return float(np.nanmedian(seq.keypoints_xy[:, [KP[n] for n in names], 1]))

    info = probe_video(clip)
    res = extract_video(clip, tmp / "rot_api", frame_stride=T.STRIDE, model_variant=T.MODEL)
    import cv2

    cap = cv2.VideoCapture(str(res.overlay_path))
    frame = cap.read()[1]
    cap.release()
    cli = (f"{command(args)} -> exit {proc.returncode}: `{shown(proc, ['phone_portrait.json'])}`; in the JSON "
           f"width x height {seq.width}x{seq.height}, median image y: shoulders {y('r_shoulder', 'l_shoulder'):.0f} "
           f"< hips {y('r_hip', 'l_hip'):.0f} < ankles {y('r_ankle', 'l_ankle'):.0f} (upright)")
    api = (f"`probe_video(path)` -> {info}; `extract_video(path, out)` -> keypoints in the displayed "
           f"{res.sequence.width}x{res.sequence.height} frame, overlay video frames {frame.shape[1]}x{frame.shape[0]} "
           f"(portrait)")
    what = ("a portrait phone video with rotation metadata (2 s of a real 360x640 clip stored as 640x360 "
            "with a display-rotation tag)")
    return f"| {cell(what, tmp)} | {cell(cli, tmp)} | {cell(api, tmp)} |"


def run_folders(tmp: Path, src) -> list[str]:
    from deadlift_utils.batch import run_batch
    from deadlift_utils.extract import extract_folder

    folder = tmp / "mixed" / "videos"
    (folder / "sub").mkdir(parents=True)
    T.real_segment(src.kettlebell, folder / "clip.mp4")
    T.write_video(folder / "sub" / "one_frame.mp4", [T.scene()])
    (folder / "notes.mp4").write_text("not a video\n")
    T._make_truncated(folder, src)
    T.write_video(folder / "zero_frames.mp4", [])
    import cv2

    (folder / "sub" / "photo.mp4").write_bytes(cv2.imencode(".jpg", T.scene())[1].tobytes())
    (folder / "empty.mp4").write_bytes(b"")
    what = ("a folder run over 2 usable videos (a real 2 s clip, a one-frame video) and 5 bad files "
            "(text, truncated, zero-frame, JPEG renamed .mp4, 0 bytes)")
    rows = []
    for cmd, extra in (("extract", []), ("batch", ["--workers", "1"])):
        args = [cmd, str(folder), "--out", str(tmp / f"{cmd}_cli"), "--quiet", "--stride", str(T.STRIDE),
                "--model", T.MODEL, "--no-videos", *extra]
        proc = T.run_cli(*args)
        errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
        last = [l for l in proc.stdout.splitlines() if l.startswith(("done", "failed"))]
        cli = (f"{command(args)} -> exit {proc.returncode}; stdout `{' / '.join(last)}`; then one stderr line per "
               f"bad file:<br>" + "<br>".join(f"`{e}`" for e in errors))
        if cmd == "extract":
            r = extract_folder(folder, tmp / "extract_api", progress=False, frame_stride=T.STRIDE,
                               model_variant=T.MODEL, write_videos=False)
            api = (f"`extract_folder(folder, out)` -> FolderResult: done {[x.video_path.name for x in r.done]}, "
                   f"failed {[(v.name, m.split(': ', 1)[1][:45] + '...') for v, m in r.failed]}")
        else:
            r = run_batch(folder, tmp / "batch_api", workers=1, frame_stride=T.STRIDE, model_variant=T.MODEL,
                          progress=False, write_videos=False)
            api = (f"`run_batch(folder, out, workers=1)` -> BatchResult: done {[Path(x.video).name for x in r.done]}, "
                   f"failed {[Path(x.video).name for x in r.failed]} (also in batch_summary.json)")
        rows.append(f"| {cell(what + f' (`{cmd}`)', tmp)} | {cell(cli, tmp)} | {cell(api, tmp)} |")
        print(f"folder run {cmd}: done", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--doc", default=str(ROOT / "docs" / "reliability_catalogue.md"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="catalogue_") as tmp:
        tmp = Path(tmp)
        src = T.Sources(tmp / "sources")
        (tmp / "sources").mkdir()
        rows = run_cases(tmp, src)
        rows.append(run_rotated(tmp, src))
        rows += run_folders(tmp, src)
    minutes = (time.perf_counter() - t0) / 60
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    doc = [
        "# Bad-input catalogue: what the user sees",
        "",
        f"Generated by `python scripts/reliability_catalogue.py` on {now}; {config.describe_machine()} ({platform.machine()}); "
        f"load average {load0:.1f} at the start (a shared machine); {minutes:.1f} min for the whole run.",
        "Every row is a real run: the input was made in a temp folder (`<tmp>`), each command ran as a",
        "subprocess, and the line shown is what it printed (stderr for errors, stdout otherwise).",
        "The same cases are asserted by `tests/test_bad_inputs.py` (exit code, exactly one `error:` line",
        "naming the file and the fix, no traceback; or the documented graceful result), which also checks",
        "that none of them changes an existing labels.csv, approvals.csv, pose JSON or report.",
        "",
        f"Outcome: {len(T.CASES)} bad inputs run as {TALLY['commands']} commands: {TALLY['errors']} refused with a "
        f"one-line `error:` (non-zero exit), {TALLY['graceful']} handled with exit 0 and the outcome shown; "
        f"{TALLY['tracebacks']} tracebacks; {TALLY['unexpected']} outcomes other than the test expects. The rotated "
        f"phone video and the two folder runs follow at the end.",
        "",
        "Exit codes: 2 = the input cannot be used (nothing was done); 1 = a file or folder run where some",
        "videos failed (the others were done, failures listed at the end); 0 = done, with the outcome shown.",
        "",
        "| bad input | CLI: exit code and what the user sees | Python API: exception / result |",
        "|---|---|---|",
        *rows,
        "",
    ]
    Path(args.doc).write_text("\n".join(doc))
    print(f"wrote {args.doc} ({len(rows)} rows, {minutes:.1f} min)")


if __name__ == "__main__":
    main()
