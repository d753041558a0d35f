"""The handler driven the way the container drives it: body as str and bytes, output_fn's body back."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import soundfile as sf

from model_server import inference
from model_server.protocol import RequestError


@pytest.fixture(scope="module")
def model() -> inference.LoadedModel:
    return inference.model_fn("/opt/ml/model")


def call(model: inference.LoadedModel, body: str | bytes, accept: str | None = None) -> bytes | str:
    parsed = inference.input_fn(body, "application/json")
    return inference.output_fn(inference.predict_fn(parsed, model), accept)


def decode(wav: bytes) -> tuple[np.ndarray, int]:
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return audio, rate


def batch(*texts: str) -> bytes:
    segments = [{"id": f"s{i}", "text": t} for i, t in enumerate(texts)]
    return json.dumps({"voice": {"mode": "dev", "language": "en"}, "segments": segments}).encode()


def test_single_form_as_str_and_bytes_gives_the_same_wav(model: inference.LoadedModel) -> None:
    body = '{"mode": "dev", "text": "Press Connect to continue.", "language": "en"}'
    as_str = json.loads(call(model, body))
    as_bytes = json.loads(call(model, body.encode()))
    assert as_str == as_bytes
    audio, rate = decode(base64.b64decode(as_str["audio_base64"]))
    assert audio.size > rate // 2
    assert (rate, as_str["sample_rate"], as_str["mode"]) == (22050, 22050, "dev")
    assert call(model, body, "audio/wav") == base64.b64decode(as_str["audio_base64"])


def test_batch_is_deterministic_and_grows_with_text(model: inference.LoadedModel) -> None:
    texts = (
        "Share.",
        "Share the dashboard with your team.",
        "Share the dashboard with your whole team, " * 3,
    )
    first = json.loads(call(model, batch(*texts)))
    assert first == json.loads(call(model, batch(*texts)))
    lengths = [s["num_samples"] for s in first["segments"]]
    assert lengths[0] < lengths[1] < lengths[2]
    assert first["model_id"] == "espeak-ng" and first["handler_version"]


def test_dev_voice_is_speech_not_tone_noise_or_silence(model: inference.LoadedModel) -> None:
    body = json.loads(call(model, batch("Welcome to Acme Insights. Connect a data source to begin.")))
    audio, rate = decode(base64.b64decode(body["segments"][0]["audio_base64"]))
    assert np.sqrt(np.mean(audio**2)) > 0.01  # not silence
    envelope = np.abs(audio)[: len(audio) // 220 * 220].reshape(-1, 220).mean(axis=1)  # 100 Hz envelope
    spectrum = np.abs(np.fft.rfft(envelope - envelope.mean()))
    freqs = np.fft.rfftfreq(len(envelope), 1 / 100)
    syllabic = spectrum[(freqs >= 1.5) & (freqs <= 10)].sum() / spectrum[freqs > 0].sum()
    assert syllabic > 0.3  # energy comes and goes at syllable rate, unlike a tone or steady noise
    power = np.abs(np.fft.rfft(audio)) ** 2
    bands = np.fft.rfftfreq(len(audio), 1 / rate)
    assert power[(bands > 100) & (bands < 4000)].sum() / power.sum() > 0.7  # energy in the voice band


def test_one_bad_segment_does_not_fail_the_batch(model: inference.LoadedModel) -> None:
    body = json.loads(call(model, batch("Hello there.", "...", "Goodbye.")))
    errors = [s.get("error") for s in body["segments"]]
    assert errors[0] is None and errors[2] is None
    assert errors[1] is not None and "no audio" in errors[1]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"mode": "sing", "text": "x"}', "mode"),
        ('{"mode": "dev", "text": ""}', "text"),
        ('{"mode": "dev", "text": "hi", "language": "klingon"}', "language"),
        ('{"mode": "dev", "text": "hi", "rate_wpm": "fast"}', "rate_wpm"),
        ('{"mode": "custom_voice", "text": "hi", "speaker": "Aiden"}', "mode"),
        ('{"mode": "dev", "text": "hi", "surprise": 1}', "surprise"),
        ("not json", "body"),
        ("[1, 2]", "body"),
        (b"\xff\xfe", "body"),
    ],
)
def test_bad_requests_name_the_field(model: inference.LoadedModel, body: str | bytes, field: str) -> None:
    with pytest.raises(RequestError) as caught:
        call(model, body)
    assert caught.value.field == field
    assert len(str(caught.value)) < 300


def test_content_types(model: inference.LoadedModel) -> None:
    body = '{"mode": "dev", "text": "hi"}'
    assert inference.input_fn(body, "application/json; charset=utf-8")
    with pytest.raises(RequestError, match="content_type"):
        inference.input_fn(body, "text/csv")
    with pytest.raises(RequestError, match="audio/wav is only for single-segment"):
        call(model, batch("a b c"), "audio/wav")


def test_unknown_engine_in_configuration_fails_model_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NARRATE_ENGINES", "dev,whisper")
    with pytest.raises(ValueError, match="NARRATE_ENGINES: unknown engine"):
        inference.model_fn("/opt/ml/model")


def test_model_server_imports_nothing_from_the_orchestration_side() -> None:
    import ast
    from pathlib import Path

    root = Path(inference.__file__).parent
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in {"narrate", "flows", "tasks", "deployments", "prefect"}, path


def test_served_modes_follow_the_engine_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    from model_server.config import ENGINE_MODES, ServerConfig

    assert ServerConfig(engines="dev,piper").served_modes() == {"dev", "piper"}
    assert ServerConfig(engines="bench-x").served_modes() == frozenset()
    monkeypatch.setitem(ENGINE_MODES, "bench-x", frozenset({"dev"}))  # as a benchmark registers one
    assert ServerConfig(engines="bench-x").served_modes() == {"dev"}
