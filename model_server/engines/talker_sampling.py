"""How the talker picks each frame's first code: Hugging Face's logits processors as qwen-tts sets them up.

``generate`` runs, in this order: repetition penalty, at least ``min_new_tokens`` before the codec's
end-of-speech, the suppressed control codes, then (sampling only) temperature, top-k, top-p and a
multinomial draw. Two forms of the same arithmetic:

- :func:`hf_processors`: Hugging Face's own processor classes, switched on exactly when ``generate``
  switches them on (the eager loop; the same floats as the stock path, bit for bit).
- :class:`StaticSampler`: every step applied always, each setting a tensor on the device whose "off"
  value is an exact no-op (temperature 1, top-k = the whole vocabulary, a top-p cut below zero, penalty
  1), the generated codes kept as a mask instead of a growing list, and the draw without a host sync.
  One CUDA graph then serves every request's temperature, top-k, top-p and penalty. Tested against
  :func:`hf_processors` on the same scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from transformers.generation.logits_process import (
    LogitsProcessorList,
    MinNewTokensLengthLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    SuppressTokensLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from model_server.engines.fast_predictor import sample_one


@dataclass(frozen=True)
class TalkerSampling:
    """The talker's selection settings of one ``generate`` call (qwen-tts's keyword arguments)."""

    do_sample: bool
    temperature: float | None
    top_k: int | None
    top_p: float | None
    repetition_penalty: float | None
    min_new_tokens: int
    eos: int
    pad: int
    suppress: tuple[int, ...]

    @classmethod
    def from_generate_kwargs(cls, options: Mapping[str, Any], default_pad: int | None) -> TalkerSampling:
        eos = int(options["eos_token_id"])
        return cls(
            do_sample=bool(options.get("do_sample", True)),
            temperature=options.get("temperature"),
            top_k=options.get("top_k"),
            top_p=options.get("top_p"),
            repetition_penalty=options.get("repetition_penalty"),
            min_new_tokens=int(options.get("min_new_tokens") or 0),
            eos=eos,
            pad=eos if default_pad is None else int(default_pad),  # generate's own fallback
            suppress=tuple(int(i) for i in options.get("suppress_tokens") or ()),
        )


def hf_processors(sampling: TalkerSampling, device: torch.device) -> LogitsProcessorList:
    """The processors ``generate`` builds for these settings, in its order (transformers 4.57)."""
    s = sampling
    processors = LogitsProcessorList()
    if s.repetition_penalty is not None and s.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(penalty=s.repetition_penalty))
    if s.min_new_tokens > 0:
        eos = torch.tensor([s.eos], device=device)
        processors.append(MinNewTokensLengthLogitsProcessor(0, s.min_new_tokens, eos, device=device))
    if s.suppress:
        processors.append(SuppressTokensLogitsProcessor(s.suppress, device=device))
    if s.do_sample:
        if s.temperature is not None and s.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(s.temperature))
        if s.top_k is not None and s.top_k != 0:
            processors.append(TopKLogitsWarper(top_k=s.top_k, min_tokens_to_keep=1))
        if s.top_p is not None and s.top_p < 1.0:
            processors.append(TopPLogitsWarper(top_p=s.top_p, min_tokens_to_keep=1))
    return processors


def choose_like_generate(
    processors: LogitsProcessorList, generated: torch.Tensor, logits: torch.Tensor, do_sample: bool
) -> torch.Tensor:
    """``generate``'s token selection: the processors over the codes so far, then a draw or argmax."""
    scores = processors(generated, logits)
    if do_sample:
        return torch.multinomial(torch.nn.functional.softmax(scores, dim=-1), num_samples=1).squeeze(1)
    return torch.argmax(scores, dim=-1)


class StaticSampler:
    """The same selection with fixed shapes: settings and history live in device tensors."""

    def __init__(self, batch: int, vocab: int, device: torch.device, do_sample: bool) -> None:
        self.do_sample = do_sample  # the one setting baked into a captured graph
        self.vocab = vocab
        scalar = {"dtype": torch.float32, "device": device}
        self.temperature = torch.ones((), **scalar)
        self.top_k_index = torch.full((batch, 1), vocab - 1, dtype=torch.long, device=device)
        self.top_p_cut = torch.full((), -1.0, **scalar)
        self.penalty = torch.ones((), **scalar)
        self.min_new_tokens = torch.zeros((), dtype=torch.long, device=device)
        self.eos = torch.zeros((), dtype=torch.long, device=device)
        self.pad = torch.zeros((), dtype=torch.long, device=device)
        self.suppressed = torch.zeros(vocab, dtype=torch.bool, device=device)
        self.seen = torch.zeros(batch, vocab, dtype=torch.bool, device=device)
        self.count = torch.zeros((), dtype=torch.long, device=device)  # codes generated so far

    def start(self, sampling: TalkerSampling) -> None:
        """Load one call's settings and forget the last call's codes (outside any graph)."""
        s = sampling
        self.temperature.fill_(s.temperature if s.do_sample and s.temperature is not None else 1.0)
        k = s.top_k if s.do_sample and s.top_k else self.vocab
        self.top_k_index.fill_(min(max(k, 1), self.vocab) - 1)
        # generate compares the cumulative probabilities in float32 with the float32 of 1 - top_p
        self.top_p_cut.fill_(1 - s.top_p if s.do_sample and s.top_p is not None and s.top_p < 1.0 else -1.0)
        self.penalty.fill_(s.repetition_penalty if s.repetition_penalty is not None else 1.0)
        self.min_new_tokens.fill_(s.min_new_tokens)
        self.eos.fill_(s.eos)
        self.pad.fill_(s.pad)
        self.suppressed.zero_()
        if s.suppress:
            self.suppressed[list(s.suppress)] = True
        self.seen.zero_()
        self.count.zero_()

    def choose(self, logits: torch.Tensor, unfinished: torch.Tensor) -> torch.Tensor:
        """The next codes (finished rows get the pad code); updates the history and ``unfinished``."""
        scores = logits
        penalised = torch.where(scores < 0, scores * self.penalty, scores / self.penalty)
        scores = torch.where(self.seen, penalised, scores)
        vocab = torch.arange(self.vocab, device=scores.device)
        too_early = (vocab == self.eos) & (self.count < self.min_new_tokens)
        scores = scores.masked_fill(too_early | self.suppressed, -float("inf"))
        if self.do_sample:
            scores = scores / self.temperature
            kth = torch.sort(scores, dim=-1, descending=True)[0].gather(-1, self.top_k_index)
            scores = scores.masked_fill(scores < kth, -float("inf"))
            sorted_scores, order = torch.sort(scores, descending=False)
            cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
            remove_sorted = cumulative <= self.top_p_cut
            remove_sorted[..., -1:] = False
            scores = scores.masked_fill(remove_sorted.scatter(1, order, remove_sorted), -float("inf"))
            tokens = sample_one(torch.nn.functional.softmax(scores, dim=-1))
        else:
            tokens = torch.argmax(scores, dim=-1)
        tokens = torch.where(unfinished, tokens, self.pad)
        unfinished.logical_and_(tokens != self.eos)
        self.seen.scatter_(1, tokens[:, None], True)
        self.count.add_(1)
        return tokens
