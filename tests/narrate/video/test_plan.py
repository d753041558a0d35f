"""Planning the scenes: a narration shorter than a scene's action is an error naming the scene."""

from __future__ import annotations

from pathlib import Path

import pytest

from narrate.errors import VideoError
from narrate.video import (
    Ffmpeg,
    RetimeInputs,
    retime_video,
)
from tests.narrate.video.recording import FAST, narration_files


def test_narration_shorter_than_the_action_names_the_scene(
    recording: tuple[Path, Path], tmp_path: Path, ffmpeg: Ffmpeg
) -> None:
    video, marks_file = recording
    timeline, wav, vtt = narration_files(tmp_path / "a", [1.2, 0.6, 1.5, 1.5])  # "type" is 1 s of action
    with pytest.raises(VideoError, match=r"scene 'type': its action lasts 30 frames .* set min_seconds"):
        retime_video(
            RetimeInputs(video, marks_file, timeline, wav, vtt), tmp_path / "x.mp4", None, FAST, ffmpeg
        )
    assert not (tmp_path / "x.mp4").exists()
