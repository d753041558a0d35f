"""Fixtures of the video tests: one drawn recording per module."""

from __future__ import annotations

from pathlib import Path

import pytest

from narrate.video import Ffmpeg, load_marks
from narrate.video.demo import make_demo_video
from tests.narrate.video.recording import FPS, IDS, SIZE, SOURCE


@pytest.fixture(scope="session")
def ffmpeg() -> Ffmpeg:
    return Ffmpeg()


@pytest.fixture(scope="session")
def recording(tmp_path_factory: pytest.TempPathFactory, ffmpeg: Ffmpeg) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("recording")
    marks_file = folder / "marks.yaml"
    lines = ["video: source.mp4", f"end_seconds: {SOURCE[-1][2]}", "scenes:"]
    for scene_id, (start, action, _) in zip(IDS, SOURCE, strict=True):
        lines.append(f"  - id: {scene_id}\n    start_seconds: {start}")
        if action is not None:
            lines.append(f"    action_end_seconds: {action}")
    marks_file.write_text("\n".join(lines) + "\n")
    marks = load_marks(marks_file, IDS)
    video = make_demo_video(marks, folder / "source.mp4", FPS, SIZE, ffmpeg, preset="ultrafast")
    return video, marks_file
