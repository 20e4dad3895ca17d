"""Helper for tests/test_crash_safety.py: versioned writers, their verifiers, and a fork server.

Run as a script it is a "zygote": it imports the project once, then forks one writer process
per `spawn` command read from stdin (so 200+ writers start in milliseconds, not the ~1 s a
fresh interpreter needs), and reports how each one ended on `reap`. The test kills the
writers with SIGKILL at random moments and checks what is left on disk.

Every version v of every file is complete and checkable on its own: the rows (or JSON
payload) are a deterministic function of v, so a reader can tell a whole version from a
truncated or mixed one.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import traceback
from pathlib import Path

ROWS = 3000          # rows per CSV version (~260 KB): large enough for a kill to land mid-write
JSON_ITEMS = 3000    # payload entries per JSON version
REPORT_REPS = 600    # reps in the synthetic analysis report

STAMP = "2026-11-25T00:00:00+00:00"


# ----------------------------------------------------------------------------- content

def label_rows(v: int) -> list[dict]:
    from deadlift_utils.labels import FORMS, VIEWS

    return [{"video_id": f"user/clip_{i:05d}", "path": f"/videos/clip_{i:05d}.mp4",
             "form": FORMS[(i + v) % 2], "view": (VIEWS + ("",))[(i + v) % 4],
             "note": f"v{v} row {i}", "source": "user", "labelled_at": STAMP} for i in range(ROWS)]


def approval_rows(v: int) -> list[dict]:
    from deadlift_utils.labels import DECISIONS

    return [{"video_id": f"user/clip_{i:05d}", "pose_path": f"poses/clip_{i:05d}.json",
             "decision": DECISIONS[(i + v) % 3], "reason": f"v{v} row {i}",
             "detection_rate": f"{((i * 7 + v) % 1000) / 1000:.3f}",
             "mean_confidence": f"{((i * 13 + v) % 1000) / 1000:.3f}", "flags": "",
             "decided_by": "user", "decided_at": STAMP} for i in range(ROWS)]


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def json_doc(v: int, what: str) -> dict:
    payload = [{"i": i, "name": f"{what}_{i}", "value": (i * 3 + v) % 1000 * 0.25} for i in range(JSON_ITEMS)]
    return {"version": v, "what": what, "payload": payload, "sha256": _sha(payload)}


def report_doc(v: int) -> dict:
    ev = {"metric": "shoulder rise / hip rise", "units": "ratio", "threshold": 0.8, "method": "2d_image"}
    reps = [{"index": i + 1, "start_s": i * 2.0, "end_s": i * 2.0 + 1.75,
             "verdict": "bad" if (i + v) % 2 else "good",
             "errors": [{"name": "hips_first", "time_s": i * 2.0 + 0.5,
                         "evidence": {**ev, "value": ((i + v) % 100) / 100}}] if (i + v) % 2 else []}
            for i in range(REPORT_REPS)]
    return {"schema": "crash-test-report", "video": f"clip_v{v}.mp4", "view": "side", "verdict": "bad",
            "verdict_reason": f"version {v}", "reps": reps, "deviations": [], "notes": [],
            "feedback": {"source": "offline", "text": f"version {v}", "note": None},
            "check": {"version": v, "sha256": _sha(reps)}}


# ----------------------------------------------------------------------------- verifiers
# Each returns the version found, or raises AssertionError/ValueError describing the damage.

def verify_labels(path: Path) -> int:
    import pandas as pd

    from deadlift_utils.labels import LabelStore

    df = LabelStore(path).df      # the project's own loader: must load
    assert len(df) == ROWS, f"{len(df)} rows, expected {ROWS}"
    v = int(df["note"].iloc[0].split()[0][1:])
    expect = pd.DataFrame(label_rows(v))[df.columns]
    assert df.reset_index(drop=True).equals(expect), f"rows differ from version {v}"
    return v


def verify_approvals(path: Path) -> int:
    import pandas as pd

    from deadlift_utils.labels import ApprovalStore

    df = ApprovalStore(path).df
    assert len(df) == ROWS, f"{len(df)} rows, expected {ROWS}"
    v = int(df["reason"].iloc[0].split()[0][1:])
    expect = pd.DataFrame(approval_rows(v))[df.columns]
    assert df.reset_index(drop=True).equals(expect), f"rows differ from version {v}"
    return v


def verify_json(path: Path, what: str) -> int:
    data = json.loads(path.read_text())
    v = data["version"]
    assert data == json_doc(v, what), f"content differs from version {v}"
    return v


def verify_report(path: Path) -> int:
    data = json.loads(path.read_text())
    v = data["check"]["version"]
    assert data["check"]["sha256"] == _sha(data["reps"]), "reps do not match their checksum"
    assert data["reps"] == report_doc(v)["reps"] and data["video"] == f"clip_v{v}.mp4"
    return v


def verify_report_html(path: Path) -> int:
    import re

    text = path.read_text()
    assert text.startswith("<!doctype html>") and text.rstrip().endswith("</body></html>"), "HTML cut short"
    m = re.search(r"<p>version (\d+)</p>", text)   # the verdict reason, under the verdict
    assert m, "no version in the HTML"
    v = int(m.group(1))
    assert text.count("<tr><td>") == REPORT_REPS, "rep rows missing"
    return v


# ----------------------------------------------------------------------------- writers

def files_of(kind: str, folder: Path) -> dict[str, Path]:
    """The files a writer of `kind` saves (name -> path)."""
    return {
        "labels": {"labels.csv": folder / "labels.csv"},
        "approvals": {"approvals.csv": folder / "approvals.csv"},
        "model": {"config.json": folder / "config.json", "metrics.json": folder / "metrics.json"},
        "report": {"report.json": folder / "clip_report.json", "report.html": folder / "clip_report.html"},
        "naive_json": {"config.json": folder / "config.json"},
        "naive_csv": {"labels.csv": folder / "labels.csv"},
    }[kind]


def verify(kind: str, name: str, path: Path) -> int:
    if name == "labels.csv":
        return verify_labels(path)
    if name == "approvals.csv":
        return verify_approvals(path)
    if name in ("config.json", "metrics.json"):
        return verify_json(path, name.split(".")[0])
    if name == "report.json":
        return verify_report(path)
    if name == "report.html":
        return verify_report_html(path)
    raise KeyError(name)


def save_once(kind: str, folder: Path, v: int, state: dict | None = None) -> None:
    """Save version v of `kind`'s files through the project's own save path."""
    import pandas as pd

    state = {} if state is None else state
    if kind in ("labels", "approvals"):
        from deadlift_utils.labels import ApprovalStore, LabelStore

        if kind not in state:  # a store kept open across saves, as the widgets do
            state[kind] = (LabelStore if kind == "labels" else ApprovalStore)(folder / f"{kind}.csv")
        store = state[kind]
        store.df = pd.DataFrame((label_rows if kind == "labels" else approval_rows)(v))[store.columns]
        store.save()                      # LabelStore/ApprovalStore.save -> atomic_write_text
    elif kind == "model":
        from deadlift_utils.models import write_json

        write_json(folder / "config.json", json_doc(v, "config"))
        write_json(folder / "metrics.json", json_doc(v, "metrics"))
    elif kind == "report":
        from deadlift_utils.analyze import write_report

        write_report(report_doc(v), folder, "clip", plots=False, write_video=False)
    elif kind == "naive_json":            # control: what a plain open(..., "w") save does
        with open(folder / "config.json", "w") as f:
            json.dump(json_doc(v, "config"), f, indent=2)
    elif kind == "naive_csv":             # control: pandas writing straight to the file
        from deadlift_utils.labels import LabelStore

        pd.DataFrame(label_rows(v))[LabelStore.columns].to_csv(folder / "labels.csv", index=False)
    else:
        raise ValueError(kind)


def run_writer(kind: str, folder: Path, start: int) -> None:
    """Save versions start, start+1, ... of `kind`'s files until killed."""
    state: dict = {}
    v = start
    while True:
        save_once(kind, folder, v, state)
        v += 1


# ----------------------------------------------------------------------------- fork server

def zygote() -> None:
    # Import everything the writers need once; forked children inherit it.
    import pandas  # noqa: F401

    import deadlift_utils.analyze  # noqa: F401
    import deadlift_utils.labels  # noqa: F401
    import deadlift_utils.models  # noqa: F401

    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "spawn":
            pid = os.fork()
            if pid == 0:
                code = 3
                try:
                    run_writer(cmd["kind"], Path(cmd["folder"]), int(cmd["start"]))
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(code)
            print(json.dumps({"pid": pid}), flush=True)
        elif cmd["op"] == "reap":
            _, status = os.waitpid(int(cmd["pid"]), 0)
            print(json.dumps({"signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                              "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}), flush=True)
        elif cmd["op"] == "quit":
            break


if __name__ == "__main__":
    zygote()
