"""The lean code-predictor loop gives exactly the codes qwen-tts's own ``generate`` gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from model_server.engines import fast_predictor

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
