"""Where a recording speaks: 10 ms frame levels, the room's noise floor, and the phrases (runs of speech
between pauses long enough to cut in without cutting a word). All positions are in samples."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d

HOP_SECONDS = 0.010  # one level per 10 ms
FRAME_SECONDS = 0.020  # measured over 20 ms
FLOOR_DB = -120.0  # digital silence reads as this, not -inf
SPEECH_SHARE = 0.35  # speech is above this share of the way from the noise floor to the loud speech
SPEECH_RANGE_DB = 40.0  # and within this much of the loud speech
BRIDGE_SECONDS = 0.12  # shorter gaps are inside words (stop closures), not pauses
BLIP_SECONDS = 0.06  # shorter sounds are clicks, not speech
CUT_PAUSE_SECONDS = 0.25  # a pause at least this long lies between words: a clip may start or end there


@dataclass(frozen=True)
class Phrase:
    start: int
    end: int

    def seconds(self, rate: int) -> float:
        return (self.end - self.start) / rate


@dataclass(frozen=True)
class SpeechMap:
    """The phrases of a recording and its levels, in samples at ``rate``."""

    rate: int
    hop: int  # samples per level frame
    levels_db: np.ndarray  # each frame's RMS level, dBFS
    speech: np.ndarray  # bool per frame: speech
    phrases: tuple[Phrase, ...]
    noise_floor_db: float  # the level of the room between phrases

    def speech_seconds(self, start: int, end: int) -> float:
        """Seconds of speech frames between two sample positions."""
        return float(self.speech[start // self.hop : end // self.hop].sum()) * self.hop / self.rate

    def speech_level_db(self, start: int, end: int) -> float:
        """The mean power of the speech frames between two positions, dBFS."""
        levels = self.levels_db[start // self.hop : end // self.hop]
        voiced = levels[self.speech[start // self.hop : end // self.hop]]
        if voiced.size == 0:
            return FLOOR_DB
        return float(10 * np.log10(np.mean(10 ** (voiced / 10))))


def frame_levels(audio: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
    """The RMS level (dBFS) of each 20 ms frame every 10 ms, and the hop in samples."""
    hop = round(HOP_SECONDS * rate)
    count = len(audio) // hop
    if count == 0:
        return np.zeros(0), hop
    power = uniform_filter1d(audio.astype(np.float64) ** 2, round(FRAME_SECONDS * rate), mode="constant")
    centres = np.arange(count) * hop + hop // 2
    return np.maximum(10 * np.log10(power[centres] + 1e-30), FLOOR_DB), hop


def map_speech(audio: np.ndarray, rate: int) -> SpeechMap:
    """The phrases of ``audio``: frames well above the noise floor, gaps under 120 ms bridged, blips
    under 60 ms dropped, then runs closer than a cut pause joined into one phrase."""
    levels, hop = frame_levels(audio, rate)
    if levels.size == 0:
        return SpeechMap(rate, hop, levels, np.zeros(0, dtype=bool), (), FLOOR_DB)
    floor, loud = float(np.percentile(levels, 5)), float(np.percentile(levels, 95))
    threshold = max(floor + SPEECH_SHARE * (loud - floor), loud - SPEECH_RANGE_DB)
    speech = _smoothed(levels > threshold, hop, rate)
    runs = _runs(speech)
    phrases = _joined(runs, round(CUT_PAUSE_SECONDS * rate / hop))
    quiet = levels[~speech]
    noise = float(np.median(quiet)) if quiet.size * hop >= rate // 2 else floor
    return SpeechMap(rate, hop, levels, speech, tuple(Phrase(s * hop, e * hop) for s, e in phrases), noise)


def _smoothed(speech: np.ndarray, hop: int, rate: int) -> np.ndarray:
    bridge, blip = round(BRIDGE_SECONDS * rate / hop), round(BLIP_SECONDS * rate / hop)
    smoothed = speech.copy()
    runs = _runs(smoothed)
    for (_, end), (start, _) in itertools.pairwise(runs):
        if start - end < bridge:
            smoothed[end:start] = True
    for start, end in _runs(smoothed):
        if end - start < blip:
            smoothed[start:end] = False
    return smoothed


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _joined(runs: list[tuple[int, int]], min_gap: int) -> list[tuple[int, int]]:
    joined: list[tuple[int, int]] = []
    for start, end in runs:
        if joined and start - joined[-1][1] < min_gap:
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    return joined
