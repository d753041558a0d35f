"""render-narration: a narration script to a track, timeline and captions, and the recording re-timed.

The lifecycle of one render (:func:`render`), top to bottom: look up the cache -> size the fan-out
(the instances the work is worth) -> ensure the endpoint -> wake them (in the background) -> adopt
what an earlier run left queued -> plan and stage the requests -> synthesise -> scale down ->
assemble -> re-time the video. The endpoint is scaled down whatever happens; the run fails (after
recording every finished segment) when any segment could not be synthesised.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from narrate.aws.clients import AwsClients
from narrate.aws.s3 import fetch_to_local
from narrate.endpoints import Backend, EndpointKind, endpoint_for
from narrate.endpoints.preflight import endpoints_for, voices_asked
from narrate.endpoints.render_slot import render_slot
from narrate.endpoints.session import aws_for
from narrate.errors import ConfigError, NarrateError, VoicesFailed
from narrate.log import run_logger
from narrate.manifest import RenderManifest, VideoRecord
from narrate.outputs import RenderFolder
from narrate.provenance.config import Signing, signing_from
from narrate.script import Engine, GenerationSettings
from narrate.settings import Settings, get_settings
from narrate.synthesis.cache import ClipCache
from narrate.synthesis.requests import model_identity
from narrate.takes import load_picks
from tasks.assembly import assemble_track
from tasks.endpoint import hold_endpoint, holder_name, plan_fan_out
from tasks.report import publish_render_report
from tasks.run import RenderOptions, RenderRun, start_render
from tasks.script import ScriptOverrides, load_narration, plan_segments
from tasks.storage import look_up_cache, mirror_manifest
from tasks.synthesis import Round, adopt_queued_requests, plan_jobs, stage_requests, synthesise
from tasks.video import VideoPlan, plan_video, retime_to_narration

# Submits and gathers in flight at once; the endpoint's MaxConcurrentInvocationsPerInstance queues
# the rest on its side, so more threads would only hold more polls open.
FAN_OUT_WORKERS = 8


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
    kind = EndpointKind(backend or settings.backend)
    if voices and voice_engine is not None:
        raise ConfigError("give either voices (named voices of the script) or voice_engine, not both")
    overrides = ScriptOverrides(voice_engine=voice_engine, generation=generation)
    names = list(dict.fromkeys(voices or []))
    needed = endpoints_for(voices_asked(script, names, voice_engine, settings), kind, settings)
    with aws_for(needed, settings), render_slot(settings.endpoint_name):
        clients = AwsClients(settings.region)
        local_script = str(fetch_to_local(script, settings.state_dir / "scripts", clients))
        out = Path(out_dir) if out_dir else default_out_dir(local_script, settings)
        narration = load_narration(local_script, ScriptOverrides(), settings.max_segment_chars)
        wants_video = video is not None or marks is not None or narration.video is not None
        options = RenderOptions(overrides, plan_video(narration, video, marks) if wants_video else None)
        if not names:
            return run_render(local_script, out, kind, options, settings)
        return render_voices(local_script, out, names, kind, options, settings)


def render(run: RenderRun) -> dict[str, Any]:
    """The lifecycle of one render: only what the cache lacks is synthesised, on an endpoint held for
    just that long; then the track is assembled and the recording re-timed."""
    manifest, settings = run.manifest, run.settings
    lookup = look_up_cache(run)
    run = run.with_plan(lookup.plan)
    manifest.mark_cached(lookup.hits, run.options.only, run.options.earlier_errors)
    todo = run.to_synthesise(lookup)
    if todo:
        fan_out = plan_fan_out(run.endpoint, todo, settings)
        with hold_endpoint(run.endpoint, run.holder, settings, manifest, fan_out.instances) as endpoint:
            adopted = adopt_queued_requests(run.endpoint, {p.cache_key for p in todo}, settings)
            adopted_keys = {key for _, summary in adopted for key in summary.cache_keys.values()}
            fresh = [p for p in todo if p.cache_key not in adopted_keys]
            jobs = plan_jobs(run.narration, run.identity, fresh, fan_out.batch_size)
            with manifest.timed("stage requests"):
                staged = stage_requests(run.endpoint, jobs, settings)
            with manifest.timed("synthesise"):
                synthesise(run, todo, Round(jobs, staged, adopted), endpoint.awake)
    manifest.raise_if_failed()
    with manifest.timed("assemble"):
        outputs = assemble_track(run.track(), settings.cache_dir, run.out)
    manifest.complete(outputs)  # the narration is finished whatever the video step does
    if run.options.video is not None:
        outputs = outputs | {"video": add_video(run.out, run.options.video, manifest, run.signing)}
    return {"outputs": outputs, "cached": len(lookup.hits), "synthesised": len(todo)}


def run_render(
    script: str, out: Path, backend: EndpointKind, options: RenderOptions, settings: Settings
) -> dict[str, Any]:
    """One render of ``script`` into ``out``, recorded whatever happens: its manifest says how it
    ended, its report is published, and (on SageMaker) the manifest is copied to S3."""
    run = start_render(script, out, backend, options, settings)
    try:
        result = render(run)
    except BaseException as exc:
        run.manifest.fail_if_running(exc)
        raise
    finally:
        if run.endpoint is EndpointKind.SAGEMAKER:
            copy_manifest_to_s3(run.manifest, settings)
        publish_render_report(run.manifest)
    return {"out_dir": str(out)} | result


def render_voices(
    script: str,
    out: Path,
    names: list[str],
    backend: EndpointKind,
    options: RenderOptions,
    settings: Settings,
) -> dict[str, Any]:
    """Each named voice into its own folder under one hold of the endpoint, so the instance wakes once
    for every voice it speaks; videos are re-timed after the release. A failed voice does not stop the
    others."""
    minimums = options.video.action_seconds if options.video else None
    per_voice = {
        name: RenderOptions(ScriptOverrides(voice_name=name, generation=options.overrides.generation,
                                            min_seconds=minimums))
        for name in names
    }  # fmt: skip
    results: dict[str, Any] = {}
    failures: dict[str, str] = {}
    needed = any([needs_synthesis(script, backend, o, settings) for o in per_voice.values()])  # all checked
    with hold_endpoint(backend, f"{holder_name()}-voices", settings) if needed else nullcontext():
        for name in names:
            try:
                results[name] = run_render(script, out / name, backend, per_voice[name], settings)
            except NarrateError as exc:
                failures[name] = str(exc).splitlines()[0]
                run_logger().error("voice %s failed: %s", name, failures[name])
    signing = signing_from(settings) if options.video and results else None
    for name, result in results.items() if options.video else ():
        try:
            result["outputs"]["video"] = add_video(out / name, options.video, signing=signing)
        except NarrateError as exc:
            failures[name] = str(exc).splitlines()[0]
    if failures:
        raise VoicesFailed(failures, str(out))
    return {"out_dir": str(out), "voices": results}


def needs_synthesis(script: str, backend: EndpointKind, options: RenderOptions, settings: Settings) -> bool:
    """Whether a voice the backend speaks (not Polly's) has segments the cache lacks."""
    narration = load_narration(script, options.script_overrides(), settings.max_segment_chars)
    if endpoint_for(narration.voice.engine, backend) != backend:
        return False
    identity = model_identity(narration.voice, settings.server_config(), settings.aws)
    cache = ClipCache(settings.cache_dir)
    picks = load_picks(script)
    return any(not cache.contains(p.cache_key) for p in plan_segments(narration, identity, picks))


def add_video(
    out: Path, video: VideoPlan, manifest: RenderManifest | None = None, signing: Signing | None = None
) -> str:
    """Re-time the recording to the finished narration in ``out``; its manifest records the MP4 (signed
    with ``signing``, when given)."""
    manifest = manifest or RenderFolder(out).manifest()
    manifest.resume(VideoRecord(recording=str(video.recording), marks=str(video.marks_path)))
    try:
        with manifest.timed("video"):
            path = retime_to_narration(video, manifest.outputs, str(out), signing)
    except BaseException as exc:
        manifest.fail(f"video: {exc}")
        raise
    manifest.complete({"video": path})
    return path


def copy_manifest_to_s3(manifest: RenderManifest, settings: Settings) -> None:
    if settings.aws == "local" and manifest.released_at is None:
        # the embedded AWS lives in this process: a render that never held the endpoint made no bucket
        # there, and no other machine reads it (asking costs a second of a render that did nothing)
        run_logger().info("local mode, endpoint not used: the manifest stays in the render folder only")
        return
    try:
        uri = mirror_manifest(manifest, settings, AwsClients(settings.region))
    except Exception as exc:  # the local manifest is the record; the copy is for other machines
        run_logger().warning("could not copy the manifest to S3: %s", exc)
        return
    if uri is None:
        run_logger().info("no bucket %s yet: the manifest stays in the render folder only", settings.bucket)
    else:
        run_logger().info("manifest copied to %s", uri)


def default_out_dir(script: str, settings: Settings) -> Path:
    return settings.renders_dir / Path(script).stem
