"""Storage tasks: which clips the cache already holds, and the manifest's copy in S3."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from prefect import task
from prefect.cache_policies import NO_CACHE

from narrate.aws.clients import AwsClients
from narrate.aws.s3 import s3_encryption
from narrate.endpoints.sagemaker_setup import bucket_exists
from narrate.log import run_logger
from narrate.manifest import RenderManifest
from narrate.settings import Settings
from narrate.synthesis.cache import ClipCache
from tasks.quality import CacheLookup, Gate, resolve_cached_takes

if TYPE_CHECKING:
    from tasks.run import RenderRun


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
def look_up_cache(run: RenderRun) -> CacheLookup:
    """The take each planned segment uses (the first cached take that passes the quality gate) and the
    cache keys already synthesised, by any earlier render; every cached take judged is recorded."""
    cache = ClipCache(run.settings.cache_dir)
    logger = run_logger()
    if removed := cache.remove_abandoned_writes():
        logger.info("removed %d partial clip file(s) that killed renders left in the cache", removed)
    gate = Gate.of(run.narration, run.identity, run.settings)
    lookup = resolve_cached_takes(gate, run.plan, cache, run.manifest)
    for planned in lookup.plan:  # at debug level: thousands of info lines cost more than the look-up
        state = "cache hit" if planned.cache_key in lookup.hits else "to synthesise"
        logger.debug("segment %s take %d: %s (key %s)", planned.id, planned.take, state,
                     planned.cache_key[:12])  # fmt: skip
    cached = sum(1 for p in lookup.plan if p.cache_key in lookup.hits)
    todo = len(lookup.plan) - cached - len(lookup.failed)
    logger.info("%d of %d segment(s) cached, %d to synthesise", cached, len(lookup.plan), todo)
    return lookup
