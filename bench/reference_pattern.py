"""The reference pipeline's way of voicing a script on a SageMaker async endpoint, as a bench-only client.

Contract: :func:`synthesize_sequentially` sends one single-segment request per segment, strictly one
after another (upload the input, ``invoke_endpoint_async``, then look at the returned output and
failure objects every ``poll_seconds`` until one appears, then the next segment), and returns when
the last output is in. It never touches capacity: an endpoint at zero is woken only by its registered
``HasBacklogWithoutCapacity`` alarm and step policy, and released only by target tracking's scale-in
after its cooldown. It is the baseline narrate's critical path is compared with; it ships with nothing.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

POLL_SECONDS = 10.0  # the reference client's fixed S3 polling interval
TIMEOUT_SECONDS = 20 * 60.0  # and how long it waits for one segment


@dataclass(frozen=True)
class Segment:
    id: str
    text: str


@dataclass(frozen=True)
class ReferenceClient:
    """Where the reference client talks to: its endpoint, its bucket, and the AWS clients."""

    endpoint_name: str
    bucket: str
    prefix: str
    s3: Any
    runtime: Any
    poll_seconds: float = POLL_SECONDS
    timeout_seconds: float = TIMEOUT_SECONDS
    sleep: Callable[[float], None] = time.sleep


def load_segments(script: Path) -> list[Segment]:
    """The segments of a narrate script, in order: the same texts narrate renders."""
    import yaml

    data = yaml.safe_load(script.read_text(encoding="utf-8"))
    return [Segment(str(row["id"]), str(row["text"])) for row in data["segments"]]


def synthesize_sequentially(client: ReferenceClient, segments: Sequence[Segment], out: Path) -> None:
    """Voice every segment, one request at a time, writing ``<id>.wav`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for segment in segments:
        body = wait_for_output(client, submit(client, segment))
        (out / f"{segment.id}.wav").write_bytes(base64.b64decode(json.loads(body)["audio_base64"]))


def submit(client: ReferenceClient, segment: Segment) -> dict[str, str]:
    """Upload the segment's single-form request and invoke the endpoint; its output/failure locations."""
    key = f"{client.prefix}/inputs/{segment.id}-{time.time_ns()}.json"
    request = {"mode": "dev", "id": segment.id, "text": segment.text}
    client.s3.put_object(Bucket=client.bucket, Key=key, Body=json.dumps(request).encode())
    response = client.runtime.invoke_endpoint_async(
        EndpointName=client.endpoint_name,
        InputLocation=f"s3://{client.bucket}/{key}",
        ContentType="application/json",
        Accept="application/json",
    )
    return {"output": response["OutputLocation"], "failure": response.get("FailureLocation", "")}


def wait_for_output(client: ReferenceClient, locations: dict[str, str]) -> bytes:
    """Look for the output every ``poll_seconds``; a failure object or the timeout ends the render."""
    deadline = time.monotonic() + client.timeout_seconds
    while True:
        body = read_if_exists(client.s3, locations["output"])
        if body is not None:
            return body
        failure = read_if_exists(client.s3, locations["failure"]) if locations["failure"] else None
        if failure is not None:
            raise RuntimeError(f"reference request failed: {failure[:300]!r}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no output at {locations['output']} in {client.timeout_seconds:.0f} s")
        client.sleep(client.poll_seconds)


def read_if_exists(s3: Any, location: str) -> bytes | None:
    bucket, _, key = location.removeprefix("s3://").partition("/")
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as exc:
        if exc.response["Error"]["Code"] in {"NoSuchKey", "404", "NotFound"}:
            return None
        raise
