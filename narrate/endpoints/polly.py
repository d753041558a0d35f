"""Amazon Polly behind the Endpoint interface: no instance to wake or release, and outputs in the
handler's own batch format, so the flow's gather, validation and cache take Polly clips unchanged.

Each segment of a request is one or more SynthesizeSpeech calls (see :mod:`narrate.synthesis.polly_speech`); a
segment's failure is its own entry in the output, retryable or not, like the handler's.
"""

from __future__ import annotations

import base64
import io
import json
import threading
from typing import Any

import soundfile as sf

from narrate.endpoints.base import NothingQueued, Submission, SynthesisJob, Usage
from narrate.errors import SegmentRejected, SynthesisError, TransientSynthesisError
from narrate.log import run_logger
from narrate.synthesis.polly_speech import (
    EMULATION_NOTE,
    PollyAudio,
    PollyBatchRequest,
    PollyRequest,
    synthesize,
)

LOCATION_PREFIX = "polly-memory://"


class PollyEndpoint(NothingQueued):
    name = "polly"

    def __init__(self, client: Any) -> None:
        self.client = client
        self._outputs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def ensure(self, holder: str = "") -> dict[str, Any]:
        return {"endpoint": self.name, "managed": "Amazon Polly: nothing to create"}

    def wake(self, deadline_seconds: float, holder: str = "", instances: int = 1) -> None:
        """Polly is always up."""

    def stage(self, job: SynthesisJob) -> str:
        """Nothing to upload: the job carries its payload."""
        return f"{LOCATION_PREFIX}requests/{job.request_id}"

    def submit(self, job: SynthesisJob, input_location: str) -> Submission:
        """Synthesise every segment now; the body is kept for :meth:`fetch`."""
        if not isinstance(job.request, PollyBatchRequest):
            raise SegmentRejected(f"mode: {job.request.voice.mode!r} is not a Polly voice")
        voice = job.request.voice
        entries = [
            self._segment(voice.call(), voice.emulated, segment.id, segment.text)
            for segment in job.request.segments
        ]
        with self._lock:
            self._outputs[job.request_id] = json.dumps({"segments": entries}).encode()
        return Submission(
            request_id=job.request_id,
            segment_ids=job.segment_ids,
            output_location=f"{LOCATION_PREFIX}outputs/{job.request_id}",
            failure_location=f"{LOCATION_PREFIX}failures/{job.request_id}",
        )

    def _segment(
        self, request: PollyRequest, expect_emulated: bool, segment_id: str, text: str
    ) -> dict[str, Any]:
        try:
            audio = synthesize(self.client, request, text)
            _check_emulation(audio, expect_emulated)
        except SynthesisError as exc:
            return {"id": segment_id, "error": str(exc), "retryable": exc.transient}
        if audio.requests > 1:
            run_logger().info("segment %s: %d Polly requests (text over one request's limit)",
                              segment_id, audio.requests)  # fmt: skip
        return {"id": segment_id, "audio_base64": base64.b64encode(_wav(audio)).decode()}

    def fetch(self, submission: Submission, deadline_seconds: float) -> bytes:
        with self._lock:
            body = self._outputs.pop(submission.request_id, None)
        if body is None:
            raise TransientSynthesisError(
                f"no Polly output kept for {submission.request_id}; submitting again"
            )
        return body

    def scale_down(self, holder: str = "") -> Usage:
        return Usage(gpu_seconds=0.0, cost_usd=0.0, released=True)


def _check_emulation(audio: PollyAudio, expected: bool) -> None:
    """The clip goes into the cache under a key that says emulated or not: the answer must agree."""
    if audio.emulated == expected:
        return
    if audio.emulated:
        raise SegmentRejected(
            f"the answer is emulated ({EMULATION_NOTE}) but this render expects real Amazon Polly; "
            "unset AWS_ENDPOINT_URL, or set NARRATE_AWS=local to render with the emulation"
        )
    raise SegmentRejected(
        "the answer came from real Amazon Polly but this render is in local mode (NARRATE_AWS=local); "
        "set NARRATE_AWS=real to render with Polly"
    )


def _wav(audio: PollyAudio) -> bytes:
    """The int16 samples in a WAV file as they are: no conversion, no rounding."""
    buffer = io.BytesIO()
    sf.write(buffer, audio.pcm, audio.sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
