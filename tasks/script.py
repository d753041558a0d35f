"""Tasks that read the narration script and plan its segments before anything is synthesised."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE

from narrate.cache import segment_cache_key
from narrate.payloads import override_engine
from narrate.script import Engine, GenerationSettings, NarrationScript, load_script, normalize_text
from narrate.settings import get_settings


@dataclass(frozen=True)
class PlannedSegment:
    id: str
    text: str  # normalised: what is sent to the engine
    cache_key: str


@task(name="validate-script", cache_policy=NO_CACHE)
def load_narration(
    script: str,
    voice_engine: Engine | None = None,
    generation: GenerationSettings | None = None,
    voice_name: str | None = None,
    min_seconds: dict[str, float] | None = None,
) -> NarrationScript:
    """The whole script, validated, with the run's overrides (a named voice, an engine, sampling, each
    scene's action length); a ScriptError here means nothing was synthesised."""
    narration = load_script(script, max_segment_chars=get_settings().max_segment_chars)
    if voice_name is not None:
        narration = narration.with_named_voice(voice_name)
    if min_seconds:
        narration = narration.with_min_seconds(min_seconds)
    if voice_engine is not None:
        narration = narration.with_voice(override_engine(narration.voice, Engine(voice_engine)))
    if generation is not None:
        narration = narration.model_copy(update={"generation": generation})
    return narration


def plan_segments(narration: NarrationScript) -> list[PlannedSegment]:
    return [
        PlannedSegment(
            id=segment.id,
            text=normalize_text(segment.text),
            cache_key=segment_cache_key(segment.text, narration.voice, narration.generation),
        )
        for segment in narration.segments
    ]
