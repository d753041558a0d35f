"""Reading what an endpoint returns: batch output bodies and async failure objects."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from model_server.protocol import MODEL_LOAD_FAILED
from narrate.errors import ModelNotLoaded, SegmentRejected, TransientSynthesisError, transient_status


@dataclass(frozen=True)
class SegmentOutput:
    id: str
    wav_bytes: bytes | None
    error: str | None
    retryable: bool = False
    measured: dict[str, float | bool] = field(default_factory=dict)  # by the handler: the gate's


# What the handler measures of a take for the quality gate (narrate.check.gate).
HANDLER_MEASURES = ("hit_frame_limit", "speaker_similarity")


def parse_batch_output(body: bytes, expected_ids: tuple[str, ...]) -> dict[str, SegmentOutput]:
    """Per-segment results of a batch response; a malformed body is transient (it may be truncated)."""
    try:
        data = json.loads(body)
        entries = data["segments"]
        outputs: dict[str, SegmentOutput] = {}
        for entry in entries:
            segment_id = str(entry["id"])
            if entry.get("error"):
                outputs[segment_id] = SegmentOutput(
                    segment_id, None, str(entry["error"]), bool(entry.get("retryable"))
                )
            else:
                wav = base64.b64decode(entry["audio_base64"], validate=True)
                measured = {k: entry[k] for k in HANDLER_MEASURES if entry.get(k) is not None}
                outputs[segment_id] = SegmentOutput(segment_id, wav, None, measured=measured)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise TransientSynthesisError(
            f"output is not a valid batch response ({exc.__class__.__name__})"
        ) from None
    missing = [sid for sid in expected_ids if sid not in outputs]
    for segment_id in missing:
        outputs[segment_id] = SegmentOutput(segment_id, None, "missing from the endpoint's response", True)
    return outputs


def failure_error(body: bytes) -> SegmentRejected | TransientSynthesisError | ModelNotLoaded:
    """An async failure object as the error it stands for: a model that did not load stops the render;
    a 4xx is final (but a 429); anything else transient."""
    try:
        data = json.loads(body)
        code, message = int(data.get("code", 500)), str(data.get("message", "")).strip()
    except (ValueError, AttributeError, TypeError):
        code, message = 500, body[:200].decode("utf-8", "replace")
    message = message or "the handler gave no message"
    if message.startswith(MODEL_LOAD_FAILED):
        return ModelNotLoaded(message)
    final = 400 <= code < 500 and not transient_status(code)
    return SegmentRejected(message) if final else TransientSynthesisError(message)
