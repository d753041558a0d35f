"""The bundled ffmpeg as narrate drives it: a recording's size, length and rate read back, and a clear
error for a file with no video."""

from __future__ import annotations

from pathlib import Path

import pytest

from narrate.errors import VideoError
from narrate.video import Ffmpeg, probe_video
from tests.narrate.video.recording import SIZE, SOURCE


def test_probe_reads_the_recordings_size_length_and_rate(
    recording: tuple[Path, Path], ffmpeg: Ffmpeg
) -> None:
    info = probe_video(ffmpeg, recording[0])
    assert (info.width, info.height) == SIZE
    assert info.seconds == pytest.approx(SOURCE[-1][2], abs=0.05)
    assert info.fps == pytest.approx(29.97, abs=0.01)


def test_a_file_without_video_is_refused_naming_it(tmp_path: Path, ffmpeg: Ffmpeg) -> None:
    audio = tmp_path / "only-audio.m4a"
    ffmpeg.run(
        ["-loglevel", "error", "-f", "lavfi", "-i", "anullsrc=r=24000:cl=mono", "-t", "1", str(audio)], "tone"
    )
    with pytest.raises(VideoError, match=r"only-audio\.m4a: has no video stream"):
        probe_video(ffmpeg, audio)
