"""A signed re-timed MP4: the manifest is embedded after the frame check, and the signed file, the one
published, passes the same frame check; a signing step that changes a frame is caught and nothing is
published."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from narrate.errors import VideoDriftError
from narrate.provenance.config import signing_from
from narrate.provenance.sign import SignJob, sign_copy
from narrate.provenance.verify import verify_file
from narrate.settings import get_settings
from narrate.video import Ffmpeg, RetimeInputs, VideoProgress, retime_video
from tests.narrate.provenance.media import claims
from tests.narrate.video.recording import FAST, VOICE_A, assert_consistent, narration_files


def test_the_signed_mp4_passes_its_frame_check(
    recording: tuple[Path, Path], tmp_path: Path, ffmpeg: Ffmpeg, signing: Any
) -> None:
    video, marks_file = recording
    timeline, wav, vtt = narration_files(tmp_path / "a", VOICE_A)
    signed_with = signing_from(get_settings())
    assert signed_with is not None

    def sign(unsigned: Path, target: Path) -> None:
        sign_copy(unsigned, target, SignJob(claims("video"), "video.mp4"), signed_with)

    steps: list[VideoProgress] = []
    out = tmp_path / "out" / "video.mp4"
    result = retime_video(
        RetimeInputs(video, marks_file, timeline, wav, vtt), out, steps.append, FAST, ffmpeg, sign
    )
    assert [s.step for s in steps][-5:] == ["mux", "verify", "sign", "verify", "done"]
    assert all(s.drift_frames == 0 for s in result.scenes)
    assert_consistent(
        ffmpeg, result, timeline
    )  # decoded frame by frame: the signed file shows the same frames
    verification = verify_file(out, signed_with.trust)
    assert verification.status == "trusted" and verification.claims == claims("video")
    assert sorted(p.name for p in out.parent.iterdir()) == ["video.mp4", "video.report.json"]


def test_a_signed_copy_whose_frames_changed_is_not_published(
    recording: tuple[Path, Path], tmp_path: Path, ffmpeg: Ffmpeg
) -> None:
    video, marks_file = recording
    timeline, wav, vtt = narration_files(tmp_path / "a", VOICE_A)

    def damaging_sign(unsigned: Path, target: Path) -> None:
        data = bytearray(unsigned.read_bytes())
        for at in range(data.index(b"mdat") + 64, len(data), 4096):  # a bit every 4 KB: some frames'
            data[at] ^= 0x01
        target.write_bytes(bytes(data))

    out = tmp_path / "out" / "video.mp4"
    with pytest.raises(VideoDriftError, match="its frames are not in the MP4"):
        retime_video(
            RetimeInputs(video, marks_file, timeline, wav, vtt), out, None, FAST, ffmpeg, damaging_sign
        )
    assert list(out.parent.iterdir()) == []
