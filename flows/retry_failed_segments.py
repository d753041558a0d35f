"""retry-failed-segments: from a render's manifest, synthesise only what failed or is missing, then
re-assemble the track. Works from narrate's own manifest, not from Prefect's task records."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from flows.render_narration import FAN_OUT_WORKERS, run_render
from narrate.aws.clients import AwsClients
from narrate.aws.s3 import fetch_to_local
from narrate.endpoints import BACKENDS, EndpointKind
from narrate.endpoints.render_slot import render_slot
from narrate.endpoints.session import aws_for
from narrate.errors import ConfigError, NarrateError
from narrate.log import run_logger
from narrate.manifest import RenderManifest, SegmentStatus
from narrate.script import Engine
from narrate.settings import Settings, get_settings
from narrate.synthesis.cache import ClipCache
from tasks.run import RenderOptions
from tasks.script import ScriptOverrides, load_narration
from tasks.video import VideoPlan, plan_video


def segments_to_retry(manifest: RenderManifest, cache: ClipCache, asked: list[str] | None) -> set[str]:
    """Segments that failed or whose clip is gone; ``asked`` narrows that to these ids."""
    wanted = {
        s.id
        for s in manifest.segments
        if s.status is not SegmentStatus.DONE or not cache.contains(s.cache_key)
    }
    if asked:
        unknown = sorted(set(asked) - {s.id for s in manifest.segments})
        if unknown:
            raise ConfigError(f"segment_ids: {unknown} are not segments of {manifest.script}")
        wanted &= set(asked)
    return wanted


@flow(
    name="retry-failed-segments",
    flow_run_name="retry-{manifest}",
    task_runner=ThreadPoolTaskRunner(max_workers=FAN_OUT_WORKERS),
    validate_parameters=True,
)
def retry_failed_segments(
    manifest: Annotated[str, Field(description="The render's manifest.json: a path or s3:// URI.")],
    segment_ids: Annotated[
        list[str] | None, Field(description="Only these segments (default: every failed or missing one).")
    ] = None,
) -> dict[str, Any]:
    """Re-synthesise a render's failed or missing segments and assemble its track again.

    Args:
        manifest: The render's manifest.json: a path or an s3:// URI.
        segment_ids: Only these segments (default: every failed or missing one).
    """
    settings = get_settings()
    with aws_for([settings.backend] if manifest.startswith("s3://") else [], settings):
        record = load_manifest(manifest, settings.state_dir / "manifests", AwsClients(settings.region))
    script = Path(record.script)
    if not script.is_file() or hashlib.sha256(script.read_bytes()).hexdigest() != record.script_sha256:
        raise ConfigError(
            f"manifest: {record.script} changed (or is gone) since that render; render it again instead "
            "(unchanged segments come from the cache)"
        )
    retry = segments_to_retry(record, ClipCache(settings.cache_dir), segment_ids)
    overrides = ScriptOverrides(
        voice_engine=Engine(record.voice_engine) if record.voice_engine else None,
        voice_name=record.voice_name,
        generation=record.generation,
        min_seconds=record.min_seconds,
    )
    options = RenderOptions(
        overrides, video_again(record, overrides, settings), frozenset(retry), record.failed()
    )
    with aws_for([record.endpoint], settings), render_slot(settings.endpoint_name):
        result = run_render(
            record.script, Path(record.out_dir), backend_of(record, settings), options, settings
        )
    return result | {"retried": sorted(retry)}


def backend_of(record: RenderManifest, settings: Settings) -> EndpointKind:
    """The backend the render ran on: its endpoint, unless that was Polly (which speaks Polly voices
    whatever the backend: the configured one then)."""
    return record.endpoint if record.endpoint in BACKENDS else settings.backend


def video_again(record: RenderManifest, overrides: ScriptOverrides, settings: Settings) -> VideoPlan | None:
    """The render's recording, planned again so the retried narration is re-timed into it too. If it
    cannot be (the recording or its marks gone), the narration is still retried, laid out with the
    same least lengths, and the log says to run ``narrate video`` again."""
    if record.video is None:
        return None
    without_minimums = ScriptOverrides(overrides.voice_engine, overrides.voice_name, overrides.generation)
    narration = load_narration(record.script, without_minimums, settings.max_segment_chars)
    try:
        return plan_video(narration, record.video.recording, record.video.marks)
    except NarrateError as exc:
        run_logger().warning("the video is not re-timed this time: %s", str(exc).splitlines()[0])
        return None


def load_manifest(location: str, folder: Path, clients: AwsClients) -> RenderManifest:
    path = fetch_to_local(location, folder, clients)
    if not path.is_file():
        raise ConfigError(f"manifest: {location} does not exist; give a render's manifest.json")
    return RenderManifest.load(path)
