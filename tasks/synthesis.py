"""Synthesis tasks: group segments into requests, submit them, gather and validate their outputs; and
:func:`synthesise`, the rounds of submit + gather (with back-off) that a render runs them in.

A submit is retried by Prefect on transient errors only (throttling, timeouts, 5xx). Gathering never
raises for one bad segment: each segment gets its own outcome, and every finished clip goes into the
cache at once, so a crash later loses nothing.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.futures import as_completed
from prefect.states import State
from prefect.tasks import exponential_backoff

from model_server.voices import NATIVE_SAMPLE_RATES
from narrate.check.gate import GateBounds, expected_seconds
from narrate.endpoints import EndpointKind, JobSummary, Submission, SynthesisJob, get_endpoint
from narrate.errors import ModelNotLoaded, OutputInvalid, SynthesisError, is_transient
from narrate.log import run_logger
from narrate.manifest import RenderManifest
from narrate.script import GenerationSettings, NarrationScript, Voice
from narrate.settings import Settings
from narrate.synthesis.cache import ClipCache, decode_wav
from narrate.synthesis.polly_speech import SAMPLE_RATE as POLLY_SAMPLE_RATE
from narrate.synthesis.requests import ModelIdentity, batch_request, voice_request
from narrate.synthesis.responses import parse_batch_output
from tasks.quality import Gate, JudgedTake, judge_output
from tasks.script import PlannedSegment

if TYPE_CHECKING:
    from tasks.run import RenderRun

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
    judged: JudgedTake | None = None  # the quality gate's measures and verdict of the clip

    @property
    def ok(self) -> bool:
        return self.error is None


def plan_jobs(
    narration: NarrationScript, identity: ModelIdentity, segments: list[PlannedSegment], batch_size: int
) -> list[SynthesisJob]:
    """Requests of up to ``batch_size`` segments of similar length (a batch runs as long as its longest),
    the longest first: the endpoint takes them in order, so its last requests are its shortest and the
    instances, released together, finish close together. A request holds one voice and one seed, so
    segments with a style or a take of their own (a re-roll's seed) go in requests of their own kind,
    batched with their like."""
    groups: dict[tuple[Voice, GenerationSettings], list[PlannedSegment]] = {}
    for planned in segments:
        sound = (planned.voice or narration.voice, planned.generation or narration.generation)
        groups.setdefault(sound, []).append(planned)
    jobs: list[tuple[float, SynthesisJob]] = []
    for (voice, generation), members in groups.items():
        request_voice = voice_request(voice, identity)
        ordered = sorted(members, key=lambda s: expected_seconds(s.speech), reverse=True)
        for start in range(0, len(ordered), batch_size):
            batch = ordered[start : start + batch_size]
            request = batch_request(request_voice, [(s.id, s.speech) for s in batch], generation)
            job = SynthesisJob(uuid.uuid4().hex, request, {s.id: s.cache_key for s in batch})
            jobs.append((expected_seconds(batch[0].speech), job))
    jobs.sort(key=lambda longest_and_job: longest_and_job[0], reverse=True)  # stable: groups stay in order
    return [job for _, job in jobs]


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
def submit_segments(
    endpoint: EndpointKind, job: SynthesisJob, input_location: str | None, settings: Settings
) -> Submission:
    """Invoke the endpoint for one request, uploading it first unless already staged."""
    served_by = get_endpoint(endpoint, settings)
    submission = served_by.submit(job, input_location or served_by.stage(job))
    run_logger().info("submitted %d segment(s): %s", len(job.segment_ids), ", ".join(job.segment_ids))
    return submission


@task(name="adopt-queued-requests", **RETRY_TRANSIENT)
def adopt_queued_requests(
    endpoint: EndpointKind, cache_keys: set[str], settings: Settings
) -> list[tuple[Submission, JobSummary]]:
    """Requests an earlier run left queued on the endpoint for these sounds (it failed or was killed
    before collecting them): they are gathered like this run's own, not synthesised again."""
    adopted = get_endpoint(endpoint, settings).queued(cache_keys)
    if adopted:
        ids = ", ".join(sid for _, summary in adopted for sid in summary.segment_ids)
        run_logger().info("adopted %d request(s) an earlier run left queued: %s", len(adopted), ids)
    return adopted


@task(name="stage-requests", **RETRY_TRANSIENT)
def stage_requests(endpoint: EndpointKind, jobs: list[SynthesisJob], settings: Settings) -> dict[str, str]:
    """Upload every request (while the endpoint wakes); request id -> input location."""
    served_by = get_endpoint(endpoint, settings)
    staged = {job.request_id: served_by.stage(job) for job in jobs}
    run_logger().info("staged %d request(s)", len(staged))
    return staged


@task(name="gather-outputs", cache_policy=NO_CACHE, task_run_name="gather-{submission.request_id}")
def gather_outputs(
    endpoint: EndpointKind, submission: Submission, summary: JobSummary, settings: Settings
) -> list[SegmentOutcome]:
    logger = run_logger()
    served_by = get_endpoint(endpoint, settings)
    try:
        body = served_by.fetch(submission, settings.output_deadline_seconds)
        outputs = parse_batch_output(body, summary.segment_ids)
    except SynthesisError as exc:
        logger.warning("request %s failed: %s", submission.request_id, exc)
        keys = summary.cache_keys
        return [SegmentOutcome(sid, keys[sid], str(exc), exc.transient) for sid in summary.segment_ids]
    cache = ClipCache(settings.cache_dir)
    expected_rate = EXPECTED_RATES.get(summary.mode)
    bounds = GateBounds.from_settings(settings)
    outcomes = []
    for note in summary.segments:
        output, key = outputs[note.id], note.cache_key
        if output.error or output.wav_bytes is None:
            outcomes.append(SegmentOutcome(note.id, key, output.error, output.retryable))
            continue
        try:
            audio, rate = validate_clip(output.wav_bytes, expected_rate)
        except OutputInvalid as exc:
            outcomes.append(SegmentOutcome(note.id, key, str(exc), True))
            continue
        judged = judge_output(audio, rate, note.text, summary.voice, output.measured, bounds)
        cache_note = {"text": note.text, "voice": summary.voice, "measures": judged.measures.model_dump()}
        path = cache.put_wav(key, output.wav_bytes, cache_note)
        outcomes.append(
            SegmentOutcome(note.id, key, clip_samples=len(audio), clip_path=str(path), judged=judged)
        )
        logger.debug("segment %s synthesised: %d samples, cached as %s; gate: %s", note.id, len(audio),
                     key[:12], judged.verdict.summary())  # fmt: skip
    served_by.forget(submission)  # every clip is cached: nothing left to adopt
    done = [o.id for o in outcomes if o.ok]
    # One line a request, not a segment: at 1,000 segments per-segment lines cost more than the work.
    logger.info(
        "request %s: %d of %d segment(s) synthesised and cached: %s",
        submission.request_id, len(done), len(outcomes), ", ".join(done),
    )  # fmt: skip
    return outcomes


def validate_clip(wav_bytes: bytes, expected_rate: int | None) -> tuple[np.ndarray, int]:
    """The samples and rate of a usable clip; raises OutputInvalid (transient) when it is not one."""
    try:
        audio, rate = decode_wav(wav_bytes)
    except ValueError as exc:
        raise OutputInvalid(f"output rejected: {exc}") from None
    if expected_rate is not None and rate != expected_rate:
        raise OutputInvalid(f"output rejected: {rate} Hz, expected {expected_rate} Hz")
    if audio.size == 0 or not np.any(audio):
        raise OutputInvalid("output rejected: the clip is empty or silent")
    if not np.all(np.isfinite(audio)) or audio.size > MAX_SEGMENT_SECONDS * rate:
        raise OutputInvalid("output rejected: non-finite samples or implausible length")
    return audio, rate


# --- the rounds of a render ------------------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    """The requests of one round: this run's (staged ones with their input locations), and those an
    earlier run left queued, which are only gathered."""

    jobs: list[SynthesisJob]
    staged: dict[str, str]
    adopted: list[tuple[Submission, JobSummary]]


def synthesise(run: RenderRun, todo: list[PlannedSegment], first: Round, awake: Callable[[], None]) -> None:
    """Rounds of submit + gather until every segment of ``todo`` has a take that passed the quality
    gate or failed for good: a transient failure goes again (up to max_attempts, after a jittered
    back-off), a take the gate fails is re-rolled with the next seed (up to the script's ``takes``),
    batched with the other re-rolls of its round.

    The first round is submitted before the endpoint is awake (it queues them), and gathered after
    ``awake`` returns, with the requests an earlier run left queued.
    """
    settings, manifest = run.settings, run.manifest
    gate = Gate.of(run.narration, run.identity, settings)
    cache = ClipCache(settings.cache_dir)
    ids_by_key: dict[str, list[str]] = {}
    for planned in run.plan:
        ids_by_key.setdefault(planned.cache_key, []).append(planned.id)
    todo_by_key = {p.cache_key: p for p in todo}
    attempts: dict[str, int] = {}
    this_round, before_gather = first, awake
    while True:
        retry: list[PlannedSegment] = []
        rerolls: list[PlannedSegment] = []
        for outcomes in settle(run, this_round, before_gather):
            for outcome in outcomes:
                planned = todo_by_key.get(outcome.cache_key)
                if planned is None:  # an adopted request's other segment: cached
                    continue
                attempts[outcome.cache_key] = attempts.get(outcome.cache_key, 0) + 1
                ids = ids_by_key[outcome.cache_key]
                if not outcome.ok or outcome.judged is None:
                    final = not outcome.retryable or attempts[outcome.cache_key] >= settings.max_attempts
                    for segment_id in ids:
                        manifest.record_outcome(segment_id, outcome, final)
                    retry += [] if final else [planned]
                    continue
                following = judge_take(gate, manifest, planned, outcome, ids, cache)
                if following is not None:
                    ids_by_key[following.cache_key] = ids
                    todo_by_key[following.cache_key] = following
                    rerolls.append(following)
            manifest.checkpoint()  # as requests come in (every clip is cached already)
        if not retry and not rerolls:
            break
        if retry:
            worst = max(attempts[p.cache_key] for p in retry)
            delay = settings.retry_base_seconds * 2 ** (worst - 1) * random.uniform(0.5, 1.5)
            run_logger().warning("%d segment(s) failed transiently; retrying in %.1f s", len(retry), delay)
            time.sleep(delay)
        jobs = plan_jobs(run.narration, run.identity, retry + rerolls, settings.batch_size)
        this_round, before_gather = Round(jobs, {}, []), lambda: None
    manifest.record_last_output()
    manifest.save()


def judge_take(
    gate: Gate,
    manifest: RenderManifest,
    planned: PlannedSegment,
    outcome: SegmentOutcome,
    segment_ids: list[str],
    cache: ClipCache,
) -> PlannedSegment | None:
    """Record a synthesised take's verdict for the segments it speaks; the take to re-roll when it
    failed the gate and another may pass (None: it is kept, or the segments are settled without it)."""
    assert outcome.judged is not None
    record = gate.record(planned, outcome.judged)
    for segment_id in segment_ids:
        manifest.record_take(segment_id, record)
    if record.passed or planned.picked:
        for segment_id in segment_ids:
            manifest.record_outcome(segment_id, outcome, final=True)
        return None
    following = gate.next_take(planned)
    if following is None:
        for segment_id in segment_ids:
            gate.settle_without_pass(manifest, segment_id, cache, attempted=True)
        return None
    run_logger().info("segment %s: take %d failed the quality gate (%s); re-rolling as take %d",
                      ", ".join(segment_ids), planned.take, record.summary, following.take)  # fmt: skip
    for segment_id in segment_ids:
        manifest.ask_take(segment_id, following.cache_key, attempted=True)
    return following


def settle(
    run: RenderRun, requests: Round, before_gather: Callable[[], None]
) -> Iterator[list[SegmentOutcome]]:
    """The outcomes of each request as soon as it is settled (gathered, or failed to submit)."""
    endpoint, settings = run.endpoint, run.settings
    submits = {
        submit_segments.submit(endpoint, job, requests.staged.get(job.request_id), settings): job
        for job in requests.jobs
    }
    before_gather()
    gathers = [gather_outputs.submit(endpoint, sub, summary, settings) for sub, summary in requests.adopted]
    in_flight = {job.request_id for job in requests.jobs} | {sub.request_id for sub, _ in requests.adopted}
    try:
        for future in as_completed(list(submits)):
            job = submits[future]
            try:
                submission = future.result()
            except Exception as exc:  # retries exhausted: the whole request failed
                error, retryable = str(exc), is_transient(exc)
                yield [SegmentOutcome(sid, job.cache_keys[sid], error, retryable) for sid in job.segment_ids]
                continue
            gathers.append(gather_outputs.submit(endpoint, submission, job.summary(), settings))
        for future in as_completed(gathers):
            yield future.result()
    except ModelNotLoaded:  # every answer would be this refusal: stop waiting, and no later run adopts them
        get_endpoint(endpoint, settings).stop_fetching(in_flight, forget=True)
        raise
    except BaseException:  # the render ends here: nothing else is waited for (a re-run adopts them)
        get_endpoint(endpoint, settings).stop_fetching(in_flight, forget=False)
        raise
