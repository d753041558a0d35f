"""The clip cache cleans up after writers that were killed mid-write, and only after them."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from narrate.synthesis.cache import ABANDONED_WRITE_SECONDS, ClipCache

KEY = "ab" + "0" * 62


def wav_bytes() -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(240, dtype=np.float32), 24000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def partial_write(cache: ClipCache, key: str, age_seconds: float) -> Path:
    """What ``write_atomic`` leaves when its process dies before the rename."""
    path = cache.path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.parent / f".{path.name}.k3x9q2.tmp.wav"
    partial.write_bytes(b"RIFF half a clip")
    stamp = time.time() - age_seconds
    os.utime(partial, (stamp, stamp))
    return partial


def test_old_partial_writes_are_removed_and_clips_and_fresh_writes_are_kept(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path)
    cache.put_wav(KEY, wav_bytes(), {"text": "kept"})
    old = partial_write(cache, KEY, ABANDONED_WRITE_SECONDS + 60)
    other_shard = partial_write(cache, "cd" + "1" * 62, 2 * ABANDONED_WRITE_SECONDS)
    fresh = partial_write(cache, "cd" + "2" * 62, 5)  # a render writing right now

    assert cache.remove_abandoned_writes() == 2

    assert not old.exists() and not other_shard.exists()
    assert fresh.exists()
    assert cache.contains(KEY) and cache.get(KEY).audio.size == 240
    assert cache.path(KEY).with_suffix(".json").exists()
    assert cache.remove_abandoned_writes() == 0


def test_an_empty_or_missing_cache_has_nothing_to_remove(tmp_path: Path) -> None:
    assert ClipCache(tmp_path / "absent").remove_abandoned_writes() == 0
    assert ClipCache(tmp_path).remove_abandoned_writes() == 0
