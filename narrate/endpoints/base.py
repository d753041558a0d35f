"""What every endpoint takes and gives: a synthesis job, its submission, the instance time a render
held, and the interface itself.

A job's request is the model server's own :class:`~model_server.protocol.BatchRequest` (or, for a
Polly voice, :class:`PollyBatchRequest` of the same shape): built once, sent as its JSON, never
picked apart as a dict. A :class:`JobSummary` is what a settled request needs to be recorded (its
voice without the reference audio, and each segment's text and cache key); it is also what S3 keeps
of a queued request, so a later run can adopt it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from model_server.protocol import BatchRequest
from narrate.synthesis.polly_speech import PollyBatchRequest

JobRequest = BatchRequest | PollyBatchRequest


class SegmentNote(BaseModel):
    id: str
    text: str
    cache_key: str


class JobSummary(BaseModel):
    """A request as its outputs are recorded: enough to cache them, nothing secret."""

    request_id: str
    voice: dict[str, Any]  # the voice request, without its reference audio
    segments: list[SegmentNote]

    @property
    def mode(self) -> str:
        return str(self.voice["mode"])

    @property
    def segment_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.segments)

    @property
    def cache_keys(self) -> dict[str, str]:
        return {s.id: s.cache_key for s in self.segments}

    def text_of(self, segment_id: str) -> str:
        return next(s.text for s in self.segments if s.id == segment_id)


@dataclass(frozen=True)
class SynthesisJob:
    """One request to an endpoint: a batch of segments sharing one voice."""

    request_id: str
    request: JobRequest
    cache_keys: dict[str, str] = field(default_factory=dict, hash=False)  # a render's: id -> key

    @property
    def segment_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.request.segments)

    @property
    def for_a_render(self) -> bool:
        """Every segment has its cache key: a later run can adopt the request if this one dies."""
        return set(self.cache_keys) == set(self.segment_ids)

    def body(self) -> bytes:
        """What the endpoint reads: the request as JSON."""
        return self.request.model_dump_json().encode()

    def summary(self) -> JobSummary:
        voice = self.request.voice.model_dump(mode="json", exclude={"ref_audio"})
        segments = [
            SegmentNote(id=s.id, text=s.text, cache_key=self.cache_keys.get(s.id, ""))
            for s in self.request.segments
        ]
        return JobSummary(request_id=self.request_id, voice=voice, segments=segments)


@dataclass(frozen=True)
class Submission:
    """Where a submitted request's result or failure will appear (as the endpoint returned them)."""

    request_id: str
    segment_ids: tuple[str, ...]
    output_location: str
    failure_location: str


@dataclass(frozen=True)
class Usage:
    """Instance time one render held, from its wake to its release, summed over its instances."""

    gpu_seconds: float
    cost_usd: float | None  # None: no price known for the instance type in the region
    released: bool
    price: str = "no instance: nothing to pay"  # where the hourly price came from
    instances: int = 0  # the instances it asked for (0: an endpoint without instances)

    def cost_text(self) -> str:
        cost = "cost unknown" if self.cost_usd is None else f"${self.cost_usd:.4f}"
        return f"{cost} ({self.price})"


class Endpoint(Protocol):
    name: str

    def ensure(self, holder: str) -> dict[str, Any]:
        """Create whatever is missing (idempotent) and hold the endpoint for ``holder`` until its
        scale_down; returns a description for logs."""
        ...

    def wake(self, deadline_seconds: float, holder: str, instances: int = 1) -> None:
        """Have capacity before the deadline (held for ``holder``; ``instances`` of it where the
        endpoint has instances to add) or raise EndpointError."""
        ...

    def stage(self, job: SynthesisJob) -> str:
        """Store the request where the endpoint reads it; needs no instance."""
        ...

    def submit(self, job: SynthesisJob, input_location: str) -> Submission: ...

    def fetch(self, submission: Submission, deadline_seconds: float) -> bytes:
        """The output body; raises SegmentRejected (final) or TransientSynthesisError."""
        ...

    def scale_down(self, holder: str) -> Usage:
        """Release ``holder``'s claim; release the instances unless another holder still needs them."""
        ...

    def queued(self, cache_keys: set[str]) -> list[tuple[Submission, JobSummary]]:
        """Requests an earlier run submitted and never collected that hold any of ``cache_keys``."""
        ...

    def forget(self, submission: Submission) -> None:
        """The request is settled and its clips are cached: no later run needs to adopt it."""
        ...

    def stop_fetching(self, request_ids: set[str], forget: bool) -> None:
        """Fetches of these requests give up at once (the render stopped waiting for them); with
        ``forget``, no later run adopts them either."""
        ...


class NothingQueued:
    """For endpoints whose requests end with the process that made them: nothing to adopt, and nothing
    in flight to stop (their fetches return at once)."""

    def stop_fetching(self, request_ids: set[str], forget: bool) -> None:
        return None

    def queued(self, cache_keys: set[str]) -> list[tuple[Submission, JobSummary]]:
        return []

    def forget(self, submission: Submission) -> None:
        return None
