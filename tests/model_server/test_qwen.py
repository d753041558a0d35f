"""The Qwen3-TTS engine through the four container hooks, on tiny random-weight checkpoints built offline.

The real qwen-tts code runs (tokenizer, talker, code predictor, codec); only the weights are random,
so the audio is noise of the right shape: these tests check everything but how it sounds.
"""

from __future__ import annotations

import base64
import http.server
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from model_server import inference
from model_server.config import ServerConfig
from model_server.engines.qwen import SAMPLES_PER_FRAME, QwenEngine, frame_cap, plan_batches
from model_server.protocol import MAX_TEXT_CHARS, RequestError

MAX_SECONDS = 1.0  # random weights rarely stop: every segment runs to this cap (13 frames)
CAP_SAMPLES = frame_cap("x", MAX_SECONDS) * SAMPLES_PER_FRAME


def tiny_config(checkpoints: dict[str, Path], **overrides: Any) -> ServerConfig:
    """All three tiny checkpoints, short caps, no S3; ``overrides`` change any knob."""
    config = ServerConfig(
        engines="qwen",
        qwen_custom_voice_model=str(checkpoints["custom_voice"]),
        qwen_base_model=str(checkpoints["voice_clone"]),
        qwen_voice_design_model=str(checkpoints["voice_design"]),
        qwen_max_segment_seconds=MAX_SECONDS,
        prompt_cache_s3=False,
    )
    return replace(config, **overrides)


@pytest.fixture(scope="module")
def model(tiny_checkpoints: dict[str, Path]) -> inference.LoadedModel:
    return inference.load_engines(tiny_config(tiny_checkpoints))


def engine(model: inference.LoadedModel, mode: str) -> QwenEngine:
    found = model.engine_for(mode)
    assert isinstance(found, QwenEngine)
    return found


def call(model: inference.LoadedModel, body: dict[str, Any] | str | bytes, accept: str | None = None) -> Any:
    raw = json.dumps(body) if isinstance(body, dict) else body
    output = inference.output_fn(
        inference.predict_fn(inference.input_fn(raw, "application/json"), model), accept
    )
    return output if accept == "audio/wav" else json.loads(output)


def wav_of(seconds: float, rate: int = 24000, seed: int = 1) -> bytes:
    """A reference clip: a voiced-ish tone with noise (the weights are random anyway)."""
    t = np.arange(int(seconds * rate)) / rate
    audio = 0.3 * np.sin(2 * np.pi * 140 * t) + 0.02 * np.random.default_rng(seed).standard_normal(t.size)
    buffer = io.BytesIO()
    sf.write(buffer, audio.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


REF = base64.b64encode(wav_of(3.0)).decode()
CLONE = {"mode": "voice_clone", "language": "en", "ref_audio": REF, "ref_text": "A short reference sentence."}
SPEAKER = {"mode": "custom_voice", "speaker": "Aiden", "language": "en", "instruct": "calm, professional"}
DESIGN = {"mode": "voice_design", "instruct": "a warm alto, unhurried", "language": "english"}


def batch(voice: dict[str, Any], *texts: str, **extra: Any) -> dict[str, Any]:
    return {"voice": voice, "segments": [{"id": f"s{i}", "text": t} for i, t in enumerate(texts)]} | extra


def audio_of(entry: dict[str, Any]) -> np.ndarray:
    audio, rate = sf.read(io.BytesIO(base64.b64decode(entry["audio_base64"])), dtype="float32")
    assert rate == entry["sample_rate"] == 24000
    return audio


# --- every mode, single and batch ------------------------------------------------------------------


@pytest.mark.parametrize(
    "voice", [SPEAKER, CLONE, DESIGN], ids=["custom_voice", "voice_clone", "voice_design"]
)
def test_every_mode_in_the_single_form_existing_clients_send(
    model: inference.LoadedModel, voice: dict
) -> None:
    body = call(model, voice | {"text": "Press Connect to continue."})
    assert set(body) == {"audio_base64", "sample_rate", "mode"} and body["mode"] == voice["mode"]
    audio = audio_of(body)
    assert 0 < audio.size <= CAP_SAMPLES and np.isfinite(audio).all()
    wav = call(model, voice | {"text": "Press Connect to continue."}, "audio/wav")
    assert sf.info(io.BytesIO(wav)).samplerate == 24000


@pytest.mark.parametrize(
    "voice", [SPEAKER, CLONE, DESIGN], ids=["custom_voice", "voice_clone", "voice_design"]
)
def test_every_mode_in_the_batch_form(model: inference.LoadedModel, voice: dict) -> None:
    body = call(model, batch(voice, "Open the dashboard.", "Pick a data source.", "Share it."))
    assert [s["id"] for s in body["segments"]] == ["s0", "s1", "s2"]
    for entry in body["segments"]:
        audio = audio_of(entry)
        assert entry["error"] is None and entry["num_samples"] == audio.size > 0
        assert entry["duration_seconds"] == pytest.approx(audio.size / 24000, abs=1e-3)
        assert audio.size <= CAP_SAMPLES and entry["hit_frame_limit"] is (audio.size >= CAP_SAMPLES)
    assert body["model_id"] == engine(model, voice["mode"]).model_id


def test_x_vector_clone_needs_no_transcript(model: inference.LoadedModel) -> None:
    voice = {"mode": "voice_clone", "ref_audio": REF, "x_vector_only": True}
    assert audio_of(call(model, voice | {"text": "Hello."})).size > 0


def test_named_speakers_are_case_insensitive_and_instruct_may_be_empty(model: inference.LoadedModel) -> None:
    body = call(model, {"text": "Hi.", "speaker": "SERENA", "language": None, "instruct": ""})
    assert body["mode"] == "custom_voice"  # no mode = custom_voice, null language = auto


# --- speed: batching, frame caps, clone prompt reuse -------------------------------------------------


def test_frame_cap_follows_the_text_within_the_hard_cap() -> None:
    short, long = frame_cap("Hi.", 120), frame_cap("A much longer sentence to be read aloud. " * 3, 120)
    assert short < long
    assert frame_cap("你好，欢迎使用。", 120) > frame_cap("Hello, hi.", 120)  # CJK reads slower per char
    assert frame_cap("word " * 5000, 120) == 1500  # 120 s x 12.5 frames/s


def test_batches_group_similar_lengths_within_the_memory_budget() -> None:
    caps = [10, 200, 12, 190, 11, 205]
    assert plan_batches(caps, batch_size=3, batch_frames=10_000) == [[5, 1, 3], [2, 4, 0]]
    assert plan_batches(caps, batch_size=16, batch_frames=10_000) == [[5, 1, 3, 2, 4, 0]]
    # the longest go together; a short one fills a free slot (a batch costs what its longest item does)
    assert plan_batches(caps, batch_size=16, batch_frames=410) == [[5, 1], [3, 2], [4, 0]]


def test_a_batch_runs_in_as_few_generate_calls_as_allowed(tiny_checkpoints: dict[str, Path]) -> None:
    texts = [f"Segment number {i} of the render." for i in range(5)]
    for batch_size, calls in ((16, 1), (2, 3)):
        loaded = inference.load_engines(
            tiny_config(tiny_checkpoints, qwen_batch_size=batch_size, qwen_voice_design_model="none")
        )
        speaker = engine(loaded, "custom_voice")
        body = call(loaded, batch(SPEAKER, *texts))
        assert all(s["error"] is None for s in body["segments"])
        assert speaker.generate_calls == calls


def test_the_clone_prompt_is_built_once_per_voice(model: inference.LoadedModel, monkeypatch: Any) -> None:
    clone = engine(model, "voice_clone")
    built: list[int] = []
    original = clone.tts.create_voice_clone_prompt
    monkeypatch.setattr(
        clone.tts, "create_voice_clone_prompt", lambda **kw: built.append(1) or original(**kw)
    )
    voice = CLONE | {"ref_audio": base64.b64encode(wav_of(2.5, seed=7)).decode()}
    first = call(model, batch(voice, *[f"Line {i}." for i in range(6)]))
    call(model, batch(voice, "Another request, same voice."))
    call(model, voice | {"text": "And a single one."})
    assert len(built) == 1 and all(s["error"] is None for s in first["segments"])
    call(model, batch(voice | {"ref_text": "A different transcript."}, "Same clip, new text."))
    assert len(built) == 2  # the transcript is part of the prompt


def test_the_clone_prompt_persists_next_to_an_s3_clip(
    tiny_checkpoints: dict[str, Path], monkeypatch: Any
) -> None:
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        import boto3

        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="voices")
        s3.put_object(Bucket="voices", Key="narrator/ref.wav", Body=wav_of(3.0, seed=3))
        voice = CLONE | {"ref_audio": "s3://voices/narrator/ref.wav"}
        config = tiny_config(
            tiny_checkpoints,
            prompt_cache_s3=True,
            qwen_custom_voice_model="none",
            qwen_voice_design_model="none",
        )
        first = inference.load_engines(config)
        call(first, voice | {"text": "Hello."})
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="voices")["Contents"]]
        assert any(k.startswith("narrator/ref.wav.narrate-prompt-") for k in keys)
        assert engine(first, "voice_clone").prompts.stats.builds == 1

        second = inference.load_engines(config)  # a fresh instance after a scale-from-zero
        assert audio_of(call(second, voice | {"text": "Hello again."})).size > 0
        stats = engine(second, "voice_clone").prompts.stats
        assert (stats.builds, stats.s3_hits) == (0, 1)


# --- determinism --------------------------------------------------------------------------------------


def test_same_seed_same_audio_other_seed_other_audio(model: inference.LoadedModel) -> None:
    request = batch(SPEAKER, "Determinism matters.", "For the cache.", generation={"seed": 11})
    first, again = call(model, request), call(model, request)
    assert [s["audio_base64"] for s in first["segments"]] == [s["audio_base64"] for s in again["segments"]]
    other = call(model, request | {"generation": {"seed": 12}})
    assert first["segments"][0]["audio_base64"] != other["segments"][0]["audio_base64"]


# --- errors: per segment, and each bad input with its message -------------------------------------------


def test_one_bad_segment_does_not_fail_the_batch(model: inference.LoadedModel) -> None:
    request = batch(SPEAKER, "Fine.", "", "Also fine.")
    request["segments"].append({"id": "huge", "text": "x" * (MAX_TEXT_CHARS + 1)})
    body = call(model, request)
    errors = {s["id"]: s["error"] for s in body["segments"]}
    assert errors["s0"] is None and errors["s2"] is None
    assert errors["s1"].startswith("segments.1.text:")
    assert errors["huge"].startswith("segments.3.text:") and str(MAX_TEXT_CHARS) in errors["huge"]


def test_an_oom_splits_the_batch_and_a_lone_failure_stays_in_its_segment(
    model: inference.LoadedModel, monkeypatch: Any
) -> None:
    import torch

    speaker = engine(model, "custom_voice")
    original = speaker._generate
    sizes: list[int] = []

    def tight_memory(texts: list[str], *args: Any) -> Any:
        sizes.append(len(texts))
        if len(texts) > 1 or texts[0].startswith("Huge"):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return original(texts, *args)

    monkeypatch.setattr(speaker, "_generate", tight_memory)
    body = call(model, batch(SPEAKER, "One.", "Two.", "Huge three.", "Four."))
    errors = {s["id"]: s["error"] for s in body["segments"]}
    assert sizes[0] == 4 and max(sizes[1:]) < 4  # split, then split again
    assert [errors[k] for k in ("s0", "s1", "s3")] == [None, None, None]
    assert "out of GPU memory" in errors["s2"] and body["segments"][2]["retryable"] is True


def _http_server(payload: bytes) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/ref.wav"
    finally:
        server.shutdown()


@pytest.fixture
def reference_url() -> Iterator[str]:
    yield from _http_server(wav_of(3.0, seed=5))


def test_ref_audio_urls_need_an_allow_listed_host(
    tiny_checkpoints: dict[str, Path], reference_url: str, model: inference.LoadedModel
) -> None:
    with pytest.raises(RequestError, match="allow-listed") as refused:
        call(model, CLONE | {"ref_audio": reference_url, "text": "Hi."})
    assert refused.value.field == "ref_audio"
    allowed = inference.load_engines(
        tiny_config(
            tiny_checkpoints,
            ref_audio_allowed_hosts="127.0.0.1",
            qwen_custom_voice_model="none",
            qwen_voice_design_model="none",
        )
    )
    assert audio_of(call(allowed, CLONE | {"ref_audio": reference_url, "text": "Hi."})).size > 0


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"mode": "sing", "text": "x"}, "mode", "unknown mode"),
        ({"mode": "custom_voice", "text": "x", "speaker": "Bob"}, "speaker", "unknown speaker"),
        ({"mode": "custom_voice", "text": "x", "speaker": "aiden", "language": "xx"}, "language", "unknown"),
        (SPEAKER | {"text": ""}, "text", "at least 1 character"),
        (SPEAKER | {"text": "   "}, "text", "empty"),
        (SPEAKER | {"text": "y" * (MAX_TEXT_CHARS + 1)}, "text", str(MAX_TEXT_CHARS)),
        ({"mode": "voice_clone", "text": "x", "ref_text": "hi"}, "ref_audio", "required"),
        (CLONE | {"text": "x", "ref_audio": _b64(b"RIFF not really a wav")}, "ref_audio", "could not decode"),
        (CLONE | {"text": "x", "ref_audio": _b64(wav_of(1.0))}, "ref_audio", "1.0 s long"),
        (CLONE | {"text": "x", "ref_audio": _b64(wav_of(61.0))}, "ref_audio", "61.0 s long"),
        (CLONE | {"text": "x", "ref_audio": "/etc/passwd"}, "ref_audio", "local paths are refused"),
        (CLONE | {"text": "x", "ref_audio": "https://example.com/a.wav"}, "ref_audio", "allow-listed"),
        (CLONE | {"text": "x", "ref_text": ""}, "ref_text", "transcript"),
        (
            {"voice": CLONE | {"ref_text": None}, "segments": [{"id": "a", "text": "x"}]},
            "voice.ref_text",
            "transcript",
        ),
        (
            {"voice": DESIGN, "segments": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]},
            "segments",
            "duplicate",
        ),
    ],
)
def test_bad_input_gets_a_short_error_naming_the_field(
    model: inference.LoadedModel, body: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(RequestError) as caught:
        call(model, body)
    assert caught.value.field == field
    assert words in str(caught.value) and len(str(caught.value)) < 300


def test_oversized_payload_is_refused_before_parsing(model: inference.LoadedModel, monkeypatch: Any) -> None:
    from model_server import protocol

    monkeypatch.setattr(protocol, "MAX_BODY_BYTES", 1000)
    with pytest.raises(RequestError, match="over the 1000-byte limit") as caught:
        call(model, SPEAKER | {"text": "z" * 2000})
    assert caught.value.field == "body"


def test_the_worker_keeps_serving_after_bad_input(model: inference.LoadedModel) -> None:
    for bad in ({"mode": "voice_clone", "text": "x"}, "not json", {"mode": "custom_voice", "speaker": "x"}):
        with pytest.raises(RequestError):
            call(model, bad)
    assert audio_of(call(model, SPEAKER | {"text": "Still here."})).size > 0


def test_a_checkpoint_of_the_wrong_kind_fails_the_load(tiny_checkpoints: dict[str, Path]) -> None:
    config = tiny_config(tiny_checkpoints, qwen_base_model=str(tiny_checkpoints["custom_voice"]))
    with pytest.raises(ValueError, match=r"NARRATE_QWEN_BASE_MODEL: .* is a 'custom_voice' checkpoint"):
        inference.load_engines(config)
