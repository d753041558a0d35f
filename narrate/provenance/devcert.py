"""``narrate provenance init``: a development certificate, so local mode and the tests can sign.

It is clearly untrusted: its organisation says so, its root is made for this one certificate and its
key is thrown away at once (nothing else can ever be issued under it), and no trust list but this
machine's own holds that root. Files, in ``NARRATE_PROVENANCE_DIR``:

- ``chain.pem``: the signing certificate (EC P-256, digitalSignature, emailProtection EKU, one year);
- ``key.pem``: its private key, mode 0600, unless the key lives in KMS (then there is none);
- ``root.pem``: the development root (ten years), which this machine's verification trusts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from narrate.errors import ConfigError
from narrate.files import write_bytes_atomic

DEVELOPMENT_ORGANISATION = "narrate development certificate (UNTRUSTED)"
CHAIN, KEY, ROOT = "chain.pem", "key.pem", "root.pem"


@dataclass(frozen=True)
class DevelopmentCertificate:
    folder: Path

    @property
    def chain(self) -> Path:
        return self.folder / CHAIN

    @property
    def private_key(self) -> Path | None:
        """The key file; None when the certificate is for a key kept elsewhere (KMS)."""
        path = self.folder / KEY
        return path if path.is_file() else None

    @property
    def root(self) -> Path:
        return self.folder / ROOT

    def exists(self) -> bool:
        return self.chain.is_file() and self.root.is_file()


def development_certificate(folder: Path) -> DevelopmentCertificate | None:
    """The development certificate in ``folder``, if ``narrate provenance init`` made one there."""
    found = DevelopmentCertificate(Path(folder))
    return found if found.exists() else None


def create_development_certificate(
    folder: Path, public_key: CertificatePublicKeyTypes | None = None, replace: bool = False
) -> DevelopmentCertificate:
    """A fresh development root and signing certificate in ``folder``; for ``public_key`` (a KMS key's)
    no key file is written. Refuses to replace an existing one unless ``replace``."""
    target = DevelopmentCertificate(Path(folder))
    if target.exists() and not replace:
        raise ConfigError(f"{folder} already holds a development certificate; give --force to replace it")
    now = datetime.now(UTC) - timedelta(minutes=5)  # a little slack for clocks that differ
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name("narrate development root")
    root = (
        _builder(root_name, root_name, root_key.public_key(), now, now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(sign_certificates=True), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    signing_key = None if public_key is not None else ec.generate_private_key(ec.SECP256R1())
    authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key())
    subject_key = public_key if public_key is not None else signing_key.public_key()  # type: ignore[union-attr]
    leaf = (
        _builder(_name("narrate development signer"), root_name, subject_key, now, now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(sign_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(authority, critical=False)
        .sign(root_key, hashes.SHA256())
    )  # the root's key goes out of scope here: nothing more can be issued under this root
    target.folder.mkdir(parents=True, exist_ok=True)
    (target.folder / KEY).unlink(missing_ok=True)
    if signing_key is not None:
        _write_private_key(target.folder / KEY, signing_key)
    write_bytes_atomic(target.chain, leaf.public_bytes(serialization.Encoding.PEM))
    write_bytes_atomic(target.root, root.public_bytes(serialization.Encoding.PEM))
    return target


def _write_private_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEVELOPMENT_ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: CertificatePublicKeyTypes,
    start: datetime,
    end: datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(sign_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not sign_certificates, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=sign_certificates,
        crl_sign=sign_certificates, encipher_only=False, decipher_only=False,
    )  # fmt: skip
