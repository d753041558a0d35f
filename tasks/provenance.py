"""Signing a render's outputs, when its settings sign: the narration in its staging folder once the drift
check has passed (the signed WAV compared sample for sample with the checked one), the video once its
frame check has passed (and run again on the signed MP4). ``provenance.json`` records how each signed
file read back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from narrate.errors import ProvenanceError
from narrate.log import run_logger
from narrate.outputs import OUTPUT_FILES, PROVENANCE, VIDEO, WAV
from narrate.provenance.claims import NarrateClaims
from narrate.provenance.config import Signing
from narrate.provenance.record import ProvenanceRecord, Verification, load_provenance, write_provenance
from narrate.provenance.sign import Ingredient, SignJob, sign_copy, sign_in_place

SIGNED_NARRATION = ("wav", "mp3")


def sign_narration(staged: dict[str, Path], claims: NarrateClaims, signing: Signing) -> dict[str, Path]:
    """The staged WAV and MP3 signed in place and read back (the signed WAV must hold exactly the samples
    of the WAV the drift check passed), and provenance.json staged before the timeline (which is moved
    into place last)."""
    verifications = [
        sign_in_place(staged[kind], SignJob(claims, OUTPUT_FILES[kind]), signing, SAME_AUDIO.get(kind))
        for kind in SIGNED_NARRATION
        if kind in staged
    ]
    record = ProvenanceRecord().with_files(*verifications)
    record_path = write_provenance(staged["wav"].parent / PROVENANCE, record)
    _log_signed(verifications, signing)
    others = {kind: path for kind, path in staged.items() if kind != "timeline"}
    return others | {"provenance": record_path, "timeline": staged["timeline"]}


def same_samples(checked: Path, signed: Path, block_frames: int = 1 << 20) -> None:
    """ProvenanceError unless ``signed`` holds exactly the PCM samples of ``checked`` (read in blocks:
    an hour's track is never read whole)."""
    try:
        with sf.SoundFile(checked) as before, sf.SoundFile(signed) as after:
            shape = (before.samplerate, before.channels, before.frames)
            equal = shape == (after.samplerate, after.channels, after.frames) and all(
                np.array_equal(block, after.read(len(block), dtype="int16"))
                for block in before.blocks(block_frames, dtype="int16")
            )
    except RuntimeError as exc:  # libsndfile cannot read it (an empty track's header, say)
        raise ProvenanceError(f"the signed {WAV} does not read back ({exc}); nothing was published") from None
    if not equal:
        raise ProvenanceError(f"the signed {WAV} does not hold the track's samples; nothing was published")


SAME_AUDIO: dict[str, Callable[[Path, Path], None]] = {"wav": same_samples}


class VideoSigner:
    """Signs a render folder's re-timed video with its narration's claims, said of a composite; the
    signed narration and the recording are its ingredients. Called by the re-timing between the frame
    check of the unsigned MP4 and the frame check of the signed one."""

    def __init__(self, folder: Path, signing: Signing, recording: Path) -> None:
        self.folder, self.signing, self.recording = Path(folder), signing, Path(recording)
        record = load_provenance(self.folder / PROVENANCE)
        narration = record.files.get(WAV) if record is not None else None
        if narration is None or narration.claims is None:
            raise ProvenanceError(
                f"{self.folder / WAV} is not signed, and the video's Content Credentials are made from its "
                "claims: render the narration again with signing configured (its clips are cached)"
            )
        self.claims = narration.claims.as_video()
        self.verification: Verification | None = None

    def __call__(self, unsigned: Path, signed: Path) -> None:
        job = SignJob(self.claims, VIDEO, (Ingredient(self.folder / WAV), Ingredient(self.recording)))
        self.verification = sign_copy(unsigned, signed, job, self.signing)

    def record(self) -> None:
        """Adds the published video's verification to provenance.json."""
        if self.verification is None:
            raise ProvenanceError(f"{VIDEO} was not signed")
        path = self.folder / PROVENANCE
        record = load_provenance(path) or ProvenanceRecord()
        write_provenance(path, record.with_files(self.verification))
        _log_signed([self.verification], self.signing)


def _log_signed(verifications: list[Verification], signing: Signing) -> None:
    logger = run_logger()
    for verification in verifications:
        logger.info("signed %s (Content Credentials): %s, by %s", verification.file, verification.status,
                    verification.signer)  # fmt: skip
    if signing.development:
        logger.warning("signed with the development certificate of `narrate provenance init`: trusted on "
                       "this machine only; configure NARRATE_PROVENANCE_CERTIFICATE to publish")  # fmt: skip
