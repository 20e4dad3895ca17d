"""Stage 5: rerun notebooks 01-05 in order with papermill, parameters from a YAML file.

`run_pipeline(params_yaml, smoke=False, resume=None, data_dir=None)` writes, under
outputs/runs/<run-id>/: each executed notebook (the record of the run), `params_used.yaml`
(the parameters each notebook actually got) and `summary.json` (per step: status, seconds,
key metrics). `--resume RUN_ID` keeps the steps that finished and reruns from the first one
that did not, with the parameters saved for that run.
"""
from __future__ import annotations

import json
import os
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import yaml

from . import config
from .io_utils import atomic_write_text
from .quiet import quiet_environment

NOTEBOOKS = ["01_label_videos", "02_extract_poses", "03_train_classifier",
             "04_train_deviation_model", "05_evaluate_and_feedback"]
NOTEBOOK_DIR = config.PROJECT_ROOT / "notebooks"
TOP_KEYS = ("extends", "data_dir", "poses_dir", "notebooks", "smoke")


_DECLARED: dict = {}


def notebook_parameters(name: str) -> dict:
    """The parameters a notebook declares, from its `parameters` cell (papermill's own parser)."""
    import papermill as pm

    path = NOTEBOOK_DIR / f"{name}.ipynb"
    key = (name, path.stat().st_mtime_ns if path.is_file() else None)
    if key not in _DECLARED:  # inspecting takes ~0.7 s a notebook; reread when the file changes
        _DECLARED[key] = pm.inspect_notebook(str(path))
    return _DECLARED[key]


def _default(spec: dict, name: str = "", key: str = ""):
    """A declared parameter's default value (None when it has none). Parameters cells hold
    literals only (house style), so anything else is a ValueError naming the notebook cell,
    never code run here."""
    import ast

    text = spec.get("default") or "None"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError(f"notebooks/{name}.ipynb: parameter {key!r} defaults to {text!r}, which is not a "
                         f"literal; write a plain value (number, string, True/False, list) in the parameters "
                         f"cell.") from None


def _coerce(name: str, key: str, value, declared: dict, where: str = "the params YAML"):
    """Check a value against the notebook's declared type; convert strings papermill-style
    ('5' -> 5, 'true' -> True) and say exactly what is wrong otherwise."""
    spec = declared[key]
    typ = (spec.get("inferred_type_name") or "").lower()
    default = spec.get("default")
    if typ in ("none", ""):
        typ = type(_default(spec, name, key)).__name__ if default else ""
    try:
        if typ == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            raise ValueError
        if typ == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if typ == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if typ == "str":
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: parameter {key!r} of {name} should be {typ}, got {value!r}; "
                         f"fix it in that file (strings such as \"20\" or \"true\" are converted).") from None
    return value


def _read_params_file(params_yaml: Path) -> dict:
    """One params YAML, parsed and checked (top keys, section shapes); `extends` not followed."""
    if not params_yaml.is_file():
        raise FileNotFoundError(f"{params_yaml}: no such parameters file. Use params/demo.yaml as a template.")
    try:
        doc = yaml.safe_load(params_yaml.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"{params_yaml}: not valid YAML ({getattr(e, 'problem', None) or type(e).__name__}"
                         f"{where}); fix that line (params/demo.yaml is a working example).") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{params_yaml}: should be a mapping with keys {', '.join(TOP_KEYS)}, "
                         f"not a {type(doc).__name__}; see params/demo.yaml.")
    unknown = [k for k in doc if k not in TOP_KEYS]
    if unknown:
        raise ValueError(f"{params_yaml}: unknown key(s) {', '.join(map(str, unknown))}; "
                         f"the keys are {', '.join(TOP_KEYS)} (see params/demo.yaml).")
    for section in ("notebooks", "smoke"):
        block = doc.get(section) or {}
        if not isinstance(block, dict):
            raise ValueError(f"{params_yaml}: '{section}' should map notebook names to parameters, "
                             f"not be a {type(block).__name__}; see params/demo.yaml.")
        for name, values in block.items():
            if name not in NOTEBOOKS:
                raise ValueError(f"{params_yaml}: {section} has an unknown notebook {name!r}; "
                                 f"use one of {', '.join(NOTEBOOKS)}.")
            if values is not None and not isinstance(values, dict):
                raise ValueError(f"{params_yaml}: {section}.{name} should map parameter names to values, "
                                 f"not be {values!r}.")
    return doc


def load_params(params_yaml: str | os.PathLike, _chain: tuple = ()) -> dict:
    """The params YAML as one dict, with `extends: other.yaml` (relative to the file's folder)
    followed: the file's values replace the base's, per notebook parameter in `notebooks` and
    `smoke`, and per key at the top. So params/full.yaml holds only what differs from demo.yaml."""
    params_yaml = config.resolve(params_yaml)
    doc = _read_params_file(params_yaml)
    base = doc.pop("extends", None)
    if base is None:
        return doc
    if not isinstance(base, str) or not base.strip():
        raise ValueError(f"{params_yaml}: 'extends' should name another params file (e.g. extends: demo.yaml), "
                         f"not {base!r}.")
    base_path = Path(os.path.normpath(params_yaml.parent / Path(base).expanduser()))
    if base_path == params_yaml or base_path in _chain:
        raise ValueError(f"{params_yaml}: 'extends: {base}' leads back to {base_path} (a loop); "
                         f"point it at a file that does not extend this one.")
    if not base_path.is_file():
        raise FileNotFoundError(f"{params_yaml}: 'extends: {base}' names {base_path}, which does not exist; "
                                f"the path is relative to {params_yaml.parent}.")
    merged = load_params(base_path, _chain + (params_yaml,))
    for key, value in doc.items():
        if key in ("notebooks", "smoke"):
            section = {name: dict(values or {}) for name, values in (merged.get(key) or {}).items()}
            for name, values in (value or {}).items():
                section.setdefault(name, {}).update(values or {})
            merged[key] = section
        else:
            merged[key] = value
    return merged


def build_parameters(params_yaml: str | os.PathLike, smoke: bool = False, data_dir: str | None = None,
                     run_dir: Path | None = None) -> dict[str, dict]:
    """Read the YAML (and the file it `extends`) and return {notebook: parameters}, with
    placeholders filled and types checked; with smoke=True the `smoke` section goes on top."""
    params_yaml = config.resolve(params_yaml)
    doc = load_params(params_yaml)
    data = str(config.resolve(data_dir or doc.get("data_dir") or config.SHARED_DATA_DIR))
    config.require_dir(data, "data folder")
    subst = {"data_dir": data, "poses_dir": str(config.resolve(doc.get("poses_dir", "data/interim/poses"))),
             "run_dir": str(run_dir or "")}
    out = {}
    for name in NOTEBOOKS:
        values = dict((doc.get("notebooks") or {}).get(name) or {})
        if smoke:
            values.update((doc.get("smoke") or {}).get(name) or {})
        declared = notebook_parameters(name)
        if "run_dir" in declared:
            values.setdefault("run_dir", "{run_dir}")
        for key, value in list(values.items()):
            if key not in declared:
                raise ValueError(f"{params_yaml}: {name} has no parameter {key!r} "
                                 f"(it has: {', '.join(declared)}).")
            if isinstance(value, str):
                try:
                    value = value.format(**subst)
                except (KeyError, IndexError, ValueError) as e:
                    raise ValueError(f"{params_yaml}: {name}.{key} = {value!r} has a placeholder problem ({e}); "
                                     f"the placeholders are {{data_dir}}, {{poses_dir}} and {{run_dir}}, "
                                     f"and a literal brace is written twice ({{{{ }}}}).") from None
            values[key] = _coerce(name, key, value, declared, str(params_yaml))
        out[name] = values
    return out


def check_inputs(params: dict[str, dict]) -> None:
    """Open the label and approval files the notebooks will read (each notebook's labels_csv /
    approvals_csv, given or default, and the dataset CSVs in import_label_csvs), so a bad one
    stops the run before any notebook starts. Raises ValueError / FileNotFoundError naming
    the file and the fix; a duplicate row is a warning (the last row counts, as in notebook 01)."""
    from .labels import ApprovalStore, LabelStore, csv_label_rows

    seen = set()
    for name, values in params.items():
        declared = notebook_parameters(name)

        def value(key):
            return values.get(key, _default(declared[key], name, key)) if key in declared else None

        for key, store in (("labels_csv", LabelStore), ("approvals_csv", ApprovalStore)):
            path = value(key)
            if path and config.resolve(path).is_file() and (key, config.resolve(path)) not in seen:
                seen.add((key, config.resolve(path)))
                store(config.resolve(path))   # only reads; an unreadable file is never rewritten
        for csv in filter(None, str(value("import_label_csvs") or "").split(";")):
            csv_label_rows(config.resolve(csv.strip()), source="check")


def _metrics(name: str, run_dir: Path, params: dict) -> dict:
    """A few numbers worth seeing at the end, read from what the step wrote."""
    try:
        if name == "02_extract_poses":
            import pandas as pd

            t = pd.read_csv(run_dir / "extraction.csv")
            return {"videos": len(t), "mean_detection_rate": round(float(t["detection_rate"].mean()), 3),
                    "flagged": int((t["flags"].fillna("") != "").sum())}
        if name == "03_train_classifier":
            m = json.loads((run_dir / "classifier" / "metrics.json").read_text())
            rows = [r for r in m.get("results", []) if r.get("view") == "all"]
            grouped = next((r for r in rows if r.get("protocol") == "(b) grouped"
                            and r.get("model") == m.get("spec")), None)
            leaky = next((r for r in rows if r.get("protocol") == "(a) random frames"), None)
            out = {"saved": m.get("spec")}
            if grouped:  # the honest figure first, the study's leaky random split beside it
                out["grouped_frame_acc"] = round(grouped["frame_acc"], 3)
                out["grouped_video_acc"] = round(grouped["video_acc_study_60pct"], 3)
            if leaky:
                out["random_split_frame_acc"] = round(leaky["frame_acc"], 3)
            return out
        if name == "04_train_deviation_model":
            m = json.loads((run_dir / "deviation" / "metrics.json").read_text())
            out = {"saved": m.get("chosen")}
            for r in m.get("cv", []):
                if r.get("view") == "all" and r.get("model") == m.get("chosen"):
                    out["video_auc"] = round(r["video_auc"], 3)
            top = [t.get("joint") for t in m.get("top_joints_bad", [])[:3]]
            if top:
                out["top_joints_bad"] = "/".join(top)
            return out
        if name == "05_evaluate_and_feedback":
            reports = sorted(Path(params.get("out_dir", run_dir / "analysis")).glob("*_report.json"))
            if reports:
                r = json.loads(reports[-1].read_text())
                return {"video": Path(str(r.get("video"))).name, "verdict": r.get("verdict"),
                        "reps": len(r.get("reps", [])), "feedback": (r.get("feedback") or {}).get("source")}
    except (OSError, ValueError, KeyError):
        pass
    return {}


def kernel_options() -> dict:
    """papermill keyword arguments for the notebook kernel: a quiet kernel log, and CurveZMQ-encrypted
    kernel sockets when pyzmq supports them. ipykernel >= 7.3 warns on every start over plain TCP, which
    buried the run's own output; the kernel is local either way."""
    import zmq

    # The kernel's own log at CRITICAL: papermill interrupts a kernel as it shuts it down, and a
    # kernel that finished quickly logs "[IPKernelApp] ERROR | KeyboardInterrupt caught in
    # kernel", which reads as a failure; a cell's error still reaches the notebook and the run.
    quiet = {"extra_arguments": ["--IPKernelApp.log_level=CRITICAL"]}
    if not zmq.has("curve"):
        return quiet
    from traitlets.config import Config

    return {**quiet, "config": Config({"KernelManager": {"transport_encryption": "auto"}})}


def run_pipeline(params_yaml: str | os.PathLike = "params/demo.yaml", smoke: bool = False,
                 resume: str | None = None, data_dir: str | None = None, run_id: str | None = None,
                 steps: list[str] | None = None, runs_dir: str | os.PathLike | None = None) -> dict:
    """Execute the notebooks in order; returns the summary dict (also in summary.json).

    runs_dir: where run folders go (default outputs/runs).
    """
    import papermill as pm

    runs_dir = config.resolve(runs_dir) if runs_dir else config.RUNS_DIR
    if resume:
        run_dir = runs_dir / resume
        if not (run_dir / "params_used.yaml").is_file():
            raise FileNotFoundError(f"{run_dir}: no run to resume there (params_used.yaml missing). "
                                    f"See the run ids in {runs_dir}.")
        params = yaml.safe_load((run_dir / "params_used.yaml").read_text())
        check_inputs(params)
        summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").is_file() else {}
    else:
        run_id = run_id or datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S") + ("-smoke" if smoke else "")
        run_dir = runs_dir / run_id
        # Check everything before making the run folder: a bad file leaves no empty run behind.
        params = build_parameters(params_yaml, smoke=smoke, data_dir=data_dir, run_dir=run_dir)
        check_inputs(params)
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "params_used.yaml", yaml.safe_dump(params, sort_keys=False))
        summary = {}
    summary.setdefault("run_id", run_dir.name)
    summary.setdefault("smoke", smoke)
    summary.setdefault("steps", {})
    summary["run_dir"] = str(run_dir)

    quiet_environment()  # kernels inherit it: no TF/absl/MediaPipe start-up lines in the notebooks
    failed = False
    for name in steps or NOTEBOOKS:
        step = summary["steps"].get(name, {})
        out_nb = run_dir / f"{name}.ipynb"
        if step.get("status") == "ok" and out_nb.is_file():
            print(f"{name}: done earlier, kept")
            continue
        if failed:
            summary["steps"][name] = {"status": "not run"}
            continue
        print(f"{name}: running ...", flush=True)
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(NOTEBOOK_DIR / f"{name}.ipynb"), str(out_nb), parameters=params[name],
                                cwd=str(config.PROJECT_ROOT), kernel_name="python3", progress_bar=False,
                                log_output=False, **kernel_options())
            step = {"status": "ok", "seconds": round(time.perf_counter() - t0, 1),
                    "metrics": _metrics(name, run_dir, params[name])}
        except pm.PapermillExecutionError as e:
            step = {"status": "failed", "seconds": round(time.perf_counter() - t0, 1),
                    "error": f"{e.ename}: {e.evalue}"[:500], "cell": e.exec_count}
            failed = True
        except Exception as e:  # kernel died, notebook missing: record it, stop the chain
            step = {"status": "failed", "seconds": round(time.perf_counter() - t0, 1),
                    "error": f"{type(e).__name__}: {e}"[:500], "trace": traceback.format_exc()[-1500:]}
            failed = True
        summary["steps"][name] = step
        atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2))
        print(f"{name}: {step['status']} in {step['seconds']} s", flush=True)
    summary["status"] = "failed" if failed else "ok"
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2))
    return summary


def format_summary(summary: dict) -> str:
    lines = [f"run {summary['run_id']} -> {summary['run_dir']}", f"{'step':28} {'status':8} {'seconds':>8}  metrics"]
    for name, s in summary["steps"].items():
        m = s.get("metrics") or {}
        text = ", ".join(f"{k}={v}" for k, v in list(m.items())[:6]) if m else s.get("error", "")
        lines.append(f"{name:28} {s.get('status', ''):8} {s.get('seconds', ''):>8}  {text}")
    total = sum(s.get("seconds", 0) or 0 for s in summary["steps"].values())
    lines.append(f"total {total:.0f} s; status {summary.get('status')}")
    if summary.get("status") == "failed":
        lines.append(f"fix the failing step, then resume: python -m deadlift_utils run --resume {summary['run_id']}")
    return "\n".join(lines)
