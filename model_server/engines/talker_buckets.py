"""The talker's static shapes: batch buckets and key/value lengths (no torch: the engine plans with it).

A CUDA graph replays fixed shapes, so a call of ``rows`` segments runs in the smallest batch bucket
(1, 2, 4, 8, 16, 32, up to the configured batch size) that holds it, its spare rows copies of its
first. Each bucket's key/value buffer has a fixed number of columns; a step attends over the smallest
length (256, 512, 1024, ... up to the bucket's longest) that holds the columns written so far, so the
attention's cost follows the frame, not the buffer. Every bucket views the same storage, sized so that
any batch the engine plans fits: the engine counts a batch against ``NARRATE_QWEN_BATCH_FRAMES`` as its
bucket's rows times its longest frame cap, and each row also gets :data:`PROMPT_COLUMNS` for its prompt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PROMPT_COLUMNS = 512  # a row's prompt: role, codec tags, speaker; a clone's reference codes and text
SHORTEST_LENGTH = 256
COLUMN_ALIGNMENT = 64  # attention kernels like aligned mask rows


def batch_buckets(batch_size: int) -> tuple[int, ...]:
    """Powers of two from 1 to the first that holds ``batch_size``."""
    top = 1 << max(0, math.ceil(math.log2(max(1, batch_size))))
    return tuple(1 << i for i in range(top.bit_length()))


def bucket_for(rows: int, buckets: tuple[int, ...]) -> int:
    """The smallest bucket that holds ``rows``."""
    for bucket in buckets:
        if bucket >= rows:
            return bucket
    raise ValueError(f"{rows} rows do not fit the largest batch bucket ({buckets[-1]})")


@dataclass(frozen=True)
class CacheGrid:
    """Which (batch bucket, length) steps a model has, and how many columns each bucket's buffer has."""

    buckets: tuple[int, ...]
    longest: tuple[int, ...]  # per bucket: its buffer's columns
    shortest: int = SHORTEST_LENGTH

    @classmethod
    def plan(
        cls, batch_size: int, batch_frames: int, max_new_tokens: int, shortest: int = SHORTEST_LENGTH
    ) -> CacheGrid:
        """The grid for an engine that plans batches of at most ``batch_size`` rows and ``batch_frames``
        (bucket rows x longest cap), each item at most ``max_new_tokens`` talker steps."""
        buckets = batch_buckets(batch_size)
        storage = batch_frames + buckets[-1] * (PROMPT_COLUMNS + COLUMN_ALIGNMENT)
        needed = _align_up(PROMPT_COLUMNS + max_new_tokens)
        longest = tuple(max(COLUMN_ALIGNMENT, min(needed, _align_down(storage // b))) for b in buckets)
        return cls(buckets, longest, shortest)

    def columns(self, bucket: int) -> int:
        return self.longest[self.buckets.index(bucket)]

    def lengths(self, bucket: int) -> tuple[int, ...]:
        """The attention lengths of a bucket: doubling from the shortest, then its longest."""
        longest = self.columns(bucket)
        lengths = []
        length = self.shortest
        while length < longest:
            lengths.append(length)
            length *= 2
        return (*lengths, longest)

    def length_for(self, bucket: int, columns: int) -> int:
        for length in self.lengths(bucket):
            if length >= columns:
                return length
        raise ValueError(f"{columns} columns do not fit bucket {bucket} ({self.columns(bucket)})")

    def fits(self, rows: int, columns: int) -> bool:
        return rows <= self.buckets[-1] and columns <= self.columns(bucket_for(rows, self.buckets))

    @property
    def storage_columns(self) -> int:
        """Rows x columns of the largest bucket buffer: what the shared storage holds."""
        return max(b * n for b, n in zip(self.buckets, self.longest, strict=True))

    @property
    def steps(self) -> list[tuple[int, int]]:
        return [(b, length) for b in self.buckets for length in self.lengths(b)]


def _align_up(columns: int) -> int:
    return -(-columns // COLUMN_ALIGNMENT) * COLUMN_ALIGNMENT


def _align_down(columns: int) -> int:
    return columns // COLUMN_ALIGNMENT * COLUMN_ALIGNMENT
