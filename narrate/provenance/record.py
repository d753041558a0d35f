"""``provenance.json`` in a render folder: each signed output's verification as it was read back right
after signing (who signed, the trust verdict, the digital source type, narrate's claims). The review
page and the Prefect report show it; ``narrate verify`` checks the files themselves again."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from narrate.files import write_text_atomic
from narrate.provenance.claims import NarrateClaims

Status = Literal["trusted", "untrusted", "invalid", "missing"]


class Verification(BaseModel):
    """One file's verdict. ``trusted``: intact and signed by a root on the trust list; ``untrusted``:
    intact, but its signer is not on the list; ``invalid``: broken, or not the bytes it signed;
    ``missing``: no manifest at all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str
    status: Status
    problems: list[str] = []
    signer: str | None = None  # the signing certificate's common name
    issuer: str | None = None  # its organisation
    signed_at: str | None = None  # a timestamp authority's time; None without one
    development: bool = False  # signed with narrate's untrusted development certificate
    trust_list: str = ""
    digital_source_type: str | None = None
    claims: NarrateClaims | None = None

    @property
    def passed(self) -> bool:
        return self.status == "trusted"

    def reason(self) -> str:
        """Why it did not pass, in one line."""
        if self.status == "missing":
            return "no Content Credentials (no C2PA manifest in the file)"
        if self.status == "untrusted":
            return (f"signed and intact, but its signer ({self.signer}, {self.issuer}) is not on the trust "
                    f"list ({self.trust_list}); add its root to NARRATE_PROVENANCE_TRUST_ANCHORS if you "
                    "trust it")  # fmt: skip
        if self.status == "invalid":
            return "broken, or not the bytes that were signed: " + "; ".join(self.problems[:3])
        return "trusted"


class ProvenanceRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    files: dict[str, Verification] = {}  # by file name: narration.wav, narration.mp3, video.mp4

    def with_files(self, *verifications: Verification) -> ProvenanceRecord:
        return ProvenanceRecord(files={**self.files, **{v.file: v for v in verifications}})

    def summary(self) -> str:
        """One line: each file's verdict and signer, e.g. for the report."""
        if not self.files:
            return "not signed"
        parts = []
        for verification in self.files.values():
            who = f" by {verification.signer}" if verification.signer else ""
            development = " (development certificate)" if verification.development else ""
            parts.append(f"{verification.file}: {verification.status}{who}{development}")
        return "; ".join(parts)


def load_provenance(path: Path) -> ProvenanceRecord | None:
    """The record at ``path``; None when the render was not signed (no file)."""
    if not Path(path).is_file():
        return None
    return ProvenanceRecord.model_validate_json(Path(path).read_text(encoding="utf-8"))


def write_provenance(path: Path, record: ProvenanceRecord) -> Path:
    return write_text_atomic(Path(path), record.model_dump_json(indent=2) + "\n")
