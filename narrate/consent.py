"""Voice-clone consent records: who agreed, to what, until when, for exactly which reference clip.

A ``qwen-clone`` voice names a consent record (JSON, written by ``narrate consent create``). A render
refuses when the record is missing, unreadable, expired, or was given for a different clip (its
SHA-256 differs): a consent covers one recording of one person's voice, not whatever file is there.
"""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from narrate.files import file_sha256, write_text_atomic


class ConsentRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    consent_id: str = Field(min_length=8, description="Stable id, quoted in every output's disclosure.")
    speaker_name: str = Field(min_length=1, description="The person whose voice is cloned.")
    scope: str = Field(min_length=3, description="What the voice may be used for, as agreed.")
    granted_on: date
    expires_on: date | None = Field(None, description="Last day the consent holds; none = until withdrawn.")
    reference_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the consented clip.")
    evidence: str | None = Field(None, description="Where the signed statement or recording is kept.")


def create_consent(
    clip: Path,
    speaker_name: str,
    scope: str,
    granted_on: date,
    expires_on: date | None = None,
    evidence: str | None = None,
) -> ConsentRecord:
    return ConsentRecord(
        consent_id=f"consent-{uuid.uuid4().hex[:12]}",
        speaker_name=speaker_name,
        scope=scope,
        granted_on=granted_on,
        expires_on=expires_on,
        reference_sha256=file_sha256(clip),
        evidence=evidence,
    )


def write_consent(record: ConsentRecord, path: Path) -> Path:
    return write_text_atomic(Path(path), record.model_dump_json(indent=2) + "\n")


def load_consent(path: Path) -> ConsentRecord:
    return ConsentRecord.model_validate_json(Path(path).read_text(encoding="utf-8"))


def consent_problem(path: Path, clip: Path, today: date | None = None) -> str | None:
    """Why this consent record does not cover cloning ``clip`` today, or None when it does."""
    fix = f"create one with `narrate consent create --clip {clip.name} ...`"
    if not path.is_file():
        return f"consent record {path.name!r} not found (looked in {path}); {fix}"
    try:
        record = load_consent(path)
    except (ValidationError, ValueError) as exc:
        first = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        return f"consent record {path.name!r} is not a valid record ({first[:120]}); {fix}"
    today = today or date.today()
    if record.expires_on is not None and record.expires_on < today:
        return f"consent {record.consent_id} of {record.speaker_name} expired on {record.expires_on}; {fix}"
    if record.granted_on > today:
        return f"consent {record.consent_id} is dated in the future ({record.granted_on}); fix its date"
    clip_sha256 = file_sha256(clip) if clip.is_file() else record.reference_sha256
    if clip_sha256 != record.reference_sha256:
        return (
            f"consent {record.consent_id} was given for another recording (sha256 "
            f"{record.reference_sha256[:12]}…, this clip is {clip_sha256[:12]}…); {fix}"
        )
    return None
