"""The SageMaker endpoint with its boto3 clients passed in (``AwsClients(make=...)``), no patching: what
each kind of AWS failure on the request path becomes."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from model_server.protocol import BatchRequest, DevVoiceRequest, SegmentRequest
from narrate.aws.clients import AwsClients
from narrate.endpoints import SynthesisJob
from narrate.endpoints.sagemaker import SageMakerEndpoint
from narrate.errors import ConfigError, SegmentRejected, TransientSynthesisError
from narrate.settings import get_settings


class FailingS3:
    """An S3 client whose put_object fails with the given error."""

    def __init__(self, error: Exception) -> None:
        self.error, self.calls = error, 0

    def put_object(self, **kwargs: Any) -> None:
        self.calls += 1
        raise self.error


def aws_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


def endpoint_with(s3: Any) -> SageMakerEndpoint:
    made: list[str] = []

    def make(service: str, config: Any) -> Any:
        made.append(service)
        return s3 if service == "s3" else object()

    endpoint = SageMakerEndpoint(get_settings(), AwsClients("eu-west-1", make=make))
    assert sorted(made) == ["application-autoscaling", "cloudwatch", "s3", "sagemaker", "sagemaker-runtime"]
    return endpoint


JOB = SynthesisJob(
    "r1", BatchRequest(voice=DevVoiceRequest(mode="dev"), segments=[SegmentRequest(id="a", text="Hi.")])
)


@pytest.mark.parametrize(
    ("error", "becomes"),
    [
        (aws_error("SlowDown", 503), TransientSynthesisError),
        (aws_error("InternalError", 500), TransientSynthesisError),
        (EndpointConnectionError(endpoint_url="https://s3"), TransientSynthesisError),
        (aws_error("AccessDenied", 403), ConfigError),
        (aws_error("InvalidRequest", 400), SegmentRejected),
    ],
)
def test_a_failed_upload_is_retried_only_when_it_may_pass(error: Exception, becomes: type[Exception]) -> None:
    s3 = FailingS3(error)
    with pytest.raises(becomes, match="upload request failed"):
        endpoint_with(s3).stage(JOB)
    assert s3.calls == 1
