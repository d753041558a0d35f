"""The handler's input surface from hypothesis: anything a client sends gets a short RequestError
naming the field, or a valid answer; the worker keeps serving."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_server import inference
from model_server.protocol import RequestError, parse_request
from model_server.reference import load_reference

FUZZ = settings(max_examples=80, deadline=None)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=15,
)
fields = st.sampled_from(["mode", "text", "speaker", "language", "instruct", "ref_audio", "ref_text", "voice",
                          "segments", "generation", "seed", "id", "x_vector_only"])  # fmt: skip
payloads = st.dictionaries(fields, json_values, max_size=6)


def refused_cleanly(call: Any) -> None:
    try:
        call()
    except RequestError as error:
        assert len(str(error)) < 400 and "Traceback" not in str(error)


@FUZZ
@given(body=payloads)
def test_random_json_bodies(body: dict[str, Any]) -> None:
    refused_cleanly(lambda: parse_request(json.dumps(body)))


@FUZZ
@given(body=st.binary(max_size=300) | st.text(max_size=300))
def test_random_bytes_and_text(body: bytes | str) -> None:
    refused_cleanly(lambda: parse_request(body))


@FUZZ
@given(data=st.binary(max_size=2000), as_data_url=st.booleans())
def test_corrupt_reference_audio(data: bytes, as_data_url: bool) -> None:
    encoded = base64.b64encode(data).decode()
    value = f"data:audio/wav;base64,{encoded}" if as_data_url else encoded
    with pytest.raises(RequestError) as caught:
        load_reference(value, frozenset(), lambda bucket, key: b"")
    assert caught.value.field == "ref_audio"


@FUZZ
@given(value=st.text(max_size=200))
def test_reference_strings_are_never_fetched_from_unlisted_places(value: str) -> None:
    fetched: list[str] = []

    def read_s3(bucket: str, key: str) -> bytes:
        fetched.append(f"{bucket}/{key}")
        return b"not audio"

    with pytest.raises(RequestError):
        load_reference(value, frozenset(), read_s3)
    assert all(value.startswith("s3://") for _ in fetched)  # only S3 is ever read, and only for s3://


def test_the_worker_keeps_serving_after_fuzzed_requests() -> None:
    model = inference.model_fn("/opt/ml/model")
    for body in (
        "{",
        "[]",
        '{"mode": 1}',
        '{"segments": "x"}',
        '{"voice": {"mode": "dev"}, "segments": [{}]}',
    ):
        with pytest.raises(RequestError):
            inference.predict_fn(inference.input_fn(body, "application/json"), model)
    good = inference.input_fn('{"mode": "dev", "text": "Still serving."}', "application/json")
    assert json.loads(inference.output_fn(inference.predict_fn(good, model), None))["audio_base64"]
