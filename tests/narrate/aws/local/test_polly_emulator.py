"""Local mode's Polly: narrate's real Polly code path against the embedded AWS, answered by the dev
voice, refusing what Polly refuses, and always marked emulated."""

from __future__ import annotations

from typing import Any

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError

from narrate.errors import SegmentRejected
from narrate.synthesis.polly_speech import EMULATED_HEADER, PollyRequest, synthesize

pytestmark = pytest.mark.usefixtures("embedded_aws")


@pytest.fixture
def polly() -> Any:
    return boto3.client("polly", region_name="us-east-1")


def test_speech_is_the_dev_voice_at_the_asked_rate_and_marked_emulated(polly: Any) -> None:
    text = "Welcome to the dashboard. Drag revenue onto the canvas."
    matthew = PollyRequest("Matthew")
    audio = {rate: synthesize(polly, matthew, text, sample_rate=rate) for rate in (8000, 16000)}
    assert all(a.emulated and a.sample_rate == rate for rate, a in audio.items())
    assert abs(len(audio[16000].pcm) - 2 * len(audio[8000].pcm)) <= 2  # the same speech, two rates
    assert np.sqrt(np.mean(audio[16000].samples ** 2)) > 0.01  # speech, not moto's eight zero bytes
    again = synthesize(polly, PollyRequest("Matthew"), text)
    assert np.array_equal(again.pcm, audio[16000].pcm)  # deterministic, like the dev voice
    raw = polly.synthesize_speech(Text="Hi.", VoiceId="Joanna", OutputFormat="pcm", SampleRate="16000")
    assert raw["ResponseMetadata"]["HTTPHeaders"][EMULATED_HEADER] == "dev-voice"


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (PollyRequest("Nobody"), "voice.voice_id"),
        (PollyRequest("Joanna", engine="long-form"), "voice.polly_engine"),
        (PollyRequest("Matthew", language_code="xx-XX"), "voice.language_code"),
        (PollyRequest("Matthew", text_type="ssml"), "voice.text_type: text"),
    ],
)
def test_what_polly_refuses_is_refused_and_named(polly: Any, request_: PollyRequest, field: str) -> None:
    text = "<emphasis>Unclosed." if request_.text_type == "ssml" else "Hello."
    with pytest.raises(SegmentRejected, match=field):
        synthesize(polly, request_, text)


def test_pcm_rates_other_than_8000_and_16000_are_refused(polly: Any) -> None:
    with pytest.raises(ClientError, match="InvalidSampleRateException"):
        polly.synthesize_speech(Text="Hi.", VoiceId="Matthew", OutputFormat="pcm", SampleRate="22050")
    with pytest.raises(ClientError, match="TextLengthExceededException"):
        polly.synthesize_speech(Text="a" * 3001, VoiceId="Matthew", OutputFormat="pcm")
