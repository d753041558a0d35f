"""Request and response bodies of the handler: typed, allow-listed, with one short error per problem.

Two request forms are accepted:
- single (what existing clients send): ``{"mode": "custom_voice", "text": ..., "speaker": ..., ...}``
- batch: ``{"voice": {"mode": ..., ...}, "segments": [{"id": ..., "text": ...}], "generation": {...}}``
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from model_server.voices import DEV_VOICES, normalize_language, normalize_speaker, piper_language_problem

MAX_TEXT_CHARS = 5000
MAX_SEGMENTS_PER_REQUEST = 256
MAX_BODY_BYTES = 64 * 1024 * 1024


# How every message of a model that did not load begins (model_fn's error, which the toolkit answers
# to every request of an instance whose load failed): a client can tell it from a refusal of its input.
MODEL_LOAD_FAILED = "the model did not load"


class ModelLoadError(ValueError):
    """model_fn failed; the message begins with MODEL_LOAD_FAILED and names the settings to check."""


class RequestError(ValueError):
    """Input the handler refuses; its message becomes the async failure object. Never retried."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"{field}: {problem}" if field else problem)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _VoiceRequest(_Body):
    language: str = "english"

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any) -> str:
        return normalize_language(value)


class DevVoiceRequest(_VoiceRequest):
    mode: Literal["dev"]
    rate_wpm: int = Field(165, ge=80, le=450)
    pitch: int = Field(50, ge=0, le=99)

    @property
    def espeak_voice(self) -> str:
        return DEV_VOICES[self.language]


class PiperSettings(_VoiceRequest):
    """How a Piper (VITS) voice speaks; the defaults are the joe voice's own. The script's piper voice
    is these same fields."""

    voice_model: str = Field("joe", description="Which Piper voice: joe (US English, male).")
    length_scale: float = Field(1.0, ge=0.5, le=2.0, description="Speaking time: 1.2 is 20% slower.")
    noise_scale: float = Field(0.667, ge=0, le=1.5, description="Variation in the voice (0: none).")
    noise_w_scale: float = Field(0.8, ge=0, le=1.5, description="Variation in timing (0: none).")
    sentence_silence: float = Field(0.15, ge=0, le=2.0, description="Seconds of silence between sentences.")

    @model_validator(mode="after")
    def _speaks_the_language(self) -> PiperSettings:
        if problem := piper_language_problem(self.voice_model, self.language):
            raise ValueError(problem)
        return self


class PiperVoiceRequest(PiperSettings):
    mode: Literal["piper"]


class CustomVoiceRequest(_VoiceRequest):
    mode: Literal["custom_voice"]
    speaker: str
    instruct: str | None = None

    @field_validator("speaker")
    @classmethod
    def _speaker(cls, value: str) -> str:
        return normalize_speaker(value)


def transcript_missing(transcript: str | None, x_vector_only: bool) -> bool:
    """ICL cloning (the default) needs the clip's transcript; x-vector-only cloning does not."""
    return not x_vector_only and not (transcript and transcript.strip())


class VoiceCloneRequest(_VoiceRequest):
    """``ref_audio``: standard base64 of a WAV/FLAC file (or a ``data:`` URL), an ``s3://`` URI, or an
    http(s) URL whose host the endpoint allow-lists. The clip must be 2-60 s long."""

    mode: Literal["voice_clone"]
    ref_audio: str = Field(min_length=1)
    ref_text: str | None = None
    x_vector_only: bool = False

    @model_validator(mode="after")
    def _transcript(self) -> VoiceCloneRequest:
        if transcript_missing(self.ref_text, self.x_vector_only):
            raise ValueError(
                "ref_text: the exact transcript of the reference clip is required for voice cloning; "
                "send it, or set x_vector_only: true for a lower-quality clone without one"
            )
        return self


class VoiceDesignRequest(_VoiceRequest):
    mode: Literal["voice_design"]
    instruct: str = Field(min_length=1)


VoiceRequest = Annotated[
    DevVoiceRequest | PiperVoiceRequest | CustomVoiceRequest | VoiceCloneRequest | VoiceDesignRequest,
    Field(discriminator="mode"),
]


class GenerationRequest(_Body):
    """Sampling settings of the neural engines; None keeps the model's own default. The script's
    ``generation:`` block is this same model."""

    seed: int = Field(0, ge=0, le=2**31 - 1)
    temperature: float | None = Field(None, gt=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=1, le=1000)
    repetition_penalty: float | None = Field(None, ge=1, le=2)


class SegmentRequest(_Body):
    id: str = Field(min_length=1, max_length=128)
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is empty")
        return value


class BatchRequest(_Body):
    voice: VoiceRequest
    segments: list[SegmentRequest] = Field(max_length=MAX_SEGMENTS_PER_REQUEST)
    generation: GenerationRequest = Field(default_factory=GenerationRequest)


class SegmentAudio(BaseModel):
    """One synthesised segment, or the reason it could not be."""

    id: str
    audio: Any = None  # float32 mono numpy array
    sample_rate: int = 0
    error: str | None = None
    retryable: bool = False  # True when the same request may succeed later (engine fault, OOM)
    hit_frame_limit: bool = False  # generation stopped at its frame cap, not at end of speech
    speaker_similarity: float | None = None  # clones: the take against the reference (quality gate)


@dataclass(frozen=True)
class ParsedRequest:
    """A request as the handler works on it: the valid segments, and the ones refused on their own."""

    request: BatchRequest
    single: bool
    order: tuple[str, ...]  # every segment id as sent, for the response's order
    rejected: tuple[SegmentAudio, ...] = ()


_GENERATION_FIELDS = set(GenerationRequest.model_fields)
_MODES = {"dev", "piper", "custom_voice", "voice_clone", "voice_design"}


def parse_request(body: str | bytes | bytearray) -> ParsedRequest:
    """Body of either form, validated; RequestError names the field.

    In the batch form a segment with a bad id or text is refused on its own (its entry carries the
    error) and the rest go ahead; anything about the voice or the request as a whole refuses it all.
    """
    if len(body) > MAX_BODY_BYTES:
        raise RequestError("body", f"{len(body)} bytes is over the {MAX_BODY_BYTES}-byte limit")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError("body", f"not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise RequestError("body", "must be a JSON object")
    single = "segments" not in data
    if single:
        data = _single_to_batch(data)
        raw_segments = data["segments"]
    else:
        data = dict(data)
        raw_segments = data.pop("segments")
        data["segments"] = []
    order, valid, rejected = _split_segments(raw_segments, single)
    try:
        request = BatchRequest.model_validate(data)
    except ValidationError as exc:
        raise _request_error(exc, single) from None
    return ParsedRequest(request.model_copy(update={"segments": valid}), single, order, tuple(rejected))


def _split_segments(
    raw: Any, single: bool
) -> tuple[tuple[str, ...], list[SegmentRequest], list[SegmentAudio]]:
    if not isinstance(raw, list) or not raw:
        raise RequestError("segments", "must be a non-empty list of {id, text} objects")
    if len(raw) > MAX_SEGMENTS_PER_REQUEST:
        raise RequestError("segments", f"{len(raw)} segments; the limit is {MAX_SEGMENTS_PER_REQUEST}")
    ids = [str(item.get("id", "")) if isinstance(item, dict) else "" for item in raw]
    duplicates = sorted({i for i in ids if ids.count(i) > 1 and i})
    if duplicates:
        raise RequestError("segments", f"duplicate id {duplicates[0]!r}; every segment needs its own id")
    valid: list[SegmentRequest] = []
    rejected: list[SegmentAudio] = []
    for position, item in enumerate(raw):
        try:
            valid.append(SegmentRequest.model_validate(item))
        except ValidationError as exc:
            error = _request_error(exc, single=False, prefix=() if single else ("segments", str(position)))
            if single or not ids[position]:
                raise error from None
            rejected.append(SegmentAudio(id=ids[position], error=str(error)))
    return tuple(ids), valid, rejected


def _request_error(exc: ValidationError, single: bool, prefix: tuple[str, ...] = ()) -> RequestError:
    first = exc.errors()[0]
    loc = [str(p) for p in first["loc"] if p not in _MODES]
    if single and loc[:1] in (["voice"], ["generation"]):
        loc = loc[1:]
    field = ".".join([*prefix, *loc])
    problem = first["msg"].removeprefix("Value error, ")
    if first["type"] in {"union_tag_invalid", "union_tag_not_found"}:
        field = "mode"
        problem = f"unknown mode; use one of {', '.join(sorted(_MODES))}"
    named, _, rest = problem.partition(": ")
    if rest and named.isidentifier() and first["type"] == "value_error":  # a check naming its own field
        field, problem = ".".join([*prefix, *loc, named]), rest
    return RequestError(field, problem)


def _single_to_batch(data: dict[str, Any]) -> dict[str, Any]:
    """The single-segment form existing clients send, with their tolerated quirks."""
    data = dict(data)
    data.setdefault("mode", "custom_voice")
    if data.get("instruct") == "":
        data.pop("instruct")
    if data.get("mode") == "voice_clone" and data.get("ref_text") == "":
        data["ref_text"] = None
    segment = {"id": str(data.pop("id", "0")), "text": data.pop("text", "")}
    generation = {k: data.pop(k) for k in list(data) if k in _GENERATION_FIELDS}
    return {"voice": data, "segments": [segment], "generation": generation}
