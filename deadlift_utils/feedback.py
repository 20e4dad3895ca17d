"""Coaching text from the analysis findings: OpenAI when available, a deterministic fallback.

- The prompt is built from the findings (verdict, per-rep named errors with their evidence,
  joint deviations in words), never from raw coordinates.
- OpenAI through the official `openai` SDK (chat completions): the model is a parameter, the
  key comes from the OPENAI_API_KEY environment variable only, with a timeout and retries.
- The answer is cached in a JSON file keyed by the SHA-256 of (model, prompt), so a rerun on
  the same findings does not pay twice.
- With no key, or on any API failure, `offline_feedback` writes the text from the same
  findings, biggest problem first. The result always says which source wrote it.
- Tests pass a fake `client` (anything with `.chat.completions.create(...)`).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .io_utils import atomic_write_text

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RETRIES = 2
CACHE_FILE_NAME = "feedback_cache.json"

SYSTEM_PROMPT = (
    "You are an experienced strength coach. You get the automatic analysis of one set of "
    "deadlifts filmed on a phone. Write short, plain coaching for the lifter: start with the "
    "biggest problem (the findings are sorted by severity), say in which reps it happened and "
    "give one or two concrete cues for it, then the next problem. If the verdict is 'unknown', "
    "explain why the video could not be judged and how to film it instead. Do not invent "
    "problems that are not in the findings; say what went well when there are no errors. "
    "At most 150 words, no headings."
)


# ----------------------------------------------------------------------------- findings

def summarise_findings(report: dict, max_deviations: int = 4) -> dict:
    """The part of an analysis report the coaching is written from (no coordinates).

    Returns {"verdict", "verdict_reason", "view", "rep_count", "errors": [{"name",
    "description", "reps", "advice", "severity", "example_evidence"}] sorted by severity
    (largest first), "deviations": [short strings], "not_checked": [rule names]}.
    """
    from .rules import RULES_BY_NAME

    by_name: dict[str, dict] = {}
    for rep in report.get("reps", []):
        for e in rep.get("errors", []):
            d = by_name.setdefault(e["name"], {
                "name": e["name"], "description": e.get("description", e["name"]),
                "reps": [], "severity": 0.0, "example_evidence": e.get("evidence"),
                "advice": getattr(RULES_BY_NAME.get(e["name"]), "advice", ""),
            })
            d["reps"].append(rep["index"])
            sev = float(e.get("severity", 1.0))
            if sev > d["severity"]:
                d["severity"], d["example_evidence"] = sev, e.get("evidence")
    n_reps = len(report.get("reps", []))
    for d in by_name.values():
        # A problem in every rep outranks a one-off of the same size.
        d["severity"] = round(d["severity"] * (0.5 + 0.5 * len(d["reps"]) / max(n_reps, 1)), 3)
    errors = sorted(by_name.values(), key=lambda d: (-d["severity"], d["name"]))
    devs = []
    for d in sorted(report.get("deviations") or [], key=lambda d: -(d.get("magnitude") or 0))[:max_deviations]:
        if d.get("direction"):
            devs.append(f"{d['joint']}: {d['direction']}")
    return {
        "verdict": report.get("verdict"), "verdict_reason": report.get("verdict_reason"),
        "view": report.get("view"), "rep_count": n_reps, "errors": errors, "deviations": devs,
        "not_checked": sorted((report.get("rules") or {}).get("not_checked", {}).keys()),
    }


def build_prompt(findings: dict) -> str:
    """The user message: the findings as compact JSON under a one-line instruction."""
    slim = {
        "verdict": findings.get("verdict"), "why": findings.get("verdict_reason"),
        "camera_view": findings.get("view"), "reps": findings.get("rep_count"),
        "errors_by_severity": [
            {"error": e["description"], "reps": e["reps"], "evidence": e.get("example_evidence")}
            for e in findings.get("errors", [])
        ],
        "joint_deviations_from_good_form": findings.get("deviations", []),
        "not_checkable_from_this_view": findings.get("not_checked", []),
    }
    return ("Analysis of the lifter's set (JSON):\n" + json.dumps(slim, indent=1, sort_keys=True)
            + "\nWrite the coaching now.")


def offline_feedback(findings: dict) -> str:
    """Deterministic coaching text from the findings, largest problems first."""
    verdict = findings.get("verdict")
    n = findings.get("rep_count") or 0
    lines = []
    if verdict == "unknown":
        lines.append(f"This video could not be judged: {findings.get('verdict_reason') or 'the lift was not visible'}.")
        lines.append("Film the whole body (head to feet) from the side at hip height, in good light, "
                     "with only the lifter in view, and record the full set.")
        return " ".join(lines)
    errors = findings.get("errors", [])
    if not errors:
        lines.append(f"{n} rep{'s' if n != 1 else ''} analysed and no named error was found"
                     f"{' in the checks this camera view allows' if findings.get('not_checked') else ''}. "
                     "Keep the same setup: flat back, weight close, stand tall at the top.")
    else:
        lines.append(f"{n} rep{'s' if n != 1 else ''} analysed. Biggest problem first:")
        for k, e in enumerate(errors, 1):
            reps = e["reps"]
            where = ("every rep" if n and len(reps) == n else
                     f"rep{'s' if len(reps) > 1 else ''} {', '.join(map(str, reps))}")
            ev = e.get("example_evidence") or {}
            measured = ""
            if ev.get("value") is not None:
                measured = (f" (measured {ev['value']:g} {ev.get('units', '')} vs limit "
                            f"{ev.get('threshold'):g}: {ev.get('metric', '')})")
            lines.append(f"{k}. {e['description'].capitalize()} in {where}{measured}. {e.get('advice', '')}".strip())
    devs = findings.get("deviations") or []
    if devs:
        lines.append("Joints furthest from good form: " + "; ".join(devs) + ".")
    if findings.get("not_checked"):
        lines.append("Not checkable from this camera view: " + ", ".join(findings["not_checked"]).replace("_", " ") + ".")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- OpenAI

def _cache_key(model: str, prompt: str) -> str:
    return hashlib.sha256(json.dumps({"model": model, "system": SYSTEM_PROMPT, "prompt": prompt},
                                     sort_keys=True).encode("utf-8")).hexdigest()


def _load_cache(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        # A broken cache only costs a new API call; say so rather than fail the analysis.
        print(f"note: ignoring unreadable feedback cache {path}: {e}")
        return {}
    return data if isinstance(data, dict) else {}


def make_openai_client(timeout_s: float = DEFAULT_TIMEOUT_S, max_retries: int = DEFAULT_RETRIES):
    """An `openai.OpenAI` client with the key from OPENAI_API_KEY, or None when no key is set."""
    key = os.environ.get("OPENAI_API_KEY", "").strip()
    if not key:
        return None
    from openai import OpenAI

    return OpenAI(api_key=key, timeout=timeout_s, max_retries=max_retries)


def generate_feedback(report: dict, model: str = DEFAULT_MODEL, client=None,
                      cache_path: str | os.PathLike | None = None, use_openai: bool = True,
                      timeout_s: float = DEFAULT_TIMEOUT_S, max_retries: int = DEFAULT_RETRIES) -> dict:
    """Coaching for an analysis report.

    client: an OpenAI-like object with `.chat.completions.create` (default: a real client when
    OPENAI_API_KEY is set). cache_path: JSON file of earlier answers keyed by input hash.
    Returns {"source": "openai"|"offline", "text", "model", "cached", "prompt_sha256",
    "note"} - note says why the offline text was used, when it was.
    """
    findings = summarise_findings(report)
    prompt = build_prompt(findings)
    key = _cache_key(model, prompt)
    out = {"source": "offline", "text": "", "model": None, "cached": False, "prompt_sha256": key, "note": None}
    cache_path = Path(cache_path) if cache_path else None
    if use_openai:
        cache = _load_cache(cache_path) if cache_path else {}
        if key in cache and isinstance(cache[key], dict) and cache[key].get("text"):
            out.update(source="openai", text=cache[key]["text"], model=cache[key].get("model", model), cached=True)
            return out
        if client is None:
            client = make_openai_client(timeout_s, max_retries)
        if client is None:
            out["note"] = "OPENAI_API_KEY is not set; offline coaching text"
        else:
            try:
                resp = client.chat.completions.create(
                    model=model, temperature=0.3, max_tokens=350,
                    messages=[{"role": "system", "content": SYSTEM_PROMPT},
                              {"role": "user", "content": prompt}],
                )
                text = (resp.choices[0].message.content or "").strip()
                if not text:
                    raise ValueError("the model returned an empty answer")
            except Exception as e:  # any API failure falls back to offline text, and says why
                out["note"] = f"OpenAI call failed ({type(e).__name__}: {str(e)[:200]}); offline coaching text"
            else:
                out.update(source="openai", text=text, model=model)
                if cache_path:
                    cache = _load_cache(cache_path)
                    cache[key] = {"model": model, "text": text}
                    atomic_write_text(cache_path, json.dumps(cache, indent=1))
                return out
    else:
        out["note"] = "OpenAI disabled by the caller; offline coaching text"
    out["text"] = offline_feedback(findings)
    return out
