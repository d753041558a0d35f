"""Measure a re-timed MP4 against its timeline: each scene's real start and length read from the MP4's
own timestamps (its clip's packets located byte for byte), the narration's real offset, the chapters
and the captions track; any scene more than one frame off raises VideoDriftError."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import correlate

from narrate.errors import VideoDriftError
from narrate.track.timeline import Timeline
from narrate.video.ffmpeg import Ffmpeg, PacketList, decode_audio, file_metadata, packets, stream_codecs
from narrate.video.plan import ScenePlan

MAX_DRIFT_FRAMES = 1


@dataclass(frozen=True)
class SceneMeasurement:
    id: str
    start_frame: int  # the timeline's
    end_frame: int
    measured_start_frame: float  # read from the MP4 (an integer unless its timestamps are off the grid)
    measured_frames: float
    source_start_frame: int  # which source frames it shows, at the timeline's rate
    source_frames_used: int
    action_frames: int
    freeze_frames: int  # copies of the last source frame appended
    trimmed_frames: int  # trailing hold of the source left out

    @property
    def drift_frames(self) -> float:
        end = self.measured_start_frame + self.measured_frames
        return max(abs(self.measured_start_frame - self.start_frame), abs(end - self.end_frame))


@dataclass(frozen=True)
class VerifyReport:
    scenes: list[SceneMeasurement]
    chapters: int
    audio_offset_samples: int | None


@dataclass(frozen=True)
class Expected:
    """What a re-timed MP4 must hold: the timeline, each scene's plan and clip packets, the narration."""

    timeline: Timeline
    plans: list[ScenePlan]
    clip_packets: list[PacketList]
    narration_wav: Path


def verify_output(ff: Ffmpeg, mp4: Path, expected: Expected, name: str | None = None) -> VerifyReport:
    """Raises VideoDriftError listing every problem; returns the measurements when there is none."""
    timeline, plans, clip_packets = expected.timeline, expected.plans, expected.clip_packets
    narration_wav = expected.narration_wav
    fps = timeline.frame_rate()
    problems: list[str] = []
    scenes = measure_scenes(packets(ff, mp4), fps, plans, clip_packets, problems)
    for scene in scenes:
        if scene.drift_frames > MAX_DRIFT_FRAMES:
            problems.append(
                f"scene {scene.id!r}: measured frames {_fmt(scene.measured_start_frame)}-"
                f"{_fmt(scene.measured_start_frame + scene.measured_frames)}, timeline "
                f"{scene.start_frame}-{scene.end_frame} ({_fmt(scene.drift_frames)} frames of drift)"
            )
    end = scenes[-1].measured_start_frame + scenes[-1].measured_frames if scenes else None
    if end is not None and abs(end - timeline.total_frames) > MAX_DRIFT_FRAMES:
        problems.append(f"the video track does not end at frame {timeline.total_frames}")
    metadata, found = file_metadata(ff, mp4)
    if metadata.get("comment") != timeline.disclosure:
        problems.append("the synthetic-voice disclosure is not in the MP4's comment metadata")
    if len(found) != len(plans):
        problems.append(f"{len(found)} chapter(s), expected one per scene ({len(plans)})")
    for chapter, plan in zip(found, plans, strict=False):
        start, end = chapter.start * fps, chapter.end * fps
        if abs(start - plan.start_frame) > MAX_DRIFT_FRAMES or abs(end - plan.end_frame) > MAX_DRIFT_FRAMES:
            problems.append(f"chapter {chapter.title!r} spans frames {_fmt(start)}-{_fmt(end)}, scene "
                            f"{plan.id!r} is {plan.start_frame}-{plan.end_frame}")  # fmt: skip
    codecs = stream_codecs(ff, mp4)
    for kind, codec in (("video", None), ("audio", "aac"), ("subtitle", "mov_text")):
        if not any(k == kind and codec in (None, c) for k, c in codecs):
            problems.append(f"no {kind} track{f' ({codec})' if codec else ''} in the MP4")
    offset = _audio_offset(ff, mp4, timeline, narration_wav, problems)
    if problems:
        raise VideoDriftError(
            f"{name or mp4.name} does not match its timeline; it was not published:\n  "
            + "\n  ".join(problems[:20])
        )
    return VerifyReport(scenes, len(found), offset)


def measure_scenes(
    out: PacketList,
    fps: Fraction,
    plans: list[ScenePlan],
    clip_packets: list[PacketList],
    problems: list[str],
) -> list[SceneMeasurement]:
    """Walk the MP4's video packets clip by clip; each scene's start and length come from the MP4's
    timestamps where its clip's packets really are."""
    positions = out.frame_positions(fps)
    ends = [pos + p.duration * out.time_base * fps for pos, p in zip(positions, out.packets, strict=True)]
    scenes: list[SceneMeasurement] = []
    cursor = 0
    for plan, clip in zip(plans, clip_packets, strict=True):
        count = len(clip.packets)
        here = out.packets[cursor : cursor + count]
        if count == 0 or [(p.size, p.crc) for p in here] != [(p.size, p.crc) for p in clip.packets]:
            problems.append(f"scene {plan.id!r}: its frames are not in the MP4 after the previous scene's")
            return scenes
        start = positions[cursor]
        scenes.append(
            SceneMeasurement(
                id=plan.id,
                start_frame=plan.start_frame,
                end_frame=plan.end_frame,
                measured_start_frame=_number(start),
                measured_frames=_number(ends[cursor + count - 1] - start),
                source_start_frame=plan.source_start,
                source_frames_used=plan.used_frames,
                action_frames=plan.action_frames,
                freeze_frames=plan.freeze_frames,
                trimmed_frames=plan.trimmed_frames,
            )
        )
        cursor += count
    if cursor != len(out.packets):
        problems.append(f"the MP4 has {len(out.packets) - cursor} video frame(s) after the last scene")
    return scenes


def _audio_offset(ff: Ffmpeg, mp4: Path, timeline: Timeline, wav: Path, problems: list[str]) -> int | None:
    """Lag of the muxed narration against the WAV, in samples (positive: it plays late)."""
    rate = timeline.sample_rate
    frame_samples = int(np.ceil(rate / timeline.frame_rate()))
    played = decode_audio(ff, mp4, rate)
    reference, _ = sf.read(wav, dtype="float32", always_2d=False)
    if abs(len(played) - timeline.total_samples) > frame_samples:
        problems.append(f"the audio track is {len(played)} samples, the timeline {timeline.total_samples}")
    if not np.any(reference) or not np.any(played):
        return None
    window = 2 * frame_samples
    full = correlate(played, reference, mode="full", method="fft")
    zero = len(reference) - 1
    lags = full[max(0, zero - window) : zero + window + 1]
    offset = int(np.argmax(lags)) - min(window, zero)
    if abs(offset) > frame_samples:
        problems.append(f"the narration plays {offset} samples off the video (more than one frame)")
    return offset


def _number(value: Fraction) -> float:
    return int(value) if value.denominator == 1 else round(float(value), 4)


def _fmt(value: float | Fraction) -> str:
    return f"{float(value):g}"
