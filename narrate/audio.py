"""Sample-exact audio operations on float32 mono numpy arrays: resample, trim, fade, loudness, peaks."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np
import pyloudnorm
from scipy.signal import resample_poly

TRIM_WINDOW_SECONDS = 0.010
TRIM_BELOW_PEAK_DB = 45.0  # windows this far under the clip's loudest window count as silence
TRIM_FLOOR_DBFS = -60.0
TRIM_MARGIN_SECONDS = 0.020  # kept around speech so soft onsets and releases survive
FADE_SECONDS = 0.005
TRUE_PEAK_OVERSAMPLING = 4


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Polyphase resampling by the exact ratio; output length is ceil(len * to / from)."""
    if from_rate == to_rate:
        return audio.astype(np.float32, copy=False)
    ratio = Fraction(to_rate, from_rate)
    out = resample_poly(audio.astype(np.float64), ratio.numerator, ratio.denominator)
    return out.astype(np.float32)


def trim_silence(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Cut leading and trailing silence, keeping a short margin around the speech."""
    window = max(1, round(TRIM_WINDOW_SECONDS * sample_rate))
    count = len(audio) // window
    if count == 0:
        return audio[:0]
    frames = audio[: count * window].astype(np.float64).reshape(count, window)
    rms_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
    threshold = max(rms_db.max() - TRIM_BELOW_PEAK_DB, TRIM_FLOOR_DBFS)
    voiced = np.flatnonzero(rms_db > threshold)
    if voiced.size == 0:
        return audio[:0]
    margin = round(TRIM_MARGIN_SECONDS * sample_rate)
    start = max(0, voiced[0] * window - margin)
    end = min(len(audio), (voiced[-1] + 1) * window + margin)
    return audio[start:end]


def apply_fades(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Short raised-cosine fade in and out so cuts do not click; length is unchanged."""
    length = min(round(FADE_SECONDS * sample_rate), len(audio) // 2)
    if length == 0:
        return audio
    ramp = (0.5 - 0.5 * np.cos(np.linspace(0, math.pi, length, endpoint=False))).astype(np.float32)
    faded = audio.astype(np.float32, copy=True)
    faded[:length] *= ramp
    faded[-length:] *= ramp[::-1]
    return faded


def prepare_clip(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """A synthesised clip as it goes into the track: at the track's rate, trimmed, faded."""
    return apply_fades(trim_silence(resample(audio, from_rate, to_rate), to_rate), to_rate)


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """ITU-R BS.1770-4 integrated loudness in LUFS (-inf for silence or under 400 ms)."""
    if len(audio) < int(0.4 * sample_rate) + 1:
        return float("-inf")
    with np.errstate(divide="ignore"):
        return float(pyloudnorm.Meter(sample_rate).integrated_loudness(audio.astype(np.float64)))


def true_peak_dbtp(audio: np.ndarray, block: int = 1 << 18, context: int = 256) -> float:
    """Peak of the 4x oversampled signal in dBTP, in blocks so an hour of audio stays small."""
    peak = 0.0
    for start in range(0, len(audio), block):
        low, high = max(0, start - context), min(len(audio), start + block + context)
        upsampled = resample_poly(audio[low:high].astype(np.float64), TRUE_PEAK_OVERSAMPLING, 1)
        inner = upsampled[(start - low) * TRUE_PEAK_OVERSAMPLING :][: block * TRUE_PEAK_OVERSAMPLING]
        peak = max(peak, float(np.max(np.abs(inner))), float(np.max(np.abs(audio[start : start + block]))))
    return 20 * math.log10(peak) if peak > 0 else float("-inf")


def gain_factor(gain_db: float) -> np.float32:
    return np.float32(10 ** (gain_db / 20))


@dataclass(frozen=True)
class LoudnessResult:
    target_lufs: float
    measured_lufs: float
    gain_db: float
    output_lufs: float
    true_peak_dbtp: float
    peak_limited: bool

    def rounded(self) -> LoudnessResult:
        """For reports: hundredths of a dB are all a listener could tell apart."""
        fields = {k: round(v, 2) if isinstance(v, float) else v for k, v in vars(self).items()}
        return replace(self, **fields)


def normalize_loudness(
    track: np.ndarray, sample_rate: int, target_lufs: float, ceiling_dbtp: float
) -> tuple[np.ndarray, LoudnessResult]:
    """One constant gain to the target, lowered if it would push the true peak over the ceiling."""
    measured = integrated_loudness(track, sample_rate)
    if not math.isfinite(measured):
        return track, LoudnessResult(target_lufs, measured, 0.0, measured, true_peak_dbtp(track), False)
    gain_db = target_lufs - measured
    peak = true_peak_dbtp(track)
    limited = peak + gain_db > ceiling_dbtp
    if limited:
        gain_db = ceiling_dbtp - peak
    out = track * gain_factor(gain_db)
    result = LoudnessResult(  # gain is linear: loudness and peak move by exactly gain_db
        target_lufs=target_lufs,
        measured_lufs=measured,
        gain_db=gain_db,
        output_lufs=measured + gain_db,
        true_peak_dbtp=peak + gain_db,
        peak_limited=limited,
    )
    return out, result
