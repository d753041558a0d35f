"""One frame of Qwen3-TTS's talker as a static computation: what ``generate`` does per codec frame.

A frame step reads the last first-group code and the last hidden state, asks the code predictor for the
other 15 codes, embeds all 16 (plus the next text token), runs the talker's layers over one position
against a key/value buffer allocated once, and returns the next logits. Everything that changes from
frame to frame lives in device tensors updated in place (the cache column written, the text index, the
M-RoPE positions, which columns each row may see), so the same step can be captured once as a CUDA
graph and replayed for every frame.

The arithmetic is the talker's own: its modules, qwen-tts's multimodal rotary embedding and, for the
exact form, Hugging Face's SDPA attention over exactly the columns written so far, with the mask
``generate`` would build: the same floats as the stock loop. The bucketed form attends over a fixed
number of columns (masking those not yet written, and the left padding) and folds the query heads of
each key/value head into one SDPA call instead of repeating keys and values: what a graph needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from qwen_tts.core.models.modeling_qwen3_tts import apply_multimodal_rotary_pos_emb
from transformers.integrations.sdpa_attention import sdpa_attention_forward

Predict = Callable[[torch.Tensor], torch.Tensor]  # (batch, 2, hidden) -> (batch, 15) codes


@dataclass(frozen=True)
class Attend:
    """Which key columns one step attends over, and how."""

    columns: int  # columns 0..columns-1 of the buffers
    exact: bool  # generate's own attention (the eager loop) or the fixed-shape one (graphs)
    padded: bool = True  # exact only: some row has left padding, so generate passes a mask


@dataclass
class FrameTensors:
    """Everything a frame step reads and writes, allocated once per call (eager) or per bucket (graphs)."""

    token: torch.Tensor  # (batch,) the last first-group code
    unfinished: torch.Tensor  # (batch,) bool
    past_hidden: torch.Tensor  # (batch, 1, hidden) the talker's last normed hidden state
    positions: torch.Tensor  # (batch, 1) float32: the next token's rotary position, as generate has it
    write: torch.Tensor  # (1,) the cache column the next token's key and value go to
    step: torch.Tensor  # (1,) generation step: which trailing text token is added
    valid: torch.Tensor  # (batch, columns) bool: the columns each row may attend to
    trailing: torch.Tensor  # (batch, columns, hidden): text still to speak, tts_pad beyond its end
    keys: list[torch.Tensor]  # per layer (batch, key/value heads, columns, head dim)
    values: list[torch.Tensor]
    codec_ids: torch.Tensor  # (batch, groups): the frame the last step completed

    @classmethod
    def allocate(cls, talker: Any, batch: int, columns: int, device: torch.device) -> FrameTensors:
        config = talker.config
        dtype = talker.model.norm.weight.dtype
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        shape = (batch, config.num_key_value_heads, columns, head_dim)
        layers = len(talker.model.layers)
        return cls(
            token=torch.zeros(batch, dtype=torch.long, device=device),
            unfinished=torch.zeros(batch, dtype=torch.bool, device=device),
            past_hidden=torch.zeros(batch, 1, config.hidden_size, dtype=dtype, device=device),
            positions=torch.zeros(batch, 1, dtype=torch.float32, device=device),
            write=torch.zeros(1, dtype=torch.long, device=device),
            step=torch.zeros(1, dtype=torch.long, device=device),
            valid=torch.zeros(batch, columns, dtype=torch.bool, device=device),
            trailing=torch.zeros(batch, columns, config.hidden_size, dtype=dtype, device=device),
            keys=[torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)],
            values=[torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)],
            codec_ids=torch.zeros(batch, config.num_code_groups, dtype=torch.long, device=device),
        )

    @property
    def columns(self) -> int:
        return self.valid.shape[1]

    def rewind(self) -> None:
        """A harmless state to warm a step up on before its capture (no column out of range)."""
        for tensor in (self.token, self.write, self.step, self.positions, self.valid, self.unfinished):
            tensor.zero_()


@dataclass(frozen=True)
class Prefill:
    """The prompt's pass through the talker (the stock forward, once a call): what the loop starts from."""

    logits: torch.Tensor  # (rows, vocab) float32: the first code's scores
    past_hidden: torch.Tensor  # (rows, 1, hidden)
    keys: list[torch.Tensor]  # per layer (rows, key/value heads, prompt, head dim)
    values: list[torch.Tensor]
    positions: torch.Tensor  # (rows, 1) float32: the first generated token's rotary position


def prefill(talker: Any, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, **text: Any) -> Prefill:
    """The talker's forward over the whole prompt, as ``generate``'s first iteration calls it."""
    from transformers.cache_utils import DynamicCache

    prompt = inputs_embeds.shape[1]
    cache = DynamicCache()
    cache_position = torch.arange(prompt, device=inputs_embeds.device)
    out = talker(
        inputs_embeds=inputs_embeds,
        attention_mask=attention_mask,
        past_key_values=cache,
        use_cache=True,
        cache_position=cache_position,
        return_dict=True,
        **text,
    )
    # generate's later steps: cache_position[0] + the rope deltas this pass left on the talker
    first = torch.arange(prompt, prompt + 1, device=inputs_embeds.device)[0]
    positions = torch.arange(1, device=inputs_embeds.device).view(1, -1).expand(inputs_embeds.shape[0], -1)
    return Prefill(
        logits=out.logits[:, -1, :].to(copy=True, dtype=torch.float32),
        past_hidden=out.past_hidden,
        keys=[layer.keys for layer in cache.layers],
        values=[layer.values for layer in cache.layers],
        positions=positions.add(first + talker.rope_deltas),
    )


def frame_step(talker: Any, frame: FrameTensors, predict: Predict, attend: Attend) -> torch.Tensor:
    """One codec frame: completes ``frame.codec_ids`` for the last code and returns the next logits."""
    frame.valid.index_fill_(1, frame.write, True)
    last_id_hidden = talker.get_input_embeddings()(frame.token[:, None])
    codes = predict(torch.cat((frame.past_hidden, last_id_hidden), dim=1))
    frame.codec_ids.copy_(torch.cat((frame.token[:, None], codes), dim=-1))
    embeddings = talker.code_predictor.get_input_embeddings()
    codec_hiddens = torch.cat(
        [last_id_hidden] + [embeddings[i](codes[..., i : i + 1]) for i in range(codes.shape[1])], dim=1
    )
    hidden = codec_hiddens.sum(1, keepdim=True) + frame.trailing.index_select(1, frame.step)
    rotary = talker.model.rotary_emb(hidden, frame.positions[None].expand(3, -1, -1))
    for index, layer in enumerate(talker.model.layers):
        hidden = _layer_step(layer, hidden, rotary, frame, index, attend)
    hidden = talker.model.norm(hidden)
    frame.past_hidden.copy_(hidden[:, -1:, :])
    logits = talker.codec_head(hidden)[:, -1, :].to(copy=True, dtype=torch.float32)
    frame.write.add_(1)
    frame.step.add_(1)
    frame.positions.add_(1)
    return logits


def _layer_step(
    layer: Any,
    hidden: torch.Tensor,
    rotary: tuple[torch.Tensor, torch.Tensor],
    frame: FrameTensors,
    index: int,
    attend: Attend,
) -> torch.Tensor:
    """The talker's decoder layer (Qwen3TTSTalkerDecoderLayer.forward) over one new position."""
    attn = layer.self_attn
    residual = hidden
    hidden = layer.input_layernorm(hidden)
    shape = (*hidden.shape[:-1], -1, attn.head_dim)
    query = attn.q_norm(attn.q_proj(hidden).view(shape)).transpose(1, 2)
    key = attn.k_norm(attn.k_proj(hidden).view(shape)).transpose(1, 2)
    value = attn.v_proj(hidden).view(shape).transpose(1, 2)
    cos, sin = rotary
    mrope = attn.rope_scaling
    query, key = apply_multimodal_rotary_pos_emb(
        query, key, cos, sin, mrope["mrope_section"], mrope["interleaved"]
    )
    frame.keys[index].index_copy_(2, frame.write, key)
    frame.values[index].index_copy_(2, frame.write, value)
    keys = frame.keys[index][:, :, : attend.columns]
    values = frame.values[index][:, :, : attend.columns]
    visible = frame.valid[:, None, None, : attend.columns]
    if attend.exact:
        mask = visible if attend.padded else None
        out, _ = sdpa_attention_forward(
            attn, query, keys, values, mask, dropout=0.0, scaling=attn.scaling, sliding_window=None
        )
    else:
        out = _grouped_attention(query, keys, values, visible, attn.scaling)
    hidden = residual + attn.o_proj(out.reshape(*hidden.shape[:-1], -1).contiguous())
    residual = hidden
    return residual + layer.mlp(layer.post_attention_layernorm(hidden))


def _grouped_attention(
    query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, visible: torch.Tensor, scale: float
) -> torch.Tensor:
    """One query position against grouped key/value heads, as (batch, 1, heads, head dim): the query
    heads sharing a key/value head become rows of one attention, so no key or value is copied."""
    batch, heads, _, head_dim = query.shape
    grouped = query.reshape(batch, keys.shape[1], heads // keys.shape[1], head_dim)
    attention = torch.nn.functional.scaled_dot_product_attention
    out = attention(grouped, keys, values, attn_mask=visible, scale=scale)
    return out.reshape(batch, heads, 1, head_dim).transpose(1, 2)
