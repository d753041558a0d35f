"""The dev voice: eSpeak NG driven through ctypes from the library inside the espeakng-loader wheel.

Offline, no system package. libespeak-ng carries state from one utterance into the next (the same
text comes out a few samples different the second time, even after re-initialising), so each text is
spoken in a fork of a "zygote" process that loaded the library and never spoke: every fork starts
from the same state, and the same input gives the same samples, in any process, in any order.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import threading
from importlib.metadata import version
from pathlib import Path

import espeakng_loader
import numpy as np

from model_server.protocol import DevVoiceRequest, GenerationRequest, SegmentAudio, SegmentRequest
from model_server.voices import NATIVE_SAMPLE_RATES

_AUDIO_OUTPUT_SYNCHRONOUS = 0x02
_ESPEAK_INITIALIZE_DONT_EXIT = 0x8000
_ESPEAK_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE = 1
_PARAM_PITCH = 3
_MIN_SPEECH_SECONDS = 0.02  # under this, eSpeak found nothing to say (e.g. only punctuation)

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_lock = threading.Lock()
_library: ctypes.CDLL | None = None
_sample_rate = 0
_chunks: list[np.ndarray] = []


def _on_audio(wav: ctypes._Pointer, count: int, _events: ctypes.c_void_p) -> int:  # type: ignore[type-arg]
    if count > 0 and wav:
        _chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
    return 0


_callback = _SynthCallback(_on_audio)  # kept referenced for the library's lifetime


def _load_library() -> tuple[ctypes.CDLL, int]:
    global _library, _sample_rate
    if _library is None:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        data_path = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, _ESPEAK_INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise RuntimeError(f"libespeak-ng failed to initialise (code {rate})")
        lib.espeak_SetSynthCallback(_callback)
        _library, _sample_rate = lib, rate
    return _library, _sample_rate


class EspeakEngine:
    """Serves the ``dev`` mode."""

    modes = frozenset({"dev"})
    model_id = "espeak-ng"

    def __init__(self) -> None:
        _, rate = _load_library()
        if rate != NATIVE_SAMPLE_RATES["dev"]:
            raise RuntimeError(f"libespeak-ng runs at {rate} Hz, expected {NATIVE_SAMPLE_RATES['dev']}")
        self.revision = f"espeakng-loader-{version('espeakng-loader')}"
        self._zygote = _Zygote()

    @property
    def sample_rate(self) -> int:
        return _load_library()[1]

    def synthesize(
        self,
        voice: object,
        segments: list[SegmentRequest],
        generation: GenerationRequest,
    ) -> list[SegmentAudio]:
        assert isinstance(voice, DevVoiceRequest)
        return [self._one(voice, segment) for segment in segments]

    def _one(self, voice: DevVoiceRequest, segment: SegmentRequest) -> SegmentAudio:
        audio = self.speak(segment.text, voice.espeak_voice, voice.rate_wpm, voice.pitch)
        if audio.size < _MIN_SPEECH_SECONDS * self.sample_rate:
            return SegmentAudio(id=segment.id, error="text: produced no audio (nothing speakable)")
        return SegmentAudio(id=segment.id, audio=audio, sample_rate=self.sample_rate)

    def speak(self, text: str, espeak_voice: str, rate_wpm: int, pitch: int) -> np.ndarray:
        """Float32 mono samples at :attr:`sample_rate` for one text."""
        request = {"text": text, "voice": espeak_voice, "rate": rate_wpm, "pitch": pitch}
        return (self._zygote.speak(request).astype(np.float32) / 32768.0).astype(np.float32)

    def close(self) -> None:
        self._zygote.close()


def _speak_pcm(text: str, espeak_voice: str, rate_wpm: int, pitch: int) -> np.ndarray:
    """int16 samples of one text, spoken by the library loaded in this process."""
    lib, _ = _load_library()
    encoded = text.encode("utf-8") + b"\0"
    buffer = ctypes.create_string_buffer(encoded, len(encoded))
    with _lock:
        if lib.espeak_SetVoiceByName(espeak_voice.encode()) != 0:
            raise ValueError(f"language: eSpeak NG has no voice {espeak_voice!r}")
        lib.espeak_SetParameter(_PARAM_RATE, rate_wpm, 0)
        lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
        _chunks.clear()
        status = lib.espeak_Synth(buffer, len(encoded), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        pcm = np.concatenate(_chunks) if _chunks else np.zeros(0, dtype=np.int16)
        _chunks.clear()
    if status != 0:
        raise RuntimeError(f"libespeak-ng synthesis failed (code {status})")
    return pcm.astype(np.int16)


class _Zygote:
    """A child process that forks once per text; requests are JSON lines, answers a header + PCM."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            command = [sys.executable, "-m", "model_server.engines.espeak"]
            package_parent = str(Path(__file__).resolve().parents[2])  # found wherever we are installed
            env = os.environ | {
                "PYTHONPATH": os.pathsep.join([package_parent, os.environ.get("PYTHONPATH", "")])
            }
            self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        return self._process

    def speak(self, request: dict[str, object]) -> np.ndarray:
        with self._lock:
            process = self._start()
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(json.dumps(request).encode() + b"\n")
            process.stdin.flush()
            header = json.loads(process.stdout.readline() or b'{"error": "espeak worker exited"}')
            if header.get("error"):
                raise ValueError(header["error"])
            data = process.stdout.read(header["bytes"])
        return np.frombuffer(data, dtype=np.int16)

    def close(self) -> None:
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                assert self._process.stdin is not None
                self._process.stdin.close()
                self._process.wait(timeout=10)
            self._process = None


def _serve_forks() -> None:
    """Zygote main loop: load the library, then speak each request in a fresh fork."""
    _load_library()
    for line in sys.stdin.buffer:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _answer_in_child(request)
        os.waitpid(pid, 0)


def _answer_in_child(request: dict[str, object]) -> None:
    try:
        pcm = _speak_pcm(
            str(request["text"]), str(request["voice"]), int(request["rate"]), int(request["pitch"])
        )  # type: ignore[call-overload]
        payload = json.dumps({"bytes": pcm.nbytes}).encode() + b"\n" + pcm.tobytes()
    except Exception as exc:
        payload = json.dumps({"error": str(exc)[:300]}).encode() + b"\n"
    view = memoryview(payload)
    while view:
        view = view[os.write(1, view) :]
    os._exit(0)


if __name__ == "__main__":
    _serve_forks()
