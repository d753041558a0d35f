"""The talker's fixed-shape state per batch bucket, and how its steps are recorded.

Every bucket of a :class:`~model_server.engines.talker_buckets.CacheGrid` views the same key/value and
text storage (one call at a time uses it). Every (bucket, length) step is recorded once, at model load,
so no request ever pays for a capture.
A :class:`CudaGraphs` recorder captures on a GPU (all graphs of a model share one memory pool: they
never run at once); :class:`EagerSteps` "records" by keeping the step itself, which runs the very same
fixed-shape computation without a graph: the reference the benchmark compares the graphs with, and what
the tests drive on a CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from model_server.engines.fast_predictor import PredictorBuffers
from model_server.engines.talker_buckets import CacheGrid
from model_server.engines.talker_sampling import StaticSampler
from model_server.engines.talker_step import FrameTensors


@dataclass
class BucketState:
    """One batch bucket's tensors: its frame (viewing the shared storage), predictor buffers, sampler."""

    rows: int
    frame: FrameTensors
    predictor: PredictorBuffers
    sampler: StaticSampler


def bucket_states(talker: Any, grid: CacheGrid, do_sample: bool) -> dict[int, BucketState]:
    """Every bucket's state; the key/value and text buffers of all buckets share one storage."""
    config = talker.config
    device, dtype = talker.model.norm.weight.device, talker.model.norm.weight.dtype
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    heads = config.num_key_value_heads
    cells = grid.storage_columns
    layers = len(talker.model.layers)
    keys = [torch.zeros(cells * heads * head_dim, dtype=dtype, device=device) for _ in range(layers)]
    values = [torch.zeros(cells * heads * head_dim, dtype=dtype, device=device) for _ in range(layers)]
    text = torch.zeros(cells * config.hidden_size, dtype=dtype, device=device)
    predictor = talker.code_predictor
    states = {}
    for bucket in grid.buckets:
        columns = grid.columns(bucket)
        shape = (bucket, heads, columns, head_dim)
        size = math.prod(shape)
        frame = FrameTensors.allocate(talker, bucket, 1, device)  # the small tensors; views below
        frame.valid = torch.zeros(bucket, columns, dtype=torch.bool, device=device)
        frame.trailing = text[: bucket * columns * config.hidden_size].view(bucket, columns, -1)
        frame.keys = [storage[:size].view(shape) for storage in keys]
        frame.values = [storage[:size].view(shape) for storage in values]
        width = getattr(predictor.small_to_mtp_projection, "in_features", config.hidden_size)
        inputs = torch.zeros(bucket, 2, width, dtype=dtype, device=device)
        buffers = PredictorBuffers.for_predictor(predictor, inputs, config.num_code_groups - 1)
        sampler = StaticSampler(bucket, config.vocab_size, device, do_sample)
        states[bucket] = BucketState(bucket, frame, buffers, sampler)
    return states


class Recorder(Protocol):
    """Turns a fixed-shape step into something to replay: a CUDA graph, or the step itself."""

    recorded: int

    def record(self, step: Callable[[], None], device: torch.device) -> Callable[[], None]: ...


class EagerSteps:
    """Keeps each step as it is: the fixed-shape computation without a graph."""

    def __init__(self) -> None:
        self.recorded = 0

    def record(self, step: Callable[[], None], device: torch.device) -> Callable[[], None]:
        self.recorded += 1
        return step


class CudaGraphs:
    """Captures each step as a CUDA graph; the graphs of one model share one memory pool."""

    def __init__(self) -> None:
        self.recorded = 0
        self.graphs: list[torch.cuda.CUDAGraph] = []
        self.pool: Any = None

    def record(self, step: Callable[[], None], device: torch.device) -> Callable[[], None]:
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            step()  # lets cuBLAS and friends allocate their workspaces outside the graph
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool, capture_error_mode="thread_local"):
            step()
        if self.pool is None:
            self.pool = graph.pool()
        self.graphs.append(graph)
        self.recorded += 1
        return graph.replay
