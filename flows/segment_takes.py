"""segment-takes: several takes of one segment, each scored by the quality gate, to listen to and pick.

The takes are a render of their own (``renders/<script>/takes/<segment>/``): take k has the seed the
render would give its k-th take, so ``narrate pick --take K`` pins exactly what was heard. The
lifecycle is the render's (cache, endpoint, synthesis, assembly: ``narration.wav`` plays them one
after another); each take is also written on its own as ``take-K.wav``, and ``takes.json`` lists them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Any

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, Field

from flows.render_narration import FAN_OUT_WORKERS, default_out_dir, run_render
from narrate.aws.clients import AwsClients
from narrate.aws.s3 import fetch_to_local
from narrate.endpoints import Backend, EndpointKind
from narrate.endpoints.preflight import endpoints_for, voices_asked
from narrate.endpoints.render_slot import render_slot
from narrate.endpoints.session import aws_for
from narrate.files import write_atomic, write_text_atomic
from narrate.manifest import RenderManifest
from narrate.outputs import RenderFolder
from narrate.settings import get_settings
from narrate.synthesis.cache import ClipCache
from tasks.run import RenderOptions

TAKES_FILE = "takes.json"


class TakeListing(BaseModel):
    take: int
    seed: int | None
    passed: bool
    summary: str
    file: str
    checks: dict[str, dict[str, Any]]


@flow(
    name="segment-takes",
    flow_run_name="takes-{segment}-{script}",
    task_runner=ThreadPoolTaskRunner(max_workers=FAN_OUT_WORKERS),
    validate_parameters=True,
)
def segment_takes(
    script: Annotated[str, Field(min_length=1, description="Narration script: a path or s3:// URI.")],
    segment: Annotated[str, Field(min_length=1, description="The id of the segment to take again.")],
    count: Annotated[int, Field(ge=1, le=20, description="How many takes.")] = 3,
    out_dir: Annotated[
        str | None, Field(description="Folder for the takes; default renders/<name>/takes/<segment>/.")
    ] = None,
    backend: Annotated[Backend | None, Field(description="Endpoint; default NARRATE_BACKEND.")] = None,
) -> dict[str, Any]:
    """Synthesise ``count`` takes of one segment, score each, and list them as playable files.

    Args:
        script: Narration script (YAML or JSON): a path or an s3:// URI.
        segment: The id of the segment.
        count: How many takes (take k has the seed a render gives its k-th take).
        out_dir: Folder for the takes; default renders/<script name>/takes/<segment>/.
        backend: What synthesises; default NARRATE_BACKEND.
    """
    settings = get_settings()
    kind = EndpointKind(backend or settings.backend)
    needed = endpoints_for(voices_asked(script, [], None, settings), kind, settings)
    with aws_for(needed, settings), render_slot(settings.endpoint_name):
        local_script = str(
            fetch_to_local(script, settings.state_dir / "scripts", AwsClients(settings.region))
        )
        out = Path(out_dir) if out_dir else default_out_dir(local_script, settings) / "takes" / segment
        result = run_render(local_script, out, kind, RenderOptions(alternatives=(segment, count)), settings)
    listing = export_takes(RenderFolder(out).manifest(), ClipCache(settings.cache_dir), out)
    return result | {"takes": [take.model_dump() for take in listing]}


def export_takes(manifest: RenderManifest, cache: ClipCache, out: Path) -> list[TakeListing]:
    """Each take's clip as ``take-K.wav`` beside the render, and ``takes.json`` listing them."""
    listing = []
    for number, record in enumerate(manifest.segments, 1):
        kept = record.kept
        target = out / f"take-{number}.wav"
        write_atomic(target, lambda tmp, key=record.cache_key: shutil.copyfile(cache.path(key), tmp))
        listing.append(
            TakeListing(
                take=number,
                seed=kept.seed if kept else None,
                passed=kept.passed if kept else True,
                summary=kept.summary if kept else "not judged",
                file=str(target),
                checks=kept.checks if kept else {},
            )
        )
    body = "[\n" + ",\n".join(take.model_dump_json() for take in listing) + "\n]\n"
    write_text_atomic(out / TAKES_FILE, body)
    return listing
