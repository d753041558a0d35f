"""Amazon Polly at the boundary narrate cannot reach from here: botocore's Stubber on a real client."""

from __future__ import annotations

import io
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from narrate.synthesis.polly_speech import EMULATED_HEADER


@pytest.fixture
def polly() -> Any:
    return boto3.client("polly", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")


def pcm_response(values: list[int], emulated: bool = False) -> dict[str, Any]:
    data = np.array(values, dtype="<i2").tobytes()
    headers = {EMULATED_HEADER: "dev-voice"} if emulated else {}
    return {
        "AudioStream": StreamingBody(io.BytesIO(data), len(data)),
        "ContentType": "audio/pcm",
        "RequestCharacters": 1,
        "ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": headers},
    }


def client_error(stub: Stubber, code: str, status: int, message: str = "") -> None:
    stub.add_client_error("synthesize_speech", code, message, status)
