"""Crash safety: writers killed with SIGKILL mid-save never leave a half-written file.

A fork server (tests/_crash_writer.py) starts writer processes that save complete, checkable
versions of labels.csv (LabelStore), approvals.csv (ApprovalStore), a model's config.json and
metrics.json (models.write_json) and an analysis report (analyze.write_report) in a loop. The
test kills each writer at a random moment (fixed seed), then checks every file on disk: it is
absent only if nothing was ever saved, else it loads through the project's own loader and is
exactly one complete version, the old one or a newer one. A control runs the same kill regime
on naive writers (open(path, "w") / DataFrame.to_csv(path)) and must find corrupt files, which
shows the check can fail. Counts go to outputs/test-artifacts/kill_test.json for the docs.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import _crash_writer as cw
from deadlift_utils.config import OUTPUTS_DIR, PROJECT_ROOT
from deadlift_utils.io_utils import STALE_TEMP_AGE_S, temp_files_for

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork and SIGKILL (POSIX)")

SEED = 20261125
KILLS = {"labels": 60, "approvals": 60, "model": 60, "report": 60}   # 240 kills of atomic writers
CONTROL_KILLS = {"naive_json": 30, "naive_csv": 30}
MAX_DELAY_S = 0.2        # a uniform kill lands anywhere in the first few saves of a writer
# Share of kills aimed at the few milliseconds a temp file exists (write, fsync, rename): a
# uniform moment mostly hits the serialisation (to_csv/json.dumps), which cannot corrupt anything.
TARGETED_SHARE = 0.5
ARTIFACT = OUTPUTS_DIR / "test-artifacts" / "kill_test.json"


class Zygote:
    """Client of the fork server: spawn a writer, kill it, reap it."""

    def __init__(self, log_path: Path):
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "OPENBLAS_NUM_THREADS": "1",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen([sys.executable, str(Path(cw.__file__))], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log, text=True, env=env,
                                     cwd=str(PROJECT_ROOT))
        assert "ready" in self._ask(None)

    def _ask(self, cmd: dict | None) -> dict:
        if cmd is not None:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"fork server died: {self.log_path.read_text()[-2000:]}")
        return json.loads(line)

    def spawn(self, kind: str, folder: Path, start: int) -> int:
        return self._ask({"op": "spawn", "kind": kind, "folder": str(folder), "start": start})["pid"]

    def reap(self, pid: int) -> dict:
        return self._ask({"op": "reap", "pid": pid})

    def close(self):
        try:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._log.close()


@pytest.fixture(scope="module")
def zygote(tmp_path_factory):
    z = Zygote(tmp_path_factory.mktemp("zygote") / "writers.log")
    yield z
    z.close()


def kill_many(zygote: Zygote, kind: str, folder: Path, n: int, rng: random.Random,
              targeted_share: float = TARGETED_SHARE) -> dict:
    """Kill n writers of `kind` at random moments; check the files after every kill."""
    folder.mkdir(parents=True, exist_ok=True)
    files = cw.files_of(kind, folder)
    last: dict[str, int | None] = {name: None for name in files}
    stats = {"kills": 0, "uniform": 0, "targeted": 0, "corrupt": 0, "absent_before_first_write": 0, "went_back": 0,
             "mid_write": 0, "examples": []}
    for _ in range(n):
        start = max([v for v in last.values() if v is not None], default=0) + 1
        temps_before = {t for p in files.values() for t in temp_files_for(p)}
        targeted = rng.random() < targeted_share
        pid = zygote.spawn(kind, folder, start)
        if targeted:
            # Wait for a save to create its temp file, then kill within the next ~0.5 ms:
            # during the write, the fsync, the rename or the folder fsync.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not (
                    {t for p in files.values() for t in temp_files_for(p)} - temps_before):
                time.sleep(0.0002)
            time.sleep(rng.uniform(0, 0.0005))
        else:
            time.sleep(rng.uniform(0, MAX_DELAY_S))
        os.kill(pid, signal.SIGKILL)
        stats["targeted" if targeted else "uniform"] += 1
        status = zygote.reap(pid)
        assert status["signal"] == signal.SIGKILL, (
            f"{kind} writer ended by itself ({status}); its log:\n{zygote.log_path.read_text()[-3000:]}")
        stats["kills"] += 1
        temps_after = {t for p in files.values() for t in temp_files_for(p)}
        if temps_after - temps_before:
            stats["mid_write"] += 1     # the kill landed between creating the temp file and the rename
        for name, path in files.items():
            if not path.exists():
                if last[name] is None:
                    stats["absent_before_first_write"] += 1
                else:
                    stats["corrupt"] += 1
                    stats["examples"].append(f"{name}: vanished after version {last[name]}")
                continue
            try:
                v = cw.verify(kind, name, path)
            except Exception as e:  # noqa: BLE001 - any failure to load or verify is corruption
                stats["corrupt"] += 1
                if len(stats["examples"]) < 5:
                    stats["examples"].append(f"{name}: {type(e).__name__}: {str(e)[:120]}")
                continue
            # The old complete version, or a new one this writer finished; never an older one.
            if not (v == last[name] or v >= start):
                stats["went_back"] += 1
                stats["examples"].append(f"{name}: version {v} after {last[name]} (writer started at {start})")
            last[name] = v
    stats["last_versions"] = last
    stats["temp_files_left"] = sum(len(temp_files_for(p)) for p in files.values())
    return stats


def _write_artifact(section: str, data: dict) -> None:
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    summary = json.loads(ARTIFACT.read_text()) if ARTIFACT.is_file() else {}
    summary[section] = data
    summary["date"] = time.strftime("%Y-%m-%d %H:%M:%S")
    summary["seed"] = SEED
    ARTIFACT.write_text(json.dumps(summary, indent=1))


def test_sigkill_mid_save_never_leaves_a_partial_file(zygote, tmp_path):
    rng = random.Random(SEED)
    t0 = time.perf_counter()
    results = {kind: kill_many(zygote, kind, tmp_path / kind, n, rng) for kind, n in KILLS.items()}
    elapsed = time.perf_counter() - t0
    total = {k: sum(r[k] for r in results.values()) for k in ("kills", "corrupt", "went_back", "mid_write")}
    _write_artifact("atomic", {"per_kind": results, "total": total, "seconds": round(elapsed, 1)})
    print(f"\nkill test: {total['kills']} kills, {total['corrupt']} corrupt, {total['went_back']} went back, "
          f"{total['mid_write']} mid-write; {elapsed:.1f} s")

    assert total["kills"] >= 200
    for kind, r in results.items():
        assert r["corrupt"] == 0 and r["went_back"] == 0, (kind, r["examples"])
        # The kills really hit saves in progress (a temp file was left), not only idle moments...
        assert r["mid_write"] >= 0.2 * r["kills"], (kind, r)
        # ...and writers got far enough to replace the file many times.
        assert all(v is not None and v >= 5 for v in r["last_versions"].values()), (kind, r["last_versions"])
        # A killed save leaves at most one temp file; nothing else accumulates.
        assert r["temp_files_left"] <= r["mid_write"], (kind, r)


def test_leftover_temp_files_are_ignored_then_cleaned(tmp_path):
    """Temp files of killed saves never confuse a loader, and the next save removes the stale ones
    (but not a young one, which may belong to a save still running in another process)."""
    folder = tmp_path / "labels"
    folder.mkdir()
    cw.save_once("labels", folder, 1)
    path = folder / "labels.csv"
    stale = [folder / f".labels.csv.k1lled{i:02d}.tmp" for i in range(3)]
    for f in stale:
        f.write_text("video_id,form\nhalf-written")
        old = time.time() - STALE_TEMP_AGE_S - 60
        os.utime(f, (old, old))
    young = folder / ".labels.csv.inflight.tmp"
    young.write_text("video_id,form\nstill being written")
    assert len(temp_files_for(path)) == 4
    assert cw.verify_labels(path) == 1          # the loader reads the real file only
    cw.save_once("labels", folder, 2)
    assert temp_files_for(path) == [young]
    assert cw.verify_labels(path) == 2
    # Unrelated dot files in the folder are left alone.
    other = folder / ".approvals.csv.abcdefgh.tmp"
    other.write_text("x")
    os.utime(other, (0, 0))
    cw.save_once("labels", folder, 3)
    assert other.exists()


def test_control_naive_writes_do_get_corrupted(zygote, tmp_path):
    """The same kill regime on non-atomic writers finds corrupt files: the check can fail."""
    rng = random.Random(SEED + 1)
    # Uniform moments only: a naive writer has no temp file to aim at.
    results = {kind: kill_many(zygote, kind, tmp_path / kind, n, rng, targeted_share=0.0)
               for kind, n in CONTROL_KILLS.items()}
    _write_artifact("naive_control", results)
    print("\nnaive control: " + ", ".join(f"{k} {r['corrupt']}/{r['kills']} corrupt" for k, r in results.items()))
    for kind, r in results.items():
        assert r["corrupt"] >= 1, (kind, r)


def test_saved_files_get_the_usual_permissions_not_the_temp_files_private_ones(tmp_path):
    """mkstemp creates 0600 files; a saved labels.csv gets 0666 minus the umask, like any file."""
    import stat

    from deadlift_utils import io_utils

    path = io_utils.atomic_write_text(tmp_path / "labels.csv", "video_id,form\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~io_utils._UMASK
    assert stat.S_IMODE(path.stat().st_mode) != 0o600 or io_utils._UMASK == 0o066
