"""The synthesis task bodies (``.fn()``) on an endpoint this test registers: requests planned as typed
batches, each gathered segment validated and cached at once, one bad segment never failing the rest."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from model_server.config import ServerConfig
from model_server.protocol import BatchRequest, DevVoiceRequest
from narrate.endpoints import JobSummary, NothingQueued, SegmentNote, Submission, register_endpoint
from narrate.errors import OutputInvalid
from narrate.script import NarrationScript
from narrate.settings import get_settings
from narrate.synthesis.cache import ClipCache
from narrate.synthesis.requests import model_identity
from tasks.script import PlannedSegment
from tasks.synthesis import gather_outputs, plan_jobs, validate_clip


def wav(samples: np.ndarray, rate: int = 22050) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


class CannedEndpoint(NothingQueued):
    """Answers every fetch with one body; remembers what it was asked to forget."""

    name = "canned"

    def __init__(self, body: bytes) -> None:
        self.body, self.forgotten = body, []

    def fetch(self, submission: Submission, deadline_seconds: float) -> bytes:
        return self.body

    def forget(self, submission: Submission) -> None:
        self.forgotten.append(submission.request_id)


def canned(body: dict[str, Any]) -> CannedEndpoint:
    endpoint = CannedEndpoint(json.dumps(body).encode())
    register_endpoint("canned", lambda settings: endpoint)
    return endpoint


SUMMARY = JobSummary(
    request_id="r1",
    voice={"mode": "dev"},
    segments=[SegmentNote(id=i, text=f"Text {i}.", cache_key=f"{n:064x}") for n, i in enumerate("abc")],
)
SUBMISSION = Submission("r1", ("a", "b", "c"), "out", "fail")


def test_each_segment_gets_its_own_outcome_and_good_clips_are_cached() -> None:
    speech = np.sin(np.arange(2205) / 5).astype(np.float32) * 0.3
    endpoint = canned({"segments": [
        {"id": "a", "audio_base64": base64.b64encode(wav(speech)).decode()},
        {"id": "b", "error": "text: produced no audio", "retryable": False},
        {"id": "c", "audio_base64": base64.b64encode(wav(np.zeros(100, np.float32))).decode()},
    ]})  # fmt: skip
    outcomes = {o.id: o for o in gather_outputs.fn("canned", SUBMISSION, SUMMARY, get_settings())}
    assert outcomes["a"].ok and outcomes["a"].clip_samples == 2205
    assert ClipCache(get_settings().cache_dir).contains(SUMMARY.cache_keys["a"])
    assert (outcomes["b"].error, outcomes["b"].retryable) == ("text: produced no audio", False)
    assert outcomes["c"].retryable and "empty or silent" in str(outcomes["c"].error)
    assert endpoint.forgotten == ["r1"]


def test_a_body_that_is_not_a_batch_response_fails_every_segment_transiently() -> None:
    canned({"unexpected": True})
    outcomes = gather_outputs.fn("canned", SUBMISSION, SUMMARY, get_settings())
    assert all(o.retryable and "not a valid batch response" in str(o.error) for o in outcomes)


def test_plan_jobs_sends_the_handlers_own_batch_requests_of_similar_length() -> None:
    narration = NarrationScript.model_validate({
        "title": "t", "voice": {"engine": "dev", "rate_wpm": 200},
        "segments": [{"id": f"s{i}", "text": "word " * (i + 1)} for i in range(5)],
    })  # fmt: skip
    identity = model_identity(narration.voice, ServerConfig(), "local")
    plan = [PlannedSegment(s.id, s.text.strip(), f"{n:064x}") for n, s in enumerate(narration.segments)]
    jobs = plan_jobs(narration, identity, plan, batch_size=2)
    assert [job.segment_ids for job in jobs] == [("s4", "s3"), ("s2", "s1"), ("s0",)]  # longest first
    request = BatchRequest.model_validate_json(jobs[1].body())  # what the handler parses
    assert request.voice == DevVoiceRequest(mode="dev", rate_wpm=200)
    assert jobs[1].for_a_render and jobs[1].summary().text_of("s1") == "word word"


def test_plan_jobs_puts_the_longest_requests_of_every_voice_first() -> None:
    """The endpoint takes requests in order: the shortest go last, so instances finish together."""
    texts = {
        "short": "Hi.",
        "other": "A rather long sentence.",
        "long": "A much longer sentence than the others.",
    }
    narration = NarrationScript.model_validate({
        "title": "t", "voice": {"engine": "dev"},
        "segments": [{"id": sid, "text": text} for sid, text in texts.items()],
    })  # fmt: skip
    identity = model_identity(narration.voice, ServerConfig(), "local")
    slower = narration.voice.model_copy(update={"rate_wpm": 120})  # a request of its own kind
    plan = [
        PlannedSegment(sid, text, f"{n:064x}", voice=slower if sid == "other" else None)
        for n, (sid, text) in enumerate(texts.items())
    ]
    jobs = plan_jobs(narration, identity, plan, batch_size=1)
    assert [job.segment_ids for job in jobs] == [("long",), ("other",), ("short",)]


def test_a_clip_that_is_not_usable_audio_is_output_invalid_which_is_transient() -> None:
    with pytest.raises(OutputInvalid, match="22050 Hz, expected 24000 Hz") as raised:
        validate_clip(wav(np.ones(10, np.float32) * 0.1), 24000)
    assert raised.value.transient
    with pytest.raises(OutputInvalid, match="not decodable audio"):
        validate_clip(b"RIFF", None)
