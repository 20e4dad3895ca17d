import warnings

import pandas as pd
import pytest

from deadlift_utils.labels import (
    ApprovalStore, LabelStore, approved_training_rows, csv_label_rows, esap_label_rows, videos_to_label,
)
from deadlift_utils.widgets import LabelWidget, ReviewWidget, auto_review, review_items


def test_esap_labels_come_from_folder_names(shared):
    rows = esap_label_rows(shared / "esap_pose")
    assert len(rows) == 56
    df = pd.DataFrame(rows)
    assert (df["form"] == "bad").sum() == 16 and (df["form"] == "good").sum() == 40
    bad1 = df[df["video_id"] == "esap_pose/bad_side/Bad1"].iloc[0]
    assert (bad1["form"], bad1["view"]) == ("bad", "side")


def test_dataset_label_csvs_match_video_ids(shared):
    yfgd = csv_label_rows(shared / "videos" / "yfgd_small" / "labels.csv", "yfgd_small")
    ids = {vid for vid, _ in videos_to_label(shared / "videos" / "yfgd_small")}
    assert {r["video_id"] for r in yfgd} == ids and len(ids) == 20
    kb = {r["video_id"]: r for r in csv_label_rows(shared / "videos" / "kettlebell_errors" / "labels.csv", "kb")}
    assert kb["kettlebell_errors/hips_first_side"]["view"] == "side"
    assert kb["kettlebell_errors/correct_middle"]["form"] == "good"


def test_import_never_overwrites_a_users_label(tmp_path, shared):
    store = LabelStore(tmp_path / "labels.csv")
    store.set("esap_pose/bad_side/Bad1", "good", "front", note="I disagree")
    added = store.add_missing(esap_label_rows(shared / "esap_pose"))
    assert added == 55
    again = LabelStore(tmp_path / "labels.csv")
    row = again.get("esap_pose/bad_side/Bad1")
    assert (row["form"], row["view"], row["note"], row["source"]) == ("good", "front", "I disagree", "user")
    assert again.add_missing(esap_label_rows(shared / "esap_pose")) == 0


def test_label_widget_saves_every_click_undoes_and_resumes(tmp_path, shared):
    videos = videos_to_label(shared / "videos" / "kettlebell_errors")
    path = tmp_path / "labels.csv"
    w = LabelWidget(videos, LabelStore(path), show_video=False)
    assert w.current[0] == videos[0][0]
    w.label("good", "side", "clean reps")
    saved = pd.read_csv(path, dtype=str, keep_default_na=False)      # on disk straight away
    assert saved.set_index("video_id").loc[videos[0][0], "form"] == "good"
    w.label("bad", "middle")
    w.skip()
    w.undo()                          # undoing a skip only steps back
    assert w.current[0] == videos[2][0] and len(LabelStore(path)) == 2
    w.undo()                          # undoing a label removes it
    assert w.current[0] == videos[1][0] and LabelStore(path).get(videos[1][0]) is None
    w.label("bad", "middle")
    # reopen: resumes at the first video without a label
    w2 = LabelWidget(videos, LabelStore(path), show_video=False)
    assert w2.index == 2


def _labels_on_disk(path) -> dict:
    """{video_id: (form, view, note, source)} as labels.csv holds them now."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    return {r["video_id"]: (r["form"], r["view"], r["note"], r["source"]) for r in df.to_dict("records")}


def test_label_undo_of_a_skip_after_resume_keeps_both_sessions_labels(tmp_path, shared):
    """Issue 15's data loss: undoing a skip removed the label saved one click earlier."""
    videos = videos_to_label(shared / "videos" / "kettlebell_errors")
    v0, v1 = videos[0][0], videos[1][0]
    path = tmp_path / "labels.csv"
    first = LabelWidget(videos, LabelStore(path), show_video=False)
    first.skip()
    first.label("bad", "side")                       # session 1: v0 skipped, v1 labelled
    second = LabelWidget(videos, LabelStore(path), show_video=False)
    assert second.current[0] == v0                   # session 2 resumes at v0
    second.label("good", "front")
    second.skip()
    assert second.undo() is True
    assert second.current[0] == v1
    assert _labels_on_disk(path) == {v0: ("good", "front", "", "user"), v1: ("bad", "side", "", "user")}


def test_label_undo_twice_then_nothing_left_to_undo(tmp_path, shared):
    videos = videos_to_label(shared / "videos" / "kettlebell_errors")
    path = tmp_path / "labels.csv"
    w = LabelWidget(videos, LabelStore(path), show_video=False)
    assert w.undo() is False and w.index == 0 and not path.exists()   # nothing to undo: no write
    w.label("good", "side")
    w.label("bad", "middle")
    assert w.undo() and w.undo()
    assert w.index == 0 and _labels_on_disk(path) == {}
    assert w.undo() is False and w.index == 0


def test_label_undo_of_a_relabel_restores_the_label_it_replaced(tmp_path, shared):
    videos = videos_to_label(shared / "videos" / "kettlebell_errors")
    v0, v1 = videos[0][0], videos[1][0]
    path = tmp_path / "labels.csv"
    store = LabelStore(path)
    imported = csv_label_rows(shared / "videos" / "kettlebell_errors" / "labels.csv", "kettlebell_errors")
    store.add_missing([r for r in imported if r["video_id"] == v1])
    before = _labels_on_disk(path)[v1]
    assert before[3] == "kettlebell_errors"
    w = LabelWidget(videos, store, show_video=False)     # resumes at v0 (v1 already has a label)
    w.label("good", "side", "first pass")
    w.label("bad" if before[0] == "good" else "good", "front", "I disagree")   # overwrite v1's label
    assert _labels_on_disk(path)[v1][3] == "user"
    w.undo()
    assert w.current[0] == v1
    assert _labels_on_disk(path) == {v0: ("good", "side", "first pass", "user"), v1: before}


def test_label_widget_buttons_call_the_methods(tmp_path, shared):
    videos = videos_to_label(shared / "videos" / "kettlebell_errors")
    w = LabelWidget(videos, LabelStore(tmp_path / "l.csv"), show_video=False)
    w.save_button.click()                      # nothing chosen yet: refused with a message
    assert "Choose" in w.message.value and len(w.store) == 0
    w.form_buttons.value, w.view_buttons.value = "bad", "front"
    w.save_button.click()
    assert w.store.get(videos[0][0])["form"] == "bad" and w.index == 1


@pytest.fixture()
def review_setup(tmp_path, extracted):
    """A poses folder with two real extractions (the same clip under two ids)."""
    poses = tmp_path / "poses" / "demo"
    poses.mkdir(parents=True)
    for name in ("a", "b"):
        for src, suffix in ((extracted.pose_path, ".json"), (extracted.overlay_path, "_overlay.mp4"),
                            (extracted.skeleton_path, "_skeleton.mp4")):
            (poses / f"{name}{suffix}").write_bytes(src.read_bytes())
    return tmp_path / "poses", tmp_path / "approvals.csv"


def test_review_widget_approve_reject_undo_resume(review_setup):
    poses, approvals = review_setup
    items = review_items(poses)
    assert [i.video_id for i in items] == ["demo/a", "demo/b"]
    assert items[0].overlay_path.name == "a_overlay.mp4" and items[0].quality.detection_rate >= 0.95
    w = ReviewWidget(items, ApprovalStore(approvals), show_video=False)
    w.approve("skeleton follows the lifter")
    df = pd.read_csv(approvals, dtype=str, keep_default_na=False)
    assert df.to_dict("records")[0]["decision"] == "approved"
    assert df.to_dict("records")[0]["reason"] == "skeleton follows the lifter"
    w.reject("lost at lockout")
    assert set(ApprovalStore(approvals).df["decision"]) == {"approved", "rejected"}
    w.undo()
    assert list(ApprovalStore(approvals).df["video_id"]) == ["demo/a"] and w.current.video_id == "demo/b"
    w2 = ReviewWidget(items, ApprovalStore(approvals), show_video=False)   # reopen: resume at b
    assert w2.current.video_id == "demo/b"
    w2.buttons["Reject"].click()
    assert ApprovalStore(approvals).get("demo/b")["decision"] == "rejected" and w2.done


def _decisions_on_disk(path) -> dict:
    """{video_id: (decision, reason, decided_by)} as approvals.csv holds them now."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    return {r["video_id"]: (r["decision"], r["reason"], r["decided_by"]) for r in df.to_dict("records")}


def test_review_undo_of_a_skip_after_resume_keeps_both_sessions_decisions(review_setup):
    poses, approvals = review_setup
    items = review_items(poses)
    first = ReviewWidget(items[1:], ApprovalStore(approvals), show_video=False)   # session 1 sees only b
    first.reject("lost at lockout")
    second = ReviewWidget(items, ApprovalStore(approvals), show_video=False)
    assert second.current.video_id == "demo/a"      # session 2 resumes at a
    second.approve("fine")
    second.skip()                                   # b keeps its rejection: skip never overwrites
    assert _decisions_on_disk(approvals)["demo/b"] == ("rejected", "lost at lockout", "user")
    assert second.undo() is True and second.current.video_id == "demo/b"
    assert _decisions_on_disk(approvals) == {"demo/a": ("approved", "fine", "user"),
                                             "demo/b": ("rejected", "lost at lockout", "user")}
    assert second.undo() is True and second.current.video_id == "demo/a"   # undo twice: a's approval goes
    assert _decisions_on_disk(approvals) == {"demo/b": ("rejected", "lost at lockout", "user")}
    assert second.undo() is False and second.current.video_id == "demo/a"


def test_review_undo_of_a_changed_decision_restores_the_batch_one(review_setup):
    poses, approvals = review_setup
    items = review_items(poses)
    store = ApprovalStore(approvals)
    assert auto_review(items, store)["auto_approved"] == 2
    batch = _decisions_on_disk(approvals)
    w = ReviewWidget(items, store, show_video=False)   # batch decisions are not a person's: starts at a
    assert w.undo() is False and _decisions_on_disk(approvals) == batch
    w.reject("wrong person")
    assert _decisions_on_disk(approvals)["demo/a"] == ("rejected", "wrong person", "user")
    w.undo()
    assert w.current.video_id == "demo/a" and _decisions_on_disk(approvals) == batch
    w.skip()
    w.skip()                                          # skipping decided videos writes nothing
    assert w.done and _decisions_on_disk(approvals) == batch


def test_review_widget_embeds_the_videos(review_setup):
    poses, approvals = review_setup
    w = ReviewWidget(review_items(poses), ApprovalStore(approvals))
    kinds = [type(c).__name__ for c in w.videos.children]
    assert kinds == ["Video", "Video"] and len(w.videos.children[0].value) > 10_000


def test_auto_review_never_changes_a_person_s_decision(review_setup):
    poses, approvals = review_setup
    items = review_items(poses)
    store = ApprovalStore(approvals)
    store.decide("demo/a", "rejected", reason="by hand")
    counts = auto_review(items, store, min_detection_rate=0.9)
    assert counts == {"auto_approved": 1, "left_for_review": 0, "kept": 1}
    assert store.get("demo/a")["decision"] == "rejected"
    assert store.get("demo/b")["decided_by"] == "auto"


def test_only_labelled_and_approved_videos_feed_training(tmp_path):
    labels, approvals = LabelStore(tmp_path / "l.csv"), ApprovalStore(tmp_path / "a.csv")
    labels.set("x/one", "good", "side")
    labels.set("x/two", "bad", "front")
    approvals.decide("x/one", "approved", pose_path="/p/one.json")
    approvals.decide("x/two", "rejected", pose_path="/p/two.json")
    approvals.decide("x/three", "approved", pose_path="/p/three.json")   # approved but never labelled
    rows = approved_training_rows(tmp_path / "l.csv", tmp_path / "a.csv")
    assert rows.to_dict("records") == [{"video_id": "x/one", "pose_path": "/p/one.json", "form": "good",
                                        "view": "side", "source": "user"}]


@pytest.mark.parametrize("content,message", [
    ("video_id,path,form,view,note,source,labelled_at\nx/a,,great,side,,user,\n", "form 'great'"),
    ("video_id,path,form,view,note,source,labelled_at\nx/a,,good,top,,user,\n", "view 'top'"),
    ("video,path\nx/a,\n", "missing column"),
])
def test_bad_labels_file_is_reported_and_never_overwritten(tmp_path, content, message):
    path = tmp_path / "labels.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as e:
        LabelStore(path)
    assert str(path) in str(e.value)
    assert path.read_text() == content


def test_duplicate_label_rows_last_one_counts(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("video_id,path,form,view,note,source,labelled_at\nx/a,,good,side,,user,\nx/a,,bad,side,,user,\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = LabelStore(path)
    assert store.get("x/a")["form"] == "bad" and any("duplicate" in str(w.message) for w in caught)


def test_bad_approvals_decision(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("video_id,decision\nx/a,maybe\n")
    with pytest.raises(ValueError, match="maybe"):
        ApprovalStore(path)
