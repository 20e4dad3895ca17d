"""Write notebooks/05_evaluate_and_feedback.ipynb (no outputs; first code cell tagged `parameters`).

    python scripts/make_notebook_05.py
"""
from __future__ import annotations

from nbgen import code, md, params, write_notebook


INTRO = """# 05 · Evaluate a new video and get coaching

Film a set on a phone (whole body in view, side view works best), set `video_path` below and run
all cells. You get, in `out_dir`:

* a verdict for the set and for every rep (`good` / `bad` / `unknown` with the reason),
* the named errors per rep with their evidence (the measured angle or ratio vs its threshold),
* per-joint deviations with direction (when a deviation model is given),
* angle-over-time and rule plots, an annotated video (rep, phase, verdict drawn on it),
* coaching text, biggest problem first: from OpenAI when `OPENAI_API_KEY` is set in the
  environment (never a parameter), otherwise written offline from the same findings.

The same analysis runs from the command line:
`python -m deadlift_utils analyze VIDEO --out DIR [--classifier DIR] [--deviation DIR]`.
The logic lives in `deadlift_utils.analyze` (reps: `reps.py`, rules: `rules.py`, view: `view.py`,
coaching: `feedback.py`)."""

PARAMS = """video_path = ""  # str: the video to analyse; empty means the shared demo clip kettlebell_errors/hips_first_side.mp4
out_dir = "../outputs/analysis"  # str: folder for the report, plots and annotated video
classifier_dir = ""  # str: trained classifier folder from notebook 03; empty means verdict from the rules only
deviation_dir = ""  # str: trained deviation model folder from notebook 04; empty means skip deviations
openai_model = "gpt-4o-mini"  # str: OpenAI model for the coaching text (key from OPENAI_API_KEY)
view = ""  # str: front, middle or side; empty means predict it from the pose
frame_stride = 2  # int: analyse every Nth video frame
smoke = False  # bool: quick CI run (every 6th frame, no annotated video)"""

RUN = """import sys
from pathlib import Path

# Make the project's package importable when the kernel starts in notebooks/.
ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "deadlift_utils").is_dir())
sys.path.insert(0, str(ROOT))

import pandas as pd
from IPython.display import HTML, Image, Markdown, Video, display

from deadlift_utils.analyze import analyze_video
from deadlift_utils.config import KETTLEBELL_DIR

video = Path(video_path) if video_path else KETTLEBELL_DIR / "hips_first_side.mp4"
report = analyze_video(
    video, out_dir,
    frame_stride=6 if smoke else frame_stride,
    view=view or None,
    classifier_dir=classifier_dir or None,
    deviation_dir=deviation_dir or None,
    openai_model=openai_model,
    write_video=not smoke,
    progress=True,
)
out = Path(out_dir)
display(Markdown(f"## Verdict: **{report['verdict']}**  \\n{report['verdict_reason']}  \\n"
                 f"decided by: {report['decided_by']} · view: {report['view']} ({report['view_source']}) · "
                 f"reps: {len(report['reps'])} · good-frame fraction: {report['good_frame_fraction']}"))"""

REPS = """rows = [{"rep": r["index"], "start_s": round(r["start_s"], 2), "end_s": round(r["end_s"], 2),
         "verdict": r["verdict"],
         "errors": "; ".join(f"{e['name']} ({e['evidence']['value']} {e['evidence']['units']}, limit "
                             f"{e['evidence']['threshold']})" for e in r["errors"]) or "-"}
        for r in report["reps"]]
display(pd.DataFrame(rows))
if report["deviations"]:
    display(pd.DataFrame(report["deviations"])[["joint", "dx", "dy", "units", "direction"]])
for note in report["notes"]:
    print("note:", note)"""

FEEDBACK = """display(Markdown(f"### Coaching (written by: {report['feedback']['source']})\\n\\n{report['feedback']['text']}"))"""

PLOTS = """for key in ("angles_png", "rules_png", "deviations_png"):
    if key in report["files"]:
        display(Image(filename=str(out / report["files"][key])))
if "annotated_video" in report["files"]:
    display(Video(str(out / report["files"]["annotated_video"]), embed=False, width=480))
display(HTML(f'<a href="{out / report["files"]["report_html"]}" target="_blank">Open the full HTML report</a>'))"""


CELLS = [
    md(INTRO),
    params(PARAMS),
    md("## Run the analysis\nPose extraction, reps and phases, named-error rules, "
       "optional classifier and deviation model, verdict, coaching, outputs."),
    code(RUN),
    md("## Reps, errors and deviations\nEach error comes with its evidence: the measured value, "
       "the rule's threshold and units. Rules that the camera view cannot judge are listed "
       "as not checked in the HTML report."),
    code(REPS),
    code(FEEDBACK),
    md("## Plots and annotated video"),
    code(PLOTS),
]


def main() -> int:
    write_notebook(CELLS, "05_evaluate_and_feedback.ipynb")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
