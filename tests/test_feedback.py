"""Coaching feedback: fake OpenAI client, cache by input hash, offline fallback. No network."""
from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest

from deadlift_utils import feedback
from deadlift_utils.feedback import build_prompt, generate_feedback, offline_feedback, summarise_findings


def _report(verdict="bad"):
    ev_hf = {"metric": "shoulder rise / hip rise", "value": 0.41, "threshold": 0.8, "units": "ratio",
             "flag_when": "below", "method": "2d_image"}
    ev_lb = {"metric": "lean", "value": 16.0, "threshold": 15.0, "units": "deg", "flag_when": "above",
             "method": "2d_image"}
    return {
        "video": "clip.mp4", "view": "side", "verdict": verdict, "verdict_reason": "hips first in 3/3 reps",
        "reps": [
            {"index": 1, "errors": [{"name": "hips_first", "description": "hips rise faster than the shoulders",
                                     "evidence": ev_hf, "severity": 1.5}]},
            {"index": 2, "errors": [{"name": "hips_first", "description": "hips rise faster than the shoulders",
                                     "evidence": ev_hf, "severity": 1.4},
                                    {"name": "leaning_back", "description": "leaning back at the lockout",
                                     "evidence": ev_lb, "severity": 0.75}]},
            {"index": 3, "errors": [{"name": "hips_first", "description": "hips rise faster than the shoulders",
                                     "evidence": ev_hf, "severity": 1.3}]},
        ],
        "deviations": [{"joint": "r_hip", "dx": 0.1, "dy": -0.2, "units": "torso", "magnitude": 0.22,
                        "direction": "too high (0.20 torso lengths)"}],
        "rules": {"not_checked": {"grip_too_wide": "not measurable in the side view"}},
    }


class FakeCompletions:
    def __init__(self, text="Drive with the legs.", fail=None):
        self.calls = []
        self.text, self.fail = text, fail

    def create(self, **kwargs):
        self.calls.append(kwargs)
        if self.fail:
            raise self.fail
        return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=self.text))])


class FakeClient:
    def __init__(self, **kw):
        self.chat = SimpleNamespace(completions=FakeCompletions(**kw))


def test_findings_sorted_by_severity_and_counted_per_rep():
    f = summarise_findings(_report())
    assert [e["name"] for e in f["errors"]] == ["hips_first", "leaning_back"]
    assert f["errors"][0]["reps"] == [1, 2, 3]
    assert f["errors"][1]["reps"] == [2]
    assert f["not_checked"] == ["grip_too_wide"]


def test_prompt_is_built_from_findings_not_coordinates():
    prompt = build_prompt(summarise_findings(_report()))
    assert "hips rise faster" in prompt and "0.41" in prompt
    assert "keypoints" not in prompt and "world" not in prompt
    # No long runs of numbers (a coordinate dump would have them).
    assert not re.search(r"(\d+\.\d+,\s*){6}", prompt)


def test_openai_client_called_with_model_and_cached(tmp_path):
    client = FakeClient(text="Keep the chest up and push the floor away.")
    cache = tmp_path / "cache.json"
    out = generate_feedback(_report(), model="my-model", client=client, cache_path=cache)
    assert out["source"] == "openai" and out["text"].startswith("Keep the chest")
    call = client.chat.completions.calls[0]
    assert call["model"] == "my-model"
    assert call["messages"][0]["role"] == "system"
    assert "hips rise faster" in call["messages"][1]["content"]
    assert out["prompt_sha256"] in json.loads(cache.read_text())
    # A rerun on the same findings is served from the cache: no second call.
    again = generate_feedback(_report(), model="my-model", client=client, cache_path=cache)
    assert again["cached"] is True and again["text"] == out["text"]
    assert len(client.chat.completions.calls) == 1
    # Different findings -> a different hash -> a new call.
    generate_feedback(_report(verdict="good"), model="my-model", client=client, cache_path=cache)
    assert len(client.chat.completions.calls) == 2


def test_api_failure_falls_back_to_offline_and_says_why(tmp_path):
    client = FakeClient(fail=TimeoutError("read timed out"))
    out = generate_feedback(_report(), client=client, cache_path=tmp_path / "c.json")
    assert out["source"] == "offline"
    assert "TimeoutError" in out["note"]
    assert out["text"] == offline_feedback(summarise_findings(_report()))
    assert not (tmp_path / "c.json").exists()  # failures are not cached


def test_empty_answer_is_a_failure(tmp_path):
    out = generate_feedback(_report(), client=FakeClient(text="  "), cache_path=tmp_path / "c.json")
    assert out["source"] == "offline" and "empty" in out["note"]


def test_no_key_means_offline_without_network(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert feedback.make_openai_client() is None
    out = generate_feedback(_report())
    assert out["source"] == "offline" and "OPENAI_API_KEY" in out["note"]


def test_key_comes_from_environment_only(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    client = feedback.make_openai_client(timeout_s=7, max_retries=3)
    assert client is not None
    assert client.api_key == "sk-test-not-real"
    assert client.max_retries == 3
    assert float(client.timeout) == 7


def test_offline_text_puts_biggest_problem_first():
    text = offline_feedback(summarise_findings(_report()))
    assert text.index("Hips rise faster") < text.index("Leaning back")
    assert "every rep" in text  # hips_first is in all 3 reps
    assert "rep 2" in text
    assert "r_hip" in text  # deviations in words


def test_offline_text_for_unknown_and_clean_sets():
    unknown = offline_feedback({"verdict": "unknown", "verdict_reason": "no person was found in the video"})
    assert "could not be judged" in unknown and "no person" in unknown
    clean = offline_feedback({"verdict": "good", "rep_count": 4, "errors": [], "deviations": []})
    assert "4 reps analysed and no named error" in clean


def test_corrupt_cache_is_ignored_not_fatal(tmp_path, capsys):
    cache = tmp_path / "c.json"
    cache.write_text("{not json")
    out = generate_feedback(_report(), client=FakeClient(text="ok"), cache_path=cache)
    assert out["source"] == "openai"
    assert "ignoring unreadable feedback cache" in capsys.readouterr().out
    assert json.loads(cache.read_text())  # rewritten valid


@pytest.mark.parametrize("use_openai", [False])
def test_openai_can_be_disabled(use_openai):
    client = FakeClient()
    out = generate_feedback(_report(), client=client, use_openai=use_openai)
    assert out["source"] == "offline" and client.chat.completions.calls == []
