"""Signing and verifying with c2pa's own Builder and Reader: each format narrate publishes is signed, read
back and trusted; one changed byte, a manifest stripped by ffmpeg, a signer not on the trust list and a
signature that does not match are each told apart, and a signed copy that does not verify is never
published."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from narrate.errors import ProvenanceError
from narrate.provenance.claims import CLAIMS_LABEL, SOURCE_TYPES
from narrate.provenance.config import Signing, TrustList, signing_from
from narrate.provenance.keys import SigningKey
from narrate.provenance.sign import Ingredient, SignJob, sign_copy, sign_in_place
from narrate.provenance.verify import verify_file
from narrate.settings import get_settings
from tests.narrate.provenance.media import FORMATS, claims, flip_one_byte, make_media, strip_with_ffmpeg


@pytest.fixture(scope="module")
def unsigned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_media(tmp_path_factory.mktemp("unsigned"))


@pytest.fixture
def dev_signing(signing: Any) -> Signing:
    found = signing_from(get_settings())
    assert found is not None and found.development
    return found


@pytest.fixture
def signed(unsigned: dict[str, Path], tmp_path: Path, dev_signing: Signing) -> dict[str, Path]:
    files = {fmt: Path(shutil.copy(path, tmp_path / path.name)) for fmt, path in unsigned.items()}
    for fmt, path in files.items():
        media = "video" if fmt == "mp4" else "narration"
        sign_in_place(path, SignJob(claims(media), path.name), dev_signing)
    return files


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_is_signed_read_back_and_trusted(
    fmt: str, signed: dict[str, Path], unsigned: dict[str, Path], dev_signing: Signing
) -> None:
    verification = verify_file(signed[fmt], dev_signing.trust)
    media = "video" if fmt == "mp4" else "narration"
    assert verification.status == "trusted" and verification.passed, verification
    assert verification.claims == claims(media)
    assert verification.digital_source_type == SOURCE_TYPES[media]  # type: ignore[index]
    assert verification.signer == "narrate development signer" and verification.development
    assert verification.signed_at is None  # no timestamp authority configured
    assert signed[fmt].stat().st_size > unsigned[fmt].stat().st_size
    if fmt == "wav":  # the samples and the disclosure tag are untouched
        before, after = sf.read(unsigned[fmt], dtype="int16")[0], sf.read(signed[fmt], dtype="int16")[0]
        assert (before == after).all()
        with sf.SoundFile(signed[fmt]) as wav:
            assert wav.comment.startswith("Synthetic speech")


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_changed_byte_fails_verification(
    fmt: str, signed: dict[str, Path], tmp_path: Path, dev_signing: Signing
) -> None:
    changed = flip_one_byte(signed[fmt], tmp_path / f"changed.{fmt}")
    verification = verify_file(changed, dev_signing.trust)
    assert verification.status == "invalid" and not verification.passed
    assert any("Hash.mismatch" in problem for problem in verification.problems), verification.problems
    assert "not the bytes that were signed" in verification.reason()


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_manifest_stripped_by_a_remux_is_reported_missing(
    fmt: str, signed: dict[str, Path], tmp_path: Path, dev_signing: Signing
) -> None:
    stripped = strip_with_ffmpeg(signed[fmt], tmp_path / f"stripped.{fmt}")
    verification = verify_file(stripped, dev_signing.trust)
    assert verification.status == "missing" and verification.claims is None
    assert verification.reason().startswith("no Content Credentials")


def test_a_signer_not_on_the_trust_list_is_untrusted(signed: dict[str, Path]) -> None:
    verification = verify_file(signed["wav"], TrustList())
    assert verification.status == "untrusted" and not verification.passed
    assert verification.claims == claims() and verification.problems == []
    assert "NARRATE_PROVENANCE_TRUST_ANCHORS" in verification.reason()


def test_a_signed_copy_that_does_not_verify_is_never_published(
    unsigned: dict[str, Path], tmp_path: Path, dev_signing: Signing
) -> None:
    """A signing callback with the wrong key (an HSM holding another key, say): c2pa signs, the read-back
    refuses it, and the file keeps its old bytes, with no temporary file left beside it."""
    other = ec.generate_private_key(ec.SECP256R1())
    wrong = SigningKey(
        dev_signing.key.chain, callback=lambda data: other.sign(data, ec.ECDSA(hashes.SHA256()))
    )
    path = Path(shutil.copy(unsigned["wav"], tmp_path / "narration.wav"))
    before = path.read_bytes()
    with pytest.raises(
        ProvenanceError, match=r"narration\.wav: the signed copy did not verify .*claimSignature"
    ):
        sign_in_place(path, SignJob(claims(), path.name), Signing(wrong, dev_signing.trust))
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["narration.wav"]


def test_a_callback_signer_signs(unsigned: dict[str, Path], tmp_path: Path, dev_signing: Signing) -> None:
    """The interface a KMS or HSM key uses: the key's owner signs the bytes it is handed."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    assert dev_signing.key.private_key is not None
    key = load_pem_private_key(dev_signing.key.private_key.read_bytes(), None)
    handed: list[int] = []

    def sign(data: bytes) -> bytes:
        handed.append(len(data))
        return key.sign(data, ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg, union-attr]

    callback = Signing(SigningKey(dev_signing.key.chain, callback=sign), dev_signing.trust)
    target = tmp_path / "signed.mp3"
    assert (
        sign_copy(unsigned["mp3"], target, SignJob(claims(), "narration.mp3"), callback).status == "trusted"
    )
    assert len(handed) == 1 and verify_file(target, dev_signing.trust, "x").file == "x"


def test_the_video_carries_the_signed_narration_as_an_ingredient(
    signed: dict[str, Path], unsigned: dict[str, Path], tmp_path: Path, dev_signing: Signing
) -> None:
    import c2pa

    job = SignJob(claims("video"), "video.mp4", (Ingredient(signed["wav"]),))
    target = tmp_path / "composite.mp4"
    sign_copy(unsigned["mp4"], target, job, dev_signing)
    with c2pa.Reader(str(target)) as reader:
        store = reader.get_active_manifest()
        assert store is not None
        ingredient = store["ingredients"][0]
        assert ingredient["title"] == "narration.wav" and ingredient["relationship"] == "componentOf"
        narration = reader.get_manifest(ingredient["active_manifest"])  # the narration's own manifest
        assert narration is not None
        labels = [a["label"] for a in narration["assertions"]]
        assert CLAIMS_LABEL in labels
