"""Signing the staged narration: a signed WAV that does not hold exactly the checked track's samples is
not published."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from narrate.errors import ProvenanceError
from narrate.provenance.config import signing_from
from narrate.settings import get_settings
from tasks.assembly import write_wav
from tasks.provenance import same_samples, sign_narration
from tests.narrate.provenance.media import claims


def test_an_empty_track_that_signing_would_break_is_refused(tmp_path: Path, signing: Any) -> None:
    """libsndfile gives an empty WAV with tags a RIFF size of 36 bytes, and c2pa writes within that size:
    the signed file has no data chunk for libsndfile. The read-back of the track catches it."""
    wav = write_wav(tmp_path / "narration.wav", np.zeros(0, np.float32), 24000, "Empty", "Synthetic speech.")
    timeline = tmp_path / "timeline.json"
    timeline.write_text("{}")
    signed_with = signing_from(get_settings())
    assert signed_with is not None
    with pytest.raises(ProvenanceError, match=r"the signed narration\.wav does not read back"):
        sign_narration({"wav": wav, "timeline": timeline}, claims(), signed_with)
    assert not (tmp_path / "provenance.json").exists()


def test_the_signed_wav_must_hold_the_checked_samples(tmp_path: Path) -> None:
    tone = (0.1 * np.sin(np.arange(3000) / 5)).astype(np.float32)
    checked = write_wav(tmp_path / "checked.wav", tone, 24000, "T", "Synthetic speech.")
    same = write_wav(tmp_path / "same.wav", tone, 24000, "Other title", "Other tags")
    same_samples(checked, same, block_frames=1024)  # the tags may differ, the samples may not
    tone[2500] += 0.01
    changed = write_wav(tmp_path / "changed.wav", tone, 24000, "T", "Synthetic speech.")
    with pytest.raises(ProvenanceError, match=r"does not hold the track's samples"):
        same_samples(checked, changed, block_frames=1024)
    shorter = write_wav(tmp_path / "shorter.wav", tone[:-1], 24000, "T", "Synthetic speech.")
    with pytest.raises(ProvenanceError, match=r"does not hold the track's samples"):
        same_samples(checked, shorter)
