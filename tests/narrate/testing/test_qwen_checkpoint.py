"""Random-weight Qwen3-TTS checkpoints load with the real qwen-tts loader and run its real generate code."""

from __future__ import annotations

import io
import ipaddress
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
qwen_tts = pytest.importorskip("qwen_tts")

from narrate.testing.qwen_checkpoint import (  # noqa: E402
    SAMPLES_PER_FRAME,
    CheckpointKind,
    build_checkpoint,
)

KINDS: tuple[CheckpointKind, ...] = ("custom_voice", "base", "voice_design")
TEXTS = ["Hello there.", "A second, longer sentence here."]
MAX_NEW_TOKENS = 12
# qwen-tts returns at most max_new_tokens - 1 frames: the last sampled token never reaches the code predictor.
MAX_FRAMES = MAX_NEW_TOKENS - 1
REF_TEXT = "A reference transcript."


def reference_clip() -> tuple[np.ndarray, int]:
    return (np.random.default_rng(0).standard_normal(24000 * 3).astype("float32") * 0.1, 24000)


@contextmanager
def no_network() -> Iterator[None]:
    """Offline mode, and connecting to any non-loopback address fails: building and loading fetch nothing.

    Loopback stays open for the session's embedded services, whose threads may run meanwhile.
    """
    connect = socket.socket.connect

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(address[0]):
            raise AssertionError(f"a checkpoint build or load tried to reach {address}")
        connect(sock, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setattr(socket.socket, "connect", guarded_connect)
        yield


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("qwen_checkpoints")
    with no_network():
        return {kind: build_checkpoint(root / kind, kind) for kind in KINDS}


@pytest.fixture(scope="module")
def models(checkpoints: dict[str, Path]) -> dict[str, Any]:
    with no_network():
        return {
            kind: qwen_tts.Qwen3TTSModel.from_pretrained(
                str(path), device_map="cpu", dtype=torch.float32, attn_implementation="sdpa"
            )
            for kind, path in checkpoints.items()
        }


def frames_of(
    result: tuple[list[np.ndarray], int], count: int, extra_samples: tuple[int, ...] = (0,)
) -> list[int]:
    """Check the (wavs, sample_rate) contract and return each wav's whole frame count."""
    wavs, sample_rate = result
    assert sample_rate == 24000
    assert len(wavs) == count
    frames = []
    for wav in wavs:
        assert isinstance(wav, np.ndarray)
        assert wav.dtype == np.float32
        assert wav.ndim == 1
        assert np.isfinite(wav).all()
        assert len(wav) % SAMPLES_PER_FRAME in extra_samples
        frames.append(len(wav) // SAMPLES_PER_FRAME)
    assert all(1 <= n <= MAX_FRAMES for n in frames), frames
    return frames


def test_the_directory_has_the_published_layout(checkpoints: dict[str, Path]) -> None:
    root = checkpoints["custom_voice"]
    names = ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
             "tokenizer_config.json", "vocab.json", "merges.txt", "speech_tokenizer/config.json",
             "speech_tokenizer/preprocessor_config.json", "speech_tokenizer/model.safetensors"]  # fmt: skip
    assert [name for name in names if not (root / name).is_file()] == []
    config = json.loads((root / "config.json").read_text())
    assert config["speaker_encoder_config"].keys() <= {
        "mel_dim", "enc_dim", "enc_channels", "enc_kernel_sizes", "enc_dilations",
        "enc_attention_channels", "enc_res2net_scale", "enc_se_channels", "sample_rate",
    }  # fmt: skip
    talker = config["talker_config"]
    assert (talker["codec_pad_id"], talker["codec_bos_id"], talker["codec_eos_token_id"]) == (
        2148,
        2149,
        2150,
    )
    assert (talker["vocab_size"], talker["text_vocab_size"], talker["num_code_groups"]) == (3072, 151936, 16)
    assert sorted(talker["spk_id"]) == [
        "aiden", "dylan", "eric", "ono_anna", "ryan", "serena", "sohee", "uncle_fu", "vivian",
    ]  # fmt: skip
    assert not any(name.startswith(".") for name in os.listdir(root.parent)), "the staging directory was left"


def test_a_nonempty_directory_is_refused(checkpoints: dict[str, Path]) -> None:
    with pytest.raises(FileExistsError):
        build_checkpoint(checkpoints["base"], "base")


def test_the_seed_fixes_the_weights(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    again = build_checkpoint(tmp_path / "again", "voice_design", seed=0)
    other = build_checkpoint(tmp_path / "other", "voice_design", seed=1)
    reference = (checkpoints["voice_design"] / "model.safetensors").read_bytes()
    assert (again / "model.safetensors").read_bytes() == reference
    assert (other / "model.safetensors").read_bytes() != reference


def test_custom_voice_generates_and_repeats_under_a_seed(models: dict[str, Any]) -> None:
    model = models["custom_voice"]
    torch.manual_seed(7)
    first = model.generate_custom_voice(
        TEXTS, speaker="aiden", language="english", max_new_tokens=MAX_NEW_TOKENS
    )
    torch.manual_seed(7)
    second = model.generate_custom_voice(
        TEXTS, speaker="Aiden", language="English", max_new_tokens=MAX_NEW_TOKENS
    )
    frames_of(first, 2)
    assert all(np.array_equal(a, b) for a, b in zip(first[0], second[0], strict=True))


def test_custom_voice_refuses_an_unknown_speaker_and_the_wrong_method(models: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="Unsupported speakers"):
        models["custom_voice"].generate_custom_voice(
            "Hi.", speaker="nobody", language="english", max_new_tokens=4
        )
    with pytest.raises(ValueError):
        models["custom_voice"].generate_voice_design("Hi.", instruct="calm", max_new_tokens=4)


def test_a_suppressed_eos_runs_every_step(models: dict[str, Any]) -> None:
    torch.manual_seed(0)
    result = models["custom_voice"].generate_custom_voice(
        TEXTS, speaker="dylan", language="auto", instruct="calm", max_new_tokens=10, eos_token_id=2151
    )
    assert [len(wav) for wav in result[0]] == [9 * SAMPLES_PER_FRAME] * 2


def test_voice_clone_in_both_modes(models: dict[str, Any]) -> None:
    model = models["base"]
    torch.manual_seed(0)
    # The ICL cut is int(ref_frames / total_frames * samples): float rounding may leave one extra sample.
    frames_of(
        model.generate_voice_clone(
            TEXTS[1],
            language="english",
            ref_audio=reference_clip(),
            ref_text=REF_TEXT,
            max_new_tokens=MAX_NEW_TOKENS,
        ),
        1,
        extra_samples=(0, 1),
    )
    frames_of(
        model.generate_voice_clone(
            TEXTS,
            language="english",
            ref_audio=reference_clip(),
            x_vector_only_mode=True,
            max_new_tokens=MAX_NEW_TOKENS,
        ),
        2,
    )


def test_a_clone_prompt_survives_torch_save(models: dict[str, Any]) -> None:
    model = models["base"]
    [item] = model.create_voice_clone_prompt(ref_audio=reference_clip(), ref_text=REF_TEXT)
    assert item.ref_code.shape == (38, 16)  # 3 s at 12.5 frames/s, rounded up; 16 code groups
    assert int(item.ref_code.min()) >= 0 and int(item.ref_code.max()) < 2048
    buffer = io.BytesIO()
    torch.save(vars(item), buffer)
    buffer.seek(0)
    restored = qwen_tts.VoiceClonePromptItem(**torch.load(buffer))
    torch.manual_seed(0)
    frames_of(
        model.generate_voice_clone(
            TEXTS, language="english", voice_clone_prompt=[restored], max_new_tokens=MAX_NEW_TOKENS
        ),
        2,
        extra_samples=(0, 1),
    )


def test_voice_design_generates(models: dict[str, Any]) -> None:
    torch.manual_seed(0)
    frames_of(
        models["voice_design"].generate_voice_design(
            TEXTS, instruct="warm alto", language="english", max_new_tokens=MAX_NEW_TOKENS
        ),
        2,
    )
