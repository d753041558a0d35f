"""The lean code-predictor loop gives exactly the codes qwen-tts's own ``generate`` gives.

Its CUDA-graph replay runs only on a GPU; the model-server benchmark checks there that the graph draws
exactly the eager loop's codes from the same seed. Here: the eager loop, the sampling arithmetic the
graph relies on, and the switches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from model_server import inference
from model_server.config import ServerConfig
from model_server.engines import fast_predictor
from model_server.engines.fast_predictor import Sampling
from model_server.engines.qwen import QwenEngine

TEXTS = ["Open the dashboard.", "Then pick a data source for the first chart."]


def load(path: Path) -> Any:
    from qwen_tts import Qwen3TTSModel

    return Qwen3TTSModel.from_pretrained(
        str(path), device_map="cpu", dtype=torch.float32, attn_implementation="sdpa"
    )


@pytest.fixture(scope="module")
def stock_and_fast(tiny_checkpoints: dict[str, Path]) -> tuple[Any, Any]:
    stock, fast = load(tiny_checkpoints["custom_voice"]), load(tiny_checkpoints["custom_voice"])
    fast_predictor.install(fast)
    return stock, fast


@pytest.mark.parametrize(
    "sampling",
    [
        {"do_sample": False, "subtalker_dosample": False},
        {},  # the checkpoint's defaults: sampling with temperature and top-k
        {"subtalker_temperature": 0.7, "subtalker_top_k": 20, "subtalker_top_p": 0.8},
    ],
    ids=["greedy", "defaults", "top-p"],
)
def test_same_seed_same_audio_as_the_stock_loop(stock_and_fast: tuple[Any, Any], sampling: dict) -> None:
    outputs = []
    for model in stock_and_fast:
        torch.manual_seed(5)
        wavs, _ = model.generate_custom_voice(
            TEXTS, speaker="ryan", language="english", max_new_tokens=16, **sampling
        )
        outputs.append(wavs)
    stock, fast = outputs
    assert len(stock) == len(fast) == 2
    assert all(np.array_equal(a, b) for a, b in zip(stock, fast, strict=True))


def test_the_stock_loop_is_really_replaced(stock_and_fast: tuple[Any, Any], monkeypatch: Any) -> None:
    calls: list[int] = []
    original = fast_predictor.predict_codes
    monkeypatch.setattr(fast_predictor, "predict_codes", lambda *a: calls.append(1) or original(*a))
    stock_and_fast[1].generate_custom_voice(TEXTS[0], speaker="ryan", max_new_tokens=6)
    assert len(calls) >= 4  # once per generated frame


@pytest.mark.parametrize("masked", [0, 1000, 2047])
def test_sampling_without_a_host_sync_draws_what_multinomial_draws(masked: int) -> None:
    scores = torch.randn(16, 2048, generator=torch.Generator().manual_seed(masked))
    scores[:, :masked] = -float("inf")  # what top-k / top-p leave behind
    probs = torch.softmax(scores, dim=-1)
    draws = []
    for sample in (lambda: torch.multinomial(probs, 1).squeeze(1), lambda: fast_predictor.sample_one(probs)):
        torch.manual_seed(11)
        draws.append(torch.stack([sample() for _ in range(20)]))
    assert torch.equal(draws[0], draws[1])
    assert bool((draws[1] >= masked).all())


def test_without_a_gpu_the_predictor_runs_eagerly_and_captures_nothing(
    stock_and_fast: tuple[Any, Any],
) -> None:
    runner = fast_predictor.installed(stock_and_fast[1])
    assert runner is not None and runner.cuda_graphs
    predictor = stock_and_fast[1].model.talker.code_predictor
    width = getattr(predictor.small_to_mtp_projection, "in_features", predictor.config.hidden_size)
    inputs = torch.randn(3, 2, width)
    sampling = Sampling(True, 50, 1.0, 0.9)
    torch.manual_seed(3)
    codes = runner(inputs, 15, sampling)
    torch.manual_seed(3)
    assert torch.equal(codes, fast_predictor.predict_codes(predictor, inputs, 15, sampling))
    assert codes.shape == (3, 15) and runner.captures == 0 and not runner.graphs


@pytest.mark.parametrize(
    ("environment", "graphs"), [({}, True), ({"NARRATE_QWEN_CUDA_GRAPHS": "false"}, False)]
)
def test_cuda_graphs_follow_the_containers_setting(
    tiny_checkpoints: dict[str, Path], environment: dict[str, str], graphs: bool
) -> None:
    config = ServerConfig.from_env(environment)
    assert config.qwen_cuda_graphs is graphs
    tiny = ServerConfig(
        engines="qwen",
        qwen_custom_voice_model=str(tiny_checkpoints["custom_voice"]),
        qwen_base_model="none",
        qwen_cuda_graphs=config.qwen_cuda_graphs,
        prompt_cache_s3=False,
    )
    engine = inference.load_engines(tiny).engine_for("custom_voice")
    assert isinstance(engine, QwenEngine)
    runner = fast_predictor.installed(engine.tts)
    assert runner is not None and runner.cuda_graphs is graphs
