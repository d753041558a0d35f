"""The piper voice: a Piper VITS model (ONNX, shipped in its own wheel) run by onnxruntime on a CPU.

A neural voice that needs no GPU, no download and no AWS: about ten times real time on two cores.

VITS samples its durations and its voice from Gaussian noise, which the exported graph draws with
``RandomNormalLike``: a fresh take on every call, whatever onnxruntime's seed. At load, each of those
nodes is replaced by a slice of one fixed table of Gaussian noise starting at an offset the request's
``seed`` (and the sentence's position) chooses. The voice keeps its natural variation, and a take is
a function of its inputs: the same text, settings and seed give the same samples, in any process, in
any order; another seed is another take.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import threading
from functools import lru_cache
from typing import Any

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper
from piper import PiperConfig, PiperVoice, SynthesisConfig

from model_server.protocol import GenerationRequest, PiperVoiceRequest, SegmentAudio, SegmentRequest
from model_server.voices import NATIVE_SAMPLE_RATES, PIPER_NOISE_TABLE_SEED, PIPER_VOICES, piper_revision

_MIN_SPEECH_SAMPLES = 441  # 20 ms: under this, the voice found nothing to say (e.g. only punctuation)
NOISE_TABLE_SIZE = 1 << 22  # 4 Mi values: the longest segment's latent (192 x ~10k frames) fits twice
_STRIDE = 2654435761  # odd, so consecutive elements walk the whole table before repeating
SEED_INPUT = "narrate_noise_offset"


def seeded_sampler(model: onnx.ModelProto, table_size: int = NOISE_TABLE_SIZE) -> onnx.ModelProto:
    """``model`` with every RandomNormalLike drawing from a fixed noise table at an offset given by
    the new int64 input :data:`SEED_INPUT`, instead of from onnxruntime's generator."""
    graph = model.graph
    nodes = [n for n in graph.node if n.op_type == "RandomNormalLike"]
    if not nodes:
        raise ValueError("the voice model has no RandomNormalLike node to seed")
    table = np.random.default_rng(PIPER_NOISE_TABLE_SEED).standard_normal(table_size).astype(np.float32)
    graph.initializer.extend(
        [
            numpy_helper.from_array(table, "narrate_noise_table"),
            numpy_helper.from_array(np.array(table_size, dtype=np.int64), "narrate_noise_size"),
            numpy_helper.from_array(np.array(_STRIDE, dtype=np.int64), "narrate_noise_stride"),
            numpy_helper.from_array(np.array(0, dtype=np.int64), "narrate_zero"),
            numpy_helper.from_array(np.array(1, dtype=np.int64), "narrate_one"),
        ]
    )
    graph.input.append(helper.make_tensor_value_info(SEED_INPUT, TensorProto.INT64, []))
    for index, node in enumerate(nodes):
        position = list(graph.node).index(node)
        graph.node.remove(node)
        for offset, replacement in enumerate(_noise_like(node, index)):
            graph.node.insert(position + offset, replacement)
    return model


def _noise_like(node: onnx.NodeProto, index: int) -> list[onnx.NodeProto]:
    """Nodes computing table[(seed + salt + i * stride) mod size] for i < numel, shaped like the input."""
    like, (out,) = node.input[0], node.output
    name = f"narrate_noise_{index}"
    salt = helper.make_tensor(f"{name}_salt", TensorProto.INT64, [], [index * 7919])
    return [
        helper.make_node("Shape", [like], [f"{name}_shape"]),
        helper.make_node("ReduceProd", [f"{name}_shape"], [f"{name}_count"], keepdims=0),
        helper.make_node("Range", ["narrate_zero", f"{name}_count", "narrate_one"], [f"{name}_i"]),
        helper.make_node("Mul", [f"{name}_i", "narrate_noise_stride"], [f"{name}_walk"]),
        helper.make_node("Constant", [], [f"{name}_salt"], value=salt),
        helper.make_node("Add", [SEED_INPUT, f"{name}_salt"], [f"{name}_start"]),
        helper.make_node("Add", [f"{name}_walk", f"{name}_start"], [f"{name}_raw"]),
        helper.make_node("Mod", [f"{name}_raw", "narrate_noise_size"], [f"{name}_at"]),
        helper.make_node("Gather", ["narrate_noise_table", f"{name}_at"], [f"{name}_flat"], axis=0),
        helper.make_node("Reshape", [f"{name}_flat", f"{name}_shape"], [out]),
    ]


class _SeededSession:
    """The session piper runs, with the noise offset of the current sentence added to its inputs."""

    def __init__(self, session: onnxruntime.InferenceSession) -> None:
        self._session = session
        self.offset = 0

    def run(self, output_names: Any, inputs: dict[str, np.ndarray]) -> Any:
        offset = np.array(self.offset, dtype=np.int64)
        return self._session.run(output_names, inputs | {SEED_INPUT: offset})


def noise_offset(seed: int, sentence: int) -> int:
    """Where a sentence's noise starts in the table: apart for each seed and each sentence."""
    digest = hashlib.sha256(f"{seed}/{sentence}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % NOISE_TABLE_SIZE


@lru_cache(maxsize=len(PIPER_VOICES))
def _load_voice(voice_model: str) -> tuple[PiperVoice, _SeededSession]:
    """Loaded once per process: the model is read-only, and an endpoint that loads again (or the local
    endpoint's next instance) reuses it."""
    package = importlib.import_module(PIPER_VOICES[voice_model][0])
    config = PiperConfig.from_dict(json.loads(package.config_path().read_text(encoding="utf-8")))
    if config.sample_rate != NATIVE_SAMPLE_RATES["piper"]:
        raise RuntimeError(
            f"the Piper voice {voice_model!r} runs at {config.sample_rate} Hz, "
            f"expected {NATIVE_SAMPLE_RATES['piper']}"
        )
    model = seeded_sampler(onnx.load(str(package.model_path())))
    session = _SeededSession(
        onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    )
    return PiperVoice(session=session, config=config), session  # type: ignore[arg-type]


class PiperEngine:
    """Serves the ``piper`` mode, every voice of :data:`PIPER_VOICES`."""

    modes = frozenset({"piper"})
    model_id = "piper"

    def __init__(self) -> None:
        for name in PIPER_VOICES:  # at model load, so the first request is not the one that waits
            _load_voice(name)
        self.revision = "; ".join(piper_revision(name) for name in PIPER_VOICES)
        self.sample_rate = NATIVE_SAMPLE_RATES["piper"]
        self._lock = threading.Lock()  # one session offset, and piper's one espeak-ng phonemizer

    def synthesize(
        self,
        voice: object,
        segments: list[SegmentRequest],
        generation: GenerationRequest,
    ) -> list[SegmentAudio]:
        assert isinstance(voice, PiperVoiceRequest)
        return [self._one(voice, segment, generation.seed) for segment in segments]

    def _one(self, voice: PiperVoiceRequest, segment: SegmentRequest, seed: int) -> SegmentAudio:
        audio = self.speak(segment.text, voice, seed)
        if audio.size < _MIN_SPEECH_SAMPLES:
            return SegmentAudio(id=segment.id, error="text: produced no audio (nothing speakable)")
        return SegmentAudio(id=segment.id, audio=audio, sample_rate=self.sample_rate)

    def speak(self, text: str, voice: PiperVoiceRequest, seed: int = 0) -> np.ndarray:
        """Float32 mono samples at :attr:`sample_rate`: the sentences, ``sentence_silence`` apart."""
        config = SynthesisConfig(
            length_scale=voice.length_scale,
            noise_scale=voice.noise_scale,
            noise_w_scale=voice.noise_w_scale,
        )
        piper, session = _load_voice(voice.voice_model)
        sentences = []
        with self._lock:
            for index, phonemes in enumerate(p for p in piper.phonemize(text) if p):
                session.offset = noise_offset(seed, index)
                audio = piper.phoneme_ids_to_audio(piper.phonemes_to_ids(phonemes), config)
                sentences.append(_peak_normalised(audio))
        gap = np.zeros(round(voice.sentence_silence * self.sample_rate), dtype=np.float32)
        parts = [part for sentence in sentences for part in (gap, sentence)][1:]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, dtype=np.float32)

    def close(self) -> None:
        """Nothing to release: the loaded voice is shared by the process (see :func:`_load_voice`)."""


def _peak_normalised(audio: Any) -> np.ndarray:
    """What piper's own ``synthesize`` does to each sentence: peak at full scale, then clipped."""
    samples = np.asarray(audio, dtype=np.float32)
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return np.clip(samples / peak if peak > 1e-8 else np.zeros_like(samples), -1.0, 1.0).astype(np.float32)
