"""Any recording a person has, decoded: each format a phone or a laptop saves, made here by the bundled
ffmpeg, and a file that is not a recording, refused with what it is and what is accepted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from narrate.errors import ClipRejected
from narrate.testing.memo import RATE, encode
from narrate.track.audio import integrated_loudness
from narrate.voices.decode import ACCEPTED, REFERENCE_RATE, decode_recording
from tests.narrate.voices.memos import lay_out, spoken_sentences

FORMATS = {  # suffix -> the codec ffmpeg names in it
    ".m4a": "aac", ".mp3": "mp3", ".ogg": "opus", ".wav": "pcm_s16le", ".flac": "flac", ".mp4": "aac",
    ".mov": "aac",
}  # fmt: skip


@pytest.fixture(scope="module")
def sentence() -> np.ndarray:
    return lay_out([spoken_sentences()[1]], [0.3]).audio


@pytest.mark.parametrize("suffix", FORMATS)
def test_each_format_decodes_to_the_same_mono_24k_speech(
    tmp_path: Path, sentence: np.ndarray, suffix: str
) -> None:
    recording = decode_recording(encode(sentence, tmp_path / f"memo{suffix}"))
    assert recording.codec == FORMATS[suffix]
    assert recording.samples.dtype == np.float32 and recording.samples.ndim == 1
    assert recording.channels == (2 if suffix in {".mp4", ".mov"} else 1)  # a phone video is stereo
    assert abs(recording.seconds - len(sentence) / RATE) < 0.1  # codec padding trimmed
    loudness = integrated_loudness(recording.samples, REFERENCE_RATE)
    assert abs(loudness - integrated_loudness(sentence, RATE)) < 0.5  # the same speech, not noise


def test_a_file_that_is_not_a_recording_is_refused_naming_its_format(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("Hi, this is my voice.\n" * 20)
    with pytest.raises(ClipRejected) as refused:
        decode_recording(notes)
    assert refused.value.exit_code == 2  # bad input, not a crash
    assert "has no audio (ffmpeg reads it as tty: video ansi)" in str(refused.value)
    assert ACCEPTED in str(refused.value)
    garbage = tmp_path / "memo.m4a"
    garbage.write_bytes(np.random.default_rng(3).bytes(20_000))
    with pytest.raises(
        ClipRejected, match=r"not a recording ffmpeg can decode \(a \.m4a file\); give m4a/AAC"
    ):
        decode_recording(garbage)


def test_a_video_without_sound_is_refused_saying_it_has_no_audio(tmp_path: Path) -> None:
    from narrate.video.ffmpeg import Ffmpeg

    silent = tmp_path / "screen.mp4"
    Ffmpeg().run(
        ["-f", "lavfi", "-i", "color=c=gray:s=64x48:r=10:d=1", "-c:v", "libx264", str(silent)], "encode"
    )
    with pytest.raises(
        ClipRejected, match=r"has no audio \(ffmpeg reads it as mov,mp4.*: video h264\); give m4a/AAC"
    ):
        decode_recording(silent)
