"""Spine benchmark: the dorsal-contour sagitta on every clip of the shared barbell/kettlebell sets.

For each clip of videos/kettlebell_errors, videos/tutorial_dev and videos/yfgd_small: extract
poses (BlazePose full, frame_stride 2, no videos) with `spine.SpineAnalyzer`, caching the pose
JSON under outputs/cache/spine_poses/ and each frame's torso crop of the mask (+ raw keypoints)
under outputs/cache/spine_masks/, so the contour method can be re-measured without re-running
BlazePose. Then `back_shape` per clip, a table and per-group separation in docs/spine_results.md,
and a contact sheet outputs/benchmarks/spine/contact_sheet.png.

Run: PYTHONPATH=. .venv/bin/python scripts/benchmark_spine.py [--data ../shared/data]
     [--sets kettlebell_errors tutorial_dev yfgd_small] [--extract-only] [--redo]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from deadlift_utils import config
from deadlift_utils.extract import extract_video
from deadlift_utils.pose import load_pose_json, save_pose_json
from deadlift_utils.spine import (MAX_SHOULDER_WIDTH, STRETCH, SpineAnalyzer, back_shape, drop_short_torsos,
                                  measure_back, shoulder_width_ratio)

ROOT = Path(__file__).resolve().parents[1]
SETS = ("tutorial_dev", "kettlebell_errors", "yfgd_small")


def clips(data: Path, sets) -> pd.DataFrame:
    rows = []
    for s in sets:
        lab = pd.read_csv(data / "videos" / s / "labels.csv", keep_default_na=False)
        for r in lab.to_dict("records"):
            rows.append({"set": s, "clip": r["video"], "label": r["label"], "error": r.get("error", ""),
                         "view": r.get("view", ""), "group": r.get("group", "")})
    return pd.DataFrame(rows)


def cache_paths(s: str, clip: str) -> tuple[Path, Path]:
    sub = Path(clip).parent
    stem = Path(clip).stem
    return (ROOT / "outputs/cache/spine_poses" / s / sub, ROOT / "outputs/cache/spine_masks" / s / sub / f"{stem}.npz")


def extract_one(data: Path, s: str, clip: str, redo: bool = False):
    """Pose JSON + mask crops for one clip (cached). Returns (seq, seconds, frames, spine seconds)."""
    video = data / "videos" / s / clip
    pose_dir, mask_path = cache_paths(s, clip)
    analyzer = SpineAnalyzer(keep_masks=True)
    t0 = time.perf_counter()
    res = extract_video(video, pose_dir, frame_stride=2, write_videos=False, model_variant="full",
                        frame_analyzers=[analyzer], redo=redo or not mask_path.is_file())
    if not res.skipped:
        mask_path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for fi, (x0, y0, crop, kp) in analyzer.kept.items():
            arrays[f"m{fi}"] = crop
            arrays[f"k{fi}"] = kp
            arrays[f"o{fi}"] = np.array([x0, y0])
        arrays["cost"] = np.array([time.perf_counter() - t0, analyzer.frames, analyzer.seconds])
        tmp = mask_path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(mask_path)
    return res.sequence


def remeasure(s: str, clip: str, seq, stretch=STRETCH):
    """The spine field of `seq` measured again by the current code from the cached mask crops
    (so changes to the contour method need no new BlazePose run). Returns (values, seconds, frames)."""
    _, mask_path = cache_paths(s, clip)
    z = np.load(mask_path)
    values, t0 = [], time.perf_counter()
    for fi in seq.frame_index:
        key = f"m{int(fi)}"
        if key not in z.files:
            values.append(None)
            continue
        kp = z[f"k{int(fi)}"]
        if shoulder_width_ratio(kp) > MAX_SHOULDER_WIDTH:
            values.append(None)
            continue
        values.append(measure_back(z[key], kp, origin=tuple(z[f"o{int(fi)}"]), stretch=stretch))
    return drop_short_torsos(values), time.perf_counter() - t0, len(seq)


def auc(pos, neg) -> float:
    """P(a positive clip's value > a negative clip's), ties count half."""
    pos, neg = [p for p in pos if np.isfinite(p)], [n for n in neg if np.isfinite(n)]
    if not pos or not neg:
        return float("nan")
    return float(np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg]))


def comparisons(df: pd.DataFrame) -> list[dict]:
    """Per source: the labelled rounded backs against the good clips (and the other faults)."""
    out = []
    def row(name, pos, neg, note=""):
        p, n = df.loc[pos, "median_sagitta"].dropna(), df.loc[neg, "median_sagitta"].dropna()
        out.append({"comparison": name, "fault (min-max)": f"{p.min():.3f} .. {p.max():.3f}" if len(p) else "",
                    "good (min-max)": f"{n.min():.3f} .. {n.max():.3f}" if len(n) else "",
                    "margin": (p.min() - n.max()) if len(p) and len(n) else float("nan"),
                    "AUC": auc(p, n), "note": note})
    kb, td, yf = df["set"] == "kettlebell_errors", df["set"] == "tutorial_dev", df["set"] == "yfgd_small"
    for view in ("side", "middle"):
        v = kb & (df["view"] == view)
        row(f"kettlebell {view}: rounded_back vs correct", v & (df["error"] == "rounded_back"), v & (df["label"] == "good"))
    row("kettlebell: rounded_back vs correct (both views)", kb & (df["error"] == "rounded_back"), kb & (df["label"] == "good"))
    row("kettlebell: rounded_back vs all other takes", kb & (df["error"] == "rounded_back"), kb & (df["error"] != "rounded_back"),
        "other takes = correct, hips_first, knee_dominant")
    row("tutorial_dev: rounded_back vs good", td & (df["error"] == "rounded_back"), td & (df["label"] == "good"),
        "rounded: 4 clips of one footage (B2)")
    row("tutorial_dev: good vs overextension (bad_01)", td & (df["label"] == "good"), td & (df["error"] == "overextension"),
        "AUC = P(good > over-extended): an arched back should score lowest")
    row("yfgd_small: bad vs good (faults not named)", yf & (df["label"] == "bad"), yf & (df["label"] == "good"),
        "different scenes and lifters; not a rounded-back test")
    return out


def per_clip(data: Path, table: pd.DataFrame, stretch=STRETCH, keep_seqs: bool = False):
    rows, seqs, cost = [], {}, [0.0, 0]
    for r in table.itertuples():
        pose_dir, _ = cache_paths(r.set, r.clip)
        seq = load_pose_json(pose_dir / f"{Path(r.clip).stem}.json")
        values, sec, n = remeasure(r.set, r.clip, seq, stretch)
        cost[0] += sec
        cost[1] += n
        seq.frame_extras["spine"] = values
        shape = back_shape(seq)
        rows.append({"set": r.set, "clip": r.clip, "label": r.label, "error": r.error, "view": r.view,
                     "group": r.group, "median_sagitta": shape["sagitta"], "median_curvature": shape["curvature"],
                     "frames_used": shape["frames"], "frames_measured": sum(v is not None for v in values),
                     "frames": len(seq), "most_flexed_frame": shape["most_flexed_frame"],
                     "most_flexed_sagitta": shape["most_flexed_sagitta"]})
        if keep_seqs:
            seqs[(r.set, r.clip)] = seq
    return pd.DataFrame(rows), seqs, 1000 * cost[0] / max(cost[1], 1)


def read_frame(video: Path, frame_index: int):
    from deadlift_utils.video import open_capture
    cap = open_capture(video)
    cap.set(cv2.CAP_PROP_POS_FRAMES, int(frame_index))
    ok, frame = cap.read()
    cap.release()
    return frame if ok else None


def draw_tile(frame, s: str, clip: str, frame_index: int, caption: str, tile=(300, 300)):
    """The frame around the torso with the mask edge (cyan), the dorsal contour (red, thick),
    its chord (white) and the value."""
    _, mask_path = cache_paths(s, clip)
    z = np.load(mask_path)
    crop, kp, (ox, oy) = z[f"m{frame_index}"], z[f"k{frame_index}"], z[f"o{frame_index}"]
    m = measure_back(crop, kp, origin=(ox, oy), detail=True)
    img = frame.copy()
    L = m["torso_px"] if m else 100.0
    # Mask edge: every contour of the thresholded crop.
    cs, _ = cv2.findContours((crop > 127).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    th = max(1, int(round(L / 120)))
    cv2.drawContours(img, [c + np.array([ox, oy]) for c in cs], -1, (255, 255, 0), th)
    if m:
        cv2.polylines(img, [np.round(m["arc"]).astype(np.int32)], False, (0, 0, 255), 3 * th)
        A, B = np.array(m["chord"])
        cv2.line(img, tuple(np.round(A).astype(int)), tuple(np.round(B).astype(int)), (255, 255, 255), th)
    for j in (2, 5, 8, 11):
        if not np.any(np.isnan(kp[j, :2])):
            cv2.circle(img, tuple(np.round(kp[j, :2]).astype(int)), 2 * th + 1, (0, 255, 0), -1)
    # Crop around the torso, 1.1 torso lengths each way, fitted into the tile.
    from deadlift_utils.keypoints import hip_centre, shoulder_centre
    c = (shoulder_centre(kp[:, :2]) + hip_centre(kp[:, :2])) / 2
    half = 1.1 * L
    x0, y0 = int(max(0, c[0] - half)), int(max(0, c[1] - half))
    x1, y1 = int(min(img.shape[1], c[0] + half)), int(min(img.shape[0], c[1] + half))
    sub = img[y0:y1, x0:x1]
    scale = min(tile[0] / sub.shape[1], (tile[1] - 40) / sub.shape[0])
    sub = cv2.resize(sub, (max(1, int(sub.shape[1] * scale)), max(1, int(sub.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    out = np.zeros((tile[1], tile[0], 3), np.uint8)
    out[40:40 + sub.shape[0], :sub.shape[1]] = sub
    value = f"sagitta {m['sagitta']:+.3f}" if m else "no contour"
    for k, text in enumerate((caption, value)):
        cv2.putText(out, text, (4, 16 + 18 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def contact_sheet(data: Path, df: pd.DataFrame, seqs: dict, out_png: Path, columns: int = 6) -> Path:
    """Per clip with measured hinge frames: the hinge frame nearest the clip's median sagitta,
    and for faulty clips also the most-flexed frame."""
    from deadlift_utils.spine import sagitta_series, trunk_incline_deg
    tiles = []
    for r in df.itertuples():
        if not r.frames_used:
            continue
        seq = seqs[(r.set, r.clip)]
        sag = sagitta_series(seq)
        used = np.nonzero((trunk_incline_deg(seq.keypoints_xy) > 35) & ~np.isnan(sag))[0]
        k = int(used[np.argmin(np.abs(sag[used] - r.median_sagitta))])
        picks = [("median", k)]
        if r.label == "bad":
            picks.append(("most flexed", int(r.most_flexed_frame and np.nonzero(seq.frame_index == r.most_flexed_frame)[0][0])))
        for what, sample in picks:
            fi = int(seq.frame_index[sample])
            frame = read_frame(data / "videos" / r.set / r.clip, fi)
            if frame is None:
                continue
            name = f"{r.set[:6]}/{Path(r.clip).stem} {r.error or r.label}"
            tiles.append(draw_tile(frame, r.set, r.clip, fi, f"{name} f{fi} {what}"))
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    sheet = np.vstack([np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)])
    out_png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_png), sheet)
    return out_png


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=str(config.SHARED_DATA_DIR))
    ap.add_argument("--sets", nargs="+", default=list(SETS))
    ap.add_argument("--extract-only", action="store_true")
    ap.add_argument("--redo", action="store_true")
    ap.add_argument("--no-sheet", action="store_true")
    args = ap.parse_args()
    data = Path(args.data)
    table = clips(data, args.sets)
    for r in table.itertuples():
        t0 = time.perf_counter()
        seq = extract_one(data, r.set, r.clip, args.redo)
        print(f"{r.set}/{r.clip}: {len(seq)} frames, {time.perf_counter() - t0:.1f} s", flush=True)
    if args.extract_only:
        return
    df, seqs, ms = per_clip(data, table, keep_seqs=True)
    pd.set_option("display.width", 200)
    print(df.drop(columns=["most_flexed_frame"]).to_string())
    comp = pd.DataFrame(comparisons(df))
    print(comp.to_string())
    print(f"contour: {ms:.2f} ms per frame")
    if not args.no_sheet:
        print(contact_sheet(data, df, seqs, ROOT / "outputs/benchmarks/spine/contact_sheet.png"))


if __name__ == "__main__":
    main()
