"""The render manifest: the durable record of a render, rewritten atomically as it progresses.

It says what was asked (script hash, segments and their cache keys) and what exists where; the CLI
reads it for progress and a re-run or retry works from it, not from Prefect's own records.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field

from narrate.script import GenerationSettings
from narrate.storage import write_text_atomic

MANIFEST_NAME = "manifest.json"


class SegmentStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class RenderState(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class SegmentRecord(BaseModel):
    id: str
    cache_key: str
    status: SegmentStatus = SegmentStatus.PENDING
    cache_hit: bool = False
    attempts: int = 0
    clip_path: str | None = None
    clip_samples: int | None = None
    error: str | None = None


class VideoRecord(BaseModel):
    """The recording a render re-timed, and its scene marks: a retry re-times it again."""

    recording: str
    marks: str


class RenderManifest(BaseModel):
    script: str
    script_sha256: str
    title: str
    engine: str
    voice_engine: str | None = Field(None, description="The --voice-engine override, if the render had one.")
    voice_name: str | None = Field(None, description="The script's named voice it spoke with (--voice).")
    generation: GenerationSettings | None = Field(None, description="The run's sampling override, if any.")
    backend: str = Field(description="The endpoint that synthesised: sagemaker, inprocess or polly.")
    min_seconds: dict[str, float] | None = Field(
        None, description="Least seconds per segment the layout applied (a recording's actions)."
    )
    video: VideoRecord | None = Field(None, description="The recording re-timed to this narration, if any.")
    emulated: str | None = Field(
        None, description="Set when a stand-in served the voice (local mode's Polly): which one."
    )
    out_dir: str
    state: RenderState = RenderState.RUNNING
    error: str | None = None
    started_at: str = Field(default_factory=lambda: _now())
    updated_at: str = Field(default_factory=lambda: _now())
    segments: list[SegmentRecord]
    outputs: dict[str, str] = Field(default_factory=dict)
    stage_seconds: dict[str, float] = Field(default_factory=dict, description="Wall time per stage.")
    gpu_seconds: float = 0.0
    cost_usd: float = 0.0
    last_output_at: float | None = Field(None, description="Epoch seconds when the last output was in.")
    released_at: float | None = Field(None, description="Epoch seconds when scale-down returned.")
    endpoint_released: bool | None = Field(
        None,
        description="Whether this render's scale-down released the instance (False: another render held it).",
    )

    def segment(self, segment_id: str) -> SegmentRecord:
        for record in self.segments:
            if record.id == segment_id:
                return record
        raise KeyError(segment_id)

    def failed(self) -> dict[str, str]:
        return {s.id: s.error or "failed" for s in self.segments if s.status is SegmentStatus.FAILED}

    def save(self) -> Path:
        self.updated_at = _now()
        path = Path(self.out_dir) / MANIFEST_NAME
        return write_text_atomic(path, self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> RenderManifest:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
