"""The content-addressed clip cache: the one definition of a segment's cache key, and its store.

The key hashes everything that changes the sound and nothing that does not: segment ids, order,
scene timing and output options are left out, so re-ordering or re-timing a script re-uses clips.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from model_server import HANDLER_VERSION
from narrate.files import write_bytes_atomic, write_json_atomic
from narrate.script import Engine, GenerationSettings, Voice, normalize_text
from narrate.synthesis.requests import ModelIdentity, generation_sound_fields, voice_sound_fields

CACHE_KEY_VERSION = 1
# A clip is written in milliseconds: a temporary file older than this is a dead writer's.
ABANDONED_WRITE_SECONDS = 3600


def cache_key_material(
    text: str, voice: Voice, generation: GenerationSettings, identity: ModelIdentity
) -> dict[str, Any]:
    """What the key hashes; ``identity`` is the model that speaks ``voice`` in this render."""
    return {
        "cache_key_version": CACHE_KEY_VERSION,
        "text": normalize_text(text),
        "engine": voice.engine.value,
        "model_id": identity.model_id,
        "model_revision": identity.revision,
        "voice": voice_sound_fields(voice, identity),
        "generation": generation_sound_fields(voice, generation),
        "handler_version": None if voice.engine is Engine.POLLY else HANDLER_VERSION,
    }


def segment_cache_key(
    text: str, voice: Voice, generation: GenerationSettings, identity: ModelIdentity
) -> str:
    material = cache_key_material(text, voice, generation, identity)
    canonical = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedClip:
    key: str
    audio: np.ndarray  # float32 mono
    sample_rate: int


class ClipCache:
    """A folder of ``<key[:2]>/<key>.wav`` clips with a ``.json`` note of what each one says."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"not a cache key: {key!r}")
        return self.root / key[:2] / f"{key}.wav"

    def contains(self, key: str) -> bool:
        return self.path(key).is_file()

    def get(self, key: str) -> CachedClip:
        audio, rate = sf.read(self.path(key), dtype="float32", always_2d=False)
        return CachedClip(key, audio, rate)

    def remove_abandoned_writes(self, older_than: float = ABANDONED_WRITE_SECONDS) -> int:
        """Delete the hidden temporary files that writers killed mid-write left behind (they are never
        read as clips); the number removed. Young ones may belong to a render writing right now."""
        cutoff = time.time() - older_than
        removed = 0
        for partial in self.root.glob("[0-9a-f][0-9a-f]/.*.tmp*"):
            try:
                if partial.is_file() and partial.stat().st_mtime < cutoff:
                    partial.unlink()
                    removed += 1
            except FileNotFoundError:  # another render swept it first
                continue
        return removed

    def note(self, key: str) -> dict[str, Any]:
        """What the clip's note says (its text, voice and the gate's measures); empty if it has none."""
        try:
            note = json.loads(self.path(key).with_suffix(".json").read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return note if isinstance(note, dict) else {}

    def put_note(self, key: str, note: dict[str, Any]) -> None:
        write_json_atomic(self.path(key).with_suffix(".json"), note)

    def put_wav(self, key: str, wav_bytes: bytes, note: dict[str, Any]) -> Path:
        """Store a validated WAV file as received (no re-encoding), note first, clip last."""
        path = self.path(key)
        write_json_atomic(path.with_suffix(".json"), note)
        return write_bytes_atomic(path, wav_bytes)


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Decode WAV/FLAC bytes to float32 mono; raises ValueError on anything that is not audio."""
    try:
        audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise ValueError(f"not decodable audio ({exc})") from None
    if audio.shape[1] != 1:
        audio = audio.mean(axis=1, keepdims=True)
    return np.ascontiguousarray(audio[:, 0]), int(rate)
