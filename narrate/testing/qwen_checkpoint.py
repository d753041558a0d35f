"""Random-weight Qwen3-TTS checkpoints, built offline, that the real qwen-tts loader accepts.

Contract:
- ``build_checkpoint(directory, kind, geometry, seed, device)`` writes a complete model directory and
  returns it. ``qwen_tts.Qwen3TTSModel.from_pretrained(directory, device_map=..., dtype=...,
  attn_implementation="sdpa")`` loads it without touching the network (set ``HF_HUB_OFFLINE=1`` to
  prove it) and every public generate method of the matching checkpoint type runs the real code.
- The directory holds what the published ``Qwen/Qwen3-TTS-12Hz-1.7B-*`` repositories hold:
  ``config.json``, ``generation_config.json`` (the published sampling defaults, max_new_tokens 8192
  included: cap it in every call), ``model.safetensors``, a byte-level BPE text tokenizer
  (``tokenizer.json``, ``vocab.json``, ``merges.txt``, ``tokenizer_config.json``; Qwen's id layout:
  151643 BPE ids, mostly reserved fillers, then Qwen's 33 added tokens) and the 12 Hz codec in
  ``speech_tokenizer/`` (``config.json``, ``preprocessor_config.json``, ``model.safetensors``): 24 kHz
  audio, 1920 samples per codec frame, 16 code groups of 2048 codes.
- Every id the model code reads is the real one: text ids ``<|im_start|>`` 151644, ``<|im_end|>``
  151645, ``assistant`` 77091, ``<tts_pad>`` 151671, ``<tts_text_bos>`` 151672, ``<tts_text_eod>``
  151673 (text vocabulary 151936); codec pad 2148, bos 2149, eos 2150, think/nothink 2154-2157, the
  real language ids, and for ``custom_voice`` the nine real speakers with their dialects.
  ``<|im_start|>assistant\\n`` encodes to exactly 3 tokens and ``<|im_end|>\\n<|im_start|>assistant\\n``
  to exactly 5, the slices qwen-tts cuts; the build fails if they do not.
- ``config.json`` keeps the speaker-encoder sub-config reduced to its own fields: qwen-tts 0.1.1 cannot
  read back the ``model_type`` key that ``save_pretrained`` would write there.
- The same ``seed`` on the same device writes the same bytes. The caller's RNG state is left as it was.
- The build happens in a hidden sibling directory that is renamed onto ``directory`` at the end, so a
  reader never sees a half-written checkpoint. ``directory`` must be absent or empty.

Geometries:
- ``"tiny"``: talker hidden 64 / 2 layers, code predictor hidden 32 / 1 layer, text embedding width 16
  (its 151936 rows stay, the ids are real), speaker encoder 64 wide, codec 32 wide with one transformer
  layer each side. 5.9 M parameters (most of them the text and codec embedding tables) and a 1 M
  parameter codec: a build takes about half a second, a generate call of 12 frames a fraction of one.
- ``"1.7b"``: the published 1.7B geometry (talker 28 layers, hidden 2048, FFN 6144, 16 heads / 8 KV
  heads / head_dim 128, code predictor 5 layers hidden 1024; about 1.92e9 parameters) and the published
  12 Hz codec geometry. Neither the config classes' defaults nor the qwen-tts source give the codec's
  geometry (the decoder config has no ``codebook_dim`` default at all); its numbers here are those of
  the published ``speech_tokenizer/config.json`` as public re-implementations quote it. Built in
  bfloat16, directly on ``device`` (about 70 s and 4.7 GB of RAM on a 2-core CPU; 3.6 GiB of
  weights). Per-step compute equals the real checkpoint's, so it serves throughput benchmarks: pass
  ``eos_token_id=2151`` (a suppressed id) and every call runs exactly ``max_new_tokens`` talker steps.
  It returns ``max_new_tokens - 1`` frames (qwen-tts never decodes the last sampled frame), fewer if
  the sampler draws the real codec eos 2150, which then no longer stops generation but still cuts the
  returned codes there.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import torch
import transformers
from qwen_tts.core import Qwen3TTSTokenizerV2Config, Qwen3TTSTokenizerV2Model
from qwen_tts.core.models import Qwen3TTSConfig, Qwen3TTSForConditionalGeneration
from qwen_tts.core.tokenizer_12hz.modeling_qwen3_tts_tokenizer_v2 import EuclideanCodebook
from safetensors.torch import save_file
from transformers import EncodecFeatureExtractor
from transformers.models.mimi.modeling_mimi import MimiEuclideanCodebook

from narrate.testing.qwen_tokenizer import (
    ASSISTANT_ID,
    IM_END_ID,
    IM_START_ID,
    TEXT_VOCAB_SIZE,
    TTS_BOS_ID,
    TTS_EOS_ID,
    TTS_PAD_ID,
    check_chat_slicing,
    json_text,
    write_text_tokenizer,
)

CheckpointKind = Literal["custom_voice", "base", "voice_design"]
Geometry = Literal["tiny", "1.7b"]

SAMPLE_RATE = 24000
SAMPLES_PER_FRAME = 1920
CODEC_VOCAB_SIZE = 3072
NUM_CODE_GROUPS = 16
CODEBOOK_SIZE = 2048

CODEC_PAD_ID = 2148
CODEC_BOS_ID = 2149
CODEC_EOS_ID = 2150
CODEC_THINK_ID = 2154
CODEC_NOTHINK_ID = 2155
CODEC_THINK_BOS_ID = 2156
CODEC_THINK_EOS_ID = 2157

LANGUAGE_IDS: Mapping[str, int] = {
    "chinese": 2055,
    "english": 2050,
    "german": 2053,
    "italian": 2070,
    "portuguese": 2071,
    "spanish": 2054,
    "japanese": 2058,
    "korean": 2064,
    "french": 2061,
    "russian": 2069,
    "beijing_dialect": 2074,
    "sichuan_dialect": 2062,
}
SPEAKER_IDS: Mapping[str, int] = {
    "aiden": 2861,
    "dylan": 2878,
    "eric": 2875,
    "ono_anna": 2873,
    "ryan": 3061,
    "serena": 3066,
    "sohee": 2864,
    "uncle_fu": 3010,
    "vivian": 3065,
}
SPEAKER_DIALECTS: Mapping[str, str | bool] = {
    name: {"dylan": "beijing_dialect", "eric": "sichuan_dialect"}.get(name, False) for name in SPEAKER_IDS
}

# The published generation_config.json of every Qwen3-TTS-12Hz checkpoint.
GENERATION_DEFAULTS: Mapping[str, Any] = {
    "do_sample": True,
    "max_new_tokens": 8192,
    "repetition_penalty": 1.05,
    "subtalker_dosample": True,
    "subtalker_temperature": 0.9,
    "subtalker_top_k": 50,
    "subtalker_top_p": 1.0,
    "temperature": 0.9,
    "top_k": 50,
    "top_p": 1.0,
}


@dataclass(frozen=True)
class _Shape:
    """Every size a geometry fixes; the ids and vocabularies never change."""

    talker: Mapping[str, Any]
    text_hidden_size: int
    predictor: Mapping[str, Any]
    speaker_encoder: Mapping[str, Any]
    codec_encoder: Mapping[str, Any]
    codec_decoder: Mapping[str, Any]
    dtype: torch.dtype = field(default=torch.float32)


_TINY = _Shape(
    talker={"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "head_dim": 16, "mrope_section": [4, 2, 2]},
    text_hidden_size=16,
    predictor={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
               "num_key_value_heads": 1, "head_dim": 16},
    speaker_encoder={"enc_dim": 64, "sample_rate": SAMPLE_RATE, "enc_channels": [32, 32, 32, 32, 96],
                     "enc_attention_channels": 16, "enc_res2net_scale": 4, "enc_se_channels": 16},
    codec_encoder={"hidden_size": 32, "num_filters": 4, "num_hidden_layers": 1, "num_attention_heads": 2,
                   "num_key_value_heads": 2, "head_dim": 16, "intermediate_size": 64, "codebook_dim": 16,
                   "vector_quantization_hidden_dimension": 16, "num_quantizers": 16, "upsample_groups": 32},
    codec_decoder={"latent_dim": 32, "codebook_dim": 16, "decoder_dim": 32, "hidden_size": 32,
                   "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                   "num_key_value_heads": 2, "head_dim": 16},
)  # fmt: skip

_REAL_1_7B = _Shape(
    talker={"hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 28,
            "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
            "mrope_section": [24, 20, 20]},
    text_hidden_size=2048,
    predictor={"hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 5,
               "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128},
    speaker_encoder={"enc_dim": 2048, "sample_rate": SAMPLE_RATE},
    codec_encoder={"hidden_size": 512, "num_filters": 64, "num_hidden_layers": 8, "num_attention_heads": 8,
                   "num_key_value_heads": 8, "head_dim": 64, "intermediate_size": 2048, "codebook_dim": 256,
                   "vector_quantization_hidden_dimension": 256, "num_quantizers": 32, "upsample_groups": 512},
    codec_decoder={"latent_dim": 1024, "codebook_dim": 512, "decoder_dim": 1536, "hidden_size": 512,
                   "intermediate_size": 1024, "num_hidden_layers": 8, "num_attention_heads": 16,
                   "num_key_value_heads": 16, "head_dim": 64},
    dtype=torch.bfloat16,
)  # fmt: skip

_SHAPES: Mapping[str, _Shape] = {"tiny": _TINY, "1.7b": _REAL_1_7B}


def build_checkpoint(
    directory: Path, kind: CheckpointKind, geometry: Geometry = "tiny", seed: int = 0, device: str = "cpu"
) -> Path:
    """Write a loadable checkpoint directory (atomically: build in a sibling temp dir, then rename)
    and return it.

    ``directory`` must be absent or an empty directory (``FileExistsError`` otherwise). ``seed`` fixes
    every weight; the bytes written are the same for the same seed, geometry and device type. ``device``
    is where the weights are drawn (``"cuda"`` makes the 1.7b geometry quick to build); the files never
    name a device. Raises ``CheckpointError`` if the tokenizer does not cut qwen-tts's chat template
    where qwen-tts slices it.
    """
    if kind not in get_args(CheckpointKind):
        raise ValueError(f"unknown checkpoint kind {kind!r}; expected one of {get_args(CheckpointKind)}")
    if geometry not in _SHAPES:
        raise ValueError(f"unknown geometry {geometry!r}; expected one of {tuple(_SHAPES)}")
    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"{target} exists and is not an empty directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        _write_checkpoint(staging, kind, _SHAPES[geometry], seed, torch.device(device))
        staging.chmod(0o755)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _write_checkpoint(
    root: Path, kind: CheckpointKind, shape: _Shape, seed: int, device: torch.device
) -> None:
    write_text_tokenizer(root)
    _write_json(root / "config.json", _model_config(kind, shape))
    _write_json(root / "generation_config.json", GENERATION_DEFAULTS)
    check_chat_slicing(root)
    model = _random_model(
        Qwen3TTSForConditionalGeneration, Qwen3TTSConfig.from_pretrained(root), shape, seed, device
    )
    _save_weights(model, root / "model.safetensors")
    del model
    _write_codec(root / "speech_tokenizer", shape, seed, device)


# --- model config and weights ---------------------------------------------------------------------------


def _model_config(kind: CheckpointKind, shape: _Shape) -> dict[str, Any]:
    return {
        "architectures": ["Qwen3TTSForConditionalGeneration"],
        "model_type": "qwen3_tts",
        "tokenizer_type": "qwen3_tts_tokenizer_12hz",
        "tts_model_size": "1b7",
        "tts_model_type": kind,
        "im_start_token_id": IM_START_ID,
        "im_end_token_id": IM_END_ID,
        "assistant_token_id": ASSISTANT_ID,
        "tts_pad_token_id": TTS_PAD_ID,
        "tts_bos_token_id": TTS_BOS_ID,
        "tts_eos_token_id": TTS_EOS_ID,
        "talker_config": _talker_config(kind, shape),
        # Only its own fields: Qwen3TTSSpeakerEncoderConfig.__init__ takes no **kwargs (no model_type).
        "speaker_encoder_config": dict(shape.speaker_encoder),
        "dtype": str(shape.dtype).removeprefix("torch."),
        "transformers_version": transformers.__version__,
    }


def _talker_config(kind: CheckpointKind, shape: _Shape) -> dict[str, Any]:
    talker = dict(shape.talker)
    mrope_section = talker.pop("mrope_section")
    return {
        **talker,
        "hidden_act": "silu",
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000,
        "rope_scaling": {"interleaved": True, "mrope_section": mrope_section, "rope_type": "default"},
        "position_id_per_seconds": 13,
        "attention_bias": False,
        "use_sliding_window": False,
        "initializer_range": 0.02,
        "vocab_size": CODEC_VOCAB_SIZE,
        "text_vocab_size": TEXT_VOCAB_SIZE,
        "text_hidden_size": shape.text_hidden_size,
        "num_code_groups": NUM_CODE_GROUPS,
        "codec_pad_id": CODEC_PAD_ID,
        "codec_bos_id": CODEC_BOS_ID,
        "codec_eos_token_id": CODEC_EOS_ID,
        "codec_think_id": CODEC_THINK_ID,
        "codec_nothink_id": CODEC_NOTHINK_ID,
        "codec_think_bos_id": CODEC_THINK_BOS_ID,
        "codec_think_eos_id": CODEC_THINK_EOS_ID,
        "codec_language_id": dict(LANGUAGE_IDS),
        "spk_id": dict(SPEAKER_IDS) if kind == "custom_voice" else {},
        "spk_is_dialect": dict(SPEAKER_DIALECTS) if kind == "custom_voice" else {},
        "code_predictor_config": _predictor_config(shape),
    }


def _predictor_config(shape: _Shape) -> dict[str, Any]:
    return {
        **shape.predictor,
        "hidden_act": "silu",
        "max_position_embeddings": 65536,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000,
        "attention_bias": False,
        "use_sliding_window": False,
        "initializer_range": 0.02,
        "vocab_size": CODEBOOK_SIZE,
        "num_code_groups": NUM_CODE_GROUPS,
    }


def _random_model(model_class: Any, config: Any, shape: _Shape, seed: int, device: torch.device) -> Any:
    """``model_class`` built from ``config`` on ``device`` by its own init, seeded.

    The caller's RNG state is restored afterwards.
    """
    with torch.random.fork_rng(devices=_rng_devices(device), device_type=device.type), torch.device(device):
        torch.manual_seed(seed)
        model = model_class._from_config(config, dtype=shape.dtype)
        _randomize_codebooks(model)
    return model.eval()


def _rng_devices(device: torch.device) -> list[int]:
    if device.type == "cpu":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


@torch.no_grad()
def _randomize_codebooks(model: torch.nn.Module) -> None:
    """Codec codebooks start as zeros (all codes would sound alike and encode to 0): draw them instead."""
    for module in model.modules():
        if isinstance(module, MimiEuclideanCodebook):
            module.embed_sum.normal_()
            module._embed = None
        elif isinstance(module, EuclideanCodebook):
            module.embedding_sum.normal_()


def _save_weights(model: torch.nn.Module, path: Path) -> None:
    tensors = {name: tensor.detach().to("cpu").contiguous() for name, tensor in model.state_dict().items()}
    save_file(tensors, str(path), metadata={"format": "pt"})
    path.chmod(0o644)


# --- codec ----------------------------------------------------------------------------------------------


def _write_codec(codec_dir: Path, shape: _Shape, seed: int, device: torch.device) -> None:
    codec_dir.mkdir()
    _write_json(codec_dir / "config.json", _codec_config(shape))
    EncodecFeatureExtractor(
        feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0, chunk_length_s=None, overlap=None
    ).save_pretrained(str(codec_dir))
    config = Qwen3TTSTokenizerV2Config.from_pretrained(codec_dir)
    codec = _random_model(Qwen3TTSTokenizerV2Model, config, shape, seed + 1, device)
    _save_weights(codec, codec_dir / "model.safetensors")


def _codec_config(shape: _Shape) -> dict[str, Any]:
    encoder = {
        **shape.codec_encoder,
        "sampling_rate": SAMPLE_RATE,
        "frame_rate": SAMPLE_RATE / SAMPLES_PER_FRAME,
        "audio_channels": 1,
        "num_residual_layers": 1,
        "upsampling_ratios": [8, 6, 5, 4],
        "kernel_size": 7,
        "last_kernel_size": 3,
        "residual_kernel_size": 3,
        "dilation_growth_rate": 2,
        "use_causal_conv": True,
        "pad_mode": "constant",
        "compress": 2,
        "trim_right_ratio": 1.0,
        "codebook_size": CODEBOOK_SIZE,
        "num_semantic_quantizers": 1,
        "hidden_act": "gelu",
        "max_position_embeddings": 8000,
        "norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "sliding_window": 250,
        "layer_scale_initial_scale": 0.01,
        "use_cache": False,
        "use_streaming": False,
    }
    decoder = {
        **shape.codec_decoder,
        "codebook_size": CODEBOOK_SIZE,
        "num_quantizers": NUM_CODE_GROUPS,
        "hidden_act": "silu",
        "max_position_embeddings": 8000,
        "rope_theta": 10000,
        "rms_norm_eps": 1e-5,
        "layer_scale_initial_scale": 0.01,
        "sliding_window": 72,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "upsample_rates": [8, 5, 4, 3],
        "upsampling_ratios": [2, 2],
    }
    return {
        "architectures": ["Qwen3TTSTokenizerV2Model"],
        "model_type": "qwen3_tts_tokenizer_12hz",
        "encoder_valid_num_quantizers": NUM_CODE_GROUPS,
        "input_sample_rate": SAMPLE_RATE,
        "output_sample_rate": SAMPLE_RATE,
        "encode_downsample_rate": SAMPLES_PER_FRAME,
        "decode_upsample_rate": SAMPLES_PER_FRAME,
        "encoder_config": encoder,
        "decoder_config": decoder,
        "dtype": str(shape.dtype).removeprefix("torch."),
        "transformers_version": transformers.__version__,
    }


def _write_json(path: Path, content: Mapping[str, Any]) -> None:
    path.write_text(json_text(content), encoding="utf-8")
