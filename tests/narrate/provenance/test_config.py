"""Which key signs, checked before anything is synthesised: a PEM chain and key from the settings, an AWS
KMS key (moto's KMS: the boundary we cannot reach), the development certificate; and when a render must
be signed (a cloned voice with --aws real)."""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from cryptography.hazmat.primitives.serialization import load_der_public_key

from narrate.consent import create_consent, write_consent
from narrate.errors import ConfigError
from narrate.provenance.config import provenance_required, render_signing, signing_from
from narrate.provenance.devcert import create_development_certificate
from narrate.provenance.sign import SignJob, sign_in_place
from narrate.script import NarrationScript, load_script
from narrate.settings import Settings
from tests.narrate.provenance.media import claims, make_media


def settings(**values: Any) -> Settings:
    return Settings(**values)


@pytest.fixture
def clone_voice(tmp_path: Path) -> NarrationScript:
    clip = tmp_path / "ada.wav"
    sf.write(clip, np.zeros(24000, dtype=np.float32), 24000)
    write_consent(
        create_consent(clip, "Ada Lovelace", "Acme demos", date(2026, 1, 5)), tmp_path / "consent.json"
    )
    script = tmp_path / "clone.yaml"
    script.write_text(
        "title: Cloned\nvoice: {engine: qwen-clone, reference_clip: ada.wav, reference_text: Hi.,"
        " consent: consent.json}\nsegments: [{id: a, text: Hello.}]\n"
    )
    return load_script(script)


def test_nothing_signs_until_a_certificate_exists(tmp_path: Path) -> None:
    assert signing_from(settings(provenance_dir=tmp_path / "none")) is None
    made = create_development_certificate(tmp_path / "dev")
    found = signing_from(settings(provenance_dir=made.folder))
    assert found is not None and found.development and found.key.private_key == made.private_key
    assert signing_from(settings(provenance_dir=made.folder, provenance="off")) is None
    assert os.stat(made.folder / "key.pem").st_mode & 0o777 == 0o600
    with pytest.raises(ConfigError, match="already holds a development certificate; give --force"):
        create_development_certificate(made.folder)


def test_a_clone_must_be_signed_with_real_aws(clone_voice: NarrationScript, tmp_path: Path) -> None:
    voice, nothing = clone_voice.voice, tmp_path / "none"
    assert provenance_required(settings(aws="real"), voice)
    assert not provenance_required(settings(aws="local"), voice)
    assert not provenance_required(settings(aws="real", require_provenance=False), voice)
    refused = r"NARRATE_REQUIRE_PROVENANCE: a cloned voice is published only with signed Content Credentials"
    with pytest.raises(ConfigError, match=refused + r".*narrate provenance init"):
        render_signing(settings(aws="real", provenance_dir=nothing), voice)
    assert render_signing(settings(aws="local", provenance_dir=nothing), voice) is None
    made = create_development_certificate(tmp_path / "dev")
    assert render_signing(settings(aws="real", provenance_dir=made.folder), voice) is not None


def test_a_configured_key_is_checked_against_its_certificate(tmp_path: Path) -> None:
    one, other = (
        create_development_certificate(tmp_path / "one"),
        create_development_certificate(tmp_path / "two"),
    )
    paired = settings(provenance_certificate=one.chain, provenance_private_key=one.private_key)
    found = signing_from(paired)
    assert found is not None and not found.development
    mismatched = settings(provenance_certificate=one.chain, provenance_private_key=other.private_key)
    with pytest.raises(
        ConfigError, match=r"NARRATE_PROVENANCE_PRIVATE_KEY: .* is not the key of the certificate"
    ):
        signing_from(mismatched)
    with pytest.raises(
        ConfigError, match="NARRATE_PROVENANCE_CERTIFICATE: a signing key is configured without"
    ):
        signing_from(settings(provenance_private_key=one.private_key))
    with pytest.raises(ConfigError, match=r"NARRATE_PROVENANCE_CERTIFICATE: .*missing.pem not found"):
        signing_from(
            settings(provenance_certificate=tmp_path / "missing.pem", provenance_private_key=one.chain)
        )
    assert "BEGIN" not in repr(found.key) and str(one.private_key) in repr(found.key)


def test_a_kms_key_signs_and_must_be_the_certificates(tmp_path: Path) -> None:
    """The private key stays in KMS: narrate hands it the bytes to sign (moto's KMS signs for real)."""
    import boto3
    from moto import mock_aws

    from narrate.provenance.config import trust_list

    media = make_media(tmp_path / "media")
    with mock_aws():
        kms = boto3.client("kms", region_name="us-east-1")
        key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        public = load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])
        made = create_development_certificate(tmp_path / "kms", public_key=public)  # type: ignore[arg-type]
        assert made.private_key is None  # nothing of the key is on this machine
        configured = settings(provenance_certificate=made.chain, provenance_kms_key_id=key_id,
                              provenance_trust_anchors=made.root)  # fmt: skip
        found = signing_from(configured, kms)
        assert found is not None and found.key.callback is not None
        wav = Path(shutil.copy(media["wav"], tmp_path / "narration.wav"))
        assert sign_in_place(wav, SignJob(claims(), wav.name), found).status == "trusted"
        assert trust_list(configured).sources == (str(made.root),)
        other = create_development_certificate(tmp_path / "other")
        with pytest.raises(ConfigError, match=f"KMS key {key_id} is not the key of the certificate"):
            signing_from(settings(provenance_certificate=other.chain, provenance_kms_key_id=key_id), kms)
