"""Flaky OpenAI: the real `openai` SDK against a scripted fake server on 127.0.0.1.

The server (stdlib http.server in a thread, random free port) implements
POST /v1/chat/completions, the endpoint feedback.generate_feedback calls, and answers each
request with the next step of a script: 429 (Retry-After: 1), 500, a malformed JSON body, a
reply slower than the client timeout, an HTML page, an empty answer, a 401 whose message
echoes the Authorization header (a worst case for key leaks), or a good reply. Checks:
- retries stay within the budget (the server counts the requests; the time is bounded),
- failures fall back to the offline text with source "offline", a failure kind and a note
  saying what happened and what to do; good replies are used with source "openai";
- the API key never appears in logs (DEBUG, all loggers incl. openai/httpx), stdout/stderr,
  the feedback dict, the written report JSON/HTML, the cache, or an executed notebook 05.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from deadlift_utils import feedback
from deadlift_utils.config import OPENPOSE_SEQUENCES_DIR, OUTPUTS_DIR, PROJECT_ROOT
from deadlift_utils.feedback import generate_feedback, offline_feedback, summarise_findings

KEY = "sk-test-LEAKCHECK-1234567890"
GOOD_TEXT = "FAKE-COACH: push the floor away and keep the bar against your legs."
TIMEOUT_S = 1.0
RETRIES = 2
SLOW_S = 3.0
LEAK_MARKERS = (KEY, "LEAKCHECK")
ARTIFACT = OUTPUTS_DIR / "test-artifacts" / "openai_fake.json"


class FakeOpenAI:
    """A scripted stand-in for api.openai.com/v1 (chat completions only)."""

    def __init__(self):
        self.script: list[str] = ["good"]
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep the test output clean
                pass

            def _send(self, status, body: bytes, ctype="application/json", headers=()):
                try:
                    self.send_response(status)
                    self.send_header("content-type", ctype)
                    self.send_header("content-length", str(len(body)))
                    for k, v in headers:
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with fake.lock:
                    step = fake.script.pop(0) if len(fake.script) > 1 else fake.script[0]
                    fake.requests.append({"t": time.monotonic(), "path": self.path, "step": step,
                                          "auth": self.headers.get("authorization"),
                                          "body": json.loads(body or b"{}")})
                if self.path != "/v1/chat/completions":
                    return self._send(404, b'{"error": {"message": "no such endpoint"}}')
                model = json.loads(body or b"{}").get("model", "?")
                if step == "good" or step == "empty":
                    text = GOOD_TEXT if step == "good" else ""
                    return self._send(200, json.dumps({
                        "id": "chatcmpl-fake", "object": "chat.completion", "created": 1764028800,
                        "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                                     "message": {"role": "assistant", "content": text}}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}}).encode())
                if step == "429":
                    return self._send(429, json.dumps({"error": {
                        "message": "Rate limit reached for requests", "type": "requests",
                        "code": "rate_limit_exceeded"}}).encode(), headers=[("retry-after", "1")])
                if step == "500":
                    return self._send(500, b'{"error": {"message": "The server had an error", "type": "server_error"}}')
                if step == "malformed":
                    return self._send(200, b'{"id": "chatcmpl-fake", "choices": [{"message": {"role": "assis')
                if step == "html":
                    return self._send(200, b"<html><body>Captive portal: please log in</body></html>",
                                      ctype="text/html")
                if step == "slow":
                    time.sleep(SLOW_S)
                    return self._send(200, b'{"choices": []}')
                if step == "401echo":
                    return self._send(401, json.dumps({"error": {
                        "message": f"Incorrect API key provided: {self.headers.get('authorization')}",
                        "type": "invalid_request_error", "code": "invalid_api_key"}}).encode())
                return self._send(400, b'{"error": {"message": "unknown test step"}}')

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def reset(self, script: list[str]):
        with self.lock:
            self.script = list(script)
            self.requests = []

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server():
    import openai  # noqa: F401 - import the SDK up front so scenario timings measure the calls
    s = FakeOpenAI()
    yield s
    s.close()


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_LOG", raising=False)
    return monkeypatch


@pytest.fixture
def all_logs(caplog):
    """Capture every log record at DEBUG, including the SDK's and the HTTP stack's loggers."""
    caplog.set_level(logging.DEBUG)
    for name in ("openai", "httpx", "httpx2", "httpcore", "httpcore2", "deadlift_utils"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def _report():
    ev = {"metric": "shoulder rise / hip rise", "value": 0.41, "threshold": 0.8, "units": "ratio",
          "flag_when": "below", "method": "2d_image"}
    return {"video": "clip.mp4", "view": "side", "verdict": "bad", "verdict_reason": "hips first in 2/2 reps",
            "reps": [{"index": i, "errors": [{"name": "hips_first", "description": "hips rise faster than the shoulders",
                                              "evidence": ev, "severity": 1.4}]} for i in (1, 2)],
            "deviations": [], "rules": {"not_checked": {}}}


def _assert_no_key(*texts, where=""):
    for t in texts:
        for marker in LEAK_MARKERS:
            assert marker not in t, f"API key leaked into {where}: ...{t[max(0, t.find(marker) - 80):t.find(marker) + 40]}..."


# scenario -> (server script, requests the server must see, source, failure, words the note must hold)
SCENARIOS = {
    "rate_limited_429": (["429"], RETRIES + 1, "offline", "rate_limited",
                         ["rate-limited (429) after 3 attempts", "offline coaching text used", "plan/quota"]),
    "server_error_500": (["500"], RETRIES + 1, "offline", "server_error",
                         ["server error (500) after 3 attempts", "offline coaching text used", "try again later"]),
    "malformed_json": (["malformed"], 1, "offline", "malformed_reply", ["malformed reply", "offline coaching text used"]),
    "html_instead_of_json": (["html"], 1, "offline", "malformed_reply", ["malformed reply"]),
    "slow_past_timeout": (["slow"], RETRIES + 1, "offline", "timeout",
                          ["did not answer within 1 s after 3 attempts", "offline coaching text used", "network"]),
    "empty_answer": (["empty"], 1, "offline", "empty_reply", ["empty answer"]),
    "401_echoing_the_key": (["401echo"], 1, "offline", "auth", ["refused the key (401", "OPENAI_API_KEY"]),
    "good": (["good"], 1, "openai", None, []),
    "500_then_good": (["500", "good"], 2, "openai", None, []),
    "429_then_good": (["429", "good"], 2, "openai", None, []),
    "slow_then_good": (["slow", "good"], 2, "openai", None, []),
}
RESULTS: dict[str, dict] = {}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name, server, env, all_logs, capfd, tmp_path):
    script, n_requests, source, failure, note_words = SCENARIOS[name]
    server.reset(script)
    cache = tmp_path / "feedback_cache.json"
    via_env = name == "good"  # one scenario reaches the server through OPENAI_BASE_URL only
    if via_env:
        env.setenv("OPENAI_BASE_URL", server.url)
    t0 = time.monotonic()
    out = generate_feedback(_report(), model="fake-model", cache_path=cache, timeout_s=TIMEOUT_S,
                            max_retries=RETRIES, base_url=None if via_env else server.url)
    elapsed = time.monotonic() - t0
    seen = server.requests

    # The retry budget: exactly this many requests, and no longer than attempts x timeout + backoff.
    assert len(seen) == n_requests, [r["step"] for r in seen]
    assert elapsed < (RETRIES + 1) * TIMEOUT_S + 2 * 1.0 + 2.5, elapsed
    assert all(r["path"] == "/v1/chat/completions" for r in seen)
    # The real SDK sent the key (so the leak checks below are meaningful) and the findings.
    assert all(r["auth"] == f"Bearer {KEY}" for r in seen)
    assert seen[0]["body"]["model"] == "fake-model"
    assert "hips rise faster" in seen[0]["body"]["messages"][1]["content"]

    assert out["source"] == source and out["failure"] == failure, out
    if source == "openai":
        assert out["text"] == GOOD_TEXT and out["note"] is None
        assert json.loads(cache.read_text())[out["prompt_sha256"]]["text"] == GOOD_TEXT
    else:
        assert out["text"] == offline_feedback(summarise_findings(_report()))
        for w in note_words:
            assert w in out["note"], (w, out["note"])
        assert "\n" not in out["note"]
        assert not cache.exists()  # failures are not cached
        # The user is told in the log too (one warning with the same note).
        warnings = [r for r in all_logs.records if r.name == "deadlift_utils.feedback" and r.levelno == logging.WARNING]
        assert len(warnings) == 1 and out["note"] in warnings[0].getMessage()
    if "429" in script:
        # Retry-After: 1 was honoured (the SDK's own first backoff is at most 0.5 s).
        assert seen[1]["t"] - seen[0]["t"] >= 0.9
    if "slow" in script:
        assert seen[1]["t"] - seen[0]["t"] >= TIMEOUT_S * 0.9

    captured = capfd.readouterr()
    logs = "\n".join(f"{r.name} {r.levelname} {r.getMessage()} {r.args!r}" for r in all_logs.records)
    assert logs, "the SDK's debug logging was captured"
    _assert_no_key(logs, where="logs")
    _assert_no_key(captured.out, captured.err, where="stdout/stderr")
    _assert_no_key(json.dumps(out), where="the feedback dict")
    if cache.exists():
        _assert_no_key(cache.read_text(), where="the cache")
    RESULTS[name] = {"script": script, "requests_seen": len(seen), "seconds": round(elapsed, 2),
                     "source": out["source"], "failure": out["failure"], "note": out["note"]}
    _save_results()


def _save_results():
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps({"timeout_s": TIMEOUT_S, "max_retries": RETRIES, "scenarios": RESULTS}, indent=1))


def test_key_scrubbed_even_if_the_server_echoes_it(server, env):
    """Without scrubbing, the SDK's AuthenticationError text carries the echoed key."""
    import openai

    server.reset(["401echo"])
    client = openai.OpenAI(api_key=KEY, base_url=server.url, timeout=TIMEOUT_S, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert KEY in str(e.value)  # the raw error does hold it...
    kind, note = feedback.describe_failure(e.value, client)
    assert kind == "auth" and KEY not in feedback._scrub(note)  # ...the note never does
    assert "[redacted key]" in feedback._scrub(f"x {KEY} y") and "sk-" not in feedback._scrub("Bearer sk-abcdefgh")


def test_unreachable_server_is_a_connection_failure(env, all_logs):
    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    out = generate_feedback(_report(), timeout_s=TIMEOUT_S, max_retries=RETRIES,
                            base_url=f"http://127.0.0.1:{port}/v1")
    assert time.monotonic() - t0 < 6
    assert out["source"] == "offline" and out["failure"] == "connection"
    assert "Could not connect to the OpenAI API after 3 attempts" in out["note"]
    _assert_no_key(all_logs.text, json.dumps(out), where="logs or result")
    RESULTS["connection_refused"] = {"script": ["(nothing listening)"], "requests_seen": 0,
                                     "source": out["source"], "failure": out["failure"], "note": out["note"]}
    _save_results()


def test_report_files_carry_the_fallback_and_no_key(server, env, all_logs, capfd, tmp_path):
    """The analysis path (analyze_pose -> generate_feedback with the env-configured client)
    says in the written report why the offline text was used, and the key is nowhere."""
    from deadlift_utils.analyze import analyze_pose, write_report
    from deadlift_utils.pose import load_pose_json

    env.setenv("OPENAI_BASE_URL", server.url)
    seq = load_pose_json(OPENPOSE_SEQUENCES_DIR / "C_grip_too_wide_front.json")
    out = tmp_path / "analysis"
    for script, source in ((["401echo"], "offline"), (["500", "good"], "openai")):
        server.reset(script)
        report = analyze_pose(seq, cache_path=out / "feedback_cache.json", video="clip.mp4")
        assert report["feedback"]["source"] == source and len(server.requests) == len(script)
        files = write_report(report, out, f"clip_{source}", plots=False, write_video=False)
        saved = json.loads(Path(files["report_json"]).read_text())
        assert saved["feedback"]["source"] == source
        if source == "offline":
            assert saved["feedback"]["failure"] == "auth" and "OPENAI_API_KEY" in saved["feedback"]["note"]
        for f in out.iterdir():
            _assert_no_key(f.read_text(errors="replace"), where=f.name)
    assert (out / "feedback_cache.json").exists()
    captured = capfd.readouterr()
    _assert_no_key(all_logs.text, captured.out, captured.err, where="logs/output")


@pytest.mark.slow
def test_notebook_05_with_a_key_and_a_failing_server_leaks_nothing(server, env, tmp_path):
    """Notebook 05 in smoke mode, OPENAI_API_KEY and OPENAI_BASE_URL set: the server first
    fails (500, retried), then answers 401 echoing the key. The executed notebook, the
    report and everything written must not contain the key."""
    import papermill as pm

    env.setenv("OPENAI_BASE_URL", server.url)
    server.reset(["500", "401echo"])
    out = tmp_path / "analysis"
    executed = tmp_path / "05_run.ipynb"
    pm.execute_notebook(str(PROJECT_ROOT / "notebooks" / "05_evaluate_and_feedback.ipynb"), str(executed),
                        parameters={"frame_stride": 6, "write_video": False, "out_dir": str(out)},
                        cwd=str(PROJECT_ROOT / "notebooks"), kernel_name="python3", progress_bar=False)
    # The kernel really called the fake server with the key.
    assert [r["step"] for r in server.requests] == ["500", "401echo"]
    assert all(r["auth"] == f"Bearer {KEY}" for r in server.requests)
    nb_text = executed.read_text()
    assert "Coaching (written by: offline)" in nb_text
    assert "refused the key (401" in nb_text  # the warning reached the notebook's output
    _assert_no_key(nb_text, where="the executed notebook")
    report = json.loads(next(out.glob("*_report.json")).read_text())
    assert report["feedback"]["failure"] == "auth"
    for f in out.rglob("*"):
        if f.is_file() and f.suffix in (".json", ".html", ".csv", ".txt"):
            _assert_no_key(f.read_text(errors="replace"), where=str(f))
    RESULTS["notebook_05_500_then_401echo"] = {
        "script": ["500", "401echo"], "requests_seen": len(server.requests), "source": report["feedback"]["source"],
        "failure": report["feedback"]["failure"], "note": report["feedback"]["note"]}
    _save_results()


def test_control_leak_check_catches_an_unscrubbed_error(server, env, all_logs, monkeypatch):
    """Control: if the raw SDK error text went into the note (no scrubbing), the same checks
    would find the key - so their passing above means something."""
    server.reset(["401echo"])
    monkeypatch.setattr(feedback, "_scrub", lambda text: text)
    monkeypatch.setattr(feedback, "describe_failure", lambda e, client=None, model=None: ("auth", str(e)))
    out = generate_feedback(_report(), timeout_s=TIMEOUT_S, max_retries=0, base_url=server.url)
    assert out["source"] == "offline"
    with pytest.raises(AssertionError, match="API key leaked"):
        _assert_no_key(json.dumps(out), where="the feedback dict")
    with pytest.raises(AssertionError, match="API key leaked"):
        _assert_no_key(all_logs.text, where="logs")
