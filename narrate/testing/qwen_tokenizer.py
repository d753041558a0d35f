"""The byte-level BPE text tokenizer of the random-weight Qwen3-TTS checkpoints
(:mod:`narrate.testing.qwen_checkpoint`): Qwen's id layout (151643 BPE ids, mostly reserved fillers,
then Qwen's 33 added tokens) and a check that it cuts qwen-tts's chat template where qwen-tts slices it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from qwen_tts.core.models import Qwen3TTSProcessor
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

TEXT_VOCAB_SIZE = 151936
IM_START_ID = 151644
IM_END_ID = 151645
ASSISTANT_ID = 77091
NEWLINE_ID = 198
TTS_PAD_ID = 151671
TTS_BOS_ID = 151672
TTS_EOS_ID = 151673


class CheckpointError(RuntimeError):
    """The checkpoint would not behave like a published one (the build refuses to finish)."""


# Qwen's added tokens from <|endoftext|> (151643) on, in id order; the tool and think tags are not special.
_ADDED_TOKENS: tuple[str, ...] = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>",
    "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
    "<tool_response>", "</tool_response>", "<think>", "</think>", "<|audio_start|>", "<|audio_end|>",
    "<tts_pad>", "<tts_text_bos>", "<tts_text_eod>", "<tts_text_bos_single>", "<|audio_pad|>",
)  # fmt: skip
_FIRST_ADDED_ID = 151643
_NOT_SPECIAL = frozenset(
    {"<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>"}
)
# Qwen2's pre-tokenizer split.
_QWEN_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_BPE_MERGES = 600
_CORPUS = """\
Welcome to the product tour. In this short demo we open the dashboard, create a new project and
invite a teammate. The narrator speaks clearly and calmly, with a warm and friendly voice.
Click the blue button in the top right corner to start. A dialog opens where you type a name.
Then choose a template: the simple one is fine for now. Press save and wait a second or two.
Your project appears in the list. Open it to see the timeline, the scenes and the captions.
Each scene has a script; the voice reads it aloud while the video plays. You can change the
speaker, the language and the speed. The audio is rendered on a server and cached, so a second
render of the same sentence is instant. When you are happy, export the video and share the link.
The assistant answers questions about settings, billing and the team. The user asks, the
assistant replies. The system keeps track of every render, every voice and every change.
Hello there. A second, longer sentence here. Thank you for watching, and have a great day!
"""
_ROLE_WORDS = ("assistant", "user", "system")


def write_text_tokenizer(root: Path) -> None:
    for name, content in _tokenizer_files():
        (root / name).write_text(content, encoding="utf-8")


@functools.cache
def _tokenizer_files() -> tuple[tuple[str, str], ...]:
    """A byte-level BPE trained on a small built-in corpus, laid out like Qwen's tokenizer files.

    Ids follow Qwen's layout: the 256 byte symbols first in GPT-2 order (so "\\n" is 198), then the
    trained merges, ``assistant`` moved to its real id 77091, reserved filler tokens in every other id
    below 151643 (a vocabulary with holes makes the Rust serializer print every hole, and qwen-tts
    serializes the tokenizer on each load), and the added tokens from 151643 on.
    """
    spec = json.loads(_train_bpe().to_str())
    vocab = _vocab_with_real_ids(spec["model"]["vocab"])
    spec["model"]["vocab"] = vocab
    spec["added_tokens"] = [
        _added_token_entry(token, token_id) for token, token_id in _added_token_ids().items()
    ]
    spec["post_processor"] = {
        "type": "ByteLevel",
        "add_prefix_space": False,
        "trim_offsets": False,
        "use_regex": False,
    }
    merges = "\n".join(["#version: 0.2", *(" ".join(pair) for pair in spec["model"]["merges"])]) + "\n"
    return (
        ("tokenizer.json", json.dumps(spec, ensure_ascii=False)),
        ("vocab.json", json.dumps(vocab, ensure_ascii=False)),
        ("merges.txt", merges),
        ("tokenizer_config.json", json_text(_tokenizer_config())),
    )


def _vocab_with_real_ids(trained: Mapping[str, int]) -> dict[str, int]:
    if "assistant" not in trained:
        raise CheckpointError("the trained BPE has no single token for 'assistant'")
    by_id = {token_id: token for token, token_id in trained.items() if token != "assistant"}
    if max(by_id) >= ASSISTANT_ID:
        raise CheckpointError(
            f"the trained BPE has {len(by_id)} tokens, too many to keep id {ASSISTANT_ID} free"
        )
    by_id[ASSISTANT_ID] = "assistant"
    return {by_id.get(token_id, f"<|reserved_{token_id}|>"): token_id for token_id in range(_FIRST_ADDED_ID)}


def _train_bpe() -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN_SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=256 + _BPE_MERGES,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus_lines(), trainer=trainer)
    return tokenizer


def _corpus_lines() -> Iterator[str]:
    yield from _CORPUS.splitlines()
    for _ in range(64):
        yield " ".join(_ROLE_WORDS)
        yield "\n".join(_ROLE_WORDS)


def _added_token_ids() -> dict[str, int]:
    return {token: _FIRST_ADDED_ID + offset for offset, token in enumerate(_ADDED_TOKENS)}


def _added_token_entry(token: str, token_id: int) -> dict[str, Any]:
    return {
        "id": token_id,
        "content": token,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": False,
        "special": token not in _NOT_SPECIAL,
    }


def _tokenizer_config() -> dict[str, Any]:
    decoder = {}
    for token, token_id in _added_token_ids().items():
        entry = _added_token_entry(token, token_id)
        del entry["id"]
        decoder[str(token_id)] = entry
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": decoder,
        "additional_special_tokens": [
            token
            for token in _ADDED_TOKENS[1:]
            if token not in _NOT_SPECIAL  # all but <|endoftext|>
        ],
        "bos_token": None,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def check_chat_slicing(root: Path) -> None:
    """Fail unless the processor qwen-tts loads cuts its chat template where qwen-tts slices it.

    qwen-tts takes ``input_ids[:, :3]`` as the role prefix, ``[:, 3:-5]`` as the text of an input and
    ``[:, 3:-2]`` as the text of a reference transcript.
    """
    tokenizer = Qwen3TTSProcessor.from_pretrained(str(root), fix_mistral_regex=True).tokenizer
    role = [IM_START_ID, ASSISTANT_ID, NEWLINE_ID]
    text = "Hello there, this is a test."
    _expect_ids(tokenizer, "<|im_start|>assistant\n", role)
    ids = tokenizer(f"<|im_start|>assistant\n{text}<|im_end|>\n<|im_start|>assistant\n").input_ids
    _expect(
        ids[:3] == role and ids[-5:] == [IM_END_ID, NEWLINE_ID, *role], f"input template cut wrongly: {ids}"
    )
    _expect(tokenizer.decode(ids[3:-5]) == text, f"input text does not round-trip: {ids[3:-5]}")
    ref_ids = tokenizer(f"<|im_start|>assistant\n{text}<|im_end|>\n").input_ids
    _expect(ref_ids[-2:] == [IM_END_ID, NEWLINE_ID], f"reference template cut wrongly: {ref_ids}")
    for token, token_id in {
        "<tts_pad>": TTS_PAD_ID,
        "<tts_text_bos>": TTS_BOS_ID,
        "<tts_text_eod>": TTS_EOS_ID,
    }.items():
        _expect_ids(tokenizer, token, [token_id])
    _expect(tokenizer.pad_token_id is not None, "the tokenizer has no pad token")


def _expect_ids(tokenizer: Any, text: str, expected: list[int]) -> None:
    ids = tokenizer(text).input_ids
    _expect(ids == expected, f"{text!r} encodes to {ids}, expected {expected}")


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckpointError(message)


def json_text(content: Mapping[str, Any]) -> str:
    return json.dumps(content, indent=2, ensure_ascii=False) + "\n"
