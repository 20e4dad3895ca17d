"""Stage 1 stores: video labels (labels.csv) and pose-review decisions (approvals.csv).

Both are CSV files under data/interim, saved atomically after every change, so a crash or a
killed kernel never loses more than the click in progress. User decisions are never
overwritten by imports or defaults.

video_id: "<dataset folder name>/<path inside it without extension>", e.g.
"yfgd_small/good/good_001" or "esap_pose/bad_side/Bad1". Pose files for a video live at
`<poses_dir>/<video_id>.json`, which is what `extract_folder(root, poses_dir / root.name)` writes.
"""
from __future__ import annotations

import io
import os
import warnings
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from . import config
from .io_utils import atomic_write_text

FORMS = ("good", "bad")
VIEWS = ("front", "middle", "side")
DECISIONS = ("approved", "rejected", "skipped")

LABEL_COLUMNS = ["video_id", "path", "form", "view", "note", "source", "labelled_at"]
APPROVAL_COLUMNS = ["video_id", "pose_path", "decision", "reason", "detection_rate",
                    "mean_confidence", "flags", "decided_by", "decided_at"]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def video_id_for(path: str | os.PathLike, root: str | os.PathLike) -> str:
    """The id of a file under a dataset root: "<root name>/<relative path without suffix>"."""
    path, root = Path(path), Path(root)
    return f"{root.name}/{path.relative_to(root).with_suffix('').as_posix()}"


class _CsvStore:
    """A CSV table keyed by video_id (one row each), saved atomically on every change.

    Undo is the caller's: it keeps the row a change replaced (`get` before the change) and
    hands it back to `restore`, so taking back one click touches that one row only.
    """

    columns: list[str] = []
    what = "table"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.df = self._read()

    def _read(self) -> pd.DataFrame:
        if not self.path.exists():
            return pd.DataFrame(columns=self.columns)
        try:
            df = pd.read_csv(self.path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            if self.path.stat().st_size == 0:
                return pd.DataFrame(columns=self.columns)
            raise ValueError(f"{self.path}: cannot be read as a CSV {self.what} ({e}). Fix the file by hand "
                             f"or move it aside; it is never overwritten while unreadable.") from None
        missing = [c for c in self.columns if c not in df.columns and c in self.required]
        if missing:
            raise ValueError(f"{self.path}: missing column(s) {missing}; expected {self.columns}. "
                             f"Fix the header; the file is not overwritten.")
        for c in self.columns:
            if c not in df.columns:
                df[c] = ""
        self._validate(df)
        if df["video_id"].duplicated().any():
            dups = sorted(df.loc[df["video_id"].duplicated(), "video_id"].unique())
            warnings.warn(f"{self.path}: duplicate rows for {dups[:5]}{'...' if len(dups) > 5 else ''}; "
                          f"the last row of each counts (delete the others to silence this).", stacklevel=3)
            df = df.drop_duplicates("video_id", keep="last")
        return df[self.columns].reset_index(drop=True)

    required: tuple[str, ...] = ("video_id",)

    def _validate(self, df: pd.DataFrame) -> None:
        pass

    def _check_values(self, df: pd.DataFrame, column: str, allowed: tuple, fix: str) -> None:
        """Raise naming the first row whose `column` is not in `allowed` (the file is left as is)."""
        bad = df[~df[column].isin(allowed)]
        if len(bad):
            r = bad.iloc[0]
            raise ValueError(f"{self.path}: row for {r['video_id']!r} has {column} {r[column]!r}; {fix}. "
                             f"Fix that row; the file is not overwritten.")

    def save(self) -> None:
        buf = io.StringIO()
        self.df.to_csv(buf, index=False)
        atomic_write_text(self.path, buf.getvalue())

    def _upsert(self, row: dict) -> None:
        rest = self.df[self.df["video_id"] != row["video_id"]]
        new = pd.DataFrame([{c: "" if row.get(c) is None else str(row.get(c)) for c in self.columns}])
        self.df = pd.concat([rest, new], ignore_index=True) if len(rest) else new
        self.save()

    def restore(self, video_id: str, row: dict | None) -> None:
        """Put `video_id`'s row back to `row` (as `get` returned it), or remove it when `row` is
        None, and save. Every other row is left exactly as it is."""
        if row is None:
            self.df = self.df[self.df["video_id"] != video_id].reset_index(drop=True)
            self.save()
        else:
            self._upsert({**row, "video_id": video_id})

    def get(self, video_id: str) -> dict | None:
        rows = self.df[self.df["video_id"] == video_id]
        return None if rows.empty else rows.iloc[-1].to_dict()

    def __len__(self) -> int:
        return len(self.df)


class LabelStore(_CsvStore):
    """labels.csv: form (good/bad) and camera view (front/middle/side, or blank = unknown)."""

    columns = LABEL_COLUMNS
    what = "labels file"
    required = ("video_id", "form")

    def __init__(self, path: str | os.PathLike = config.LABELS_CSV):
        super().__init__(path)

    def _validate(self, df: pd.DataFrame) -> None:
        self._check_values(df, "form", FORMS + ("",), f"use one of {FORMS}")
        self._check_values(df, "view", VIEWS + ("",), f"use one of {VIEWS} or leave it blank")

    def set(self, video_id: str, form: str, view: str = "", path: str = "", note: str = "",
            source: str = "user") -> None:
        """Save a label now (atomically)."""
        if form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {form!r}")
        if view not in VIEWS + ("",):
            raise ValueError(f"view must be one of {VIEWS} or '', got {view!r}")
        old = self.get(video_id) or {}
        self._upsert({"video_id": video_id, "path": path or old.get("path", ""), "form": form, "view": view,
                      "note": note, "source": source, "labelled_at": now_iso()})

    def add_missing(self, rows: list[dict]) -> int:
        """Add imported rows for videos that have no label yet; never touches existing labels.
        Returns how many were added (saved once)."""
        known = set(self.df["video_id"])
        # One row per video: a source listing a video twice would otherwise add both.
        new = list({r["video_id"]: r for r in rows if r["video_id"] not in known}.values())
        if not new:
            return 0
        add = pd.DataFrame([{c: str(r.get(c, "") or "") for c in self.columns} for r in new])
        self.df = pd.concat([self.df, add], ignore_index=True) if len(self.df) else add
        self.save()
        return len(new)


class ApprovalStore(_CsvStore):
    """approvals.csv: a person's (or the batch threshold's) verdict on each video's poses."""

    columns = APPROVAL_COLUMNS
    what = "approvals file"
    required = ("video_id", "decision")

    def __init__(self, path: str | os.PathLike = config.APPROVALS_CSV):
        super().__init__(path)

    def _validate(self, df: pd.DataFrame) -> None:
        self._check_values(df, "decision", DECISIONS, f"use one of {DECISIONS}")

    def decide(self, video_id: str, decision: str, pose_path: str = "", reason: str = "",
               detection_rate: float | None = None, mean_confidence: float | None = None,
               flags: str = "", decided_by: str = "user") -> None:
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
        self._upsert({"video_id": video_id, "pose_path": pose_path, "decision": decision, "reason": reason,
                      "detection_rate": "" if detection_rate is None else f"{detection_rate:.3f}",
                      "mean_confidence": "" if mean_confidence is None else f"{mean_confidence:.3f}",
                      "flags": flags, "decided_by": decided_by, "decided_at": now_iso()})

    def approved_ids(self) -> set[str]:
        return set(self.df.loc[self.df["decision"] == "approved", "video_id"])


# ---------------------------------------------------------------------------- imports

def esap_label_rows(esap_dir: str | os.PathLike = config.ESAP_POSE_DIR) -> list[dict]:
    """The study's labels from its folder names `{good,bad}_{front,middle,side}/*.json`."""
    esap_dir = Path(esap_dir)
    rows = []
    for f in sorted(esap_dir.glob("*/*.json")):
        form, _, view = f.parent.name.partition("_")
        if form in FORMS and view in VIEWS:
            rows.append({"video_id": video_id_for(f, esap_dir), "path": str(f), "form": form, "view": view,
                         "note": "", "source": "esap", "labelled_at": ""})
    if not rows:
        raise ValueError(f"{esap_dir}: no pose files in {{good,bad}}_{{front,middle,side}} folders. "
                         f"Point esap_dir at the study's esap_pose folder.")
    return rows


def csv_label_rows(labels_csv: str | os.PathLike, source: str) -> list[dict]:
    """Rows from a dataset's own labels.csv with columns video (relative path), label[, view]."""
    labels_csv = Path(labels_csv)
    if not labels_csv.is_file():
        raise FileNotFoundError(f"{labels_csv}: no such labels file.")
    df = pd.read_csv(labels_csv, dtype=str, keep_default_na=False)
    for col in ("video", "label"):
        if col not in df.columns:
            raise ValueError(f"{labels_csv}: needs columns 'video' and 'label' (has {list(df.columns)}).")
    root = labels_csv.parent
    rows = []
    for _, r in df.iterrows():
        form, view = r["label"].strip().lower(), r.get("view", "").strip().lower()
        if form not in FORMS:
            raise ValueError(f"{labels_csv}: {r['video']!r} has label {r['label']!r}; use one of {FORMS}.")
        if view not in VIEWS + ("",):
            raise ValueError(f"{labels_csv}: {r['video']!r} has view {r['view']!r}; use one of {VIEWS} "
                             f"or leave it blank.")
        rows.append({"video_id": video_id_for(root / r["video"], root), "path": str(root / r["video"]),
                     "form": form, "view": view if view in VIEWS else "", "note": r.get("error", ""),
                     "source": source, "labelled_at": ""})
    return rows


def videos_to_label(data_dir: str | os.PathLike) -> list[tuple[str, Path]]:
    """(video_id, path) of every video under `data_dir`."""
    from .video import list_videos

    root = Path(data_dir)
    return [(video_id_for(p, root), p) for p in list_videos(root)]


def approved_training_rows(labels_csv: str | os.PathLike = config.LABELS_CSV,
                           approvals_csv: str | os.PathLike = config.APPROVALS_CSV) -> pd.DataFrame:
    """User videos that are labelled AND approved in pose review, ready to join training.

    Columns: video_id, pose_path, form, view, source. Empty when either file is missing.
    """
    cols = ["video_id", "pose_path", "form", "view", "source"]
    if not Path(labels_csv).exists() or not Path(approvals_csv).exists():
        return pd.DataFrame(columns=cols)
    labels, approvals = LabelStore(labels_csv).df, ApprovalStore(approvals_csv).df
    ok = approvals[(approvals["decision"] == "approved") & (approvals["pose_path"] != "")]
    merged = ok.merge(labels[labels["form"] != ""], on="video_id", how="inner")
    return merged[cols].reset_index(drop=True)
