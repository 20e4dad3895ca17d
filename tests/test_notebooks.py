"""Notebook hygiene (Jupytext pairs in sync, no outputs, one parameters cell) and the papermill
parameter handling."""
import copy

import jupytext
import nbformat
import papermill as pm
import pytest
from jupytext.compare import compare_notebooks
from jupytext.config import load_jupytext_config

from deadlift_utils import config
from deadlift_utils.pipeline import NOTEBOOKS, build_parameters

NB_DIR = config.PROJECT_ROOT / "notebooks"
FIX = "run `make notebooks` (jupytext --sync, then strip outputs) and commit both files"


def test_every_notebook_is_paired_with_a_percent_script():
    cfg = load_jupytext_config(str(NB_DIR / f"{NOTEBOOKS[0]}.ipynb"))
    assert cfg is not None and cfg.formats in ("ipynb,py:percent", ["ipynb,py:percent"]), "notebooks/jupytext.toml must pair ipynb with py:percent"
    assert sorted(p.stem for p in NB_DIR.glob("*.py")) == NOTEBOOKS, "one NN_name.py beside each NN_name.ipynb"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_pair_is_in_sync(name):
    """The .py holds exactly what jupytext writes from the .ipynb (same cells, sources, tags):
    an edit saved on one side only (outside JupyterLab) fails here until the pair is synced."""
    ipynb = jupytext.read(NB_DIR / f"{name}.ipynb")
    script = jupytext.read(NB_DIR / f"{name}.py")
    inputs_only = copy.deepcopy(ipynb)
    inputs_only.metadata = {}  # the kernelspec stays in the .ipynb (notebook_metadata_filter = "-all")
    try:
        compare_notebooks(script, inputs_only, fmt="py:percent", allow_expected_differences=False)
    except Exception as e:  # jupytext's NotebookDifference / AssertionError, with the diff
        pytest.fail(f"notebooks/{name}.py and .ipynb differ; {FIX}:\n{e}")
    cfg = load_jupytext_config(str(NB_DIR / f"{name}.ipynb"))
    expected = jupytext.writes(ipynb, fmt="py:percent", config=cfg)
    assert (NB_DIR / f"{name}.py").read_text() == expected, f"notebooks/{name}.py is not jupytext's text; {FIX}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_has_no_outputs_and_a_parseable_parameters_cell(name):
    nb = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert tagged == [code[0]], "exactly one cell, the first code cell, must be tagged 'parameters'"
    ids = [c.get("id") for c in nb.cells]
    assert all(ids) and len(set(ids)) == len(ids), f"{name}: cell ids missing or repeated"
    for c in code:
        assert c.outputs == [] and c.execution_count is None, f"{name} has outputs: {FIX}"
    # papermill must understand every parameter line (it silently drops lines it cannot parse)
    lines = [l for l in code[0].source.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    declared = pm.inspect_notebook(str(NB_DIR / f"{name}.ipynb"))
    assert len(declared) == len(lines), f"papermill parsed {sorted(declared)} of {lines}"
    for l in lines:
        assert "#" in l, f"{name}: parameter without a comment: {l}"


def test_every_notebook_in_the_folder_is_in_the_pipeline():
    assert sorted(p.stem for p in NB_DIR.glob("*.ipynb")) == NOTEBOOKS


def test_demo_parameters_fill_placeholders_and_types():
    params = build_parameters("params/demo.yaml", run_dir="/tmp/run-x")
    p02 = params["02_extract_poses"]
    assert p02["frame_stride"] == 5 and isinstance(p02["frame_stride"], int)
    assert p02["data_dirs"].startswith(str(config.SHARED_DATA_DIR))
    assert params["05_evaluate_and_feedback"]["classifier_dir"] == "/tmp/run-x/classifier"
    smoke = build_parameters("params/demo.yaml", smoke=True, run_dir="/tmp/run-x")
    assert smoke["02_extract_poses"]["max_videos"] == 2
    assert (smoke["03_train_classifier"]["epochs"], smoke["03_train_classifier"]["folds"]) == (2, 2)
    assert smoke["04_train_deviation_model"]["models"] == "linear,mlp"
    assert smoke["05_evaluate_and_feedback"]["write_video"] is False


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_import_the_installed_package_and_size_nothing_by_smoke(name):
    """No sys.path edits or project-root hunting (the package is installed, `make install`), paths
    through config.resolve, and smoke sizes in params/demo.yaml's smoke section, not in code."""
    source = (NB_DIR / f"{name}.py").read_text()
    for banned in ("sys.path", "ROOT", "Path.cwd()", "if smoke", "smoke:"):
        assert banned not in source, f"notebooks/{name}.py: {banned!r}"


def test_full_yaml_extends_demo_and_holds_only_what_differs():
    demo = build_parameters("params/demo.yaml", run_dir="/tmp/run-x")
    full = build_parameters("params/full.yaml", run_dir="/tmp/run-x")
    text = (config.PROJECT_ROOT / "params" / "full.yaml").read_text()
    assert "extends: demo.yaml" in text and "01_label_videos" not in text and "smoke:" not in text
    assert full["01_label_videos"] == demo["01_label_videos"] and full["05_evaluate_and_feedback"] == demo["05_evaluate_and_feedback"]
    p03, p04 = full["03_train_classifier"], full["04_train_deviation_model"]
    assert (p03["epochs"], p03["folds"], p03["lifter_holdout"], len(p03["ablation"].split(","))) == (40, 5, True, 8)
    assert p03["esap_dir"] == demo["03_train_classifier"]["esap_dir"]  # inherited beside the overrides
    assert (p04["models"], p04["epochs"], p04["folds"]) == ("linear,mlp,study_conv", 60, 5)
    # --smoke on full.yaml: demo.yaml's smoke sizes on top, so CI stays small whatever the base
    smoke = build_parameters("params/full.yaml", smoke=True, run_dir="/tmp/run-x")
    assert smoke["03_train_classifier"]["epochs"] == 2 and smoke["03_train_classifier"]["lifter_holdout"] is False
    assert smoke["04_train_deviation_model"]["models"] == "linear,mlp"


def test_extends_is_relative_to_the_file_and_bad_bases_are_named(tmp_path):
    from deadlift_utils.pipeline import load_params

    (tmp_path / "base.yaml").write_text("poses_dir: a\nnotebooks:\n  02_extract_poses:\n    frame_stride: 3\n"
                                        "    batch: true\nsmoke:\n  02_extract_poses:\n    max_videos: 1\n")
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\nnotebooks:\n  02_extract_poses:\n    frame_stride: 7\n")
    doc = load_params(child)
    assert doc["poses_dir"] == "a" and doc["notebooks"]["02_extract_poses"] == {"frame_stride": 7, "batch": True}
    assert doc["smoke"] == {"02_extract_poses": {"max_videos": 1}} and "extends" not in doc
    with pytest.raises(FileNotFoundError, match="extends: nope.yaml.*relative to"):
        load_params(_yaml(tmp_path, "extends: nope.yaml\n"))
    (tmp_path / "loop.yaml").write_text("extends: p.yaml\n")
    with pytest.raises(ValueError, match="loop"):
        load_params(_yaml(tmp_path, "extends: loop.yaml\n"))
    with pytest.raises(ValueError, match="unknown notebook"):  # the base is checked like any params file
        (tmp_path / "base.yaml").write_text("notebooks:\n  99_nope: {}\n")
        load_params(child)


def test_the_runner_kernel_is_this_python(tmp_path):
    """papermill's python3 kernel runs the interpreter the runner runs under (the venv's), so
    notebooks import the package installed there."""
    import sys

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys, deadlift_utils\n"
                                                                   "print(sys.executable)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "k.ipynb")
    from deadlift_utils.pipeline import kernel_options

    out = pm.execute_notebook(str(tmp_path / "k.ipynb"), str(tmp_path / "k_out.ipynb"), kernel_name="python3",
                              progress_bar=False, cwd=str(tmp_path), **kernel_options())
    printed = out.cells[0].outputs[0]["text"].strip()
    assert printed == sys.executable


def _yaml(tmp_path, body):
    p = tmp_path / "p.yaml"
    p.write_text(body)
    return p


def test_strings_are_converted_like_papermill_and_wrong_types_are_named(tmp_path):
    ok = _yaml(tmp_path, "notebooks:\n  02_extract_poses:\n    frame_stride: '10'\n    batch: 'true'\n")
    p = build_parameters(ok)["02_extract_poses"]
    assert p["frame_stride"] == 10 and p["batch"] is True
    bad = _yaml(tmp_path, "notebooks:\n  02_extract_poses:\n    frame_stride: ten\n")
    with pytest.raises(ValueError, match="frame_stride.*should be int"):
        build_parameters(bad)
    unknown = _yaml(tmp_path, "notebooks:\n  02_extract_poses:\n    stride: 3\n")
    with pytest.raises(ValueError, match="no parameter 'stride'"):
        build_parameters(unknown)


def test_missing_data_folder_says_how_to_point_at_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="make demo"):
        build_parameters("params/demo.yaml", data_dir=str(tmp_path / "nowhere"))


def test_missing_or_broken_params_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="demo.yaml"):
        build_parameters(tmp_path / "none.yaml")
    with pytest.raises(ValueError, match="YAML"):
        build_parameters(_yaml(tmp_path, "notebooks: [unclosed"))


def test_unannotated_defaults_are_read_as_literals_and_never_run(tmp_path):
    """A parameter without a type annotation gets its type from its default, read with
    ast.literal_eval: a default that is code is an error naming the cell, and is not run."""
    from deadlift_utils.pipeline import _coerce, _default

    declared = {"stride": {"inferred_type_name": "None", "default": "5"},
                "tag": {"inferred_type_name": "None", "default": "'a'"},
                "evil": {"inferred_type_name": "None", "default": f"open({str(tmp_path / 'ran')!r}, 'w')"}}
    assert _coerce("02_extract_poses", "stride", "7", declared) == 7
    assert _coerce("02_extract_poses", "tag", 3, declared) == "3"
    with pytest.raises(ValueError, match=r"notebooks/02_extract_poses.ipynb: parameter 'evil'.*not a literal"):
        _coerce("02_extract_poses", "evil", "x", declared)
    with pytest.raises(ValueError, match="not a literal"):
        _default(declared["evil"], "02_extract_poses", "evil")
    assert not (tmp_path / "ran").exists()
    assert _default({"default": None}) is None and _default({"default": "[1, 2]"}) == [1, 2]
