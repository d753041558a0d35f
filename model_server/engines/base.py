"""The interface every engine implements: built once at model load, asked for batches, closed at exit."""

from __future__ import annotations

from typing import Protocol

from model_server.protocol import GenerationRequest, SegmentAudio, SegmentRequest


class SpeechEngine(Protocol):
    modes: frozenset[str]
    model_id: str
    revision: str

    def synthesize(
        self,
        voice: object,
        segments: list[SegmentRequest],
        generation: GenerationRequest,
    ) -> list[SegmentAudio]:
        """One result per segment, in order; a segment that fails carries its own error."""
        ...

    def close(self) -> None: ...
