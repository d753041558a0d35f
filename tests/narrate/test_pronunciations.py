"""The pronunciation lexicon: whole-word respellings in what every engine is asked to say (Polly's as
SSML ``<sub alias>``, checked at botocore's Stubber), entries that feed each other refused, and the
words ``narrate validate`` warns about."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from narrate.cli.main import main
from narrate.endpoints.polly import PollyEndpoint
from narrate.errors import ScriptError
from narrate.pronunciations import Lexicon, spell_numbers, words_to_check
from narrate.script import load_script
from narrate.settings import get_settings
from narrate.synthesis.requests import model_identity
from tasks.script import plan_segments
from tasks.synthesis import plan_jobs
from tests.conftest import write_script
from tests.narrate.polly_stub import pcm_response

LEXICON = "pronunciations: {Acme: Ack-mee, SQL: sequel, GitHub: git hub}\n"
TEXT = "Acme runs SQL on GitHub; acme, ACME and sql too."
VOICES = {
    "dev": "{engine: dev}",
    "piper": "{engine: piper}",
    "qwen-speaker": "{engine: qwen-speaker, speaker: aiden, instruct: calm}",
    "qwen-design": "{engine: qwen-design, design_prompt: warm alto}",
    "polly": "{engine: polly, voice_id: Matthew, language_code: en-US}",
}


def request_texts(tmp_path: Path, voice: str, extra: str = LEXICON) -> tuple[list[str], list[Any]]:
    path = write_script(tmp_path, f"title: t\nvoice: {voice}\n{extra}segments: [{{id: a, text: '{TEXT}'}},"
                                  " {id: b, text: 'Nothing to respell.'}]\n")  # fmt: skip
    narration = load_script(path)
    settings = get_settings()
    identity = model_identity(narration.voice, settings.server_config(), settings.aws)
    plan = plan_segments(narration, identity)
    jobs = plan_jobs(narration, identity, plan, batch_size=8)
    texts = {s.id: s.text for job in jobs for s in job.request.segments}
    return [texts["a"], texts["b"]], jobs


@pytest.mark.parametrize("engine", [e for e in VOICES if e != "polly"])
def test_every_engine_is_asked_to_say_the_respellings(tmp_path: Path, engine: str) -> None:
    texts, _ = request_texts(tmp_path, VOICES[engine])
    # "sql": an acronym's entry matches it only as written
    assert texts[0] == "Ack-mee runs sequel on git hub; Ack-mee, Ack-mee and sql too."
    assert texts[1] == "Nothing to respell."


def test_polly_gets_ssml_sub_aliases_and_bills_the_written_words(
    tmp_path: Path, polly: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NARRATE_AWS", "real")  # real Polly's request (the Stubber answers for AWS)
    get_settings.cache_clear()
    _, jobs = request_texts(tmp_path, VOICES["polly"])
    respelt = next(job for job in jobs if "a" in job.segment_ids)
    plain = next(job for job in jobs if "b" in job.segment_ids)
    assert respelt.request.voice.text_type == "ssml" and plain.request.voice.text_type == "text"
    expected = (
        '<speak><sub alias="Ack-mee">Acme</sub> runs <sub alias="sequel">SQL</sub> on <sub alias="git hub">'
        'GitHub</sub>; <sub alias="Ack-mee">acme</sub>, <sub alias="Ack-mee">ACME</sub> and sql too.</speak>'
    )
    endpoint = PollyEndpoint(polly)
    with Stubber(polly) as stub:
        params = {"Engine": "neural", "VoiceId": "Matthew", "OutputFormat": "pcm", "SampleRate": "16000",
                  "TextType": "ssml", "Text": expected, "LanguageCode": "en-US"}  # fmt: skip
        stub.add_response("synthesize_speech", pcm_response([100, -100, 2000]), expected_params=params)
        submission = endpoint.submit(respelt, endpoint.stage(respelt))
        body = json.loads(endpoint.fetch(submission, 1.0))
    assert body["segments"][0]["id"] == "a" and "audio_base64" in body["segments"][0]


def test_the_lexicon_changes_the_cache_key_only_where_it_changes_the_words(tmp_path: Path) -> None:
    narration_dir = tmp_path / "with"
    narration_dir.mkdir()
    _, with_lexicon = request_texts(narration_dir, VOICES["piper"])
    _, without = request_texts(tmp_path, VOICES["piper"], extra="")
    keys = {sid: key for job in with_lexicon for sid, key in job.cache_keys.items()}
    plain = {sid: key for job in without for sid, key in job.cache_keys.items()}
    assert keys["a"] != plain["a"] and keys["b"] == plain["b"]


def test_entries_that_feed_each_other_are_refused(tmp_path: Path) -> None:
    path = write_script(tmp_path, "title: t\nvoice: {engine: dev}\npronunciations: {SQL: sequel, sequel: "
                                  "SQL language}\nsegments: [{id: a, text: hi}]\n")  # fmt: skip
    refused = r"pronunciations.SQL: its respelling 'sequel' contains 'sequel'.*\n  - pronunciations.sequel:"
    with pytest.raises(ScriptError, match=refused):
        load_script(path)
    bad = write_script(tmp_path, "title: t\nvoice: {engine: dev}\npronunciations: {Acme: ''}\n"
                                 "segments: [{id: a, text: hi}]\n", "bad.yaml")  # fmt: skip
    with pytest.raises(ScriptError, match="Acme: the respelling is empty"):
        load_script(bad)


def test_a_shared_lexicon_file_is_read_beside_the_script(tmp_path: Path) -> None:
    (tmp_path / "words.yaml").write_text("Acme: Ack-mee\n")
    path = write_script(tmp_path, "title: t\nvoice: {engine: dev}\npronunciations: words.yaml\n"
                                  "segments: [{id: a, text: Acme}]\n")  # fmt: skip
    assert load_script(path).lexicon.apply("Acme!") == "Ack-mee!"


def test_numbers_are_spelt_in_the_voice_language() -> None:
    assert spell_numbers("Save 25% in 3 clicks, 1.5 times faster.", "english") == (
        "Save twenty-five percent in three clicks, one point five times faster."
    )
    assert spell_numbers("3 Klicks", "german") == "drei Klicks"
    with pytest.raises(ValueError, match="spell_numbers: no number words for chinese"):
        spell_numbers("3", "chinese")


def test_validate_warns_about_words_that_look_like_they_need_an_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "Ship SQL and APIs to S3 with PostgreSQL, GitHub and H264."
    expected = ["APIs", "S3", "H264", "PostgreSQL", "GitHub"]
    assert words_to_check(text, Lexicon.of({"SQL": "sequel"})) == expected
    segments = "segments: [{id: a, text: 'Acme on GitHub uses SQL'}, {id: b, text: 'Query JSON in S3'}]\n"
    path = write_script(tmp_path, "title: t\nvoice: {engine: dev}\n" + LEXICON + segments)
    assert main(["validate", str(path)]) == 0
    shown = " ".join(capsys.readouterr().err.split())
    assert "warning: b: JSON, S3 may be said wrong" in shown and "a:" not in shown.split("valid")[1]
