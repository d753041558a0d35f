"""A recording and narrations to re-time it to, shared by the video tests: a drawn source whose every
frame shows its number, tone-burst narrations assembled for real, and the checks every MP4 must pass."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np

from model_server.config import ServerConfig
from narrate.script import NarrationScript
from narrate.synthesis.requests import model_identity
from narrate.track.timeline import Timeline
from narrate.video import (
    EncodeSettings,
    Ffmpeg,
    RetimeResult,
)
from narrate.video.demo import read_frame_number
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
