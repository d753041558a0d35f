"""Storage tasks: which clips the cache already holds, and the manifest's copy in S3."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from narrate.aws.clients import AwsClients
from narrate.aws.s3 import s3_encryption
from narrate.endpoints.sagemaker_setup import bucket_exists
from narrate.log import run_logger
from narrate.manifest import RenderManifest
from narrate.settings import Settings
from narrate.synthesis.cache import ClipCache
from tasks.script import PlannedSegment


@task(name="mirror-manifest", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def mirror_manifest(manifest: RenderManifest, settings: Settings, clients: AwsClients) -> str | None:
    """A copy of the render manifest in S3 (encrypted), where a retry on another machine finds it;
    None when there is no bucket yet (a render that needed no endpoint, on an AWS where none was ever
    made: the embedded AWS of an all-cached render), which no retry would change."""
    if not bucket_exists(clients.s3, settings.bucket, settings.s3_prefix):
        return None
    key = f"{settings.s3_prefix}/manifests/{Path(manifest.out_dir).name}/{manifest.FILE_NAME}"
    clients.s3.put_object(
        Bucket=settings.bucket,
        Key=key,
        Body=manifest.model_dump_json(indent=2).encode(),
        ContentType="application/json",
        **s3_encryption(settings.kms_key_id),
    )
    return f"s3://{settings.bucket}/{key}"


@task(name="look-up-cache", cache_policy=NO_CACHE)
def look_up_cache(plan: list[PlannedSegment], cache_dir: Path) -> set[str]:
    """Cache keys of the planned segments already synthesised (by any earlier render)."""
    cache = ClipCache(cache_dir)
    hits = {p.cache_key for p in plan if cache.contains(p.cache_key)}
    logger = run_logger()
    if removed := cache.remove_abandoned_writes():
        logger.info("removed %d partial clip file(s) that killed renders left in the cache", removed)
    for planned in plan:  # per segment at debug level: thousands of info lines cost more than the look-up
        state = "cache hit" if planned.cache_key in hits else "to synthesise"
        logger.debug("segment %s: %s (key %s)", planned.id, state, planned.cache_key[:12])
    logger.info("%d of %d segment(s) cached, %d to synthesise", len(hits), len(plan), len(plan) - len(hits))
    return hits
