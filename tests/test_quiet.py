"""No library start-up noise (TensorFlow, absl, oneDNN, MediaPipe) in the CLI's output or in an
executed notebook's cells: each is run in a fresh process whose environment has none of the
quieting variables, so only the package itself can silence them."""
import os
import subprocess
import sys

import nbformat
import pytest

from deadlift_utils import config
from deadlift_utils.quiet import QUIET_ENV, noise_lines

BAD_SIDE = config.ESAP_POSE_DIR / "bad_side" / "Bad3.json"


def _clean_env(**extra) -> dict:
    """This process's environment without the quieting variables (pytest's own import of the
    package set them), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in QUIET_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(config.PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env | extra


def test_noise_patterns_match_the_lines_tensorflow_prints():
    seen = """WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796008379.382655   12408 port.cc:153] oneDNN custom operations are on. You may see slightly
E0000 00:00:1733.0  2811 meta_optimizer.cc:966] NodeDef mentions attribute use_unbounded_threadpool which is not
W0000 00:00:1796.1  2811 inference_feedback_manager.cc:114] Feedback manager requires a model with a single signature
Sparsity tensors may not yet be fully supported
verdict bad
UserWarning: a real warning stays visible"""
    assert len(noise_lines(seen)) == 5
    assert noise_lines("Traceback (most recent call last):\nValueError: x.json: not a pose file") == []


@pytest.fixture(scope="module")
def keras_classifier(tmp_path_factory):
    """A saved Keras classifier (1 epoch): loading it imports TensorFlow, which is the noisy part."""
    from deadlift_utils.dataset import load_training_videos
    from deadlift_utils.models import save_model_bundle
    from deadlift_utils.train import spec_by_name, train_final

    videos = load_training_videos(include_user=False)
    model, cfg, _, _ = train_final(videos[:4] + videos[-4:], spec_by_name("mlp_robust"), epochs=1)
    cfg["video_rule"] = {"name": "good_frame_fraction", "threshold": 0.6, "frame_threshold": 0.5}
    return save_model_bundle(model, tmp_path_factory.mktemp("quiet") / "clf", cfg, {})


def _classify(model_dir, env):
    return subprocess.run([sys.executable, "-m", "deadlift_utils", "classify", str(BAD_SIDE), "--model",
                           str(model_dir)], capture_output=True, text=True, env=env, timeout=300,
                          cwd=config.PROJECT_ROOT)


def test_cli_prints_no_tensorflow_start_up_lines(keras_classifier):
    quiet = _classify(keras_classifier, _clean_env())
    assert quiet.returncode == 0, quiet.stderr
    assert '"verdict"' in quiet.stdout
    assert noise_lines(quiet.stdout + quiet.stderr) == []
    # The check can see the noise, and a user's own setting wins over the package's default.
    loud = _classify(keras_classifier, _clean_env(TF_ENABLE_ONEDNN_OPTS="1", TF_CPP_MIN_LOG_LEVEL="0"))
    assert loud.returncode == 0 and any("oneDNN" in line for line in noise_lines(loud.stderr))


@pytest.mark.slow
def test_executed_notebook_has_no_start_up_noise_in_its_cells(tmp_path):
    """Notebook 04 (smoke) trains Keras nets: before the fix each such notebook held two red
    stderr boxes of absl/oneDNN lines, and the runner's terminal showed them too."""
    from test_pipeline import _isolated_params

    params = _isolated_params(tmp_path)
    code = (f"from deadlift_utils.pipeline import run_pipeline\n"
            f"s = run_pipeline({str(params)!r}, smoke=True, runs_dir={str(tmp_path / 'runs')!r}, run_id='q', "
            f"steps=['04_train_deviation_model'])\n"
            f"assert s['steps']['04_train_deviation_model']['status'] == 'ok', s\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_clean_env(),
                         timeout=900, cwd=config.PROJECT_ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert noise_lines(run.stdout + run.stderr) == []
    nb = nbformat.read(tmp_path / "runs" / "q" / "04_train_deviation_model.ipynb", as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any(o.get("output_type") == "display_data" for o in outputs)   # it did run and plot
    stderr_text = "\n".join(o["text"] for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stderr")
    assert noise_lines(stderr_text) == []
