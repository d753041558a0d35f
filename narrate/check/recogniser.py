"""Speech to words with a recogniser this project did not write: PocketSphinx's US English model, which
ships inside its wheel (offline, nothing downloaded). Weak on its own, but it tells speech from noise
and a person-like voice from a formant synthesiser; its use here is comparison, not transcription."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from narrate.track.audio import resample

RECOGNISER_RATE = 16000
# Half the work of the full search (every other frame, fewer Gaussians and states): measured on the demo's
# Piper takes it hears 50-75% of each segment's words, against 54-90% in full, in 0.08x real time.
QUICK = {"ds": 2, "topn": 2, "maxhmmpf": 3000}


class Recogniser(Protocol):
    name: str
    languages: frozenset[str]

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> str:
        """What was said in float mono ``audio``, as lower-case words."""
        ...


def recogniser_pcm(audio: np.ndarray, sample_rate: int) -> bytes:
    """Float samples as PocketSphinx reads them: 16-bit little-endian PCM at its rate."""
    samples = resample(np.asarray(audio, dtype=np.float32), sample_rate, RECOGNISER_RATE)
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


class PocketSphinx:
    """PocketSphinx 5 with its bundled en-us acoustic model, dictionary and language model."""

    languages = frozenset({"english"})

    def __init__(self, quick: bool = False) -> None:
        from pocketsphinx import Decoder  # 0.5 s to load its model: only when a check runs

        self.name = "pocketsphinx-5.1.1 en-us" + (" (quick)" if quick else "")
        self._decoder = Decoder(samprate=RECOGNISER_RATE, loglevel="FATAL", **(QUICK if quick else {}))

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> str:
        self._decoder.start_utt()
        self._decoder.process_raw(recogniser_pcm(audio, sample_rate), full_utt=True)
        self._decoder.end_utt()
        hypothesis = self._decoder.hyp()
        return hypothesis.hypstr if hypothesis is not None else ""
