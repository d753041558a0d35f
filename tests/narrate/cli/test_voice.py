"""``narrate voice add`` and ``narrate voice confirm`` as a person runs them: a phone memo (m4a, made here
from the offline Piper voice) into the demo's ``me-clone`` voice, its clip, consent and report written
together, its draft transcript refused until confirmed, and the voice rendered by the tiny Qwen
checkpoint; a recording that fails is refused with what to do and nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from narrate.cli.main import main
from narrate.consent import load_consent
from narrate.files import file_sha256
from narrate.testing.memo import EXAMPLE_SENTENCES, encode
from tests.conftest import EXAMPLES
from tests.narrate.cli.terminal import run_in_terminal, shown_text
from tests.narrate.voices.memos import FULL_TRANSCRIPT, lay_out, spoken_sentences

CONSENT = ["--speaker", "Ada Lovelace", "--scope", "Acme product demos", "--granted-on", "2026-01-05"]
PROJECT_ROOT = EXAMPLES.parent


@pytest.fixture(scope="module")
def memo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's phone memo: a breath of silence, "So, um.", four sentences, as AAC in m4a."""
    laid = lay_out(list(spoken_sentences()), [0.8, 0.55, 0.55, 0.55, 0.55])
    return encode(laid.audio, tmp_path_factory.mktemp("memo") / "me.m4a")


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return Path(shutil.copy(EXAMPLES / "demo.yaml", tmp_path / "demo.yaml"))


def add(demo: Path, memo: Path, *extra: str) -> int:
    return main(["voice", "add", "me-clone", "--clip", str(memo), *CONSENT, "--script", str(demo), *extra])


def test_a_phone_memo_becomes_a_voice_whose_draft_transcript_waits_for_confirmation(
    demo: Path, memo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert add(demo, memo) == 0
    shown = capsys.readouterr().err
    assert "signal_to_noise" in shown and "transcript not confirmed" in shown
    clip = demo.parent / "voices" / "me-clone.wav"
    info = sf.info(str(clip))
    assert (info.samplerate, info.channels, info.subtype) == (24000, 1, "PCM_16")
    consent = load_consent(demo.parent / "voices" / "me-clone.consent.json")
    report = json.loads((demo.parent / "voices" / "me-clone.clip.json").read_text())
    assert consent.reference_sha256 == file_sha256(clip) == report["clip_sha256"]
    assert consent.speaker_name == "Ada Lovelace"
    assert {c["name"] for c in report["checks"]} >= {"duration", "loudness", "clipping", "signal_to_noise"}
    assert report["source"]["codec"] == "aac" and report["transcript"]["confirmed"] is False
    entry = yaml.safe_load(demo.read_text())["voices"]["me-clone"]
    assert entry["transcript_confirmed"] is False and entry["reference_text"] == report["transcript"]["text"]
    assert "# Named voices" in demo.read_text()  # the script's comments are kept

    assert main(["validate", str(demo)]) == 2  # a draft transcript is refused until confirmed
    refused = capsys.readouterr().err
    assert "voices.me-clone.transcript_confirmed" in refused
    assert f"narrate voice confirm me-clone --script {demo}" in " ".join(refused.split())

    words = " ".join(EXAMPLE_SENTENCES[1:])
    assert main(["voice", "confirm", "me-clone", "--script", str(demo), "--transcript", words]) == 0
    assert main(["validate", str(demo)]) == 0
    assert yaml.safe_load(demo.read_text())["voices"]["me-clone"]["reference_text"] == words
    assert json.loads((demo.parent / "voices" / "me-clone.clip.json").read_text())["transcript"]["confirmed"]


def test_a_given_transcript_of_the_whole_memo_is_cut_to_the_clip(demo: Path, memo: Path) -> None:
    voices = demo.parent / "voices.yaml"
    code = main(["voice", "add", "me", "--clip", str(memo), *CONSENT, "--voices", str(voices),
                 "--transcript", FULL_TRANSCRIPT])  # fmt: skip
    assert code == 0
    entry = yaml.safe_load(voices.read_text())["me"]
    assert entry["reference_text"] == " ".join(
        EXAMPLE_SENTENCES[1:]
    )  # "So, um. Hi, ..." left out with its audio
    assert "transcript_confirmed" not in entry


def test_without_a_recogniser_for_the_language_the_transcript_is_required(
    demo: Path, memo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert add(demo, memo, "--language", "de") == 2
    assert "--transcript is required: no offline recogniser hears german" in capsys.readouterr().err
    assert not (demo.parent / "voices").exists()


def test_a_refused_recording_writes_nothing(demo: Path, memo: Path, tmp_path: Path) -> None:
    before = demo.read_text()
    notes = tmp_path / "notes.txt"
    notes.write_text("not a recording\n")
    assert add(demo, notes) == 2
    loud = tmp_path / "loud.flac"
    sf.write(loud, np.clip(lay_out(list(spoken_sentences()), [0.8] + [0.55] * 4).audio * 12, -1, 1), 24000)
    assert add(demo, loud) == 2
    assert demo.read_text() == before and not (demo.parent / "voices").exists()


def test_in_a_terminal_a_refusal_shows_each_check_and_what_to_do_without_a_traceback(tmp_path: Path) -> None:
    loud = tmp_path / "loud.mp3"
    encode(np.clip(lay_out(list(spoken_sentences()), [0.8] + [0.55] * 4).audio * 12, -1, 1), loud)
    demo = Path(shutil.copy(EXAMPLES / "demo.yaml", tmp_path / "demo.yaml"))
    code, output = run_in_terminal(
        ["voice", "add", "me-clone", "--clip", str(loud), *CONSENT, "--script", str(demo)], PROJECT_ROOT
    )
    text = shown_text(output)
    assert code == 2, text
    assert "clipping" in text and "warn" in text and "loudness" in text and "pass" in text
    assert "re-record with the phone a little further away" in " ".join(text.split())
    assert "--accept-warnings" in text and "Traceback" not in text


@pytest.mark.usefixtures("prefect_server", "embedded_aws", "tiny_clone_served")
def test_the_demo_me_clone_voice_renders_with_the_tiny_qwen_checkpoint(demo: Path, memo: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.render_narration import render_narration

    script = yaml.safe_load(demo.read_text())
    script["segments"] = script["segments"][:1]  # one scene is enough to hear the voice
    demo.write_text(yaml.safe_dump(script, sort_keys=False))
    assert add(demo, memo, "--transcript", FULL_TRANSCRIPT) == 0

    out = demo.parent / "out"
    render_narration(script=str(demo), out_dir=str(out), backend="inprocess", voices=["me-clone"])
    timeline = json.loads((out / "me-clone" / "timeline.json").read_text())
    assert "Ada Lovelace" in timeline["disclosure"] and timeline["engine"] == "qwen-clone"
    page = (out / "me-clone" / "review.html").read_text()
    assert "Reference clip of me-clone" in page and "signal_to_noise" in page and "from me.m4a (aac" in page
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["render-me-clone-reference-clip"]))
        )
    assert any(
        "| clipping |" in str(a.data) and "Transcript (given, cut to the clip" in str(a.data)
        for a in artifacts
    )
