"""The MP3 of a track: LAME in the ffmpeg binary of the imageio-ffmpeg wheel, fed the float32 samples
through a pipe by a thread, so the encode (one core, the longest step of an assembly) runs beside the
rest of it; written atomically, and cancellable when the track changes under it."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import IO

import numpy as np

from narrate.errors import AssemblyError
from narrate.files import write_atomic

# VBR level 0 with LAME's algorithm quality 7 (no noise-shaping search): on speech at 24 kHz a higher
# SNR at a lower bitrate than the former -q:a 2 at LAME's default algorithm, in 63 % of its time
# (docs/BENCHMARKS.md, assembly).
LAME_OPTIONS = ("-codec:a", "libmp3lame", "-q:a", "0", "-compression_level", "7")
PIPE_SAMPLES = 1 << 16  # samples per write to ffmpeg's stdin (256 KB)
ENCODE_TIMEOUT_SECONDS = 600


def ffmpeg_exe() -> str | None:
    """The bundled ffmpeg binary, or None when the wheel or its binary is missing."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None


def encode_command(exe: str, rate: int, title: str, comment: str, target: Path) -> list[str]:
    """ffmpeg reading raw little-endian float32 mono at ``rate`` from stdin, writing MP3 to ``target``."""
    return [
        exe, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "f32le", "-ar", str(rate), "-ac", "1", "-i", "pipe:0",
        *LAME_OPTIONS, "-metadata", f"title={title}", "-metadata", f"comment={comment}",
        "-f", "mp3", str(target),
    ]  # fmt: skip


class _Encode:
    """One ffmpeg run; ``stop`` kills it, from any thread, before or after it started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self.stopped = False
        self.future: Future[Path] | None = None

    def launch(self, command: list[str], errors: IO[bytes]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self.stopped:
                raise AssemblyError("MP3 encode cancelled")
            try:
                self._process = subprocess.Popen(
                    command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors
                )
            except OSError as exc:
                raise AssemblyError(f"ffmpeg could not be started to encode MP3: {exc}") from None
            return self._process

    def stop(self) -> None:
        with self._lock:
            self.stopped = True
            if self._process is not None and self._process.poll() is None:
                self._process.kill()


class Mp3Encoder:
    """Encodes a track to ``path`` in a thread; ``start`` again (the track was changed) restarts it.

    ``result`` waits for the file. Nothing half-written is left behind: ffmpeg writes a temporary
    sibling that is renamed to ``path`` only once it exited cleanly; a cancelled or failed encode
    removes it. Use as a context manager so an error elsewhere cancels a running encode.
    """

    def __init__(self, exe: str, path: Path, rate: int, title: str, comment: str) -> None:
        self.path = path
        self._exe, self._rate, self._title, self._comment = exe, rate, title, comment
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mp3")
        self._encode: _Encode | None = None

    def start(self, track: np.ndarray) -> None:
        """Encode ``track``, which must not change until ``result`` or ``cancel`` returns."""
        self.cancel()
        encode = _Encode()
        encode.future = self._pool.submit(self._write, track, encode)
        self._encode = encode

    @property
    def started(self) -> bool:
        return self._encode is not None

    def cancel(self) -> None:
        """Stop the encode and wait until its file is gone (a finished one is removed too)."""
        if self._encode is None or self._encode.future is None:
            return
        self._encode.stop()
        if self._encode.future.exception() is None:  # waits; an error is the cancellation itself
            self.path.unlink(missing_ok=True)
        self._encode = None

    def result(self) -> Path:
        if self._encode is None or self._encode.future is None:
            raise AssemblyError("no MP3 encode was started")
        return self._encode.future.result()

    def close(self) -> None:
        if self._encode is not None and self._encode.future is not None and not self._encode.future.done():
            self.cancel()
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Mp3Encoder:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _write(self, track: np.ndarray, encode: _Encode) -> Path:
        return write_atomic(self.path, lambda tmp: self._run(track, tmp, encode))

    def _run(self, track: np.ndarray, target: Path, encode: _Encode) -> None:
        command = encode_command(self._exe, self._rate, self._title, self._comment, target)
        with tempfile.TemporaryFile() as errors:  # a file, not a pipe: ffmpeg never blocks on it
            process = encode.launch(command, errors)
            _feed(process, track)
            try:
                code = process.wait(timeout=ENCODE_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise AssemblyError(f"ffmpeg took over {ENCODE_TIMEOUT_SECONDS} s to encode MP3") from None
            if encode.stopped:
                raise AssemblyError("MP3 encode cancelled")
            if code != 0:
                errors.seek(0)
                message = errors.read().decode(errors="replace").strip()[-300:] or f"exit status {code}"
                raise AssemblyError(f"ffmpeg could not encode MP3: {message}")


def _feed(process: subprocess.Popen[bytes], track: np.ndarray) -> None:
    """Write the samples to ffmpeg's stdin and close it (the write releases the GIL while it blocks)."""
    assert process.stdin is not None
    samples = track.astype("<f4", copy=False)
    try:
        for start in range(0, len(samples), PIPE_SAMPLES):
            process.stdin.write(memoryview(samples[start : start + PIPE_SAMPLES]).cast("B"))
    except BrokenPipeError:
        pass  # ffmpeg stopped reading: its exit status and message say why
    finally:
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()
