"""Any recording a person has (a phone's voice memo, an mp3, a video) as mono float samples at the
reference clip's rate, decoded by pydub through the ffmpeg binary of the ``imageio-ffmpeg`` wheel.

pydub's ``AudioSegment.from_file`` asks ffprobe (or avprobe) what a non-WAV file holds unless it is
given the codec, and neither ships in that wheel. So the file's audio codec is read from ffmpeg's own
description of it first and handed to pydub: no prober is ever needed.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from narrate.errors import ClipRejected, VideoError
from narrate.track.audio import resample
from narrate.video.ffmpeg import Ffmpeg, codecs_described, describe

REFERENCE_RATE = 24000  # Qwen3-TTS works at 24 kHz: the clip is written at that rate, in mono
ACCEPTED = "m4a/AAC, mp3, ogg/opus, wav, flac, or the audio of an mp4/mov/webm video"
if TYPE_CHECKING:
    from pydub import AudioSegment

_CONTAINER = re.compile(r"Input #0, ([^,]+(?:,[^,]+)*?), from")


@dataclass(frozen=True)
class Recording:
    """A decoded recording: mono float32 at :data:`REFERENCE_RATE`, and what it was."""

    samples: np.ndarray
    codec: str  # the audio codec ffmpeg names (aac, mp3, opus, pcm_s16le, ...)
    container: str  # the container format ffmpeg names (mov,mp4,m4a,..., wav, ogg, ...)
    channels: int
    source_rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / REFERENCE_RATE


def decode_recording(path: Path, ff: Ffmpeg | None = None) -> Recording:
    """The first audio stream of ``path``; ClipRejected naming the format when there is none."""
    ff = ff or Ffmpeg()
    if not path.is_file():
        raise ClipRejected(str(path), ["file not found; check the path"])
    try:
        description = describe(ff, path)
    except VideoError:
        kind = path.suffix.lower() or "without an extension"
        raise ClipRejected(
            str(path), [f"not a recording ffmpeg can decode (a {kind} file); give {ACCEPTED}"]
        ) from None
    container, codecs = _container(description), codecs_described(description)
    audio = [codec for kind, codec in codecs if kind == "audio"]
    if not audio:
        held = ", ".join(f"{kind} {codec}" for kind, codec in codecs) or "no streams"
        raise ClipRejected(
            str(path), [f"has no audio (ffmpeg reads it as {container}: {held}); give {ACCEPTED}"]
        )
    segment = _from_file(ff, path, audio[0])
    width, channels, rate = segment.sample_width, segment.channels, segment.frame_rate
    pcm = np.frombuffer(segment.raw_data, dtype="u1" if width == 1 else f"<i{width}").reshape(-1, channels)
    centred = pcm.astype(np.float32) - (128.0 if width == 1 else 0.0)  # 8-bit WAV is unsigned
    mono = centred.mean(axis=1) / float(2 ** (8 * width - 1))
    return Recording(resample(mono, rate, REFERENCE_RATE), audio[0], container, channels, rate)


def _from_file(ff: Ffmpeg, path: Path, codec: str) -> AudioSegment:
    with warnings.catch_warnings():  # at import pydub warns of no ffmpeg on PATH (it uses ours) and
        warnings.simplefilter("ignore", RuntimeWarning)  # of audioop's end (audioop-lts on 3.13)
        warnings.simplefilter("ignore", DeprecationWarning)
        from pydub import AudioSegment
        from pydub.exceptions import CouldntDecodeError

    AudioSegment.converter = ff.exe
    try:
        return AudioSegment.from_file(str(path), codec=codec)
    except CouldntDecodeError as exc:
        last = str(exc).strip().splitlines()[-1] if str(exc).strip() else "no message"
        problem = f"its {codec} audio could not be decoded ({last}); give {ACCEPTED}"
        raise ClipRejected(str(path), [problem]) from None


def _container(description: str) -> str:
    match = _CONTAINER.search(description)
    return match.group(1) if match else "unknown format"
