"""Sample-exact audio operations on float32 mono numpy arrays: resample, trim, fade, loudness, peaks."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pyloudnorm
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import lfilter, resample_poly

TRIM_WINDOW_SECONDS = 0.010
TRIM_BELOW_PEAK_DB = 45.0  # windows this far under the clip's loudest window count as silence
TRIM_FLOOR_DBFS = -60.0
TRIM_MARGIN_SECONDS = 0.020  # kept around speech so soft onsets and releases survive
FADE_SECONDS = 0.005
TRUE_PEAK_OVERSAMPLING = 4
TRUE_PEAK_WINDOW = 256  # samples whose peak bounds their oversampled peak (10 ms at 24 kHz)
TRUE_PEAK_BATCH = 1024  # windows oversampled in one resample_poly call
TRUE_PEAK_DENSE = 0.5  # share of windows that may pass the sample peak above which none are skipped
TRUE_PEAK_BOUND_MARGIN = 1.001  # over the float32 rounding of a 21-tap sum (about 1e-6 of it)
GATE_BLOCK_SECONDS = 0.4  # BS.1770-4 gating block
GATE_OVERLAP = 0.75
SHORT_TERM_SECONDS = 3.0  # EBU Tech 3341 short-term window
ABSOLUTE_GATE_LUFS = -70.0
LOUDNESS_CHUNK = 1 << 20  # samples K-weighted at a time (8 MB of float64)


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Polyphase resampling by the exact ratio; output length is ceil(len * to / from)."""
    if from_rate == to_rate:
        return audio.astype(np.float32, copy=False)
    ratio = Fraction(to_rate, from_rate)
    out = resample_poly(audio.astype(np.float64), ratio.numerator, ratio.denominator)
    return out.astype(np.float32)


def voiced_windows(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
    """Indexes of the 10 ms windows of ``audio`` that hold sound (not within 45 dB of silence under its
    loudest window, nor under -60 dBFS), and the window's length in samples."""
    window = max(1, round(TRIM_WINDOW_SECONDS * sample_rate))
    count = len(audio) // window
    if count == 0:
        return np.empty(0, dtype=np.int64), window
    frames = audio[: count * window].astype(np.float64).reshape(count, window)
    rms_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
    threshold = max(rms_db.max() - TRIM_BELOW_PEAK_DB, TRIM_FLOOR_DBFS)
    return np.flatnonzero(rms_db > threshold), window


def trim_silence(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Cut leading and trailing silence, keeping a short margin around the speech."""
    voiced, window = voiced_windows(audio, sample_rate)
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


def integrated_loudness(audio: np.ndarray, sample_rate: int, chunk: int = LOUDNESS_CHUNK) -> float:
    """ITU-R BS.1770-4 integrated loudness in LUFS (-inf for silence or under 400 ms).

    pyloudnorm's meter (its K-weighting filters, block bounds and gating), computed in chunks of
    ``chunk`` samples with the filter state carried over and block energies from running sums of
    squares: the same value, without a float64 copy of the whole track or a Python loop over the
    36,000 gating blocks of an hour (7 s of a 27 s assembly before, see docs/BENCHMARKS.md).
    """
    if len(audio) < int(GATE_BLOCK_SECONDS * sample_rate) + 1:
        return float("-inf")
    lower, upper = _gating_block_bounds(len(audio), sample_rate)
    sums = _running_sums_of_squares(audio, sample_rate, np.concatenate([lower, upper]), chunk)
    energies = (sums[len(lower) :] - sums[: len(lower)]) / (GATE_BLOCK_SECONDS * sample_rate)
    return _gated_loudness(energies)


def short_term_loudness(audio: np.ndarray, sample_rate: int, points: int) -> tuple[np.ndarray, np.ndarray]:
    """Short-term loudness (EBU Tech 3341: 3 s windows, ungated) at ``points`` evenly spaced centres:
    the centres in samples and the loudness in LUFS there (-inf where the window is silent)."""
    samples = len(audio)
    if samples == 0 or points < 1:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    centres = ((np.arange(points) + 0.5) * samples / points).astype(np.int64)
    half = round(SHORT_TERM_SECONDS * sample_rate / 2)
    lower, upper = np.clip(centres - half, 0, samples), np.clip(centres + half, 0, samples)
    sums = _running_sums_of_squares(audio, sample_rate, np.concatenate([lower, upper]), LOUDNESS_CHUNK)
    energies = (sums[points:] - sums[:points]) / np.maximum(upper - lower, 1)
    with np.errstate(divide="ignore"):
        return centres, -0.691 + 10.0 * np.log10(np.maximum(energies, 0.0))


def _gating_block_bounds(samples: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last-plus-one sample of each 400 ms block, 75 % overlap, as pyloudnorm bounds them."""
    step = 1.0 - GATE_OVERLAP
    count = int(np.round((samples / sample_rate - GATE_BLOCK_SECONDS) / (GATE_BLOCK_SECONDS * step))) + 1
    j = np.arange(count, dtype=np.float64)
    lower = (GATE_BLOCK_SECONDS * (j * step) * sample_rate).astype(np.int64)
    upper = (GATE_BLOCK_SECONDS * (j * step + 1) * sample_rate).astype(np.int64)
    return np.minimum(lower, samples), np.minimum(upper, samples)


def _running_sums_of_squares(
    audio: np.ndarray, sample_rate: int, positions: np.ndarray, chunk: int
) -> np.ndarray:
    """Sum of the squared K-weighted signal before each of ``positions`` (sample indices).

    The filters are the meter's own (``Meter._filters``: pyloudnorm has no public accessor), so the
    coefficients cannot drift from the reference that tests/narrate/track/test_audio.py compares with.
    """
    stages = [(f.b, f.a, f.passband_gain) for f in pyloudnorm.Meter(sample_rate)._filters.values()]
    states = [np.zeros(max(len(a), len(b)) - 1) for b, a, _ in stages]  # at rest, as lfilter starts
    order = np.argsort(positions, kind="stable")
    wanted = positions[order]
    sums = np.zeros(len(positions), dtype=np.float64)
    total = 0.0
    first = int(np.searchsorted(wanted, 0, side="right"))  # positions 0: nothing before them
    for start in range(0, len(audio), chunk):
        block = audio[start : start + chunk].astype(np.float64)
        for index, (b, a, gain) in enumerate(stages):
            block, states[index] = lfilter(b, a, block, zi=states[index])
            block *= gain
        running = np.cumsum(block * block)
        running += total
        end = start + len(block)
        last = int(np.searchsorted(wanted, end, side="right"))
        sums[order[first:last]] = running[wanted[first:last] - start - 1]
        first, total = last, float(running[-1])
    return sums


def _gated_loudness(energies: np.ndarray) -> float:
    """BS.1770-4 gating: absolute -70 LUFS, then relative -10 LU, over mono block energies."""
    with np.errstate(divide="ignore"):
        blocks = -0.691 + 10.0 * np.log10(energies)
        above_absolute = blocks >= ABSOLUTE_GATE_LUFS
        if not above_absolute.any():
            return float("-inf")
        relative = -0.691 + 10.0 * np.log10(np.mean(energies[above_absolute])) - 10.0
        gated = (blocks > relative) & (blocks > ABSOLUTE_GATE_LUFS)
        mean = np.nan_to_num(np.mean(energies[gated])) if gated.any() else 0.0
        return float(-0.691 + 10.0 * np.log10(mean))


def true_peak_dbtp(audio: np.ndarray) -> float:
    """Peak of the 4x oversampled signal (``resample_poly``, float32) in dBTP, exactly, computed only
    where it can be reached.

    Each oversampled value is a short filter of the samples around it, so it is at most the filter's
    largest phase gain (sum of |taps|, 2.24) times their peak. Windows are oversampled loudest bound
    first; the rest are skipped once their bound is under the peak found. Speech with pauses and
    dynamics skips most of its windows; a signal loud everywhere (a tone, dense noise) skips few.
    """
    samples = audio.astype(np.float32, copy=False)
    if samples.size == 0:
        return float("-inf")
    gain, reach = _oversampling_gain_and_reach()
    peaks = _window_peaks(samples, TRUE_PEAK_WINDOW)
    bounds = _with_neighbours(peaks) * np.float32(gain * TRUE_PEAK_BOUND_MARGIN)
    peak = float(peaks.max())  # the samples themselves count, as in BS.1770's true-peak meter
    candidates = np.flatnonzero(bounds > peak)
    if len(candidates) > TRUE_PEAK_DENSE * len(peaks):  # little to skip: one pass in long blocks
        peak = max(peak, _blocks_peak(samples, reach + 1))
    else:
        peak = max(peak, _windows_peak(samples, candidates, bounds, peak, reach + 1))
    return 20 * math.log10(peak) if peak > 0 else float("-inf")


def _blocks_peak(samples: np.ndarray, context: int, block: int = 1 << 18) -> float:
    """max |4x oversampled value| of the whole signal, oversampled in blocks (memory stays small)."""
    peak = 0.0
    for start in range(0, len(samples), block):
        low, high = max(0, start - context), min(len(samples), start + block + context)
        oversampled = resample_poly(samples[low:high], TRUE_PEAK_OVERSAMPLING, 1)
        inner = oversampled[(start - low) * TRUE_PEAK_OVERSAMPLING :][: block * TRUE_PEAK_OVERSAMPLING]
        peak = max(peak, _abs_max(inner))
    return peak


def _windows_peak(
    samples: np.ndarray, candidates: np.ndarray, bounds: np.ndarray, peak: float, context: int
) -> float:
    """max(peak, |4x oversampled value| over the candidate windows whose bound can still pass it)."""
    order = candidates[np.argsort(bounds[candidates], kind="stable")[::-1]]
    for first in range(0, len(order), TRUE_PEAK_BATCH):
        batch = order[first : first + TRUE_PEAK_BATCH]
        batch = batch[bounds[batch] > peak]
        if batch.size == 0:
            break  # sorted: no later window can pass the peak either
        peak = max(peak, _oversampled_peak(samples, batch, context))
    return peak


@functools.cache
def _oversampling_gain_and_reach() -> tuple[float, int]:
    """The largest sum of |taps| over the 4 phases of resample_poly's filter, and how many samples
    either side of its own a 4x value depends on; read off its impulse response."""
    half = 8 * TRUE_PEAK_OVERSAMPLING * 4
    impulse = np.zeros(2 * half + 1, dtype=np.float32)
    impulse[half] = 1
    response = np.abs(resample_poly(impulse, TRUE_PEAK_OVERSAMPLING, 1).astype(np.float64))
    gain = max(
        float(response[phase::TRUE_PEAK_OVERSAMPLING].sum()) for phase in range(TRUE_PEAK_OVERSAMPLING)
    )
    taps = np.flatnonzero(response) / TRUE_PEAK_OVERSAMPLING - half
    reach = math.ceil(max(-taps.min(), taps.max()))
    if reach >= min(half, TRUE_PEAK_WINDOW):  # the bounds assume the neighbouring windows cover it
        raise RuntimeError(f"resample_poly's filter reaches {reach} samples, more than this bound allows")
    return max(gain, 1.0), reach


def _window_peaks(samples: np.ndarray, window: int) -> np.ndarray:
    """max |sample| of each ``window`` samples (the last window may be shorter), in chunks."""
    chunk = window * 4096
    parts = []
    for start in range(0, len(samples), chunk):
        part = np.abs(samples[start : start + chunk])
        parts.append(np.maximum.reduceat(part, np.arange(0, len(part), window)))
    return np.concatenate(parts)


def _with_neighbours(peaks: np.ndarray) -> np.ndarray:
    """Each window's peak or its neighbours', whichever is larger."""
    wider = peaks.copy()
    np.maximum(wider[1:], peaks[:-1], out=wider[1:])
    np.maximum(wider[:-1], peaks[1:], out=wider[:-1])
    return wider


def _oversampled_peak(samples: np.ndarray, windows: np.ndarray, context: int) -> float:
    """max |4x oversampled value| over ``windows``, each oversampled with ``context`` samples either
    side (zeros past the ends, as resample_poly pads): the very values a whole-signal pass gives."""
    width, up = TRUE_PEAK_WINDOW, TRUE_PEAK_OVERSAMPLING
    index = windows[:, None] * width + np.arange(-context, width + context)
    inside = (index >= 0) & (index < len(samples))
    segments = np.where(inside, samples[np.clip(index, 0, len(samples) - 1)], np.float32(0))
    oversampled = resample_poly(segments, up, 1, axis=1)[:, up * context : up * (context + width)]
    past_end = windows * width + width - len(samples)  # a short last window: its tail is no signal
    for row in np.flatnonzero(past_end > 0):
        oversampled[row, up * (width - past_end[row]) :] = 0
    return _abs_max(oversampled)


def _abs_max(values: np.ndarray) -> float:
    return max(float(values.max()), -float(values.min())) if values.size else 0.0


def gain_factor(gain_db: float) -> np.float32:
    return np.float32(10 ** (gain_db / 20))


LIMITER_RAMP_SECONDS = 0.010  # the gain glides into and out of a reduction over this long
LIMITER_HOLD_SECONDS = 0.005  # and holds it this long either side of the peak
LIMITER_MARGIN_DB = 0.05  # aimed under the ceiling: a gliding gain moves inter-sample peaks a little
LIMITER_BLOCK = 1 << 18  # samples limited at a time (memory stays small on an hour's track)


@dataclass(frozen=True)
class LimiterResult:
    max_reduction_db: float  # 0 when the limiter did nothing
    mean_reduction_db: float  # over the samples it reduced
    limited_samples: int


def limit_true_peak(track: np.ndarray, rate: int, ceiling_dbtp: float) -> LimiterResult:
    """Bring every 4x oversampled peak of ``track`` (float32, changed in place) under the ceiling with
    a look-ahead limiter: the gain at each sample is at most ceiling / its oversampled peak, held
    around each peak and glided into and out of with raised edges, so it is never below what the
    neighbourhood's loudest peak needs and never changes abruptly. Offline, so the look-ahead is free.

    Only windows whose oversampling bound can pass the threshold are looked at, as in
    :func:`true_peak_dbtp`; the rest of the track is untouched.
    """
    threshold = 10 ** ((ceiling_dbtp - LIMITER_MARGIN_DB) / 20)
    filter_gain, reach = _oversampling_gain_and_reach()
    peaks = _window_peaks(track, TRUE_PEAK_WINDOW)
    bounds = _with_neighbours(peaks) * np.float32(filter_gain * TRUE_PEAK_BOUND_MARGIN)
    over = np.flatnonzero(bounds > threshold)
    if over.size == 0:
        return LimiterResult(0.0, 0.0, 0)
    ramp = max(1, round(LIMITER_RAMP_SECONDS * rate)) | 1  # odd: a centred moving average
    hold = ramp + 2 * max(0, round(LIMITER_HOLD_SECONDS * rate))
    margin = hold + ramp + reach + 1  # samples either side a block's gain depends on
    reductions: list[np.ndarray] = []
    for low, high in _regions(over, len(track), margin):
        original_tail: np.ndarray | None = None  # this region's samples before the last block's gain
        for start in range(low, high, LIMITER_BLOCK):
            end = min(high, start + LIMITER_BLOCK)
            lo, hi = max(0, start - margin), min(len(track), end + margin)
            source = track[lo:hi].copy()
            if original_tail is not None:  # the left margin was already limited: use what it was
                source[: start - lo] = original_tail[-(start - lo) :]
            needed = np.minimum(1.0, threshold / np.maximum(_sample_true_peaks(source), 1e-30))
            gain = uniform_filter1d(minimum_filter1d(needed, hold, mode="nearest"), ramp, mode="nearest")
            gain = np.minimum(gain, needed)[start - lo : end - lo]  # float rounding of the average
            original_tail = track[max(lo, end - margin) : end].copy()
            track[start:end] *= gain.astype(np.float32)
            reduced = gain[gain < 1.0]
            if reduced.size:
                reductions.append(-20 * np.log10(reduced))
    if not reductions:
        return LimiterResult(0.0, 0.0, 0)
    every = np.concatenate(reductions)
    return LimiterResult(float(every.max()), float(every.mean()), int(every.size))


def _regions(windows: np.ndarray, samples: int, margin: int) -> list[tuple[int, int]]:
    """Sample ranges covering the given windows and ``margin`` samples either side, merged."""
    regions: list[tuple[int, int]] = []
    for window in windows:
        low = max(0, int(window) * TRUE_PEAK_WINDOW - margin)
        high = min(samples, (int(window) + 1) * TRUE_PEAK_WINDOW + margin)
        if regions and low <= regions[-1][1]:
            regions[-1] = (regions[-1][0], max(regions[-1][1], high))
        else:
            regions.append((low, high))
    return regions


def _sample_true_peaks(samples: np.ndarray) -> np.ndarray:
    """Per sample, the largest |value| of the 4x oversampled signal from it to the next sample, and
    of the previous sample's span (an inter-sample peak belongs to both samples around it)."""
    up = TRUE_PEAK_OVERSAMPLING
    oversampled = np.abs(resample_poly(samples.astype(np.float32), up, 1))[: len(samples) * up]
    spans = oversampled.reshape(len(samples), up).max(axis=1)
    return np.maximum(spans, np.concatenate([[0.0], spans[:-1]]))
