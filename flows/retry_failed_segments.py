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
from narrate.aws_mode import aws_for
from narrate.cache import ClipCache
from narrate.errors import ConfigError, NarrateError
from narrate.log import run_logger
from narrate.manifest import RenderManifest, SegmentStatus
from narrate.render_slot import render_slot
from narrate.script import Backend, Engine
from narrate.settings import get_settings
from narrate.storage import fetch_to_local
from tasks.script import load_narration
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
    with aws_for(settings.backend if manifest.startswith("s3://") else Backend.INPROCESS):
        record = load_manifest(manifest, settings.state_dir / "manifests")
    script = Path(record.script)
    if not script.is_file() or hashlib.sha256(script.read_bytes()).hexdigest() != record.script_sha256:
        raise ConfigError(
            f"manifest: {record.script} changed (or is gone) since that render; render it again instead "
            "(unchanged segments come from the cache)"
        )
    retry = segments_to_retry(record, ClipCache(settings.cache_dir), segment_ids)
    voice_engine = Engine(record.voice_engine) if record.voice_engine else None
    video = video_again(record, voice_engine)
    with aws_for(record.backend), render_slot(settings.endpoint_name):
        result = run_render(
            record.script, Path(record.out_dir), voice_engine, record.backend, only=retry,
            earlier_errors=record.failed(), generation=record.generation, voice_name=record.voice_name,
            video=video, min_seconds=record.min_seconds,
        )  # fmt: skip
    return result | {"retried": sorted(retry)}


def video_again(record: RenderManifest, voice_engine: Engine | None) -> VideoPlan | None:
    """The render's recording, planned again so the retried narration is re-timed into it too. If it
    cannot be (the recording or its marks gone), the narration is still retried, laid out with the
    same least lengths, and the log says to run ``narrate video`` again."""
    if record.video is None:
        return None
    narration = load_narration(record.script, voice_engine, record.generation, record.voice_name)
    try:
        return plan_video(narration, record.video.recording, record.video.marks)
    except NarrateError as exc:
        run_logger().warning("the video is not re-timed this time: %s", str(exc).splitlines()[0])
        return None


def load_manifest(location: str, folder: Path) -> RenderManifest:
    path = fetch_to_local(location, folder)
    if not path.is_file():
        raise ConfigError(f"manifest: {location} does not exist; give a render's manifest.json")
    return RenderManifest.load(path)
