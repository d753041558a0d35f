"""Qwen3-TTS: named speakers (CustomVoice), cloning (Base) and designed voices (VoiceDesign).

One engine per loaded checkpoint. A request's segments are synthesised in as few ``generate`` calls
as memory allows, grouped by length (a batch runs until its longest item stops), each item with a
frame cap derived from its text so a runaway generation cannot run for the rest of the hour. A clone
voice's prompt is built once and reused (:mod:`model_server.prompt_cache`). On a GPU out-of-memory the
batch is split in half and retried; an item that fails alone carries its own error.
"""

from __future__ import annotations

import logging
import math
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model_server.config import ServerConfig, checkpoint_identity
from model_server.engines.talker_buckets import CacheGrid, bucket_for
from model_server.prompt_cache import PromptCache, prompt_key
from model_server.protocol import (
    CustomVoiceRequest,
    GenerationRequest,
    RequestError,
    SegmentAudio,
    SegmentRequest,
    VoiceCloneRequest,
    VoiceDesignRequest,
)
from model_server.reference import ReferenceClip, load_reference

log = logging.getLogger("narrate.model_server.qwen")

SAMPLE_RATE = 24000
SAMPLES_PER_FRAME = 1920  # 12.5 codec frames a second
FRAMES_PER_SECOND = SAMPLE_RATE / SAMPLES_PER_FRAME
# Generous speaking-time estimates per character (real speech is ~13 Latin or ~4 CJK characters a second).
_SECONDS_PER_WIDE_CHAR = 0.35  # CJK ideographs, kana, hangul
_SECONDS_PER_CHAR = 0.1
_CAP_MARGIN = 2.0
_CAP_SLACK_SECONDS = 2.0

CHECKPOINT_TYPES = {"custom_voice": "custom_voice", "voice_clone": "base", "voice_design": "voice_design"}


def frame_cap(text: str, max_seconds: float) -> int:
    """Most codec frames a text may take: twice a slow reading plus slack, within the hard cap."""
    wide = sum(1 for ch in text if unicodedata.east_asian_width(ch) in "WF")
    estimate = wide * _SECONDS_PER_WIDE_CHAR + (len(text) - wide) * _SECONDS_PER_CHAR
    seconds = min(max_seconds, _CAP_MARGIN * estimate + _CAP_SLACK_SECONDS)
    return max(2, math.ceil(seconds * FRAMES_PER_SECOND))


def max_new_tokens(config: ServerConfig) -> int:
    """The most talker steps a call can take: qwen-tts returns at most max_new_tokens - 1 frames (its
    first step only prefills), so a call asks for its longest frame cap + 1."""
    return math.ceil(config.qwen_max_segment_seconds * FRAMES_PER_SECOND) + 1


def plan_batches(
    caps: Sequence[int], batch_size: int, batch_frames: int, buckets: tuple[int, ...] = ()
) -> list[list[int]]:
    """Indexes of ``caps`` grouped for ``generate`` calls: longest first, so neighbours are alike, each
    batch no bigger than ``batch_size`` items and ``batch_frames`` (items x its longest cap; with batch
    ``buckets``, the rows of the bucket it runs in: the talker's static cache holds that many)."""
    order = sorted(range(len(caps)), key=lambda i: (-caps[i], i))
    batches: list[list[int]] = []
    for index in order:
        current = batches[-1] if batches else None
        rows = (bucket_for(len(current) + 1, buckets) if buckets else len(current) + 1) if current else 0
        if current and len(current) < batch_size and rows * caps[current[0]] <= batch_frames:
            current.append(index)
        else:
            batches.append([index])
    return batches


@dataclass
class QwenEngine:
    """One Qwen3-TTS checkpoint behind the engine interface."""

    tts: Any  # qwen_tts.Qwen3TTSModel
    mode: str
    model_id: str
    revision: str
    config: ServerConfig
    prompts: PromptCache
    read_s3: Callable[[str, str], bytes]
    generate_overrides: dict[str, Any] = field(default_factory=dict)  # benchmarks: eos_token_id
    generate_calls: int = 0

    @property
    def modes(self) -> frozenset[str]:
        return frozenset({self.mode})

    def synthesize(
        self, voice: object, segments: list[SegmentRequest], generation: GenerationRequest
    ) -> list[SegmentAudio]:
        voice_kwargs = self._voice_kwargs(voice)  # a bad voice refuses the whole request
        caps = [frame_cap(s.text, self.config.qwen_max_segment_seconds) for s in segments]
        results: dict[int, SegmentAudio] = {}
        config = self.config
        buckets = self._batch_buckets()
        for batch in plan_batches(caps, config.qwen_batch_size, config.qwen_batch_frames, buckets):
            items = [(i, segments[i], caps[i]) for i in batch]
            results.update(self._run(items, voice, voice_kwargs, generation))
        return [results[i] for i in range(len(segments))]

    def _batch_buckets(self) -> tuple[int, ...]:
        """The batch buckets of the talker's recorded steps, if any (a batch then fills its bucket)."""
        from model_server.engines import static_talker

        talker = static_talker.installed(self.tts)
        return talker.grid.buckets if talker is not None and talker.recorder is not None else ()

    def speaker_similarity(self, audio: np.ndarray, reference: Any) -> float:
        """How like the reference clip's speaker a take sounds: the cosine of the two speaker embeddings
        of the Base checkpoint's own encoder (the one its clone prompt is made with), for the gate."""
        import torch

        embedding = self.tts.model.extract_speaker_embedding(
            np.ascontiguousarray(audio, np.float32), SAMPLE_RATE
        )
        take = embedding.float().reshape(-1)
        ref = reference.to(take.device).float().reshape(-1)
        return float(torch.nn.functional.cosine_similarity(take, ref, dim=0))

    def close(self) -> None:
        import torch

        self.tts = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # --- one voice ------------------------------------------------------------------------------

    def _voice_kwargs(self, voice: object) -> dict[str, Any]:
        if isinstance(voice, CustomVoiceRequest):
            return {"speaker": voice.speaker, "instruct": voice.instruct or None, "language": voice.language}
        if isinstance(voice, VoiceDesignRequest):
            return {"instruct": voice.instruct, "language": voice.language}
        if isinstance(voice, VoiceCloneRequest):
            return {"voice_clone_prompt": self.clone_prompt(voice), "language": voice.language}
        raise RequestError("mode", f"{getattr(voice, 'mode', voice)!r} is not served by {self.model_id}")

    def clone_prompt(self, voice: VoiceCloneRequest) -> list[Any]:
        """The voice's prompt, built from its clip once and then reused from memory or S3."""
        clip = load_reference(voice.ref_audio, self.config.allowed_hosts, self.read_s3)
        key = prompt_key(clip.sha256, voice.ref_text, voice.x_vector_only, f"{self.model_id}@{self.revision}")
        items = self.prompts.get_or_build(key, lambda: self._build_prompt(clip, voice), clip.s3_uri)
        return [_on_device(item, self.tts.device) for item in items]

    def _build_prompt(self, clip: ReferenceClip, voice: VoiceCloneRequest) -> list[Any]:
        log.info("building a clone prompt from a %.1f s reference clip", clip.seconds)
        return self.tts.create_voice_clone_prompt(
            ref_audio=(clip.audio, clip.sample_rate),
            ref_text=None if voice.x_vector_only else voice.ref_text,
            x_vector_only_mode=voice.x_vector_only,
        )

    # --- one batch ------------------------------------------------------------------------------

    def _run(
        self,
        items: list[tuple[int, SegmentRequest, int]],
        voice: object,
        voice_kwargs: dict[str, Any],
        generation: GenerationRequest,
    ) -> dict[int, SegmentAudio]:
        import torch

        try:
            wavs, rate = self._generate([s.text for _, s, _ in items], voice_kwargs, generation, items)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            if len(items) == 1:
                return {items[0][0]: _failed(items[0][1], "out of GPU memory for this segment", True)}
            half = len(items) // 2
            log.warning("out of GPU memory at a batch of %d; splitting it", len(items))
            return self._run(items[:half], voice, voice_kwargs, generation) | self._run(
                items[half:], voice, voice_kwargs, generation
            )
        except ValueError as exc:  # what qwen-tts refuses is the request's fault
            return {i: _failed(s, f"engine refused it: {str(exc)[:200]}", False) for i, s, _ in items}
        except Exception as exc:
            log.exception("generate failed on a batch of %d", len(items))
            message = f"engine error: {exc.__class__.__name__}: {str(exc)[:200]}"
            return {i: _failed(s, message, True) for i, s, _ in items}
        if rate != SAMPLE_RATE:
            raise RuntimeError(f"{self.model_id} returned {rate} Hz audio; the handler expects {SAMPLE_RATE}")
        results = {i: _segment_audio(s, wav, cap) for (i, s, cap), wav in zip(items, wavs, strict=True)}
        if self.mode == "voice_clone":
            reference = voice_kwargs["voice_clone_prompt"][0].ref_spk_embedding
            for result in results.values():
                if result.audio is not None:
                    result.speaker_similarity = self.speaker_similarity(result.audio, reference)
        capped = [r.id for r in results.values() if r.hit_frame_limit]
        if capped:
            log.warning("%d of %d segments stopped at their frame cap (text and speech may not match): %s",
                        len(capped), len(items), ", ".join(capped[:8]))  # fmt: skip
        return results

    def _generate(
        self,
        texts: list[str],
        voice_kwargs: dict[str, Any],
        generation: GenerationRequest,
        items: list[tuple[int, SegmentRequest, int]],
    ) -> tuple[list[np.ndarray], int]:
        import torch

        sampling = {
            "temperature": generation.temperature,
            "top_p": generation.top_p,
            "top_k": generation.top_k,
            "repetition_penalty": generation.repetition_penalty,
            "max_new_tokens": max(cap for _, _, cap in items) + 1,  # see max_new_tokens()
        }
        kwargs = voice_kwargs | {k: v for k, v in sampling.items() if v is not None} | self.generate_overrides
        torch.manual_seed(generation.seed)  # also seeds every CUDA device
        self.generate_calls += 1
        method = {
            "custom_voice": self.tts.generate_custom_voice,
            "voice_clone": self.tts.generate_voice_clone,
            "voice_design": self.tts.generate_voice_design,
        }[self.mode]
        with torch.inference_mode():
            return method(texts, **kwargs)


def _segment_audio(segment: SegmentRequest, wav: np.ndarray, cap: int) -> SegmentAudio:
    audio = np.asarray(wav, dtype=np.float32).reshape(-1)
    if audio.size == 0:
        return _failed(segment, "text: produced no audio (nothing speakable)", False)
    hit_limit = audio.size >= cap * SAMPLES_PER_FRAME
    return SegmentAudio(
        id=segment.id,
        audio=audio[: cap * SAMPLES_PER_FRAME],
        sample_rate=SAMPLE_RATE,
        hit_frame_limit=hit_limit,
    )


def _failed(segment: SegmentRequest, message: str, retryable: bool) -> SegmentAudio:
    return SegmentAudio(id=segment.id, error=message, retryable=retryable)


def _on_device(item: Any, device: Any) -> Any:
    for name, value in vars(item).items():
        if hasattr(value, "to") and getattr(value, "device", device) != device:
            setattr(item, name, value.to(device))
    return item


# --- loading ----------------------------------------------------------------------------------------


def load_qwen_engines(config: ServerConfig, model_dir: str) -> dict[str, QwenEngine]:
    """Every configured checkpoint, loaded once: bf16 + flash-attention on a GPU when present, sdpa
    otherwise, fp32 on CPU. A checkpoint of the wrong kind for its mode fails the load."""
    import torch
    from qwen_tts import Qwen3TTSModel

    from model_server.engines import fast_predictor, static_talker

    device = _device(config.qwen_device)
    on_gpu = device.startswith("cuda")
    dtype = torch.bfloat16 if on_gpu else torch.float32
    attention = "flash_attention_2" if on_gpu and _has_flash_attention() else "sdpa"
    prompts = PromptCache(config.prompt_cache_size, *(_s3_prompt_io() if config.prompt_cache_s3 else ()))
    engines: dict[str, QwenEngine] = {}
    for mode, source in config.qwen_sources(model_dir).items():
        log.info("loading %s for %s on %s (%s, %s)", source, mode, device, dtype, attention)
        tts = Qwen3TTSModel.from_pretrained(
            source, device_map=device, dtype=dtype, attn_implementation=attention
        )
        if config.qwen_fast_decode:
            fast_predictor.install(tts, cuda_graphs=config.qwen_cuda_graphs)
            grid = CacheGrid.plan(config.qwen_batch_size, config.qwen_batch_frames, max_new_tokens(config))
            recorder = static_talker.default_recorder(tts.device, config.qwen_cuda_graphs)
            static_talker.install(tts, grid, recorder)
        kind = tts.model.tts_model_type
        if kind != CHECKPOINT_TYPES[mode]:
            variable = {"custom_voice": "CUSTOM_VOICE", "voice_clone": "BASE", "voice_design": "VOICE_DESIGN"}
            raise ValueError(
                f"NARRATE_QWEN_{variable[mode]}_MODEL: {source} is a {kind!r} checkpoint; "
                f"{mode} needs a {CHECKPOINT_TYPES[mode]!r} one"
            )
        model_id, revision = checkpoint_identity(source)
        engines[f"qwen:{mode}"] = QwenEngine(tts, mode, model_id, revision, config, prompts, read_s3_object)
    if not engines:
        raise ValueError("NARRATE_ENGINES names qwen but every NARRATE_QWEN_*_MODEL is 'none'")
    return engines


def _device(requested: str) -> str:
    import torch

    if requested != "auto":
        return requested
    return "cuda:0" if torch.cuda.is_available() else "cpu"


def _has_flash_attention() -> bool:
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        return False
    return True


def read_s3_object(bucket: str, key: str) -> bytes:
    import boto3

    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def _s3_prompt_io() -> tuple[Callable[[str, str], bytes], Callable[[str, str, bytes], None]]:
    def put(bucket: str, key: str, data: bytes) -> None:
        import boto3

        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=data)

    return read_s3_object, put
