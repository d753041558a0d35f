"""The SageMaker Hugging Face container contract: model_fn / input_fn / predict_fn / output_fn.

Engine-agnostic: ``NARRATE_ENGINES`` (comma list: ``dev``, ``piper``, ``qwen``) says which engines
``model_fn`` loads (:mod:`model_server.config` has every knob); each request is routed by its ``mode``. A
RequestError raised here becomes the async failure object (a short message naming the field); a
failure of one segment in a batch stays in that segment's entry and never fails the others.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import soundfile as sf

from model_server import HANDLER_VERSION
from model_server.config import ServerConfig
from model_server.engines.base import SpeechEngine
from model_server.protocol import (
    MODEL_LOAD_FAILED,
    BatchRequest,
    ModelLoadError,
    ParsedRequest,
    RequestError,
    SegmentAudio,
    parse_request,
)

log = logging.getLogger("narrate.model_server")

JSON_TYPES = ("application/json", "text/json")
WAV_TYPES = ("audio/wav", "audio/x-wav", "audio/wave")


def _espeak(config: ServerConfig, model_dir: str) -> dict[str, SpeechEngine]:
    from model_server.engines.espeak import EspeakEngine

    return {"dev": EspeakEngine()}


def _piper(config: ServerConfig, model_dir: str) -> dict[str, SpeechEngine]:
    from model_server.engines.piper import PiperEngine

    return {"piper": PiperEngine()}


def _qwen(config: ServerConfig, model_dir: str) -> dict[str, SpeechEngine]:
    from model_server.engines.qwen import load_qwen_engines

    return dict(load_qwen_engines(config, model_dir))


# Engine name in NARRATE_ENGINES -> loader of its engines (one per checkpoint), imported only when named.
ENGINE_FACTORIES: dict[str, Callable[[ServerConfig, str], dict[str, SpeechEngine]]] = {
    "dev": _espeak,
    "piper": _piper,
    "qwen": _qwen,
}


@dataclass
class LoadedModel:
    engines: dict[str, SpeechEngine] = field(default_factory=dict)

    def engine_for(self, mode: str) -> SpeechEngine:
        for engine in self.engines.values():
            if mode in engine.modes:
                return engine
        served = sorted(m for e in self.engines.values() for m in e.modes)
        raise RequestError("mode", f"{mode!r} is not served by this endpoint (serves: {', '.join(served)})")


@dataclass
class Prediction:
    request: BatchRequest
    single: bool
    results: list[SegmentAudio]
    model_id: str
    revision: str


def model_fn(model_dir: str, context: Any = None) -> LoadedModel:
    model = load_model(ServerConfig.from_env(os.environ), model_dir)
    log.info("model_fn: loaded engines %s from %s", sorted(model.engines), model_dir)
    return model


def load_model(config: ServerConfig, model_dir: str = "/opt/ml/model") -> LoadedModel:
    """:func:`load_engines`, its failure a ModelLoadError naming what to fix. The container toolkit does
    not stop for it: the instance stays healthy and every request is refused with this message (and
    loads again), so a client must recognise it (MODEL_LOAD_FAILED) and stop sending."""
    try:
        return load_engines(config, model_dir)
    except Exception as exc:
        variables = ["NARRATE_ENGINES"]
        if "qwen" in config.engine_names:
            variables += [
                f"NARRATE_QWEN_{mode.upper()}_MODEL" for mode in ("custom_voice", "base", "voice_design")
            ]
        raise ModelLoadError(
            f"{MODEL_LOAD_FAILED} (engines {config.engines!r}): {exc.__class__.__name__}: {str(exc)[:300]}; "
            f"check {', '.join(variables)}"
        ) from exc


def load_engines(config: ServerConfig, model_dir: str = "/opt/ml/model") -> LoadedModel:
    """The engines ``config.engines`` names, each loaded once."""
    names = config.engine_names
    unknown = [n for n in names if n not in ENGINE_FACTORIES]
    if unknown or not names:
        raise ValueError(f"NARRATE_ENGINES: unknown engine(s) {unknown}; known: {sorted(ENGINE_FACTORIES)}")
    loaded = LoadedModel()
    for name in names:
        loaded.engines.update(ENGINE_FACTORIES[name](config, model_dir))
    return loaded


def input_fn(input_data: str | bytes, content_type: str | None, context: Any = None) -> ParsedRequest:
    media_type = (content_type or "application/json").split(";")[0].strip().lower()
    if media_type not in JSON_TYPES:
        raise RequestError("content_type", f"{content_type!r} is not supported; send application/json")
    return parse_request(input_data)


def predict_fn(data: ParsedRequest, model: LoadedModel, context: Any = None) -> Prediction:
    request, single = data.request, data.single
    engine = model.engine_for(request.voice.mode)
    results: list[SegmentAudio] = []
    if request.segments:
        try:
            results = engine.synthesize(request.voice, list(request.segments), request.generation)
        except RequestError:
            raise
        except Exception as exc:  # an engine fault must not take the worker down
            log.exception("engine %s failed on a batch of %d", engine.model_id, len(request.segments))
            message = f"engine error: {exc.__class__.__name__}: {str(exc)[:200]}"
            results = [SegmentAudio(id=s.id, error=message, retryable=True) for s in request.segments]
    by_id = {r.id: r for r in (*results, *data.rejected)}
    results = [by_id[segment_id] for segment_id in data.order]
    if single and results[0].error:
        if results[0].retryable:
            raise RuntimeError(results[0].error)
        field, _, problem = results[0].error.partition(": ")
        raise RequestError(field, problem) if problem else RequestError("text", field)
    return Prediction(request, single, results, engine.model_id, engine.revision)


def output_fn(prediction: Prediction, accept: str | None, context: Any = None) -> bytes | str:
    media_type = (accept or "application/json").split(";")[0].strip().lower()
    if media_type in WAV_TYPES:
        if not prediction.single:
            raise RequestError("accept", "audio/wav is only for single-segment requests; accept JSON")
        return encode_wav(prediction.results[0])
    if media_type not in (*JSON_TYPES, "*/*"):
        raise RequestError("accept", f"{accept!r} is not supported; use application/json or audio/wav")
    if prediction.single:
        result = prediction.results[0]
        body: dict[str, Any] = {
            "audio_base64": base64.b64encode(encode_wav(result)).decode(),
            "sample_rate": result.sample_rate,
            "mode": prediction.request.voice.mode,
        }
    else:
        body = {
            "mode": prediction.request.voice.mode,
            "model_id": prediction.model_id,
            "revision": prediction.revision,
            "handler_version": HANDLER_VERSION,
            "segments": [_segment_body(r) for r in prediction.results],
        }
    return json.dumps(body)


def _segment_body(result: SegmentAudio) -> dict[str, Any]:
    if result.error:
        return {"id": result.id, "error": result.error, "retryable": result.retryable}
    return {
        "id": result.id,
        "sample_rate": result.sample_rate,
        "num_samples": int(result.audio.shape[0]),
        "duration_seconds": round(result.audio.shape[0] / result.sample_rate, 4),
        "hit_frame_limit": result.hit_frame_limit,
        "speaker_similarity": result.speaker_similarity,
        "audio_base64": base64.b64encode(encode_wav(result)).decode(),
        "error": None,
    }


def encode_wav(result: SegmentAudio) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, result.audio, result.sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
