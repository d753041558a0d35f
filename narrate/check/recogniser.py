"""Speech to words with a recogniser this project did not write: PocketSphinx's US English model, which
ships inside its wheel (offline, nothing downloaded). Weak on its own, but it tells speech from noise
and a person-like voice from a formant synthesiser; its use here is comparison, not transcription."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from narrate.track.audio import resample

RECOGNISER_RATE = 16000


class Recogniser(Protocol):
    name: str
    languages: frozenset[str]

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> str:
        """What was said in float mono ``audio``, as lower-case words."""
        ...


class PocketSphinx:
    """PocketSphinx 5 with its bundled en-us acoustic model, dictionary and language model."""

    name = "pocketsphinx-5.1.1 en-us"
    languages = frozenset({"english"})

    def __init__(self) -> None:
        from pocketsphinx import Decoder  # 0.5 s to load its model: only when a check runs

        self._decoder = Decoder(samprate=RECOGNISER_RATE, loglevel="FATAL")

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> str:
        samples = resample(np.asarray(audio, dtype=np.float32), sample_rate, RECOGNISER_RATE)
        pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        self._decoder.start_utt()
        self._decoder.process_raw(pcm, full_utt=True)
        self._decoder.end_utt()
        hypothesis = self._decoder.hyp()
        return hypothesis.hypstr if hypothesis is not None else ""
