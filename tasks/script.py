"""Tasks that read the narration script and plan its segments before anything is synthesised."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE

from narrate.errors import ScriptError
from narrate.log import run_logger
from narrate.pronunciations import spell_numbers
from narrate.script import (
    Engine,
    GenerationSettings,
    NarrationScript,
    PollyVoice,
    QwenDesignVoice,
    QwenSpeakerVoice,
    Segment,
    Voice,
    load_script,
    normalize_text,
    voice_language,
)
from narrate.synthesis.cache import segment_cache_key
from narrate.synthesis.requests import ModelIdentity, override_engine
from narrate.takes import PickedTake, take_seed


@dataclass(frozen=True)
class PlannedSegment:
    """One take of one segment, as it is synthesised and cached."""

    id: str
    text: str  # the script's words, normalised: what the captions show
    cache_key: str
    spoken: str | None = None  # what the engine is asked to say, when the lexicon changed the words
    voice: Voice | None = None  # this segment's voice, when it differs from the script's (instruct, SSML)
    generation: GenerationSettings | None = None  # this take's sampling, when it differs (its seed)
    take: int = 1
    picked: bool = False  # a person picked this take (narrate pick): it is never re-rolled

    @property
    def speech(self) -> str:
        return self.spoken or self.text


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


def plan_segments(
    narration: NarrationScript, identity: ModelIdentity, picks: Mapping[str, PickedTake] | None = None
) -> list[PlannedSegment]:
    """Each segment's first take (or its picked one) with the words sent to the engine and its cache
    key, for the model ``identity``."""
    return [plan_take(narration, identity, segment, pick=(picks or {}).get(segment.id)) for segment in
            narration.segments]  # fmt: skip


def plan_take(
    narration: NarrationScript,
    identity: ModelIdentity,
    segment: Segment,
    take: int = 1,
    pick: PickedTake | None = None,
) -> PlannedSegment:
    """Take ``take`` of ``segment`` (or the ``pick``, when it was picked for these words): the one
    place a segment's voice, spoken words, seed and cache key are worked out."""
    text = normalize_text(segment.text)
    voice, spoken = spoken_form(narration, segment_voice(narration.voice, segment), text)
    first_seed = narration.generation.seed if segment.seed is None else segment.seed
    picked = pick is not None and pick.text == spoken
    if pick is not None and not picked:
        run_logger().warning("segment %s: its picked take %d was for other words; pick again (narrate "
                             "takes)", segment.id, pick.take)  # fmt: skip
    seed = pick.seed if pick is not None and picked else take_seed(first_seed, take)
    generation = narration.generation.model_copy(update={"seed": seed})
    return PlannedSegment(
        id=segment.id,
        text=text,
        cache_key=segment_cache_key(spoken, voice, generation, identity),
        spoken=spoken if spoken != text else None,
        voice=voice if voice != narration.voice else None,
        generation=generation if generation != narration.generation else None,
        take=pick.take if pick is not None and picked else take,
        picked=picked,
    )


def segment_voice(voice: Voice, segment: Segment) -> Voice:
    """The script's voice with the segment's speaking style: a Qwen speaker's instruction, or added to
    a designed voice's prompt. Other engines have no style to set, and speak as the script says."""
    if segment.instruct is None:
        return voice
    if isinstance(voice, QwenSpeakerVoice):
        return voice.model_copy(update={"instruct": segment.instruct})
    if isinstance(voice, QwenDesignVoice):
        return voice.model_copy(update={"design_prompt": f"{voice.design_prompt}. {segment.instruct}"})
    return voice


def spoken_form(narration: NarrationScript, voice: Voice, text: str) -> tuple[Voice, str]:
    """The voice and words an engine gets for ``text``: numbers spelt out when the script asks, the
    lexicon's respellings (for Polly as SSML ``<sub alias>``, the voice then taking SSML)."""
    if narration.spell_numbers:
        try:
            text = spell_numbers(text, voice_language(voice))
        except ValueError as exc:
            raise ScriptError("spell_numbers", [str(exc)]) from None
    lexicon = narration.lexicon
    if not lexicon.matches(text):
        return voice, text
    if isinstance(voice, PollyVoice):
        ssml = lexicon.apply_ssml(text, voice.text_type == "ssml")
        return voice.model_copy(update={"text_type": "ssml"}), ssml
    return voice, lexicon.apply(text)
