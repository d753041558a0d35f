"""The narration script schema: the one definition of what a user writes, validated whole before any work.

Load with :func:`load_script`; every problem is reported at once as ``file: field.path: problem; fix``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal
from xml.etree import ElementTree

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from model_server.protocol import GenerationRequest as GenerationSettings
from model_server.protocol import PiperSettings, transcript_missing
from model_server.voices import normalize_language, normalize_speaker
from narrate.consent import consent_problem
from narrate.engines import Engine
from narrate.errors import ScriptError
from narrate.pronunciations import Lexicon, lexicon_problems
from narrate.script_errors import describe_error
from narrate.synthesis.polly_speech import ssml_document

DEFAULT_MAX_SEGMENT_CHARS = 1500
SEGMENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def normalize_text(text: str) -> str:
    """The form of a text that decides its sound: NFC, single spaces, no outer whitespace."""
    return " ".join(unicodedata.normalize("NFC", text).split())


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _VoiceBase(_Strict):
    language: str = Field("english", description="Language name or ISO code (en, de, ...).")

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any) -> str:
        return normalize_language(value)


class DevVoice(_VoiceBase):
    """Offline eSpeak NG voice: robotic but intelligible, for development and CI."""

    engine: Literal[Engine.DEV] = Engine.DEV
    rate_wpm: int = Field(165, ge=80, le=450, description="Speaking rate in words per minute.")
    pitch: int = Field(50, ge=0, le=99, description="Base pitch, 0-99.")


class PiperVoice(PiperSettings):
    """Offline neural voice (Piper, VITS on onnxruntime, shipped in a wheel): sounds like a person, runs
    on a CPU. English only; each take differs slightly unless both noise scales are 0."""

    engine: Literal[Engine.PIPER] = Engine.PIPER


class QwenSpeakerVoice(_VoiceBase):
    """A named Qwen3-TTS CustomVoice speaker, optionally steered with an instruction."""

    engine: Literal[Engine.QWEN_SPEAKER] = Engine.QWEN_SPEAKER
    speaker: str = Field(description="One of the CustomVoice speakers, e.g. aiden.")
    instruct: str | None = Field(None, max_length=500, description="e.g. 'calm, professional'.")

    @field_validator("speaker")
    @classmethod
    def _speaker(cls, value: str) -> str:
        return normalize_speaker(value)

    @field_validator("instruct")
    @classmethod
    def _instruct(cls, value: str | None) -> str | None:
        return normalize_text(value) or None if value is not None else None


class QwenCloneVoice(_VoiceBase):
    """A voice cloned by Qwen3-TTS Base from a short reference clip and its exact transcript."""

    engine: Literal[Engine.QWEN_CLONE] = Engine.QWEN_CLONE
    reference_clip: Path = Field(description="WAV/FLAC of 2-60 s of the voice, relative to the script.")
    reference_text: str | None = Field(None, description="Exact transcript of the reference clip.")
    x_vector_only: bool = Field(False, description="Clone from the speaker embedding alone.")
    consent: Path = Field(description="Consent record (JSON, `narrate consent create`), next to the script.")
    transcript_confirmed: bool | None = Field(
        None, description="false: reference_text is the recogniser's draft (`narrate voice confirm` it)."
    )

    @field_validator("reference_clip", mode="after")
    @classmethod
    def _clip_exists(cls, value: Path, info: ValidationInfo) -> Path:
        return _existing_file(value, info, "reference clip")

    @field_validator("consent", mode="after")
    @classmethod
    def _consent_path(cls, value: Path, info: ValidationInfo) -> Path:
        return _beside_script(value, info)

    @model_validator(mode="after")
    def _consent_covers_the_clip(self) -> QwenCloneVoice:
        problem = consent_problem(self.consent, self.reference_clip)
        if problem:
            raise ValueError(f"consent: {problem}")
        return self

    @model_validator(mode="after")
    def _transcript(self, info: ValidationInfo) -> QwenCloneVoice:
        if self.transcript_confirmed is False:
            script = (info.context or {}).get("source")
            where = f" --script {script}" if script else ""
            raise ValueError(
                f"transcript_confirmed: reference_text is the recogniser's draft ({self.reference_text!r}), "
                f"not yet confirmed; listen to {self.reference_clip.name} and run `narrate voice confirm "
                f'{self.reference_clip.stem}{where}` (with --transcript "the exact words" to correct it)'
            )
        if transcript_missing(self.reference_text, self.x_vector_only):
            raise ValueError(
                "reference_text is required: write the exact words spoken in the reference clip "
                "(or set x_vector_only: true for a lower-quality clone without a transcript)"
            )
        return self


class QwenDesignVoice(_VoiceBase):
    """A voice described in words (Qwen3-TTS VoiceDesign)."""

    engine: Literal[Engine.QWEN_DESIGN] = Engine.QWEN_DESIGN
    design_prompt: str = Field(min_length=1, max_length=1000, description="e.g. 'warm alto, slow'.")


class PollyVoice(_Strict):
    """An Amazon Polly managed voice."""

    engine: Literal[Engine.POLLY] = Engine.POLLY
    voice_id: str = Field(pattern=r"^[A-Z][a-zA-Z]{1,31}$", description="Polly voice id, e.g. Matthew.")
    polly_engine: Literal["standard", "neural", "long-form", "generative"] = "neural"
    language_code: str | None = Field(None, pattern=r"^[a-z]{2,3}-[A-Z]{2}$", description="e.g. en-US.")
    text_type: Literal["text", "ssml"] = Field(
        "text", description="ssml: segment texts are SSML (the <speak> wrapper is optional)."
    )


Voice = Annotated[
    DevVoice | PiperVoice | QwenSpeakerVoice | QwenCloneVoice | QwenDesignVoice | PollyVoice,
    Field(discriminator="engine"),
]


def voice_language(voice: Voice) -> str | None:
    """The language a voice speaks, by name; None for a Polly voice whose language is not given or is
    not one of :data:`~model_server.voices.LANGUAGES`."""
    if not isinstance(voice, PollyVoice):
        return voice.language
    try:
        return normalize_language(voice.language_code) if voice.language_code else None
    except ValueError:
        return None


class OutputOptions(_Strict):
    sample_rate: int = Field(24000, ge=8000, le=96000, description="Sample rate of the track, Hz.")
    loudness_lufs: float = Field(-16.0, ge=-40, le=-5, description="Integrated loudness target.")
    true_peak_dbtp: float = Field(-1.0, ge=-12, le=0, description="True-peak ceiling, dBTP.")
    fps: str = Field("30", description="Video frame rate for boundary rounding: 30, 29.97 or 30000/1001.")
    formats: list[Literal["wav", "mp3"]] = Field(default_factory=lambda: ["wav", "mp3"], min_length=1)
    caption_max_chars: int = Field(84, ge=20, le=500, description="Longest caption cue, in characters.")

    @field_validator("fps", mode="before")
    @classmethod
    def _fps(cls, value: Any) -> str:
        try:
            rate = Fraction(str(value).strip())
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"fps {value!r} is not a number; write e.g. 30, 29.97 or 30000/1001") from None
        if not 1 <= rate <= 240:
            raise ValueError(f"fps {value} is out of range; use a frame rate between 1 and 240")
        return str(value).strip()

    @property
    def frame_rate(self) -> Fraction:
        return Fraction(self.fps)


class Segment(_Strict):
    id: str = Field(pattern=SEGMENT_ID_PATTERN, description="Unique, stable id (letters, digits, _ . -).")
    text: str = Field(description="What the narrator says during this scene.")
    min_seconds: float | None = Field(
        None, ge=0, le=3600, description="The scene's own length: narration never cuts it short."
    )
    pause_after_seconds: float = Field(0.0, ge=0, le=600, description="Silence after the scene.")
    seed: int | None = Field(
        None, ge=0, le=2**31 - 1, description="Seed of this segment's first take (default generation.seed)."
    )
    instruct: str | None = Field(
        None, max_length=500, description="Speaking style of this segment (qwen-speaker, qwen-design voices)."
    )

    @field_validator("instruct")
    @classmethod
    def _instruct(cls, value: str | None) -> str | None:
        return normalize_text(value) or None if value is not None else None

    @field_validator("text")
    @classmethod
    def _text(cls, value: str, info: ValidationInfo) -> str:
        if _CONTROL_CHARS.search(value):
            raise ValueError("contains control characters (e.g. NUL); remove them")
        normalized = normalize_text(value)
        if not normalized:
            raise ValueError("is empty; write what this scene says, or remove the segment")
        limit = (info.context or {}).get("max_segment_chars", DEFAULT_MAX_SEGMENT_CHARS)
        if len(normalized) > limit:
            raise ValueError(
                f"is {len(normalized)} characters, over the limit of {limit}; split it into several "
                "segments (or raise NARRATE_MAX_SEGMENT_CHARS)"
            )
        return value


VOICE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"  # the names of a script's voices
VoiceName = Annotated[str, StringConstraints(pattern=VOICE_NAME_PATTERN)]


class VideoSource(_Strict):
    """The screen recording this narration is for: its scene marks, and the recording itself."""

    marks: Path = Field(description="Scene marks (YAML/JSON, one scene per segment), next to the script.")
    recording: Path | None = Field(None, description="The recording; default the marks' `video:`.")

    @field_validator("marks", mode="after")
    @classmethod
    def _marks_exist(cls, value: Path, info: ValidationInfo) -> Path:
        return _existing_file(value, info, "marks file")

    @field_validator("recording", mode="after")
    @classmethod
    def _recording_path(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _beside_script(value, info)


class NarrationScript(_Strict):
    title: str = Field(min_length=1, max_length=200)
    voice: Voice
    voices: dict[VoiceName, Voice] = Field(
        default_factory=dict, description="Named voices for `--voice NAME` (or a path to a voices file)."
    )
    video: VideoSource | None = None
    output: OutputOptions = Field(default_factory=OutputOptions)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    takes: int = Field(
        3,
        ge=1,
        le=10,
        description="Most takes of a segment when the quality gate fails one (sampling engines).",
    )
    on_failed_check: Literal["fail", "keep-best"] = Field(
        "fail", description="A segment with no passing take fails the render, or keeps its best take."
    )
    pronunciations: dict[str, str] = Field(
        default_factory=dict,
        description="Whole-word respellings (Acme: Ack-mee), or a path to a file of them.",
    )
    spell_numbers: bool = Field(False, description="Say numbers as words in the voice's language.")
    segments: list[Segment] = Field(min_length=1)

    @field_validator("pronunciations", mode="before")
    @classmethod
    def _pronunciations_file(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):  # a shared lexicon file, relative to the script
            return load_mapping_file(
                Path((info.context or {}).get("base_dir", ".")) / value, "pronunciations"
            )
        return value

    @field_validator("pronunciations")
    @classmethod
    def _lexicon(cls, value: dict[str, str]) -> dict[str, str]:
        if problems := lexicon_problems(value):  # the first is named by the error's location, the rest here
            raise ValueError("\n  - pronunciations.".join(problems))
        return value

    @property
    def lexicon(self) -> Lexicon:
        return Lexicon.of(self.pronunciations)

    @field_validator("segments")
    @classmethod
    def _unique_ids(cls, segments: list[Segment]) -> list[Segment]:
        first_seen: dict[str, int] = {}
        for index, segment in enumerate(segments):
            if segment.id in first_seen:
                raise ValueError(
                    f"duplicate id {segment.id!r} at segments[{first_seen[segment.id]}] and "
                    f"segments[{index}]; give each segment a unique id"
                )
            first_seen[segment.id] = index
        return segments

    @model_validator(mode="after")
    def _ssml_well_formed(self) -> NarrationScript:
        if not isinstance(self.voice, PollyVoice) or self.voice.text_type != "ssml":
            return self
        problems = []
        for index, segment in enumerate(self.segments):
            try:
                ElementTree.fromstring(ssml_document(normalize_text(segment.text)))
            except ElementTree.ParseError as exc:
                problems.append(
                    f"segments[{index}] (id {segment.id!r}).text: not well-formed SSML ({exc}); fix the "
                    "markup, or set voice.text_type: text"
                )
        if problems:
            raise ValueError("\n  - ".join(problems))
        return self

    @field_validator("voices", mode="before")
    @classmethod
    def _voices_file(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):  # a separate voices file, relative to the script
            return load_voices_file(Path((info.context or {}).get("base_dir", ".")) / value)
        return value

    def with_voice(self, voice: Voice) -> NarrationScript:
        return self.model_copy(update={"voice": voice})

    def with_named_voice(self, name: str) -> NarrationScript:
        """The script spoken by its voice ``name``; ScriptError naming the defined ones otherwise."""
        if name not in self.voices:
            defined = ", ".join(sorted(self.voices)) or "none (add a `voices:` mapping to the script)"
            raise ScriptError("--voice", [f"voice {name!r} is not defined; the script defines: {defined}"])
        return self.with_voice(self.voices[name])

    def alternatives(self, segment_id: str, count: int) -> NarrationScript:
        """The script of ``count`` takes of one segment (``intro.take1``, ...), each kept whatever the
        gate says of it: what ``narrate takes`` renders for a person to listen to and pick from."""
        segment = next((s for s in self.segments if s.id == segment_id), None)
        if segment is None:
            ids = ", ".join(s.id for s in self.segments)
            raise ScriptError("--segment", [f"{segment_id!r} is not a segment of the script; its ids: {ids}"])
        copies = [segment.model_copy(update={"id": take_id(segment_id, k)}) for k in range(1, count + 1)]
        return self.model_copy(update={"segments": copies, "takes": 1, "on_failed_check": "keep-best"})

    def with_min_seconds(self, minimums: dict[str, float]) -> NarrationScript:
        """Each segment at least as long as ``minimums`` says (a scene's action), keeping longer ones."""
        segments = [
            s.model_copy(update={"min_seconds": max(s.min_seconds or 0.0, minimums.get(s.id, 0.0))})
            for s in self.segments
        ]
        return self.model_copy(update={"segments": segments})


def take_id(segment_id: str, take: int) -> str:
    """The id of take ``take`` of a segment in a render of its alternatives."""
    return f"{segment_id}.take{take}"


def load_mapping_file(path: Path, what: str) -> dict[str, Any]:
    """A YAML/JSON file of a mapping the script names (its voices, its pronunciations)."""
    try:
        data = parse_script_text(path.read_text(encoding="utf-8"), str(path), path.suffix.lower())
    except (FileNotFoundError, UnicodeDecodeError):
        raise ValueError(f"{what} file {str(path)!r} not found or not UTF-8 text; fix the path") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} file {str(path)!r} must be a mapping")
    return data


def load_voices_file(path: Path) -> Any:
    """A voices file: a mapping of name -> voice; its relative paths are made relative to itself."""
    data = load_mapping_file(path, "voices")
    for voice in data.values():
        if isinstance(voice, dict):
            for key in ("reference_clip", "consent"):
                if isinstance(voice.get(key), str) and not Path(voice[key]).is_absolute():
                    voice[key] = str((path.parent / voice[key]).resolve())
    return data


def _beside_script(value: Path, info: ValidationInfo) -> Path:
    """A path as written in the script: relative ones are relative to the script's folder."""
    base_dir = Path((info.context or {}).get("base_dir", "."))
    return (value if value.is_absolute() else base_dir / value).resolve()


def _existing_file(value: Path, info: ValidationInfo, what: str) -> Path:
    resolved = _beside_script(value, info)
    if not resolved.is_file():
        raise ValueError(f"{what} {str(value)!r} not found (looked in {resolved}); fix the path")
    return resolved


# --- loading -------------------------------------------------------------------------------------


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML loader that refuses duplicate keys instead of silently keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}; keep only one", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_script_text(text: str, source: str, suffix: str) -> Any:
    """YAML or JSON text to plain data; a syntax error becomes a ScriptError with its line."""
    try:
        if suffix == ".json":
            return json.loads(text)
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except json.JSONDecodeError as exc:
        raise ScriptError(source, [f"line {exc.lineno}: invalid JSON: {exc.msg}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScriptError(source, [f"{where}invalid YAML: {problem}"]) from None


def validate_script(
    data: Any,
    source: str,
    base_dir: Path,
    max_segment_chars: int = DEFAULT_MAX_SEGMENT_CHARS,
) -> NarrationScript:
    if not isinstance(data, dict):
        raise ScriptError(source, ["the script must be a mapping with title, voice and segments"])
    context = {"base_dir": base_dir, "max_segment_chars": max_segment_chars, "source": source}
    try:
        return NarrationScript.model_validate(data, context=context)
    except ValidationError as exc:
        raise ScriptError(source, [describe_error(error, data) for error in exc.errors()]) from None


def load_script(path: str | Path, max_segment_chars: int = DEFAULT_MAX_SEGMENT_CHARS) -> NarrationScript:
    """Read and validate a YAML (.yaml/.yml) or JSON (.json) narration script."""
    path = Path(path)
    source = str(path)
    if path.suffix.lower() not in {".yaml", ".yml", ".json"}:
        raise ScriptError(source, ["unknown file type; name the script *.yaml, *.yml or *.json"])
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScriptError(source, ["file not found; check the path"]) from None
    except UnicodeDecodeError:
        raise ScriptError(source, ["not UTF-8 text; save the script as UTF-8"]) from None
    data = parse_script_text(text, source, path.suffix.lower())
    return validate_script(data, source, path.parent, max_segment_chars)
