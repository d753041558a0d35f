"""Encode each scene of the re-timed video as its own clip: the source decoded once at the timeline's
exact frame rate, each scene's frames (and its frozen last frame) piped into one encoder per scene, so
every scene's real length can be measured."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from narrate.errors import VideoError
from narrate.track.timeline import Timeline
from narrate.video.ffmpeg import Ffmpeg
from narrate.video.plan import ScenePlan


@dataclass(frozen=True)
class VideoProgress:
    """One step of a re-timing: ``step`` is probe, encode, mux, verify or done; ``done``/``total`` count
    frames while encoding and steps otherwise."""

    step: str
    done: int
    total: int
    detail: str = ""


ProgressCallback = Callable[[VideoProgress], None]


@dataclass(frozen=True)
class EncodeSettings:
    """How the MP4 is encoded; the defaults suit screen recordings (sharp text, few changes)."""

    video_encoder: str | None = None  # None: libx264 when the binary has it, else mpeg4
    crf: int = 18  # libx264 quality (lower is better); mpeg4 uses q:v 2
    preset: str = "medium"  # libx264 speed/size trade-off
    audio_bitrate: str = "96k"  # AAC; mono speech
    language: str = "und"  # ISO 639-2 code of the narration and captions tracks


def choose_encoder(ff: Ffmpeg) -> str:
    available = ff.encoders()
    for name in ("libx264", "mpeg4"):
        if name in available:
            return name
    raise VideoError("this ffmpeg binary has neither libx264 nor mpeg4; reinstall imageio-ffmpeg")


def _video_codec_args(encoder: str, settings: EncodeSettings) -> list[str]:
    # No B-frames: each clip's first packet is at pts 0 with no edit list, so joined clips keep their
    # exact frame positions.
    if encoder == "libx264":
        return ["-c:v", "libx264", "-preset", settings.preset, "-crf", str(settings.crf), "-bf", "0",
                "-pix_fmt", "yuv420p", "-profile:v", "high"]  # fmt: skip
    return ["-c:v", encoder, "-q:v", "2", "-bf", "0", "-pix_fmt", "yuv420p"]


@dataclass(frozen=True)
class SceneEncoding:
    """What the scenes are encoded from and how: the source and its size, the timeline and the plan of
    each scene, the encoder and its settings."""

    video: Path
    width: int
    height: int
    timeline: Timeline
    plans: list[ScenePlan]
    encoder: str
    settings: EncodeSettings


def encode_scenes(
    ff: Ffmpeg, job: SceneEncoding, work: Path, report: ProgressCallback
) -> list[tuple[Path, ScenePlan]]:
    """Decode once, at the timeline's rate; write each scene's frames (and its frozen last frame) to
    its own encoder. Returns each clip with its scene's plan as the video really had it."""
    video, timeline, plans, encoder, settings = job.video, job.timeline, job.plans, job.encoder, job.settings
    width, height = job.width - job.width % 2, job.height - job.height % 2
    frame_bytes = width * height * 3 // 2
    fps = timeline.frame_rate()
    last_needed = max(p.source_start + p.used_frames for p in plans)
    decode_args = [
        "-loglevel", "error", "-i", str(video), "-map", "0:v:0",
        "-vf", f"fps=fps={fps}:start_time=0,crop={width}:{height}:0:0,format=yuv420p",
        "-frames:v", str(last_needed), "-f", "rawvideo", "-pix_fmt", "yuv420p", "-",
    ]  # fmt: skip
    encoded: list[tuple[Path, ScenePlan]] = []
    with (work / "decode.log").open("wb") as log:
        decoder = ff.popen(decode_args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)
        assert decoder.stdout is not None
        try:
            reader = _FrameReader(decoder.stdout, frame_bytes)
            written = 0
            for index, plan in enumerate(plans):
                clip = work / f"scene-{index:04d}.mp4"
                encode_args = [
                    "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p",
                    "-s", f"{width}x{height}", "-framerate", str(fps), "-i", "-",
                    *_video_codec_args(encoder, settings), "-an", "-f", "mp4", str(clip),
                ]  # fmt: skip
                encoded.append(
                    (clip, _encode_one(ff, encode_args, reader, plan, work / f"scene-{index:04d}.log"))
                )
                written += plan.target_frames
                report(VideoProgress("encode", written, timeline.total_frames, plan.id))
        finally:
            decoder.stdout.close()
            decoder.kill()
            decoder.wait()
    return encoded


class _FrameReader:
    """Raw frames of the decoder's output, by source frame index."""

    def __init__(self, stream: IO[bytes], frame_bytes: int) -> None:
        self.stream, self.frame_bytes, self.position = stream, frame_bytes, 0
        self.last: bytes | None = None

    def read(self, index: int) -> bytes | None:
        """Frame ``index`` (skipping any before it); None when the video ends before it."""
        while self.position <= index:
            data = self.stream.read(self.frame_bytes)
            if len(data) < self.frame_bytes:
                return None
            self.last, self.position = data, self.position + 1
        return self.last if self.position == index + 1 else None


def _encode_one(
    ff: Ffmpeg, args: list[str], reader: _FrameReader, plan: ScenePlan, log_path: Path
) -> ScenePlan:
    """Write the scene's frames to a new encoder; returns the plan as the video really had it (a scene
    cut short by the end of the video keeps its last frame frozen, unless that would cut its action)."""
    with log_path.open("wb") as log:
        encoder = ff.popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
        assert encoder.stdin is not None
        try:
            frame: bytes | None = None
            for offset in range(plan.used_frames):
                frame = reader.read(plan.source_start + offset)
                if frame is None:
                    plan = _cut_short(plan, offset)
                    frame = reader.last
                    break
                encoder.stdin.write(frame)
            assert frame is not None
            for _ in range(plan.freeze_frames):
                encoder.stdin.write(frame)
            encoder.stdin.close()
        except BrokenPipeError:
            pass  # the encoder stopped: its exit status and log say why
        except BaseException:
            encoder.kill()
            raise
        finally:
            if not encoder.stdin.closed:
                with contextlib.suppress(BrokenPipeError):
                    encoder.stdin.close()
            status = encoder.wait()
    if status != 0:
        raise VideoError(
            f"ffmpeg could not encode scene {plan.id!r}: {log_path.read_text(errors='replace')[-600:]}"
        )
    return plan


def _cut_short(plan: ScenePlan, available: int) -> ScenePlan:
    """The plan of a scene whose video ends after ``available`` of its frames."""
    if available < max(plan.action_frames, 1):
        raise VideoError(
            f"scene {plan.id!r}: the video's frames end {available} frame(s) into the scene, before its "
            f"action ({plan.action_frames} frames) ends; check the marks belong to this video"
        )
    return replace(plan, source_end=plan.source_start + available)
