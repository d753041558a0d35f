"""Loudness measured in chunks is pyloudnorm's measure, whatever the chunk size or sample rate; the
true peak, oversampled only where it can be reached, is the whole signal's, bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pyloudnorm
import pytest
from scipy.signal import resample_poly

from narrate.track import audio
from narrate.track.audio import integrated_loudness, true_peak_dbtp


@pytest.mark.parametrize(("rate", "samples"), [(24000, 24000 * 7), (22050, 22050 * 3 + 13), (48000, 19201)])
@pytest.mark.parametrize("chunk", [1 << 20, 1000, 4097])
def test_chunked_loudness_equals_pyloudnorm(rate: int, samples: int, chunk: int) -> None:
    rng = np.random.default_rng(rate + samples)
    t = np.arange(samples) / rate
    audio = (0.2 * rng.standard_normal(samples) * (0.35 + 0.3 * np.sin(2 * np.pi * 4 * t) ** 2)).astype(
        np.float32
    )
    audio[: samples // 3] *= 0.001  # a quiet stretch the relative gate drops
    expected = pyloudnorm.Meter(rate).integrated_loudness(audio.astype(np.float64))
    assert integrated_loudness(audio, rate, chunk) == pytest.approx(expected, abs=1e-9)


def test_silence_and_short_clips_have_no_loudness() -> None:
    assert integrated_loudness(np.zeros(48000, dtype=np.float32), 24000) == float("-inf")
    assert integrated_loudness(np.ones(100, dtype=np.float32), 24000) == float("-inf")


def oversampled_reference(audio: np.ndarray) -> float:
    """The whole signal oversampled in one float32 pass: the value true_peak_dbtp must give, bit for bit."""
    peak = max(float(np.max(np.abs(resample_poly(audio, 4, 1)))), float(np.max(np.abs(audio))))
    return 20 * math.log10(peak) if peak > 0 else float("-inf")


def tone_between_samples(rate: int = 24000, seconds: float = 1.0) -> np.ndarray:
    """fs/4 at 45 degrees, amplitude 0.5: every sample at +-0.354, the waveform peaking between them
    (faded in and out over 50 ms, so its abrupt ends do not ring)."""
    n = np.arange(int(rate * seconds))
    fade = np.clip(np.minimum(n, n.size - 1 - n) / (0.05 * rate), 0, 1)
    return (0.5 * fade * np.sin(np.pi / 2 * n + np.pi / 4)).astype(np.float32)


def speech_with_pauses(seconds: float, seed: int, rate: int = 24000) -> np.ndarray:
    """Syllable bursts of varying loudness with pauses between phrases: most windows far under the peak."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    envelope = np.sin(2 * np.pi * 3 * t) ** 8 * (0.2 + 0.8 * rng.random(t.size // rate + 1)[t.astype(int)])
    envelope *= np.sin(2 * np.pi * 0.25 * t) > -0.3  # pauses
    return (0.3 * envelope * rng.standard_normal(t.size)).astype(np.float32)


def signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    clicks = np.zeros(24000 * 2, dtype=np.float32)
    clicks[[0, 777, 30001, len(clicks) - 1]] = [0.5, -0.9, 0.7, -0.95]  # peaks at both ends too
    edge = speech_with_pauses(1.0, 3)
    edge[-1] = 0.99  # the peak in a short last window
    return {
        "tone at fs/4, 45 degrees": tone_between_samples(),
        "speech with pauses": speech_with_pauses(6.0, 1),
        "dense noise": (0.1 * rng.standard_normal(24000 * 3)).astype(np.float32),
        "clicks": clicks,
        "speech, peak in a short last window": edge[: 24000 - 77],
        "one sample": np.array([0.25], dtype=np.float32),
        "shorter than a window": (0.3 * rng.standard_normal(100)).astype(np.float32),
        "inter-sample peak in a quiet track": np.concatenate(
            [
                0.01 * tone_between_samples(seconds=2.0),
                tone_between_samples(seconds=0.01),
                np.zeros(999, np.float32),
            ]
        ),
    }


@pytest.mark.parametrize("name", list(signals()))
@pytest.mark.parametrize("dense", [0.0, audio.TRUE_PEAK_DENSE, 1.0])  # always, as shipped, never one pass
def test_true_peak_is_the_whole_signal_oversampled(
    name: str, dense: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audio, "TRUE_PEAK_DENSE", dense)
    signal = signals()[name]
    assert true_peak_dbtp(signal) == oversampled_reference(signal)


def test_true_peak_finds_the_peak_between_samples() -> None:
    tone = tone_between_samples()
    assert 20 * math.log10(np.max(np.abs(tone))) == pytest.approx(-9.03, abs=0.01)  # samples at 0.354
    assert true_peak_dbtp(tone) == pytest.approx(-6.02, abs=0.05)  # the waveform at 0.5


def test_true_peak_oversamples_only_windows_that_can_reach_it(monkeypatch: pytest.MonkeyPatch) -> None:
    windows: list[int] = []
    real = audio._oversampled_peak

    def counting(samples: np.ndarray, batch: np.ndarray, context: int) -> float:
        windows.extend(batch.tolist())
        return real(samples, batch, context)

    monkeypatch.setattr(audio, "_oversampled_peak", counting)
    signal = speech_with_pauses(20.0, 2)
    assert true_peak_dbtp(signal) == oversampled_reference(signal)
    total = -(-len(signal) // audio.TRUE_PEAK_WINDOW)
    assert 0 < len(windows) < 0.2 * total
    assert len(set(windows)) == len(windows)


def test_silence_and_empty_input_have_no_true_peak() -> None:
    assert true_peak_dbtp(np.zeros(48000, dtype=np.float32)) == float("-inf")
    assert true_peak_dbtp(np.zeros(0, dtype=np.float32)) == float("-inf")
