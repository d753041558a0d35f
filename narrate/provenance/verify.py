"""Read a file's C2PA manifest back and judge it: is there one, is its signature good, do its hashes
match the file's bytes, is its signer on the trust list; and what it says (who signed, when, the
digital source type, narrate's claims). c2pa's own Reader does the validation; this module only
reads its verdict, never second-guesses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import c2pa
from pydantic import ValidationError

from narrate.provenance.claims import CLAIMS_LABEL, NarrateClaims, mime_type
from narrate.provenance.config import TrustList
from narrate.provenance.devcert import DEVELOPMENT_ORGANISATION
from narrate.provenance.record import Status, Verification

UNTRUSTED_CODE = "signingCredential.untrusted"


def verify_file(path: Path, trust: TrustList, name: str | None = None) -> Verification:
    """The verdict on ``path`` (shown as ``name``, default its file name) against ``trust``."""
    path, shown = Path(path), name or Path(path).name
    try:
        with c2pa.Context.from_dict(trust.reader_settings()) as context, open(path, "rb") as stream:
            reader = c2pa.Reader.try_create(mime_type(path), stream, None, context)
            if reader is None:
                return Verification(file=shown, status="missing", trust_list=trust.describe())
            with reader:
                state, results = reader.get_validation_state(), reader.get_validation_results() or {}
                manifest = reader.get_active_manifest() or {}
    except (c2pa.C2paError, KeyError) as exc:  # KeyError: a manifest store without its active manifest
        return Verification(file=shown, status="invalid", problems=[str(exc)], trust_list=trust.describe())
    return judged(shown, state, results, manifest, trust)


def judged(
    name: str, state: str | None, results: dict[str, Any], manifest: dict[str, Any], trust: TrustList
) -> Verification:
    failures = (results.get("activeManifest") or {}).get("failure") or []
    codes = [f"{f.get('code')}: {f.get('explanation', '')}".rstrip(": ") for f in failures]
    untrusted_only = bool(failures) and all(f.get("code") == UNTRUSTED_CODE for f in failures)
    if state == "Trusted" and not failures:
        status: Status = "trusted"
    elif state in {"Valid", "Trusted"} and (not failures or untrusted_only):
        status = "untrusted"
    else:
        status = "invalid"
    signature = manifest.get("signature_info") or {}
    claims, claim_problem = narrate_claims(manifest)
    return Verification(
        file=name,
        status="invalid" if claim_problem else status,
        problems=[c for c in codes if not c.startswith(UNTRUSTED_CODE)] + [p for p in [claim_problem] if p],
        signer=signature.get("common_name"),
        issuer=signature.get("issuer"),
        signed_at=signature.get("time"),
        development=signature.get("issuer") == DEVELOPMENT_ORGANISATION,
        trust_list=trust.describe(),
        digital_source_type=digital_source_type(manifest),
        claims=claims,
    )


def digital_source_type(manifest: dict[str, Any]) -> str | None:
    """The ``c2pa.created`` action's digital source type (actions v1 or v2)."""
    for assertion in manifest.get("assertions") or []:
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            for action in (assertion.get("data") or {}).get("actions") or []:
                if action.get("action") == "c2pa.created":
                    return action.get("digitalSourceType")
    return None


def narrate_claims(manifest: dict[str, Any]) -> tuple[NarrateClaims | None, str | None]:
    """narrate's assertion, if the manifest has one; a problem when it has one that does not parse."""
    for assertion in manifest.get("assertions") or []:
        if assertion.get("label") == CLAIMS_LABEL:
            try:
                return NarrateClaims.model_validate(assertion.get("data")), None
            except ValidationError as exc:
                return None, f"{CLAIMS_LABEL}: not narrate's claims ({exc.errors()[0]['msg']})"
    return None, None
