"""Scene layout in samples, and the timeline record written beside every track.

Each scene lasts max(narration, min_seconds) + pause, and ends on the first video frame at or after
that sample. Boundaries are computed from absolute sample positions and absolute frame indices
(never by adding rounded durations), so rounding cannot accumulate over any number of scenes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from pydantic import BaseModel


def seconds_to_samples(seconds: float, sample_rate: int) -> int:
    return round(Fraction(str(seconds)) * sample_rate)


def frame_start_sample(frame: int, sample_rate: int, fps: Fraction) -> int:
    """First sample at or after the presentation time of ``frame``."""
    return math.ceil(Fraction(frame) * sample_rate / fps)


def first_frame_at_or_after(sample: int, sample_rate: int, fps: Fraction) -> int:
    frame = math.floor(Fraction(sample) * fps / sample_rate)
    while frame_start_sample(frame, sample_rate, fps) < sample:
        frame += 1
    return frame


@dataclass(frozen=True)
class SceneSpan:
    start_sample: int
    clip_samples: int
    scene_end_sample: int
    start_frame: int
    end_frame: int

    @property
    def padding_samples(self) -> int:
        return self.scene_end_sample - self.start_sample - self.clip_samples


def layout_scenes(
    clip_samples: list[int],
    min_samples: list[int],
    pause_samples: list[int],
    sample_rate: int,
    fps: Fraction,
) -> list[SceneSpan]:
    """Where each clip starts and its scene ends, all on frame boundaries of the video."""
    spans: list[SceneSpan] = []
    start, start_frame = 0, 0
    for clip, minimum, pause in zip(clip_samples, min_samples, pause_samples, strict=True):
        wanted_end = start + max(clip, minimum) + pause
        end_frame = first_frame_at_or_after(wanted_end, sample_rate, fps)
        end = frame_start_sample(end_frame, sample_rate, fps)
        spans.append(SceneSpan(start, clip, end, start_frame, end_frame))
        start, start_frame = end, end_frame
    return spans


@dataclass(frozen=True)
class LoudnessResult:
    """Measured as floats (-inf for silence); a timeline read back from JSON, which has no infinity,
    gives None for those."""

    target_lufs: float
    measured_lufs: float | None
    gain_db: float
    output_lufs: float | None
    true_peak_dbtp: float | None
    peak_limited: bool  # the true-peak limiter acted (the gain alone would have passed the ceiling)
    limiter_max_reduction_db: float = 0.0
    limiter_mean_reduction_db: float = 0.0  # over the samples the limiter reduced
    limited_seconds: float = 0.0

    def rounded(self) -> LoudnessResult:
        """For reports: hundredths of a dB are all a listener could tell apart."""
        fields = {k: round(v, 2) if isinstance(v, float) else v for k, v in vars(self).items()}
        return replace(self, **fields)


class SegmentQuality(BaseModel):
    """The quality gate's verdict on the take a segment uses (narrate.check.gate)."""

    passed: bool
    take: int
    seed: int | None
    picked: bool = False
    checks: dict[str, dict[str, Any]]  # each check's value, bound and whether it passed
    takes: int  # how many takes were judged


class TimelineSegment(BaseModel):
    id: str
    text: str
    start_sample: int
    end_sample: int  # end of the spoken clip
    scene_end_sample: int  # start of the next scene
    clip_samples: int
    padding_samples: int
    start_seconds: float
    end_seconds: float
    scene_end_seconds: float
    start_frame: int
    scene_end_frame: int
    cache_key: str
    cache_hit: bool
    engine: str
    voice: str
    clip_lufs: float | None = None  # the clip's own loudness as synthesised (None: too short to measure)
    level_gain_db: float = 0.0  # levelling the clip to the others', before the track's gain
    limiter_max_reduction_db: float = 0.0  # the most the true-peak limiter took from this clip
    spoken_text: str | None = None  # what the engine said, when the lexicon changed the words
    qc: SegmentQuality | None = None


class AssemblyRecord(BaseModel):
    """What the outputs were assembled from (a hash of every input that changes a byte of them) and the
    SHA-256 of each, by kind: a render whose inputs did not change reuses them as they are."""

    key: str
    files: dict[str, str]


class Timeline(BaseModel):
    title: str
    sample_rate: int
    fps: str
    total_samples: int
    total_seconds: float
    total_frames: int
    engine: str
    voice: str
    model_id: str
    model_revision: str
    language: str | None = None  # what the voice speaks (a name, e.g. english); None: not known
    disclosure: str
    emulated: str | None = None  # a stand-in served the voice (local mode's Polly): which one
    loudness: LoudnessResult
    segments: list[TimelineSegment]
    assembly: AssemblyRecord | None = None

    def frame_rate(self) -> Fraction:
        return Fraction(self.fps)
