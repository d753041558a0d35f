"""The static talker loop gives exactly the codes qwen-tts's own ``generate`` gives.

Its CUDA graphs run only on a GPU, where the model-server benchmark checks them against the same
fixed-shape steps run eagerly, from the same seed. Here, on the tiny random-weight checkpoints: the
exact loop against the stock one (bit for bit, every mode and sampling setting, with left padding and
an early end of speech), the fixed-shape steps against the stock loop (greedy: a padded bucket draws
different random numbers by design), the tensor-valued sampler against Hugging Face's processors, the
bucket arithmetic, and that every step is recorded at model load and none at request time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from model_server import inference
from model_server.config import ServerConfig
from model_server.engines import fast_predictor, static_talker
from model_server.engines.qwen import QwenEngine, plan_batches
from model_server.engines.talker_buckets import CacheGrid, batch_buckets, bucket_for
from model_server.engines.talker_graphs import CudaGraphs, EagerSteps
from model_server.engines.talker_sampling import (
    StaticSampler,
    TalkerSampling,
    choose_like_generate,
    hf_processors,
)

TEXTS = ["Open the dashboard.", "Then pick a data source for the first chart.", "Share it."]
GREEDY = {"do_sample": False, "subtalker_dosample": False}
SAMPLINGS = {
    "greedy": GREEDY,
    "defaults": {},  # the checkpoint's: temperature 0.9, top-k 50, repetition penalty 1.05
    "top-p": {"temperature": 0.7, "top_k": 20, "top_p": 0.8, "repetition_penalty": 1.3},
}


def load(path: Path) -> Any:
    from qwen_tts import Qwen3TTSModel

    return Qwen3TTSModel.from_pretrained(
        str(path), device_map="cpu", dtype=torch.float32, attn_implementation="sdpa"
    )


def lean(path: Path, recorder: Any = None, grid: CacheGrid | None = None, **defaults: Any) -> Any:
    """A model with both lean loops; ``recorder`` records the fixed-shape talker steps."""
    tts = load(path)
    fast_predictor.install(tts)
    grid = grid or CacheGrid.plan(batch_size=4, batch_frames=400, max_new_tokens=40, shortest=16)
    assert static_talker.install(tts, grid, recorder, defaults or None) is not None
    return tts


def speak(tts: Any, texts: list[str], frames: int, **sampling: Any) -> list[np.ndarray]:
    torch.manual_seed(5)
    wavs, _ = tts.generate_custom_voice(
        texts, speaker="ryan", language="english", max_new_tokens=frames, **sampling
    )
    return wavs


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def stock(tiny_checkpoints: dict[str, Path]) -> Any:
    return load(tiny_checkpoints["custom_voice"])


@pytest.fixture(scope="module")
def exact(tiny_checkpoints: dict[str, Path]) -> Any:
    return lean(tiny_checkpoints["custom_voice"])


@pytest.mark.parametrize("sampling", SAMPLINGS.values(), ids=SAMPLINGS.keys())
@pytest.mark.parametrize("rows", [1, 3], ids=["one", "padded"])
def test_the_exact_loop_gives_the_stock_loops_audio(
    stock: Any, exact: Any, sampling: dict, rows: int
) -> None:
    runner = static_talker.installed(exact)
    assert runner is not None
    calls = runner.calls["exact"]
    outputs = [speak(model, TEXTS[:rows], 16, **sampling) for model in (stock, exact)]
    assert same(*outputs)
    assert runner.calls["exact"] == calls + 1  # really the static loop, not the stock one


def test_an_early_end_of_speech_cuts_the_same_frames(stock: Any, exact: Any) -> None:
    outputs = [speak(model, TEXTS, 16, **SAMPLINGS["top-p"]) for model in (stock, exact)]
    assert same(*outputs)
    assert len({wav.size for wav in outputs[1]}) > 1  # one row drew the end of speech before the others


def test_a_clone_prompt_gives_the_stock_loops_audio(tiny_checkpoints: dict[str, Path]) -> None:
    rate = 24000
    reference = (np.random.default_rng(3).standard_normal(2 * rate).astype(np.float32) * 0.1, rate)
    outputs = []
    for model in (load(tiny_checkpoints["voice_clone"]), lean(tiny_checkpoints["voice_clone"])):
        torch.manual_seed(8)
        wavs, _ = model.generate_voice_clone(
            TEXTS[:2], language="english", ref_audio=reference, ref_text="A reference.", max_new_tokens=12
        )
        outputs.append(wavs)
    assert same(*outputs)


def test_fixed_shape_steps_give_the_stock_codes(stock: Any, tiny_checkpoints: dict[str, Path]) -> None:
    """Three rows run in bucket 4 (a spare row), attending over two lengths as frames add up."""
    recorder = EagerSteps()
    bucketed = lean(tiny_checkpoints["custom_voice"], recorder, **GREEDY)
    runner = static_talker.installed(bucketed)
    assert runner is not None and recorder.recorded == len(runner.grid.steps)
    used: list[tuple[int, int]] = []
    for key, step in list(runner.steps.items()):
        runner.steps[key] = lambda key=key, step=step: used.append(key) or step()
    outputs = [speak(model, TEXTS, 40, **GREEDY) for model in (stock, bucketed)]
    assert same(*outputs)
    assert runner.calls == {"exact": 0, "bucketed": 1}
    assert {bucket for bucket, _ in used} == {4} and len({length for _, length in used}) == 2


def test_a_call_that_does_not_fit_the_recorded_steps_runs_exactly(
    stock: Any, tiny_checkpoints: dict[str, Path]
) -> None:
    grid = CacheGrid(buckets=(1, 2, 4), longest=(64, 64, 64), shortest=16)
    bucketed = lean(tiny_checkpoints["custom_voice"], EagerSteps(), grid, **GREEDY)
    outputs = [speak(model, TEXTS[:1], 60, **GREEDY) for model in (stock, bucketed)]  # prompt + 59 > 64
    assert same(*outputs)
    runner = static_talker.installed(bucketed)
    assert runner is not None and runner.calls == {"exact": 1, "bucketed": 0}


# --- the sampler with tensor settings ---------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"do_sample": False},
        {"temperature": 0.9, "top_k": 50, "top_p": 1.0, "repetition_penalty": 1.05},
        {"temperature": 0.7, "top_k": 20, "top_p": 0.8, "repetition_penalty": 1.3},
        {"temperature": 1.3, "top_k": None, "top_p": 0.35, "repetition_penalty": None},
    ],
    ids=["greedy", "defaults", "top-p", "no-top-k"],
)
def test_the_static_sampler_draws_what_generates_processors_draw(settings: dict) -> None:
    vocab, rows, eos = 3072, 4, 2150
    options = {"do_sample": True, "min_new_tokens": 2, "eos_token_id": eos,
               "suppress_tokens": [i for i in range(vocab - 1024, vocab) if i != eos]} | settings  # fmt: skip
    sampling = TalkerSampling.from_generate_kwargs(options, default_pad=None)
    sampler = StaticSampler(rows, vocab, torch.device("cpu"), sampling.do_sample)
    sampler.start(sampling)
    processors = hf_processors(sampling, torch.device("cpu"))
    generator = torch.Generator().manual_seed(sum(map(ord, str(settings))))
    generated = torch.empty(rows, 0, dtype=torch.long)
    unfinished = torch.ones(rows, dtype=torch.bool)
    ends = torch.tensor([1, 2, 5, 30])  # from which step each row's end of speech dominates
    for step in range(12):
        logits = torch.randn(rows, vocab, generator=generator)
        logits[:, :8] += 8.0  # a few favourite codes come back: the repetition penalty has work
        logits[:, eos] += 40.0 * (step >= ends)  # row 0 asks at step 1: too early (min_new_tokens 2)
        torch.manual_seed(step)
        expected = choose_like_generate(processors, generated, logits.clone(), sampling.do_sample)
        expected = torch.where(unfinished, expected, sampling.pad)
        torch.manual_seed(step)
        before = unfinished.clone()
        drawn = sampler.choose(logits.clone(), unfinished)
        assert torch.equal(drawn, expected), step
        assert torch.equal(unfinished, before & (expected != eos))
        generated = torch.cat((generated, expected[:, None]), dim=1)
    assert unfinished.tolist() == [False, False, False, True]
    assert generated[0, 1].item() != eos and generated[0, 2].item() == eos == generated[1, 2].item()


# --- buckets -----------------------------------------------------------------------------------------


def test_batch_buckets_are_powers_of_two_up_to_the_batch_size() -> None:
    assert batch_buckets(16) == (1, 2, 4, 8, 16)
    assert batch_buckets(12) == (1, 2, 4, 8, 16)
    assert batch_buckets(32) == (1, 2, 4, 8, 16, 32)
    assert batch_buckets(1) == (1,)
    assert [bucket_for(rows, batch_buckets(16)) for rows in (1, 2, 3, 5, 9, 16)] == [1, 2, 4, 8, 16, 16]
    with pytest.raises(ValueError, match="17 rows"):
        bucket_for(17, batch_buckets(16))


def test_the_grid_holds_every_batch_the_engine_plans() -> None:
    grid = CacheGrid.plan(batch_size=16, batch_frames=12000, max_new_tokens=1501)  # the defaults
    assert grid.buckets == (1, 2, 4, 8, 16)
    assert grid.lengths(1) == (256, 512, 1024, 2048)  # a 120 s segment after a full prompt
    assert grid.lengths(16) == (256, 512, 1024, grid.columns(16)) and grid.columns(16) % 64 == 0
    assert grid.length_for(16, 257) == 512 and grid.length_for(1, 2048) == 2048
    assert grid.storage_columns == max(b * grid.columns(b) for b in grid.buckets) < 12000 + 16 * 600
    caps = [1500, 700, 700, 700, 300, 300, 300, 300, 300, 80, 80, 80, 80, 80, 80, 80, 80, 80]
    for batch in plan_batches(caps, 16, 12000, grid.buckets):
        rows, longest = len(batch), max(caps[i] for i in batch)
        assert grid.fits(rows, 512 + longest), (rows, longest)  # any prompt up to PROMPT_COLUMNS
    assert not grid.fits(17, 100) and not grid.fits(1, 2049)


def test_planning_counts_a_batch_as_the_rows_of_its_bucket() -> None:
    caps = [300] * 5
    assert plan_batches(caps, 16, 1500) == [[0, 1, 2, 3, 4]]  # 5 rows x 300
    assert plan_batches(caps, 16, 1500, batch_buckets(16)) == [[0, 1, 2, 3], [4]]  # bucket 8 x 300 > 1500


# --- recording at load ----------------------------------------------------------------------------


def tiny_engine(tiny_checkpoints: dict[str, Path]) -> QwenEngine:
    config = ServerConfig(
        engines="qwen",
        qwen_custom_voice_model=str(tiny_checkpoints["custom_voice"]),
        qwen_base_model="none",
        qwen_max_segment_seconds=1.0,
        qwen_batch_size=4,
        prompt_cache_s3=False,
    )
    engine = inference.load_engines(config).engine_for("custom_voice")
    assert isinstance(engine, QwenEngine)
    return engine


def test_every_step_is_recorded_at_load_and_none_at_request_time(
    tiny_checkpoints: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorders: list[EagerSteps] = []
    monkeypatch.setattr(
        static_talker, "default_recorder", lambda *_: recorders.append(EagerSteps()) or recorders[-1]
    )
    engine = tiny_engine(tiny_checkpoints)
    runner = static_talker.installed(engine.tts)
    assert runner is not None and runner.recorder is recorders[0]
    assert recorders[0].recorded == len(runner.grid.steps) == len(runner.steps) > 0
    assert runner.grid.buckets == (1, 2, 4)
    from model_server.protocol import CustomVoiceRequest, GenerationRequest, SegmentRequest

    voice = CustomVoiceRequest(mode="custom_voice", speaker="ryan", language="english")
    segments = [SegmentRequest(id=f"s{i}", text=text) for i, text in enumerate(TEXTS)]
    results = engine.synthesize(voice, segments, GenerationRequest(seed=3, temperature=0.8, top_k=30))
    assert all(r.error is None and r.audio is not None for r in results)
    assert recorders[0].recorded == len(runner.grid.steps)  # nothing recorded for the request
    assert runner.calls == {"exact": 0, "bucketed": 1}  # its settings went into the recorded steps


def test_on_a_cpu_nothing_is_recorded_and_the_exact_loop_runs(tiny_checkpoints: dict[str, Path]) -> None:
    engine = tiny_engine(tiny_checkpoints)
    runner = static_talker.installed(engine.tts)
    assert runner is not None and runner.recorder is None and not runner.steps
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert isinstance(static_talker.default_recorder(gpu, True), CudaGraphs)
    assert static_talker.default_recorder(gpu, False) is None  # NARRATE_QWEN_CUDA_GRAPHS=false
    assert static_talker.default_recorder(cpu, True) is None
