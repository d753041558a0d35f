"""Requests a render submitted and never collected, remembered in S3 so that a later run adopts them.

An async endpoint runs a queued request whatever happened to the render that sent it. Each request a
render submits is remembered (``<prefix>/queued/<endpoint>/<request>.json``: where its output and
failure will appear, until when it can still run, and each segment's text and cache key) and
forgotten once its clips are cached. A later run that needs any of those sounds gathers the request's
outputs instead of asking for them again.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from narrate.aws.s3 import s3_encryption
from narrate.endpoints.base import JobSummary, Submission, SynthesisJob
from narrate.endpoints.sagemaker_setup import EndpointSpec


class QueuedRecord(JobSummary):
    output_location: str
    failure_location: str
    expires_at: float  # past the request's TTL and invocation timeout it can no longer run

    def submission(self) -> Submission:
        return Submission(self.request_id, self.segment_ids, self.output_location, self.failure_location)


class QueuedRequests:
    def __init__(self, s3: Any, spec: EndpointSpec, lifetime_seconds: float) -> None:
        self.s3, self.spec, self.lifetime_seconds = s3, spec, lifetime_seconds

    def remember(self, submission: Submission, job: SynthesisJob) -> None:
        if not job.for_a_render:  # no cache keys: nothing to adopt it for
            return
        record = QueuedRecord(
            **job.summary().model_dump(),
            output_location=submission.output_location,
            failure_location=submission.failure_location,
            expires_at=time.time() + self.lifetime_seconds,
        )
        self.s3.put_object(
            Bucket=self.spec.bucket,
            Key=self._key(submission.request_id),
            Body=record.model_dump_json().encode(),
            **s3_encryption(self.spec.kms_key_id),
        )

    def queued(self, cache_keys: set[str]) -> list[tuple[Submission, JobSummary]]:
        """Remembered requests holding any of ``cache_keys``; records past their lifetime are dropped."""
        adopted: list[tuple[Submission, JobSummary]] = []
        listing = self.s3.list_objects_v2(Bucket=self.spec.bucket, Prefix=self._prefix)
        for key in (item["Key"] for item in listing.get("Contents", [])):
            try:
                body = self.s3.get_object(Bucket=self.spec.bucket, Key=key)["Body"].read()
                record = QueuedRecord.model_validate(json.loads(body))
            except (ClientError, ValueError, ValidationError):
                continue
            if record.expires_at < time.time():
                self.s3.delete_object(Bucket=self.spec.bucket, Key=key)
                continue
            if cache_keys & set(record.cache_keys.values()):
                adopted.append((record.submission(), JobSummary(**record.model_dump(include=_SUMMARY))))
        return adopted

    def forget(self, submission: Submission) -> None:
        with contextlib.suppress(ClientError, BotoCoreError):  # a stale record expires by itself
            self.s3.delete_object(Bucket=self.spec.bucket, Key=self._key(submission.request_id))

    @property
    def _prefix(self) -> str:
        return f"{self.spec.s3_prefix}/queued/{self.spec.endpoint_name}/"

    def _key(self, request_id: str) -> str:
        return f"{self._prefix}{request_id}.json"


_SUMMARY = set(JobSummary.model_fields)
