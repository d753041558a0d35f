"""Whether a render signs, with which key, and which roots a verification trusts: read from the settings
once, at a render's start (validated there, before anything is synthesised) or a command's.

Signing is on (``NARRATE_PROVENANCE=auto``) when a certificate is configured, or when ``narrate
provenance init`` left a development certificate in ``NARRATE_PROVENANCE_DIR``; ``off`` never signs.
A ``qwen-clone`` voice is refused unsigned when ``NARRATE_REQUIRE_PROVENANCE`` is on, which it is by
default for ``--aws real`` renders (a clone published from a real deployment carries its consent in a
form anyone can check) and not in local mode (development, the tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from narrate.errors import ConfigError
from narrate.provenance.devcert import DevelopmentCertificate, development_certificate
from narrate.provenance.keys import (
    SignCallback,
    SigningKey,
    check_key,
    check_kms_key,
    imported_callback,
    kms_callback,
    load_chain,
)
from narrate.script import QwenCloneVoice, Voice
from narrate.settings import Settings


@dataclass(frozen=True)
class TrustList:
    """The roots a verification trusts (public certificates, PEM) and where each list came from."""

    anchors: str = ""
    sources: tuple[str, ...] = ()

    def reader_settings(self) -> dict[str, Any]:
        """c2pa's settings for reading: trust exactly these roots, fetch nothing over the network."""
        verify = {"verify_trust": True, "remote_manifest_fetch": False, "ocsp_fetch": False}
        return {"verify": verify, **({"trust": {"trust_anchors": self.anchors}} if self.anchors else {})}

    def describe(self) -> str:
        return " + ".join(self.sources) or "an empty trust list (set NARRATE_PROVENANCE_TRUST_ANCHORS)"


@dataclass(frozen=True)
class Signing:
    """How a render signs its outputs, and the trust list its signed files are read back against."""

    key: SigningKey
    trust: TrustList = field(default_factory=TrustList)
    development: bool = False  # the untrusted development certificate of `narrate provenance init`


def trust_list(settings: Settings) -> TrustList:
    """NARRATE_PROVENANCE_TRUST_ANCHORS, plus this machine's development root when there is one."""
    anchors: list[str] = []
    sources: list[str] = []
    if settings.provenance_trust_anchors is not None:
        path = Path(settings.provenance_trust_anchors)
        load_chain(path, "NARRATE_PROVENANCE_TRUST_ANCHORS")  # PEM certificates, or a ConfigError
        anchors.append(path.read_text(encoding="ascii"))
        sources.append(str(path))
    development = development_certificate(settings.provenance_dir)
    if development is not None:
        anchors.append(development.root.read_text(encoding="ascii"))
        sources.append(f"this machine's development root ({development.root})")
    return TrustList("".join(anchors), tuple(sources))


def signing_from(settings: Settings, kms: Any = None) -> Signing | None:
    """The signing the settings configure, checked; None when nothing signs. ``kms`` is the boto3 KMS
    client to sign with when NARRATE_PROVENANCE_KMS_KEY_ID names a key (default: one for the region)."""
    if settings.provenance == "off":
        return None
    development = development_certificate(settings.provenance_dir)
    if settings.provenance_certificate is not None:
        key = configured_key(settings, kms)
    elif _key_settings_given(settings):
        raise ConfigError(
            "NARRATE_PROVENANCE_CERTIFICATE: a signing key is configured without its certificate chain; "
            "give the PEM chain's path"
        )
    elif development is not None:
        key = development_key(development, settings.provenance_tsa_url)
    else:
        return None
    if key.callback is None:
        check_key(key)
    return Signing(key, trust_list(settings), settings.provenance_certificate is None)


def configured_key(settings: Settings, kms: Any = None) -> SigningKey:
    chain = Path(settings.provenance_certificate)  # type: ignore[arg-type]
    given = [
        name
        for name, value in (
            ("NARRATE_PROVENANCE_PRIVATE_KEY", settings.provenance_private_key),
            ("NARRATE_PROVENANCE_KMS_KEY_ID", settings.provenance_kms_key_id),
            ("NARRATE_PROVENANCE_SIGN_CALLBACK", settings.provenance_sign_callback),
        )
        if value
    ]
    if len(given) != 1:
        raise ConfigError(
            "NARRATE_PROVENANCE_CERTIFICATE needs exactly one of NARRATE_PROVENANCE_PRIVATE_KEY, "
            "NARRATE_PROVENANCE_KMS_KEY_ID or NARRATE_PROVENANCE_SIGN_CALLBACK "
            f"({', '.join(given) or 'none'} given)"
        )
    tsa = settings.provenance_tsa_url
    if settings.provenance_private_key is not None:
        return SigningKey(chain, private_key=Path(settings.provenance_private_key), timestamp_url=tsa)
    callback: SignCallback
    if settings.provenance_kms_key_id:
        kms = kms if kms is not None else _kms_client(settings)
        alg = check_kms_key(settings.provenance_kms_key_id, kms, chain)
        callback = kms_callback(settings.provenance_kms_key_id, kms, alg)
    else:
        callback = imported_callback(str(settings.provenance_sign_callback))
    return SigningKey(chain, callback=callback, timestamp_url=tsa)


def development_key(development: DevelopmentCertificate, tsa_url: str | None) -> SigningKey:
    if development.private_key is None:
        raise ConfigError(
            f"{development.folder} holds a development certificate for a KMS key: set "
            "NARRATE_PROVENANCE_CERTIFICATE to its chain.pem and NARRATE_PROVENANCE_KMS_KEY_ID to the key"
        )
    return SigningKey(development.chain, private_key=development.private_key, timestamp_url=tsa_url)


def provenance_required(settings: Settings, voice: Voice) -> bool:
    """Whether a render of ``voice`` must be signed: NARRATE_REQUIRE_PROVENANCE, by default on for a
    ``--aws real`` render of a cloned voice."""
    if not isinstance(voice, QwenCloneVoice):
        return bool(settings.require_provenance)
    return settings.require_provenance if settings.require_provenance is not None else settings.aws == "real"


def render_signing(settings: Settings, voice: Voice, kms: Any = None) -> Signing | None:
    """The signing of a render of ``voice``; a ConfigError, before anything is synthesised, when the
    render must be signed and nothing would sign it."""
    signing = signing_from(settings, kms)
    if signing is None and provenance_required(settings, voice):
        what = "a cloned voice" if isinstance(voice, QwenCloneVoice) else "this render"
        switched_off = " and unset NARRATE_PROVENANCE=off" if settings.provenance == "off" else ""
        raise ConfigError(
            f"NARRATE_REQUIRE_PROVENANCE: {what} is published only with signed Content Credentials, and "
            "nothing signs: set NARRATE_PROVENANCE_CERTIFICATE and NARRATE_PROVENANCE_PRIVATE_KEY (or "
            "NARRATE_PROVENANCE_KMS_KEY_ID), or run `narrate provenance init` for an untrusted development "
            f"certificate{switched_off} (or, knowingly, set NARRATE_REQUIRE_PROVENANCE=false)"
        )
    return signing


def _key_settings_given(settings: Settings) -> bool:
    return bool(
        settings.provenance_private_key or settings.provenance_kms_key_id or settings.provenance_sign_callback
    )


def _kms_client(settings: Settings) -> Any:
    from narrate.aws.clients import AwsClients

    return AwsClients(settings.region).client("kms")
