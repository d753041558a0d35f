"""A lean decoding loop for Qwen3-TTS's code predictor, in place of Hugging Face ``generate``.

For every codec frame the talker asks its code predictor for 15 more codes, and qwen-tts does that with
a full ``generate`` call: a deep copy of the generation config, a fresh logits-processor list, stopping
criteria and a device sync on every token. That bookkeeping, not the GPU, sets the speed of the stock
library (3-6 frames a second whatever the batch). This loop does the same computation — the same
forward passes, the same temperature / top-k / top-p warpers in the same order, ``torch.multinomial``
on the same probabilities — so with the same seed it gives the same codes (tested against the stock
path), with none of the per-call overhead.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch
from transformers.cache_utils import DynamicCache


def install(tts: Any) -> None:
    """Route this loaded model's code predictor through :func:`predict_codes` (this instance only)."""
    predictor = tts.model.talker.code_predictor

    def generate(
        inputs_embeds: torch.Tensor,
        max_new_tokens: int,
        do_sample: bool = True,
        top_k: int | None = None,
        top_p: float | None = None,
        temperature: float | None = None,
        **_: Any,
    ) -> SimpleNamespace:
        codes = predict_codes(predictor, inputs_embeds, max_new_tokens, do_sample, top_k, top_p, temperature)
        return SimpleNamespace(sequences=codes)

    predictor.generate = generate


@torch.inference_mode()
def predict_codes(
    predictor: Any,
    inputs_embeds: torch.Tensor,
    steps: int,
    do_sample: bool,
    top_k: int | None,
    top_p: float | None,
    temperature: float | None,
) -> torch.Tensor:
    """(batch, steps) codes; ``inputs_embeds`` is (batch, 2, talker hidden): past hidden + first code."""
    batch, prompt = inputs_embeds.shape[:2]
    device = inputs_embeds.device
    cache = DynamicCache()
    mask = torch.ones(batch, prompt + steps, dtype=torch.long, device=device)
    positions = torch.arange(prompt + steps, device=device)
    hidden = predictor.small_to_mtp_projection(inputs_embeds)
    codes: list[torch.Tensor] = []
    start = 0
    for step in range(steps):
        end = start + hidden.shape[1]
        output = predictor.model(
            inputs_embeds=hidden,
            attention_mask=mask[:, :end],
            position_ids=positions[start:end].unsqueeze(0).expand(batch, -1),
            past_key_values=cache,
            use_cache=True,
            cache_position=positions[start:end],
        )
        logits = predictor.lm_head[step](output.last_hidden_state[:, -1, :]).float()
        code = _choose(logits, do_sample, top_k, top_p, temperature)
        codes.append(code)
        start = end
        if step + 1 < steps:
            hidden = predictor.small_to_mtp_projection(
                predictor.model.get_input_embeddings()[step](code[:, None])
            )
    return torch.stack(codes, dim=1)


def _choose(
    logits: torch.Tensor, do_sample: bool, top_k: int | None, top_p: float | None, temperature: float | None
) -> torch.Tensor:
    """Hugging Face's token selection: greedy, or temperature -> top-k -> top-p -> multinomial."""
    if not do_sample:
        return torch.argmax(logits, dim=-1)
    scores = logits
    if temperature is not None and temperature != 1.0:
        scores = scores / temperature
    if top_k is not None and top_k != 0:
        k = min(max(top_k, 1), scores.shape[-1])
        threshold = torch.topk(scores, k)[0][..., -1, None]
        scores = scores.masked_fill(scores < threshold, -float("inf"))
    if top_p is not None and top_p < 1.0:
        sorted_scores, sorted_indices = torch.sort(scores, descending=False)
        cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
        remove_sorted = cumulative <= (1 - top_p)
        remove_sorted[..., -1:] = False
        remove = remove_sorted.scatter(1, sorted_indices, remove_sorted)
        scores = scores.masked_fill(remove, -float("inf"))
    probs = torch.nn.functional.softmax(scores, dim=-1)
    return torch.multinomial(probs, num_samples=1).squeeze(1)
