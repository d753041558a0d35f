"""Recordings for the voice tests, made once a session from the offline Piper voice (noise 0: the
same samples every run): the example memo's sentences, laid out as each test needs them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from narrate.testing.memo import EXAMPLE_OPENING, EXAMPLE_SENTENCES, RATE, compose, silence, speak
from narrate.track.audio import voiced_windows

FULL_TRANSCRIPT = " ".join([EXAMPLE_OPENING, *EXAMPLE_SENTENCES])


@dataclass(frozen=True)
class Laid:
    """A recording and where its speech is: [start, end) sample spans, one per spoken part."""

    audio: np.ndarray
    spans: list[tuple[int, int]]


def lay_out(parts: list[np.ndarray], pauses: list[float], tone_dbfs: float = -62.0) -> Laid:
    """``parts`` spoken one after another, ``pauses[k]`` seconds after part k, room tone under all."""
    pieces: list[np.ndarray] = [silence(0.4)]
    spans: list[tuple[int, int]] = []
    position = len(pieces[0])
    for part, pause in zip(parts, pauses, strict=True):
        first, last = _voiced(part)
        spans.append((position + first, position + last))
        pieces += [part, silence(pause)]
        position += len(part) + len(pieces[-1])
    return Laid(compose(pieces, tone_dbfs), spans)


def _voiced(part: np.ndarray) -> tuple[int, int]:
    """Where a spoken part's voice starts and ends (Piper leaves a little silence at each end)."""
    voiced, window = voiced_windows(part, RATE)
    return int(voiced[0]) * window, (int(voiced[-1]) + 1) * window


@cache
def spoken_sentences() -> tuple[np.ndarray, ...]:
    """The example memo's opening ("So, um.") and its four sentences, spoken (once a session)."""
    return tuple(speak([EXAMPLE_OPENING, *EXAMPLE_SENTENCES]))
