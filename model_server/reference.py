"""Reference clips for voice cloning: fetched only from places the endpoint trusts, decoded, checked.

qwen-tts would open any path or URL it is handed (from inside your VPC), so the handler never passes
it a string: it resolves ``ref_audio`` here to samples, and refuses local paths and URLs whose host
is not explicitly allow-listed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

import numpy as np
import soundfile as sf

from model_server.protocol import RequestError

MIN_REFERENCE_SECONDS = 2.0
MAX_REFERENCE_SECONDS = 60.0
MAX_REFERENCE_BYTES = 32 * 1024 * 1024
FETCH_TIMEOUT_SECONDS = 20.0
FIELD = "ref_audio"

S3Reader = Callable[[str, str], bytes]  # (bucket, key) -> object bytes


@dataclass(frozen=True)
class ReferenceClip:
    audio: np.ndarray  # float32 mono
    sample_rate: int
    sha256: str  # of the encoded file's bytes: what the clone-prompt cache is keyed on
    s3_uri: str | None = None  # where it came from, when that was S3

    @property
    def seconds(self) -> float:
        return self.audio.shape[0] / self.sample_rate


def load_reference(ref_audio: str, allowed_hosts: frozenset[str], read_s3: S3Reader) -> ReferenceClip:
    """Bytes of the clip from base64, S3 or an allow-listed URL, decoded and checked for length."""
    data, s3_uri = _fetch(ref_audio.strip(), allowed_hosts, read_s3)
    if len(data) > MAX_REFERENCE_BYTES:
        raise RequestError(FIELD, f"{len(data)} bytes is over the {MAX_REFERENCE_BYTES}-byte limit")
    audio, rate = _decode(data)
    clip = ReferenceClip(audio, rate, hashlib.sha256(data).hexdigest(), s3_uri)
    if not MIN_REFERENCE_SECONDS <= clip.seconds <= MAX_REFERENCE_SECONDS:
        raise RequestError(
            FIELD,
            f"the clip is {clip.seconds:.1f} s long; use {MIN_REFERENCE_SECONDS:.0f}-"
            f"{MAX_REFERENCE_SECONDS:.0f} s of clean speech",
        )
    return clip


def _fetch(ref_audio: str, allowed_hosts: frozenset[str], read_s3: S3Reader) -> tuple[bytes, str | None]:
    parsed = urlparse(ref_audio)
    if parsed.scheme == "s3":
        if not parsed.netloc or not parsed.path.strip("/"):
            raise RequestError(FIELD, f"{ref_audio!r} is not an s3://bucket/key URI")
        try:
            return read_s3(parsed.netloc, parsed.path.lstrip("/")), ref_audio
        except Exception as exc:  # missing object, no permission: the caller's to fix
            raise RequestError(FIELD, f"could not read {ref_audio} ({exc.__class__.__name__})") from None
    if parsed.scheme in ("http", "https"):
        host = (parsed.hostname or "").lower()
        if host not in allowed_hosts:
            raise RequestError(
                FIELD,
                f"URLs are refused unless their host is allow-listed ({host!r} is not; set "
                "NARRATE_REF_AUDIO_ALLOWED_HOSTS on the endpoint, or send base64 or s3://)",
            )
        return _download(ref_audio), None
    payload = ref_audio.split(",", 1)[1] if ref_audio.startswith("data:") else ref_audio
    try:
        return base64.b64decode(payload, validate=True), None
    except (binascii.Error, ValueError):
        raise RequestError(
            FIELD, "is neither base64 audio, an s3:// URI nor an allow-listed URL (local paths are refused)"
        ) from None


def _download(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_SECONDS) as response:
            data = response.read(MAX_REFERENCE_BYTES + 1)
    except OSError as exc:
        raise RequestError(FIELD, f"could not download {url} ({exc.__class__.__name__})") from None
    return bytes(data)


def _decode(data: bytes) -> tuple[np.ndarray, int]:
    try:
        audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise RequestError(
            FIELD, f"could not decode the clip as WAV, FLAC or OGG ({str(exc)[:80]})"
        ) from None
    mono = audio.mean(axis=1).astype(np.float32)
    if not np.isfinite(mono).all():
        raise RequestError(FIELD, "the clip contains NaN or infinite samples")
    return mono, int(rate)
