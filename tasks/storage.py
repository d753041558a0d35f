"""Storage tasks: which clips the cache already holds."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from narrate.cache import ClipCache
from narrate.log import run_logger
from tasks.script import PlannedSegment


@task(name="look-up-cache", cache_policy=NO_CACHE)
def look_up_cache(plan: list[PlannedSegment], cache_dir: str) -> set[str]:
    """Cache keys of the planned segments already synthesised (by any earlier render)."""
    cache = ClipCache(Path(cache_dir))
    hits = {p.cache_key for p in plan if cache.contains(p.cache_key)}
    logger = run_logger()
    for planned in plan:
        state = "cache hit" if planned.cache_key in hits else "to synthesise"
        logger.info("segment %s: %s (key %s)", planned.id, state, planned.cache_key[:12])
    logger.info("%d of %d segment(s) cached, %d to synthesise", len(hits), len(plan), len(plan) - len(hits))
    return hits
