"""The measurement of a written MP4: drift is caught and nothing is published."""

from __future__ import annotations

from pathlib import Path

import pytest

from narrate.errors import VideoDriftError
from narrate.video import (
    Ffmpeg,
    RetimeInputs,
    retime_video,
)
from tests.narrate.video.recording import FAST, VOICE_A, narration_files


class DroppingFfmpeg(Ffmpeg):
    """Encodes one scene three frames short, the way a rounding bug in clip lengths would."""

    def popen(self, args, stdin, stdout, stderr):  # type: ignore[no-untyped-def]
        if args[-1].endswith("scene-0001.mp4"):
            args = [*args[:-1], "-vf", "trim=start_frame=3,setpts=PTS-STARTPTS", args[-1]]
        return super().popen(args, stdin, stdout, stderr)


def test_drift_is_caught_and_nothing_is_published(recording: tuple[Path, Path], tmp_path: Path) -> None:
    video, marks_file = recording
    timeline, wav, vtt = narration_files(tmp_path / "a", VOICE_A)
    out = tmp_path / "out" / "demo.mp4"
    with pytest.raises(VideoDriftError, match=r"scene 'click'.*drift"):
        retime_video(RetimeInputs(video, marks_file, timeline, wav, vtt), out, None, FAST, DroppingFfmpeg())
    assert list(out.parent.iterdir()) == []  # no MP4, no temporary file, no work folder
