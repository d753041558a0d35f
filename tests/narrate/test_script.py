"""Every bad-input case of the script format ends in an error naming the file, the field and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from narrate.errors import ScriptError
from narrate.script import DevVoice, PiperVoice, QwenSpeakerVoice, load_script
from tests.conftest import EXAMPLES, write_script

VALID = """
title: Demo
voice: {engine: dev, language: en}
segments:
  - {id: one, text: Hello there.}
  - {id: two, text: Second scene., min_seconds: 2, pause_after_seconds: 0.5}
"""


def problems_of(path: Path, **kwargs: object) -> list[str]:
    with pytest.raises(ScriptError) as caught:
        load_script(path, **kwargs)  # type: ignore[arg-type]
    assert str(path) in str(caught.value)
    return caught.value.problems


def test_example_script_is_valid() -> None:
    script = load_script(EXAMPLES / "demo.yaml")
    assert 6 <= len(script.segments) <= 10
    assert isinstance(script.voice, PiperVoice)  # a new user's first render: the neural voice
    assert isinstance(script.voices["joe"], PiperVoice) and isinstance(script.voices["dev"], DevVoice)


def test_yaml_and_json_load_the_same(tmp_path: Path) -> None:
    from_yaml = load_script(write_script(tmp_path, VALID))
    data = {
        "title": "Demo",
        "voice": {"engine": "dev", "language": "en"},
        "segments": [
            {"id": "one", "text": "Hello there."},
            {"id": "two", "text": "Second scene.", "min_seconds": 2, "pause_after_seconds": 0.5},
        ],
    }
    from_json = load_script(write_script(tmp_path, json.dumps(data), "script.json"))
    assert from_yaml == from_json
    assert from_yaml.voice.language == "english"


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        (
            "text: Hello there.",
            "text: '   '",
            "segments[0] (id 'one').text: is empty; write what this scene says",
        ),
        ("id: two", "id: one", "segments: duplicate id 'one' at segments[0] and segments[1]; give each"),
        (
            "engine: dev",
            "engine: whisper",
            "voice: unknown engine 'whisper'; use one of qwen-speaker, qwen-clone",
        ),
        ("language: en", "language: klingon", "voice.language: unknown language 'klingon'; use one of"),
        ("min_seconds: 2", "min_seconds: -2", "segments[1] (id 'two').min_seconds: must be >= 0, got -2"),
        ("pause_after_seconds: 0.5", "pause_after_seconds: -1", "pause_after_seconds: must be >= 0, got -1"),
        ("id: one", "id: ../etc", "segments[0] (id '../etc').id: must be 1-64 letters, digits"),
        (
            "title: Demo",
            "title: Demo\nspeed: 2",
            "speed: is not a known field; remove it or fix its spelling",
        ),
        ("title: Demo", "", "title: is required; add it"),
        (
            "text: Hello there.",
            'text: "bad\\0nul"',
            "text: contains control characters (e.g. NUL); remove them",
        ),
    ],
)
def test_bad_input_names_field_and_fix(tmp_path: Path, replace: str, by: str, expected: str) -> None:
    assert replace in VALID
    path = write_script(tmp_path, VALID.replace(replace, by))
    assert any(expected in p for p in problems_of(path)), problems_of(path)


def test_unknown_speaker(tmp_path: Path) -> None:
    body = VALID.replace("{engine: dev, language: en}", "{engine: qwen-speaker, speaker: bob}")
    (problem,) = problems_of(write_script(tmp_path, body))
    assert problem.startswith("voice.speaker: unknown speaker 'bob'; use one of aiden")


@pytest.mark.parametrize(
    ("voice", "expected"),
    [
        (
            "{engine: piper, language: de}",
            "voice.language: the Piper voice 'joe' speaks english only, not german; use engine dev",
        ),
        ("{engine: piper, voice_model: amy}", "voice.voice_model: unknown Piper voice 'amy'; use one of joe"),
        ("{engine: piper, length_scale: 9}", "voice.length_scale: must be <= 2, got 9"),
    ],
)
def test_piper_voice_problems_name_the_field(tmp_path: Path, voice: str, expected: str) -> None:
    (problem,) = problems_of(write_script(tmp_path, VALID.replace("{engine: dev, language: en}", voice)))
    assert problem.startswith(expected), problem


def test_speaker_names_are_case_insensitive(tmp_path: Path) -> None:
    body = VALID.replace(
        "{engine: dev, language: en}", "{engine: qwen-speaker, speaker: Aiden, language: EN}"
    )
    voice = load_script(write_script(tmp_path, body)).voice
    assert isinstance(voice, QwenSpeakerVoice)
    assert (voice.speaker, voice.language) == ("aiden", "english")


def test_text_over_the_configured_limit(tmp_path: Path) -> None:
    path = write_script(tmp_path, VALID.replace("Hello there.", "word " * 30))
    (problem,) = problems_of(path, max_segment_chars=100)
    assert "text: is 149 characters, over the limit of 100; split it into several segments" in problem
    assert load_script(path, max_segment_chars=200)


CLONE = """
title: Clone
voice:
  engine: qwen-clone
  reference_clip: {clip}
  reference_text: {text}
  consent: {record}
segments:
  - {{id: one, text: Hello.}}
"""


def consent_for(folder: Path, clip: str, **changes: object) -> str:
    from datetime import date

    from narrate.consent import create_consent, write_consent

    record = create_consent(folder / clip, "Ada", "product demos of Acme", date(2026, 5, 1))
    write_consent(record.model_copy(update=changes), folder / "consent.json")
    return "consent.json"


def test_missing_reference_clip_and_consent_record(tmp_path: Path) -> None:
    body = CLONE.format(clip="me.wav", text="Hi, I am Ada.", record="consent.json")
    problems = problems_of(write_script(tmp_path, body))
    assert any(p.startswith("voice.reference_clip: reference clip 'me.wav' not found") for p in problems)
    (tmp_path / "me.wav").write_bytes(b"RIFF")
    (problem,) = problems_of(write_script(tmp_path, body))
    assert "consent record 'consent.json' not found" in problem and "narrate consent create" in problem


def test_consent_must_be_current_and_for_this_very_clip(tmp_path: Path) -> None:
    from datetime import date

    (tmp_path / "me.wav").write_bytes(b"RIFF one")
    body = CLONE.format(clip="me.wav", text="Hi, I am Ada.", record=consent_for(tmp_path, "me.wav"))
    script = write_script(tmp_path, body)
    assert load_script(script).voice.consent == (tmp_path / "consent.json").resolve()
    consent_for(tmp_path, "me.wav", expires_on=date(2026, 6, 1))
    (problem,) = problems_of(script)
    assert "expired on 2026-06-01" in problem and "narrate consent create" in problem
    consent_for(tmp_path, "me.wav")
    (tmp_path / "me.wav").write_bytes(b"RIFF two")  # another recording in the same file name
    (problem,) = problems_of(script)
    assert "was given for another recording" in problem
    (tmp_path / "consent.json").write_text('{"speaker_name": "Ada"}')
    (problem,) = problems_of(script)
    assert "is not a valid record" in problem


def test_clone_needs_a_transcript(tmp_path: Path) -> None:
    (tmp_path / "me.wav").write_bytes(b"RIFF")
    body = CLONE.format(clip="me.wav", text="''", record=consent_for(tmp_path, "me.wav"))
    (problem,) = problems_of(write_script(tmp_path, body))
    assert "reference_text is required: write the exact words spoken in the reference clip" in problem
    assert load_script(write_script(tmp_path, body.replace("reference_text: ''", "x_vector_only: true")))


def test_several_problems_are_reported_at_once(tmp_path: Path) -> None:
    body = VALID.replace("engine: dev", "engine: dev, pitch: 400").replace("Hello there.", "''")
    problems = problems_of(write_script(tmp_path, body))
    assert len(problems) == 2


def test_syntax_errors_and_duplicate_keys(tmp_path: Path) -> None:
    (problem,) = problems_of(write_script(tmp_path, "title: [unclosed\n"))
    assert "invalid YAML" in problem and problem.startswith("line ")
    (problem,) = problems_of(write_script(tmp_path, "title: a\ntitle: b\n"))
    assert "duplicate key 'title'; keep only one" in problem
    (problem,) = problems_of(write_script(tmp_path, "{", "bad.json"))
    assert problem.startswith("line 1: invalid JSON")
    (problem,) = problems_of(tmp_path / "missing.yaml")
    assert problem == "file not found; check the path"
    (problem,) = problems_of(write_script(tmp_path, "- a\n- b\n"))
    assert "must be a mapping" in problem


def test_frame_rates(tmp_path: Path) -> None:
    for fps in ("30", "29.97", "30000/1001", "24"):
        body = VALID.replace("title: Demo", f"title: Demo\noutput: {{fps: '{fps}'}}")
        assert load_script(write_script(tmp_path, body)).output.frame_rate > 0
    (problem,) = problems_of(
        write_script(tmp_path, VALID.replace("title: Demo", "title: Demo\noutput: {fps: 0}"))
    )
    assert problem.startswith("output.fps: fps 0 is out of range")


def test_polly_ssml_segments_must_be_well_formed(tmp_path: Path) -> None:
    voice = "{engine: polly, voice_id: Matthew, text_type: ssml}"
    polly = VALID.replace("{engine: dev, language: en}", voice)
    assert load_script(write_script(tmp_path, polly.replace("Hello there.", "Hello <break/> there.")))
    problems = problems_of(write_script(tmp_path, polly.replace("Hello there.", "Hello <emphasis>there.")))
    assert len(problems) == 1
    assert "segments[0] (id 'one').text: not well-formed SSML" in problems[0]
    assert "text_type: text" in problems[0]
    problems = problems_of(write_script(tmp_path, polly.replace("ssml}", "markdown}")))
    assert problems[0].startswith("voice.text_type:")


def test_named_voices_in_the_script_or_in_a_voices_file(tmp_path: Path) -> None:
    (tmp_path / "voices").mkdir()
    (tmp_path / "voices" / "team.yaml").write_text(
        "aiden-calm: {engine: qwen-speaker, speaker: Aiden, instruct: calm}\n"
        "polly-matthew: {engine: polly, voice_id: Matthew}\n"
    )
    body = "title: T\nvoice: {engine: dev}\nvoices: voices/team.yaml\nsegments: [{id: a, text: Hi.}]\n"
    narration = load_script(write_script(tmp_path, body))
    assert sorted(narration.voices) == ["aiden-calm", "polly-matthew"]
    spoken = narration.with_named_voice("aiden-calm")
    assert isinstance(spoken.voice, QwenSpeakerVoice) and spoken.voice.speaker == "aiden"
    with pytest.raises(ScriptError, match="voice 'me' is not defined; the script defines: aiden-calm, polly"):
        narration.with_named_voice("me")


def test_bad_named_voices_name_the_field(tmp_path: Path) -> None:
    body = (
        "title: T\nvoice: {engine: dev}\nsegments: [{id: a, text: Hi.}]\n"
        "voices:\n  Bad Name: {engine: dev}\n  ok: {engine: polly}\n"
    )
    problems = problems_of(write_script(tmp_path, body))
    assert any(p.startswith("voices: 'Bad Name': a voice name must be 1-40 lowercase") for p in problems)
    assert any(p.startswith("voices.ok.voice_id: is required") for p in problems), problems


def test_min_seconds_from_the_recording_keep_longer_ones(tmp_path: Path) -> None:
    body = (
        "title: T\nvoice: {engine: dev}\nsegments: [{id: a, text: Hi., min_seconds: 5}, {id: b, text: Yo.}]\n"
    )
    narration = load_script(write_script(tmp_path, body)).with_min_seconds({"a": 2.0, "b": 3.5})
    assert [s.min_seconds for s in narration.segments] == [5, 3.5]
