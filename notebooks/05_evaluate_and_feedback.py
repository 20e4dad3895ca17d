# %% [markdown]
# # 05 · Evaluate a new video and get coaching
#
# Film a set on a phone (whole body in view, side view works best), set `video_path` below and run
# all cells. You get, in `out_dir`:
#
# * a verdict for the set and for every rep (`good` / `bad` / `unknown` with the reason) and a
#   `form_score` (0 = textbook, under 1 = within the good-form range of many lifters, 1 and up = bad),
# * the named errors per rep with their evidence (the measured value vs the edge of the good-form
#   range it was compared with), and a still of each finding's moment,
# * the lift style (conventional / romanian / partial / sumo), which frames were not measured and why,
# * the joints that were outside the good-form spread, in words (and the learned deviation model's
#   per-joint deviations when one is given),
# * angle-over-time and per-rule plots, an annotated video (rep, phase, verdict drawn on it),
# * coaching text, biggest problem first: from OpenAI when `OPENAI_API_KEY` is set in the
#   environment (never a parameter), otherwise written offline from the same findings.
#
# The same analysis runs from the command line:
# `python -m deadlift_utils analyze VIDEO --out DIR [--classifier DIR] [--deviation DIR]`.
# The logic lives in `deadlift_utils.analyze` (the verdict: `form.py`; trusted frames: `trust.py`;
# reps: `reps.py`; rules: `rules.py` with the good-form norms of `norms.py`; the back's shape:
# `spine.py`; view: `view.py`; coaching: `feedback.py`; the report: `report.py`).

# %% tags=["parameters"]
video_path = ""  # str: the video to analyse; empty means the shared demo clip kettlebell_errors/hips_first_side.mp4
out_dir = "outputs/analysis"  # str: folder for the report, plots and annotated video (relative paths: to the project root)
classifier_dir = ""  # str: trained classifier folder from notebook 03; empty means verdict from the rules only
deviation_dir = ""  # str: trained deviation model folder from notebook 04; empty means skip deviations
openai_model = "gpt-4o-mini"  # str: OpenAI model for the coaching text (key from OPENAI_API_KEY)
view = ""  # str: front, middle or side; empty means predict it from the pose
frame_stride = 2  # int: analyse every Nth video frame
write_video = True  # bool: also write the annotated video (smoke runs skip it)

# %% [markdown]
# ## Run the analysis
# Pose extraction, reps and phases, named-error rules, optional classifier and deviation model, verdict, coaching, outputs.

# %%
import pandas as pd
from IPython.display import HTML, Image, Markdown, Video, display

from deadlift_utils import config
from deadlift_utils.analyze import analyze_video

# Paths in parameters: absolute as given, else relative to the project root (wherever the kernel starts).
video = config.resolve(video_path) if video_path else config.KETTLEBELL_DIR / "hips_first_side.mp4"
out = config.resolve(out_dir)
report = analyze_video(
    video, out,
    frame_stride=frame_stride,
    view=view or None,
    classifier_dir=config.resolve(classifier_dir) if classifier_dir else None,
    deviation_dir=config.resolve(deviation_dir) if deviation_dir else None,
    openai_model=openai_model,
    write_video=write_video,
    progress=True,
)
score = "-" if report["form_score"] is None else f"{report['form_score']:.2f}"
style = (report.get("style") or {}).get("style", "-")
display(Markdown(f"## Verdict: **{report['verdict']}** (form score {score})  \n{report['verdict_reason']}  \n"
                 f"decided by: {report['decided_by']} · view: {report['view']} ({report['view_source']}) · "
                 f"style: {style} · reps: {len(report['reps'])}"))

# %% [markdown]
# ## Reps, errors and deviations
# Each error comes with its evidence: the measured value, the rule's threshold and units. Rules that the camera view cannot judge are listed as not checked in the HTML report.

# %%
from deadlift_utils.report import fmt

rows = [{"rep": r["index"], "time": f"{r['start_s']:.1f}-{r['end_s']:.1f} s", "verdict": r["verdict"],
         "score": None if r.get("score") is None else round(r["score"], 2),
         "frames measured": f"{r.get('confidence', 0):.0%}",
         "errors": "; ".join(f"{e['name']} ({fmt(e['evidence']['value'], e['evidence']['units'])}, good form "
                             f"{'>=' if e['evidence']['flag_when'] == 'below' else '<='} "
                             f"{fmt(e['evidence']['threshold'], e['evidence']['units'])})" for e in r["errors"]) or "-"}
        for r in report["reps"]]
display(pd.DataFrame(rows))
for d in report["deviations"][:5]:
    print("joint:", d["direction"])
trust = report.get("frame_trust") or {}
if trust.get("dropped"):
    print("frames not measured:", trust["dropped"])
for note in report["notes"]:
    print("note:", note)

# %% [markdown]
# ## Bar path and speed
# The plate's centre, tracked in side and 45-degree views (its path is drawn on the annotated video). Units: cm and m/s when the plate gives the scale (a standard 45 cm plate is assumed; the notes say so), else torso lengths. Without a tracked plate (kettlebells, front view) the notes say why, and the `bar_drift` rule uses the hands.

# %%
bar = report.get("bar") or {}
if bar.get("measured"):
    dist, speed = bar["units"]["distance"], bar["units"]["speed"]
    display(pd.DataFrame([{"rep": r["rep"], "pull (s)": r.get("concentric_s"),
                           f"mean speed ({speed})": r.get("mean_speed"), f"peak speed ({speed})": r.get("peak_speed"),
                           f"furthest ahead of mid-foot ({dist})": r.get("max_from_midfoot"),
                           f"sway ({dist})": r.get("sway"), "pull frames tracked": f"{r.get('tracked_share') or 0:.0%}"}
                          for r in bar["reps"]]).round(2))
    if "bar_speed_png" in report["files"]:
        display(Image(filename=str(out / report["files"]["bar_speed_png"])))
for note in bar.get("notes", []):
    print("bar:", note)

# %%
display(Markdown(f"### Coaching (written by: {report['feedback']['source']})\n\n{report['feedback']['text']}"))

# %% [markdown]
# ## Plots and annotated video

# %%
for rule, png in (report["files"].get("finding_stills") or {}).items():
    display(Markdown(f"**{rule.replace('_', ' ')}**"), Image(filename=str(out / png), width=360))
for key in ("margins_png", "angles_png", "deviations_png"):
    if key in report["files"]:
        display(Image(filename=str(out / report["files"][key])))
if "annotated_video" in report["files"]:
    display(Video(str(out / report["files"]["annotated_video"]), embed=False, width=480))
display(HTML(f'<a href="{out / report["files"]["report_html"]}" target="_blank">Open the full HTML report</a>'))
