"""A render whose work is worth several instances, end to end on the embedded AWS: its wake asks for
them, its requests are cut so each instance takes some, and its scale-down releases them all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from flows.render_narration import render_narration
from narrate.aws.local import AsyncEndpointEmulator, LocalAws
from narrate.manifest import RenderManifest
from narrate.settings import get_settings
from tests.conftest import write_script

pytestmark = pytest.mark.usefixtures("prefect_server")

SENTENCES = ["Open the dashboard.", "Pick a data source.", "Drag a field.", "Share the link."]


@pytest.fixture
def emulator(embedded_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[AsyncEndpointEmulator]:
    """Two instances at most; a throughput so low that the work is worth both; each request taking
    0.3 s on its instance so that requests overlap (restored after)."""
    assert embedded_aws.emulator is not None
    monkeypatch.setenv("NARRATE_MAX_INSTANCES", "2")
    monkeypatch.setenv("NARRATE_INSTANCE_THROUGHPUT", "0.01")
    monkeypatch.setenv("NARRATE_BATCH_SIZE", "2")
    get_settings.cache_clear()
    embedded_aws.emulator.set_invocation_seconds(0.3)
    try:
        yield embedded_aws.emulator
    finally:
        embedded_aws.emulator.set_invocation_seconds(0.0)


def script(folder: Path, segments: int) -> Path:
    rows = "\n".join(f"  - {{id: s{i}, text: {SENTENCES[i % 4]} Step {i}.}}" for i in range(segments))
    head = "title: Fan-out\nvoice: {engine: dev, language: en}\noutput: {formats: [wav]}\nsegments:\n"
    body = head + rows + "\n"
    return write_script(folder, body, "fan-out.yaml")


def test_a_render_worth_two_instances_uses_both_and_releases_both(
    emulator: AsyncEndpointEmulator, tmp_path: Path
) -> None:
    name = get_settings().endpoint_name
    result = render_narration(script=str(script(tmp_path, 8)), out_dir=str(tmp_path / "out"))
    assert result["synthesised"] == 8
    served = {
        instance: count for (endpoint, instance), count in emulator.served_by.items() if endpoint == name
    }
    assert len(served) == 2 and sum(served.values()) == 4, served  # 4 requests of 2, on both instances
    assert emulator.launches[name] == 2
    manifest = RenderManifest.load(tmp_path / "out" / "manifest.json")
    assert manifest.instances == 2 and manifest.endpoint_released
    assert manifest.last_output_at is not None and manifest.released_at is not None
    assert manifest.released_at - manifest.last_output_at <= 5
    variant = boto3.client("sagemaker").describe_endpoint(EndpointName=name)["ProductionVariants"][0]
    assert (variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == (0, 0)
