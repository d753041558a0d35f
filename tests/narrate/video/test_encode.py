"""Encoding each scene: the encoder falls back to mpeg4 where the binary has no libx264."""

from __future__ import annotations

from pathlib import Path

from narrate.video import (
    EncodeSettings,
    Ffmpeg,
    RetimeInputs,
    retime_video,
)
from tests.narrate.video.recording import VOICE_B, assert_consistent, narration_files


def test_mpeg4_when_the_binary_has_no_libx264(
    recording: tuple[Path, Path], tmp_path: Path, ffmpeg: Ffmpeg
) -> None:
    video, marks_file = recording
    timeline, wav, vtt = narration_files(tmp_path / "b", VOICE_B)
    settings = EncodeSettings(video_encoder="mpeg4")
    result = retime_video(
        RetimeInputs(video, marks_file, timeline, wav, vtt), tmp_path / "b.mp4", None, settings, ffmpeg
    )
    assert result.video_encoder == "mpeg4"
    assert_consistent(ffmpeg, result, timeline)
