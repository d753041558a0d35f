"""The quality gate's place in a render: each take measured as it arrives (or read from the cache's note),
judged, recorded; a failed take re-rolled with the next seed, up to the script's ``takes``; and, when no
take passes, the render failed with every take's scores, or the best one kept (``keep-best``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import soundfile as sf

from narrate.check.gate import GateBounds, SpeakingPace, TakeMeasures, Verdict, judge, measure_take
from narrate.log import run_logger
from narrate.manifest import RenderManifest, TakeRecord
from narrate.script import NarrationScript, Voice
from narrate.settings import Settings
from narrate.synthesis.cache import ClipCache
from narrate.synthesis.requests import ModelIdentity, voice_request
from narrate.synthesis.responses import HANDLER_MEASURES
from tasks.script import PlannedSegment, plan_take


@dataclass(frozen=True)
class JudgedTake:
    measures: TakeMeasures
    verdict: Verdict


def judge_output(
    audio: np.ndarray, rate: int, text: str, voice: Mapping[str, Any], handler: Mapping[str, Any],
    bounds: GateBounds,
) -> JudgedTake:  # fmt: skip
    """A take as it comes from the endpoint: measured (the handler's measures included) and judged."""
    pace = SpeakingPace.of_request(voice)
    measures = measure_take(audio, rate, text, pace, handler, bounds.recogniser_for(pace))
    return JudgedTake(measures, judge(measures, pace, bounds))


def request_voice(
    narration: NarrationScript, planned: PlannedSegment, identity: ModelIdentity
) -> dict[str, Any]:
    """The voice of the request that makes ``planned`` (what a job's summary holds), for its pace."""
    return _summary_voice(planned.voice or narration.voice, identity)


@lru_cache(maxsize=64)
def _summary_voice(voice: Voice, identity: ModelIdentity) -> dict[str, Any]:
    """Once per voice: building the request reads (and encodes) a clone's reference clip."""
    return voice_request(voice, identity).model_dump(mode="json", exclude={"ref_audio"})


def judge_cached(
    cache: ClipCache, planned: PlannedSegment, voice: Mapping[str, Any], bounds: GateBounds
) -> JudgedTake:
    """A cached take judged from the measures its note keeps; a clip cached before the gate existed is
    measured now, once, and its note updated."""
    note = cache.note(planned.cache_key)
    pace = SpeakingPace.of_request(voice)
    stored = note.get("measures")
    measures = TakeMeasures.model_validate(stored) if stored else None
    wants_words = bounds.hears_words(pace)
    if measures is None or (wants_words and measures.words_heard is None):
        clip = cache.get(planned.cache_key)
        handler = {k: v for k, v in (stored or {}).items() if k in HANDLER_MEASURES}
        measures = measure_take(clip.audio, clip.sample_rate, planned.speech, pace, handler,
                                bounds.recogniser_for(pace))  # fmt: skip
        cache.put_note(planned.cache_key, note | {"measures": measures.model_dump()})
    return JudgedTake(measures, judge(measures, pace, bounds))


def take_record(planned: PlannedSegment, judged: JudgedTake, seed: int | None) -> TakeRecord:
    verdict = judged.verdict
    return TakeRecord(
        take=planned.take,
        seed=seed,
        cache_key=planned.cache_key,
        passed=verdict.passed,
        picked=planned.picked,
        checks={name: result.model_dump() for name, result in verdict.checks.items()},
        badness=list(verdict.badness),
        summary=verdict.summary(),
        heard=judged.measures.heard,
    )


def seed_of(narration: NarrationScript, planned: PlannedSegment, samples: bool) -> int | None:
    """The take's seed, where the engine samples (for the others a seed changes nothing)."""
    return (planned.generation or narration.generation).seed if samples else None


@dataclass(frozen=True)
class Gate:
    """How one render judges its takes: its bounds, its script's takes and policy, its model."""

    narration: NarrationScript
    identity: ModelIdentity
    bounds: GateBounds

    @classmethod
    def of(cls, narration: NarrationScript, identity: ModelIdentity, settings: Settings) -> Gate:
        return cls(narration, identity, GateBounds.from_settings(settings))

    def samples(self, planned: PlannedSegment) -> bool:
        return SpeakingPace.of_request(request_voice(self.narration, planned, self.identity)).sampling

    def next_take(self, planned: PlannedSegment) -> PlannedSegment | None:
        """The take to try after ``planned`` failed; None when there is none (picked by a person, an
        engine that says it the same way every time, or the script's ``takes`` used up)."""
        if planned.picked or planned.take >= self.narration.takes or not self.samples(planned):
            return None
        return self.take_of(planned.id, planned.take + 1)

    def record(self, planned: PlannedSegment, judged: JudgedTake) -> TakeRecord:
        return take_record(planned, judged, seed_of(self.narration, planned, self.samples(planned)))

    def keep_best(self) -> bool:
        return self.narration.on_failed_check == "keep-best"

    def take_of(self, segment_id: str, take: int) -> PlannedSegment:
        segment = next(s for s in self.narration.segments if s.id == segment_id)
        return plan_take(self.narration, self.identity, segment, take=take)

    def settle_without_pass(
        self, manifest: RenderManifest, segment_id: str, cache: ClipCache, attempted: bool
    ) -> PlannedSegment | None:
        """A segment whose takes all failed: its best one kept (``keep-best``; returned), or it fails
        with every take's scores."""
        takes = manifest.segment(segment_id).takes
        if not self.keep_best():
            error = no_passing_take(takes)
            manifest.fail_segment(segment_id, error, attempted)
            run_logger().warning("segment %s: %s", segment_id, error)
            return None
        best = best_take(takes)
        clip = cache.path(best.cache_key)
        manifest.keep_take(segment_id, best, str(clip), sf.info(clip).frames, attempted)
        message = "segment %s: no take passed the quality gate; keeping take %d, the best (keep-best): %s"
        run_logger().warning(message, segment_id, best.take, best.summary)
        return self.take_of(segment_id, best.take)


@dataclass(frozen=True)
class CacheLookup:
    """What the cache holds of a render: the take each segment uses or waits for, the cache keys
    already there and passing, and the segments whose every take failed (nothing to synthesise)."""

    plan: list[PlannedSegment]
    hits: set[str]
    failed: frozenset[str] = frozenset()


def resolve_cached_takes(
    gate: Gate, plan: list[PlannedSegment], cache: ClipCache, manifest: RenderManifest
) -> CacheLookup:
    """Walk each segment's takes through the cache: the first that passes (or was picked) is a hit;
    one that fails is followed by the next; the first take the cache lacks is the one to synthesise."""
    resolved: list[PlannedSegment] = []
    hits: set[str] = set()
    failed: set[str] = set()
    judged_keys: dict[str, JudgedTake] = {}  # segments with the same words share their takes
    for planned in plan:
        take: PlannedSegment | None = planned
        while take is not None:
            if not cache.contains(take.cache_key):
                resolved.append(take)
                manifest.ask_take(take.id, take.cache_key, attempted=False)
                break
            voice = request_voice(gate.narration, take, gate.identity)
            judged = judged_keys.get(take.cache_key) or judge_cached(cache, take, voice, gate.bounds)
            judged_keys[take.cache_key] = judged
            manifest.record_take(take.id, gate.record(take, judged))
            if judged.verdict.passed or take.picked:
                resolved.append(take)
                hits.add(take.cache_key)
                manifest.ask_take(take.id, take.cache_key, attempted=False)
                break
            following = gate.next_take(take)
            if following is None:
                kept = gate.settle_without_pass(manifest, take.id, cache, attempted=False)
                resolved.append(kept or take)
                if kept is None:
                    failed.add(take.id)
                else:
                    hits.add(kept.cache_key)
            take = following
    return CacheLookup(resolved, hits, frozenset(failed))


def best_take(takes: list[TakeRecord]) -> TakeRecord:
    """The passing take, else the one that failed fewest checks by least (earliest on a tie)."""
    return min(takes, key=lambda t: (not t.passed, *t.badness, t.take))


def no_passing_take(takes: list[TakeRecord]) -> str:
    """The error of a segment none of whose takes passed: every take's scores, and what to do."""
    scores = "; ".join(f"take {t.take} (seed {t.seed}): {t.summary}" for t in takes)
    return (
        f"no take passed the quality gate ({scores}); change the text, pick a take (narrate takes / "
        "narrate pick), set on_failed_check: keep-best, or relax NARRATE_GATE_*"
    )
