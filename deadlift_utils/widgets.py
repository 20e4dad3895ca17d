"""Notebook widgets: `LabelWidget` (form + view per video) and `ReviewWidget` (pose quality).

Each is a small class whose plain methods (`label`, `approve`, `reject`, `skip`, `undo`) the
buttons call, so tests drive them without a browser. Every click is saved at once
(atomically) and reopening resumes at the first video without a decision.
"""
from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as W

from .labels import FORMS, VIEWS, ApprovalStore, LabelStore
from .pose import load_pose_json
from .quality import REVIEW_MIN_LIFT_JOINTS_RATE, PoseQuality, assess

MAX_EMBED_BYTES = 80_000_000  # larger videos are linked, not embedded in the notebook


def _video_widget(path: Path | None, width: str = "100%") -> W.Widget:
    if path is None or not Path(path).is_file():
        return W.HTML(f"<i>no video at {html.escape(str(path))}</i>")
    if Path(path).stat().st_size > MAX_EMBED_BYTES:
        return W.HTML(f"<i>{html.escape(str(path))} is too large to embed; open it in a player.</i>")
    fmt = Path(path).suffix.lstrip(".").lower()
    # Capped height so a portrait phone clip doesn't push the buttons below the fold.
    return W.Video(value=Path(path).read_bytes(), format=fmt, autoplay=True, loop=True, controls=True,
                   layout=W.Layout(max_width=width, max_height="60vh"))


@dataclass
class _Step:
    """One click, as undo needs it: where it was, and whether it wrote and what it replaced."""

    index: int
    video_id: str
    wrote: bool
    replaced: dict | None = None  # the video's row before the click (None: it had none)


class _Stepper:
    """Shared navigation: a list of items, a position, resume at the first undecided one.

    Each click records a `_Step`, so undo steps back one video and, only when that click
    wrote to the store, puts that video's row back as it was. A skip writes nothing, and
    nothing else in the store (another session's labels, batch decisions) is touched.
    """

    def __init__(self, n: int):
        self.n = n
        self.index = 0
        self._history: list[_Step] = []

    @property
    def done(self) -> bool:
        return self.index >= self.n

    def _advance(self, video_id: str, wrote: bool, replaced: dict | None = None) -> None:
        self._history.append(_Step(self.index, video_id, wrote, replaced))
        self.index += 1

    def undo(self) -> bool:
        """Step back one video; if that click saved something, restore the video's previous row
        (or remove the row if it had none). False when there is nothing to undo."""
        if not self._history:
            return False
        step = self._history.pop()
        if step.wrote:
            self.store.restore(step.video_id, step.replaced)
        self.index = step.index
        self._refresh()
        return True


class LabelWidget(_Stepper):
    """Label each video's form (good/bad) and camera view (front/middle/side), with a note."""

    def __init__(self, videos: list[tuple[str, os.PathLike]], store: LabelStore | None = None,
                 show_video: bool = True):
        super().__init__(len(videos))
        self.videos = [(vid, Path(p)) for vid, p in videos]
        self.store = store if store is not None else LabelStore()
        self.show_video = show_video
        labelled = set(self.store.df.loc[self.store.df["form"] != "", "video_id"])
        self.index = next((i for i, (vid, _) in enumerate(self.videos) if vid not in labelled), len(self.videos))
        self._build()

    @property
    def current(self) -> tuple[str, Path] | None:
        return None if self.done else self.videos[self.index]

    def label(self, form: str, view: str = "", note: str = "") -> None:
        """Save the current video's label and move to the next one."""
        if self.done:
            return
        vid, path = self.current
        replaced = self.store.get(vid)
        self.store.set(vid, form=form, view=view, path=str(path), note=note, source="user")
        self._advance(vid, wrote=True, replaced=replaced)
        self._refresh()

    def skip(self) -> None:
        """Move to the next video; the current one's label (if any) stays as it is."""
        if not self.done:
            self._advance(self.current[0], wrote=False)
            self._refresh()

    # -- UI ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.header = W.HTML()
        self.video_box = W.Box(layout=W.Layout(width="640px"))
        self.form_buttons = W.ToggleButtons(options=list(FORMS), value=None, description="Form")
        self.view_buttons = W.ToggleButtons(options=list(VIEWS), value=None, description="View")
        self.note = W.Text(placeholder="note (optional)", description="Note")
        self.save_button = W.Button(description="Save", button_style="success", icon="check")
        self.skip_button = W.Button(description="Skip", icon="forward")
        self.undo_button = W.Button(description="Undo", icon="undo")
        self.message = W.HTML()
        self.save_button.on_click(lambda _: self._on_save())
        self.skip_button.on_click(lambda _: self.skip())
        self.undo_button.on_click(lambda _: self.undo())
        self.ui = W.VBox([self.header, self.video_box, self.form_buttons, self.view_buttons, self.note,
                          W.HBox([self.save_button, self.skip_button, self.undo_button]), self.message])
        self._refresh()

    def _on_save(self) -> None:
        if self.form_buttons.value is None:
            self.message.value = "<b style='color:#b00'>Choose good or bad first.</b>"
            return
        self.label(self.form_buttons.value, self.view_buttons.value or "", self.note.value)

    def _refresh(self) -> None:
        labelled = int((self.store.df["form"] != "").sum())
        if self.done:
            self.header.value = f"<h3>All {self.n} videos done</h3><p>{labelled} labels in {self.store.path}</p>"
            self.video_box.children = ()
            self.form_buttons.value = self.view_buttons.value = None
            self.note.value = ""
            for w in (self.save_button, self.skip_button):
                w.disabled = True
            return
        vid, path = self.current
        row = self.store.get(vid) or {}
        self.header.value = (f"<h3>{html.escape(vid)} ({self.index + 1} of {self.n})</h3>"
                             f"<p>{html.escape(str(path))}</p>")
        self.form_buttons.value = row.get("form") or None
        self.view_buttons.value = row.get("view") or None
        self.note.value = row.get("note", "")
        self.message.value = ""
        for w in (self.save_button, self.skip_button):
            w.disabled = False
        self.video_box.children = (_video_widget(path),) if self.show_video else ()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.ui)


@dataclass
class ReviewItem:
    video_id: str
    pose_path: Path
    overlay_path: Path | None
    skeleton_path: Path | None
    quality: PoseQuality


def review_items(poses_dir: str | os.PathLike) -> list[ReviewItem]:
    """One item per pose JSON under `poses_dir` (video_id = its path there, without .json)."""
    poses_dir = Path(poses_dir)
    items = []
    for p in sorted(poses_dir.rglob("*.json")):
        seq = load_pose_json(p)
        vid = p.relative_to(poses_dir).with_suffix("").as_posix()
        found = {kind: next((q for q in (p.with_name(f"{p.stem}_{kind}.mp4"), p.with_name(f"{p.stem}_{kind}.webm"))
                             if q.is_file()), None) for kind in ("overlay", "skeleton")}
        items.append(ReviewItem(vid, p, found["overlay"], found["skeleton"], assess(seq)))
    return items


class ReviewWidget(_Stepper):
    """Watch each video's overlay and skeleton, then approve / reject / skip, with a reason."""

    def __init__(self, items: list[ReviewItem], store: ApprovalStore | None = None, show_video: bool = True):
        super().__init__(len(items))
        self.items = items
        self.store = store if store is not None else ApprovalStore()
        self.show_video = show_video
        decided = set(self.store.df.loc[self.store.df["decided_by"] == "user", "video_id"])
        self.index = next((i for i, it in enumerate(items) if it.video_id not in decided), len(items))
        self._build()

    @property
    def current(self) -> ReviewItem | None:
        return None if self.done else self.items[self.index]

    def _decide(self, decision: str, reason: str) -> None:
        if self.done:
            return
        it = self.current
        replaced = self.store.get(it.video_id)
        if decision == "skipped" and replaced is not None:
            # "Not now" must not replace a decision already made (by a person or the batch).
            self._advance(it.video_id, wrote=False)
        else:
            self.store.decide(it.video_id, decision, pose_path=str(it.pose_path), reason=reason,
                              detection_rate=it.quality.detection_rate,
                              mean_confidence=it.quality.mean_confidence,
                              flags="; ".join(it.quality.flags), decided_by="user")
            self._advance(it.video_id, wrote=True, replaced=replaced)
        self._refresh()

    def approve(self, reason: str = "") -> None:
        self._decide("approved", reason)

    def reject(self, reason: str = "") -> None:
        self._decide("rejected", reason)

    def skip(self, reason: str = "") -> None:
        """Record 'skipped' for a video nobody has decided on; a decided video keeps its decision."""
        self._decide("skipped", reason)

    # -- UI ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.header = W.HTML()
        self.flags = W.HTML()
        self.videos = W.HBox()
        self.reason = W.Text(placeholder="reason (optional)", description="Reason")
        self.buttons = {}
        for name, style, icon in (("Approve", "success", "check"), ("Reject", "danger", "times"),
                                  ("Skip", "", "forward"), ("Undo", "", "undo")):
            b = W.Button(description=name, button_style=style, icon=icon)
            b.on_click(lambda _, n=name: self._on_click(n))
            self.buttons[name] = b
        self.ui = W.VBox([self.header, self.flags, self.videos, self.reason, W.HBox(list(self.buttons.values()))])
        self._refresh()

    def _on_click(self, name: str) -> None:
        reason = self.reason.value
        {"Approve": lambda: self.approve(reason), "Reject": lambda: self.reject(reason),
         "Skip": lambda: self.skip(reason), "Undo": self.undo}[name]()

    def _refresh(self) -> None:
        self.reason.value = ""
        counts = self.store.df["decision"].value_counts().to_dict()
        summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no decisions yet"
        if self.done:
            self.header.value = f"<h3>All {self.n} videos reviewed</h3><p>{summary} ({self.store.path})</p>"
            self.flags.value = ""
            self.videos.children = ()
            for n in ("Approve", "Reject", "Skip"):
                self.buttons[n].disabled = True
            return
        it = self.current
        q = it.quality
        self.header.value = (f"<h3>{html.escape(it.video_id)} ({self.index + 1} of {self.n})</h3>"
                             f"<p>shoulders, hips, knees and ankles all found in <b>{q.detection_rate:.0%}</b> "
                             f"of {q.frames} sampled frames (lifter found at all in {q.lifter_found_rate:.0%}); "
                             f"mean keypoint confidence <b>{q.mean_confidence:.2f}</b>. So far: {summary}</p>")
        self.flags.value = ("<p style='color:#b00'><b>Check:</b> " + html.escape("; ".join(q.flags)) + "</p>"
                            if q.flags else "<p style='color:#070'>No quality problems found.</p>")
        for n in ("Approve", "Reject", "Skip"):
            self.buttons[n].disabled = False
        if self.show_video:
            self.videos.children = (_video_widget(it.overlay_path, "480px"), _video_widget(it.skeleton_path, "480px"))

    def _ipython_display_(self):
        from IPython.display import display

        display(self.ui)


def auto_review(items: list[ReviewItem], store: ApprovalStore,
                min_detection_rate: float = REVIEW_MIN_LIFT_JOINTS_RATE) -> dict:
    """Batch mode: approve videos nobody has decided on yet whose detection rate (share of
    frames with all lift joints found) reaches the threshold and that carry no quality flag; recorded with decided_by='auto'. A person's
    decision is never changed. Returns counts {'auto_approved', 'left_for_review', 'kept'}.
    """
    counts = {"auto_approved": 0, "left_for_review": 0, "kept": 0}
    for it in items:
        row = store.get(it.video_id)
        if row is not None and row.get("decided_by") == "user":
            counts["kept"] += 1
            continue
        if it.quality.detection_rate >= min_detection_rate and not it.quality.flags:
            store.decide(it.video_id, "approved", pose_path=str(it.pose_path),
                         reason=f"auto: detection rate >= {min_detection_rate:.0%}, no quality flags",
                         detection_rate=it.quality.detection_rate, mean_confidence=it.quality.mean_confidence,
                         decided_by="auto")
            counts["auto_approved"] += 1
        else:
            counts["left_for_review"] += 1
    return counts
