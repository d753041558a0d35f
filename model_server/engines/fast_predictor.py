"""A lean decoding loop for Qwen3-TTS's code predictor, in place of Hugging Face ``generate``.

For every codec frame the talker asks its code predictor for 15 more codes, and qwen-tts does that with
a full ``generate`` call: a deep copy of the generation config, a fresh logits-processor list, stopping
criteria and a device sync on every token. That bookkeeping, not the GPU, sets the speed of the stock
library (3-6 frames a second whatever the batch).

The 15 steps always have the same shapes (a 2-token prompt, then one token at a time up to 16), so
this loop runs them as one static computation: key/value buffers allocated once, the rotary table
computed once, no attention mask (the prompt step is causal, every later step sees everything
before it), and sampling without a host sync. On a GPU that whole computation is captured once per
batch size and sampling setting as a CUDA graph and replayed for every frame: about 2,000 kernel
launches from Python become one.

It does the same computation as the stock path — the model's own layers, the same temperature /
top-k / top-p warpers in the same order, and ``torch.multinomial``'s own sampling arithmetic — so
with the same seed it gives the same codes (tested against the stock path on CPU, and graph against
eager on a GPU by the model-server benchmark).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch

log = logging.getLogger("narrate.model_server.fast_predictor")

MAX_GRAPHS = 32  # one per (batch size, sampling setting) seen; each holds a few MB of GPU memory


@dataclass(frozen=True)
class Sampling:
    do_sample: bool
    top_k: int | None
    top_p: float | None
    temperature: float | None


def install(tts: Any, cuda_graphs: bool = True) -> StaticPredictor:
    """Route this loaded model's code predictor through a :class:`StaticPredictor` (this instance only)."""
    runner = StaticPredictor(tts.model.talker.code_predictor, cuda_graphs)

    def generate(inputs_embeds: torch.Tensor, max_new_tokens: int, **options: Any) -> SimpleNamespace:
        """Hugging Face ``generate``'s call as qwen-tts makes it: the sampling options, the rest ignored."""
        sampling = Sampling(
            bool(options.get("do_sample", True)), options.get("top_k"), options.get("top_p"),
            options.get("temperature"),
        )  # fmt: skip
        codes = runner(inputs_embeds, max_new_tokens, sampling)
        return SimpleNamespace(sequences=codes)

    tts.model.talker.code_predictor.generate = generate
    tts.model.talker.code_predictor.static_predictor = runner
    return runner


def installed(tts: Any) -> StaticPredictor | None:
    """The runner :func:`install` put on this model, if any."""
    return getattr(tts.model.talker.code_predictor, "static_predictor", None)


class StaticPredictor:
    """The code predictor's decoding loop with static shapes; CUDA-graphed on a GPU."""

    def __init__(self, predictor: Any, cuda_graphs: bool = True) -> None:
        self.predictor = predictor
        self.cuda_graphs = cuda_graphs
        self.graphs: OrderedDict[tuple[Any, ...], _Captured] = OrderedDict()
        self.captures = 0
        self._lock = threading.Lock()  # a graph's buffers serve one call at a time

    @torch.inference_mode()
    def __call__(self, inputs_embeds: torch.Tensor, steps: int, sampling: Sampling) -> torch.Tensor:
        """(batch, steps) codes; ``inputs_embeds`` is (batch, 2, talker hidden): past hidden + first code."""
        if not (self.cuda_graphs and inputs_embeds.is_cuda):
            return predict_codes(self.predictor, inputs_embeds, steps, sampling)
        key = (tuple(inputs_embeds.shape), inputs_embeds.dtype, inputs_embeds.device, steps, sampling)
        with self._lock:
            captured = self.graphs.get(key)
            if captured is None:
                try:
                    captured = self._capture(inputs_embeds, steps, sampling)
                except torch.cuda.OutOfMemoryError:
                    raise  # the engine splits the batch and tries again
                except RuntimeError:
                    log.exception("CUDA graph capture failed; the code predictor runs eagerly from now on")
                    self.cuda_graphs = False
                    return predict_codes(self.predictor, inputs_embeds, steps, sampling)
                self.graphs[key] = captured
                if len(self.graphs) > MAX_GRAPHS:
                    self.graphs.popitem(last=False)
            self.graphs.move_to_end(key)
            captured.inputs.copy_(inputs_embeds)
            captured.graph.replay()
            return captured.codes.clone()

    def _capture(self, inputs_embeds: torch.Tensor, steps: int, sampling: Sampling) -> _Captured:
        # Warming up and capturing draw random numbers; put the generator back so a request's codes
        # depend on its seed only, not on whether its graph was captured before.
        rng = torch.cuda.get_rng_state(inputs_embeds.device)
        inputs = inputs_embeds.clone()
        buffers = PredictorBuffers.for_predictor(self.predictor, inputs, steps)
        side = torch.cuda.Stream(inputs.device)
        side.wait_stream(torch.cuda.current_stream(inputs.device))
        with torch.cuda.stream(side):
            for _ in range(2):  # lets cuBLAS and friends allocate their workspaces outside the graph
                decode_codes(self.predictor, inputs, steps, sampling, buffers)
        torch.cuda.current_stream(inputs.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            codes = decode_codes(self.predictor, inputs, steps, sampling, buffers)
        torch.cuda.set_rng_state(rng, inputs_embeds.device)
        self.captures += 1
        return _Captured(graph, inputs, codes, buffers)


@dataclass
class _Captured:
    graph: torch.cuda.CUDAGraph
    inputs: torch.Tensor
    codes: torch.Tensor
    buffers: PredictorBuffers  # kept alive: the graph writes into them


@dataclass
class PredictorBuffers:
    """Per-layer key/value buffers for the whole loop, and the rotary table for its positions."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    cos: torch.Tensor
    sin: torch.Tensor

    @classmethod
    def for_predictor(cls, predictor: Any, inputs_embeds: torch.Tensor, steps: int) -> PredictorBuffers:
        model = predictor.model
        config = model.config
        batch, prompt = inputs_embeds.shape[:2]
        length = prompt + steps - 1  # the last code is never fed back
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        shape = (batch, config.num_key_value_heads, length, head_dim)
        dtype, device = model.norm.weight.dtype, inputs_embeds.device
        layers = len(model.layers[: config.num_hidden_layers])
        keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        positions = torch.arange(length, device=device).unsqueeze(0)
        cos, sin = model.rotary_emb(torch.zeros(1, dtype=dtype, device=device), positions)
        return cls(keys, values, cos, sin)


class _StaticCache:
    """What the model's attention layers call ``past_key_values``: writes into fixed buffers."""

    def __init__(self, buffers: PredictorBuffers) -> None:
        self.buffers = buffers
        self.start = 0

    def update(
        self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, cache_kwargs: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.start + key.shape[2]
        keys, values = self.buffers.keys[layer_idx], self.buffers.values[layer_idx]
        keys[:, :, self.start : end].copy_(key)
        values[:, :, self.start : end].copy_(value)
        return keys[:, :, :end], values[:, :, :end]


def predict_codes(
    predictor: Any, inputs_embeds: torch.Tensor, steps: int, sampling: Sampling
) -> torch.Tensor:
    """(batch, steps) codes, computed eagerly (CPU, or a GPU with graphs off)."""
    buffers = PredictorBuffers.for_predictor(predictor, inputs_embeds, steps)
    return decode_codes(predictor, inputs_embeds, steps, sampling, buffers)


def decode_codes(
    predictor: Any, inputs_embeds: torch.Tensor, steps: int, sampling: Sampling, buffers: PredictorBuffers
) -> torch.Tensor:
    model = predictor.model
    cache = _StaticCache(buffers)
    hidden = predictor.small_to_mtp_projection(inputs_embeds)
    codes: list[torch.Tensor] = []
    for step in range(steps):
        end = cache.start + hidden.shape[1]
        position_embeddings = (buffers.cos[:, cache.start : end], buffers.sin[:, cache.start : end])
        for layer in model.layers[: model.config.num_hidden_layers]:
            hidden = layer(
                hidden, attention_mask=None, past_key_values=cache, position_embeddings=position_embeddings
            )[0]
        cache.start = end
        last = model.norm(hidden[:, -1, :])
        code = _choose(predictor.lm_head[step](last).float(), sampling)
        codes.append(code)
        if step + 1 < steps:
            hidden = predictor.small_to_mtp_projection(model.get_input_embeddings()[step](code[:, None]))
    return torch.stack(codes, dim=1)


def _choose(logits: torch.Tensor, sampling: Sampling) -> torch.Tensor:
    """Hugging Face's token selection: greedy, or temperature -> top-k -> top-p -> multinomial."""
    if not sampling.do_sample:
        return torch.argmax(logits, dim=-1)
    scores = logits
    if sampling.temperature is not None and sampling.temperature != 1.0:
        scores = scores / sampling.temperature
    if sampling.top_k is not None and sampling.top_k != 0:
        k = min(max(sampling.top_k, 1), scores.shape[-1])
        threshold = torch.topk(scores, k)[0][..., -1, None]
        scores = scores.masked_fill(scores < threshold, -float("inf"))
    if sampling.top_p is not None and sampling.top_p < 1.0:
        sorted_scores, sorted_indices = torch.sort(scores, descending=False)
        cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
        remove_sorted = cumulative <= (1 - sampling.top_p)
        remove_sorted[..., -1:] = False
        remove = remove_sorted.scatter(1, sorted_indices, remove_sorted)
        scores = scores.masked_fill(remove, -float("inf"))
    probs = torch.nn.functional.softmax(scores, dim=-1)
    return sample_one(probs)


def sample_one(probs: torch.Tensor) -> torch.Tensor:
    """``torch.multinomial(probs, 1)``'s own arithmetic (exponential race, argmax), the same draws from
    the same generator, without its validity check, which syncs with the host and cannot be captured."""
    race = torch.empty_like(probs).exponential_(1)
    return torch.argmax(probs / race, dim=-1)
