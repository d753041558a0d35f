"""The track's loudness: each clip levelled to the target under the true-peak ceiling, then the
joined track brought to the target (ITU-R BS.1770-4 loudness, 4x oversampled true peak); the numbers
the timeline reports."""

from __future__ import annotations

import math
import statistics
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from narrate.script import OutputOptions
from narrate.track.audio import (
    LimiterResult,
    gain_factor,
    integrated_loudness,
    limit_true_peak,
    true_peak_dbtp,
)
from narrate.track.mp3 import Mp3Encoder
from narrate.track.timeline import LoudnessResult

LOUDNESS_ROUNDS = 6  # gain, limit, measure: on speech the third round lands within the tolerance
LOUDNESS_TOLERANCE_LU = 0.05
LEVELLED_TOLERANCE_LU = 0.25  # a track of levelled clips this close to its target gets no more gain
NOT_LIMITED = LimiterResult(0.0, 0.0, 0)
LEVEL_MAX_SPREAD_DB = 10.0  # a clip's levelling gain stays this close to the median clip's


@dataclass(frozen=True)
class ClipLevel:
    lufs: float | None  # the clip as it came (None: too short or silent to measure)
    gain_db: float  # what levelling applied to it
    limiter: LimiterResult  # what limiting it to the ceiling took
    true_peak_dbtp: float  # once levelled (and limited)


def level_clips(
    clips: list[np.ndarray], rate: int, output: OutputOptions, workers: int = 2
) -> list[ClipLevel]:
    """Each clip to the track's loudness under its true-peak ceiling, in place, before the track's
    gain, so segments (and re-rolled takes) do not swing in level, and a peaky clip is limited alone
    rather than pulling the whole track down. A clip too short to measure (under 0.4 s) or silent
    takes the median clip's gain; no clip moves more than :data:`LEVEL_MAX_SPREAD_DB` from it (a
    whisper stays quieter than a shout, and a clip of breath is not raised to speech). Clips are
    measured by a few threads (the filters release the GIL)."""
    target, ceiling = output.loudness_lufs, output.true_peak_dbtp
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="level") as pool:
        measured = list(pool.map(lambda clip: integrated_loudness(clip, rate), clips))
        gains = [target - lufs for lufs in measured if math.isfinite(lufs)]
        middle = statistics.median(gains) if gains else 0.0

        def level(clip: np.ndarray, lufs: float) -> ClipLevel:
            gain = target - lufs if math.isfinite(lufs) else middle
            gain = min(max(gain, middle - LEVEL_MAX_SPREAD_DB), middle + LEVEL_MAX_SPREAD_DB)
            clip *= gain_factor(gain)
            peak, limiter = true_peak_dbtp(clip), NOT_LIMITED
            if peak > ceiling and math.isfinite(lufs):
                extra, _, peak, limiter = limit_to_loudness(clip, rate, lufs + gain, ceiling)
                gain += extra
            elif peak > ceiling:
                limiter, peak = limit_true_peak(clip, rate, ceiling), true_peak_dbtp(clip)
            return ClipLevel(lufs if math.isfinite(lufs) else None, gain, limiter, peak)

        return list(pool.map(level, clips, measured))


def combined(results: list[LimiterResult]) -> LimiterResult:
    """What several limiter passes (the clips', the track's) did in all."""
    samples = sum(r.limited_samples for r in results)
    if samples == 0:
        return NOT_LIMITED
    mean = sum(r.mean_reduction_db * r.limited_samples for r in results) / samples
    return LimiterResult(max(r.max_reduction_db for r in results), mean, samples)


def normalise(
    track: np.ndarray,
    rate: int,
    target_lufs: float,
    ceiling_dbtp: float,
    mp3: Mp3Encoder | None = None,
    levels: list[ClipLevel] | None = None,
) -> LoudnessResult:
    """The track to the target loudness under the true-peak ceiling, in place: one constant gain, then,
    where peaks would pass the ceiling, a true-peak limiter, with the gain raised until the limited
    track measures the target (within :data:`LOUDNESS_TOLERANCE_LU`).

    The gain is applied first and ``mp3`` starts encoding the gained track at once, while its true
    peak is measured (LAME on one core, the peak on the other); only when the limiter is needed is the
    encode cancelled and started again on the limited track. ``levels`` are the clips' levelling
    when the track was joined from levelled clips (:func:`level_clips`): the loudest clip's true peak
    is the track's (clips are faded at their edges, so joining them makes no new peak), which saves
    measuring it again; such a track is left as it is when it already measures within
    :data:`LEVELLED_TOLERANCE_LU` of the target, and ``mp3`` starts on it before it is measured. The
    clips' limiting counts in the result.
    """
    levelled = levels is not None
    known_peak = max((level.true_peak_dbtp for level in levels or []), default=float("-inf"))
    earlier = [level.limiter for level in levels or []]
    if levelled and mp3 is not None:
        mp3.start(track)  # levelled clips usually make a track on target already
    measured = integrated_loudness(track, rate)

    def result(
        gain_db: float, output: float, peak: float, limiter: LimiterResult = NOT_LIMITED
    ) -> LoudnessResult:
        done = combined([*earlier, limiter])
        return LoudnessResult(
            target_lufs, measured, gain_db, output, peak, done.limited_samples > 0,
            limiter_max_reduction_db=done.max_reduction_db,
            limiter_mean_reduction_db=done.mean_reduction_db,
            limited_seconds=done.limited_samples / rate,
        )  # fmt: skip

    on_target = not math.isfinite(measured) or abs(target_lufs - measured) <= LEVELLED_TOLERANCE_LU
    if levelled and known_peak <= ceiling_dbtp and on_target:
        return result(0.0, measured, known_peak)
    if levelled and mp3 is not None:
        mp3.cancel()
    gain_db = target_lufs - measured if math.isfinite(measured) else 0.0  # silence: left as it is
    track *= gain_factor(gain_db)
    if mp3 is not None:
        mp3.start(track)
    peak = known_peak + gain_db if levelled else true_peak_dbtp(track)
    if not math.isfinite(measured) or peak <= ceiling_dbtp:
        return result(gain_db, measured + gain_db, peak)
    if mp3 is not None:
        mp3.cancel()
    extra_db, output, peak, limiter = limit_to_loudness(track, rate, target_lufs, ceiling_dbtp)
    if mp3 is not None:
        mp3.start(track)
    return result(gain_db + extra_db, output, peak, limiter)


def limit_to_loudness(
    track: np.ndarray, rate: int, target_lufs: float, ceiling_dbtp: float
) -> tuple[float, float, float, LimiterResult]:
    """Limit ``track`` (in place) to the ceiling, raising its gain until, limited, it measures the
    target: (the gain added, the loudness, the true peak, what the limiter did)."""
    gained = track.copy()
    extra_db, limiter, output = 0.0, NOT_LIMITED, float("-inf")
    tried: list[tuple[float, float]] = []  # (extra gain, loudness once limited)
    for _ in range(LOUDNESS_ROUNDS):  # limiting lowers the loudness: raise the gain, limit again
        np.multiply(gained, gain_factor(extra_db), out=track)
        limiter = limit_true_peak(track, rate, ceiling_dbtp)
        output = integrated_loudness(track, rate)
        tried.append((extra_db, output))
        if not math.isfinite(output) or abs(output - target_lufs) <= LOUDNESS_TOLERANCE_LU:
            break
        extra_db = next_gain(tried, target_lufs)
    del gained
    peak = true_peak_dbtp(track)
    if peak > ceiling_dbtp:  # the limiter aims just under the ceiling; never publish above it
        track *= gain_factor(ceiling_dbtp - peak)
        extra_db, output, peak = extra_db + ceiling_dbtp - peak, output + ceiling_dbtp - peak, ceiling_dbtp
    return extra_db, output, peak, limiter


def next_gain(tried: list[tuple[float, float]], target_lufs: float) -> float:
    """The next extra gain to try: a secant step through the last two tries (each dB of gain gives
    less than a dB of loudness once limited), a plain step from the first."""
    gain, loudness = tried[-1]
    slope = 1.0
    if len(tried) > 1:
        previous_gain, rise = tried[-2][0], loudness - tried[-2][1]
        if gain != previous_gain and rise > 0:
            slope = min(1.0, max(0.1, rise / (gain - previous_gain)))
    return gain + (target_lufs - loudness) / slope
