"""Two cheap listeners for what should not be in a voice clip: steady tones (music, a hum, a whine:
spectral peaks that hold one frequency for half a second, which speech's moving pitch never does)
and a second voice (phrases whose pitch sits far from the others')."""

from __future__ import annotations

import itertools

import numpy as np
from scipy.ndimage import maximum_filter1d, median_filter

from narrate.track.audio import resample
from narrate.voices.speech import Phrase

TONE_WINDOW = 2048  # samples per spectrum at 24 kHz (85 ms, 11.7 Hz per bin)
TONE_HOP = 1024
TONE_BAND_HZ = (150.0, 4000.0)  # above mains hum, where music and voices both live
TONE_PROMINENCE_DB = 12.0  # a peak this far over its neighbourhood's median is a tone
TONE_HOLD_SECONDS = 0.5  # held this long within a bin either side: steady, not speech
PITCH_RATE = 8000
PITCH_FRAME = 320  # 40 ms at 8 kHz: two periods of a 50 Hz voice
PITCH_HOP = 80
PITCH_RANGE_HZ = (60.0, 400.0)
PITCH_THRESHOLD = 0.25  # YIN's aperiodicity bound for a voiced frame
PITCH_MIN_FRAMES = 10  # a phrase's pitch needs this many voiced frames


def steady_tone_share(audio: np.ndarray, rate: int) -> float:
    """The share of the clip's time during which some tone has held its frequency for
    TONE_HOLD_SECONDS (0 for speech alone)."""
    if len(audio) < TONE_WINDOW * 2:
        return 0.0
    count = 1 + (len(audio) - TONE_WINDOW) // TONE_HOP
    index = np.arange(TONE_WINDOW)[None, :] + TONE_HOP * np.arange(count)[:, None]
    spectrum = np.abs(np.fft.rfft(audio[index] * np.hanning(TONE_WINDOW), axis=1))
    low, high = (round(hz * TONE_WINDOW / rate) for hz in TONE_BAND_HZ)
    level = 20 * np.log10(spectrum[:, low:high] + 1e-9)
    local = median_filter(level, size=(1, 31), mode="nearest")
    loud = level > level.max(axis=1, keepdims=True) - 40  # not a ripple in a quiet frame's floor
    peaks = (level >= maximum_filter1d(level, 3, axis=1)) & (level > local + TONE_PROMINENCE_DB) & loud
    peaks = maximum_filter1d(peaks.astype(np.uint8), 3, axis=1).astype(bool)  # a bin either side
    hold = max(2, round(TONE_HOLD_SECONDS * rate / TONE_HOP))
    run = np.zeros(peaks.shape[1], dtype=np.int32)
    steady = np.zeros(count, dtype=bool)
    for frame in range(count):
        run = (run + 1) * peaks[frame]
        if run.max() >= hold:
            steady[frame - hold + 1 : frame + 1] = True
    return float(steady.mean())


def phrase_pitches(audio: np.ndarray, rate: int, phrases: list[Phrase]) -> list[tuple[float, int]]:
    """Each phrase's median pitch in semitones above 55 Hz and its voiced frames (phrases with too few
    voiced frames are left out)."""
    pitch = _frame_pitch(resample(audio, rate, PITCH_RATE))
    found: list[tuple[float, int]] = []
    for phrase in phrases:
        frames = pitch[
            phrase.start * PITCH_RATE // rate // PITCH_HOP : phrase.end * PITCH_RATE // rate // PITCH_HOP
        ]
        voiced = frames[frames > 0]
        if voiced.size >= PITCH_MIN_FRAMES:
            found.append((float(12 * np.log2(np.median(voiced) / 55.0)), int(voiced.size)))
    return found


def pitch_gap(pitches: list[tuple[float, int]], min_frames: int) -> float:
    """The widest gap (semitones) splitting the phrases' pitches into two groups of at least
    ``min_frames`` voiced frames each; 0 when no such split exists."""
    ordered = sorted(pitches)
    total = sum(frames for _, frames in ordered)
    below, widest = 0, 0.0
    for (pitch, frames), (next_pitch, _) in itertools.pairwise(ordered):
        below += frames
        if below >= min_frames and total - below >= min_frames:
            widest = max(widest, next_pitch - pitch)
    return widest


def _frame_pitch(audio: np.ndarray) -> np.ndarray:
    """YIN's pitch (Hz) of each 10 ms frame, 0 where unvoiced."""
    count = max(0, 1 + (len(audio) - PITCH_FRAME) // PITCH_HOP)
    if count == 0:
        return np.zeros(0)
    frames = audio[np.arange(PITCH_FRAME)[None, :] + PITCH_HOP * np.arange(count)[:, None]].astype(np.float64)
    lag_max = int(PITCH_RATE / PITCH_RANGE_HZ[0])
    lag_min = int(PITCH_RATE / PITCH_RANGE_HZ[1])
    width = PITCH_FRAME - lag_max
    spectrum = np.fft.rfft(frames, 2 * PITCH_FRAME, axis=1)
    head = np.fft.rfft(frames[:, :width], 2 * PITCH_FRAME, axis=1)
    cross = np.fft.irfft(np.conj(head) * spectrum, axis=1)[:, : lag_max + 1]
    squares = np.concatenate([np.zeros((count, 1)), np.cumsum(frames**2, axis=1)], axis=1)
    energy_head = squares[:, width][:, None]
    lags = np.arange(lag_max + 1)
    energy_lag = squares[:, lags + width] - squares[:, lags]
    difference = energy_head + energy_lag - 2 * cross
    cumulative = np.cumsum(difference[:, 1:], axis=1) / np.arange(1, lag_max + 1)
    normalised = np.ones_like(difference)
    normalised[:, 1:] = difference[:, 1:] / np.maximum(cumulative, 1e-12)
    pitch = np.zeros(count)
    for frame in range(count):
        below = np.flatnonzero(normalised[frame, lag_min:] < PITCH_THRESHOLD)
        if below.size:
            lag = lag_min + below[0]
            while lag + 1 <= lag_max and normalised[frame, lag + 1] < normalised[frame, lag]:
                lag += 1  # down to the dip's bottom
            pitch[frame] = PITCH_RATE / lag
    return pitch
