"""What narrate's Content Credentials say about a file: the narrate assertion (label ``io.narrate.voice``)
beside the standard ``c2pa.actions`` one, and the IPTC digital source type of each kind of output.

A narration is trained algorithmic media (speech a model generated from text); a re-timed video is a
composite of a real recording with trained algorithmic media (the narration). The assertion names the
engine, model and revision, the voice, narrate's version, the script's SHA-256 and, for a cloned
voice, the consent it was made under and the SHA-256 of the consented clip.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from narrate import __version__
from narrate.consent import load_consent
from narrate.script import QwenCloneVoice, Voice
from narrate.track.timeline import Timeline

CLAIMS_LABEL = "io.narrate.voice"  # narrate's own assertion (C2PA entity-specific label)
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
Media = Literal["narration", "video"]
SOURCE_TYPES: dict[Media, str] = {
    "narration": IPTC + "trainedAlgorithmicMedia",
    "video": IPTC + "compositeWithTrainedAlgorithmicMedia",
}
MIME_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".mp4": "video/mp4"}


class CloneConsent(BaseModel):
    """The consent a cloned voice was made under (narrate.consent's record, without its evidence)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    consent_id: str
    speaker_name: str
    scope: str
    granted_on: date
    expires_on: date | None = None  # none: until withdrawn
    reference_sha256: str = Field(description="SHA-256 of the reference clip the voice was cloned from.")


class NarrateClaims(BaseModel):
    """The data of the ``io.narrate.voice`` assertion."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    media: Media
    disclosure: str
    engine: str
    model_id: str
    model_revision: str
    voice: str
    language: str | None = None
    emulated: str | None = None  # a stand-in spoke it (local mode's Polly): which one
    narrate_version: str
    script_sha256: str
    rendered_at: datetime
    consent: CloneConsent | None = None

    @property
    def source_type(self) -> str:
        return SOURCE_TYPES[self.media]

    def as_video(self) -> NarrateClaims:
        """The same facts, said of the recording re-timed to this narration."""
        return self.model_copy(update={"media": "video", "rendered_at": datetime.now(UTC)})


def narration_claims(timeline: Timeline, voice: Voice, script_sha256: str) -> NarrateClaims:
    """The claims of a finished narration: its timeline's facts, and a clone's consent."""
    return NarrateClaims(
        media="narration",
        disclosure=timeline.disclosure,
        engine=timeline.engine,
        model_id=timeline.model_id,
        model_revision=timeline.model_revision,
        voice=timeline.voice,
        language=timeline.language,
        emulated=timeline.emulated,
        narrate_version=__version__,
        script_sha256=script_sha256,
        rendered_at=datetime.now(UTC),
        consent=clone_consent(voice),
    )


def clone_consent(voice: Voice) -> CloneConsent | None:
    """A clone's consent record (the script's check made sure its clip is the consented one)."""
    if not isinstance(voice, QwenCloneVoice):
        return None
    record = load_consent(voice.consent)
    return CloneConsent(
        consent_id=record.consent_id,
        speaker_name=record.speaker_name,
        scope=record.scope,
        granted_on=record.granted_on,
        expires_on=record.expires_on,
        reference_sha256=record.reference_sha256,
    )


def manifest_definition(claims: NarrateClaims, title: str) -> dict[str, Any]:
    """The C2PA manifest definition of one output (c2pa's Builder JSON)."""
    agent = {"name": "narrate", "version": claims.narrate_version}
    created = {
        "action": "c2pa.created",
        "digitalSourceType": claims.source_type,
        "softwareAgent": agent,
        "description": claims.disclosure,
    }
    return {
        "claim_generator_info": [agent],
        "title": title,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [created]}},
            {"label": CLAIMS_LABEL, "data": claims.model_dump(mode="json")},
        ],
    }


def mime_type(path: Path) -> str | None:
    """The media type of ``path`` by its name (narrate's outputs: WAV, MP3, MP4); None: c2pa tells by
    the bytes."""
    return MIME_TYPES.get(Path(path).suffix.lower())
