"""Synthesis tasks: group segments into requests, submit them, gather and validate their outputs.

A submit is retried by Prefect on transient errors only (throttling, timeouts, 5xx). Gathering never
raises for one bad segment: each segment gets its own outcome, and every finished clip goes into the
cache at once, so a crash later loses nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.tasks import exponential_backoff

from model_server.voices import NATIVE_SAMPLE_RATES
from narrate.cache import ClipCache, decode_wav
from narrate.endpoints import Submission, SynthesisJob, get_endpoint
from narrate.errors import SynthesisError, TransientSynthesisError, is_transient
from narrate.log import run_logger
from narrate.payloads import voice_request
from narrate.polly import SAMPLE_RATE as POLLY_SAMPLE_RATE
from narrate.responses import parse_batch_output
from narrate.script import NarrationScript
from tasks.script import PlannedSegment

MAX_SEGMENT_SECONDS = 600
# The rate each request mode's clips come at: the handler's modes, and Polly's raw PCM.
EXPECTED_RATES: dict[str, int] = NATIVE_SAMPLE_RATES | {"polly": POLLY_SAMPLE_RATE}


@dataclass(frozen=True)
class SegmentOutcome:
    id: str
    cache_key: str
    error: str | None = None
    retryable: bool = False
    clip_samples: int | None = None
    clip_path: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def plan_jobs(
    narration: NarrationScript, segments: list[PlannedSegment], batch_size: int
) -> list[SynthesisJob]:
    """Requests of up to ``batch_size`` segments of similar length (a batch runs as long as its longest)."""
    voice = voice_request(narration.voice)
    generation = narration.generation.model_dump()
    ordered = sorted(segments, key=lambda s: len(s.text))
    jobs = []
    for start in range(0, len(ordered), batch_size):
        batch = ordered[start : start + batch_size]
        jobs.append(
            SynthesisJob(
                request_id=uuid.uuid4().hex,
                payload={
                    "voice": voice,
                    "segments": [{"id": s.id, "text": s.text} for s in batch],
                    "generation": generation,
                },
                segment_ids=tuple(s.id for s in batch),
                cache_keys={s.id: s.cache_key for s in batch},
            )
        )
    return jobs


def _retry_transient(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    try:
        state.result()
    except Exception as exc:
        return is_transient(exc)
    return False


# Throttling, 5xx and timeouts are retried with exponential back-off and jitter; refusals never are.
RETRY_TRANSIENT: dict[str, Any] = {
    "cache_policy": NO_CACHE,
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": _retry_transient,
}


@task(name="submit-segments", task_run_name="submit-{job.request_id}", **RETRY_TRANSIENT)
def submit_segments(backend: str, job: SynthesisJob, input_location: str | None = None) -> Submission:
    """Invoke the endpoint for one request, uploading its payload first unless already staged."""
    endpoint = get_endpoint(backend)
    submission = endpoint.submit(job, input_location or endpoint.stage(job))
    run_logger().info("submitted %d segment(s): %s", len(job.segment_ids), ", ".join(job.segment_ids))
    return submission


@task(name="adopt-queued-requests", **RETRY_TRANSIENT)
def adopt_queued_requests(backend: str, cache_keys: set[str]) -> list[tuple[Submission, SynthesisJob]]:
    """Requests an earlier run left queued on the endpoint for these sounds (it failed or was killed
    before collecting them): they are gathered like this run's own, not synthesised again."""
    adopted = get_endpoint(backend).queued(cache_keys)
    if adopted:
        ids = ", ".join(sid for _, job in adopted for sid in job.segment_ids)
        run_logger().info("adopted %d request(s) an earlier run left queued: %s", len(adopted), ids)
    return adopted


@task(name="stage-requests", **RETRY_TRANSIENT)
def stage_requests(backend: str, jobs: list[SynthesisJob]) -> dict[str, str]:
    """Upload every request payload (while the endpoint wakes); request id -> input location."""
    endpoint = get_endpoint(backend)
    staged = {job.request_id: endpoint.stage(job) for job in jobs}
    run_logger().info("staged %d request(s)", len(staged))
    return staged


@task(name="gather-outputs", cache_policy=NO_CACHE, task_run_name="gather-{submission.request_id}")
def gather_outputs(
    backend: str,
    submission: Submission,
    job: SynthesisJob,
    cache_dir: str,
    deadline_seconds: float = 3600.0,
) -> list[SegmentOutcome]:
    logger = run_logger()
    try:
        body = get_endpoint(backend).fetch(submission, deadline_seconds)
        outputs = parse_batch_output(body, job.segment_ids)
    except SynthesisError as exc:
        logger.warning("request %s failed: %s", submission.request_id, exc)
        return [SegmentOutcome(sid, job.cache_keys[sid], str(exc), exc.transient) for sid in job.segment_ids]
    cache = ClipCache(Path(cache_dir))
    expected_rate = EXPECTED_RATES.get(job.payload["voice"]["mode"])
    outcomes = []
    for segment_id in job.segment_ids:
        output, key = outputs[segment_id], job.cache_keys[segment_id]
        if output.error or output.wav_bytes is None:
            outcomes.append(SegmentOutcome(segment_id, key, output.error, output.retryable))
            continue
        try:
            samples = validate_clip(output.wav_bytes, expected_rate)
        except TransientSynthesisError as exc:
            outcomes.append(SegmentOutcome(segment_id, key, str(exc), True))
            continue
        text = next(s["text"] for s in job.payload["segments"] if s["id"] == segment_id)
        note = {"text": text, "voice": {k: v for k, v in job.payload["voice"].items() if k != "ref_audio"}}
        path = cache.put_wav(key, output.wav_bytes, note)
        outcomes.append(SegmentOutcome(segment_id, key, clip_samples=samples, clip_path=str(path)))
        logger.debug("segment %s synthesised: %d samples, cached as %s", segment_id, samples, key[:12])
    get_endpoint(backend).forget(submission)  # every clip is cached: nothing left to adopt
    done = [o.id for o in outcomes if o.ok]
    # One line a request, not a segment: at 1,000 segments per-segment lines cost more than the work.
    logger.info(
        "request %s: %d of %d segment(s) synthesised and cached: %s",
        submission.request_id, len(done), len(outcomes), ", ".join(done),
    )  # fmt: skip
    return outcomes


def validate_clip(wav_bytes: bytes, expected_rate: int | None) -> int:
    """Sample count of a usable clip; raises TransientSynthesisError when it is not one."""
    try:
        audio, rate = decode_wav(wav_bytes)
    except ValueError as exc:
        raise TransientSynthesisError(f"output rejected: {exc}") from None
    if expected_rate is not None and rate != expected_rate:
        raise TransientSynthesisError(f"output rejected: {rate} Hz, expected {expected_rate} Hz")
    if audio.size == 0 or not np.any(audio):
        raise TransientSynthesisError("output rejected: the clip is empty or silent")
    if not np.all(np.isfinite(audio)) or audio.size > MAX_SEGMENT_SECONDS * rate:
        raise TransientSynthesisError("output rejected: non-finite samples or implausible length")
    return int(audio.size)
