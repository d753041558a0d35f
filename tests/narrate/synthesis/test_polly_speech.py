"""Amazon Polly at the AWS boundary (botocore's Stubber): request shape, splitting under the request
limits, exact PCM decoding, and what each refusal or throttle becomes."""

from __future__ import annotations

import json
import re
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pytest
from botocore.stub import Stubber

from model_server.config import ServerConfig
from narrate.errors import SegmentRejected, TransientSynthesisError
from narrate.script import PollyVoice
from narrate.settings import get_settings
from narrate.synthesis.polly_speech import (
    MAX_BILLED_CHARS,
    PollyRequest,
    billed_chars,
    decode_pcm,
    plain_text,
    split_for_polly,
    synthesize,
)
from tests.narrate.polly_stub import client_error, pcm_response


def expected(text: str, **overrides: Any) -> dict[str, Any]:
    params = {"Engine": "neural", "VoiceId": "Matthew", "OutputFormat": "pcm", "SampleRate": "16000",
              "TextType": "text", "Text": text}  # fmt: skip
    return params | overrides


def test_the_request_asks_for_raw_pcm_with_the_voice_engine_and_language(polly: Any) -> None:
    request = PollyRequest("Lea", engine="generative", language_code="fr-FR")
    with Stubber(polly) as stub:
        stub.add_response(
            "synthesize_speech",
            pcm_response([1, 2]),
            expected("Bonjour.", Engine="generative", VoiceId="Lea", LanguageCode="fr-FR"),
        )
        audio = synthesize(polly, request, "Bonjour.")
        stub.assert_no_pending_responses()
    assert (audio.sample_rate, audio.requests, audio.emulated) == (16000, 1, False)


def test_ssml_goes_as_one_speak_document(polly: Any) -> None:
    with Stubber(polly) as stub:
        stub.add_response(
            "synthesize_speech",
            pcm_response([5]),
            expected('<speak>Hi <break time="300ms"/> there.</speak>', TextType="ssml"),
        )
        synthesize(polly, PollyRequest("Matthew", text_type="ssml"), 'Hi <break time="300ms"/> there.')


def test_pcm_decodes_exactly_and_parts_join_in_order(polly: Any) -> None:
    first, second = [0, 1, -1, 32767], [-32768, 12345]
    sentence = "This sentence is about forty characters. "
    text = sentence * 90  # 3690 characters: two requests
    with Stubber(polly) as stub:
        stub.add_response("synthesize_speech", pcm_response(first))
        stub.add_response("synthesize_speech", pcm_response(second))
        audio = synthesize(polly, PollyRequest("Matthew"), text)
    assert audio.requests == 2
    assert audio.pcm.dtype == np.int16 and audio.pcm.tolist() == first + second
    assert audio.samples.dtype == np.float32
    assert audio.samples.tolist() == [0.0, 1 / 32768, -1 / 32768, 32767 / 32768, -1.0, 12345 / 32768]


def test_a_cut_off_pcm_stream_is_transient() -> None:
    with pytest.raises(TransientSynthesisError, match="not whole 16-bit samples"):
        decode_pcm(b"\x01\x00\x02")
    assert decode_pcm(b"\x00\x80\xff\x7f").tolist() == [-32768, 32767]  # little-endian


def test_a_7000_character_text_is_split_at_sentence_ends_under_the_limit() -> None:
    sentences = [
        f"Scene {i} shows the dashboard filling up with the numbers of quarter {i}." for i in range(100)
    ]
    text = " ".join(sentences)
    assert len(text) > 7000
    parts = split_for_polly(text)
    assert len(parts) == 3
    assert all(len(p) <= MAX_BILLED_CHARS for p in parts)
    assert all(p.endswith(".") for p in parts)  # cut at sentence ends only
    assert " ".join(parts) == text


def test_a_monster_sentence_is_cut_at_clauses_then_words_then_characters() -> None:
    clauses = ", ".join(f"then clause {i} with several plain words" for i in range(200))  # no sentence end
    parts = split_for_polly(clauses, max_billed=500)
    assert all(len(p) <= 500 for p in parts) and " ".join(parts) == clauses
    assert all(p.endswith("words,") for p in parts[:-1])
    words = " ".join(["word"] * 300)  # no punctuation at all
    parts = split_for_polly(words, max_billed=100)
    assert all(len(p) <= 100 for p in parts) and " ".join(parts) == words
    giant = "x" * 250
    assert split_for_polly(giant, max_billed=100) == ["x" * 100, "x" * 100, "x" * 50]


def test_closing_quotes_stay_with_their_sentence_and_cjk_needs_no_space() -> None:
    text = " ".join(['He said "go on." Then (he left.)'] * 40)
    parts = split_for_polly(text, max_billed=100)
    assert " ".join(parts) == text and all(p.endswith(('."', ".)")) for p in parts)
    japanese = "終わり。次の文。" * 30
    parts = split_for_polly(japanese, max_billed=50)
    assert "".join(parts) == japanese and all(len(p) <= 50 and p.endswith("。") for p in parts)


def test_ssml_is_split_outside_elements_and_tags_are_not_billed() -> None:
    sentence = '<prosody rate="slow">Slow. Words.</prosody> Plain sentence here. '
    text = sentence * 60
    parts = split_for_polly(text, "ssml", max_billed=600, max_total=1200)
    assert len(parts) > 1
    for part in parts:
        ElementTree.fromstring(part)  # each part is a well-formed <speak> document
        assert billed_chars(part, "ssml") <= 600 and len(part) <= 1200
        assert part.startswith("<speak>") and part.endswith("</speak>")
    inner = " ".join(p.removeprefix("<speak>").removesuffix("</speak>") for p in parts)
    assert inner == " ".join(text.split())
    assert billed_chars("<speak>Hi <break/> you.</speak>", "ssml") == 8
    assert plain_text("<speak>Fish &amp; <emphasis>chips</emphasis>.</speak>", "ssml") == "Fish & chips ."


def test_an_ssml_passage_without_an_outside_sentence_end_is_refused_when_too_long() -> None:
    text = "<prosody rate='slow'>" + "One. Two. " * 100 + "</prosody>"
    with pytest.raises(SegmentRejected, match="no sentence end outside an element"):
        split_for_polly(text, "ssml", max_billed=300)


@pytest.mark.parametrize(
    ("code", "status", "message", "field"),
    [
        ("ValidationException", 400, "Value 'Nobody' at 'voiceId' failed to satisfy constraint",
         "voice.voice_id"),
        ("EngineNotSupportedException", 400, "This voice does not support the selected engine",
         "voice.polly_engine"),
        ("LanguageNotSupportedException", 400, "Language is not supported", "voice.language_code"),
        ("InvalidSsmlException", 400, "Invalid SSML request", "text_type: text"),
        ("AccessDeniedException", 403, "not authorized", "polly:SynthesizeSpeech"),
    ],
)  # fmt: skip
def test_refusals_are_final_and_name_the_field_to_fix(
    polly: Any, code: str, status: int, message: str, field: str
) -> None:
    with Stubber(polly) as stub:
        client_error(stub, code, status, message)
        with pytest.raises(SegmentRejected, match=re.escape(field)) as raised:
            synthesize(polly, PollyRequest("Nobody", language_code="xx-XX"), "Hello.")
    assert not raised.value.transient


@pytest.mark.parametrize(
    ("code", "status"), [("ThrottlingException", 400), ("ServiceFailureException", 500), ("Anything", 503)]
)
def test_throttles_and_server_failures_are_transient(polly: Any, code: str, status: int) -> None:
    with Stubber(polly) as stub:
        client_error(stub, code, status)
        with pytest.raises(TransientSynthesisError):
            synthesize(polly, PollyRequest("Matthew"), "Hello.")


def test_the_voice_request_carries_what_the_endpoint_needs() -> None:
    from narrate.synthesis.requests import model_identity, voice_request

    voice = PollyVoice(voice_id="Joanna", polly_engine="standard", language_code="en-US")
    identity = model_identity(voice, ServerConfig(), get_settings().aws)
    request = voice_request(voice, identity).model_dump()
    assert request == {
        "mode": "polly",
        "voice_id": "Joanna",
        "engine": "standard",
        "language_code": "en-US",
        "text_type": "text",
        "emulated": True,
    }  # fmt: skip  (tests run in local mode)
    assert json.loads(json.dumps(request)) == request
