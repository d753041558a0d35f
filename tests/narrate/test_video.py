"""Re-timing a screen recording: every scene of the MP4 measured to within one frame of its timeline, frozen
or trimmed (never its action) frame by frame, the narration on its scenes' first frames, chapters and a
captions track present, drift caught before anything is published, two voices from one recording."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from model_server.config import ServerConfig
from narrate.errors import MarksError, VideoDriftError, VideoError
from narrate.script import NarrationScript
from narrate.synthesis.requests import model_identity
from narrate.track.timeline import Timeline
from narrate.video import (
    EncodeSettings,
    Ffmpeg,
    RetimeInputs,
    RetimeResult,
    VideoProgress,
    action_seconds,
    load_marks,
    parse_marks,
    retime_video,
)
from narrate.video.demo import make_demo_video, read_frame_number
from narrate.video.ffmpeg import decode_audio, file_metadata, stream_codecs
from tasks.assembly import TrackPlan, build_track, write_staged
from tasks.script import PlannedSegment

FPS = Fraction(30000, 1001)
RATE = 24000
SIZE = (256, 144)
IDS = ["open", "type", "click", "close"]
# Source scenes: (start, action end or None, end) in seconds; 6 s in all.
SOURCE = [(0.0, 0.5, 2.0), (2.0, None, 3.0), (3.0, 3.8, 5.0), (5.0, 5.5, 6.0)]
# Narration scene lengths (seconds) of two voices: trimmed, frozen, trimmed, frozen / other mixes.
VOICE_A = [1.2, 1.8, 1.5, 1.5]
VOICE_B = [2.6, 1.1, 0.9, 0.6]
FAST = EncodeSettings(preset="ultrafast")


@pytest.fixture(scope="module")
def ffmpeg() -> Ffmpeg:
    return Ffmpeg()


@pytest.fixture(scope="module")
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


def tone(seconds: float, freq: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def narration_files(folder: Path, scene_seconds: list[float]) -> tuple[Timeline, Path, Path]:
    """A real assembly of tone bursts (0.4 s each), each scene lasting ``scene_seconds``."""
    narration = NarrationScript.model_validate(
        {
            "title": "Video test",
            "voice": {"engine": "dev"},
            "output": {"formats": ["wav"], "fps": "30000/1001", "sample_rate": RATE},
            "segments": [
                {
                    "id": i,
                    "text": f"Scene {i}. It shows {i}.",
                    "min_seconds": s - 0.1,
                    "pause_after_seconds": 0.1,
                }
                for i, s in zip(IDS, scene_seconds, strict=True)
            ],
        }
    )
    plan = [PlannedSegment(s.id, s.text, f"{n:064x}") for n, s in enumerate(narration.segments)]
    clips = [(tone(0.4, 440 + 110 * n), RATE) for n in range(len(IDS))]
    track = TrackPlan(narration, plan, model_identity(narration.voice, ServerConfig(), "local"))
    assembled = build_track(track, clips)
    folder.mkdir(parents=True, exist_ok=True)
    staged = write_staged(folder, track, assembled)
    return assembled.timeline, staged["wav"], staged["vtt"]


def decoded_frame_numbers(ff: Ffmpeg, mp4: Path) -> list[int]:
    width, height = SIZE
    args = ["-loglevel", "error", "-i", str(mp4), "-map", "0:v:0", "-fps_mode", "passthrough",
            "-f", "rawvideo", "-pix_fmt", "gray", "-"]  # fmt: skip
    raw = subprocess.run(ff.command(args), capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, dtype=np.uint8).reshape(-1, height, width)
    return [read_frame_number(frame) for frame in frames]


def expected_frame_numbers(result: RetimeResult) -> list[int]:
    """Which source frame each output frame must show: the scene's frames, then its last one frozen."""
    shown: list[int] = []
    for scene in result.scenes:
        for offset in range(scene.end_frame - scene.start_frame):
            shown.append(scene.source_start_frame + min(offset, scene.source_frames_used - 1))
    return shown


def assert_consistent(ff: Ffmpeg, result: RetimeResult, timeline: Timeline) -> None:
    assert [s.id for s in result.scenes] == IDS
    for scene, segment in zip(result.scenes, timeline.segments, strict=True):
        assert (scene.start_frame, scene.end_frame) == (segment.start_frame, segment.scene_end_frame)
        assert abs(scene.measured_start_frame - segment.start_frame) <= 1
        assert abs(scene.measured_frames - (segment.scene_end_frame - segment.start_frame)) <= 1
        assert scene.source_frames_used >= scene.action_frames  # trimming never cut action
    numbers = decoded_frame_numbers(ff, result.mp4)
    assert len(numbers) == timeline.total_frames
    assert numbers == expected_frame_numbers(result)
    for scene in result.scenes:  # every frame of the action is on screen, in order
        action = list(range(scene.source_start_frame, scene.source_start_frame + scene.action_frames))
        assert numbers[scene.start_frame : scene.start_frame + scene.action_frames] == action
    # audio: each tone burst starts on its scene's first frame (within one frame)
    audio = decode_audio(ff, result.mp4, RATE)
    frame_samples = RATE / FPS
    for segment in timeline.segments:
        window = audio[max(0, segment.start_sample - 2000) : segment.start_sample + 4000]
        onset = int(np.argmax(np.abs(window) > 0.1 * np.abs(window).max())) + max(
            0, segment.start_sample - 2000
        )
        assert abs(onset - segment.start_sample) <= frame_samples, segment.id
    metadata, found = file_metadata(ff, result.mp4)
    assert metadata["title"] == timeline.title and metadata["comment"].startswith("Synthetic speech")
    assert [c.title for c in found] == IDS
    assert [round(c.start * FPS) for c in found] == [s.start_frame for s in timeline.segments]
    assert ("subtitle", "mov_text") in stream_codecs(ff, result.mp4)
    assert result.report.is_file()


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


def test_action_seconds_are_the_min_seconds_that_keep_every_action() -> None:
    marks = parse_marks({"end_seconds": 6, "scenes": [
        {"id": i, "start_seconds": s, **({"action_end_seconds": a} if a else {})}
        for i, (s, a, _) in zip(IDS, SOURCE, strict=True)
    ]}, IDS)  # fmt: skip
    seconds = action_seconds(marks, FPS)
    assert seconds == pytest.approx(
        {"open": 0.5005, "type": 1.001, "click": 0.8008, "close": 0.5005}, abs=1e-6
    )
    assert all(v * FPS >= round(v * FPS) - 1e-9 for v in seconds.values())  # never a frame short


def test_marks_errors_name_the_field_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(MarksError) as caught:
        parse_marks(
            {"scenes": [
                {"id": "open", "start_seconds": 0, "action_end_seconds": 2.5},
                {"id": "type", "start_seconds": 2},
                {"id": "clik", "start_seconds": 1.5},
                {"id": "close", "start_seconds": "soon"},
            ]},
            IDS,
            video_seconds=6,
        )  # fmt: skip
    text = str(caught.value)
    assert "scenes[3] (id 'close').start_seconds: 'soon' is not a time" in text
    with pytest.raises(MarksError) as caught:
        parse_marks(
            {"scenes": [
                {"id": "open", "start_seconds": 0, "action_end_seconds": 2.5},
                {"id": "type", "start_seconds": 2},
                {"id": "clik", "start_seconds": 1.5},
                {"id": "close", "start_seconds": 7},
            ]},
            IDS,
            video_seconds=6,
        )  # fmt: skip
    text = str(caught.value)
    assert "no mark for segment(s) click" in text and "clik not in the script" in text
    assert "action_end_seconds: 2.5 is after the scene's end (2)" in text
    assert "scenes[1] (id 'type').start_seconds: 2 is not before the next scene's start (1.5)" in text
    assert "start_seconds: 7 is at or after the end of the video" in text
    with pytest.raises(MarksError, match="3 boundaries for 4 script segments"):
        parse_marks([0, 1, 2], IDS)
    marks = parse_marks(["0:00", "0:02", "00:00:03.000", 5], IDS, video_seconds=6)
    assert [s.start_seconds for s in marks.scenes] == [0, 2, 3, 5]
    bad = tmp_path / "marks.yaml"
    bad.write_text("scenes: [\n")
    with pytest.raises(MarksError, match=r"line .*invalid YAML"):
        load_marks(bad, IDS)


def test_example_marks_match_the_demo_script() -> None:
    from narrate.script import load_script

    root = Path(__file__).parents[2] / "examples"
    ids = [s.id for s in load_script(root / "demo.yaml").segments]
    marks = load_marks(root / "demo.marks.yaml", ids)
    assert marks.video == "demo.mp4" and len(marks.scenes) == 8
