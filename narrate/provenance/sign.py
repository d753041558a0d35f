"""Sign a file with narrate's Content Credentials and read the signed copy back before anyone sees it.

The signed copy is written beside the file, read back with c2pa's Reader against the render's trust
list, and accepted only when its manifest is intact, matches its bytes and says exactly the claims
that were signed; then it replaces the file in one rename. A signer not on the local trust list is
accepted (recorded as ``untrusted``): whether to trust a signer is the verifier's call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import c2pa

from narrate.errors import ProvenanceError
from narrate.files import write_atomic
from narrate.provenance.claims import NarrateClaims, manifest_definition, mime_type
from narrate.provenance.config import Signing
from narrate.provenance.keys import open_signer
from narrate.provenance.verify import Verification, verify_file

# Audio and video get no thumbnail; the read-back below is the check after signing, so c2pa's own
# verify_after_sign would only hash the file a second time. Above 16 MB c2pa works from a temporary file,
# not memory: an hour's WAV (172 MB) then costs about 340 MB of RSS to sign instead of 500.
BUILDER_SETTINGS = {
    "builder": {"thumbnail": {"enabled": False}},
    "verify": {"verify_after_sign": False},
    "core": {"backing_store_memory_threshold_in_mb": 16},
}


@dataclass(frozen=True)
class Ingredient:
    """A file the signed one was made from; its own Content Credentials, if any, travel with it."""

    path: Path
    relationship: Literal["componentOf", "parentOf", "inputTo"] = "componentOf"


@dataclass(frozen=True)
class SignJob:
    """What to sign a file with: the claims, the name it is published under, what it was made from."""

    claims: NarrateClaims
    title: str
    ingredients: Sequence[Ingredient] = field(default_factory=tuple)


def sign_copy(source: Path, target: Path, job: SignJob, signing: Signing) -> Verification:
    """``source`` with its manifest embedded, written to ``target`` (same format) and read back;
    ProvenanceError, and ``target`` left as it is, when the copy does not verify."""
    name = job.title
    fmt = mime_type(Path(name))
    if fmt is None:
        raise ProvenanceError(f"{name}: narrate signs WAV, MP3 and MP4 files only")
    try:
        definition = manifest_definition(job.claims, name)
        with (
            open_signer(signing.key) as signer,
            c2pa.Context.from_dict(BUILDER_SETTINGS) as context,
            c2pa.Builder(definition, context) as builder,
        ):
            for ingredient in job.ingredients:
                _add_ingredient(builder, ingredient)
            with open(source, "rb") as reading, open(target, "w+b") as writing:
                builder.sign(signer, fmt, reading, writing)
    except c2pa.C2paError as exc:
        raise ProvenanceError(f"{name}: signing failed ({exc}); nothing was published") from None
    verification = verify_file(target, signing.trust, name)
    if problem := _problem(verification, job.claims):
        raise ProvenanceError(f"{name}: the signed copy did not verify ({problem}); nothing was published")
    return verification


def sign_in_place(
    path: Path, job: SignJob, signing: Signing, check: Callable[[Path, Path], None] | None = None
) -> Verification:
    """Sign ``path`` itself: the checked signed copy replaces it atomically (temp file + rename);
    ``check(path, signed_copy)``, if given, must pass first."""
    found: list[Verification] = []

    def write(tmp: Path) -> None:
        found.append(sign_copy(path, tmp, job, signing))
        if check is not None:
            check(path, tmp)

    write_atomic(path, write)
    return found[0]


def _add_ingredient(builder: c2pa.Builder, ingredient: Ingredient) -> None:
    info = {"title": ingredient.path.name, "relationship": ingredient.relationship}
    with open(ingredient.path, "rb") as stream:
        builder.add_ingredient(info, mime_type(ingredient.path) or "application/octet-stream", stream)


def _problem(verification: Verification, claims: NarrateClaims) -> str | None:
    if verification.status not in {"trusted", "untrusted"}:
        return verification.reason()
    if verification.claims != claims:
        return "the manifest read back does not carry the claims that were signed"
    if verification.digital_source_type != claims.source_type:
        return f"its digital source type is {verification.digital_source_type}, not {claims.source_type}"
    return None
