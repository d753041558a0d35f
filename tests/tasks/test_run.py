"""The per-run object: built once from the script, its first manifest written, and which segments it
synthesises."""

from __future__ import annotations

from pathlib import Path

import pytest

from narrate.endpoints import EndpointKind
from narrate.manifest import RenderManifest
from narrate.settings import get_settings
from tasks.quality import CacheLookup
from tasks.run import RenderOptions, start_render
from tests.conftest import write_script

pytestmark = pytest.mark.usefixtures("prefect_server")  # start_render runs the load-narration task

SCRIPT = """
title: Twice the same line
voice: {engine: dev}
segments:
  - {id: a, text: Hello there.}
  - {id: b, text: Something else.}
  - {id: c, text: Hello there.}
"""


def test_a_run_synthesises_each_sound_once_and_a_retry_only_what_it_asks(tmp_path: Path) -> None:
    script = write_script(tmp_path, SCRIPT)
    run = start_render(str(script), tmp_path / "out", EndpointKind.INPROCESS, RenderOptions(), get_settings())
    assert [p.id for p in run.to_synthesise(CacheLookup(run.plan, set()))] == ["a", "b"]  # c sounds like a
    assert [p.id for p in run.to_synthesise(CacheLookup(run.plan, {run.plan[0].cache_key}))] == ["b"]
    retry = start_render(
        str(script),
        tmp_path / "out",
        EndpointKind.INPROCESS,
        RenderOptions(only=frozenset({"b"})),
        get_settings(),
    )
    assert [p.id for p in retry.to_synthesise(CacheLookup(retry.plan, set()))] == ["b"]
    manifest = RenderManifest.load(tmp_path / "out" / "manifest.json")
    assert manifest.endpoint is EndpointKind.INPROCESS and [s.id for s in manifest.segments] == [
        "a",
        "b",
        "c",
    ]


def test_a_polly_voice_is_spoken_by_polly_whatever_the_backend(tmp_path: Path) -> None:
    script = write_script(
        tmp_path, "title: t\nvoice: {engine: polly, voice_id: Matthew}\nsegments: [{id: a, text: Hi.}]\n"
    )
    run = start_render(str(script), tmp_path / "out", EndpointKind.INPROCESS, RenderOptions(), get_settings())
    assert run.endpoint is EndpointKind.POLLY and run.identity.emulated  # tests run in local mode
    assert run.manifest.emulated == run.identity.emulated
