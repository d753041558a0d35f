"""Qwen3-TTS's talker loop without Hugging Face ``generate``: a static key/value cache, CUDA graphs.

qwen-tts runs the talker's 28 layers through ``generate`` once per codec frame; after the code
predictor became a graph (:mod:`model_server.engines.fast_predictor`), that loop's bookkeeping and
kernel launches were most of each frame. :func:`install` replaces this model's ``talker.generate`` with
:class:`StaticTalker`, which runs the prompt through the talker's own forward once and then every frame
as :func:`model_server.engines.talker_step.frame_step`: two forms of one computation.

- Exact (a CPU, a GPU with graphs off, or a call that does not fit the graphs): the frame loop over
  exactly the rows and columns of the call, Hugging Face's own processors and draw. The same codes as
  qwen-tts's stock loop, bit for bit, from the same seed (tested).
- Bucketed (a GPU): the call's rows padded to a batch bucket, attention over fixed lengths, settings in
  device tensors; every (bucket, length) step recorded at model load (:mod:`talker_graphs`), so a
  request only replays. The benchmark checks the graphs against the same steps run eagerly, from the
  same seed, before it reports a figure.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch

from model_server.engines.fast_predictor import Sampling, decode_codes
from model_server.engines.talker_buckets import CacheGrid, bucket_for
from model_server.engines.talker_graphs import BucketState, CudaGraphs, Recorder, bucket_states
from model_server.engines.talker_sampling import TalkerSampling, choose_like_generate, hf_processors
from model_server.engines.talker_step import Attend, FrameTensors, Predict, Prefill, frame_step, prefill

log = logging.getLogger("narrate.model_server.static_talker")

# What qwen-tts passes to talker.generate; anything else goes to the stock loop.
KNOWN_OPTIONS = frozenset(
    {
        "inputs_embeds", "attention_mask", "trailing_text_hidden", "tts_pad_embed", "max_new_tokens",
        "min_new_tokens", "do_sample", "top_k", "top_p", "temperature", "repetition_penalty",
        "subtalker_dosample", "subtalker_top_k", "subtalker_top_p", "subtalker_temperature",
        "eos_token_id", "suppress_tokens", "output_hidden_states", "return_dict_in_generate",
    }
)  # fmt: skip
Outputs = list[tuple[tuple[torch.Tensor, ...], torch.Tensor | None]]


def install(
    tts: Any, grid: CacheGrid, recorder: Recorder | None, defaults: dict[str, Any] | None = None
) -> StaticTalker | None:
    """Route this model's talker loop through a :class:`StaticTalker` (this instance only). With a
    recorder, every bucketed step is recorded now, for the model's default sampling (or ``defaults``,
    qwen-tts's generate keywords). None when the talker's own generation config asks for a processor
    this loop does not implement (the stock loop then stays)."""
    talker = tts.model.talker
    unusual = _unusual_generation_settings(talker.generation_config)
    if unusual:
        log.warning("talker generation config sets %s; keeping the stock talker loop", ", ".join(unusual))
        return None
    runner = StaticTalker(talker, grid, recorder, tts._merge_generate_kwargs(**(defaults or {})))
    talker.stock_generate = getattr(talker, "stock_generate", talker.generate)
    talker.static_talker = runner
    route(tts, runner)
    if recorder is not None:
        runner.record_all()
    return runner


def installed(tts: Any) -> StaticTalker | None:
    return getattr(tts.model.talker, "static_talker", None)


def route(tts: Any, runner: StaticTalker | None) -> None:
    """Send this model's talker loop through ``runner``, or back through the stock ``generate``."""
    talker = tts.model.talker
    talker.generate = talker.stock_generate if runner is None else runner.generate


@dataclass(frozen=True)
class _Call:
    """One ``talker.generate`` call, as qwen-tts makes it."""

    inputs_embeds: torch.Tensor
    attention_mask: torch.Tensor
    trailing_text_hidden: torch.Tensor
    tts_pad_embed: torch.Tensor
    max_new_tokens: int
    sampling: TalkerSampling
    predictor: Sampling

    @property
    def rows(self) -> int:
        return self.inputs_embeds.shape[0]

    @property
    def prompt(self) -> int:
        return self.inputs_embeds.shape[1]


class StaticTalker:
    """The talker's decoding loop with a static key/value cache; bucketed and recorded when asked."""

    def __init__(
        self, talker: Any, grid: CacheGrid, recorder: Recorder | None, defaults: dict[str, Any]
    ) -> None:
        self.talker = talker
        self.grid = grid
        self.recorder = recorder
        self.device = talker.model.norm.weight.device
        # A graph bakes in whether the talker samples and the code predictor's settings: the defaults.
        self.recorded_for = (bool(defaults["do_sample"]), _predictor_sampling(defaults))
        self.states: dict[int, BucketState] = {}
        self.steps: dict[tuple[int, int], Callable[[], None]] = {}
        self.record_seconds = 0.0
        self.calls = {"exact": 0, "bucketed": 0}
        self._lock = threading.Lock()  # one call at a time uses the buckets' buffers

    def generate(self, **options: Any) -> SimpleNamespace:
        """``talker.generate``'s call as qwen-tts makes it; the stock loop for anything else."""
        if set(options) - KNOWN_OPTIONS:
            return self.talker.stock_generate(**options)
        call = _Call(
            inputs_embeds=options["inputs_embeds"],
            attention_mask=options["attention_mask"],
            trailing_text_hidden=options["trailing_text_hidden"],
            tts_pad_embed=options["tts_pad_embed"],
            max_new_tokens=int(options["max_new_tokens"]),
            sampling=TalkerSampling.from_generate_kwargs(options, self.talker.generation_config.pad_token_id),
            predictor=_predictor_sampling(options),
        )
        with torch.inference_mode():
            if self._recorded(call):
                with self._lock:
                    self.calls["bucketed"] += 1
                    return SimpleNamespace(hidden_states=self._bucketed(call))
            self.calls["exact"] += 1
            return SimpleNamespace(hidden_states=self._exact(call))

    def record_all(self) -> None:
        """Record every (bucket, length) step: at model load, so no request pays for it."""
        assert self.recorder is not None
        started = time.perf_counter()
        with self._lock, torch.inference_mode():
            rng = _rng_state(self.device)  # warm-ups draw numbers: a request's codes depend on its seed only
            self.states = bucket_states(self.talker, self.grid, self.recorded_for[0])
            for bucket, length in self.grid.steps:
                state = self.states[bucket]
                state.frame.rewind()
                step = self._bucketed_step(state, length)
                self.steps[(bucket, length)] = self.recorder.record(step, self.device)
            _set_rng_state(self.device, rng)
        self.record_seconds = time.perf_counter() - started
        log.info("recorded %d talker steps (%s) in %.1f s", len(self.steps),
                 type(self.recorder).__name__, self.record_seconds)  # fmt: skip

    def eager_steps(self) -> dict[tuple[int, int], Callable[[], None]]:
        """The recorded steps' own computation, not recorded: the same buffers, the same draws. What the
        benchmark checks the CUDA graphs against before it reports a figure."""
        return {
            (bucket, length): self._bucketed_step(self.states[bucket], length)
            for bucket, length in self.steps
        }

    # --- exact: the stock loop's arithmetic --------------------------------------------------------

    def _exact(self, call: _Call) -> Outputs:
        first = _prefill(self.talker, call)
        frame = FrameTensors.allocate(self.talker, call.rows, call.prompt + call.max_new_tokens, self.device)
        _load(frame, call, first, call.rows)
        processors = hf_processors(call.sampling, self.device)
        generated = torch.empty(call.rows, 0, dtype=torch.long, device=self.device)
        frame.unfinished.fill_(True)
        outputs: Outputs = [((first.past_hidden,), None)]
        logits = first.logits
        padded = not bool(call.attention_mask.all())
        predict = self._stock_predictor(call.predictor)
        while True:
            token = choose_like_generate(processors, generated, logits, call.sampling.do_sample)
            token = torch.where(frame.unfinished, token, call.sampling.pad)
            generated = torch.cat((generated, token[:, None]), dim=-1)
            frame.unfinished.logical_and_(token != call.sampling.eos)
            frame.token.copy_(token)
            if generated.shape[1] >= call.max_new_tokens or not bool(frame.unfinished.any()):
                return outputs
            attend = Attend(call.prompt + generated.shape[1], exact=True, padded=padded)
            logits = frame_step(self.talker, frame, predict, attend)
            outputs.append(((frame.past_hidden.clone(),), frame.codec_ids.clone()))

    def _stock_predictor(self, sampling: Sampling) -> Predict:
        predictor = self.talker.code_predictor

        def predict(inputs: torch.Tensor) -> torch.Tensor:
            return predictor.generate(
                inputs_embeds=inputs,
                max_new_tokens=self.talker.config.num_code_groups - 1,
                do_sample=sampling.do_sample,
                top_p=sampling.top_p,
                top_k=sampling.top_k,
                temperature=sampling.temperature,
                output_hidden_states=True,
                return_dict_in_generate=True,
            ).sequences

        return predict

    # --- bucketed: fixed shapes, replayed -----------------------------------------------------------

    def _recorded(self, call: _Call) -> bool:
        if not self.steps or (call.sampling.do_sample, call.predictor) != self.recorded_for:
            return False
        if self.grid.fits(call.rows, call.prompt + call.max_new_tokens - 1):
            return True
        log.warning("a call of %d rows x %d columns does not fit the recorded talker steps; "
                    "it runs eagerly", call.rows, call.prompt + call.max_new_tokens - 1)  # fmt: skip
        return False

    def _bucketed(self, call: _Call) -> Outputs:
        state = self.states[bucket_for(call.rows, self.grid.buckets)]
        frame, rows = state.frame, call.rows
        first = _prefill(self.talker, call)
        _load(frame, call, first, rows)
        state.sampler.start(call.sampling)
        frame.unfinished.copy_(torch.arange(state.rows, device=self.device) < rows)
        frame.token.copy_(state.sampler.choose(_pad_rows(first.logits, state.rows), frame.unfinished))
        outputs: Outputs = [((first.past_hidden,), None)]
        for generated in range(1, call.max_new_tokens):
            if not bool(frame.unfinished.any()):
                break
            length = self.grid.length_for(state.rows, call.prompt + generated)
            self.steps[(state.rows, length)]()
            outputs.append(((frame.past_hidden[:rows].clone(),), frame.codec_ids[:rows].clone()))
        return outputs

    def _bucketed_step(self, state: BucketState, length: int) -> Callable[[], None]:
        predictor, sampling = self.talker.code_predictor, self.recorded_for[1]
        groups = self.talker.config.num_code_groups

        def predict(inputs: torch.Tensor) -> torch.Tensor:
            return decode_codes(predictor, inputs, groups - 1, sampling, state.predictor)

        def step() -> None:
            logits = frame_step(self.talker, state.frame, predict, Attend(length, exact=False))
            state.frame.token.copy_(state.sampler.choose(logits, state.frame.unfinished))

        return step


def _prefill(talker: Any, call: _Call) -> Prefill:
    return prefill(
        talker,
        call.inputs_embeds,
        call.attention_mask,
        trailing_text_hidden=call.trailing_text_hidden,
        tts_pad_embed=call.tts_pad_embed,
    )


def _load(frame: FrameTensors, call: _Call, first: Prefill, rows: int) -> None:
    """A call's starting point into a frame's tensors; rows past ``rows`` become copies of the first."""
    prompt, spare = call.prompt, frame.token.shape[0] - rows
    for buffers, prompt_values in ((frame.keys, first.keys), (frame.values, first.values)):
        for buffer, values in zip(buffers, prompt_values, strict=True):
            buffer[:, :, :prompt].copy_(_pad_rows(values, frame.token.shape[0]))
    frame.valid.zero_()
    frame.valid[:, :prompt].copy_(_pad_rows(call.attention_mask.bool(), frame.token.shape[0]))
    text = call.trailing_text_hidden[:, : frame.columns]
    frame.trailing.copy_(call.tts_pad_embed.expand_as(frame.trailing))
    frame.trailing[:rows, : text.shape[1]].copy_(text)
    if spare:
        frame.trailing[rows:].copy_(frame.trailing[:1].expand(spare, -1, -1))
    frame.past_hidden.copy_(_pad_rows(first.past_hidden, frame.token.shape[0]))
    frame.positions.copy_(_pad_rows(first.positions, frame.token.shape[0]))
    frame.write.fill_(prompt)
    frame.step.zero_()


def _pad_rows(tensor: torch.Tensor, rows: int) -> torch.Tensor:
    """``tensor`` with copies of its first row appended up to ``rows`` rows."""
    spare = rows - tensor.shape[0]
    if spare == 0:
        return tensor
    return torch.cat((tensor, tensor[:1].expand(spare, *tensor.shape[1:])), dim=0)


def _predictor_sampling(options: dict[str, Any]) -> Sampling:
    return Sampling(
        bool(options.get("subtalker_dosample", True)),
        options.get("subtalker_top_k"),
        options.get("subtalker_top_p"),
        options.get("subtalker_temperature"),
    )


# Generation settings that would add a processor this loop does not implement, with their off value.
_UNSUPPORTED_OFF = {
    "guidance_scale": None, "sequence_bias": None, "encoder_repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0, "encoder_no_repeat_ngram_size": 0, "bad_words_ids": None, "min_length": 0,
    "forced_bos_token_id": None, "forced_eos_token_id": None, "remove_invalid_values": False,
    "exponential_decay_length_penalty": None, "begin_suppress_tokens": None, "min_p": None,
    "typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0, "num_beams": 1, "renormalize_logits": False,
    "watermarking_config": None,
}  # fmt: skip


def _unusual_generation_settings(config: Any) -> list[str]:
    return [name for name, off in _UNSUPPORTED_OFF.items() if getattr(config, name, off) not in (off, None)]


def _rng_state(device: torch.device) -> torch.Tensor:
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


def _set_rng_state(device: torch.device, state: torch.Tensor) -> None:
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    else:
        torch.set_rng_state(state)


def default_recorder(device: torch.device, cuda_graphs: bool) -> Recorder | None:
    """CUDA graphs on a GPU when they are on; otherwise no recording (the exact loop)."""
    return CudaGraphs() if cuda_graphs and device.type == "cuda" else None
