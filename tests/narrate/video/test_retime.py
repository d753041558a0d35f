"""Re-timing a recording: every scene within one frame of its timeline, frozen or trimmed (never its
action), the narration on its scenes' first frames, chapters and captions; two voices from one source."""

from __future__ import annotations

from pathlib import Path

from narrate.video import (
    Ffmpeg,
    RetimeInputs,
    VideoProgress,
    load_marks,
    retime_video,
)
from tests.narrate.video.recording import FAST, IDS, VOICE_A, VOICE_B, assert_consistent, narration_files


def test_scenes_longer_and_shorter_than_narration(
    recording: tuple[Path, Path], tmp_path: Path, ffmpeg: Ffmpeg
) -> None:
    video, marks_file = recording
    timeline, wav, vtt = narration_files(tmp_path / "a", VOICE_A)
    steps: list[VideoProgress] = []
    out = tmp_path / "out" / "demo.mp4"
    result = retime_video(
        RetimeInputs(video, marks_file, timeline, wav, vtt), out, steps.append, FAST, ffmpeg
    )
    assert_consistent(ffmpeg, result, timeline)
    # (source start, source frames shown, frozen, trimmed): marks at 0, 2, 3, 5 s are frames 0, 60, 90,
    # 150 at 29.97 fps; "open" and "click" lose trailing hold, "type" and "close" freeze their last frame.
    shown = [
        (s.source_start_frame, s.source_frames_used, s.freeze_frames, s.trimmed_frames) for s in result.scenes
    ]
    assert shown == [(0, 36, 0, 24), (60, 30, 24, 0), (90, 45, 0, 15), (150, 30, 15, 0)]
    assert [s.action_frames for s in result.scenes] == [15, 30, 24, 15]
    assert all(s.drift_frames == 0 for s in result.scenes)
    assert result.audio_offset_samples is not None and abs(result.audio_offset_samples) <= 1
    assert [s.step for s in steps] == ["probe", *["encode"] * len(IDS), "mux", "verify", "done"]
    assert steps[len(IDS)].done == timeline.total_frames
    assert sorted(p.name for p in out.parent.iterdir()) == ["demo.mp4", "demo.report.json"]


def test_two_voices_from_one_recording(recording: tuple[Path, Path], tmp_path: Path, ffmpeg: Ffmpeg) -> None:
    video, marks_file = recording
    results = {}
    for name, lengths in (("a", VOICE_A), ("b", VOICE_B)):
        timeline, wav, srt = narration_files(tmp_path / name, lengths)
        srt = wav.with_name("captions.srt")  # SRT for one voice, WebVTT for the other
        result = retime_video(
            RetimeInputs(video, marks_file, timeline, wav, srt), tmp_path / f"{name}.mp4", None, FAST, ffmpeg
        )
        assert_consistent(ffmpeg, result, timeline)
        results[name] = result
    assert results["a"].total_frames != results["b"].total_frames
    assert {s.source_start_frame for s in results["a"].scenes} == {
        s.source_start_frame for s in results["b"].scenes
    }


def test_a_source_whose_audio_outlasts_its_video_freezes_the_last_scene(
    recording: tuple[Path, Path], tmp_path: Path, ffmpeg: Ffmpeg
) -> None:
    """The container says 7 s, the video has 6 s of frames: the last scene's missing frames are hold."""
    video, marks_file = recording
    longer = tmp_path / "longer.mp4"
    ffmpeg.run(["-loglevel", "error", "-i", str(video), "-f", "lavfi", "-i", "anullsrc=r=24000:cl=mono",
                "-t", "7", "-c:v", "copy", "-c:a", "aac", str(longer)], "add audio")  # fmt: skip
    marks = load_marks(marks_file, IDS).model_copy(update={"end_seconds": None})
    timeline, wav, vtt = narration_files(tmp_path / "a", VOICE_A)
    result = retime_video(
        RetimeInputs(longer, marks, timeline, wav, vtt), tmp_path / "a.mp4", None, FAST, ffmpeg
    )
    close = result.scenes[-1]
    assert (close.source_frames_used, close.freeze_frames) == (30, 15)  # 6 s of frames, not 7
    assert_consistent(ffmpeg, result, timeline)
