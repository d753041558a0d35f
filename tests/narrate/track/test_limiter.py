"""The true-peak limiter: every oversampled peak under the ceiling (by an independent meter too), the
gain never above 1 and never abrupt, nothing touched away from the peaks, the same result in blocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from narrate.track import audio
from narrate.track.audio import limit_true_peak, true_peak_dbtp
from tests.narrate.track.meter import ebur128

RATE = 24000


def peaky_speech(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced tone with syllables and plosive-like bursts near full scale, as eSpeak's clips have."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    voiced = 0.35 * np.sin(2 * np.pi * 140 * t) * (0.4 + 0.6 * np.sin(2 * np.pi * 3.5 * t) ** 2)
    signal = voiced + 0.03 * rng.standard_normal(len(t))
    for start in rng.integers(0, len(t) - 200, size=max(1, round(seconds * 3))):
        signal[start : start + 120] += 0.9 * np.hanning(120) * np.sign(rng.standard_normal())
    return signal.astype(np.float32)


def test_every_peak_ends_under_the_ceiling_by_an_independent_meter(tmp_path: Path) -> None:
    track = peaky_speech(8.0)
    assert true_peak_dbtp(track) > 0.0  # over full scale between samples
    result = limit_true_peak(track, RATE, -1.0)
    assert result.max_reduction_db > 1.0 and result.limited_samples > 0
    assert true_peak_dbtp(track) <= -1.0
    path = tmp_path / "limited.wav"
    sf.write(path, track, RATE, subtype="FLOAT")
    assert ebur128(path).true_peak_dbtp <= -1.0 + 0.05  # ffmpeg's meter, to its tenth of a dB


def test_the_gain_is_at_most_one_and_glides() -> None:
    original = peaky_speech(4.0, seed=1)
    limited = original.copy()
    limit_true_peak(limited, RATE, -3.0)
    loud = np.abs(original) > 0.05  # where the gain can be read off the samples
    gain = np.ones_like(original)
    gain[loud] = limited[loud] / original[loud]
    assert gain.max() <= 1.0 + 1e-6
    steps = np.abs(np.diff(gain))[loud[1:] & loud[:-1]]
    assert steps.max() < 0.02  # no step: a click would be a jump of the gain between two samples


def test_away_from_the_peaks_nothing_changes() -> None:
    track = (0.2 * np.sin(2 * np.pi * 200 * np.arange(RATE * 3) / RATE)).astype(np.float32)
    track[RATE + 500] = 0.99  # one click in the middle second
    before = track.copy()
    result = limit_true_peak(track, RATE, -1.0)
    assert result.limited_samples > 0
    assert np.array_equal(track[: RATE // 2], before[: RATE // 2])
    assert np.array_equal(track[2 * RATE :], before[2 * RATE :])
    assert limit_true_peak(before * np.float32(0.5), RATE, -1.0).limited_samples == 0


def test_a_track_limited_in_blocks_is_limited_as_one(monkeypatch: pytest.MonkeyPatch) -> None:
    track = peaky_speech(6.0, seed=2)
    whole = track.copy()
    limit_true_peak(whole, RATE, -1.0)
    monkeypatch.setattr(audio, "LIMITER_BLOCK", 5000)  # many blocks, each peak near some block edge
    blocks = track.copy()
    limit_true_peak(blocks, RATE, -1.0)
    assert np.allclose(blocks, whole, atol=1e-6)
