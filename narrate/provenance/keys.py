"""Where a signing key is, as a real deployment has it: a PEM private key file, or a callback that signs
with a key narrate never sees (an AWS KMS key, an HSM); always with the PEM certificate chain that
names whose key it is.

A :class:`SigningKey` holds paths and a callable, never key bytes: it may travel as a task's parameter
and be logged without giving anything away. The private key file is read only to make the c2pa
``Signer``, and nothing keeps its bytes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from narrate.errors import ConfigError

SignCallback = Callable[[bytes], bytes]  # the bytes to sign -> the signature (DER or raw for ECDSA)
CURVE_ALGORITHMS = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
KMS_ALGORITHMS = {"es256": "ECDSA_SHA_256", "es384": "ECDSA_SHA_384", "es512": "ECDSA_SHA_512",
                  "ps256": "RSASSA_PSS_SHA_256"}  # fmt: skip


@dataclass(frozen=True)
class SigningKey:
    """The certificate chain (PEM: the signing certificate first, then any intermediates) and either the
    private key's PEM file or a callback that signs with it."""

    chain: Path
    private_key: Path | None = None
    callback: SignCallback | None = None
    timestamp_url: str | None = None  # an RFC 3161 timestamp authority: a trusted signing time

    def __post_init__(self) -> None:
        if (self.private_key is None) == (self.callback is None):
            raise ValueError("a signing key is a private key file or a signing callback, exactly one")

    def __repr__(self) -> str:  # never anything but where the key is
        where = str(self.private_key) if self.private_key else "a signing callback"
        return f"SigningKey(chain={str(self.chain)!r}, key={where!r})"


def load_chain(path: Path, setting: str) -> list[x509.Certificate]:
    """The certificates of a PEM chain file; ConfigError naming ``setting`` when there are none."""
    try:
        chain = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"{setting}: {path} not found; give the PEM certificate chain's path") from None
    except ValueError as exc:
        raise ConfigError(f"{setting}: {path} is not a PEM certificate chain ({exc})") from None
    return chain


def algorithm(certificate: x509.Certificate) -> str:
    """The C2PA signing algorithm of the certificate's key: ES256/384/512 by curve, PS256, Ed25519."""
    public = certificate.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name in CURVE_ALGORITHMS:
        return CURVE_ALGORITHMS[public.curve.name]
    if isinstance(public, rsa.RSAPublicKey):
        return "ps256"
    if isinstance(public, ed25519.Ed25519PublicKey):
        return "ed25519"
    raise ConfigError(f"the signing certificate's key ({type(public).__name__}) is not one C2PA signs with; "
                      "use an EC P-256/384/521, RSA (PS256) or Ed25519 key")  # fmt: skip


def check_key(key: SigningKey, now: datetime | None = None) -> str:
    """Validates the chain (present, in date) and, for a key file, that the key is the certificate's;
    returns the signing algorithm. A ConfigError names the setting to fix."""
    chain = load_chain(key.chain, "NARRATE_PROVENANCE_CERTIFICATE")
    leaf, now = chain[0], now or datetime.now(UTC)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise ConfigError(
            f"NARRATE_PROVENANCE_CERTIFICATE: the signing certificate in {key.chain} is valid from "
            f"{leaf.not_valid_before_utc:%Y-%m-%d} to {leaf.not_valid_after_utc:%Y-%m-%d}; renew it"
        )
    if key.private_key is not None:
        private = load_private_key(key.private_key)
        if _public_der(private.public_key()) != _public_der(leaf.public_key()):
            raise ConfigError(
                f"NARRATE_PROVENANCE_PRIVATE_KEY: {key.private_key} is not the key of the certificate in "
                f"{key.chain}; give the matching pair"
            )
    return algorithm(leaf)


def load_private_key(path: Path) -> Any:
    try:
        return serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except FileNotFoundError:
        raise ConfigError(
            f"NARRATE_PROVENANCE_PRIVATE_KEY: {path} not found; give the PEM private key's path"
        ) from None
    except (ValueError, TypeError):
        raise ConfigError(
            f"NARRATE_PROVENANCE_PRIVATE_KEY: {path} is not an unencrypted PEM private key; for a key "
            "that must stay in a KMS or HSM use NARRATE_PROVENANCE_KMS_KEY_ID or a signing callback"
        ) from None


def _public_der(public: Any) -> bytes:
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def open_signer(key: SigningKey) -> c2pa.Signer:
    """The c2pa Signer of ``key`` (checked first); close it after use (it is a context manager)."""
    alg = check_key(key)
    chain = key.chain.read_bytes()
    if key.callback is not None:
        return c2pa.Signer.from_callback(key.callback, c2pa.C2paSigningAlg[alg.upper()], chain.decode(),
                                         key.timestamp_url)  # fmt: skip
    assert key.private_key is not None
    info = c2pa.C2paSignerInfo(alg, chain, key.private_key.read_bytes(), key.timestamp_url)
    return c2pa.Signer.from_info(info)


def kms_callback(key_id: str, kms: Any, alg: str) -> SignCallback:
    """Signs with an asymmetric AWS KMS key (SIGN_VERIFY): the key never leaves KMS. ``kms`` is a boto3
    KMS client; KMS returns ECDSA signatures in DER, which c2pa accepts from a callback."""
    if alg not in KMS_ALGORITHMS:
        raise ConfigError(f"NARRATE_PROVENANCE_KMS_KEY_ID: KMS cannot sign {alg}; use an ECC_NIST or RSA key")

    def sign(data: bytes) -> bytes:
        answer = kms.sign(KeyId=key_id, Message=data, MessageType="RAW", SigningAlgorithm=KMS_ALGORITHMS[alg])
        return bytes(answer["Signature"])

    return sign


def kms_public_key(key_id: str, kms: Any) -> bytes:
    """The DER public key of a KMS key (for its certificate, and to check the certificate is its)."""
    return bytes(kms.get_public_key(KeyId=key_id)["PublicKey"])


def check_kms_key(key_id: str, kms: Any, chain: Path) -> str:
    """The KMS key is the certificate's; returns the signing algorithm."""
    leaf = load_chain(chain, "NARRATE_PROVENANCE_CERTIFICATE")[0]
    if kms_public_key(key_id, kms) != _public_der(leaf.public_key()):
        raise ConfigError(
            f"NARRATE_PROVENANCE_KMS_KEY_ID: KMS key {key_id} is not the key of the certificate in {chain}; "
            "give the certificate issued for that key"
        )
    return algorithm(leaf)


def imported_callback(reference: str) -> SignCallback:
    """``package.module:function``, a callable taking the bytes to sign and returning the signature."""
    module_name, colon, name = reference.partition(":")
    try:
        if not colon:
            raise ValueError("no ':'")
        found = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(
            f"NARRATE_PROVENANCE_SIGN_CALLBACK: {reference!r} is not an importable function ({exc}); "
            "write package.module:function"
        ) from None
    if not callable(found):
        raise ConfigError(f"NARRATE_PROVENANCE_SIGN_CALLBACK: {reference!r} is not callable")
    return found  # type: ignore[no-any-return]
