"""Voice-clone prompts built once per voice: an in-memory LRU, optionally persisted next to an S3 clip.

Building a prompt encodes the reference clip with the codec and the speaker encoder; a narration
reuses one voice for every segment, so the handler builds it once and keeps it. The key is a hash of
the clip's bytes, the transcript and the mode, so a different clip or transcript is a different prompt.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger("narrate.model_server.prompts")

PROMPT_FORMAT = "1"  # bump when the stored form of a prompt changes

S3Get = Callable[[str, str], bytes]
S3Put = Callable[[str, str, bytes], None]


def prompt_key(reference_sha256: str, ref_text: str | None, x_vector_only: bool, model_id: str) -> str:
    fields = {
        "reference_sha256": reference_sha256,
        "ref_text": None if x_vector_only else ref_text,
        "mode": "x_vector" if x_vector_only else "icl",
        "model": model_id,
        "format": PROMPT_FORMAT,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def s3_location(reference_uri: str, key: str) -> tuple[str, str]:
    """Where the prompt of a clip at ``s3://bucket/clip.wav`` is kept: beside it."""
    parsed = urlparse(reference_uri)
    return parsed.netloc, f"{parsed.path.lstrip('/')}.narrate-prompt-{key[:16]}.pt"


@dataclass
class PromptCacheStats:
    builds: int = 0  # prompts built from a reference clip (the expensive step)
    memory_hits: int = 0
    s3_hits: int = 0


class PromptCache:
    """Thread-safe LRU of built prompts (opaque objects) keyed by :func:`prompt_key`."""

    def __init__(self, capacity: int, s3_get: S3Get | None = None, s3_put: S3Put | None = None) -> None:
        self.capacity = max(1, capacity)
        self.stats = PromptCacheStats()
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}
        self._s3_get, self._s3_put = s3_get, s3_put

    def get_or_build(self, key: str, build: Callable[[], Any], s3_uri: str | None = None) -> Any:
        """The prompt for ``key``: from memory, from S3 beside the clip, or built (once, even when
        two requests for the same voice arrive together)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.stats.memory_hits += 1
                return self._items[key]
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                if key in self._items:
                    self.stats.memory_hits += 1
                    return self._items[key]
            prompt = self._load_from_s3(key, s3_uri)
            if prompt is None:
                prompt = build()
                with self._lock:
                    self.stats.builds += 1
                self._save_to_s3(key, s3_uri, prompt)
            self._remember(key, prompt)
            return prompt

    def __len__(self) -> int:
        return len(self._items)

    def _remember(self, key: str, prompt: Any) -> None:
        with self._lock:
            self._items[key] = prompt
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
            self._building.pop(key, None)

    def _load_from_s3(self, key: str, s3_uri: str | None) -> Any:
        if s3_uri is None or self._s3_get is None:
            return None
        bucket, object_key = s3_location(s3_uri, key)
        try:
            data = self._s3_get(bucket, object_key)
        except Exception:  # not there yet (or not readable): build it
            return None
        try:
            prompt = deserialize(data)
        except Exception:
            log.warning("stored clone prompt s3://%s/%s is unreadable; rebuilding it", bucket, object_key)
            return None
        with self._lock:
            self.stats.s3_hits += 1
        return prompt

    def _save_to_s3(self, key: str, s3_uri: str | None, prompt: Any) -> None:
        if s3_uri is None or self._s3_put is None:
            return
        bucket, object_key = s3_location(s3_uri, key)
        try:
            self._s3_put(bucket, object_key, serialize(prompt))
        except Exception as exc:  # the cache is an optimisation: a read-only bucket must not fail the render
            log.warning("could not store the clone prompt at s3://%s/%s (%s)", bucket, object_key, exc)


def serialize(items: list[Any]) -> bytes:
    """Prompt items (qwen-tts VoiceClonePromptItem) as bytes: tensors and plain fields only."""
    import torch

    buffer = io.BytesIO()
    torch.save({"format": PROMPT_FORMAT, "items": [_to_cpu(vars(item)) for item in items]}, buffer)
    return buffer.getvalue()


def deserialize(data: bytes) -> list[Any]:
    import torch
    from qwen_tts.inference.qwen3_tts_model import VoiceClonePromptItem

    stored = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if stored.get("format") != PROMPT_FORMAT:
        raise ValueError(f"prompt format {stored.get('format')!r}")
    return [VoiceClonePromptItem(**fields) for fields in stored["items"]]


def _to_cpu(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v.detach().cpu() if hasattr(v, "detach") else v for k, v in fields.items()}
