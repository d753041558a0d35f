"""Faults the tests inject into the local async endpoint, at the boundary narrate cannot control:
throttled invocations, segments whose output carries an error, damaged or lost outputs, and no
capacity. Not a setting of the product: a test drives them through the emulator's methods, or, for
a render in another process (a served deployment), through the JSON file named by
``NARRATE_LOCAL_FAULT_FILE`` in that process's environment: ``{"fail_segments_once": [ids]}``.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

FAULT_FILE_VARIABLE = "NARRATE_LOCAL_FAULT_FILE"
OUTPUT_DAMAGE = frozenset({"drop", "truncate", "not-audio"})


def fault_file_from_environment() -> str | None:
    return os.environ.get(FAULT_FILE_VARIABLE) or None


class Faults:
    def __init__(self, fault_file: str | None = None) -> None:
        self.fault_file = Path(fault_file) if fault_file else None
        self.capacity_withheld = False
        # Every container of the endpoint fails to start (as a failed requirements install does): the
        # instance never passes its health check, and a new endpoint ends Failed with this reason.
        self.container_start_failure: str | None = None
        self._throttle_remaining = 0
        self._segment_faults: dict[str, str] = {}
        self._output_faults: list[str] = []
        self._lock = threading.Lock()

    def throttle_next(self, count: int) -> None:
        with self._lock:
            self._throttle_remaining = count

    def take_throttle(self) -> bool:
        """Whether this invocation is answered with ThrottlingException."""
        with self._lock:
            if self._throttle_remaining <= 0:
                return False
            self._throttle_remaining -= 1
            return True

    def fail_segments_once(self, segment_ids: set[str], message: str = "injected fault") -> None:
        with self._lock:
            self._segment_faults.update(dict.fromkeys(segment_ids, message))

    def damage_next_outputs(self, count: int, how: str) -> None:
        if how not in OUTPUT_DAMAGE:
            raise ValueError(how)
        with self._lock:
            self._output_faults = [how] * count

    def into_output(self, output: str | bytes) -> str | bytes:
        """The handler's output with each faulted segment's entry replaced by a final error."""
        self._read_fault_file()
        with self._lock:
            if not self._segment_faults:
                return output
            data = json.loads(output)
            for entry in data.get("segments", []):
                message = self._segment_faults.pop(entry["id"], None)
                if message:
                    segment_id = entry["id"]
                    entry.clear()
                    entry.update(id=segment_id, error=message, retryable=False)
        return json.dumps(data)

    def damage(self, body: bytes) -> bytes | None:
        """The output body as it reaches S3: unchanged, cut, not audio, or never (None)."""
        with self._lock:
            how = self._output_faults.pop(0) if self._output_faults else None
        if how == "drop":
            return None
        if how == "truncate":
            return body[: len(body) // 2]
        if how == "not-audio":
            data = json.loads(body)
            for entry in data.get("segments", []):
                if entry.get("audio_base64"):
                    entry["audio_base64"] = "bm90IGEgd2F2IGZpbGU="  # "not a wav file"
            return json.dumps(data).encode()
        return body

    def _read_fault_file(self) -> None:
        path = self.fault_file
        if path is None or not path.is_file():
            return
        with self._lock:
            ids = json.loads(path.read_text() or "{}").get("fail_segments_once", [])
            path.unlink()  # consumed: "once"
            self._segment_faults.update(dict.fromkeys(ids, "injected fault"))
