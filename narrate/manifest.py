"""The render manifest: the durable record of a render, rewritten atomically as it progresses.

It says what was asked (script hash, segments and their cache keys) and what exists where; the CLI
reads it for progress and a re-run or retry works from it, not from Prefect's own records. Its
state changes are its own methods, each saved as it happens: a crash later loses nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import AliasChoices, BaseModel, Field, PrivateAttr

from narrate.endpoints.kind import EndpointKind
from narrate.errors import RenderFailed
from narrate.files import write_text_atomic
from narrate.log import run_logger
from narrate.script import GenerationSettings

ERROR_CHARS = 500  # a failure's message as the manifest keeps it
CHECKPOINT_SECONDS = 0.5


class SegmentStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class RenderState(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class TakeRecord(BaseModel):
    """One take of a segment as the quality gate judged it (narrate.check.gate)."""

    take: int
    seed: int | None  # None: the engine says it the same way whatever the seed
    cache_key: str
    passed: bool
    picked: bool = False
    checks: dict[str, dict[str, Any]] = Field(default_factory=dict)  # name -> value, bound, passed
    badness: list[float] = Field(default_factory=list)  # checks failed, then by how much: orders takes
    summary: str = ""
    heard: str | None = None  # what the recogniser heard, where it listened


class SegmentRecord(BaseModel):
    id: str
    cache_key: str  # the take kept (or, while pending, the take asked for)
    status: SegmentStatus = SegmentStatus.PENDING
    cache_hit: bool = False
    attempts: int = 0
    clip_path: str | None = None
    clip_samples: int | None = None
    error: str | None = None
    takes: list[TakeRecord] = Field(default_factory=list, description="Every take judged, in order.")

    @property
    def kept(self) -> TakeRecord | None:
        """The take the track uses: the judged take of the kept cache key."""
        return next((t for t in reversed(self.takes) if t.cache_key == self.cache_key), None)


class VideoRecord(BaseModel):
    """The recording a render re-timed, and its scene marks: a retry re-times it again."""

    recording: str
    marks: str


class Outcome(Protocol):
    """One attempt at one segment, as the synthesis tasks report it."""

    error: str | None
    clip_path: str | None
    clip_samples: int | None

    @property
    def ok(self) -> bool: ...


class InstanceTime(Protocol):
    gpu_seconds: float
    cost_usd: float | None
    released: bool
    price: str
    instances: int


class RenderManifest(BaseModel):
    FILE_NAME: ClassVar[str] = "manifest.json"
    _saved_at: float = PrivateAttr(default=0.0)

    script: str
    script_sha256: str
    title: str
    engine: str
    voice_engine: str | None = Field(None, description="The --voice-engine override, if the render had one.")
    voice_name: str | None = Field(None, description="The script's named voice it spoke with (--voice).")
    generation: GenerationSettings | None = Field(None, description="The run's sampling override, if any.")
    endpoint: EndpointKind = Field(
        validation_alias=AliasChoices("endpoint", "backend"),  # "backend" in manifests before 2026-12
        description="The endpoint that synthesised: sagemaker, inprocess or polly.",
    )
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
    stage: str | None = Field(None, description="The stage running now (None between stages).")
    stage_started_at: float | None = Field(None, description="Epoch seconds when that stage started.")
    held_since: float | None = Field(None, description="Epoch seconds when the render asked for an instance.")
    gpu_seconds: float = 0.0
    instances: int | None = Field(None, description="Instances the render's wake asked for (its fan-out).")
    cost_usd: float | None = Field(
        0.0, description="What the instance time cost; None when no price is known."
    )
    price: str | None = Field(None, description="Where the hourly price came from.")
    last_output_at: float | None = Field(None, description="Epoch seconds when the last output was in.")
    released_at: float | None = Field(None, description="Epoch seconds when scale-down returned.")
    endpoint_released: bool | None = Field(
        None,
        description="Whether this render's scale-down released the instance (False: another render held it).",
    )

    # --- reading ---------------------------------------------------------------------------------

    def cost_text(self) -> str:
        cost = "cost unknown" if self.cost_usd is None else f"${self.cost_usd:.4f}"
        return f"{cost} ({self.price})" if self.price else cost

    @property
    def path(self) -> Path:
        return Path(self.out_dir) / self.FILE_NAME

    def segment(self, segment_id: str) -> SegmentRecord:
        for record in self.segments:
            if record.id == segment_id:
                return record
        raise KeyError(segment_id)

    def failed(self) -> dict[str, str]:
        return {s.id: s.error or "failed" for s in self.segments if s.status is SegmentStatus.FAILED}

    # --- state changes -----------------------------------------------------------------------------

    def mark_cached(
        self, hits: set[str], only: set[str] | None = None, earlier_errors: Mapping[str, str] | None = None
    ) -> None:
        """Segments whose sound is cached are done; with ``only`` (a retry), the others it leaves out
        stay failed with their earlier error."""
        for record in self.segments:
            if record.cache_key in hits:
                record.status, record.cache_hit = SegmentStatus.DONE, True
            elif only is not None and record.id not in only:
                earlier = (earlier_errors or {}).get(record.id, "no output")
                record.status, record.error = SegmentStatus.FAILED, f"not retried this time: {earlier}"
        self.save()

    def record_outcome(self, segment_id: str, outcome: Outcome, final: bool) -> None:
        """One attempt at a segment; a failure that will not be retried fails it. Not saved: the caller
        saves once per request."""
        record = self.segment(segment_id)
        record.attempts += 1
        record.error = outcome.error
        record.clip_path, record.clip_samples = outcome.clip_path, outcome.clip_samples
        if outcome.ok:
            record.status = SegmentStatus.DONE
        elif final:
            record.status = SegmentStatus.FAILED

    def record_take(self, segment_id: str, take: TakeRecord) -> None:
        """A take the quality gate judged (not saved: the caller saves)."""
        self.segment(segment_id).takes.append(take)

    def ask_take(self, segment_id: str, cache_key: str, attempted: bool) -> None:
        """The segment waits for this take now (a re-roll after one that failed the gate, or the first
        take its cache lacks); ``attempted``: a take was synthesised for it."""
        record = self.segment(segment_id)
        record.cache_key, record.status = cache_key, SegmentStatus.PENDING
        record.attempts += int(attempted)

    def keep_take(
        self, segment_id: str, take: TakeRecord, clip_path: str, clip_samples: int, attempted: bool
    ) -> None:
        """No take passed and the script keeps the best one: this one."""
        record = self.segment(segment_id)
        record.cache_key, record.status, record.error = take.cache_key, SegmentStatus.DONE, None
        record.clip_path, record.clip_samples = clip_path, clip_samples
        record.attempts += int(attempted)

    def fail_segment(self, segment_id: str, error: str, attempted: bool) -> None:
        record = self.segment(segment_id)
        record.status, record.error = SegmentStatus.FAILED, error[: ERROR_CHARS * 4]
        record.attempts += int(attempted)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """The wall time of a stage of the render, recorded (and logged) however it ends."""
        started = time.monotonic()
        self.stage, self.stage_started_at = stage, time.time()
        self.save()  # the CLI's display shows the stage as it runs
        try:
            yield
        finally:
            self.stage_seconds[stage] = round(time.monotonic() - started, 3)
            self.stage = self.stage_started_at = None
            run_logger().info("stage %s: %.2f s", stage, self.stage_seconds[stage])

    def record_last_output(self) -> None:
        self.last_output_at = time.time()

    def record_usage(self, usage: InstanceTime) -> None:
        """What the render's hold of the endpoint cost, once it was let go."""
        self.released_at = time.time()
        self.gpu_seconds, self.cost_usd, self.price = usage.gpu_seconds, usage.cost_usd, usage.price
        self.endpoint_released = usage.released
        self.save()

    def raise_if_failed(self) -> None:
        """RenderFailed naming each failed segment, with the render failed, if any segment is."""
        failed = self.failed()
        if failed:
            self.fail(f"{len(failed)} segment(s) failed")
            raise RenderFailed(failed, str(self.path))

    def fail(self, reason: str) -> None:
        self.state, self.error = RenderState.FAILED, reason[:ERROR_CHARS]
        self.save()

    def fail_if_running(self, exc: BaseException) -> None:
        """An unexpected end: the render failed with this error, unless it already ended."""
        if self.state is RenderState.RUNNING:
            self.fail(f"{exc.__class__.__name__}: {exc}")

    def resume(self, video: VideoRecord | None = None) -> None:
        """Running again (the video step after a finished narration)."""
        self.state, self.video = RenderState.RUNNING, video or self.video

    def complete(self, outputs: Mapping[str, str]) -> None:
        self.outputs, self.state = self.outputs | dict(outputs), RenderState.COMPLETED
        self.save()

    def checkpoint(self, min_interval: float = CHECKPOINT_SECONDS) -> None:
        """Save, unless the last save was under ``min_interval`` ago: while a render's requests come in,
        at a rate that stays cheap at thousands of segments. What a crash between two saves loses is
        only the record: every clip is in the cache already, and the next run finds it there."""
        if time.monotonic() - self._saved_at >= min_interval:
            self.save()

    def save(self) -> Path:
        self._saved_at = time.monotonic()
        self.updated_at = _now()
        return write_text_atomic(self.path, self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> RenderManifest:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
