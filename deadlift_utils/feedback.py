"""Coaching text from the analysis findings: OpenAI when available, a deterministic fallback.

- The prompt is built from the findings (verdict, per-rep named errors with their evidence,
  joint deviations in words), never from raw coordinates.
- OpenAI through the official `openai` SDK (chat completions): the model is a parameter, the
  key comes from the OPENAI_API_KEY environment variable only, with a timeout and retries
  (the SDK retries 429, 5xx, timeouts and connection errors with backoff, honouring
  Retry-After). `base_url` (or OPENAI_BASE_URL) points it at a proxy or a test server.
- The answer is cached in a JSON file keyed by the SHA-256 of (model, prompt), so a rerun on
  the same findings does not pay twice.
- With no key, or on any API failure, `offline_feedback` writes the text from the same
  findings, biggest problem first. The result always says which source wrote it, and on a
  fallback `failure` names the cause (rate_limited, server_error, timeout, malformed_reply,
  ...) and `note` says what happened and what to do, in one line. The key never appears in
  a note, a log line or the cache (server error messages are scrubbed of it).
- Tests pass a fake `client` (anything with `.chat.completions.create(...)`).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path

from .io_utils import atomic_write_text

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RETRIES = 2
CACHE_FILE_NAME = "feedback_cache.json"

log = logging.getLogger(__name__)

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


def make_openai_client(timeout_s: float = DEFAULT_TIMEOUT_S, max_retries: int = DEFAULT_RETRIES,
                       base_url: str | None = None):
    """An `openai.OpenAI` client with the key from OPENAI_API_KEY, or None when no key is set.

    base_url: the API root (default: OPENAI_BASE_URL, else the SDK's https://api.openai.com/v1).
    timeout_s applies to each attempt; max_retries extra attempts follow a 429, a 5xx, a
    timeout or a lost connection.
    """
    key = os.environ.get("OPENAI_API_KEY", "").strip()
    if not key:
        return None
    from openai import OpenAI

    base_url = base_url or os.environ.get("OPENAI_BASE_URL", "").strip() or None
    return OpenAI(api_key=key, base_url=base_url, timeout=timeout_s, max_retries=max_retries)


_KEY_LIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+\S+)")


def _scrub(text: str) -> str:
    """Remove anything key-like (the configured key, sk-..., Bearer ...) from a message."""
    key = os.environ.get("OPENAI_API_KEY", "").strip()
    if key and len(key) >= 6:
        text = text.replace(key, "[redacted key]")
    return _KEY_LIKE.sub("[redacted key]", text)


def describe_failure(e: BaseException, client=None, model: str = DEFAULT_MODEL) -> tuple[str, str]:
    """(failure kind, one-line note saying what happened and what to do) for an API error."""
    attempts = getattr(client, "max_retries", None)
    tries = f" after {attempts + 1} attempt{'s' if attempts else ''}" if isinstance(attempts, int) else ""
    timeout = getattr(client, "timeout", None)
    try:
        timeout = float(timeout)
    except (TypeError, ValueError):
        timeout = None
    status = getattr(e, "status_code", None)
    detail = _scrub(str(e))[:160]
    used = "; offline coaching text used."
    kind_name = type(e).__name__
    try:
        import openai
    except ImportError:  # pragma: no cover - openai is a project dependency
        openai = None

    if openai is not None and isinstance(e, openai.APITimeoutError):
        within = f" within {timeout:g} s" if timeout else ""
        return "timeout", (f"OpenAI API did not answer{within}{tries} ({kind_name}){used} "
                           f"Check your network, or allow a longer timeout.")
    if openai is not None and isinstance(e, openai.APIConnectionError):
        return "connection", (f"Could not connect to the OpenAI API{tries} ({kind_name}){used} "
                              f"Check your network and OPENAI_BASE_URL if you set it.")
    if openai is not None and isinstance(e, openai.APIStatusError):
        if status == 429:
            return "rate_limited", (f"OpenAI API rate-limited (429){tries} ({kind_name}: {detail}){used} "
                                    f"Check your plan/quota or try later.")
        if status in (401, 403):
            return "auth", (f"OpenAI API refused the key ({status}, {kind_name}){used} "
                            f"Check OPENAI_API_KEY (and that the key's project may use this model).")
        if status == 404:
            return "not_found", (f"OpenAI API has no model {model!r} or endpoint here (404, {kind_name}){used} "
                                 f"Check openai_model and OPENAI_BASE_URL.")
        if status is not None and status >= 500:
            return "server_error", (f"OpenAI API server error ({status}){tries} ({kind_name}: {detail}){used} "
                                    f"The service is having problems; try again later.")
        return "api_error", f"OpenAI API error ({status}, {kind_name}: {detail}){used}"
    if isinstance(e, _EmptyAnswer):
        return "empty_reply", f"OpenAI API returned an empty answer{used} Try again, or another model."
    if (isinstance(e, (json.JSONDecodeError, AttributeError, IndexError, KeyError, TypeError))
            or (openai is not None and isinstance(e, openai.APIResponseValidationError))):
        return "malformed_reply", (f"OpenAI API sent a malformed reply ({kind_name}: {detail}){used} "
                                   f"If OPENAI_BASE_URL points at a proxy, check it; else try again later.")
    return "error", f"OpenAI call failed ({kind_name}: {detail}){used}"


class _EmptyAnswer(ValueError):
    pass


def generate_feedback(report: dict, model: str = DEFAULT_MODEL, client=None,
                      cache_path: str | os.PathLike | None = None, use_openai: bool = True,
                      timeout_s: float = DEFAULT_TIMEOUT_S, max_retries: int = DEFAULT_RETRIES,
                      base_url: str | None = None) -> dict:
    """Coaching for an analysis report.

    client: an OpenAI-like object with `.chat.completions.create` (default: a real client when
    OPENAI_API_KEY is set, talking to base_url / OPENAI_BASE_URL). cache_path: JSON file of
    earlier answers keyed by input hash.
    Returns {"source": "openai"|"offline", "text", "model", "cached", "prompt_sha256",
    "note", "failure"} - on a fallback, failure names the cause (no_key, disabled,
    rate_limited, server_error, timeout, connection, malformed_reply, empty_reply, auth,
    not_found, api_error, error) and note says what happened and what to do.
    """
    findings = summarise_findings(report)
    prompt = build_prompt(findings)
    key = _cache_key(model, prompt)
    out = {"source": "offline", "text": "", "model": None, "cached": False, "prompt_sha256": key,
           "note": None, "failure": None}
    cache_path = Path(cache_path) if cache_path else None
    if use_openai:
        cache = _load_cache(cache_path) if cache_path else {}
        if key in cache and isinstance(cache[key], dict) and cache[key].get("text"):
            out.update(source="openai", text=cache[key]["text"], model=cache[key].get("model", model), cached=True)
            return out
        if client is None:
            client = make_openai_client(timeout_s, max_retries, base_url)
        if client is None:
            out.update(note="OPENAI_API_KEY is not set; offline coaching text", failure="no_key")
        else:
            try:
                resp = client.chat.completions.create(
                    model=model, temperature=0.3, max_tokens=350,
                    messages=[{"role": "system", "content": SYSTEM_PROMPT},
                              {"role": "user", "content": prompt}],
                )
                text = resp.choices[0].message.content
                if text is not None and not isinstance(text, str):
                    raise TypeError(f"the answer text is a {type(text).__name__}, not a string")
                text = (text or "").strip()
                if not text:
                    raise _EmptyAnswer("the model returned an empty answer")
            except Exception as e:  # any API failure falls back to offline text, and says why
                failure, note = describe_failure(e, client, model)
                out.update(note=_scrub(note), failure=failure)
                log.warning("coaching text: %s", out["note"])
            else:
                out.update(source="openai", text=text, model=model)
                if cache_path:
                    cache = _load_cache(cache_path)
                    cache[key] = {"model": model, "text": text}
                    atomic_write_text(cache_path, json.dumps(cache, indent=1))
                return out
    else:
        out.update(note="OpenAI disabled by the caller; offline coaching text", failure="disabled")
    out["text"] = offline_feedback(findings)
    return out
