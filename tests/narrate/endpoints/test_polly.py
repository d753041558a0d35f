"""The Polly endpoint at the AWS boundary (botocore's Stubber): answers in the handler's batch format,
a segment's refusal or throttle its own entry, emulated audio never passing for real Polly's."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from model_server.protocol import SegmentRequest
from narrate.endpoints import SynthesisJob
from narrate.endpoints.polly import PollyEndpoint
from narrate.synthesis.polly_speech import (
    PollyBatchRequest,
    PollyVoiceRequest,
)
from narrate.synthesis.responses import parse_batch_output
from tasks.synthesis import EXPECTED_RATES, validate_clip
from tests.narrate.polly_stub import client_error, pcm_response


def job(*texts: str, emulated: bool = False) -> SynthesisJob:
    voice = PollyVoiceRequest(voice_id="Matthew", engine="neural", emulated=emulated)
    segments = [SegmentRequest(id=f"s{i}", text=t) for i, t in enumerate(texts)]
    request = PollyBatchRequest(voice=voice, segments=segments)
    return SynthesisJob("r1", request, {s.id: "0" * 64 for s in segments})


def run_endpoint(endpoint: PollyEndpoint, synthesis: SynthesisJob) -> dict[str, Any]:
    submission = endpoint.submit(synthesis, endpoint.stage(synthesis))
    return parse_batch_output(endpoint.fetch(submission, 1.0), synthesis.segment_ids)


def test_the_endpoint_answers_in_the_handlers_batch_format(polly: Any) -> None:
    endpoint = PollyEndpoint(polly)
    endpoint.wake(0)
    with Stubber(polly) as stub:
        stub.add_response("synthesize_speech", pcm_response([100, -100, 2000]))
        client_error(stub, "ThrottlingException", 400, "Rate exceeded")
        outputs = run_endpoint(endpoint, job("Hello.", "Goodbye."))
    assert len(validate_clip(outputs["s0"].wav_bytes, EXPECTED_RATES["polly"])[0]) == 3  # type: ignore[arg-type]
    assert outputs["s1"].retryable and "ThrottlingException" in str(outputs["s1"].error)
    with Stubber(polly) as stub:  # the flow's next round: the throttled segment goes through
        stub.add_response("synthesize_speech", pcm_response([7, 8]))
        again = run_endpoint(endpoint, job("Goodbye."))
    assert len(validate_clip(again["s0"].wav_bytes, 16000)[0]) == 2  # type: ignore[arg-type]
    usage = endpoint.scale_down()
    assert (usage.gpu_seconds, usage.released) == (0.0, True)


def test_an_unknown_voice_is_a_final_error_of_its_segment(polly: Any) -> None:
    with Stubber(polly) as stub:
        client_error(
            stub, "ValidationException", 400, "Value 'Nobody' at 'voiceId' failed to satisfy constraint"
        )
        outputs = run_endpoint(PollyEndpoint(polly), job("Hello."))
    assert not outputs["s0"].retryable and "voice.voice_id" in str(outputs["s0"].error)


@pytest.mark.parametrize(("answer_emulated", "render_emulated"), [(True, False), (False, True)])
def test_emulated_audio_never_passes_for_real_polly_or_back(
    polly: Any, answer_emulated: bool, render_emulated: bool
) -> None:
    with Stubber(polly) as stub:
        stub.add_response("synthesize_speech", pcm_response([1], emulated=answer_emulated))
        outputs = run_endpoint(PollyEndpoint(polly), job("Hello.", emulated=render_emulated))
    assert outputs["s0"].wav_bytes is None and not outputs["s0"].retryable
    assert "NARRATE_AWS" in str(outputs["s0"].error)
