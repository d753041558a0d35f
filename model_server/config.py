"""The container's configuration: read once from its environment at model load, every knob named here.

The orchestration side builds the same object and writes it out with :meth:`ServerConfig.to_env` as
the SageMaker model's Environment, so what a local run loads and what the endpoint loads cannot differ.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

DEFAULT_CUSTOM_VOICE_MODEL = "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice"
DEFAULT_BASE_MODEL = "Qwen/Qwen3-TTS-12Hz-1.7B-Base"
DEFAULT_VOICE_DESIGN_MODEL = "Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign"
DEFAULT_MODELS = {
    "custom_voice": DEFAULT_CUSTOM_VOICE_MODEL,
    "voice_clone": DEFAULT_BASE_MODEL,
    "voice_design": DEFAULT_VOICE_DESIGN_MODEL,
}
OFF = ("", "none", "off")
_SAMPLE_BYTES = 1 << 20


# The request modes each engine without checkpoints serves (qwen's depend on its checkpoints). An engine
# registered into inference.ENGINE_FACTORIES at run time (the benchmarks') registers its modes here.
ENGINE_MODES: dict[str, frozenset[str]] = {"dev": frozenset({"dev"}), "piper": frozenset({"piper"})}


@dataclass(frozen=True)
class ServerConfig:
    """What ``model_fn`` loads and how the engines behave; each knob's variable is ``NARRATE_<NAME>``."""

    engines: str = "dev,piper"  # comma list of engines: dev (eSpeak NG), piper (Piper voices), qwen
    # Each Qwen checkpoint: a directory (absolute, or relative to the model directory, where weights
    # shipped inside model.tar.gz land) or a Hugging Face hub id; "none" leaves that mode unserved.
    qwen_custom_voice_model: str = DEFAULT_CUSTOM_VOICE_MODEL
    qwen_base_model: str = DEFAULT_BASE_MODEL
    qwen_voice_design_model: str = "none"
    qwen_device: str = "auto"  # auto = cuda:0 when there is a GPU, else cpu
    qwen_fast_decode: bool = True  # lean code-predictor loop (same codes as qwen-tts, less overhead)
    qwen_cuda_graphs: bool = True  # on a GPU, replay that loop as one CUDA graph per batch shape
    qwen_batch_size: int = 16  # most segments in one generate call
    qwen_batch_frames: int = 12000  # batch size x longest frame cap, a proxy for the KV-cache memory
    qwen_max_segment_seconds: float = 120.0  # hard cap on one segment's audio, whatever its text
    prompt_cache_size: int = 32  # clone prompts kept in memory (LRU)
    prompt_cache_s3: bool = True  # persist clone prompts next to an s3:// reference clip
    ref_audio_allowed_hosts: str = ""  # comma list of hosts an http(s) ref_audio may come from

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ServerConfig:
        values: dict[str, object] = {}
        for spec in fields(cls):
            raw = environ.get(f"NARRATE_{spec.name.upper()}")
            if raw is None:
                continue
            values[spec.name] = _parse(spec.name, raw, type(getattr(cls(), spec.name)))
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        return {f"NARRATE_{spec.name.upper()}": _format(getattr(self, spec.name)) for spec in fields(self)}

    @property
    def engine_names(self) -> list[str]:
        return [name.strip() for name in self.engines.split(",") if name.strip()]

    @property
    def allowed_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.ref_audio_allowed_hosts.split(",") if h.strip())

    def served_modes(self) -> frozenset[str]:
        """The request modes a container with this configuration serves (dev, custom_voice, ...)."""
        modes = {mode for name in self.engine_names for mode in ENGINE_MODES.get(name, ())}
        if "qwen" in self.engine_names:
            modes |= set(self.qwen_sources("."))
        return frozenset(modes)

    def qwen_sources(self, model_dir: str | Path) -> dict[str, str]:
        """Mode -> where its checkpoint loads from, for the modes that are switched on."""
        chosen = {
            "custom_voice": self.qwen_custom_voice_model,
            "voice_clone": self.qwen_base_model,
            "voice_design": self.qwen_voice_design_model,
        }
        on = {mode: source for mode, source in chosen.items() if source.lower() not in OFF}
        return {mode: _resolve(source, model_dir) for mode, source in on.items()}


def checkpoint_identity(source: str) -> tuple[str, str]:
    """(model id, revision) of a checkpoint: part of every cache key, so a different checkpoint never
    reuses another's audio. A hub id is itself at revision ``main``; a local directory is named by its
    folder and identified by its config and, for each weights file, its size and first and last MiB."""
    folder = Path(source)
    if not folder.is_dir():
        return source, "main"
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in {".json", ".safetensors"})
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return folder.resolve().name, _files_revision(folder, stamp)


@lru_cache(maxsize=16)
def _files_revision(folder: Path, stamp: tuple[tuple[str, int, int], ...]) -> str:
    """Read once per set of file versions: a render asks for every segment's cache key."""
    digest = hashlib.sha256()
    for name, _, _ in stamp:
        path = Path(name)
        digest.update(str(path.relative_to(folder)).encode())
        if path.suffix == ".json":
            digest.update(path.read_bytes())
            continue
        size = path.stat().st_size
        digest.update(str(size).encode())
        with path.open("rb") as handle:
            digest.update(handle.read(_SAMPLE_BYTES))
            handle.seek(max(0, size - _SAMPLE_BYTES))
            digest.update(handle.read(_SAMPLE_BYTES))
    return "sha256:" + digest.hexdigest()[:16]


def _resolve(source: str, model_dir: str | Path) -> str:
    """A path relative to the model directory when it exists there; otherwise the value as given."""
    candidate = Path(model_dir) / source
    return str(candidate) if not Path(source).is_absolute() and candidate.is_dir() else source


def _parse(name: str, raw: str, kind: type) -> object:
    try:
        if kind is bool:
            if raw.strip().lower() not in {"1", "0", "true", "false", "yes", "no"}:
                raise ValueError(raw)
            return raw.strip().lower() in {"1", "true", "yes"}
        return kind(raw)
    except ValueError:
        raise ValueError(f"NARRATE_{name.upper()}={raw!r} is not a valid {kind.__name__}") from None


def _format(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
