"""Session-wide Prefect server (a real local API, not ephemeral mode) and per-test narrate folders."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_UI_ENABLED", "false")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


# Local-mode timings for tests: a 0.3 s cold start; alarm periods and cooldowns at 2 % (the
# HasBacklogWithoutCapacity alarm fires after 2.4 s instead of 120 s, scale-in after 6 s).
TEST_COLD_START_SECONDS = 0.3
TEST_TIME_SCALE = 0.02


@pytest.fixture(scope="session")
def embedded_aws() -> Iterator[Any]:
    """The embedded AWS for the whole session; boto3 in this process points at it."""
    from narrate.aws.local import EmulatorOptions, local_aws

    options = EmulatorOptions(cold_start_seconds=TEST_COLD_START_SECONDS, time_scale=TEST_TIME_SCALE)
    with local_aws(options) as aws:
        yield aws


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Random-weight Qwen3-TTS checkpoints of each kind, built offline once a session, by request mode."""
    from narrate.testing.qwen_checkpoint import build_checkpoint

    root = tmp_path_factory.mktemp("qwen")
    kinds = {"custom_voice": "custom_voice", "voice_clone": "base", "voice_design": "voice_design"}
    return {mode: build_checkpoint(root / f"tiny-{kind}", kind) for mode, kind in kinds.items()}  # type: ignore[arg-type]


# Random weights babble until their frame cap: the quality gate would rightly refuse every take. What
# it checks of them is what needs no trained voice: clipping, and the speaker encoder's similarity.
RANDOM_WEIGHTS_GATE_CHECKS = "clipping,similarity"


@dataclass(frozen=True)
class CloneScript:
    script: Path
    clip: Path
    consent_id: str


@pytest.fixture
def tiny_clone_served(monkeypatch: pytest.MonkeyPatch, tiny_checkpoints: dict[str, Path]) -> None:
    """qwen-clone voices served by the tiny Base checkpoint, every clip capped at a second (random
    weights never stop by themselves), judged by the checks that mean something for random weights."""
    from narrate.settings import get_settings

    monkeypatch.setenv("NARRATE_ENGINES", "qwen")
    monkeypatch.setenv("NARRATE_QWEN_CUSTOM_VOICE_MODEL", "none")
    monkeypatch.setenv("NARRATE_QWEN_BASE_MODEL", str(tiny_checkpoints["voice_clone"]))
    monkeypatch.setenv("NARRATE_QWEN_MAX_SEGMENT_SECONDS", "1")
    monkeypatch.setenv("NARRATE_GATE_CHECKS", RANDOM_WEIGHTS_GATE_CHECKS)
    get_settings.cache_clear()


@pytest.fixture
def tiny_clone_script(tmp_path: Path, tiny_clone_served: None) -> CloneScript:
    """A two-segment qwen-clone script with its clip and consent, served by the tiny Base checkpoint."""
    from datetime import date

    import numpy as np
    import soundfile as sf

    from narrate.consent import create_consent, write_consent

    rate = 24000
    noise = np.random.default_rng(9).standard_normal(3 * rate).astype(np.float32) * 0.1
    clip = tmp_path / "ada.wav"
    sf.write(clip, noise, rate)
    record = create_consent(clip, "Ada Lovelace", "Acme product demos", date(2026, 1, 5))
    write_consent(record, tmp_path / "consent.json")
    script = write_script(
        tmp_path,
        "title: Cloned\nvoice: {engine: qwen-clone, reference_clip: ada.wav, reference_text: This is Ada.,\n"
        "        consent: consent.json}\nsegments: [{id: a, text: Hello there.}, {id: b, text: Goodbye.}]\n",
        "clone.yaml",
    )
    return CloneScript(script, clip, record.consent_id)


_test_counter = itertools.count()


@pytest.fixture(autouse=True)
def narrate_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Cache, state and renders in a fresh folder per test, and an endpoint and bucket of its own."""
    from narrate.endpoints import reset_endpoints
    from narrate.settings import get_settings

    number = next(_test_counter)
    monkeypatch.setenv("NARRATE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NARRATE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("NARRATE_RENDERS_DIR", str(tmp_path / "renders"))
    monkeypatch.setenv("NARRATE_RETRY_BASE_SECONDS", "0")
    monkeypatch.setenv("NARRATE_ENDPOINT_NAME", f"narrate-test-{number}")
    monkeypatch.setenv("NARRATE_BUCKET", f"narrate-test-{number}")
    monkeypatch.setenv("NARRATE_WAKE_DEADLINE_SECONDS", "60")
    monkeypatch.setenv("NARRATE_OUTPUT_DEADLINE_SECONDS", "60")
    # no development certificate unless a test asks for one (`signing`): renders are unsigned
    monkeypatch.setenv("NARRATE_PROVENANCE_DIR", str(tmp_path / "provenance"))
    get_settings.cache_clear()
    reset_endpoints()
    yield tmp_path
    get_settings.cache_clear()
    reset_endpoints()


@pytest.fixture(scope="session")
def development_certificate(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One development certificate (`narrate provenance init`) for the session's signing tests."""
    from narrate.provenance.devcert import create_development_certificate

    return create_development_certificate(tmp_path_factory.mktemp("provenance"))


@pytest.fixture
def signing(narrate_dirs: Path, monkeypatch: pytest.MonkeyPatch, development_certificate: Any) -> Any:
    """Renders in this test are signed with the session's development certificate; returns it."""
    from narrate.settings import get_settings

    monkeypatch.setenv("NARRATE_PROVENANCE_DIR", str(development_certificate.folder))
    get_settings.cache_clear()
    return development_certificate


def write_script(folder: Path, body: str, name: str = "script.yaml") -> Path:
    path = folder / name
    path.write_text(body, encoding="utf-8")
    return path


def copy_demo(folder: Path, voice: str | None = None) -> Path:
    """``examples/demo.yaml`` copied into ``folder``; ``voice`` names one of its voices to speak it in
    instead of its default (``dev``, eSpeak, where a test times the lifecycle rather than the voice)."""
    import yaml

    text = (EXAMPLES / "demo.yaml").read_text(encoding="utf-8")
    if voice is not None:
        data = yaml.safe_load(text)
        data["voice"] = data["voices"][voice]
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return write_script(folder, text, "demo.yaml")


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    """Poll a condition the embedded AWS reaches asynchronously; True once it holds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
