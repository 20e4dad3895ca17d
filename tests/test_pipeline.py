"""The whole chain 01 -> 05 through papermill in smoke mode, as `make smoke` runs it.

Every path the notebooks write to (labels, approvals, poses, runs) is redirected into a temp
folder, so the tests never touch the project's own data/ or outputs/.
"""
import json

import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml

from deadlift_utils import config
from deadlift_utils.deviation import load_deviation_model
from deadlift_utils.models import load_classifier
from deadlift_utils.pipeline import NOTEBOOKS, format_summary, notebook_parameters, run_pipeline
from deadlift_utils.pose import load_pose_json

pytestmark = pytest.mark.slow
BAD_SIDE = config.ESAP_POSE_DIR / "bad_side" / "Bad3.json"


def _isolated_params(tmp):
    doc = yaml.safe_load((config.PROJECT_ROOT / "params" / "demo.yaml").read_text())
    doc["poses_dir"] = str(tmp / "poses")
    paths = {"labels_csv": str(tmp / "labels.csv"), "approvals_csv": str(tmp / "approvals.csv")}
    for name in NOTEBOOKS:
        declared = notebook_parameters(name)
        for key, value in paths.items():
            if key in declared:
                doc["notebooks"].setdefault(name, {})[key] = value
    assert "labels_csv" in doc["notebooks"]["01_label_videos"]
    assert "approvals_csv" in doc["notebooks"]["02_extract_poses"]
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipeline")
    params = _isolated_params(tmp)
    summary = run_pipeline(params, smoke=True, runs_dir=tmp / "runs", run_id="first")
    print(format_summary(summary))
    return summary, tmp, params


def _numbers(d, prefix=""):
    """Flatten the numeric leaves of a metrics dict (training times excluded)."""
    out = {}
    for k, v in d.items():
        if "second" in k or "time" in k or k.endswith("_s") or k in ("date_utc", "machine"):
            continue
        if isinstance(v, dict):
            out.update(_numbers(v, f"{prefix}{k}."))
        elif isinstance(v, list):
            for i, item in enumerate(v):
                if isinstance(item, dict):
                    out.update(_numbers(item, f"{prefix}{k}[{i}]."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[prefix + k] = v
    return out


def test_smoke_pipeline_runs_every_notebook_and_writes_their_outputs(smoke_run):
    summary, tmp, _ = smoke_run
    run = tmp / "runs" / "first"
    assert summary["status"] == "ok", format_summary(summary)
    assert list(summary["steps"]) == NOTEBOOKS
    for name in NOTEBOOKS:
        nb = nbformat.read(run / f"{name}.ipynb", as_version=4)
        assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{name} ran without output"
    used = yaml.safe_load((run / "params_used.yaml").read_text())
    # the smoke sizes come from demo.yaml's smoke section (no `if smoke:` in the notebooks)
    assert used["03_train_classifier"]["epochs"] == 2 and used["05_evaluate_and_feedback"]["write_video"] is False
    # 01: the study's labels imported into the temp labels file
    labels = pd.read_csv(tmp / "labels.csv", dtype=str, keep_default_na=False)
    assert (labels["source"] == "esap").sum() == 56
    # 02: real poses of two kettlebell clips, auto-approved and recorded as such
    poses = sorted((tmp / "poses" / "kettlebell_errors").glob("*.json"))
    assert len(poses) == 2
    for p in poses:
        seq = load_pose_json(p)
        assert seq.frame_stride == 15 and seq.detection_rate() > 0.9
    approvals = pd.read_csv(tmp / "approvals.csv", dtype=str, keep_default_na=False)
    assert set(approvals["decided_by"]) == {"auto"} and len(approvals) == 2
    assert (run / "contact_sheet.png").stat().st_size > 10_000
    # 03 / 04: models with their config, metrics and curves beside them
    model_files = {}
    for sub in ("classifier", "deviation"):
        out = run / sub
        files = {p.name for p in out.iterdir()}
        assert {"model.keras", "config.json", "metrics.json", "results.csv"} <= files, files
        assert list(out.glob("curves_*.png"))
        cfg = json.loads((out / "config.json").read_text())
        metrics = json.loads((out / "metrics.json").read_text())
        assert "smoke" not in cfg and metrics["notebook_seconds"] > 0
        model_files[sub] = (cfg, metrics)
    cfg, metrics = model_files["classifier"]
    assert cfg["kind"] == "classifier" and cfg["window"] == 2 and cfg["folds"] == 2
    res = [r for r in metrics["results"] if r["view"] == "all"]
    assert {"(a) random frames", "(b) grouped", "(c) ESAP -> OpenPose lifters"} <= {r["protocol"] for r in res}
    assert all(0 <= r["frame_acc"] <= 1 for r in res)
    assert sum(r["protocol"].startswith("(c) ESAP -> kettlebell") for r in res) == 1  # the poses 02 wrote
    p = load_classifier(run / "classifier").predict_frames(load_pose_json(BAD_SIDE))
    assert np.isfinite(p).mean() > 0.9
    shown = summary["steps"]["03_train_classifier"]["metrics"]
    grouped = next(r for r in res if r["protocol"] == "(b) grouped" and r["model"] == metrics["spec"])
    assert shown["saved"] == metrics["spec"] and shown["grouped_frame_acc"] == round(grouped["frame_acc"], 3)
    cfg, metrics = model_files["deviation"]
    assert cfg["kind"] == "deviation" and cfg["net"] in ("linear", "mlp") and cfg["epochs"] == 2
    assert all(0 <= r["video_auc"] <= 1 for r in metrics["cv"] if r["view"] == "all")
    rows = load_deviation_model(run / "deviation").summarise(load_pose_json(BAD_SIDE))
    assert rows and rows[0]["magnitude"] >= rows[-1]["magnitude"]
    assert summary["steps"]["04_train_deviation_model"]["metrics"]["saved"] == cfg["net"]
    # 05: the hips-first kettlebell set, analysed with the models 03/04 just saved
    report = json.loads((run / "analysis" / "hips_first_side_report.json").read_text())
    assert report["verdict"] == "bad" and len(report["reps"]) == 10
    assert any(e["name"] == "hips_first" for r in report["reps"] for e in r["errors"])
    assert report["classifier"]["trusted_for_this_backend"] is False  # trained on OpenPose, this is BlazePose
    # The learned deviation model's per-joint deviations (notebook 04's model) are in the report
    # beside the good-form joint deviations (a list, empty when every joint is within the spread).
    assert report["model_deviations"] and {"joint", "magnitude", "direction"} <= set(report["model_deviations"][0])
    assert isinstance(report["deviations"], list)
    assert report["models"]["classifier"] and report["models"]["deviation"]
    assert report["feedback"]["source"] == "offline"     # no key in tests
    assert summary["steps"]["05_evaluate_and_feedback"]["metrics"]["verdict"] == report["verdict"]


def test_same_parameters_and_data_give_the_same_metrics(smoke_run):
    summary, tmp, params = smoke_run
    # Only the training steps can vary between runs (threads, seeds); 01-02 and 05 are plain code.
    again = run_pipeline(params, smoke=True, runs_dir=tmp / "runs", run_id="second",
                         steps=["03_train_classifier", "04_train_deviation_model"])
    assert again["status"] == "ok", format_summary(again)
    for sub in ("classifier", "deviation"):
        a = _numbers(json.loads((tmp / "runs" / "first" / sub / "metrics.json").read_text()))
        b = _numbers(json.loads((tmp / "runs" / "second" / sub / "metrics.json").read_text()))
        assert a.keys() == b.keys() and len(a) >= 5, (sub, sorted(a))
        for k in a:
            assert np.isclose(a[k], b[k], rtol=1e-6, atol=1e-9, equal_nan=True), (sub, k, a[k], b[k])


def test_resume_keeps_finished_steps_and_reruns_the_rest(smoke_run):
    _, tmp, params = smoke_run
    run = tmp / "runs" / "first"
    summary = json.loads((run / "summary.json").read_text())
    summary["steps"]["05_evaluate_and_feedback"] = {"status": "failed", "error": "simulated"}
    (run / "summary.json").write_text(json.dumps(summary))
    before = {n: (run / f"{n}.ipynb").stat().st_mtime_ns for n in NOTEBOOKS[:4]}
    resumed = run_pipeline(resume="first", runs_dir=tmp / "runs")
    assert resumed["status"] == "ok"
    assert {n: (run / f"{n}.ipynb").stat().st_mtime_ns for n in NOTEBOOKS[:4]} == before
    assert resumed["steps"]["05_evaluate_and_feedback"]["status"] == "ok"


def test_resume_of_an_unknown_run_says_where_runs_are(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run to resume"):
        run_pipeline(resume="nope", runs_dir=tmp_path)
