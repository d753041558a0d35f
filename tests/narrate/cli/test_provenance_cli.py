"""``narrate provenance init`` and ``narrate verify``: exit 0 only for files whose Content Credentials are
intact, match their bytes and come from a trusted signer; what they say is printed, or given as JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from narrate.cli.main import main
from narrate.provenance.config import signing_from
from narrate.provenance.sign import SignJob, sign_in_place
from narrate.settings import get_settings
from tests.narrate.provenance.media import claims, flip_one_byte, make_media


def test_init_makes_a_development_certificate_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = get_settings().provenance_dir
    assert main(["provenance", "init"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["chain.pem", "key.pem", "root.pem"]
    out = capsys.readouterr()
    assert "UNTRUSTED development certificate" in out.err and "PRIVATE KEY" not in out.err + out.out
    assert main(["provenance", "init"]) == 2  # an existing one is kept
    assert "give --force" in capsys.readouterr().err
    assert main(["provenance", "init", "--force"]) == 0


def test_verify_passes_only_intact_trusted_files(
    tmp_path: Path, signing: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    media = make_media(tmp_path / "render")
    signing_config = signing_from(get_settings())
    assert signing_config is not None
    sign_in_place(media["wav"], SignJob(claims(), "narration.wav"), signing_config)
    assert main(["verify", str(media["wav"])]) == 0
    shown = capsys.readouterr().err
    assert "TRUSTED" in shown and "trainedAlgorithmicMedia" in shown and "narrate development signer" in shown

    changed = flip_one_byte(media["wav"], tmp_path / "changed.wav")
    code = main(["verify", str(tmp_path / "render"), str(changed)])  # a folder: its outputs
    shown = capsys.readouterr().err
    assert code == 8
    assert "3 file(s) did not verify" in shown and "narration.mp3: no Content Credentials" in shown
    assert "video.mp4: no Content Credentials" in shown
    assert "changed.wav: broken, or not the bytes that were signed" in shown

    assert main(["verify", "--json", str(media["wav"])]) == 0
    [record] = json.loads(capsys.readouterr().out)
    assert record["status"] == "trusted" and record["claims"]["script_sha256"] == claims().script_sha256


def test_verify_names_what_is_not_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.rmtree(tmp_path / "empty", ignore_errors=True)
    (tmp_path / "empty").mkdir()
    assert main(["verify", str(tmp_path / "nope.wav"), str(tmp_path / "empty")]) == 2
    shown = capsys.readouterr().err
    assert "nope.wav (no such file)" in shown and "(a folder without narration.wav" in shown
