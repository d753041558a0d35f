"""render-narration: script -> validated plan -> (wake, synthesise, gather) -> assembled track.

Reads top to bottom like the lifecycle. The endpoint is scaled down whatever happens; the run
fails (after recording every finished segment) when any segment could not be synthesised.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from prefect import flow
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from narrate.aws_mode import aws_for, aws_for_endpoint
from narrate.cache import ClipCache
from narrate.endpoints import Submission, SynthesisJob, endpoint_for
from narrate.errors import ConfigError, NarrateError, RenderFailed, VoicesFailed
from narrate.log import run_logger
from narrate.manifest import RenderManifest, RenderState, SegmentRecord, SegmentStatus, VideoRecord
from narrate.payloads import emulation_note
from narrate.render_slot import render_slot
from narrate.script import Backend, Engine, GenerationSettings, NarrationScript
from narrate.settings import Settings, get_settings
from narrate.storage import fetch_to_local
from tasks.assembly import assemble_track
from tasks.endpoint import ensure_endpoint, scale_down, wake_endpoint
from tasks.report import publish_render_report
from tasks.script import PlannedSegment, load_narration, plan_segments
from tasks.storage import look_up_cache, mirror_manifest
from tasks.synthesis import (
    SegmentOutcome,
    adopt_queued_requests,
    gather_outputs,
    plan_jobs,
    stage_requests,
    submit_segments,
)
from tasks.video import VideoPlan, plan_video, retime_to_narration

# Submits and gathers in flight at once; the endpoint's MaxConcurrentInvocationsPerInstance queues
# the rest on its side, so more threads would only hold more polls open.
FAN_OUT_WORKERS = 8


def default_out_dir(script: str, settings: Settings) -> Path:
    return settings.renders_dir / Path(script).stem


@flow(
    name="render-narration",
    flow_run_name="render-{script}",
    task_runner=ThreadPoolTaskRunner(max_workers=FAN_OUT_WORKERS),
    validate_parameters=True,
)
def render_narration(
    script: Annotated[
        str, Field(min_length=1, description="Narration script (YAML/JSON): a path or s3:// URI.")
    ],
    out_dir: Annotated[
        str | None, Field(description="Folder for the outputs; default renders/<name>/.")
    ] = None,
    voice_engine: Annotated[
        Engine | None, Field(description="Speak with this engine instead of the script's voice.")
    ] = None,
    backend: Annotated[
        Backend | None, Field(description="Endpoint that synthesises; default NARRATE_BACKEND.")
    ] = None,
    generation: Annotated[
        GenerationSettings | None, Field(description="Sampling settings instead of the script's (Qwen).")
    ] = None,
    voices: Annotated[
        list[str] | None, Field(description="Named voices of the script, each into <out_dir>/<name>/.")
    ] = None,
    video: Annotated[
        str | None, Field(description="Screen recording to re-time to each narration (video.mp4).")
    ] = None,
    marks: Annotated[
        str | None, Field(description="Scene marks of the recording; default the script's video.marks.")
    ] = None,
) -> dict[str, Any]:
    """Render a narration script to a track, timeline and captions (and the re-timed recording).

    Args:
        script: Narration script (YAML or JSON): a path or an s3:// URI.
        out_dir: Folder for the outputs; default renders/<script name>/.
        voice_engine: Speak with this engine instead of the script's voice (e.g. dev).
        backend: What synthesises; default NARRATE_BACKEND (sagemaker).
        generation: Sampling settings instead of the script's (Qwen engines): seed, temperature, ...
        voices: Named voices of the script (its `voices:`); each renders into <out_dir>/<name>/ and all
            share one endpoint wake.
        video: A screen recording to re-time to each narration; default the script's `video:`.
        marks: The recording's scene marks; default the script's `video.marks`.
    """
    settings = get_settings()
    backend = backend or settings.backend
    if voices and voice_engine is not None:
        raise ConfigError("give either voices (named voices of the script) or voice_engine, not both")
    with aws_for(backend), render_slot(settings.endpoint_name):
        local_script = str(fetch_to_local(script, settings.state_dir / "scripts"))
        out = Path(out_dir) if out_dir else default_out_dir(local_script, settings)
        narration = load_narration(local_script)
        wants_video = video is not None or marks is not None or narration.video is not None
        video_plan = plan_video(narration, video, marks) if wants_video else None
        if not voices:
            return run_render(
                local_script, out, voice_engine, backend, generation=generation, video=video_plan
            )
        names = list(dict.fromkeys(voices))
        return render_voices(local_script, out, names, backend, generation, video_plan)


def render_voices(
    script: str,
    out: Path,
    names: list[str],
    backend: str,
    generation: GenerationSettings | None,
    video: VideoPlan | None,
) -> dict[str, Any]:
    """Each named voice into its own folder under one hold of the endpoint, so the instance wakes once
    for every voice it speaks; videos are re-timed after the release. A failed voice does not stop the
    others."""
    minimums = video.action_seconds if video else None
    narrations = {name: load_narration(script, None, generation, name, minimums) for name in names}
    holder = f"{_holder()}-voices"
    spoken_by_backend = [n for n, s in narrations.items() if endpoint_for(s.voice.engine, backend) == backend]
    results: dict[str, Any] = {}
    failures: dict[str, str] = {}
    with _held(backend, holder, active=_needs_synthesis(narrations, spoken_by_backend)):
        for name in names:
            try:
                results[name] = run_render(
                    script, out / name, None, backend, generation=generation, voice_name=name,
                    min_seconds=minimums,
                )  # fmt: skip
            except NarrateError as exc:
                failures[name] = str(exc).splitlines()[0]
                run_logger().error("voice %s failed: %s", name, failures[name])
    for name, result in results.items() if video else ():
        try:
            result["outputs"]["video"] = add_video(out / name, video)
        except NarrateError as exc:
            failures[name] = str(exc).splitlines()[0]
    if failures:
        raise VoicesFailed(failures, str(out))
    return {"out_dir": str(out), "voices": results}


def add_video(out: Path, video: VideoPlan, manifest: RenderManifest | None = None) -> str:
    """Re-time the recording to the finished narration in ``out``; its manifest records the MP4."""
    manifest = manifest or RenderManifest.load(out / "manifest.json")
    manifest.state, manifest.video = RenderState.RUNNING, video_record(video)
    try:
        with _stage(manifest, "video"):
            path = retime_to_narration(video, manifest.outputs, str(out))
    except BaseException as exc:
        manifest.state, manifest.error = RenderState.FAILED, f"video: {exc}"[:500]
        raise
    else:
        manifest.outputs, manifest.state = manifest.outputs | {"video": path}, RenderState.COMPLETED
    finally:
        manifest.save()
    return path


def video_record(video: VideoPlan | None) -> VideoRecord | None:
    return VideoRecord(recording=str(video.recording), marks=str(video.marks_path)) if video else None


def _needs_synthesis(narrations: dict[str, NarrationScript], names: list[str]) -> bool:
    cache = ClipCache(get_settings().cache_dir)
    return any(not cache.contains(p.cache_key) for name in names for p in plan_segments(narrations[name]))


@contextmanager
def _held(backend: str, holder: str, active: bool) -> Iterator[None]:
    """Hold the endpoint awake around several renders (each still holds and releases its own turn)."""
    if not active:
        yield
        return
    ensure_endpoint(backend, holder)
    waking = wake_endpoint.submit(backend, holder, get_settings().wake_deadline_seconds)
    try:
        yield
    finally:
        waking.wait()  # a wake still running would raise MinCapacity again after the release
        scale_down(backend, holder)


def run_render(
    script: str,
    out: Path,
    voice_engine: Engine | None,
    backend: str,
    only: set[str] | None = None,
    earlier_errors: dict[str, str] | None = None,
    generation: GenerationSettings | None = None,
    voice_name: str | None = None,
    video: VideoPlan | None = None,
    min_seconds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The whole lifecycle for one script; ``only`` limits synthesis to these segment ids (a retry:
    the others come from the cache or stay failed with their ``earlier_errors``). A Polly voice is
    spoken by the ``polly`` endpoint whatever ``backend`` says; the manifest records that one."""
    settings = get_settings()
    minimums = video.action_seconds if video else min_seconds
    narration = load_narration(script, voice_engine, generation, voice_name, minimums)
    endpoint = endpoint_for(narration.voice.engine, backend)
    plan = plan_segments(narration)
    manifest = _start_manifest(script, narration, plan, endpoint, out, voice_engine)
    manifest.generation, manifest.voice_name = generation, voice_name
    manifest.min_seconds, manifest.video = minimums or None, video_record(video)
    manifest.emulated = emulation_note(narration.voice)
    if manifest.emulated:
        run_logger().warning("EMULATED: %s; the outputs are not Amazon Polly's voice and say so "
                             "(NARRATE_AWS=real renders with Polly)", manifest.emulated)  # fmt: skip
    try:
        with aws_for_endpoint(backend, endpoint):
            hits, todo, outputs = _render(
                narration, plan, manifest, endpoint, out, settings, only, earlier_errors, video
            )
    except BaseException as exc:
        if manifest.state is RenderState.RUNNING:
            manifest.state, manifest.error = RenderState.FAILED, f"{exc.__class__.__name__}: {exc}"[:500]
            manifest.save()
        raise
    finally:
        if endpoint == Backend.SAGEMAKER:
            _mirror(manifest, settings)
        publish_render_report(manifest)
    return {"out_dir": str(out), "outputs": outputs, "cached": len(hits), "synthesised": len(todo)}


def _render(
    narration: NarrationScript,
    plan: list[PlannedSegment],
    manifest: RenderManifest,
    backend: str,
    out: Path,
    settings: Settings,
    only: set[str] | None = None,
    earlier_errors: dict[str, str] | None = None,
    video: VideoPlan | None = None,
) -> tuple[set[str], list[PlannedSegment], dict[str, str]]:
    cache_dir = str(settings.cache_dir)
    hits = look_up_cache(plan, cache_dir)
    for planned in plan:
        if planned.cache_key in hits:
            _record(manifest, planned.id, SegmentStatus.DONE, cache_hit=True)
        elif only is not None and planned.id not in only:
            record = manifest.segment(planned.id)
            record.status = SegmentStatus.FAILED
            record.error = f"not retried this time: {(earlier_errors or {}).get(planned.id, 'no output')}"
    manifest.save()

    todo = _unique_by_key([p for p in plan if p.cache_key not in hits and (only is None or p.id in only)])
    if todo:
        holder = _holder()
        try:
            with _stage(manifest, "ensure"):
                ensure_endpoint(backend, holder)
            waking = wake_endpoint.submit(backend, holder, settings.wake_deadline_seconds)
            adopted = adopt_queued_requests(backend, {p.cache_key for p in todo})
            adopted_keys = {key for _, job in adopted for key in job.cache_keys.values()}
            jobs = plan_jobs(
                narration, [p for p in todo if p.cache_key not in adopted_keys], settings.batch_size
            )
            with _stage(manifest, "stage requests"):
                staged = stage_requests(backend, jobs)

            def awake() -> None:  # requests queue at the endpoint meanwhile: no time lost
                with _stage(manifest, "wait for wake"):
                    waking.result()

            with _stage(manifest, "synthesise"):
                _synthesise(backend, narration, todo, jobs, staged, plan, manifest, settings, awake, adopted)
            manifest.last_output_at = time.time()
        finally:
            with _stage(manifest, "scale down"):
                usage = scale_down(backend, holder)
            manifest.released_at = time.time()
            manifest.gpu_seconds, manifest.cost_usd = usage.gpu_seconds, usage.cost_usd
            manifest.endpoint_released = usage.released
            manifest.save()

    failed = manifest.failed()
    if failed:
        manifest.state, manifest.error = RenderState.FAILED, f"{len(failed)} segment(s) failed"
        manifest.save()
        raise RenderFailed(failed, str(out / "manifest.json"))
    with _stage(manifest, "assemble"):
        outputs = assemble_track(narration, plan, cache_dir, str(out), hits)
    manifest.outputs, manifest.state = outputs, RenderState.COMPLETED
    manifest.save()  # the narration is finished whatever the video step does
    if video is not None:
        outputs = outputs | {"video": add_video(out, video, manifest)}
    return hits, todo, outputs


def _synthesise(
    backend: str,
    narration: NarrationScript,
    todo: list[PlannedSegment],
    jobs: list[SynthesisJob],
    staged: dict[str, str],
    plan: list[PlannedSegment],
    manifest: RenderManifest,
    settings: Settings,
    awake: Callable[[], None],
    adopted: list[tuple[Submission, SynthesisJob]],
) -> None:
    """Rounds of submit + gather; segments that failed transiently go again, up to max_attempts.

    The first round is submitted before the endpoint is awake (it queues them) and gathered after,
    with the ``adopted`` requests an earlier run left queued.
    """
    logger = run_logger()
    ids_by_key: dict[str, list[str]] = {}
    for planned in plan:
        ids_by_key.setdefault(planned.cache_key, []).append(planned.id)
    todo_by_key = {p.cache_key: p for p in todo}
    for attempt in range(1, settings.max_attempts + 1):
        retry: list[PlannedSegment] = []
        first_round = attempt == 1
        waiting = adopted if first_round else []
        for batch in _run_round(
            backend, jobs, staged, settings, awake if first_round else lambda: None, waiting
        ):
            for outcome in batch:
                if outcome.cache_key not in todo_by_key:  # an adopted request's other segment: cached
                    continue
                final = outcome.ok or not outcome.retryable or attempt == settings.max_attempts
                for segment_id in ids_by_key[outcome.cache_key]:
                    _record_outcome(manifest, segment_id, outcome, final)
                if not final:
                    retry.append(todo_by_key[outcome.cache_key])
            manifest.save()  # once per request, as it comes in: a crash later loses nothing
        if not retry:
            return
        delay = settings.retry_base_seconds * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
        logger.warning("%d segment(s) failed transiently; retrying in %.1f s", len(retry), delay)
        time.sleep(delay)
        jobs, staged = plan_jobs(narration, retry, settings.batch_size), {}


def _run_round(
    backend: str,
    jobs: list[SynthesisJob],
    staged: dict[str, str],
    settings: Settings,
    before_gather: Callable[[], None],
    adopted: list[tuple[Submission, SynthesisJob]],
) -> Iterator[list[SegmentOutcome]]:
    """The outcomes of each request as soon as it is settled (gathered, or failed to submit)."""
    cache_dir = str(settings.cache_dir)
    submits = {submit_segments.submit(backend, job, staged.get(job.request_id)): job for job in jobs}
    before_gather()
    deadline = settings.output_deadline_seconds
    gathers = [gather_outputs.submit(backend, sub, job, cache_dir, deadline) for sub, job in adopted]
    for future in as_completed(list(submits)):
        job = submits[future]
        try:
            submission = future.result()
        except Exception as exc:  # retries exhausted: the whole request failed
            error, retryable = str(exc), getattr(exc, "transient", False)
            yield [SegmentOutcome(sid, job.cache_keys[sid], error, retryable) for sid in job.segment_ids]
            continue
        gathers.append(
            gather_outputs.submit(backend, submission, job, cache_dir, settings.output_deadline_seconds)
        )
    for future in as_completed(gathers):
        yield future.result()


def _mirror(manifest: RenderManifest, settings: Settings) -> None:
    try:
        uri = mirror_manifest(manifest, settings.bucket, settings.s3_prefix, settings.kms_key_id)
    except Exception as exc:  # the local manifest is the record; the copy is for other machines
        run_logger().warning("could not copy the manifest to S3: %s", exc)
        return
    run_logger().info("manifest copied to %s", uri)


def _holder() -> str:
    """Who holds the endpoint awake: this flow run (a fresh id outside a run)."""
    from prefect.runtime import flow_run

    return str(flow_run.get_id() or uuid.uuid4())


@contextmanager
def _stage(manifest: RenderManifest, name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        manifest.stage_seconds[name] = round(time.monotonic() - started, 3)
        run_logger().info("stage %s: %.2f s", name, manifest.stage_seconds[name])


def _unique_by_key(segments: list[PlannedSegment]) -> list[PlannedSegment]:
    """Segments with the same sound are synthesised once."""
    seen: dict[str, PlannedSegment] = {}
    for segment in segments:
        seen.setdefault(segment.cache_key, segment)
    return list(seen.values())


def _start_manifest(
    script: str,
    narration: NarrationScript,
    plan: list[PlannedSegment],
    backend: str,
    out: Path,
    voice_engine: Engine | None,
) -> RenderManifest:
    manifest = RenderManifest(
        script=str(script),
        voice_engine=voice_engine.value if voice_engine else None,
        script_sha256=hashlib.sha256(Path(script).read_bytes()).hexdigest(),
        title=narration.title,
        engine=narration.voice.engine.value,
        backend=backend,
        out_dir=str(out),
        segments=[SegmentRecord(id=p.id, cache_key=p.cache_key) for p in plan],
    )
    manifest.save()
    return manifest


def _record(
    manifest: RenderManifest, segment_id: str, status: SegmentStatus, cache_hit: bool = False
) -> None:
    record = manifest.segment(segment_id)
    record.status, record.cache_hit = status, cache_hit


def _record_outcome(manifest: RenderManifest, segment_id: str, outcome: SegmentOutcome, final: bool) -> None:
    record = manifest.segment(segment_id)
    record.attempts += 1
    record.error = outcome.error
    record.clip_path, record.clip_samples = outcome.clip_path, outcome.clip_samples
    if outcome.ok:
        record.status = SegmentStatus.DONE
    elif final:
        record.status = SegmentStatus.FAILED
