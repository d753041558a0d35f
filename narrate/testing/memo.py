"""Generated phone memos: the stand-in for a person's own recording in the example voice and the tests.

Speech from the offline Piper voice (noise 0: the same words give the same samples), laid out as people
record: a breath, room tone under everything, pauses between sentences; encoded by the bundled ffmpeg
into the format its file name asks for (m4a/AAC as a phone saves it, mp3, ogg/opus, wav, flac, or an
mp4/mov video with the audio beside a picture).

``python -m narrate.testing.memo OUT.m4a`` writes the example's memo and prints its transcript.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import lfilter

from narrate.track.audio import gain_factor, resample
from narrate.video.ffmpeg import Ffmpeg

RATE = 24000
ROOM_TONE_DBFS = -62.0
SPEECH_PEAK_DBFS = -6.0
EXAMPLE_OPENING = "So, um."
EXAMPLE_SENTENCES = (
    "Hi, this is a short recording of my voice, made on my phone in a quiet room.",
    "I am reading a few sentences at an easy pace, the way I would narrate a product demo.",
    "Connect a data source, pick the tables you need, and the first chart appears at once.",
    "That is all it takes, and your whole team can use it today.",
)
_ENCODE = {
    ".m4a": ["-c:a", "aac", "-b:a", "96k", "-ar", "48000"],
    ".mp3": ["-c:a", "libmp3lame", "-b:a", "96k", "-ar", "44100"],
    ".ogg": ["-c:a", "libopus", "-b:a", "48k", "-ar", "48000"],
    ".opus": ["-c:a", "libopus", "-b:a", "48k", "-ar", "48000"],
    ".wav": ["-c:a", "pcm_s16le"],
    ".flac": ["-c:a", "flac", "-ar", "44100"],
}
_VIDEO = [".mp4", ".mov"]


def speak(texts: list[str], pitch_scale: float = 1.0) -> list[np.ndarray]:
    """Each text spoken by Piper's joe voice at 24 kHz, peak at SPEECH_PEAK_DBFS. ``pitch_scale`` > 1
    raises the voice (and quickens it) by resampling: a second, higher voice for the tests."""
    from model_server.engines.piper import PiperEngine
    from model_server.protocol import PiperVoiceRequest

    engine = PiperEngine()
    voice = PiperVoiceRequest(mode="piper", noise_scale=0.0, noise_w_scale=0.0, sentence_silence=0.3)
    spoken = []
    for text in texts:
        audio = engine.speak(text, voice)
        audio = resample(audio, round(engine.sample_rate * pitch_scale), RATE)
        spoken.append(audio * gain_factor(SPEECH_PEAK_DBFS) / max(float(np.abs(audio).max()), 1e-9))
    return spoken


def room_tone(seconds: float, level_dbfs: float = ROOM_TONE_DBFS, seed: int = 0) -> np.ndarray:
    """Pinkish noise (white noise through a one-pole low-pass) at ``level_dbfs`` RMS."""
    noise = lfilter([1.0], [1.0, -0.95], np.random.default_rng(seed).standard_normal(round(seconds * RATE)))
    return (noise / np.sqrt(np.mean(noise**2)) * 10 ** (level_dbfs / 20)).astype(np.float32)


def breath(seconds: float = 0.35, level_dbfs: float = -38.0, seed: int = 1) -> np.ndarray:
    """An in-breath: band-limited noise under a rising and falling envelope."""
    noise = lfilter(
        [1.0, -1.0], [1.0, -0.6], np.random.default_rng(seed).standard_normal(round(seconds * RATE))
    )
    envelope = np.sin(np.linspace(0, np.pi, len(noise))) ** 2
    shaped = noise * envelope
    return (shaped / np.sqrt(np.mean(shaped**2)) * 10 ** (level_dbfs / 20)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * RATE), dtype=np.float32)


def compose(parts: list[np.ndarray], tone_dbfs: float = ROOM_TONE_DBFS, seed: int = 0) -> np.ndarray:
    """The parts one after another with room tone under all of them."""
    joined = np.concatenate(parts).astype(np.float32)
    return joined + room_tone(len(joined) / RATE, tone_dbfs, seed)


def encode(audio: np.ndarray, out: Path, ff: Ffmpeg | None = None) -> Path:
    """``audio`` (mono, 24 kHz) written as the format ``out``'s suffix names."""
    ff = ff or Ffmpeg()
    suffix = out.suffix.lower()
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "source.wav"
        sf.write(source, audio, RATE, subtype="FLOAT")
        if suffix in _VIDEO:  # a phone video: stereo AAC (both sides at full level) beside an H.264 picture
            args = ["-f", "lavfi", "-i", "color=c=gray:s=64x48:r=10", "-i", str(source), "-shortest",
                    "-c:v", "libx264", "-c:a", "aac", "-af", "pan=stereo|c0=c0|c1=c0",
                    "-ar", "48000"]  # fmt: skip
        elif suffix in _ENCODE:
            args = ["-i", str(source), *_ENCODE[suffix]]
        else:
            raise ValueError(f"no encoding for {suffix!r}; use one of {sorted([*_ENCODE, *_VIDEO])}")
        ff.run([*args, str(out)], f"encode {out.name}")
    return out


def example_memo(out: Path) -> str:
    """The example's memo (a breath, "so, um", then four sentences, in a room) written to ``out``;
    returns its transcript."""
    opening, *sentences = speak([EXAMPLE_OPENING, *EXAMPLE_SENTENCES])
    parts = [silence(0.4), breath(), silence(0.5), opening, silence(0.8)]
    for sentence in sentences:
        parts += [sentence, silence(0.55)]
    encode(compose(parts), out)
    return " ".join([EXAMPLE_OPENING, *EXAMPLE_SENTENCES])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="the memo to write: .m4a (as a phone saves it), .mp3, .ogg, .wav, ...")
    transcript = example_memo(Path(parser.parse_args().out))
    print(transcript)


if __name__ == "__main__":
    main()
