"""``narrate provenance init`` (an untrusted development certificate, so this machine's renders are
signed) and ``narrate verify FILE...`` (anyone's check of a file's Content Credentials)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.markup import escape

from narrate.cli.progress import console
from narrate.errors import ConfigError, VerificationFailed
from narrate.outputs import MP3, VIDEO, WAV
from narrate.provenance.record import Verification
from narrate.settings import get_settings

SIGNED_OUTPUTS = (WAV, MP3, VIDEO)  # what a render folder given to `narrate verify` stands for
STATUS_STYLE = {"trusted": "green", "untrusted": "yellow", "invalid": "red", "missing": "red"}


def add_commands(commands: Any) -> None:
    provenance = commands.add_parser("provenance", help="Content Credentials (C2PA): the signing certificate")
    provenance.add_argument("action", choices=["init"], help="init: make a development certificate")
    provenance.add_argument("--force", action="store_true", help="replace an existing one")
    provenance.set_defaults(run=run_provenance_init)
    verify = commands.add_parser(
        "verify", help="check files' Content Credentials: signature, hashes, signer trust; what they say"
    )
    verify.add_argument("files", nargs="+", metavar="FILE", help="WAV, MP3 or MP4 files, or render folders")
    verify.add_argument("--json", action="store_true", help="print the verifications as JSON")
    verify.set_defaults(run=run_verify)


def run_provenance_init(args: argparse.Namespace) -> int:
    from narrate.provenance.devcert import create_development_certificate

    settings = get_settings()
    made = create_development_certificate(settings.provenance_dir, replace=args.force)
    console.print(
        f"wrote an [bold]UNTRUSTED development certificate[/] to {escape(str(made.folder))} (chain.pem, "
        "key.pem with mode 0600, root.pem). Renders on this machine are signed with it from now on "
        "(NARRATE_PROVENANCE=off stops that), and `narrate verify` on this machine trusts its root; "
        "nowhere else does. To publish, sign with your own certificate: NARRATE_PROVENANCE_CERTIFICATE "
        "and NARRATE_PROVENANCE_PRIVATE_KEY (or NARRATE_PROVENANCE_KMS_KEY_ID).",
        soft_wrap=True,
        highlight=False,
    )
    return 0


def files_to_verify(names: list[str]) -> list[Path]:
    """The files named, a render folder standing for its signed outputs; ConfigError listing every
    name that is neither."""
    files: list[Path] = []
    missing: list[str] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            found = [path / output for output in SIGNED_OUTPUTS if (path / output).is_file()]
            files += found
            if not found:
                missing.append(f"{name} (a folder without {', '.join(SIGNED_OUTPUTS)})")
        elif path.is_file():
            files.append(path)
        else:
            missing.append(f"{name} (no such file)")
    if missing:
        raise ConfigError(f"FILE: nothing to verify at {'; '.join(missing)}; give WAV, MP3 or MP4 files")
    return files


def run_verify(args: argparse.Namespace) -> int:
    from narrate.provenance.config import trust_list
    from narrate.provenance.verify import verify_file

    files = files_to_verify(args.files)
    trust = trust_list(get_settings())
    verifications = [verify_file(path, trust, str(path)) for path in files]
    if args.json:
        print(json.dumps([v.model_dump(mode="json") for v in verifications], indent=2))
    else:
        for verification in verifications:
            print_verification(verification)
    failed = {v.file: v.reason() for v in verifications if not v.passed}
    if failed:
        raise VerificationFailed(failed)
    return 0


def print_verification(verification: Verification) -> None:
    status = f"[bold {STATUS_STYLE[verification.status]}]{verification.status.upper()}[/]"
    if verification.development and verification.status == "trusted":
        status += " (a development certificate: trusted on this machine only)"
    console.print(f"[bold]{escape(verification.file)}[/]  {status}", soft_wrap=True, highlight=False)
    for label, text in verification_lines(verification):
        console.print(f"  {label:<12} {escape(text)}", soft_wrap=True, highlight=False)


def verification_lines(verification: Verification) -> list[tuple[str, str]]:
    """What a verified file's credentials say, one (label, text) per line."""
    if verification.status == "missing":
        return [("", verification.reason())]
    lines = []
    if verification.status != "trusted":
        lines.append(("verdict", verification.reason()))
    if verification.signer:
        lines.append(("signed by", f"{verification.signer} ({verification.issuer})"))
    claims = verification.claims
    when = verification.signed_at or "no trusted time (no timestamp authority)"
    if claims is not None and not verification.signed_at:
        when += f"; rendered at {claims.rendered_at:%Y-%m-%d %H:%M:%S} UTC, by its own account"
    lines.append(("signed at", when))
    source = (verification.digital_source_type or "none").rsplit("/", 1)[-1]
    lines.append(("source type", f"{source} (IPTC digital source type)"))
    if claims is None:
        return [*lines, ("claims", "no narrate claims in this manifest")]
    emulated = f"; emulated: {claims.emulated}" if claims.emulated else ""
    lines += [
        ("made by", f"narrate {claims.narrate_version}: {claims.engine}, model {claims.model_id} (revision "
                    f"{claims.model_revision}){emulated}"),
        ("voice", claims.voice + (f" ({claims.language})" if claims.language else "")),
        ("script", f"sha256 {claims.script_sha256}"),
    ]  # fmt: skip
    if claims.consent is not None:
        consent = claims.consent
        until = f"until {consent.expires_on}" if consent.expires_on else "until withdrawn"
        lines.append(("consent", f"{consent.consent_id}: {consent.speaker_name}, scope {consent.scope!r}, "
                                 f"granted {consent.granted_on}, {until}; reference clip sha256 "
                                 f"{consent.reference_sha256}"))  # fmt: skip
    return lines
