"""Amazon Polly's SynthesizeSpeech as a narrate voice: split a text under the request limits, ask for
raw PCM, decode it exactly, and name what Polly refused in terms of the script's fields.

The boto3 Polly client is always passed in (a real one, the embedded AWS's, or one under botocore's
Stubber); nothing here creates clients or reads settings.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError
from pydantic import BaseModel, ConfigDict

from model_server.protocol import GenerationRequest, SegmentRequest
from narrate.errors import (
    SegmentRejected,
    SynthesisError,
    TransientSynthesisError,
    is_auth_error,
    is_transient,
)

# SynthesizeSpeech takes at most 6000 characters per request, of which at most 3000 billed; SSML tags
# are not billed (botocore's Polly model, TextLengthExceededException:
# https://docs.aws.amazon.com/botocore/latest/reference/services/polly/client/exceptions/TextLengthExceededException.html).
MAX_BILLED_CHARS = 3000
MAX_TOTAL_CHARS = 6000
# PCM comes back as signed 16-bit, 1 channel, little-endian, at "8000" or "16000" Hz only (SampleRate
# and ContentType in the same model). 16 kHz is the best raw rate on offer: the track is resampled from
# it exactly once, with no lossy codec (mp3/ogg) on the way.
SAMPLE_RATE = 16000
PCM_DTYPE = np.dtype("<i2")
# The embedded AWS of local mode answers with this header: the audio is the dev voice, not Polly's.
EMULATED_HEADER = "x-narrate-emulated"
EMULATION_NOTE = "polly served by the dev voice on the embedded AWS"

_TAG = re.compile(r"<[^>]*>")
# A sentence ends at . ! ? or an ellipsis (and any closing quotes or brackets) before a space, or at a
# CJK full stop, which needs none; the boundary's whitespace goes, its punctuation stays.
_SENTENCE_END = re.compile(
    r"(?:[.!?\u2026][\"'\u201d\u2019)\]]*\s+|[\u3002\uff01\uff1f][\"'\u201d\u2019)\]\u300d\u300f]*\s*)"
)
_CLAUSE_END = re.compile(r"(?<=[,;:\u2014\u2013\u3001\uff0c\uff1b])\s+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class PollyRequest:
    """The voice half of a SynthesizeSpeech call."""

    voice_id: str
    engine: str = "neural"
    language_code: str | None = None
    text_type: str = "text"  # "text" or "ssml"


class PollyVoiceRequest(BaseModel):
    """A Polly voice as a synthesis job carries it (mode ``polly``, which the handler refuses)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["polly"] = "polly"
    voice_id: str
    engine: str = "neural"
    language_code: str | None = None
    text_type: Literal["text", "ssml"] = "text"
    emulated: bool = False  # the render expects local mode's stand-in, not Amazon Polly

    def call(self) -> PollyRequest:
        return PollyRequest(self.voice_id, self.engine, self.language_code, self.text_type)


class PollyBatchRequest(BaseModel):
    """A batch for Amazon Polly, shaped like the handler's batch request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    voice: PollyVoiceRequest
    segments: list[SegmentRequest]
    generation: GenerationRequest = GenerationRequest()


@dataclass(frozen=True)
class PollyAudio:
    pcm: np.ndarray  # int16 mono, exactly as Polly sent it
    sample_rate: int
    emulated: bool
    requests: int  # SynthesizeSpeech calls it took

    @property
    def samples(self) -> np.ndarray:
        """float32 in [-1, 1): each int16 value divided by 32768, so decoding adds no error."""
        return (self.pcm.astype(np.float32) / np.float32(32768.0)).astype(np.float32)


# --- splitting -------------------------------------------------------------------------------------


def billed_chars(text: str, text_type: str = "text") -> int:
    """Characters Polly bills: every one of plain text; SSML without its tags (entities as written,
    so the count errs high, never low)."""
    return len(_TAG.sub("", text)) if text_type == "ssml" else len(text)


def split_for_polly(
    text: str,
    text_type: str = "text",
    max_billed: int = MAX_BILLED_CHARS,
    max_total: int = MAX_TOTAL_CHARS,
) -> list[str]:
    """The request texts for one segment, in order, each within Polly's per-request limits.

    Plain text is cut at sentence ends, a sentence too long for one request at clause ends, then
    between words, and only a single word longer than a request is cut inside. Each part is a slice of
    the (whitespace-normalised) text and only the whitespace at a cut is dropped. SSML is cut at
    sentence ends outside every element and each part is wrapped in the document's ``<speak>``; a
    passage with no such place that is still too long is refused (SegmentRejected), since a cut inside
    an element would break the markup.
    """
    text = " ".join(text.split())
    if text_type == "ssml":
        return _split_ssml(text, max_billed, max_total)
    limit = min(max_billed, max_total)
    if len(text) <= limit:
        return [text]
    spans = _pack(_pieces(text, limit), lambda a, b: b - a <= limit)
    return [text[a:b] for a, b in spans]


Span = tuple[int, int]


def _pieces(text: str, limit: int) -> list[Span]:
    """Sentences, with any over ``limit`` broken at clauses, words, and as a last resort characters."""
    out: list[Span] = []
    for sentence in _spans(text, 0, len(text), _SENTENCE_END):
        if sentence[1] - sentence[0] <= limit:
            out.append(sentence)
            continue
        for clause in _spans(text, *sentence, _CLAUSE_END):
            if clause[1] - clause[0] <= limit:
                out.append(clause)
                continue
            for start, end in _spans(text, *clause, _SPACE):
                out.extend((i, min(i + limit, end)) for i in range(start, end, limit))
    return out


def _spans(text: str, start: int, end: int, boundary: re.Pattern[str]) -> list[Span]:
    """``text[start:end]`` cut at each boundary: its punctuation stays, its whitespace goes."""
    spans, position = [], start
    for match in boundary.finditer(text, start, end):
        cut = match.start() + len(match.group().rstrip())
        if cut > position:
            spans.append((position, cut))
        position = match.end()
    if end > position:
        spans.append((position, end))
    return spans


def _pack(spans: list[Span], fits: Callable[[int, int], bool]) -> list[Span]:
    """Greedily merge consecutive spans (with what lies between them) while the result still fits."""
    merged: list[Span] = []
    for start, end in spans:
        if merged and fits(merged[-1][0], end):
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def ssml_document(text: str) -> str:
    """The text as one ``<speak>`` document (a text that already is one is kept as it is)."""
    return text if text.startswith("<speak") else f"<speak>{text}</speak>"


def _split_ssml(text: str, max_billed: int, max_total: int) -> list[str]:
    document = ssml_document(text)

    def fits(part: str) -> bool:
        return billed_chars(part, "ssml") <= max_billed and len(part) <= max_total

    if fits(document):
        return [document]
    opening = re.match(r"<speak\b[^>]*>", document)
    assert opening is not None
    body = document[opening.end() :].removesuffix("</speak>")

    def wrap(a: int, b: int) -> str:
        return f"{opening.group()}{body[a:b]}</speak>"

    parts = [wrap(a, b) for a, b in _pack(_ssml_sentences(body), lambda a, b: fits(wrap(a, b)))]
    for part in parts:
        if not fits(part):
            raise SegmentRejected(
                f"text: an SSML passage of {billed_chars(part, 'ssml')} billed characters "
                f"({len(part)} in all) has no sentence end outside an element, and Polly takes at "
                f"most {max_billed} billed / {max_total} in all per request; end a sentence outside "
                "the element, or split the segment"
            )
    return parts


def _ssml_sentences(body: str) -> list[Span]:
    """The body cut after sentence ends that lie outside every element."""
    spans, start, depth, position = [], 0, 0, 0
    for tag in [*_TAG.finditer(body), None]:
        end = tag.start() if tag else len(body)
        if depth == 0:
            for match in _SENTENCE_END.finditer(body, position, end):
                cut = match.start() + len(match.group().rstrip())
                if body[start:cut].strip():
                    spans.append((start, cut))
                start = match.end()
        if tag is None:
            break
        markup = tag.group()
        if markup.startswith("</"):
            depth -= 1
        elif not markup.endswith("/>") and not markup.startswith(("<?", "<!")):
            depth += 1
        position = tag.end()
    if body[start:].strip():
        spans.append((start, len(body)))
    return spans


def plain_text(text: str, text_type: str = "text") -> str:
    """What is spoken, for captions: SSML without its markup, entities decoded."""
    if text_type != "ssml":
        return text
    return " ".join(html.unescape(_TAG.sub(" ", text)).split())


# --- one call --------------------------------------------------------------------------------------


def decode_pcm(data: bytes) -> np.ndarray:
    """Polly's PCM stream as int16 samples; an odd byte count is a cut-off stream (retried)."""
    if len(data) % PCM_DTYPE.itemsize:
        raise TransientSynthesisError(f"Polly's PCM stream is {len(data)} bytes, not whole 16-bit samples")
    return np.frombuffer(data, dtype=PCM_DTYPE).astype(np.int16)


def synthesize(
    polly: Any,
    request: PollyRequest,
    text: str,
    sample_rate: int = SAMPLE_RATE,
    max_billed: int = MAX_BILLED_CHARS,
    max_total: int = MAX_TOTAL_CHARS,
) -> PollyAudio:
    """One segment's audio: a SynthesizeSpeech call per part of the text, their PCM joined.

    Raises TransientSynthesisError (throttling, 5xx, a cut stream: worth another try) or
    SegmentRejected (final, naming the script field to fix).
    """
    parts = split_for_polly(text, request.text_type, max_billed, max_total)
    chunks, emulated = [], set()
    for part in parts:
        arguments: dict[str, Any] = {
            "Engine": request.engine,
            "VoiceId": request.voice_id,
            "OutputFormat": "pcm",
            "SampleRate": str(sample_rate),
            "TextType": request.text_type,
            "Text": part,
        }
        if request.language_code:
            arguments["LanguageCode"] = request.language_code
        try:
            response = polly.synthesize_speech(**arguments)
            data = response["AudioStream"].read()
        except (ClientError, BotoCoreError) as exc:
            raise polly_error(exc, request) from None
        chunks.append(decode_pcm(data))
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        emulated.add(EMULATED_HEADER in headers)
    if len(emulated) > 1:
        raise TransientSynthesisError("Polly answered partly emulated, partly real; not mixing them")
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    return PollyAudio(pcm, sample_rate, emulated == {True}, len(parts))


def polly_error(exc: Exception, request: PollyRequest) -> SynthesisError:
    """What a failed SynthesizeSpeech call means for the segment: retry, or which field to fix."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return SegmentRejected(
            "Amazon Polly needs real AWS credentials (boto3's usual chain) and NARRATE_AWS=real; "
            "local mode serves Polly voices with the dev voice instead"
        )
    if not isinstance(exc, ClientError):
        return TransientSynthesisError(f"Polly did not answer: {exc}")
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", "")).strip()[:300]
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if is_transient(exc):
        return TransientSynthesisError(f"Polly {code or status}: {message}")
    if code == "EngineNotSupportedException" or "'engine'" in message.lower():
        return SegmentRejected(
            f"voice.polly_engine: Polly voice {request.voice_id} has no {request.engine!r} engine "
            f"({message}); pick an engine the voice supports (aws polly describe-voices) or another voice_id"
        )
    if code == "LanguageNotSupportedException" or "'languagecode'" in message.lower():
        return SegmentRejected(
            f"voice.language_code: Polly voice {request.voice_id} does not speak "
            f"{request.language_code!r} ({message}); remove language_code or use one the voice speaks"
        )
    unknown_voice = "'voiceid'" in message.lower() or (
        code == "InvalidParameterValue" and "Not one of" in message
    )
    if unknown_voice:
        return SegmentRejected(
            f"voice.voice_id: Polly has no voice {request.voice_id!r}; use a voice id from "
            "`aws polly describe-voices` (e.g. Matthew, Joanna), capitalised as listed"
        )
    if code == "InvalidSsmlException":
        return SegmentRejected(
            f"text: Polly refused the SSML ({message}); fix the markup or set voice.text_type: text"
        )
    if code == "TextLengthExceededException":
        return SegmentRejected(
            f"text: Polly says a request is too long ({message}); split the segment into shorter ones"
        )
    if is_auth_error(exc):
        return SegmentRejected(
            f"AWS refused the Polly call ({code}: {message}); give the caller polly:SynthesizeSpeech "
            "(see `narrate iam-policy`) and valid credentials"
        )
    return SegmentRejected(f"Polly refused the request ({code or status}: {message})")
