"""Loudness measured in chunks is pyloudnorm's measure, whatever the chunk size or sample rate."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest

from narrate.audio import integrated_loudness


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
