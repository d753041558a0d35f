"""Tasks that read the narration script and plan its segments before anything is synthesised."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE

from narrate.script import Engine, GenerationSettings, NarrationScript, load_script, normalize_text
from narrate.synthesis.cache import segment_cache_key
from narrate.synthesis.requests import ModelIdentity, override_engine


@dataclass(frozen=True)
class PlannedSegment:
    id: str
    text: str  # normalised: what is sent to the engine
    cache_key: str


@dataclass(frozen=True)
class ScriptOverrides:
    """What a run changes of the script it renders."""

    voice_engine: Engine | None = None  # speak with this engine (the script's language kept)
    voice_name: str | None = None  # one of the script's named voices
    generation: GenerationSettings | None = None  # sampling settings
    min_seconds: dict[str, float] | None = None  # the least each segment lasts (a recording's actions)


@task(name="load-narration", cache_policy=NO_CACHE)
def load_narration(script: str, overrides: ScriptOverrides, max_segment_chars: int) -> NarrationScript:
    """The whole script, validated, with the run's overrides; a ScriptError here means nothing was
    synthesised."""
    narration = load_script(script, max_segment_chars=max_segment_chars)
    if overrides.voice_name is not None:
        narration = narration.with_named_voice(overrides.voice_name)
    if overrides.min_seconds:
        narration = narration.with_min_seconds(overrides.min_seconds)
    if overrides.voice_engine is not None:
        narration = narration.with_voice(override_engine(narration.voice, Engine(overrides.voice_engine)))
    if overrides.generation is not None:
        narration = narration.model_copy(update={"generation": overrides.generation})
    return narration


def plan_segments(narration: NarrationScript, identity: ModelIdentity) -> list[PlannedSegment]:
    """Each segment with the text sent to the engine and its cache key, for the model ``identity``."""
    return [
        PlannedSegment(
            id=segment.id,
            text=normalize_text(segment.text),
            cache_key=segment_cache_key(segment.text, narration.voice, narration.generation, identity),
        )
        for segment in narration.segments
    ]
