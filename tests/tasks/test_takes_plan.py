"""A segment's own seed and speaking style, and each take's seed: in its request and its cache key."""

from __future__ import annotations

from pathlib import Path

from narrate.script import load_script
from narrate.settings import get_settings
from narrate.synthesis.requests import model_identity
from narrate.takes import take_seed
from tasks.script import plan_segments, plan_take
from tasks.synthesis import plan_jobs
from tests.conftest import write_script

SCRIPT = """title: t
voice: {engine: qwen-speaker, speaker: aiden, instruct: calm}
generation: {seed: 5}
segments:
  - {id: a, text: One.}
  - {id: b, text: Two., seed: 9}
  - {id: c, text: Three., instruct: excited}
  - {id: d, text: Four.}
"""


def test_segment_seed_and_instruct_reach_their_own_requests(tmp_path: Path) -> None:
    narration = load_script(write_script(tmp_path, SCRIPT))
    settings = get_settings()
    identity = model_identity(narration.voice, settings.server_config(), settings.aws)
    plan = {p.id: p for p in plan_segments(narration, identity)}
    jobs = plan_jobs(narration, identity, list(plan.values()), batch_size=8)
    sound = {
        sid: (job.request.voice.instruct, job.request.generation.seed)
        for job in jobs
        for sid in job.segment_ids
    }
    assert sound == {"a": ("calm", 5), "b": ("calm", 9), "c": ("excited", 5), "d": ("calm", 5)}
    assert len(jobs) == 3 and len({p.cache_key for p in plan.values()}) == 4
    second = plan_take(narration, identity, narration.segments[1], take=2)
    assert second.generation is not None and second.generation.seed == take_seed(9, 2) != 9
    assert second.cache_key != plan["b"].cache_key and second.take == 2


def test_take_seeds_are_fixed_distinct_and_start_at_the_segments_own() -> None:
    seeds = [take_seed(5, k) for k in range(1, 6)]
    assert seeds[0] == 5 and len(set(seeds)) == 5
    assert seeds == [take_seed(5, k) for k in range(1, 6)]  # the same on every call (and machine)
    assert take_seed(6, 2) != take_seed(5, 2)
