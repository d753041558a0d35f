"""The container handler running in this process (no AWS, no simulated instances), behind the same
request, output and failure objects as the async endpoint: files, failures as JSON error bodies."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from model_server import inference
from model_server.config import ServerConfig
from model_server.protocol import ModelLoadError, RequestError
from narrate.endpoints.base import NothingQueued, Submission, SynthesisJob, Usage
from narrate.errors import ModelNotLoaded, TransientSynthesisError
from narrate.files import write_bytes_atomic, write_json_atomic
from narrate.synthesis.responses import failure_error

log = logging.getLogger("narrate.endpoint.local")


class InProcessEndpoint(NothingQueued):
    name = "inprocess"

    def __init__(self, root: Path, server: ServerConfig) -> None:
        self.root = Path(root)
        self.server = server
        self._model: inference.LoadedModel | None = None
        self._lock = threading.Lock()

    def ensure(self, holder: str = "") -> dict[str, Any]:
        for folder in ("requests", "outputs", "failures"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        return {"endpoint": self.name, "root": str(self.root), "loaded": self._model is not None}

    def wake(self, deadline_seconds: float, holder: str = "", instances: int = 1) -> None:
        with self._lock:
            if self._model is None:
                try:
                    self._model = inference.load_model(self.server, str(self.root))
                except ModelLoadError as exc:
                    raise ModelNotLoaded(str(exc)) from None

    def stage(self, job: SynthesisJob) -> str:
        self.ensure()
        path = self.root / "requests" / f"{job.request_id}.json"
        write_bytes_atomic(path, job.body())
        return str(path)

    def submit(self, job: SynthesisJob, input_location: str) -> Submission:
        body = Path(input_location).read_bytes()
        submission = Submission(
            request_id=job.request_id,
            segment_ids=job.segment_ids,
            output_location=str(self.root / "outputs" / f"{job.request_id}.out"),
            failure_location=str(self.root / "failures" / f"{job.request_id}.json"),
        )
        self._serve(body, submission)
        return submission

    def _serve(self, body: bytes, submission: Submission) -> None:
        """What the container does with one request: the four hooks, body as bytes."""
        self.wake(0)
        assert self._model is not None
        try:
            parsed = inference.input_fn(body, "application/json")
            output = inference.output_fn(inference.predict_fn(parsed, self._model), "application/json")
        except Exception as exc:  # as the container toolkit: every hook exception is a 400, message as it is
            if not isinstance(exc, RequestError):
                log.exception("handler failed on %s", submission.request_id)
            self._fail(submission, 400, str(exc))
            return
        data = output.encode() if isinstance(output, str) else output
        write_bytes_atomic(Path(submission.output_location), data)

    def _fail(self, submission: Submission, code: int, message: str) -> None:
        error = {"code": code, "type": "InternalServerException", "message": message}
        write_json_atomic(Path(submission.failure_location), error)

    def fetch(self, submission: Submission, deadline_seconds: float) -> bytes:
        output, failure = Path(submission.output_location), Path(submission.failure_location)
        deadline = time.monotonic() + deadline_seconds
        while True:
            if output.is_file():
                return output.read_bytes()
            if failure.is_file():
                raise failure_error(failure.read_bytes())
            if time.monotonic() >= deadline:
                raise TransientSynthesisError(f"no output for {submission.request_id} before the deadline")
            time.sleep(0.05)

    def scale_down(self, holder: str = "") -> Usage:
        with self._lock:
            model, self._model = self._model, None
        if model is not None:
            for engine in model.engines.values():
                engine.close()
        return Usage(gpu_seconds=0.0, cost_usd=0.0, released=True)
